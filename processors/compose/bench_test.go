package compose_test

// The scale benchmarks of compose readiness (issue 11), on the real broker:
// the gating, compose-members and compose processors run on the runtime in
// this process, fed through the ingest Producer the way the hooks feed
// them, and the compose decisions are read back read_committed. They skip
// without FACTORY2_KAFKA_BROKERS; each run creates its own topics (a unique
// prefix) and deletes them, and its groups, at the end. Run them once:
//
//	FACTORY2_KAFKA_BROKERS=127.0.0.1:29092 go test -run '^$' -bench BenchmarkCompose -benchtime 1x ./processors/compose/
//
// Sizes: FACTORY2_COMPOSE_PACKAGES (20000: a Fedora-sized compose),
// FACTORY2_COMPOSE_RUNS (runs of BenchmarkComposeScale, 3; median and
// worst are reported), FACTORY2_COMPOSE_SAMPLES (200, for
// BenchmarkComposeReadyLatency). FACTORY2_BENCH_CPUPROFILE=<file> profiles
// only the measured part (-cpuprofile profiles the set-up too), and
// FACTORY2_BENCH_HEAPPROFILE=<file> writes a heap profile at its end, with
// the runners still running.
//
// Targets (issue 11): compose-ready p99 ≤ 100 ms from the last satisfying
// event's produce acknowledgement; peak RSS ≤ 512 MB with state in Pebble.
// The peak RSS is this process's (VmHWM): the runners, and the benchmark's
// producer and consumers beside them; the broker is a separate process.

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/factory2/factory2/avro"
	"github.com/factory2/factory2/internal/ingest"
	"github.com/factory2/factory2/internal/kafkatest"
	"github.com/factory2/factory2/processors"
	"github.com/factory2/factory2/processors/compose"
	"github.com/factory2/factory2/state"
	"github.com/factory2/factory2/topics"
)

const (
	envPackages = "FACTORY2_COMPOSE_PACKAGES"
	envRuns     = "FACTORY2_COMPOSE_RUNS"
	envSamples  = "FACTORY2_COMPOSE_SAMPLES"

	// batchEvents is about how many events one ingest batch (one
	// transaction) carries.
	batchEvents = 2500

	// benchWait bounds every wait of the benchmarks but the load's.
	benchWait = 60 * time.Second

	// benchCacheBytes is the runners' shared block cache: the default
	// of state.cache_bytes.
	benchCacheBytes = 256 << 20
)

// benchSize reads the size env with its default; min is the least value.
func benchSize(b *testing.B, env string, def, least int) int {
	b.Helper()
	s := os.Getenv(env)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < least {
		b.Fatalf("%s=%q: want an integer of at least %d", env, s, least)
	}
	return n
}

// BenchmarkComposeScale: one compose definition (source tag f42-updates)
// is loaded; then FACTORY2_COMPOSE_PACKAGES packages each get a build
// through the pipeline, produced in batches of about 2,500 events through
// the ingest Producer as fast as it commits them: completed with an RPM,
// tagged into the signing tag, signed, moved by the signer into
// f42-updates (tag, untag); once the compose holds every build (the last
// readiness names them all, blocked by gating alone), each gets a passing
// test, and the compose is ready once, at the end.
//
// Reported: events/s end to end (the 6 events per package over the time
// from the first build event's produce to the compose-ready decision with
// every package read by a read_committed consumer; the median and worst
// of FACTORY2_COMPOSE_RUNS runs), the ingest Producer's own rate over the
// same events (the baseline: how fast they could be produced at all), the
// process's peak RSS and the Pebble state on disk at the end.
func BenchmarkComposeScale(b *testing.B) {
	n := benchSize(b, envPackages, 20_000, 1)
	runs := benchSize(b, envRuns, 3, 1)
	var rates, prodRates []float64
	var pebble int64
	for range b.N {
		for run := range runs {
			r := benchScale(b, n, run)
			rates, prodRates = append(rates, r.rate()), append(prodRates, r.produceRate())
			pebble = max(pebble, r.pebble)
		}
	}
	rss := peakRSS(b)
	b.Logf("%d packages, %d events per run; events/s by run: %s; median %.0f, worst %.0f; ingest alone: median %.0f events/s",
		n, eventsPerPackage*n, fmtRates(rates), median(rates), slices.Min(rates), median(prodRates))
	b.Logf("%s; Pebble state at the end: %.1f MB", memory(b), mb(pebble))
	b.ReportMetric(median(rates), "events/s")
	b.ReportMetric(slices.Min(rates), "worst_events/s")
	b.ReportMetric(median(prodRates), "ingest_events/s")
	b.ReportMetric(median(rates)/median(prodRates), "ratio")
	b.ReportMetric(mb(rss), "peak_rss_MB")
	b.ReportMetric(mb(pebble), "pebble_MB")
	b.ReportMetric(0, "ns/op") // the whole run: meaningless
}

