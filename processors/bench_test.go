package processors_test

// Benchmarks of the runtime against the real broker (they skip without
// FACTORY2_KAFKA_BROKERS). Each iteration works on fresh topics, so run
// them with -benchtime 1x:
//
//	FACTORY2_KAFKA_BROKERS=127.0.0.1:29092 go test -run '^$' -bench . -benchtime 1x ./processors/
//
// Targets: the counter at ≥100k events/s and ≥30% of a plain consumer's
// rate on the same topic; a restore at ≥300k changelog records/s.
//
// -cpuprofile also profiles the set-up (producing the events); set
// FACTORY2_BENCH_CPUPROFILE=<file> to profile only the timed part.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"runtime/pprof"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/factory2/factory2/avro"
	"github.com/factory2/factory2/internal/kafkatest"
	"github.com/factory2/factory2/processors"
	"github.com/factory2/factory2/topics"
)

const (
	benchEvents     = 200_000
	benchPartitions = 6
	benchKeys       = 10_000
	// benchChangelog is the number of changelog records BenchmarkRestore
	// restores, over benchChangelogKeys keys (several versions per key, as
	// in a changelog that has not been compacted yet).
	benchChangelog     = 200_000
	benchChangelogKeys = 50_000
	benchTimeout       = 5 * time.Minute
)

// benchEnv returns the real brokers, or skips b.
func benchEnv(b *testing.B) *kafkatest.Env {
	b.Helper()
	if os.Getenv(kafkatest.EnvBrokers) == "" {
		b.Skipf("needs a real Kafka broker: set %s", kafkatest.EnvBrokers)
	}
	return kafkatest.Cluster(b)
}

// benchFixture is newFixture for a benchmark: fresh topics with
// benchPartitions partitions, created, changelog included.
func benchFixture(b *testing.B, env *kafkatest.Env) *fixture {
	b.Helper()
	cat, err := topics.New(topics.Config{Prefix: kafkatest.UniqueName(b) + ".", Partitions: benchPartitions, Replication: 1, InputRetentionMS: -1, DecisionRetentionMS: -1})
	if err != nil {
		b.Fatal(err)
	}
	f := &fixture{env: env, cat: cat, in: cat.Name(topics.EventsBuild), out: cat.Name(topics.DecisionsGating)}
	cat.AddChangelog(f.spec().Name, "counts")
	cl := kafkatest.Client(b, env)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := cat.Ensure(ctx, cl); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		resp, err := kadm.NewClient(cl).DeleteTopics(ctx, topics.Names(cat.Specs())...)
		if err == nil {
			err = resp.Error()
		}
		if err != nil {
			b.Logf("deleting the benchmark's topics: %v", err)
		}
	})
	return f
}

// produceEvents writes n counter events over keys keys to f's input.
func produceEvents(b *testing.B, f *fixture, codec processors.Codec, n, keys int) {
	b.Helper()
	cl := kafkatest.Client(b, f.env, kgo.DefaultProduceTopic(f.in), kgo.ProducerBatchMaxBytes(1<<20))
	ctx, cancel := context.WithTimeout(context.Background(), benchTimeout)
	defer cancel()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		perr error
	)
	for i := range n {
		ev := &avro.BuildEvent{NVR: eventKey(i, keys), Kind: avro.BuildTag}
		ev.ID = fmt.Sprintf("ev-%d", i)
		v, err := codec.Encode(ev)
		if err != nil {
			b.Fatal(err)
		}
		wg.Add(1)
		cl.Produce(ctx, &kgo.Record{Key: []byte(ev.NVR), Value: v}, func(_ *kgo.Record, err error) {
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
		b.Run(codec.name, func(b *testing.B) { benchCounter(b, env, codec.codec) })
	}
}

func benchCounter(b *testing.B, env *kafkatest.Env, codec processors.Codec) {
	var rawTotal, runTotal time.Duration
	for range b.N {
		b.StopTimer()
		f := benchFixture(b, env)
		produceEvents(b, f, codec, benchEvents, benchKeys)

		raw := consumeAll(b, f, benchEvents)
		rawTotal += raw

		reg := prometheus.NewRegistry()
		r, err := processors.NewRunner(f.spec(), processors.Config{
			Brokers:    env.Brokers(),
			InstanceID: "bench",
			Catalog:    f.cat,
			Codec:      codec,
			StateDir:   b.TempDir(),
			Registerer: reg,
		})
		if err != nil {
			b.Fatal(err)
		}
		adm := kadm.NewClient(kafkatest.Client(b, env))
		stopProfile := startProfile(b)
		b.StartTimer()
		begin := time.Now()
		stop := startRunner(b, r)
		var firstAt time.Time
		kafkatest.WaitFor(b, benchTimeout, func() error {
			if firstAt.IsZero() && metricValue(b, reg, "factory2_processor_records_processed_total") > 0 {
				firstAt = time.Now()
			}
			return committedAll(adm, r.Group(), benchEvents)
		})
		took := time.Since(begin)
		b.StopTimer()
		stopProfile()
		runTotal += took
		if err := stop(); err != nil {
			b.Fatalf("runner: %v", err)
		}
		b.Logf("raw consumer: %d events in %v; runner: %d events in %v (first processed after %v; "+
			"%v transactions taking %.3fs to commit; %.3fs in Process; %v changelog records)",
			benchEvents, raw.Round(time.Millisecond), benchEvents, took.Round(time.Millisecond), firstAt.Sub(begin).Round(time.Millisecond),
			metricValue(b, reg, "factory2_processor_transactions_total"), metricValue(b, reg, "factory2_processor_commit_seconds"),
			metricValue(b, reg, "factory2_processor_process_seconds"), metricValue(b, reg, "factory2_processor_changelog_records_total"))
	}
	rawRate := float64(b.N*benchEvents) / rawTotal.Seconds()
	runRate := float64(b.N*benchEvents) / runTotal.Seconds()
	b.ReportMetric(runRate, "events/s")
	b.ReportMetric(rawRate, "raw_events/s")
	b.ReportMetric(runRate/rawRate, "ratio")
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

// consumeAll reads n records of f's input with a plain read_committed
// consumer and returns how long that took, connection included.
func consumeAll(b *testing.B, f *fixture, n int) time.Duration {
	b.Helper()
	begin := time.Now()
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(f.env.Brokers()...),
		kgo.ConsumeTopics(f.in),
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

// committedAll reports whether group's committed offsets add up to n.
func committedAll(adm *kadm.Client, group string, n int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	offs, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return err
	}
	sum := int64(0)
	offs.Each(func(o kadm.OffsetResponse) { sum += o.At })
	if sum < int64(n) {
		return fmt.Errorf("group %s committed %d of %d events", group, sum, n)
	}
	return nil
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
