package processors_test

// Benchmarks of the runtime against the real broker (they skip without
// FACTORY2_KAFKA_BROKERS). Each iteration works on fresh topics, so run
// them with -benchtime 1x:
//
//	FACTORY2_KAFKA_BROKERS=127.0.0.1:29092 go test -run '^$' -bench . -benchtime 1x ./processors/
//
// BenchmarkKafkaStreams also needs the Kafka Streams peer of deploy/kstreams,
// which deploy/bench.sh (make bench) builds; it skips without
// FACTORY2_KSTREAMS_CLASSPATH.
//
// Targets: the counter at ≥100k events/s and ≥30% of a plain consumer's
// rate on the same topic; a restore at ≥300k changelog records/s; the
// counter and the two-input aggregate at ≥3× Kafka Streams with one stream
// thread each, ≥2.5× with as many threads as factory2 uses.
//
// Sizes come from the environment: FACTORY2_BENCH_EVENTS (200,000) and
// FACTORY2_BENCH_KEYS (10,000) for the runner benchmarks,
// FACTORY2_BENCH_ROUNDS (3) and FACTORY2_BENCH_THREADS (the number of CPUs)
// for BenchmarkKafkaStreams.
//
// -cpuprofile also profiles the set-up (producing the events); set
// FACTORY2_BENCH_CPUPROFILE=<file> to profile only the timed part.

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/factory2/factory2/avro"
	"github.com/factory2/factory2/internal/cpustat"
	"github.com/factory2/factory2/internal/kafkatest"
	"github.com/factory2/factory2/processors"
	"github.com/factory2/factory2/topics"
)

const (
	benchEvents     = 200_000
	benchPartitions = 6
	benchKeys       = 10_000
	benchRounds     = 3
	// benchChangelog is the number of changelog records BenchmarkRestore
	// restores, over benchChangelogKeys keys (several versions per key, as
	// in a changelog that has not been compacted yet).
	benchChangelog     = 200_000
	benchChangelogKeys = 50_000
	benchTimeout       = 5 * time.Minute
	// endPoll is how often a run is checked for its end: a fixed 10 ms on
	// both sides, so that no run is rounded up to the next check of a
	// back-off (kafkatest.WaitFor's pauses grow to 500 ms).
	endPoll = 10 * time.Millisecond
)

// benchSizes are the sizes of the runner benchmarks.
type benchSizes struct {
	events, keys, rounds, threads int
}

// sizes returns the default sizes, overridden by the environment.
func sizes(b *testing.B) benchSizes {
	b.Helper()
	s := benchSizes{events: benchEvents, keys: benchKeys, rounds: benchRounds, threads: runtime.NumCPU()}
	for _, v := range []struct {
		env string
		to  *int
		min int
	}{
		{"FACTORY2_BENCH_EVENTS", &s.events, 2},
		{"FACTORY2_BENCH_KEYS", &s.keys, 1},
		{"FACTORY2_BENCH_ROUNDS", &s.rounds, 1},
		{"FACTORY2_BENCH_THREADS", &s.threads, 1},
	} {
		str := os.Getenv(v.env)
		if str == "" {
			continue
		}
		n, err := strconv.Atoi(str)
		if err != nil || n < v.min {
			b.Fatalf("%s=%q: want an integer of at least %d", v.env, str, v.min)
		}
		*v.to = n
	}
	return s
}

// workload is a processor the runtime benchmarks run: on a Runner, and in
// BenchmarkKafkaStreams on the Kafka Streams peer too, whose
// deploy/kstreams/.../Workloads.java has the same logic and writes the
// same state values and outputs.
type workload struct {
	// name is the processor's, and the peer's name for the workload.
	name  string
	store string
	// inputs are the catalog aliases of the co-partitioned inputs;
	// produceEvents spreads the events over them.
	inputs       []string
	newProcessor func(inputs []string, out string) processors.Processor
}

var (
	counterWorkload = workload{
		name: "counter", store: "counts", inputs: []string{topics.EventsBuild},
		newProcessor: func(_ []string, out string) processors.Processor { return counter{out: out} },
	}
	aggregateWorkload = workload{
		name: "aggregate", store: aggStore, inputs: []string{topics.EventsBuild, topics.EventsTest},
		newProcessor: func(inputs []string, out string) processors.Processor {
			return aggregator{builds: inputs[0], out: out}
		},
	}
)

// spec is w as the processor name, reading inputs (full names) and
// emitting to out.
func (w workload) spec(name string, inputs []string, out string) processors.Spec {
	return processors.Spec{
		Name:    name,
		Inputs:  inputs,
		Outputs: []string{out},
		Stores:  []string{w.store},
		New:     func(int32) processors.Processor { return w.newProcessor(inputs, out) },
	}
}

// inputNames are the full names of w's inputs in cat.
func (w workload) inputNames(cat *topics.Catalog) []string {
	names := make([]string, len(w.inputs))
	for i, alias := range w.inputs {
		names[i] = cat.Name(alias)
	}
	return names
}

