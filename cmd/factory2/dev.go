package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/errgroup"

	"github.com/factory2/factory2/avro"
	"github.com/factory2/factory2/internal/embedded"
	"github.com/factory2/factory2/internal/ingest"
	"github.com/factory2/factory2/internal/sample"
	"github.com/factory2/factory2/processors"
	"github.com/factory2/factory2/topics"
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
small realistic pipeline (builds, tags, signatures, test results, a waiver,
a compose) is fed in so decisions appear; with --exit-after-sample the
decisions are printed as JSON lines on stdout and the command exits.`,
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
	cfg.InstanceID = "dev"
	if len(cfg.Gating.Policies) == 0 && len(cfg.Gating.SigningRules) == 0 {
		// The embedded default gates like Fedora's stable push and signs
		// with a build key and a gold key, so the sample shows every kind
		// of decision.
		pol := filepath.Join(o.dataDir, "policies")
		if err := os.MkdirAll(pol, 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(pol, "sample.yaml"), []byte(sample.Policy), 0o644); err != nil {
			return err
		}
		cfg.Gating.Policies = []string{pol}
		cfg.Gating.SigningRules = sample.SigningRules
		a.say("factory2 dev: no policies configured; using the sample policy in %s and signing rules %q and %q", pol, sample.SigningRule.Name, sample.GoldRule.Name)
	}

	p, err := newPipeline(cfg, log)
	if err != nil {
		return err
	}
	if err := p.ensureTopics(ctx); err != nil {
		return err
	}
	srv, closeHTTP, err := p.listenHTTP()
	if err != nil {
		return err
	}
	defer closeHTTP()
	a.say("factory2 dev: embedded Kafka broker at %s (any Kafka client can connect)", broker.Addr())
	a.say("factory2 dev: HTTP server at %s (try %s/healthz, %s/metrics)", srv.URL(), srv.URL(), srv.URL())
	a.say("factory2 dev: %d processors; data in %s; topics %s*", len(p.runners), o.dataDir, p.cat.Prefix())

	g, gctx := errgroup.WithContext(ctx)
	runCtx, stopRun := context.WithCancel(gctx)
	defer stopRun()
	g.Go(func() error { return p.run(runCtx, srv) })
	if o.sample {
		g.Go(func() error {
			err := a.feedSample(runCtx, p, o.exitAfterSample)
			if o.exitAfterSample {
				stopRun()
			}
			return err
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

// feedSample produces the sample pipeline in one transaction; with print
// it waits until every processor has consumed it and prints the decision
// topics as JSON lines. The ingest Producer gives the records timestamps
// that never decrease and increase at every change of topic, so the
// processors, which merge their inputs by record timestamp, take the
// sample in its order and the decisions are the same on every run.
func (a *app) feedSample(ctx context.Context, p *pipeline, print bool) error {
	parser := &ingest.Parser{Catalog: p.cat}
	events, err := parser.Records(sample.Events(time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC))...)
	if err != nil {
		return fmt.Errorf("sample: %w", err)
	}
	prod, err := ingest.NewProducer(ingest.ProducerConfig{Brokers: p.cfg.Brokers, TransactionalID: p.cat.Prefix() + "dev-sample", Codec: p.codec})
	if err != nil {
		return err
	}
	defer prod.Close()
	produced, err := prod.Produce(ctx, events)
	if err != nil {
		return fmt.Errorf("sample: %w", err)
	}
	a.say("factory2 dev: fed %d sample events (idempotent: their ids are fixed)", len(events))
	if !print {
		a.say("factory2 dev: see the decisions with `factory2 watch decisions --from-beginning --brokers %s`", p.cfg.Brokers[0])
		a.say("factory2 dev: ask why with `factory2 why xz-5.6.3-2.fc42 --url http://%s`", p.cfg.HTTP.Addr)
		return nil
	}
	if len(p.runners) == 0 {
		a.say("factory2 dev: no processors are built into this binary yet, so there are no decisions to print")
		return nil
	}
	cl, err := kafkaClient(ctx, p.cfg)
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := waitCaughtUp(ctx, cl, p, produced); err != nil {
		return err
	}
	if err := waitSettled(ctx, cl, p); err != nil {
		return err
	}
	n, err := printTopics(ctx, p.cfg.Brokers, a.jsonOut(), p.codec, topics.Names(p.cat.ByRole(topics.Decision)))
	a.say("factory2 dev: %d decisions", n)
	return err
}

