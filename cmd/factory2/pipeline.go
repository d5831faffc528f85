package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/plugin/kprom"
	"golang.org/x/sync/errgroup"

	"github.com/factory2/factory2/avro"
	"github.com/factory2/factory2/internal/config"
	"github.com/factory2/factory2/internal/httpapi"
	"github.com/factory2/factory2/internal/ingest"
	"github.com/factory2/factory2/internal/kclient"
	"github.com/factory2/factory2/internal/overview"
	"github.com/factory2/factory2/processors"
	"github.com/factory2/factory2/processors/compose"
	"github.com/factory2/factory2/processors/deps"
	"github.com/factory2/factory2/processors/gating"
	"github.com/factory2/factory2/state"
	"github.com/factory2/factory2/topics"
)

// pipeline is everything one factory2 process runs: the processors on
// the runtime, and the HTTP server. dev and serve build it the same way.
type pipeline struct {
	cfg   config.Config
	log   *slog.Logger
	cat   *topics.Catalog
	codec *avro.Codec
	reg   *prometheus.Registry
	cache *state.Cache
	// kafkaOpts secure every Kafka client of the pipeline (cfg.Kafka).
	kafkaOpts []kgo.Opt
	runners   []*processors.Runner
	specs     []processors.Spec
	gating    *gating.Engine
	// composes answers the compose queries on every instance.
	composes *compose.Table
	// graph is the dependency graph every instance holds, for trace
	// queries and rebuild decisions.
	graph *deps.Table
	// overview is the page served at /.
	overview *overview.Overview
	// cert is the HTTP server's TLS certificate, reloaded on SIGHUP; nil
	// without TLS.
	cert *httpapi.Certificate
}

// listenHTTP binds the HTTP server with everything a process serves:
// health, metrics, event ingestion and the processors' query APIs. close
// releases the ingestion producer.
func (p *pipeline) listenHTTP() (srv *httpapi.Server, close func(), err error) {
	opts, err := p.cfg.HTTP.ServerOptions()
	if err != nil {
		return nil, nil, fmt.Errorf("http tokens: %w", err)
	}
	opts.Registerer = p.reg
	if h := p.cfg.HTTP; h.TLSCertFile != "" || h.TLSKeyFile != "" {
		if p.cert, err = httpapi.NewCertificate(h.TLSCertFile, h.TLSKeyFile, p.log, p.reg); err != nil {
			return nil, nil, err
		}
		opts.TLS = p.cert
	}
	srv, err = httpapi.Listen(p.cfg.HTTP.Addr, p.reg, p.log, opts)
	if err != nil {
		return nil, nil, err
	}
	// A suffix stable across restarts: a restarted instance fences the
	// ingestion transaction its predecessor left open.
	ing, err := newIngestProducer(p.cfg, "http-"+p.cfg.InstanceID)
	if err != nil {
		return nil, nil, err
	}
	en, err := newEnricher(p.cfg, p.log, p.reg)
	if err != nil {
		ing.Close()
		return nil, nil, err
	}
	im, err := ingest.NewMetrics(p.reg)
	if err != nil {
		ing.Close()
		return nil, nil, err
	}
	registerIngest(srv, p.cfg, ing, withEnricher(en, p.log), withMetrics(im))
	srv.SetCheck(p.health)
	for i, s := range p.specs {
		if s.Name == gating.Name {
			api := gating.NewAPI(p.gating, p.runners[i])
			api.Register(srv)
			api.RegisterSigning(srv)
		}
	}
	compose.NewAPI(p.composes).Register(srv)
	deps.NewAPI(p.graph).Register(srv)
	p.overview.Register(srv)
	return srv, ing.Close, nil
}