// scaleRun is what one run of BenchmarkComposeScale measured.
type scaleRun struct {
	events   int
	took     time.Duration // first produce → compose-ready received
	produced time.Duration // the time spent in Produce
	pebble   int64
}

func (r scaleRun) rate() float64        { return float64(r.events) / r.took.Seconds() }
func (r scaleRun) produceRate() float64 { return float64(r.events) / r.produced.Seconds() }

func benchScale(b *testing.B, n, run int) scaleRun {
	f := newBenchFixture(b)
	w := f.watch(b)
	stop := f.start(b)
	f.loadDefinition(b, w)
	stopProfile := startProfile(b)
	defer stopProfile() // also when the load fails: the profile says why
	l := f.load(b, w, n, fmt.Sprintf("run %d: ", run))
	stopProfile()
	if err := stop(); err != nil {
		b.Fatalf("processors: %v", err)
	}
	pebble := dirSize(b, f.stateDir)
	b.Logf("run %d: %d packages: tagged in after %v (produced in %v), ready after %v; %d compose-ready decisions, of %.1f MB; %d readiness decisions",
		run, n, l.tagged.Round(time.Millisecond), l.producedTags.Round(time.Millisecond), l.ready.Round(time.Millisecond),
		w.readyCount(), mb(int64(w.lastReadyBytes())), w.readinessCount())
	b.Logf("run %d: %s", run, f.runnerSummary(b))
	b.Logf("run %d: Pebble state %s", run, dirSizes(b, f.stateDir))
	return scaleRun{events: l.events, took: l.ready, produced: l.produced, pebble: pebble}
}

// BenchmarkComposeReadyLatency loads a compose of FACTORY2_COMPOSE_PACKAGES
// packages as BenchmarkComposeScale does, ready; then
// FACTORY2_COMPOSE_SAMPLES times makes it not ready and ready again: a new
// build of one package (a different one each time) is completed, tagged,
// signed and moved into f42-updates (the content changes; the compose is
// blocked by that build's gating), and once the compose processor has
// taken all of that in, the build's passing test result is produced alone.
// A sample is the time from that event's produce acknowledgement (the
// broker's ack of the record inside the ingest transaction, so the
// transaction's commit counts) to the compose-ready decision it triggers,
// received by a read_committed consumer polling continuously.
//
// Stages, each seen by read_committed consumers: input (ack → the test
// result visible: Kafka's own floor for a transactional producer), gating
// (→ gating's build view), members (→ compose-members' snapshot for the
// compose), compose (→ compose-ready).
func BenchmarkComposeReadyLatency(b *testing.B) {
	n := benchSize(b, envPackages, 20_000, 1)
	samples := benchSize(b, envSamples, 200, 1)
	for range b.N {
		benchReadyLatency(b, n, samples)
	}
}

