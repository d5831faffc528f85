package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/errgroup"

	"github.com/factory2/factory2/internal/config"
	"github.com/factory2/factory2/internal/embedded"
	"github.com/factory2/factory2/internal/ingest"
	"github.com/factory2/factory2/internal/kclient"
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
	output          string
}

func (a *app) devCmd() *cobra.Command {
	var o devOpts
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run everything in one process on an embedded Kafka broker",
		Long: `Run the embedded default: an in-process Kafka-protocol broker (persisted
under --data, so a restart keeps the log), the topics, the processors and the
HTTP server, in one process with no external Kafka. Ctrl-C (or SIGTERM)
stops it cleanly, with exit status 0.

Any Kafka client can connect to the printed broker address. dev prints each
decision as it is made, from the start of the decision topics (so a restart
tells the story again). With no policies or signing rules configured, the
sample's are used: Fedora's stable push gating, a build key and a gold key.

With --sample a small pipeline is fed in: four builds, of which bash and
python-requests pass their tests and get the build key, then the gold key;
curl fails a required test nobody waives and stays blocked; xz fails one
that is waived, then gets the gold key; the compose fedora-42-updates of the
gold-signed builds becomes ready at the end, and Pungi's compose of it
passes its openQA test. Once the processors have caught up, dev prints the
commands that ask why. With --exit-after-sample it prints the decisions
then and exits.

dev logs warnings and errors only, unless --log-level says otherwise.

` + outputHelp,
		Example: `  factory2 dev --sample                       # what make demo runs
  factory2 dev --sample --exit-after-sample | jq -r .record.type | sort | uniq -c
  factory2 dev --kafka-addr 127.0.0.1:19092 --http-addr 127.0.0.1:18080 --data /tmp/f2`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("log-level") {
				a.logLevel = "warn" // the decisions are the story; --log-level info for the runtime's
			}
			return a.runDev(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.kafkaAddr, "kafka-addr", config.DefaultBrokers, "`host:port` the embedded broker listens on")
	f.StringVar(&o.httpAddr, "http-addr", "127.0.0.1:8080", "`host:port` the HTTP server listens on")
	f.StringVar(&o.dataDir, "data", "data", "`dir`ectory for the broker's log and the state stores")
	f.BoolVar(&o.sample, "sample", false, "feed a small sample pipeline")
	f.BoolVar(&o.exitAfterSample, "exit-after-sample", false, "with --sample: print the decisions once the processors have caught up, and exit")
	addOutputFlag(f, &o.output)
	return cmd
}