// aggStore is aggregator's store.
const aggStore = "agg"

// aggregator is the benchmarks' two-input aggregate, gating-like: per key,
// how many build events (the first input) and how many test events (the
// second) were seen, as two 8-byte big-endian counts; every input emits
// the key's decision, "ready" once both kinds were seen, else "waiting".
type aggregator struct{ builds, out string }

func (a aggregator) Process(ctx *processors.Context, in *processors.Input) error {
	ev := in.Record.(*avro.BuildEvent)
	v, ok, err := ctx.Get(aggStore, in.Key)
	if err != nil {
		return err
	}
	var builds, tests uint64
	if ok {
		if len(v) != 16 {
			return fmt.Errorf("aggregator: state of %q is %d bytes, want 16", in.Key, len(v))
		}
		builds, tests = binary.BigEndian.Uint64(v), binary.BigEndian.Uint64(v[8:])
	}
	if in.Topic == a.builds {
		builds++
	} else {
		tests++
	}
	if err := ctx.Put(aggStore, in.Key, binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(make([]byte, 0, 16), builds), tests)); err != nil {
		return err
	}
	decision := "waiting"
	if builds > 0 && tests > 0 {
		decision = "ready"
	}
	out := &avro.BuildEvent{NVR: ev.NVR, Kind: decision, Release: strconv.FormatUint(builds, 10) + "/" + strconv.FormatUint(tests, 10)}
	out.ID = ev.ID
	ctx.Emit(a.out, in.Key, out)
	return nil
}

// benchEnv returns the real brokers, or skips b.
func benchEnv(b *testing.B) *kafkatest.Env {
	b.Helper()
	if os.Getenv(kafkatest.EnvBrokers) == "" {
		b.Skipf("needs a real Kafka broker: set %s", kafkatest.EnvBrokers)
	}
	return kafkatest.Cluster(b)
}

// benchFixture is newFixture for a benchmark: fresh topics with
// benchPartitions partitions, created, the changelogs of the counter and
// of the aggregate included. They are deleted when b ends, with every
// topic added to the catalog meanwhile (a topic deleted already is no
// error).
func benchFixture(b *testing.B, env *kafkatest.Env) *fixture {
	b.Helper()
	cat, err := topics.New(topics.Config{Prefix: kafkatest.UniqueName(b) + ".", Partitions: benchPartitions, Replication: 1, InputRetentionMS: -1, DecisionRetentionMS: -1})
	if err != nil {
		b.Fatal(err)
	}
	f := &fixture{env: env, cat: cat, in: cat.Name(topics.EventsBuild), out: cat.Name(topics.DecisionsGating)}
	cat.AddChangelog(f.spec().Name, "counts")
	cat.AddChangelog(aggregateWorkload.name, aggregateWorkload.store)
	cl := kafkatest.Client(b, env)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := cat.Ensure(ctx, cl); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := deleteTopics(ctx, kadm.NewClient(cl), topics.Names(cat.Specs())...); err != nil {
			b.Logf("deleting the benchmark's topics: %v", err)
		}
	})
	return f
}

// deleteTopics deletes names; one that does not exist is no error.
func deleteTopics(ctx context.Context, adm *kadm.Client, names ...string) error {
	resp, err := adm.DeleteTopics(ctx, names...)
	if err != nil {
		return err
	}
	var errs []error
	for _, r := range resp.Sorted() {
		if r.Err != nil && !errors.Is(r.Err, kerr.UnknownTopicOrPartition) {
			errs = append(errs, fmt.Errorf("%s: %w", r.Topic, r.Err))
		}
	}
	return errors.Join(errs...)
}

// createTopics creates topics (name → configs, nil for the broker's
// defaults) with benchPartitions partitions each, waits until the
// broker's metadata shows all their partitions led, and returns their
// deletion.
func createTopics(b *testing.B, adm *kadm.Client, ts map[string]map[string]*string) (drop func()) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var names []string
	for name, configs := range ts {
		resp, err := adm.CreateTopic(ctx, benchPartitions, -1, configs, name)
		if err == nil {
			err = resp.Err
		}
		if err != nil {
			b.Fatalf("creating topic %s: %v", name, err)
		}
		names = append(names, name)
	}
	kafkatest.WaitFor(b, time.Minute, func() error {
		details, err := adm.ListTopics(ctx, names...)
		if err != nil {
			return err
		}
		for _, name := range names {
			d, ok := details[name]
			switch {
			case !ok:
				return fmt.Errorf("topic %s not in the metadata yet", name)
			case d.Err != nil:
				return fmt.Errorf("topic %s: %w", name, d.Err)
			case len(d.Partitions) != benchPartitions:
				return fmt.Errorf("topic %s has %d partitions in the metadata, want %d", name, len(d.Partitions), benchPartitions)
			}
			for _, p := range d.Partitions {
				if p.Err != nil || p.Leader < 0 {
					return fmt.Errorf("topic %s partition %d has no leader yet (%v)", name, p.Partition, p.Err)
				}
			}
		}
		return nil
	})
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := deleteTopics(ctx, adm, names...); err != nil {
			b.Logf("deleting topics: %v", err)
		}
	}
}