func benchReadyLatency(b *testing.B, n, samples int) {
	acks := &ackHook{}
	f := newBenchFixture(b, acks)
	acks.topic = f.cat.Name(topics.EventsTest)
	w := f.watch(b)
	stop := f.start(b)
	defer func() {
		if err := stop(); err != nil {
			b.Errorf("processors: %v", err)
		}
	}()
	f.loadDefinition(b, w)
	l := f.load(b, w, n, "preload: ")
	b.Logf("preloaded %d packages (%d events) in %v", n, l.events, l.ready.Round(time.Millisecond))
	st := f.stages(b)
	adm := f.adm
	composeGroup := f.runners[2].Group()

	var lat, fromVisible, stInput, stGating, stMembers, stCompose []time.Duration
	var readyBytes int
	stopProfile := startProfile(b)
	defer stopProfile()
	b.ResetTimer()
	last := time.Now()
	for i := range samples {
		nvr := fmt.Sprintf("package%05d-1.2.3-%d.fc42", i%n, 2+i/n)
		evs := f.gen.lifecycle(nvr, avro.OutcomePassed)
		for _, e := range evs {
			e.Env().Origin = avro.Origin{MessageID: e.Env().ID}
		}
		trigger, untag := evs[len(evs)-1].Env().ID, evs[len(evs)-2].Env().ID
		st.want(untag, trigger)

		// Not ready: the new build is in the content, unsigned no more,
		// waiting for its test. Wait until the compose processor has
		// committed past the snapshot of the build's last change.
		f.produce(b, evs[:len(evs)-1])
		topic, part, off := st.waitMember(b, untag)
		waitCommittedPast(b, adm, composeGroup, topic, part, off)
		w.waitFor(b, f, benchWait, "the compose blocked by "+nvr, func(d *avro.ComposeReadyDecision) bool {
			return !d.Ready && slices.ContainsFunc(d.Unsatisfied, func(r avro.Requirement) bool { return r.SubjectID == nvr })
		})

		f.produce(b, evs[len(evs)-1:])
		produced := time.Now()
		ready := w.waitReady(b, trigger)
		ack := acks.last()
		lat = append(lat, ready.at.Sub(ack))
		fromVisible = append(fromVisible, ready.at.Sub(produced))
		readyBytes = ready.bytes
		if in, view, member, ok := st.times(trigger); ok {
			stInput = append(stInput, in.Sub(ack))
			stGating = append(stGating, view.Sub(in))
			stMembers = append(stMembers, member.Sub(view))
			stCompose = append(stCompose, ready.at.Sub(member))
		}
		if time.Since(last) > 5*time.Second {
			last = time.Now()
			progress(b, "%d of %d samples: ack → compose-ready %s", i+1, samples, dist(slices.Clone(lat)))
		}
	}
	b.StopTimer()
	stopProfile()
	p := percentiles(lat, 0.5, 0.9, 0.99, 1)
	b.ReportMetric(ms(p[0]), "p50_ms")
	b.ReportMetric(ms(p[1]), "p90_ms")
	b.ReportMetric(ms(p[2]), "p99_ms")
	b.ReportMetric(ms(p[3]), "max_ms")
	fp := percentiles(slices.Clone(stInput), 0.5, 0.99)
	b.ReportMetric(ms(fp[0]), "floor_p50_ms")
	b.ReportMetric(ms(fp[1]), "floor_p99_ms")
	b.ReportMetric(mb(peakRSS(b)), "peak_rss_MB")
	b.ReportMetric(0, "ns/op") // the whole run: meaningless
	// Benchmark output is cut after 10 lines.
	b.Logf("%d samples on a compose of %d packages (compose-ready of %.1f MB): ack → compose-ready %s",
		len(lat), n, mb(int64(readyBytes)), dist(lat))
	b.Logf("from Produce's return (committed and visible) → compose-ready: %s", dist(fromVisible))
	b.Logf("stages p50/p90/p99 ms: input (ack → test result visible) %s; gating (→ build view visible) %s; "+
		"members (→ member snapshot visible) %s; compose (→ compose-ready received) %s",
		short(stInput), short(stGating), short(stMembers), short(stCompose))
	b.Logf("%s", f.runnerSummary(b))
	b.Logf("%s; Pebble state %s", memory(b), dirSizes(b, f.stateDir))
}

// eventsPerPackage is the length of fixture.lifecycle.
const eventsPerPackage = 6

// benchFixture is a fresh catalog on the real broker (the e2e tests'
// catalog, engine and specs), a runner of each spec with its state under
// stateDir and its metrics in reg, and an ingest Producer. The runners
// share one block cache of the configuration's default size, as in
// cmd/factory2 (the e2e tests' runnerConfig gives each task a private one).
type benchFixture struct {
	// gen makes the events (env0, definition, lifecycle); gen.t is nil:
	// none of its methods that report to a test may be called.
	gen      *fixture
	env      *kafkatest.Env
	cat      *topics.Catalog
	codec    *avro.Codec
	runners  []*processors.Runner
	reg      *prometheus.Registry
	stateDir string
	prod     *ingest.Producer
	adm      *kadm.Client
}