func (a *app) runDev(ctx context.Context, o devOpts) error {
	if o.exitAfterSample {
		o.sample = true
	}
	text, err := textOutput(o.output, a.stdout)
	if err != nil {
		return err
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
	// The embedded broker is plaintext on loopback: the kafka section of
	// --config is for external brokers.
	cfg.Kafka = kclient.Security{}
	cfg.State.Dir = filepath.Join(o.dataDir, "state")
	cfg.HTTP.Addr = o.httpAddr
	cfg.InstanceID = "dev"
	if len(cfg.Gating.Policies) == 0 && len(cfg.Gating.SigningRules) == 0 {
		if err := a.useSampleGating(&cfg, o.dataDir); err != nil {
			return err
		}
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
	a.say("factory2 dev: HTTP server at %s: open %s/ in a browser for the overview page (also %s/healthz, %s/metrics)", srv.URL(), srv.URL(), srv.URL(), srv.URL())
	a.say("factory2 dev: %s; the broker's log and the state are kept under %s (remove it to start afresh); topics %s*",
		plural(len(p.runners), "processor"), displayDir(o.dataDir), p.cat.Prefix())

	out := &recordPrinter{text: text, w: a.stdout, json: a.jsonOut(), cat: p.cat, codec: p.codec}
	var (
		w    *watcher // prints the decisions as they are made
		seen *positions
	)
	if !o.exitAfterSample {
		if w, err = a.newWatcher(ctx, cfg, watchOpts{follow: true, fromBeginning: true}, p.decisionTopics()); err != nil {
			return err
		}
		defer w.cl.Close()
		seen = newPositions()
	}

	g, gctx := errgroup.WithContext(ctx)
	runCtx, stopRun := context.WithCancel(gctx)
	defer stopRun()
	g.Go(func() error { return p.run(runCtx, srv) })
	if w != nil {
		g.Go(func() error { return followDecisions(runCtx, w, out, seen, p.decisionTopics()) })
		if !o.sample {
			a.say("factory2 dev: running; decisions are printed as they are made; press Ctrl-C to stop")
		}
	}
	if o.sample {
		g.Go(func() error {
			err := a.feedSample(runCtx, p, sampleRun{print: o.exitAfterSample, out: out, seen: seen, httpURL: srv.URL()})
			if o.exitAfterSample {
				stopRun()
			}
			return err
		})
	}
	if err := g.Wait(); err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}

// useSampleGating gates cfg by the sample's policy, written under
// dataDir, and signs by its rules: Fedora's stable push gating, a build
// key and a gold key, so that the sample shows every kind of decision.
func (a *app) useSampleGating(cfg *config.Config, dataDir string) error {
	pol := filepath.Join(dataDir, "policies")
	if err := os.MkdirAll(pol, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(pol, "sample.yaml"), []byte(sample.Policy), 0o644); err != nil {
		return err
	}
	cfg.Gating.Policies = []string{pol}
	cfg.Gating.SigningRules = sample.SigningRules
	cfg.Rebuild = sample.RebuildRules
	var names []string
	for _, r := range sample.SigningRules {
		names = append(names, r.Name)
	}
	a.say("factory2 dev: no policies configured; using the sample policy in %s and the signing rules %s", pol, strings.Join(names, " and "))
	return nil
}

// displayDir is dir as a person would type it: a relative one starts
// with "./".
func displayDir(dir string) string {
	if filepath.IsAbs(dir) || strings.HasPrefix(dir, ".") {
		return dir
	}
	return "." + string(filepath.Separator) + dir
}

// decisionTopics are the topics of every decision.
func (p *pipeline) decisionTopics() []string {
	return topics.Names(p.cat.ByRole(topics.Decision))
}

// sampleRun is what feedSample does once the sample is produced.
type sampleRun struct {
	// print: print every decision once the processors have caught up.
	// Otherwise followDecisions prints them, and seen tells when it has
	// printed them all, to suggest the commands that ask why.
	print   bool
	out     *recordPrinter
	seen    *positions
	httpURL string
}

// feedSample produces the sample pipeline step by step (sample.Steps),
// each step in one transaction once every processor has consumed the one
// before; then it prints the decisions (run.print) or, once
// followDecisions has printed them, the commands to ask why. Within a
// step, the ingest Producer gives the records timestamps that never
// decrease and increase at every change of topic, so the processors,
// which merge their inputs by record timestamp, take the step in its
// order; between steps, every processor has caught up. The decisions are
// the same on every run.
func (a *app) feedSample(ctx context.Context, p *pipeline, run sampleRun) error {
	parser := &ingest.Parser{Catalog: p.cat}
	prod, err := ingest.NewProducer(ingest.ProducerConfig{Brokers: p.cfg.Brokers, ClientOpts: p.kafkaOpts, TransactionalID: p.cat.Prefix() + "dev-sample", Codec: p.codec})
	if err != nil {
		return err
	}
	defer prod.Close()
	cl, err := kafkaClient(ctx, p.cfg)
	if err != nil {
		return err
	}
	defer cl.Close()
	if len(p.runners) == 0 {
		a.say("factory2 dev: no processors are built into this binary yet, so there are no decisions to print")
	} else if !run.print {
		a.say("factory2 dev: feeding the sample: four builds and compose %s; decisions as they are made (event time, kind, subject, verdict, reason):", sample.ComposeID)
	}
	fed := 0
	for _, step := range sample.Steps(time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)) {
		events, err := parser.Records(step...)
		if err != nil {
			return fmt.Errorf("sample: %w", err)
		}
		produced, err := prod.Produce(ctx, events)
		if err != nil {
			return fmt.Errorf("sample: %w", err)
		}
		fed += len(events)
		if len(p.runners) == 0 {
			continue
		}
		if err := waitCaughtUp(ctx, cl, p, produced); err != nil {
			return err
		}
		if err := waitSettled(ctx, cl, p); err != nil {
			return err
		}
	}
	if len(p.runners) == 0 {
		return nil
	}
	if run.print {
		n, err := printTopics(ctx, p.cfg.Brokers, p.kafkaOpts, run.out, p.decisionTopics())
		a.say("factory2 dev: fed %d sample events (idempotent: their ids are fixed); %s", fed, plural(n, "decision"))
		return err
	}
	n, err := waitPrinted(ctx, cl, p.decisionTopics(), run.seen)
	if err != nil {
		return err
	}
	a.say("%s", a.devHints(fed, n, p.cfg.Brokers[0], run.httpURL))
	return nil
}

// devHints is what dev says once the sample's decisions are printed: the
// commands that ask why, as they work while dev runs, from the same
// shell.
func (a *app) devHints(events, decisions int, broker, httpURL string) string {
	self := selfCommand(os.Args[0])
	// What the commands would use without flags: the environment's
	// configuration, if any.
	envCfg := config.Default()
	if path := os.Getenv("FACTORY2_CONFIG"); path != "" {
		if c, err := config.Load(path); err == nil {
			envCfg = c
		}
	}
	var api, kafka string
	if "http://"+dialAddr(envCfg.HTTP.Addr) != httpURL {
		api = " --url " + httpURL
	}
	brokers := envCfg.Brokers
	if env := os.Getenv("FACTORY2_BROKERS"); env != "" {
		brokers = splitList(env)
	}
	if a.configPath != "" && a.configPath != os.Getenv("FACTORY2_CONFIG") {
		kafka = " --config " + a.configPath // its topic prefix
		brokers = nil
	}
	if len(brokers) == 0 || brokers[0] != broker {
		kafka += " --brokers " + broker
	}
	lines := []struct{ cmd, why string }{
		{"why " + sample.Blocked + api, "blocked: a required test failed and nobody waived it"},
		{"why " + sample.Waived + api, "passed after a waiver"},
		{"compose status " + sample.ComposeID + api, "ready: what it holds, and the decisions behind it"},
		{"watch decisions --from-beginning" + kafka, "every decision again (-o json for scripts)"},
	}
	width := 0
	for _, l := range lines {
		width = max(width, len(self)+1+len(l.cmd))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "factory2 dev: the sample is processed: %s (idempotent: their ids are fixed), %s. Ask why, while this runs:\n",
		plural(events, "event"), plural(decisions, "decision"))
	for _, l := range lines {
		fmt.Fprintf(&b, "  %-*s  # %s\n", width, self+" "+l.cmd, l.why)
	}
	b.WriteString("factory2 dev: running; new decisions are printed as they are made; press Ctrl-C to stop")
	return b.String()
}

// selfCommand is how a person at the same shell runs this binary: the
// path it was started by (bin/factory2), `go run ./cmd/factory2` when go
// run built it, else its name, found on PATH.
func selfCommand(argv0 string) string {
	// go run builds into $WORK/b001/exe/NAME, $WORK being go-buildNNN.
	exe := filepath.Dir(argv0)
	work := filepath.Base(filepath.Dir(filepath.Dir(exe)))
	if filepath.Base(exe) == "exe" && goBuildDir.MatchString(work) {
		return "go run ./cmd/factory2"
	}
	return argv0
}

var goBuildDir = regexp.MustCompile(`^go-build[0-9]+$`)

// positions are the offsets followDecisions has printed up to, per topic
// and partition. Safe for concurrent use.
type positions struct {
	mu      sync.Mutex
	next    map[string]map[int32]int64
	printed int
}

func newPositions() *positions { return &positions{next: map[string]map[int32]int64{}} }

// note records that r was handled (printed, or a control record).
func (s *positions) note(r *kgo.Record) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.next[r.Topic] == nil {
		s.next[r.Topic] = map[int32]int64{}
	}
	s.next[r.Topic][r.Partition] = r.Offset + 1
	if !r.Attrs.IsControl() {
		s.printed++
	}
}

