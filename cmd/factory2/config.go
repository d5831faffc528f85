package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/factory2/factory2/internal/config"
	"github.com/factory2/factory2/internal/kclient"
)

func (a *app) configCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Check a configuration file, or print the reference of every key",
		Long: `Tools for the YAML configuration file (--config FILE).

deploy/factory2.example.yml is a complete example that runs as is against the
broker of make kafka-up, with the example policies of deploy/policies;
deploy/config-reference.md is the reference that "config reference" prints.`,
	}
	cmd.AddCommand(a.configCheckCmd(), a.configReferenceCmd())
	return cmd
}

func (a *app) configCheckCmd() *cobra.Command {
	var kafka bool
	cmd := &cobra.Command{
		Use:   "check [FILE]",
		Short: "Report every problem of a configuration file at once",
		Long: `Load FILE (default: --config) and report every problem it has at once, each
with its key or line: unknown keys (with the key probably meant), values of
the wrong type, invalid values, policy files that cannot be read or parsed
(each problem with its file and line), a policy directory without policies,
and decision contexts that composes or signing rules require but no policy
has. It connects to nothing, unless --kafka: then it also asks the brokers
whether they answer and whether there are enough of them for
topics.replication and topics.min_insync_replicas, and notes the broker
settings that slow the processors' transactions (no problem: the exit
status stays 0).

Exit status 0 when the file has no problem, 1 otherwise.`,
		Example: `  factory2 config check deploy/factory2.example.yml
  factory2 config check --kafka my.yml`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := a.configPath
			if len(args) == 1 {
				path = args[0]
			}
			if path == "" {
				return errors.New("config check: name the file: config check FILE (or --config FILE)")
			}
			return a.runConfigCheck(cmd.Context(), path, kafka)
		},
	}
	a.addBrokersFlag(cmd)
	cmd.Flags().BoolVar(&kafka, "kafka", false, "also check the Kafka cluster of the file (or --brokers): reachable, enough brokers for the replication")
	return cmd
}

// runConfigCheck checks the file at path (and its cluster, with kafka)
// and prints the problems for people, or a one-line summary when there
// is none.
func (a *app) runConfigCheck(ctx context.Context, path string, kafka bool) error {
	var problems, notes []string
	if err := config.Check(path); err != nil {
		msg := strings.TrimPrefix(err.Error(), "config: "+path+": ")
		problems = append(problems, strings.Split(msg, "\n")...)
	}
	cfg, err := config.Load(path)
	var pe *os.PathError
	if kafka && !errors.Is(err, config.ErrSyntax) && !errors.As(err, &pe) {
		if a.brokers != "" {
			cfg.Brokers = splitList(a.brokers)
		}
		ps, ns := clusterProblems(ctx, cfg)
		problems, notes = append(problems, ps...), ns
	}
	for _, n := range notes {
		fmt.Fprintf(a.stderr, "%s: note: %s\n", path, n)
	}
	if len(problems) > 0 {
		plural := "s"
		if len(problems) == 1 {
			plural = ""
		}
		fmt.Fprintf(a.stderr, "%s: %d problem%s:\n", path, len(problems), plural)
		for _, p := range problems {
			fmt.Fprintf(a.stderr, "  %s\n", p)
		}
		return errSilent
	}
	eng, err := cfg.GatingEngine()
	if err != nil { // cannot happen: Check built it
		return err
	}
	summary := fmt.Sprintf("%s: no problems: %d policies, %d signing rules, %d composes",
		path, len(eng.Policies().Policies()), len(cfg.Gating.SigningRules), len(cfg.Composes))
	if kafka {
		summary += fmt.Sprintf("; Kafka at %s answers", strings.Join(cfg.Brokers, ","))
	}
	a.say("%s", summary)
	return nil
}

// clusterProblems asks the cluster of cfg whether it answers and has the
// brokers the topics' replication needs; notes are the brokers' settings
// that slow the processors (kclient.BrokerAdvice), which are no problem.
func clusterProblems(ctx context.Context, cfg config.Config) (problems, notes []string) {
	cl, err := kafkaClient(ctx, cfg)
	if err != nil {
		return []string{err.Error()}, nil
	}
	defer cl.Close()
	meta, err := kadm.NewClient(cl).BrokerMetadata(ctx)
	if err != nil {
		return []string{fmt.Sprintf("brokers %v: metadata: %v", cfg.Brokers, err)}, nil
	}
	n := len(meta.Brokers)
	var out []string
	if r := int(cfg.Topics.Replication); r > n {
		out = append(out, fmt.Sprintf("topics.replication %d: the cluster at %v has %d broker(s); at most %d", r, cfg.Brokers, n, n))
	}
	if m := cfg.Topics.MinInSyncReplicas; m > n {
		out = append(out, fmt.Sprintf("topics.min_insync_replicas %d: the cluster at %v has %d broker(s): no write could ever succeed", m, cfg.Brokers, n))
	}
	notes, _ = kclient.BrokerAdvice(ctx, cl) // the metadata answered: an error here is a passing fault
	return out, notes
}

func (a *app) configReferenceCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "reference",
		Short: "Print every configuration key with its type, default and meaning (Markdown)",
		Long: `Print the reference of every key of the configuration file, with its type,
default and meaning, as Markdown. It is generated from the configuration's
definition, so it cannot drift; deploy/config-reference.md is a copy that a
test keeps equal to it.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			_, err := io.WriteString(a.stdout, config.Reference())
			return err
		},
	}
}