// produceEvents writes n counter events over keys keys to inputs: event i
// goes to inputs[i%len(inputs)] with key eventKey(i/len(inputs), keys), so
// that every key has events on every input. With one input, event i has
// key eventKey(i, keys).
func produceEvents(b *testing.B, env *kafkatest.Env, inputs []string, codec processors.Codec, n, keys int) {
	b.Helper()
	cl := kafkatest.Client(b, env, kgo.ProducerBatchMaxBytes(1<<20))
	ctx, cancel := context.WithTimeout(context.Background(), benchTimeout)
	defer cancel()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		perr error
	)
	for i := range n {
		ev := &avro.BuildEvent{NVR: eventKey(i/len(inputs), keys), Kind: avro.BuildTag}
		ev.ID = fmt.Sprintf("ev-%d", i)
		v, err := codec.Encode(ev)
		if err != nil {
			b.Fatal(err)
		}
		wg.Add(1)
		cl.Produce(ctx, &kgo.Record{Topic: inputs[i%len(inputs)], Key: []byte(ev.NVR), Value: v}, func(_ *kgo.Record, err error) {
			defer wg.Done()
			if err != nil {
				mu.Lock()
				perr = err
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if perr != nil {
		b.Fatalf("producing events: %v", perr)
	}
}

// BenchmarkExactlyOnceCounter compares, on the same pre-produced topic, a
// plain read_committed consumer reading every event with a Runner running
// the counter (decode, state read and write, output, changelog, commit)
// from its start until the group's committed offsets cover every event.
// The json sub-benchmark uses the tests' JSON codec; binary a minimal
// hand-written one, which leaves mostly the runtime's own cost.
func BenchmarkExactlyOnceCounter(b *testing.B) {
	env := benchEnv(b)
	for _, codec := range []struct {
		name  string
		codec processors.Codec
	}{
		{"json", jsonCodec{}},
		{"binary", binCodec{}},
	} {
		b.Run(codec.name, func(b *testing.B) { benchRunner(b, env, counterWorkload, codec.codec) })
	}
}

// BenchmarkTwoInputAggregate is BenchmarkExactlyOnceCounter for a
// gating-like processor of two co-partitioned inputs (aggregator, binary
// codec): half the events on each input, one state value per key merging
// both, one output per input.
func BenchmarkTwoInputAggregate(b *testing.B) {
	benchRunner(b, benchEnv(b), aggregateWorkload, binCodec{})
}

// benchRunner times a plain consumer and then a Runner of w on the same
// fresh input, once per iteration.
func benchRunner(b *testing.B, env *kafkatest.Env, w workload, codec processors.Codec) {
	size := sizes(b)
	adm := kafkatest.Admin(b, env)
	var rawTotal, runTotal time.Duration
	for range b.N {
		b.StopTimer()
		f := benchFixture(b, env)
		inputs := w.inputNames(f.cat)
		produceEvents(b, env, inputs, codec, size.events, size.keys)

		raw := consumeAll(b, env, inputs, size.events)
		rawTotal += raw

		run := runFactory2(b, env, adm, f.cat, w.spec(w.name, inputs, f.out), codec, size.events, 0)
		runTotal += run.took
		b.Logf("raw consumer: %d events in %v; runner: %v", size.events, raw.Round(time.Millisecond), run)
	}
	rawRate := float64(b.N*size.events) / rawTotal.Seconds()
	runRate := float64(b.N*size.events) / runTotal.Seconds()
	b.ReportMetric(runRate, "events/s")
	b.ReportMetric(rawRate, "raw_events/s")
	b.ReportMetric(runRate/rawRate, "ratio")
}

// run is one timed run of a Runner or of the Kafka Streams peer: from its
// start until its group's committed offsets covered every event.
type run struct {
	events int
	took   time.Duration
	// firstCommit is when the group's committed offsets first moved, and
	// firstCommitted how many events they covered then.
	firstCommit    time.Duration
	firstCommitted int64
	// detail is what the side itself counted.
	detail string
}

// rate is the events per second of the whole run, start-up included.
func (r run) rate() float64 { return float64(r.events) / r.took.Seconds() }

// steadyRate is the events per second committed after the first commit:
// the rate without start-up (group join, producer id, task creation). A
// run whose first commit covered every event has none: rate stands in.
func (r run) steadyRate() float64 {
	if r.firstCommitted >= int64(r.events) {
		return r.rate()
	}
	return float64(int64(r.events)-r.firstCommitted) / (r.took - r.firstCommit).Seconds()
}

func (r run) String() string {
	return fmt.Sprintf("%d events in %v, %.0f events/s (first commit after %v, %.0f events/s after it; %s)",
		r.events, r.took.Round(time.Millisecond), r.rate(), r.firstCommit.Round(time.Millisecond), r.steadyRate(), r.detail)
}

// runFactory2 runs spec (its topics exist) from the start of its inputs,
// with threads threads when positive (see setThreads), and times it.
func runFactory2(b *testing.B, env *kafkatest.Env, adm *kadm.Client, cat *topics.Catalog, spec processors.Spec, codec processors.Codec, n, threads int) run {
	b.Helper()
	reg := prometheus.NewRegistry()
	cfg := processors.Config{
		Brokers:    env.Brokers(),
		InstanceID: "bench",
		Catalog:    cat,
		Codec:      codec,
		StateDir:   b.TempDir(),
		Registerer: reg,
	}
	if threads > 0 {
		cfg.Threads = threads
	}
	r, err := processors.NewRunner(spec, cfg)
	if err != nil {
		b.Fatal(err)
	}
	stopProfile := startProfile(b)
	cpu := takeCPU(b)
	b.StartTimer()
	begin := time.Now()
	stop := startRunner(b, r)
	run := waitCommitted(b, adm, r.Group(), n, begin, nil)
	b.StopTimer()
	used := cpuSince(b, cpu)
	stopProfile()
	if err := stop(); err != nil {
		b.Fatalf("runner: %v", err)
	}
	run.detail = fmt.Sprintf(
		"%v transactions taking %.3fs to commit; %.3fs in Process; %v changelog records; %v",
		metricValue(b, reg, "factory2_processor_transactions_total"), metricValue(b, reg, "factory2_processor_commit_seconds"),
		metricValue(b, reg, "factory2_processor_process_seconds"), metricValue(b, reg, "factory2_processor_changelog_records_total"), used)
	return run
}

// waitCommitted returns the run of group since begin, once its committed
// offsets add up to n: every event consumed, and the transaction that
// consumed the last one, outputs included, committed. It checks every
// endPoll, calling check first (nil: none); an error from check, or
// benchTimeout, fails b.
func waitCommitted(b *testing.B, adm *kadm.Client, group string, n int, begin time.Time, check func() error) run {
	b.Helper()
	tick := time.NewTicker(endPoll)
	defer tick.Stop()
	r := run{events: n}
	var last error
	for {
		if check != nil {
			if err := check(); err != nil {
				b.Fatal(err)
			}
		}
		sum, err := committed(adm, group)
		now := time.Since(begin)
		switch {
		case err != nil:
			last = err
		case sum >= int64(n):
			if r.firstCommit == 0 {
				r.firstCommit = now
			}
			r.took = now
			return r
		case sum > 0 && r.firstCommit == 0:
			r.firstCommit, r.firstCommitted = now, sum
		}
		if now > benchTimeout {
			b.Fatalf("group %s committed %d of %d events after %v (last error: %v)", group, sum, n, benchTimeout, last)
		}
		<-tick.C
	}
}

// committed is the sum of group's committed offsets.
func committed(adm *kadm.Client, group string) (int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	offs, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return 0, err
	}
	sum := int64(0)
	offs.Each(func(o kadm.OffsetResponse) { sum += o.At })
	return sum, nil
}

// consumeAll reads n records of inputs with a plain read_committed
// consumer and returns how long that took, connection included.
func consumeAll(b *testing.B, env *kafkatest.Env, inputs []string, n int) time.Duration {
	b.Helper()
	begin := time.Now()
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(env.Brokers()...),
		kgo.ConsumeTopics(inputs...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
	)
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), benchTimeout)
	defer cancel()
	got := 0
	for got < n {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			b.Fatalf("raw consumer: %d of %d records: %v", got, n, err)
		}
		fs.EachError(func(t string, p int32, err error) { b.Fatalf("raw consumer: %s/%d: %v", t, p, err) })
		got += fs.NumRecords()
	}
	return time.Since(begin)
}

