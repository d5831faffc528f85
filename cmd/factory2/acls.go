package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/factory2/factory2/processors"
	"github.com/factory2/factory2/topics"
)

// aclsOpts are the flags of `topics acls`.
type aclsOpts struct {
	processors string
	hooks      string
	httpIngest bool
	dryRun     bool
	timeout    time.Duration
}

func (a *app) topicsACLsCmd() *cobra.Command {
	var o aclsOpts
	cmd := &cobra.Command{
		Use:   "acls",
		Short: "Grant the processors' and the hooks' principals what they need, and nothing more",
		Long: `Create the ACLs (Kafka's StandardAuthorizer) that the deployment of --config
needs, from the topic catalog and the processors this binary runs:

  the processors' principal (serve): read the input topics; read and write
  the decision, internal, changelog and dead-letter topics; describe them
  and their configs (serve checks the topics at start); the consumer group
  and transactional ids (<prefix><processor>/...) of each processor;
  idempotent write;
  the hooks' principal (emit): write and describe the input topics only,
  with the transactional ids <prefix>emit/...; idempotent write.

With --http-ingest the processors' principal may also write the input
topics, as POST /api/v1/events of serve does (transactional ids
<prefix>emit/http-...). Without it, that endpoint is refused by the broker.

Run it as a principal allowed to create ACLs (a super user); the kafka
section of --config (FACTORY2_KAFKA_USERNAME overrides its user) says how to
connect. It prints every ACL it grants; --dry-run prints them and connects to
nothing. Creating an ACL that exists changes nothing, so it is safe to rerun
after adding a processor or topic. It never deletes an ACL.`,
		Example: `  FACTORY2_KAFKA_USERNAME=admin factory2 --config factory2.yml topics acls \
      --processors User:factory2 --hooks User:hooks
  factory2 --config factory2.yml topics acls --dry-run`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.runTopicsACLs(cmd.Context(), o)
		},
	}
	a.addBrokersFlag(cmd)
	f := cmd.Flags()
	f.StringVar(&o.processors, "processors", "User:factory2", "`principal` of the processors (factory2 serve), e.g. User:factory2")
	f.StringVar(&o.hooks, "hooks", "User:hooks", "`principal` of the ingestion hooks (factory2 emit); empty: none")
	f.BoolVar(&o.httpIngest, "http-ingest", false, "also let the processors' principal write the input topics (serve's POST /api/v1/events)")
	f.BoolVar(&o.dryRun, "dry-run", false, "print the ACLs; connect to nothing, create nothing")
	f.DurationVar(&o.timeout, "timeout", 30*time.Second, "give up after this long")
	return cmd
}

// aclGrant is one ACL: principal may do ops on a resource.
type aclGrant struct {
	Principal string
	Resource  string // topic, group, transactional-id, cluster
	Name      string // "kafka-cluster" for the cluster
	Prefixed  bool
	Ops       []kadm.ACLOperation
}

func (g aclGrant) builder() *kadm.ACLBuilder {
	b := kadm.NewACLs().Allow(g.Principal).AllowHosts("*").Operations(g.Ops...)
	if g.Prefixed {
		b = b.ResourcePatternType(kadm.ACLPatternPrefixed)
	} else {
		b = b.ResourcePatternType(kadm.ACLPatternLiteral)
	}
	switch g.Resource {
	case "topic":
		return b.Topics(g.Name)
	case "group":
		return b.Groups(g.Name)
	case "transactional-id":
		return b.TransactionalIDs(g.Name)
	default:
		return b.Clusters()
	}
}