// reached reports whether every partition of ends has been handled up to
// its end offset, and how many records were printed.
func (s *positions) reached(ends kadm.ListedOffsets) (bool, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ok := true
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 && s.next[o.Topic][o.Partition] < o.Offset {
			ok = false
		}
	})
	return ok, s.printed
}

// followQuiet is how long followDecisions waits for more records of a
// burst before printing it; followBurst bounds how long it holds one.
const (
	followQuiet = 300 * time.Millisecond
	followBurst = 2 * time.Second
)

// followDecisions prints every record w reads until ctx ends. The records
// of a burst (what the processors decide on one step of the input) come
// from many partitions at once; they are printed once the burst is over,
// in event time order (then in the order of names, then partition and
// offset), so that the lines tell the story in the order it happened.
func followDecisions(ctx context.Context, w *watcher, out *recordPrinter, seen *positions, names []string) error {
	var (
		burst []*kgo.Record
		since time.Time
	)
	for {
		pctx, cancel := context.WithTimeout(ctx, followQuiet)
		fs := w.cl.PollFetches(pctx)
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) {
			if ferr == nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				ferr = fmt.Errorf("dev: reading the decisions of %s[%d]: %w", t, p, err)
			}
		})
		if ferr != nil {
			return ferr
		}
		recs := fs.Records()
		if len(burst) > 0 && (len(recs) == 0 || time.Since(since) > followBurst) {
			if err := printBurst(burst, out, seen, names); err != nil {
				return err
			}
			burst = burst[:0]
		}
		if len(burst) == 0 {
			since = time.Now()
		}
		burst = append(burst, recs...)
	}
}