// binCodec is a minimal codec of the counter's BuildEvents: a marker byte
// and the length-prefixed ID, NVR, Kind and Release.
type binCodec struct{}

func (binCodec) Encode(r avro.Record) ([]byte, error) {
	e, ok := r.(*avro.BuildEvent)
	if !ok {
		return nil, fmt.Errorf("binCodec: cannot encode %T", r)
	}
	b := []byte{0xF3}
	for _, s := range []string{e.ID, e.NVR, e.Kind, e.Release} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return b, nil
}

func (binCodec) Decode(b []byte) (avro.Record, error) {
	if len(b) == 0 || b[0] != 0xF3 {
		return nil, errors.New("binCodec: not a binCodec record")
	}
	b = b[1:]
	var e avro.BuildEvent
	for _, s := range []*string{&e.ID, &e.NVR, &e.Kind, &e.Release} {
		n, w := binary.Uvarint(b)
		if w <= 0 || uint64(len(b)-w) < n {
			return nil, errors.New("binCodec: truncated record")
		}
		*s = string(b[w : w+int(n)])
		b = b[w+int(n):]
	}
	return &e, nil
}

// BenchmarkKafkaStreams runs each workload on a Runner and on the Kafka
// Streams peer of deploy/kstreams (the same logic in the Processor API, a
// cached RocksDB store with a changelog, exactly_once_v2, the runner's
// commit interval, linger, compression, poll size and fetch wait; its
// README has the table), alternately, on one pre-produced input (binary
// codec): every run reads it from offset 0 with a group, an output and a
// changelog of its own, and ends when its group's committed offsets cover
// every event, checked every endPoll by the same code on both sides.
//
// Sub-benchmarks are workload and thread count, 1 and
// FACTORY2_BENCH_THREADS (default: the number of CPUs): the peer's
// num.stream.threads and the runner's Config.Threads (see setThreads).
// Each iteration starts a fresh JVM and runs rounds 0 to
// FACTORY2_BENCH_ROUNDS, one run of each side per round, factory2 first in
// even rounds and second in odd ones; every run is printed (on stdout) as
// it ends. The peer's run in round 0 is the first of its JVM (cold: class
// loading, interpreted and JIT-compiled code), reported apart from the
// later, warm ones. Reported: each side's median and worst (lowest) rate,
// and factory2's median over the peer's warm median (ratio), cold median
// (ratio_cold) and worst over worst (ratio_worst); the log adds the rates
// after each run's first commit, start-up left out.
func BenchmarkKafkaStreams(b *testing.B) {
	env := benchEnv(b)
	classpath := os.Getenv("FACTORY2_KSTREAMS_CLASSPATH")
	if classpath == "" {
		b.Skip("needs the Kafka Streams peer: deploy/bench.sh builds deploy/kstreams and sets FACTORY2_KSTREAMS_CLASSPATH")
	}
	size := sizes(b)
	for _, w := range []workload{counterWorkload, aggregateWorkload} {
		for _, threads := range slices.Compact([]int{1, size.threads}) {
			b.Run(fmt.Sprintf("%s/threads=%d", w.name, threads), func(b *testing.B) {
				benchVersus(b, env, classpath, w, threads, size)
			})
		}
	}
}