// waitCaughtUp waits until every processor's group has committed an
// offset past each produced record of its inputs. (Comparing with the
// end offsets would never succeed: a transaction's commit marker takes
// the last offset, and consumers commit past data records only.)
func waitCaughtUp(ctx context.Context, cl *kgo.Client, p *pipeline, produced []ingest.Produced) error {
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for i, r := range p.runners {
		inputs := p.specs[i].Inputs
		for {
			committed, err := adm.FetchOffsetsForTopics(ctx, r.Group(), inputs...)
			if err != nil && !notYet(err) {
				return err
			}
			behind := err != nil
			for _, pr := range produced {
				if !slices.Contains(inputs, pr.Topic) {
					continue
				}
				if c, ok := committed.Lookup(pr.Topic, pr.Partition); !ok || c.At <= pr.Offset {
					behind = true
					break
				}
			}
			if !behind {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("waiting for processor %s to consume the sample: %w", r.Group(), ctx.Err())
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	return nil
}

// waitSettled waits until the processors that read other processors'
// outputs (compose-members, compose) have consumed them too: until, in
// two rounds in a row with the same end offsets, every group's committed
// offset is at the end of each of its inputs, or one short of it (the
// commit marker of the transaction that wrote the last record takes the
// last offset).
func waitSettled(ctx context.Context, cl *kgo.Client, p *pipeline) error {
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	var all []string
	for _, s := range p.specs {
		for _, in := range s.Inputs {
			if !slices.Contains(all, in) {
				all = append(all, in)
			}
		}
	}
	var prev map[string]map[int32]int64
	for {
		ends, err := adm.ListEndOffsets(ctx, all...)
		if err != nil {
			return fmt.Errorf("waiting for the processors to settle: %w", err)
		}
		now := map[string]map[int32]int64{}
		ends.Each(func(o kadm.ListedOffset) {
			if now[o.Topic] == nil {
				now[o.Topic] = map[int32]int64{}
			}
			now[o.Topic][o.Partition] = o.Offset
		})
		settled := true
		for i, r := range p.runners {
			committed, err := adm.FetchOffsetsForTopics(ctx, r.Group(), p.specs[i].Inputs...)
			if err != nil && !notYet(err) {
				return err
			}
			for _, in := range p.specs[i].Inputs {
				for part, end := range now[in] {
					if c, ok := committed.Lookup(in, part); end > 0 && (!ok || c.At < end-1) {
						settled = false
					}
				}
			}
		}
		if settled && maps.EqualFunc(prev, now, maps.Equal) {
			return nil
		}
		prev = now
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the processors to consume each other's outputs: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// notYet reports whether an offset fetch failed only because the group
// has committed nothing yet (a group is created by its first commit) or
// its coordinator is not ready.
func notYet(err error) bool {
	return errors.Is(err, kerr.GroupIDNotFound) || errors.Is(err, kerr.CoordinatorLoadInProgress) ||
		errors.Is(err, kerr.CoordinatorNotAvailable) || errors.Is(err, kerr.NotCoordinator)
}

// printTopics prints every committed record of topics, up to their
// current end, as JSON lines.
func printTopics(ctx context.Context, brokers []string, out jsonLines, codec *avro.Codec, names []string) (int, error) {
	recs, err := processors.ReadCommitted(ctx, brokers, names)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, r := range recs {
		v, err := codec.Decode(r.Value)
		if err != nil {
			if err := out.write(map[string]any{"topic": r.Topic, "offset": r.Offset, "error": err.Error()}); err != nil {
				return n, err
			}
			continue
		}
		js, err := avro.MarshalJSON(v)
		if err != nil {
			return n, err
		}
		n++
		if err := out.write(map[string]any{"topic": r.Topic, "partition": r.Partition, "offset": r.Offset, "key": string(r.Key), "record": jsonRaw(js)}); err != nil {
			return n, err
		}
	}
	return n, nil
}
