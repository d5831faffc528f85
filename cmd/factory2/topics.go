package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/factory2/factory2/internal/config"
	"github.com/factory2/factory2/topics"
)

func (a *app) topicsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "topics",
		Short: "Create and inspect factory2's Kafka topics",
	}
	var timeout time.Duration
	ensure := &cobra.Command{
		Use:   "ensure",
		Short: "Create missing topics and report drift, destroying nothing",
		Long: `Create every topic of the catalog that is missing, and report for each topic
whether it was created, is as specified, or has drifted (a wrong partition
count, replication or config). Drift is reported, never repaired: changing
a keyed topic's partitions moves subjects between partitions.

Prints one JSON line per topic; exits non-zero if any topic has drifted.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.runTopics(cmd.Context(), timeout, true)
		},
	}
	describe := &cobra.Command{
		Use:   "describe",
		Short: "Show every topic of the catalog and its state on the cluster",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.runTopics(cmd.Context(), timeout, false)
		},
	}
	for _, c := range []*cobra.Command{ensure, describe} {
		a.addBrokersFlag(c)
		c.Flags().DurationVar(&timeout, "timeout", 30*time.Second, "give up after this long")
	}
	cmd.AddCommand(ensure, describe)
	return cmd
}

func (a *app) runTopics(ctx context.Context, timeout time.Duration, create bool) error {
	cfg, cat, err := a.configAndCatalog()
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
	out := a.jsonOut()
	drifted := 0
	for _, s := range st {
		if s.Action == topics.Drifted {
			drifted++
		}
		if werr := out.write(s); werr != nil {
			return werr
		}
	}
	if err != nil {
		return err
	}
	if drifted > 0 {
		return fmt.Errorf("%d topics differ from the catalog (see \"drift\"); nothing was changed", drifted)
	}
	return nil
}

// catalog builds the topic catalog of cfg, with the changelogs of every
// processor this binary runs.
func catalog(cfg config.Config) (*topics.Catalog, error) {
	return topics.New(cfg.Topics.Catalog())
}

// kafkaClient connects to cfg.Brokers and fails fast, with a clear error,
// when no broker answers.
func kafkaClient(ctx context.Context, cfg config.Config, opts ...kgo.Opt) (*kgo.Client, error) {
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(cfg.Brokers...)}, opts...)...)
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := cl.Ping(pctx); err != nil {
		cl.Close()
		return nil, fmt.Errorf("no Kafka broker answers at %v (start one with `factory2 dev` or `make kafka-up`, or pass --brokers): %w", cfg.Brokers, err)
	}
	return cl, nil
}