func benchVersus(b *testing.B, env *kafkatest.Env, classpath string, w workload, threads int, size benchSizes) {
	b.StopTimer()
	adm := kafkatest.Admin(b, env)
	f2Threads := fmt.Sprintf("Config.Threads=%d", threads)
	var f2Runs, warmRuns, coldRuns []run
	for range b.N {
		f := benchFixture(b, env)
		inputs := w.inputNames(f.cat)
		produceEvents(b, env, inputs, binCodec{}, size.events, size.keys)
		p := startPeer(b, classpath, env.Brokers())
		for round := range size.rounds + 1 {
			factory2First := round%2 == 0
			for _, isF2 := range []bool{factory2First, !factory2First} {
				if isF2 {
					r := versusFactory2(b, env, adm, f.cat, w, inputs, round, threads, size.events)
					f2Runs = append(f2Runs, r)
					progress(b, "round %d: factory2: %v", round, r)
					continue
				}
				r := versusPeer(b, p, adm, f.cat, w, inputs, round, threads, size.events)
				jvm := "warm"
				if round == 0 {
					jvm = "cold"
					coldRuns = append(coldRuns, r)
				} else {
					warmRuns = append(warmRuns, r)
				}
				progress(b, "round %d: Kafka Streams, %s JVM: %v", round, jvm, r)
			}
		}
		if err := p.close(); err != nil {
			b.Errorf("Kafka Streams peer: %v", err)
		}
	}
	f2, warm, cold := rates(f2Runs, run.rate), rates(warmRuns, run.rate), rates(coldRuns, run.rate)
	f2Steady, warmSteady := rates(f2Runs, run.steadyRate), rates(warmRuns, run.steadyRate)
	// (The testing package keeps only the first 10 lines a benchmark logs.)
	b.Logf("%s, %d events over %d keys, %d partitions; factory2: %s; Kafka Streams: num.stream.threads=%d\n"+
		"factory2 events/s, by round:       %s; median %.0f, worst %.0f\n"+
		"Kafka Streams events/s, warm JVM:  %s; median %.0f, worst %.0f\n"+
		"Kafka Streams events/s, cold JVM:  %s\n"+
		"factory2/Kafka Streams: %.2f (medians, warm JVM), %.2f (worsts, warm JVM), %.2f (vs the cold JVM)\n"+
		"after the first commit (start-up left out): factory2 median %.0f, Kafka Streams warm median %.0f events/s, ratio %.2f",
		w.name, size.events, size.keys, benchPartitions, f2Threads, threads,
		fmtRates(f2), median(f2), slices.Min(f2), fmtRates(warm), median(warm), slices.Min(warm), fmtRates(cold),
		median(f2)/median(warm), slices.Min(f2)/slices.Min(warm), median(f2)/median(cold),
		median(f2Steady), median(warmSteady), median(f2Steady)/median(warmSteady))
	b.ReportMetric(median(f2), "events/s")
	b.ReportMetric(median(warm), "ks_events/s")
	b.ReportMetric(median(cold), "ks_cold_events/s")
	b.ReportMetric(median(f2)/median(warm), "ratio")
	b.ReportMetric(slices.Min(f2)/slices.Min(warm), "ratio_worst")
	b.ReportMetric(median(f2)/median(cold), "ratio_cold")
}