// printBurst prints the records of a burst in event time order and notes
// them all, control records included, as seen.
func printBurst(burst []*kgo.Record, out *recordPrinter, seen *positions, names []string) error {
	type line struct {
		r    *kgo.Record
		when time.Time
	}
	var lines []line
	for _, r := range burst {
		if r.Attrs.IsControl() {
			continue
		}
		when := r.Timestamp
		if v, err := out.codec.Decode(r.Value); err == nil && !v.Env().EventTime.IsZero() {
			when = v.Env().EventTime
		}
		lines = append(lines, line{r, when})
	}
	slices.SortStableFunc(lines, func(a, b line) int {
		return cmp.Or(a.when.Compare(b.when), cmp.Compare(slices.Index(names, a.r.Topic), slices.Index(names, b.r.Topic)),
			cmp.Compare(a.r.Partition, b.r.Partition), cmp.Compare(a.r.Offset, b.r.Offset))
	})
	for _, l := range lines {
		if err := out.print(l.r); err != nil {
			return err
		}
	}
	for _, r := range burst {
		seen.note(r)
	}
	return nil
}

// waitPrinted waits until followDecisions has printed every decision
// committed now, and returns how many it printed.
func waitPrinted(ctx context.Context, cl *kgo.Client, names []string, seen *positions) (int, error) {
	ends, err := kadm.NewClient(cl).ListCommittedOffsets(ctx, names...)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return 0, fmt.Errorf("dev: listing the decisions' end offsets: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for {
		if ok, n := seen.reached(ends); ok {
			return n, nil
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("dev: waiting for the decisions to be printed: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
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
// current end, with out.
func printTopics(ctx context.Context, brokers []string, kafkaOpts []kgo.Opt, out *recordPrinter, names []string) (int, error) {
	recs, err := processors.ReadCommitted(ctx, brokers, names, kafkaOpts...)
	if err != nil {
		return 0, err
	}
	for _, r := range recs {
		if err := out.print(r); err != nil {
			return 0, err
		}
	}
	return len(recs), nil
}
