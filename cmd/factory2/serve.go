package main

import (
	"context"
	"os"

	"github.com/spf13/cobra"
)

func (a *app) serveCmd() *cobra.Command {
	var (
		ensure   bool
		httpAddr string
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the processors and the HTTP server against a Kafka cluster",
		Long: `Run every processor of this binary against the Kafka cluster of --brokers or
--config, with the HTTP server (health, metrics, APIs). Run several instances
with distinct instance_id values to share the partitions; each restores the
state of the partitions it is given from their changelogs.

--instance-id (or FACTORY2_INSTANCE_ID) overrides the file's instance_id, so
that one configuration serves every replica: a Kubernetes StatefulSet sets it
from the pod name (deploy/k8s).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.runServe(cmd.Context(), ensure, httpAddr)
		},
	}
	a.addBrokersFlag(cmd)
	cmd.Flags().StringVar(&a.instanceID, "instance-id", os.Getenv("FACTORY2_INSTANCE_ID"),
		"`name` of this instance, overriding instance_id of --config (env FACTORY2_INSTANCE_ID)")
	cmd.Flags().BoolVar(&ensure, "ensure-topics", true, "create missing topics before starting")
	cmd.Flags().StringVar(&httpAddr, "http-addr", "", "`host:port` of the HTTP server, overriding http.addr (port 0: any free port; the address is printed)")
	return cmd
}

func (a *app) runServe(ctx context.Context, ensure bool, httpAddr string) error {
	log, err := a.logger()
	if err != nil {
		return err
	}
	cfg, err := a.config()
	if err != nil {
		return err
	}
	if httpAddr != "" {
		cfg.HTTP.Addr = httpAddr
	}
	p, err := newPipeline(cfg, log)
	if err != nil {
		return err
	}
	if ensure {
		if err := p.waitEnsureTopics(ctx); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
	}
	srv, closeHTTP, err := p.listenHTTP()
	if err != nil {
		return err
	}
	defer closeHTTP()
	a.say("factory2 serve: %d processors on %v; HTTP at %s", len(p.runners), cfg.Brokers, srv.URL())
	if err := p.run(ctx, srv); err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}