// BenchmarkThreads compares factory2 with one processing thread and with
// FACTORY2_BENCH_THREADS (default: the number of CPUs), for the counter
// and the two-input aggregate, on one pre-produced input (binary codec):
// rounds 0 to FACTORY2_BENCH_ROUNDS, one run of each per round, the
// one-thread run first in even rounds. Every run has a group, an output
// and a changelog of its own, and is printed as it ends, with where the
// machine's CPU went. Reported: each side's median rate, the ratio of the
// medians (target: ≥ 1.6 on the aggregate) and of the worsts, and the
// same after the first commit. With FACTORY2_BENCH_EVENTS raised (say to
// 1,000,000), start-up weighs less.
func BenchmarkThreads(b *testing.B) {
	env := benchEnv(b)
	size := sizes(b)
	if size.threads < 2 {
		b.Skipf("compares 1 thread with %d: set FACTORY2_BENCH_THREADS to 2 or more", size.threads)
	}
	for _, w := range []workload{counterWorkload, aggregateWorkload} {
		b.Run(w.name, func(b *testing.B) { benchThreads(b, env, w, size) })
	}
}

func benchThreads(b *testing.B, env *kafkatest.Env, w workload, size benchSizes) {
	b.StopTimer()
	adm := kafkatest.Admin(b, env)
	var one, many []run
	for range b.N {
		f := benchFixture(b, env)
		inputs := w.inputNames(f.cat)
		produceEvents(b, env, inputs, binCodec{}, size.events, size.keys)
		for round := range size.rounds + 1 {
			order := []int{1, size.threads}
			if round%2 == 1 {
				order = []int{size.threads, 1}
			}
			for _, threads := range order {
				r := versusFactory2(b, env, adm, f.cat, w, inputs, round, threads, size.events)
				if threads == 1 {
					one = append(one, r)
				} else {
					many = append(many, r)
				}
				progress(b, "round %d: %d thread(s): %v", round, threads, r)
			}
		}
	}
	r1, rn := rates(one, run.rate), rates(many, run.rate)
	s1, sn := rates(one, run.steadyRate), rates(many, run.steadyRate)
	b.Logf("%s, %d events over %d keys, %d partitions\n"+
		"1 thread, events/s by round:   %s; median %.0f, worst %.0f\n"+
		"%d threads, events/s by round:  %s; median %.0f, worst %.0f\n"+
		"%d threads / 1: %.2f (medians), %.2f (worsts); after the first commit: %.2f (medians)",
		w.name, size.events, size.keys, benchPartitions,
		fmtRates(r1), median(r1), slices.Min(r1),
		size.threads, fmtRates(rn), median(rn), slices.Min(rn),
		size.threads, median(rn)/median(r1), slices.Min(rn)/slices.Min(r1), median(sn)/median(s1))
	b.ReportMetric(median(rn), "events/s")
	b.ReportMetric(median(r1), "one_thread_events/s")
	b.ReportMetric(median(rn)/median(r1), "ratio")
	b.ReportMetric(slices.Min(rn)/slices.Min(r1), "ratio_worst")
	b.ReportMetric(median(sn)/median(s1), "ratio_steady")
}

// rates is rate of every run.
func rates(runs []run, rate func(run) float64) []float64 {
	xs := make([]float64, len(runs))
	for i, r := range runs {
		xs[i] = rate(r)
	}
	return xs
}

// progress prints a line about b's progress at once: a benchmark's log is
// printed only at its end, and cut to 10 lines.
func progress(b *testing.B, format string, args ...any) {
	fmt.Printf("%s: %s\n", b.Name(), fmt.Sprintf(format, args...))
}

// versusFactory2 is factory2's run in a round of BenchmarkKafkaStreams:
// a processor, output and changelog of its own, deleted afterwards.
func versusFactory2(b *testing.B, env *kafkatest.Env, adm *kadm.Client, cat *topics.Catalog, w workload, inputs []string, round, threads, n int) run {
	name := fmt.Sprintf("%s-t%d-r%d", w.name, threads, round)
	out := cat.Prefix() + "f2-" + name + ".out"
	changelog := cat.AddChangelog(name, w.store)
	drop := createTopics(b, adm, map[string]map[string]*string{out: nil, changelog: changelogConfigs(cat, w)})
	defer drop()
	return runFactory2(b, env, adm, cat, w.spec(name, inputs, out), binCodec{}, n, threads)
}

