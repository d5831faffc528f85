package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/factory2/factory2/internal/config"
	"github.com/factory2/factory2/internal/kclient"
	"github.com/factory2/factory2/processors"
	"github.com/factory2/factory2/processors/deps"
	"github.com/factory2/factory2/topics"
)

func (a *app) topicsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "topics",
		Short: "Create and inspect factory2's Kafka topics",
	}
	var (
		timeout time.Duration
		output  string
	)
	ensure := &cobra.Command{
		Use:   "ensure",
		Short: "Create missing topics and report drift, destroying nothing",
		Long: `Create every topic of the catalog that is missing, and report for each topic
whether it was created, is as specified, or has drifted (a wrong partition
count, replication or config). Drift is reported, never repaired: changing
a keyed topic's partitions moves subjects between partitions.

Prints a line per topic; exits non-zero if any topic has drifted.

` + topicsOutputHelp,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.runTopics(cmd.Context(), timeout, output, true)
		},
	}
	describe := &cobra.Command{
		Use:   "describe",
		Short: "Show every topic of the catalog and its state on the cluster",
		Long: `Show every topic of the catalog: its role, whether it exists on the cluster
as specified (ok), differs (drift, with each difference) or is missing, its
partitions and replication, and what it holds. Changes nothing.

` + topicsOutputHelp,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.runTopics(cmd.Context(), timeout, output, false)
		},
	}
	for _, c := range []*cobra.Command{ensure, describe} {
		a.addBrokersFlag(c)
		c.Flags().DurationVar(&timeout, "timeout", 30*time.Second, "give up after this long")
		addOutputFlag(c.Flags(), &output)
	}
	cmd.AddCommand(ensure, describe, a.topicsACLsCmd())
	return cmd
}

// topicsOutputHelp is the output convention of topics ensure and describe.
const topicsOutputHelp = outputHelp + `

The text is a table: topic, role, status (created, ok, drift, missing),
partitions, replication and what the topic holds; then each drift, one a
line. A JSON line per topic has "topic", "alias", "role", "status",
"partitions", "replication", "configs", "drift", "key" and "doc".`

func (a *app) runTopics(ctx context.Context, timeout time.Duration, output string, create bool) error {
	text, err := textOutput(output, a.stdout)
	if err != nil {
		return err
	}
	cfg, cat, _, err := a.configAndFullCatalog()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cl, err := kafkaClient(ctx, cfg)
	if err != nil {
		return err
	}
	defer cl.Close()
	var st []topics.Status
	if create {
		st, err = cat.Ensure(ctx, cl)
	} else {
		st, err = cat.Describe(ctx, cl)
	}
	drifted := 0
	for _, s := range st {
		if s.Action == topics.Drifted {
			drifted++
		}
	}
	if werr := a.writeTopics(st, text); werr != nil {
		return werr
	}
	if err != nil {
		return err
	}
	if drifted > 0 {
		return fmt.Errorf("%d topics differ from the catalog (see \"drift\"); nothing was changed", drifted)
	}
	return nil
}

// writeTopics prints the statuses as a table or as JSON lines.
func (a *app) writeTopics(st []topics.Status, text bool) error {
	if !text {
		out := a.jsonOut()
		for _, s := range st {
			if err := out.write(s); err != nil {
				return err
			}
		}
		return nil
	}
	return writeTopicsText(a.stdout, st)
}

// writeTopicsText is the text form of topic statuses: a table, then
// each drift on a line of its own.
func writeTopicsText(w io.Writer, st []topics.Status) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	var drift []string
	fmt.Fprintln(tw, "TOPIC\tROLE\tSTATUS\tPARTITIONS\tREPLICATION\tHOLDS")
	for _, s := range st {
		parts, repl := "-", "-"
		if s.Partitions > 0 {
			parts = fmt.Sprint(s.Partitions)
		}
		if s.Replicas > 0 {
			repl = fmt.Sprint(s.Replicas)
		}
		row := []string{s.Topic, string(s.Role), string(s.Action), parts, repl, s.Doc}
		if s.Doc == "" {
			row = row[:len(row)-1] // no padding after the last cell
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
		for _, d := range s.Drift {
			drift = append(drift, s.Topic+" drifted: "+d)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, d := range drift {
		if _, err := fmt.Fprintln(w, d); err != nil {
			return err
		}
	}
	return nil
}

// catalog builds the topic catalog of cfg, with the changelogs of every
// processor this binary runs.
func catalog(cfg config.Config) (*topics.Catalog, error) {
	return topics.New(cfg.Topics.Catalog())
}

// configAndFullCatalog is configAndCatalog with the changelogs of every
// processor this binary runs, which a runner adds when it is built: what
// `topics ensure` must create for `serve --ensure-topics=false` (the
// processors' principal may not create topics), and what `topics acls`
// grants. It builds the gating engine, so it needs the policies.
func (a *app) configAndFullCatalog() (config.Config, *topics.Catalog, []processors.Spec, error) {
	cfg, cat, err := a.configAndCatalog()
	if err != nil {
		return cfg, nil, nil, err
	}
	specs, _, err := processorSpecs(cfg, cat, deps.NewGraph())
	if err != nil {
		return cfg, nil, nil, err
	}
	for _, s := range specs {
		for _, store := range s.Stores {
			cat.AddChangelog(s.Name, store) // as processors.NewRunner does
		}
	}
	return cfg, cat, specs, nil
}

// kafkaClient connects to cfg.Brokers, secured by cfg.Kafka (TLS, SASL),
// and fails fast, with a clear error, when no broker answers or the
// brokers refuse its credentials.
func kafkaClient(ctx context.Context, cfg config.Config, opts ...kgo.Opt) (*kgo.Client, error) {
	cl, err := kclient.New(cfg.Brokers, cfg.Kafka, opts...)
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := cl.Ping(pctx); err != nil {
		cl.Close()
		var unknownCA x509.UnknownAuthorityError
		switch {
		case errors.Is(err, kerr.SaslAuthenticationFailed):
			return nil, fmt.Errorf("the Kafka brokers at %v refuse the credentials of user %q (kafka.sasl; %s overrides the user): %w",
				cfg.Brokers, cfg.Kafka.SASL.Username, config.EnvKafkaUsername, err)
		case errors.As(err, &unknownCA):
			return nil, fmt.Errorf("the Kafka brokers at %v present a certificate that kafka.tls.ca_file does not trust: %w", cfg.Brokers, err)
		}
		return nil, fmt.Errorf("no Kafka broker answers at %v (start one with `factory2 dev` or `make kafka-up`, or pass --brokers): %w", cfg.Brokers, err)
	}
	return cl, nil
}