// health is the process's liveness and readiness: every processor's.
func (p *pipeline) health() httpapi.Status {
	st := httpapi.Status{Live: true, Ready: true}
	var reasons []string
	for i, r := range p.runners {
		h := r.Health()
		st.Live = st.Live && h.Live
		st.Ready = st.Ready && h.Ready
		if h.Reason != "" {
			reasons = append(reasons, p.specs[i].Name+": "+h.Reason)
		}
	}
	if h := p.graph.Health(); !h.Ready {
		st.Ready = false
		reasons = append(reasons, h.Reason)
	}
	if h := p.composes.Health(); !h.Ready {
		st.Ready = false
		reasons = append(reasons, h.Reason)
	}
	st.Reason = strings.Join(reasons, "; ")
	return st
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
	if p.kafkaOpts, err = cfg.Kafka.Opts(); err != nil {
		return nil, err
	}
	p.graph = deps.NewTable(deps.TableConfig{Brokers: cfg.Brokers, ClientOpts: p.kafkaOpts, Catalog: cat, Logger: log})
	p.specs, p.gating, err = processorSpecs(cfg, cat, p.graph.Graph)
	if err != nil {
		return nil, err
	}
	for _, spec := range p.specs {
		cfg := p.runnerConfig()
		cfg.SessionHooks = []kgo.Hook{kprom.NewMetrics("factory2_kafka",
			kprom.Registerer(prometheus.WrapRegistererWith(prometheus.Labels{"processor": spec.Name}, reg)))}
		r, err := processors.NewRunner(spec, cfg)
		if err != nil {
			return nil, err
		}
		p.runners = append(p.runners, r)
	}
	p.composes, err = compose.NewTable(compose.TableConfig{Brokers: cfg.Brokers, ClientOpts: p.kafkaOpts, Topic: cat.Name(topics.DecisionsComposeReady),
		Codec: codec, Logger: log, Registerer: reg})
	if err != nil {
		return nil, err
	}
	p.overview, err = overview.New(overview.Config{Brokers: cfg.Brokers, ClientOpts: p.kafkaOpts, Catalog: cat, Codec: codec,
		Composes: p.composes, Graph: p.graph, Describe: describe, Logger: log, Registerer: reg})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// describe words a record on the overview page as watch prints it.
func describe(r avro.Record) overview.Line {
	l := recordText(r)
	return overview.Line{Kind: l.Kind, Subject: l.Subject, Verdict: l.Verdict, Reason: l.Reason}
}

func (p *pipeline) runnerConfig() processors.Config {
	return processors.Config{
		Brokers:            p.cfg.Brokers,
		ClientOpts:         p.kafkaOpts,
		InstanceID:         p.cfg.InstanceID,
		Catalog:            p.cat,
		Codec:              p.codec,
		StateDir:           p.cfg.State.Dir,
		Cache:              p.cache,
		CommitInterval:     p.cfg.Processing.CommitInterval,
		TransactionTimeout: p.cfg.Processing.TransactionTimeout,
		SessionTimeout:     p.cfg.Processing.SessionTimeout,
		MaxRecordBytes:     p.cfg.Processing.MaxRecordBytes,
		MaxDeadLetterBytes: p.cfg.Processing.MaxDeadLetterBytes,
		MaxTaskIdle:        p.cfg.Processing.MaxTaskIdle,
		MaxTxnWait:         p.cfg.Processing.MaxTxnWait,
		Threads:            p.cfg.Processing.Threads,
		Logger:             p.log,
		Registerer:         p.reg,
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
func processorSpecs(cfg config.Config, cat *topics.Catalog, g *deps.Graph) ([]processors.Spec, *gating.Engine, error) {
	eng, err := gatingEngine(cfg)
	if err != nil {
		return nil, nil, err
	}
	return []processors.Spec{
		gating.Spec(cat, eng),
		compose.MembersSpec(cat), compose.Spec(cat),
		deps.Spec(cat), deps.RebuildSpec(cat, g, cfg.Rebuild),
	}, eng, nil
}

// gatingEngine loads the policies and signing rules of cfg. A broken
// policy set stops the process: deciding with half the policies would
// emit wrong decisions.
func gatingEngine(cfg config.Config) (*gating.Engine, error) { return cfg.GatingEngine() }

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
	advice, _ := kclient.BrokerAdvice(ctx, cl) // advice only: the topics are there
	for _, a := range advice {
		p.log.Warn("broker setting slows the processors", "advice", a)
	}
	return nil
}

// waitEnsureTopics is ensureTopics for a service: a cluster that does not
// answer yet (started after us, or restarting) is waited for, logging once
// and then every minute; an error Kafka says no retry can fix
// (authorization, a replication factor the cluster cannot give) is
// returned.
func (p *pipeline) waitEnsureTopics(ctx context.Context) error {
	var since, logged time.Time
	for wait := 200 * time.Millisecond; ; wait = min(2*wait, 10*time.Second) {
		err := p.ensureTopics(ctx)
		var ke *kerr.Error
		switch {
		case err == nil:
			if !since.IsZero() {
				p.log.Info("Kafka answers; topics ensured", "waited", time.Since(since).Round(time.Millisecond))
			}
			return nil
		case ctx.Err() != nil:
			return nil
		case errors.As(err, &ke) && !ke.Retriable:
			return err
		}
		if since.IsZero() {
			since = time.Now()
		}
		if time.Since(logged) > time.Minute {
			p.log.Warn("waiting for Kafka to ensure the topics; retrying", "err", err, "waited", time.Since(since).Round(time.Second))
			logged = time.Now()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

// run runs the processors and srv until ctx is done or one fails.
func (p *pipeline) run(ctx context.Context, srv *httpapi.Server) error {
	defer p.cache.Unref()
	g, gctx := errgroup.WithContext(ctx)
	for _, r := range p.runners {
		g.Go(func() error { return r.Run(gctx) })
	}
	g.Go(func() error { return p.composes.Run(gctx) })
	g.Go(func() error { return p.graph.Run(gctx) })
	g.Go(func() error { return p.overview.Run(gctx) })
	if srv != nil {
		g.Go(func() error { return srv.Run(gctx) })
	}
	if reload := p.reloaders(srv); len(reload) > 0 {
		g.Go(func() error { reloadOnHangup(gctx, reload...); return nil })
	}
	return g.Wait()
}

// reloaders returns what SIGHUP reloads: the TLS certificate, and the
// HTTP tokens when some come from files or variables.
func (p *pipeline) reloaders(srv *httpapi.Server) []func() {
	var out []func()
	if p.cert != nil {
		out = append(out, func() { _ = p.cert.Reload() }) // logged and counted by Reload; the old pair stays
	}
	if srv != nil && p.cfg.HTTP.HasTokenFiles() {
		out = append(out, func() { p.reloadTokens(srv) })
	}
	return out
}

// reloadTokens re-reads the HTTP tokens' files and variables and swaps
// them into srv. A token that cannot be read or used keeps every token
// as it was; the process goes on. Neither log line says a token.
func (p *pipeline) reloadTokens(srv *httpapi.Server) {
	a, err := p.cfg.HTTP.Auth()
	if err == nil {
		err = srv.SetAuth(a)
	}
	if err != nil {
		p.log.Error("reloading the HTTP tokens failed; the previous tokens stay", "err", err)
		return
	}
	p.log.Info("reloaded the HTTP tokens")
}

// reloadOnHangup runs every reload on each SIGHUP until ctx is done.
func reloadOnHangup(ctx context.Context, reload ...func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			for _, r := range reload {
				r()
			}
		}
	}
}