// newBenchFixture returns a fixture, or skips b without a real broker.
// The topics and groups are deleted when b ends. hooks hook the ingest
// Producer's client.
func newBenchFixture(b *testing.B, hooks ...kgo.Hook) *benchFixture {
	b.Helper()
	env := kafkatest.RequireReal(b)
	f := &benchFixture{
		gen:      &fixture{clock: time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)},
		env:      env,
		reg:      prometheus.NewRegistry(),
		stateDir: b.TempDir(),
		adm:      kafkatest.Admin(b, env),
	}
	var err error
	if f.cat, err = catalog(kafkatest.UniqueName(b) + "."); err != nil {
		b.Fatal(err)
	}
	e, err := engine()
	if err != nil {
		b.Fatal(err)
	}
	if f.codec, err = avro.NewCodec(); err != nil {
		b.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cache := state.NewCache(benchCacheBytes)
	b.Cleanup(cache.Unref) // after the runners stop (start's Cleanup runs first)
	for _, s := range specs(f.cat, e) {
		cfg := runnerConfig(env.Brokers(), f.cat, f.codec, f.stateDir, log)
		cfg.Registerer, cfg.Cache = f.reg, cache
		r, err := processors.NewRunner(s, cfg) // adds its changelog to the catalog
		if err != nil {
			b.Fatal(err)
		}
		f.runners = append(f.runners, r)
	}
	// Registered after Admin's client closes, so it runs before that.
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, r := range f.runners {
			if _, err := f.adm.DeleteGroup(ctx, r.Group()); err != nil {
				b.Logf("deleting group %s: %v", r.Group(), err)
			}
		}
		if _, err := f.adm.DeleteTopics(ctx, topics.Names(f.cat.Specs())...); err != nil {
			b.Logf("deleting the benchmark's topics: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), benchWait)
	defer cancel()
	if _, err := f.cat.Ensure(ctx, kafkatest.Client(b, env)); err != nil {
		b.Fatal(err)
	}
	f.prod, err = ingest.NewProducer(ingest.ProducerConfig{Brokers: env.Brokers(), TransactionalID: f.cat.Prefix() + "hooks",
		Codec: f.codec, ClientOpts: []kgo.Opt{kgo.WithHooks(hooks...)}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(f.prod.Close)
	return f
}

// start runs the runners until the returned stop (or b's end).
func (f *benchFixture) start(b *testing.B) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	errs := make(chan error, len(f.runners))
	for _, r := range f.runners {
		go func() { errs <- r.Run(ctx) }()
	}
	var (
		once sync.Once
		err  error
	)
	stop = func() error {
		once.Do(func() {
			cancel()
			for range f.runners {
				err = errors.Join(err, <-errs)
			}
		})
		return err
	}
	b.Cleanup(func() { _ = stop() })
	return stop
}

// produce produces recs in one ingest batch.
func (f *benchFixture) produce(b *testing.B, recs []avro.Record) {
	b.Helper()
	parser := &ingest.Parser{Catalog: f.cat}
	evs, err := parser.Records(recs...)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), benchWait)
	defer cancel()
	if _, err := f.prod.Produce(ctx, evs); err != nil {
		b.Fatal(err)
	}
}

// loadDefinition produces the compose definition and waits until the
// empty compose is loaded (every runner has joined and taken it in).
func (f *benchFixture) loadDefinition(b *testing.B, w *watcher) {
	b.Helper()
	f.produce(b, []avro.Record{f.gen.definition()})
	w.waitFor(b, f, benchWait, "the empty compose loaded", func(d *avro.ComposeReadyDecision) bool {
		return len(d.Unsatisfied) > 0 && d.Unsatisfied[0].Type == compose.ReqEmpty
	})
}

// loaded is what load measured, from its first produce.
type loaded struct {
	events       int
	producedTags time.Duration // producing every event but the tests
	tagged       time.Duration // → the compose holds every build
	produced     time.Duration // time spent producing, in all
	ready        time.Duration // → compose-ready received
}

// load puts n packages into the compose, tests last, and waits for the
// compose-ready decision with all of them; it prints progress lines
// prefixed with what.
func (f *benchFixture) load(b *testing.B, w *watcher, n int, what string) loaded {
	b.Helper()
	var l loaded
	var sent atomic.Int64
	start := time.Now()
	defer f.progressEvery(b, w, 5*time.Second, func() string {
		return fmt.Sprintf("%s%v: %d of %d events produced", what, time.Since(start).Round(time.Second), sent.Load(), eventsPerPackage*n)
	})()
	var tests, batch []avro.Record
	flush := func() {
		if len(batch) == 0 {
			return
		}
		t := time.Now()
		f.produce(b, batch)
		l.produced += time.Since(t)
		sent.Add(int64(len(batch)))
		batch = batch[:0]
	}
	for i := range n {
		evs := f.gen.lifecycle(fmt.Sprintf("package%05d-1.2.3-1.fc42", i), avro.OutcomePassed)
		batch = append(batch, evs[:len(evs)-1]...)
		tests = append(tests, evs[len(evs)-1])
		if len(batch) >= batchEvents {
			flush()
		}
	}
	flush()
	l.producedTags = time.Since(start)
	// Every build is in the compose, blocked by its gating alone, before
	// any test: the compose is ready once, with all of them.
	w.waitFor(b, f, loadWait(n), fmt.Sprintf("the compose holding %d builds", n), func(d *avro.ComposeReadyDecision) bool {
		return d.Kind == avro.ComposeReadiness && d.Members == int64(n) && !slices.ContainsFunc(d.BlockerCounts, func(c avro.BlockerCount) bool {
			return c.Type != compose.ReqGatingFail && c.Type != compose.ReqGatingWait && c.Type != compose.ReqNoDecision
		})
	})
	l.tagged = time.Since(start)
	for i := 0; i < len(tests); i += batchEvents {
		batch = append(batch, tests[i:min(len(tests), i+batchEvents)]...)
		flush()
	}
	r := w.waitReadyWith(b, f, loadWait(n), n)
	l.ready = r.at.Sub(start)
	l.events = eventsPerPackage * n
	return l
}

// loadWait bounds how long a load of n packages may take: far more than
// this machine needs.
func loadWait(n int) time.Duration { return benchWait + time.Duration(n)*10*time.Millisecond }

// progressEvery prints line() and the last readiness every d until the
// returned stop.
func (f *benchFixture) progressEvery(b *testing.B, w *watcher, d time.Duration, line func() string) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				progress(b, "%s; %s%s; peak RSS %.0f MB", line(), w.summary(), f.aborts(b), mb(peakRSS(b)))
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

// aborts lists the runners' aborted transactions, if any.
func (f *benchFixture) aborts(b *testing.B) string {
	var parts []string
	for p, m := range f.metrics(b) {
		if n := m["factory2_processor_transaction_aborts_total"]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %.0f", p, n))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	slices.Sort(parts)
	return "; transactions aborted: " + strings.Join(parts, ", ")
}

// deadLettered returns the records each runner dead-lettered so far.
func (f *benchFixture) deadLettered(b *testing.B) map[string]float64 {
	out := map[string]float64{}
	for p, m := range f.metrics(b) {
		if n := m["factory2_processor_records_dead_lettered_total"]; n > 0 {
			out[p] = n
		}
	}
	return out
}

// metrics sums every series of the runners' metrics by processor and
// name: a counter's or gauge's value, a histogram's sum (and its count as
// name_count).
func (f *benchFixture) metrics(b *testing.B) map[string]map[string]float64 {
	b.Helper()
	mfs, err := f.reg.Gather()
	if err != nil {
		b.Fatal(err)
	}
	out := map[string]map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			p := ""
			for _, l := range m.GetLabel() {
				if l.GetName() == "processor" {
					p = l.GetValue()
				}
			}
			if out[p] == nil {
				out[p] = map[string]float64{}
			}
			switch {
			case m.Counter != nil:
				out[p][mf.GetName()] += m.Counter.GetValue()
			case m.Gauge != nil:
				out[p][mf.GetName()] += m.Gauge.GetValue()
			case m.Histogram != nil:
				out[p][mf.GetName()] += m.Histogram.GetSampleSum()
				out[p][mf.GetName()+"_count"] += float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return out
}

// runnerSummary says what each runner did, from its metrics.
func (f *benchFixture) runnerSummary(b *testing.B) string {
	all := f.metrics(b)
	var parts []string
	for _, r := range f.runners {
		name := strings.TrimPrefix(r.Group(), f.cat.Prefix())
		m := all[name]
		parts = append(parts, fmt.Sprintf("%s: %.0f in, %.0f out, %.0f dead-lettered, %.0f transactions (%.0f aborted; commit mean %.1f ms), Process mean %.1f µs/record",
			name, m["factory2_processor_records_processed_total"], m["factory2_processor_records_emitted_total"],
			m["factory2_processor_records_dead_lettered_total"], m["factory2_processor_transactions_total"],
			m["factory2_processor_transaction_aborts_total"],
			1e3*m["factory2_processor_commit_seconds"]/max(1, m["factory2_processor_commit_seconds_count"]),
			1e6*m["factory2_processor_process_seconds"]/max(1, m["factory2_processor_records_processed_total"])))
	}
	return strings.Join(parts, "; ")
}

// watcher reads the compose decisions read_committed from the start,
// continuously, and keeps the last readiness and every compose-ready's
// arrival.
type watcher struct {
	changed chan struct{} // a poll brought decisions
	mu      sync.Mutex
	last    *avro.ComposeReadyDecision // readiness
	nReady  int                        // readiness decisions
	ready   []readyAt
	err     error
}

// readyAt is a compose-ready decision as the watcher received it.
type readyAt struct {
	at      time.Time // the poll that brought it returned
	members int64
	origin  string // its trigger's Origin.MessageID
	bytes   int
}

func (f *benchFixture) watch(b *testing.B) *watcher {
	w := &watcher{changed: make(chan struct{}, 1)}
	cl := kafkatest.Client(b, f.env, kgo.ConsumeTopics(f.cat.Name(topics.DecisionsComposeReady)),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxBytes(64<<20), kgo.FetchMaxPartitionBytes(64<<20))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			fs := cl.PollFetches(ctx)
			now := time.Now()
			if ctx.Err() != nil || fs.IsClientClosed() {
				return
			}
			w.mu.Lock()
			fs.EachError(func(t string, p int32, err error) { w.err = errors.Join(w.err, fmt.Errorf("%s/%d: %w", t, p, err)) })
			fs.EachRecord(func(r *kgo.Record) {
				v, err := f.codec.Decode(r.Value)
				if err != nil {
					w.err = errors.Join(w.err, err)
					return
				}
				d, ok := v.(*avro.ComposeReadyDecision)
				switch {
				case !ok || d.ComposeID != composeID:
				case d.Kind == avro.ComposeReady:
					// (A decoded string may share memory with the whole
					// decision, manifest included: keep a copy.)
					w.ready = append(w.ready, readyAt{at: now, members: d.Members, origin: strings.Clone(d.Origin.MessageID), bytes: len(r.Value)})
				case d.Kind == avro.ComposeReadiness:
					w.last = d
					w.nReady++
				}
			})
			w.mu.Unlock()
			select {
			case w.changed <- struct{}{}:
			default:
			}
		}
	}()
	b.Cleanup(func() { cancel(); <-done }) // before the client closes
	return w
}

func (w *watcher) lastReadiness() *avro.ComposeReadyDecision {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.last
}

func (w *watcher) readyCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.ready)
}