// versusPeer is the peer's run in a round of BenchmarkKafkaStreams: an
// application id (and so group), output and changelog of its own, deleted
// afterwards. The changelog is created beforehand, with the configs of
// factory2's, as factory2's is.
func versusPeer(b *testing.B, p *peer, adm *kadm.Client, cat *topics.Catalog, w workload, inputs []string, round, threads, n int) run {
	b.Helper()
	appID := fmt.Sprintf("%sks-%s-t%d-r%d", cat.Prefix(), w.name, threads, round)
	out := appID + ".out"
	// Kafka Streams' name for the changelog of a store.
	changelog := appID + "-" + w.store + "-changelog"
	drop := createTopics(b, adm, map[string]map[string]*string{out: nil, changelog: changelogConfigs(cat, w)})
	defer drop()

	prepare := fmt.Sprintf("prepare %s %s %d %s %s %s", w.name, appID, threads, b.TempDir(), out, strings.Join(inputs, ","))
	if _, err := p.call(prepare, "prepared", time.Minute); err != nil {
		b.Fatal(err)
	}
	cpu := takeCPU(b)
	b.StartTimer()
	begin := time.Now()
	if _, err := p.call("start", "started", time.Minute); err != nil {
		b.Fatal(err)
	}
	run := waitCommitted(b, adm, appID, n, begin, p.check)
	b.StopTimer()
	used := cpuSince(b, cpu)
	counts, err := p.call("stop", "stopped", 2*time.Minute)
	if err != nil {
		b.Fatal(err)
	}
	// The peer's JVM is "other" to cpustat.
	run.detail = fmt.Sprintf("%s; %v", counts, used)
	return run
}

// takeCPU samples the machine's CPU counters (see cpustat), or fails b.
func takeCPU(b *testing.B) cpustat.Sample {
	b.Helper()
	s, err := cpustat.Take()
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// cpuSince is the CPU used since s: whether the machine had a core to
// spare, and who used the rest.
func cpuSince(b *testing.B, s cpustat.Sample) cpustat.Usage {
	b.Helper()
	u, err := s.Since()
	if err != nil {
		b.Fatal(err)
	}
	return u
}

// changelogConfigs are the topic configs of w's changelog in cat.
func changelogConfigs(cat *topics.Catalog, w workload) map[string]*string {
	s, ok := cat.Lookup(cat.AddChangelog(w.name, w.store))
	if !ok {
		panic("changelog added but not found")
	}
	configs := make(map[string]*string, len(s.Configs))
	for k, v := range s.Configs {
		configs[k] = &v
	}
	return configs
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
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.FormatFloat(x, 'f', 0, 64)
	}
	return strings.Join(s, ", ")
}

// peer is the Kafka Streams application of deploy/kstreams in a JVM of
// its own, driven line by line on its stdin (the protocol is in
// Bench.java). A goroutine reads its stdout until the JVM exits; close
// joins it. Kafka's warnings and errors, on its stderr, are kept for the
// error messages.
type peer struct {
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	replies chan string // every stdout line but "failed ...", closed at exit
	failed  chan string // "failed ..." lines: a stream thread died
	stderr  *tailWriter

	closeOnce sync.Once
	closeErr  error
}

// startPeer starts the peer's JVM (java from JAVA_HOME, else PATH, with
// the options in FACTORY2_KSTREAMS_JVM_OPTS) and waits until it is ready;
// it is closed when b ends.
func startPeer(b *testing.B, classpath string, brokers []string) *peer {
	b.Helper()
	java := "java"
	if home := os.Getenv("JAVA_HOME"); home != "" {
		java = filepath.Join(home, "bin", "java")
	}
	args := strings.Fields(os.Getenv("FACTORY2_KSTREAMS_JVM_OPTS"))
	args = append(args, "-cp", classpath, "factory2.kstreams.Bench", strings.Join(brokers, ","))
	p := &peer{
		cmd:     exec.Command(java, args...),
		replies: make(chan string, 16),
		failed:  make(chan string, 16),
		stderr:  &tailWriter{},
	}
	p.cmd.Stderr = p.stderr
	stdin, err := p.cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	p.stdin = stdin
	if err := p.cmd.Start(); err != nil {
		b.Fatalf("starting the Kafka Streams peer: %v", err)
	}
	go p.read(stdout)
	b.Cleanup(func() {
		if err := p.close(); err != nil {
			b.Logf("Kafka Streams peer: %v", err)
		}
	})
	if _, err := p.call("", "ready", time.Minute); err != nil {
		b.Fatal(err)
	}
	return p
}

func (p *peer) read(stdout io.Reader) {
	defer close(p.replies)
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "failed ") {
			select {
			case p.failed <- line:
			default: // one is enough to fail the run
			}
			continue
		}
		p.replies <- line
	}
}

