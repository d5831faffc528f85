package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/plugin/kprom"
	"golang.org/x/sync/errgroup"

	"github.com/factory2/factory2/avro"
	"github.com/factory2/factory2/internal/config"
	"github.com/factory2/factory2/internal/httpapi"
	"github.com/factory2/factory2/processors"
	"github.com/factory2/factory2/state"
	"github.com/factory2/factory2/topics"
)

// pipeline is everything one factory2 process runs: the processors on
// the runtime, and the HTTP server. dev and serve build it the same way.
type pipeline struct {
	cfg     config.Config
	log     *slog.Logger
	cat     *topics.Catalog
	codec   *avro.Codec
	reg     *prometheus.Registry
	cache   *state.Cache
	runners []*processors.Runner
	specs   []processors.Spec
}

// newPipeline builds the processors of cfg. Topics are not touched; call
// ensureTopics before run.
func newPipeline(cfg config.Config, log *slog.Logger) (*pipeline, error) {
	cat, err := catalog(cfg)
	if err != nil {
		return nil, err
	}
	codec, err := newCodec(cfg)
	if err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	p := &pipeline{cfg: cfg, log: log, cat: cat, codec: codec, reg: reg, cache: state.NewCache(cfg.State.CacheBytes)}
	p.specs, err = processorSpecs(cfg, cat)
	if err != nil {
		return nil, err
	}
	kmetrics := kprom.NewMetrics("factory2_kafka", kprom.Registerer(reg))
	for _, spec := range p.specs {
		r, err := processors.NewRunner(spec, p.runnerConfig(kgo.WithHooks(kmetrics)))
		if err != nil {
			return nil, err
		}
		p.runners = append(p.runners, r)
	}
	return p, nil
}

func (p *pipeline) runnerConfig(opts ...kgo.Opt) processors.Config {
	return processors.Config{
		Brokers:            p.cfg.Brokers,
		InstanceID:         p.cfg.InstanceID,
		Catalog:            p.cat,
		Codec:              p.codec,
		StateDir:           p.cfg.State.Dir,
		Cache:              p.cache,
		CommitInterval:     p.cfg.Processing.CommitInterval,
		TransactionTimeout: p.cfg.Processing.TransactionTimeout,
		SessionTimeout:     p.cfg.Processing.SessionTimeout,
		Logger:             p.log,
		Registerer:         p.reg,
		ClientOpts:         opts,
	}
}

// newCodec returns the Avro codec of cfg: single-object encoding, or the
// Confluent wire format through a schema registry when one is configured.
func newCodec(cfg config.Config) (*avro.Codec, error) {
	if cfg.Registry.URL == "" {
		return avro.NewCodec()
	}
	cl, err := sr.NewClient(sr.URLs(cfg.Registry.URL))
	if err != nil {
		return nil, fmt.Errorf("schema registry %s: %w", cfg.Registry.URL, err)
	}
	return avro.NewCodec(avro.WithRegistry(cl, avro.AutoRegister()))
}

// processorSpecs lists the processors this binary runs.
func processorSpecs(config.Config, *topics.Catalog) ([]processors.Spec, error) {
	return nil, nil
}

// ensureTopics creates the missing topics (changelogs included) and
// reports drift as warnings.
func (p *pipeline) ensureTopics(ctx context.Context) error {
	cl, err := kafkaClient(ctx, p.cfg)
	if err != nil {
		return err
	}
	defer cl.Close()
	st, err := p.cat.Ensure(ctx, cl)
	if err != nil {
		return err
	}
	for _, s := range st {
		switch s.Action {
		case topics.Created:
			p.log.Info("created topic", "topic", s.Topic, "partitions", s.Partitions)
		case topics.Drifted:
			p.log.Warn("topic differs from the catalog", "topic", s.Topic, "drift", s.Drift)
		}
	}
	return nil
}

// run runs the processors and srv until ctx is done or one fails.
func (p *pipeline) run(ctx context.Context, srv *httpapi.Server) error {
	defer p.cache.Unref()
	g, gctx := errgroup.WithContext(ctx)
	for _, r := range p.runners {
		g.Go(func() error { return r.Run(gctx) })
	}
	if srv != nil {
		g.Go(func() error { return srv.Run(gctx) })
	}
	return g.Wait()
}