func (w *watcher) readinessCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.nReady
}

func (w *watcher) lastReadyBytes() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.ready) == 0 {
		return 0
	}
	return w.ready[len(w.ready)-1].bytes
}

// summary is the last readiness: members and blockers.
func (w *watcher) summary() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.last == nil {
		return "no readiness yet"
	}
	var counts []string
	for _, c := range w.last.BlockerCounts {
		counts = append(counts, fmt.Sprintf("%s %d", c.Type, c.Count))
	}
	return fmt.Sprintf("last readiness (%d so far): %d members, ready %v, blockers [%s]; %d compose-ready",
		w.nReady, w.last.Members, w.last.Ready, strings.Join(counts, ", "), len(w.ready))
}

// until waits until ok (called with w.mu held) holds, failing b after
// timeout, if the watcher fails, or if a runner dead-letters a record.
func (w *watcher) until(b *testing.B, f *benchFixture, timeout time.Duration, what string, ok func() bool) {
	b.Helper()
	deadline := time.Now().Add(timeout)
	nextCheck := time.Now().Add(time.Second)
	for {
		w.mu.Lock()
		done, err := ok(), w.err
		w.mu.Unlock()
		if err != nil {
			b.Fatalf("reading the compose decisions: %v", err)
		}
		if done {
			return
		}
		if now := time.Now(); now.After(nextCheck) {
			nextCheck = now.Add(time.Second)
			if dl := f.deadLettered(b); len(dl) > 0 {
				b.Fatalf("waiting for %s: records were dead-lettered %v (the runners' log says why); %s; %s; %s", what, dl, w.summary(), f.runnerSummary(b), memory(b))
			}
			if now.After(deadline) {
				b.Fatalf("waiting for %s: not after %v; %s; %s; %s", what, timeout, w.summary(), f.runnerSummary(b), memory(b))
			}
		}
		select {
		case <-w.changed:
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// waitFor waits until the last readiness satisfies ok.
func (w *watcher) waitFor(b *testing.B, f *benchFixture, timeout time.Duration, what string, ok func(*avro.ComposeReadyDecision) bool) {
	b.Helper()
	w.until(b, f, timeout, what, func() bool { return w.last != nil && ok(w.last) })
}

// waitReadyWith waits for a compose-ready decision with n members.
func (w *watcher) waitReadyWith(b *testing.B, f *benchFixture, timeout time.Duration, n int) readyAt {
	b.Helper()
	var r readyAt
	w.until(b, f, timeout, fmt.Sprintf("compose-ready with %d members", n), func() bool {
		i := slices.IndexFunc(w.ready, func(r readyAt) bool { return r.members == int64(n) })
		if i >= 0 {
			r = w.ready[i]
		}
		return i >= 0
	})
	return r
}

// waitReady waits for the compose-ready decision that event id triggered.
func (w *watcher) waitReady(b *testing.B, id string) readyAt {
	b.Helper()
	var r readyAt
	deadline := time.Now().Add(benchWait)
	for {
		w.mu.Lock()
		i := slices.IndexFunc(w.ready, func(r readyAt) bool { return r.origin == id })
		if i >= 0 {
			r = w.ready[i]
		}
		w.mu.Unlock()
		if i >= 0 {
			return r
		}
		if time.Now().After(deadline) {
			b.Fatalf("no compose-ready from %s after %v; %s", id, benchWait, w.summary())
		}
		select {
		case <-w.changed:
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// stageWatch reads, read_committed from their current ends, the test
// results, gating's build views and compose-members' snapshots, and keeps
// when the records of wanted events were received: a build view and a
// snapshot by their Origin.MessageID (their trigger's), a test result by
// its id.
type stageWatch struct {
	test, views, members string
	mu                   sync.Mutex
	wanted               map[string]bool
	seen                 map[stageKey]stageSeen
	err                  error
}

type stageKey struct{ topic, id string }

type stageSeen struct {
	at        time.Time
	partition int32
	offset    int64
}

func (f *benchFixture) stages(b *testing.B) *stageWatch {
	b.Helper()
	s := &stageWatch{
		test: f.cat.Name(topics.EventsTest), views: f.cat.Name(topics.GatingBuilds), members: f.cat.Name(topics.ComposeMembers),
		wanted: map[string]bool{}, seen: map[stageKey]stageSeen{},
	}
	ctx, cancel := context.WithTimeout(context.Background(), benchWait)
	defer cancel()
	ends, err := f.adm.ListEndOffsets(ctx, s.test, s.views, s.members)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		b.Fatal(err)
	}
	from := map[string]map[int32]kgo.Offset{}
	ends.Each(func(o kadm.ListedOffset) {
		if from[o.Topic] == nil {
			from[o.Topic] = map[int32]kgo.Offset{}
		}
		from[o.Topic][o.Partition] = kgo.NewOffset().At(o.Offset)
	})
	cl := kafkatest.Client(b, f.env, kgo.ConsumePartitions(from), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	pctx, pcancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			fs := cl.PollFetches(pctx)
			now := time.Now()
			if pctx.Err() != nil || fs.IsClientClosed() {
				return
			}
			s.mu.Lock()
			fs.EachError(func(t string, p int32, err error) { s.err = errors.Join(s.err, fmt.Errorf("%s/%d: %w", t, p, err)) })
			fs.EachRecord(func(r *kgo.Record) {
				v, err := f.codec.Decode(r.Value)
				if err != nil {
					s.err = errors.Join(s.err, err)
					return
				}
				id := v.Env().Origin.MessageID
				if r.Topic == s.test {
					id = v.Env().ID
				}
				k := stageKey{r.Topic, strings.Clone(id)}
				if _, dup := s.seen[k]; s.wanted[id] && !dup {
					s.seen[k] = stageSeen{now, r.Partition, r.Offset}
				}
			})
			s.mu.Unlock()
		}
	}()
	b.Cleanup(func() { pcancel(); <-done })
	return s
}

// want adds events whose records to keep.
func (s *stageWatch) want(ids ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		s.wanted[id] = true
	}
}

// waitMember waits for compose-members' snapshot from event id and
// returns its place in the members topic.
func (s *stageWatch) waitMember(b *testing.B, id string) (topic string, partition int32, offset int64) {
	b.Helper()
	deadline := time.Now().Add(benchWait)
	for {
		s.mu.Lock()
		seen, ok := s.seen[stageKey{s.members, id}]
		err := s.err
		s.mu.Unlock()
		if err != nil {
			b.Fatalf("reading the stages: %v", err)
		}
		if ok {
			return s.members, seen.partition, seen.offset
		}
		if time.Now().After(deadline) {
			b.Fatalf("no member snapshot from %s after %v", id, benchWait)
		}
		time.Sleep(time.Millisecond)
	}
}

// times returns when the records of trigger id were received.
func (s *stageWatch) times(id string) (input, view, member time.Time, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i, ok1 := s.seen[stageKey{s.test, id}]
	v, ok2 := s.seen[stageKey{s.views, id}]
	m, ok3 := s.seen[stageKey{s.members, id}]
	return i.at, v.at, m.at, ok1 && ok2 && ok3
}

// waitCommittedPast waits until group has committed past the record at
// offset of topic's partition.
func waitCommittedPast(b *testing.B, adm *kadm.Client, group, topic string, partition int32, offset int64) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), benchWait)
	defer cancel()
	for {
		offs, err := adm.FetchOffsets(ctx, group)
		if err == nil {
			err = offs.Error()
		}
		if err == nil {
			if o, ok := offs.Lookup(topic, partition); ok && o.Err == nil && o.At > offset {
				return
			}
			err = fmt.Errorf("not yet")
		}
		if ctx.Err() != nil {
			b.Fatalf("group %s has not committed past %s/%d@%d: %v", group, topic, partition, offset, err)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// ackHook keeps when the broker last acknowledged a record of topic.
type ackHook struct {
	topic string
	at    atomic.Int64 // UnixNano
}

func (h *ackHook) OnProduceRecordUnbuffered(r *kgo.Record, err error) {
	if err == nil && r.Topic == h.topic {
		h.at.Store(time.Now().UnixNano())
	}
}

func (h *ackHook) last() time.Time { return time.Unix(0, h.at.Load()) }

// peakRSS is the process's peak resident set size (VmHWM), in bytes.
func peakRSS(b *testing.B) int64 {
	b.Helper()
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.SplitSeq(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				b.Fatalf("VmHWM %q: %v", v, err)
			}
			return kb << 10
		}
	}
	b.Fatal("no VmHWM in /proc/self/status")
	return 0
}

// memory says where the process's memory is: its peak RSS, what the Go
// runtime holds (the rest is C memory: Pebble's block cache and memtables,
// with cgo). With FACTORY2_BENCH_HEAPPROFILE=<file> it writes a heap
// profile there first, while the runners still run (go test -memprofile
// writes its own after they have stopped).
func memory(b *testing.B) string {
	if path := os.Getenv("FACTORY2_BENCH_HEAPPROFILE"); path != "" {
		runtime.GC()
		fh, err := os.Create(path)
		if err == nil {
			err = errors.Join(pprof.WriteHeapProfile(fh), fh.Close())
		}
		if err != nil {
			b.Errorf("heap profile: %v", err)
		}
	}
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return fmt.Sprintf("peak RSS %.0f MB (this process: runners, producer, consumers; not the broker); Go runtime: %.0f MB from the OS, heap %.0f MB in use now; the rest is C memory (Pebble's cache and memtables)",
		mb(peakRSS(b)), mb(int64(m.Sys-m.HeapReleased)), mb(int64(m.HeapInuse)))
}

// dirSize is the bytes of the files under dir.
func dirSize(b *testing.B, dir string) int64 {
	b.Helper()
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		n += fi.Size()
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return n
}

// dirSizes is the total under dir, and per subdirectory (processor).
func dirSizes(b *testing.B, dir string) string {
	b.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		b.Fatal(err)
	}
	var parts []string
	for _, e := range ents {
		if e.IsDir() {
			parts = append(parts, fmt.Sprintf("%s %.1f MB", e.Name(), mb(dirSize(b, filepath.Join(dir, e.Name())))))
		}
	}
	return fmt.Sprintf("%.1f MB (%s)", mb(dirSize(b, dir)), strings.Join(parts, ", "))
}