// call sends command (nothing if empty) and returns the rest of the
// JVM's reply, which must start with want.
func (p *peer) call(command, want string, timeout time.Duration) (string, error) {
	if command != "" {
		if _, err := io.WriteString(p.stdin, command+"\n"); err != nil {
			return "", fmt.Errorf("Kafka Streams peer: sending %q: %w", command, err)
		}
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case line, ok := <-p.replies:
		switch {
		case !ok:
			return "", fmt.Errorf("Kafka Streams peer exited; its log ends:\n%s", p.stderr)
		case line != want && !strings.HasPrefix(line, want+" "):
			return "", fmt.Errorf("Kafka Streams peer: %q: %s; its log ends:\n%s", command, line, p.stderr)
		}
		return strings.TrimPrefix(strings.TrimPrefix(line, want), " "), nil
	case msg := <-p.failed:
		return "", fmt.Errorf("Kafka Streams peer: %s; its log ends:\n%s", msg, p.stderr)
	case <-timer.C:
		return "", fmt.Errorf("Kafka Streams peer: no answer to %q within %v; its log ends:\n%s", command, timeout, p.stderr)
	}
}

// check fails when a stream thread of the peer has died.
func (p *peer) check() error {
	select {
	case msg := <-p.failed:
		return fmt.Errorf("Kafka Streams peer: %s; its log ends:\n%s", msg, p.stderr)
	default:
		return nil
	}
}

// close ends the peer's stdin, on which it closes what runs and exits,
// and waits for it; one still running after 90s is killed.
func (p *peer) close() error {
	p.closeOnce.Do(func() {
		_ = p.stdin.Close()
		kill := time.AfterFunc(90*time.Second, func() { _ = p.cmd.Process.Kill() })
		defer kill.Stop()
		for range p.replies {
		}
		if err := p.cmd.Wait(); err != nil {
			p.closeErr = fmt.Errorf("%w; its log ends:\n%s", err, p.stderr)
		}
	})
	return p.closeErr
}

// tailWriter keeps the last 8 KiB written to it.
type tailWriter struct {
	mu  sync.Mutex
	buf []byte
}

func (w *tailWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, b...)
	if over := len(w.buf) - 8<<10; over > 0 {
		w.buf = append(w.buf[:0], w.buf[over:]...)
	}
	return len(b), nil
}

func (w *tailWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return string(w.buf)
}

// BenchmarkRestore restores a changelog of benchChangelog records into an
// empty state directory with processors.Restore: the time a new instance,
// or one that lost its disk, needs before its tasks can process. The
// changelog is written directly, in transactions as a runner writes it.
func BenchmarkRestore(b *testing.B) {
	env := benchEnv(b)
	f := benchFixture(b, env)
	changelog := f.cat.AddChangelog(f.spec().Name, "counts")
	txn := kafkatest.Client(b, env,
		kgo.DefaultProduceTopic(changelog),
		kgo.TransactionalID(kafkatest.UniqueName(b)),
		kgo.ProducerBatchMaxBytes(1<<20),
	)
	ctx, cancel := context.WithTimeout(context.Background(), benchTimeout)
	defer cancel()
	const perTxn = 5000
	for from := 0; from < benchChangelog; from += perTxn {
		if err := txn.BeginTransaction(); err != nil {
			b.Fatal(err)
		}
		rs := make([]*kgo.Record, 0, perTxn)
		for i := from; i < min(from+perTxn, benchChangelog); i++ {
			rs = append(rs, &kgo.Record{Key: []byte(eventKey(i, benchChangelogKeys)), Value: binary.BigEndian.AppendUint64(nil, uint64(i/benchChangelogKeys+1))})
		}
		if err := txn.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			b.Fatal(err)
		}
		if err := txn.EndTransaction(ctx, kgo.TryCommit); err != nil {
			b.Fatal(err)
		}
	}

	var took time.Duration
	var restored int64
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		cfg := processors.Config{
			Brokers:    env.Brokers(),
			InstanceID: "bench",
			Catalog:    f.cat,
			Codec:      jsonCodec{},
			StateDir:   b.TempDir(),
		}
		stopProfile := startProfile(b)
		b.StartTimer()
		st, err := processors.Restore(ctx, f.spec(), cfg, nil)
		b.StopTimer()
		stopProfile()
		if err != nil {
			b.Fatal(err)
		}
		if st.Records != benchChangelog || st.Partitions != benchPartitions {
			b.Fatalf("restored %d records into %d tasks, want %d into %d", st.Records, st.Partitions, benchChangelog, benchPartitions)
		}
		restored += st.Records
		took += st.Took
		b.Logf("restored %d changelog records into %d tasks in %v", st.Records, st.Partitions, st.Took.Round(time.Millisecond))
	}
	b.ReportMetric(float64(restored)/took.Seconds(), "records/s")
}

// startProfile starts a CPU profile into the file named by
// FACTORY2_BENCH_CPUPROFILE, if set (the last iteration's is kept), and
// returns its stop.
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
	return func() {
		pprof.StopCPUProfile()
		if err := fh.Close(); err != nil {
			b.Error(err)
		}
	}
}

// startRunner runs r until the returned stop (or b's end) cancels it.
func startRunner(b *testing.B, r *processors.Runner) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- r.Run(ctx) }()
	var (
		once sync.Once
		err  error
	)
	stop = func() error {
		once.Do(func() { cancel(); err = <-errc })
		return err
	}
	b.Cleanup(func() { _ = stop() })
	return stop
}
