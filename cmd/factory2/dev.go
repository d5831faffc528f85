package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/factory2/factory2/internal/embedded"
	"github.com/factory2/factory2/internal/httpapi"
)

type devOpts struct {
	kafkaAddr       string
	httpAddr        string
	dataDir         string
	sample          bool
	exitAfterSample bool
}

func (a *app) devCmd() *cobra.Command {
	var o devOpts
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run everything in one process on an embedded Kafka broker",
		Long: `Run the embedded default: an in-process Kafka-protocol broker (persisted
under --data, so a restart keeps the log), the topics, the processors and the
HTTP server, in one process with no external Kafka.

Any Kafka client can connect to the printed broker address. With --sample a
small realistic pipeline (builds, tags, signatures, test results, a compose)
is fed in so decisions appear; with --exit-after-sample the decisions are
printed as JSON lines on stdout and the command exits.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.runDev(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.kafkaAddr, "kafka-addr", "127.0.0.1:9092", "`host:port` the embedded broker listens on")
	f.StringVar(&o.httpAddr, "http-addr", "127.0.0.1:8080", "`host:port` the HTTP server listens on")
	f.StringVar(&o.dataDir, "data", "data", "`dir`ectory for the broker's log and the state stores")
	f.BoolVar(&o.sample, "sample", false, "feed a small sample pipeline")
	f.BoolVar(&o.exitAfterSample, "exit-after-sample", false, "with --sample: print the decisions as JSON lines and exit")
	return cmd
}

func (a *app) runDev(ctx context.Context, o devOpts) error {
	if o.exitAfterSample {
		o.sample = true
	}
	log, err := a.logger()
	if err != nil {
		return err
	}
	cfg, err := a.config()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(o.dataDir, 0o755); err != nil {
		return err
	}
	broker, err := embedded.Start(embedded.Options{Addr: o.kafkaAddr, DataDir: o.dataDir, Logger: log})
	if err != nil {
		return err
	}
	defer broker.Close()
	cfg.Brokers = []string{broker.Addr()}
	cfg.State.Dir = filepath.Join(o.dataDir, "state")
	cfg.HTTP.Addr = o.httpAddr
	if cfg.InstanceID == "" {
		cfg.InstanceID = "dev"
	}

	cat, err := catalog(cfg)
	if err != nil {
		return err
	}
	cl, err := kafkaClient(ctx, cfg)
	if err != nil {
		return err
	}
	defer cl.Close()
	if _, err := cat.Ensure(ctx, cl); err != nil {
		return err
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	srv, err := httpapi.Listen(cfg.HTTP.Addr, reg, log)
	if err != nil {
		return err
	}
	a.say("factory2 dev: embedded Kafka broker at %s (any Kafka client can connect)", broker.Addr())
	a.say("factory2 dev: HTTP server at %s (try %s/healthz, %s/metrics)", srv.URL(), srv.URL(), srv.URL())
	a.say("factory2 dev: data in %s; topics: %s*", o.dataDir, cat.Prefix())

	g, gctx := errgroup.WithContext(ctx)
	runCtx, stopRun := context.WithCancel(gctx)
	defer stopRun()
	g.Go(func() error { return srv.Run(runCtx) })
	if o.sample {
		g.Go(func() error {
			defer func() {
				if o.exitAfterSample {
					stopRun()
				}
			}()
			return a.runSample(runCtx, cfg, o.exitAfterSample)
		})
	}
	if !o.exitAfterSample {
		a.say("factory2 dev: running; press Ctrl-C to stop")
	}
	if err := g.Wait(); err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}

// runSample feeds the sample pipeline; with print it then prints the
// decisions it caused.
func (a *app) runSample(ctx context.Context, _ any, print bool) error {
	a.say("factory2 dev: no processors are built yet, so the sample produces no decisions")
	if print {
		return nil
	}
	<-ctx.Done()
	return nil
}

var _ = fmt.Sprint