// aclPlan lists the ACLs of a deployment: cat (with the changelogs of
// specs), the processors specs, and the principals of o.
func aclPlan(cat *topics.Catalog, specs []processors.Spec, o aclsOpts) []aclGrant {
	var plan []aclGrant
	p := o.processors
	inputs := topics.Names(cat.ByRole(topics.Input))
	var others []string
	for _, s := range cat.Specs() {
		if s.Role != topics.Input {
			others = append(others, s.Name)
		}
	}
	slices.Sort(others)
	inputOps := []kadm.ACLOperation{kadm.OpRead, kadm.OpDescribe, kadm.OpDescribeConfigs}
	if o.httpIngest {
		inputOps = append(inputOps, kadm.OpWrite)
	}
	for _, t := range inputs {
		plan = append(plan, aclGrant{p, "topic", t, false, inputOps})
	}
	for _, t := range others {
		plan = append(plan, aclGrant{p, "topic", t, false,
			[]kadm.ACLOperation{kadm.OpRead, kadm.OpWrite, kadm.OpDescribe, kadm.OpDescribeConfigs}})
	}
	for _, s := range specs {
		// processors.Runner: group <prefix><name>, transactional ids
		// <prefix><name>/<instance_id> (and .../apply).
		plan = append(plan,
			aclGrant{p, "group", cat.Prefix() + s.Name, false, []kadm.ACLOperation{kadm.OpRead, kadm.OpDescribe}},
			aclGrant{p, "transactional-id", cat.Prefix() + s.Name + "/", true, []kadm.ACLOperation{kadm.OpWrite, kadm.OpDescribe}})
	}
	if o.httpIngest {
		plan = append(plan, aclGrant{p, "transactional-id", ingestTxnID(cat, "http-"), true, []kadm.ACLOperation{kadm.OpWrite, kadm.OpDescribe}})
	}
	plan = append(plan, aclGrant{p, "cluster", "kafka-cluster", false, []kadm.ACLOperation{kadm.OpIdempotentWrite}})
	if h := o.hooks; h != "" {
		for _, t := range inputs {
			plan = append(plan, aclGrant{h, "topic", t, false, []kadm.ACLOperation{kadm.OpWrite, kadm.OpDescribe}})
		}
		plan = append(plan,
			aclGrant{h, "transactional-id", ingestTxnID(cat, ""), true, []kadm.ACLOperation{kadm.OpWrite, kadm.OpDescribe}},
			aclGrant{h, "cluster", "kafka-cluster", false, []kadm.ACLOperation{kadm.OpIdempotentWrite}})
	}
	return plan
}

func (a *app) runTopicsACLs(ctx context.Context, o aclsOpts) error {
	for _, pr := range []string{o.processors, o.hooks} {
		if pr != "" && !strings.Contains(pr, ":") {
			return fmt.Errorf("topics acls: principal %q: want TYPE:NAME, e.g. User:%s", pr, pr)
		}
	}
	if o.processors == "" {
		return errors.New("topics acls: --processors is required")
	}
	cfg, cat, specs, err := a.configAndFullCatalog()
	if err != nil {
		return err
	}
	plan := aclPlan(cat, specs, o)
	if o.dryRun {
		if err := writeACLs(a, plan, nil); err != nil {
			return err
		}
		a.say("topics acls: dry run: %s; nothing was created", plural(len(plan), "ACL"))
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	cl, err := kafkaClient(ctx, cfg)
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	errs := make([]error, len(plan))
	for i, g := range plan {
		res, err := adm.CreateACLs(ctx, g.builder())
		for _, r := range res {
			if r.Err != nil && err == nil {
				err = fmt.Errorf("%w %s", r.Err, r.ErrMessage)
			}
		}
		if err != nil {
			errs[i] = fmt.Errorf("topics acls: %s on %s %s: %w", g.Principal, g.Resource, g.Name, err)
		}
	}
	if err := writeACLs(a, plan, errs); err != nil {
		return err
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w (the user of the kafka section must be allowed to create ACLs: a super user)", err)
	}
	a.say("topics acls: granted %s", plural(len(plan), "ACL"))
	return nil
}

// writeACLs prints the plan as a table; errs, when given, says which
// grants failed.
func writeACLs(a *app, plan []aclGrant, errs []error) error {
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PRINCIPAL\tRESOURCE\tPATTERN\tNAME\tOPERATIONS\tRESULT")
	for i, g := range plan {
		pattern := "literal"
		if g.Prefixed {
			pattern = "prefixed"
		}
		ops := make([]string, len(g.Ops))
		for j, op := range g.Ops {
			ops[j] = op.String()
		}
		result := "planned"
		switch {
		case errs == nil:
		case errs[i] != nil:
			result = "FAILED"
		default:
			result = "granted"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", g.Principal, g.Resource, pattern, g.Name, strings.Join(ops, ","), result)
	}
	return tw.Flush()
}