// startProfile starts a CPU profile into the file named by
// FACTORY2_BENCH_CPUPROFILE, if set, and returns its stop (idempotent).
func startProfile(b *testing.B) (stop func()) {
	path := os.Getenv("FACTORY2_BENCH_CPUPROFILE")
	if path == "" {
		return func() {}
	}
	fh, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(fh); err != nil {
		b.Fatal(err)
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			pprof.StopCPUProfile()
			if err := fh.Close(); err != nil {
				b.Error(err)
			}
		})
	}
}

// progress prints a line about b's progress at once: a benchmark's log is
// printed only at its end, and cut to 10 lines.
func progress(b *testing.B, format string, args ...any) {
	fmt.Printf("%s: %s\n", b.Name(), fmt.Sprintf(format, args...))
}

// percentiles returns the q-quantiles of ds (nearest rank), sorting ds.
func percentiles(ds []time.Duration, qs ...float64) []time.Duration {
	slices.Sort(ds)
	out := make([]time.Duration, len(qs))
	if len(ds) == 0 {
		return out
	}
	for i, q := range qs {
		out[i] = ds[min(len(ds)-1, int(q*float64(len(ds))))]
	}
	return out
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

func mb(n int64) float64 { return float64(n) / (1 << 20) }

// short formats the p50/p90/p99 of ds in milliseconds.
func short(ds []time.Duration) string {
	p := percentiles(ds, 0.5, 0.9, 0.99)
	return fmt.Sprintf("%.1f/%.1f/%.1f", ms(p[0]), ms(p[1]), ms(p[2]))
}

// dist formats the p50/p90/p99/max of ds in milliseconds.
func dist(ds []time.Duration) string {
	p := percentiles(ds, 0.5, 0.9, 0.99, 1)
	return fmt.Sprintf("p50 %.1f p90 %.1f p99 %.1f max %.1f ms (n=%d)", ms(p[0]), ms(p[1]), ms(p[2]), ms(p[3]), len(ds))
}

func median(xs []float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func fmtRates(xs []float64) string {
	var parts []string
	for _, x := range xs {
		parts = append(parts, fmt.Sprintf("%.0f", x))
	}
	return strings.Join(parts, ", ")
}
