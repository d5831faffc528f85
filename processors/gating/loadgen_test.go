package gating_test

// Benchmarks of the gating processor end to end, against the real broker
// (they skip without FACTORY2_KAFKA_BROKERS). Each creates its own topics
// (a unique prefix) and deletes them at the end; run them once:
//
//	FACTORY2_KAFKA_BROKERS=127.0.0.1:29092 go test -run '^$' -bench BenchmarkGating -benchtime 1x ./processors/gating/
//
// They live here, in the external test package, rather than beside the
// engine's micro-benchmarks in bench_test.go: they need internal/sample,
// which imports this package, so package gating's own tests cannot.
//
// Targets: BenchmarkGatingLatency p50 ≤ 15 ms and p99 ≤ 50 ms at a steady
// 2,000 events/s with the default configuration, in each of five
// consecutive runs; BenchmarkGatingThroughput ≥ 200k events/s. Both log
// where the machine's CPU went (cpustat): on a 2-core machine the broker
// takes about a core at 2,000 events/s, and latency follows how busy the
// machine is. The first run on a freshly started broker is slower (its
// JIT warming up).
//
// -cpuprofile profiles the set-up too (producing the events); set
// FACTORY2_BENCH_CPUPROFILE=<file> to profile only the runner's part.
// FACTORY2_BENCH_RUNNER_LINGER=5ms tries a producer linger in the runner
// (see runnerExperiment), FACTORY2_BENCH_RUNNER_COMPRESSION=none|lz4|...
// another batch compression; FACTORY2_BENCH_THREADS=n sets its processing
// threads (default: the number of cores). BenchmarkProcessStream
// (stream_bench_test.go) measures the processor's own share without
// Kafka.

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/factory2/factory2/avro"
	"github.com/factory2/factory2/internal/cpustat"
	"github.com/factory2/factory2/internal/ingest"
	"github.com/factory2/factory2/internal/kafkatest"
	"github.com/factory2/factory2/internal/sample"
	"github.com/factory2/factory2/processors"
	"github.com/factory2/factory2/processors/gating"
	"github.com/factory2/factory2/topics"
)

const (
	// benchPartitions is the partition count of every topic, the
	// catalog's default.
	benchPartitions = 6

	// loadRate, loadDuration and loadWarmup shape BenchmarkGatingLatency:
	// a steady stream for loadDuration, of which the first loadWarmup is
	// not measured (group join, first restores, connections).
	loadRate     = 2000 // events/s
	loadDuration = 25 * time.Second
	loadWarmup   = 5 * time.Second

	// throughputEvents is roughly how many events BenchmarkGatingThroughput
	// pre-produces (whole builds).
	throughputEvents = 200_000

	// benchTimeout bounds every wait of the benchmarks.
	benchTimeout = 90 * time.Second
)

// BenchmarkGatingLatency measures how long after a build's last
// satisfying event is acknowledged by Kafka a read_committed consumer of
// decisions.gating receives the decision it triggers (policies_satisfied
// turned true), under a steady 2,000 events/s of realistic events (see
// loadGen), produced by a plain idempotent acks=all producer. The same
// run measures Kafka's own floor: the same acknowledgement to a
// read_committed consumer of the input topics receiving the event. The
// floor is measured during the warm-up only: a consumer woken by every
// one of 2,000 events/s costs the broker about a tenth of a core, and on
// two cores that alone raised the decisions' p50 by a third.
//
// Sub-benchmarks are commit intervals: the default (100ms) and 20ms. The
// log breaks each decision's latency down into stages with the runner's
// client hooks: fetch (ack → the runner's fetch buffered the trigger),
// queue (→ the runner polled it), process (→ the decision was handed to
// the producer), produce (→ it was acknowledged inside the transaction),
// commit (→ EndTxn answered), visible (→ the decision consumer received
// it).
func BenchmarkGatingLatency(b *testing.B) {
	for _, bc := range []struct {
		name     string
		interval time.Duration
	}{
		{"commit=100ms-default", 0},
		{"commit=20ms", 20 * time.Millisecond},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for range b.N {
				benchLatency(b, bc.interval)
			}
		})
	}
}

func benchLatency(b *testing.B, interval time.Duration) {
	f := newBenchFixture(b)
	decisionsTopic := f.cat.Name(topics.DecisionsGating)
	g := newLoadGen(b, f.cat, f.codec)

	// The whole stream, encoded before the clock starts.
	n := int(loadRate * loadDuration.Seconds())
	type loadEvent struct {
		rec     *kgo.Record
		id      string
		trigger bool
	}
	events := make([]loadEvent, 0, n)
	for k, j := range order(n/eventsPerBuild + eventsPerBuild*buildLag) {
		if len(events) == n {
			break
		}
		rec, err := g.record(k, j, len(events))
		if err != nil {
			b.Fatal(err)
		}
		events = append(events, loadEvent{rec, g.eventID(k, j), isTrigger(j)})
	}
	triggers := 0
	for _, ev := range events {
		if ev.trigger {
			triggers++
		}
	}

	// Consumers first: the decisions (counting flips to satisfied), and
	// the inputs (the floor).
	var flips atomic.Int64
	countFlips := func(r *kgo.Record) {
		if d, ok := decodeDecision(f.codec, r.Value); ok && satisfiedFlip(d) {
			flips.Add(1)
		}
	}
	decCons := startConsumer(b, f.env, countFlips, kgo.ConsumeTopics(decisionsTopic))
	inCons := startConsumer(b, f.env, nil, kgo.ConsumeTopics(f.spec.Inputs...))
	floorEnd := loadWarmup // events acknowledged before it measure the floor

	reg := prometheus.NewRegistry()
	rp, req := newRecProbe(decisionsTopic), newReqProbe()
	sfs := &syncFS{FS: vfs.Default}
	r := f.runner(b, interval, reg, sfs, rp, req)
	stopRunner := startRunner(b, r)
	kafkatest.WaitFor(b, benchTimeout, func() error {
		if got := metricValues(b, reg)["factory2_processor_tasks"]; got != benchPartitions {
			return fmt.Errorf("runner has %v tasks of %d", got, benchPartitions)
		}
		return nil
	})

	prod := kafkatest.Client(b, f.env, kgo.ProducerLinger(0), kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)))
	ctx, cancel := context.WithTimeout(context.Background(), benchTimeout)
	defer cancel()
	acked := make([]time.Time, n)
	places := make([]tpo, n)
	var (
		wg   sync.WaitGroup
		perr atomic.Pointer[error]
	)
	stopProfile := startProfile(b)
	cpu, err := cpustat.Take()
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	start := time.Now()
	// A second is ample for the floor's last events to arrive.
	stopFloor := time.AfterFunc(floorEnd+time.Second, inCons.stop)
	defer stopFloor.Stop()
	tick := time.NewTicker(time.Millisecond)
	for sent := 0; sent < n; {
		<-tick.C
		for due := min(n, int(time.Since(start).Seconds()*loadRate)+1); sent < due; sent++ {
			i := sent
			wg.Add(1)
			prod.Produce(ctx, events[i].rec, func(r *kgo.Record, err error) {
				defer wg.Done()
				acked[i] = time.Now()
				if err != nil {
					perr.CompareAndSwap(nil, &err)
					return
				}
				places[i] = placeOf(r)
			})
		}
	}
	tick.Stop()
	wg.Wait()
	produced := time.Since(start)
	if err := perr.Load(); err != nil {
		b.Fatalf("producing the load: %v", *err)
	}

	// Every trigger gives one flip to satisfied.
	kafkatest.WaitFor(b, 30*time.Second, func() error {
		if got := flips.Load(); got < int64(triggers) {
			return fmt.Errorf("received %d of %d satisfied decisions", got, triggers)
		}
		return nil
	})
	b.StopTimer()
	used, err := cpu.Since()
	if err != nil {
		b.Fatal(err)
	}
	stopProfile()
	if err := stopRunner(); err != nil {
		b.Fatalf("runner: %v", err)
	}
	decCons.stop()
	inCons.stop()
	for _, c := range []*consumer{decCons, inCons} {
		if c.err != nil {
			b.Fatalf("consumer: %v", c.err)
		}
	}
	m := metricValues(b, reg)
	if dl := m["factory2_processor_records_dead_lettered_total"]; dl != 0 {
		b.Errorf("%v events were dead-lettered", dl)
	}

	// Join: trigger id → its ack; input place → ack; decision → trigger.
	warm := start.Add(loadWarmup)
	ackByID := map[string]int{} // trigger id → event index
	ackByPlace := map[tpo]time.Time{}
	for i, ev := range events {
		ackByPlace[places[i]] = acked[i]
		if ev.trigger {
			ackByID[ev.id] = i
		}
	}
	var floor []time.Duration
	for _, rc := range inCons.got {
		if a, ok := ackByPlace[placeOf(rc.rec)]; ok && a.Before(start.Add(floorEnd)) {
			floor = append(floor, rc.at.Sub(a))
		}
	}
	floorSent := 0
	for i := range events {
		if acked[i].Before(start.Add(floorEnd)) {
			floorSent++
		}
	}
	if len(floor) < floorSent {
		b.Errorf("the floor's consumer received %d of the %d events acknowledged in its window", len(floor), floorSent)
	}
	rp.mu.Lock() // the runner has stopped; for the race detector
	defer rp.mu.Unlock()
	emittedAt := map[string]emitted{}
	for _, e := range rp.emitted {
		if d, ok := decodeDecision(f.codec, e.value); ok && satisfiedFlip(d) {
			emittedAt[d.Origin.MessageID] = e // the last attempt's, if a transaction aborted
		}
	}
	req.mu.Lock()
	endTxn := slices.Clone(req.endTxn)
	req.mu.Unlock()
	slices.SortFunc(endTxn, time.Time.Compare)
	var lat, stFetch, stQueue, stProcess, stProduce, stCommit, stVisible []time.Duration
	others := 0
	for _, rc := range decCons.got {
		d, ok := decodeDecision(f.codec, rc.rec.Value)
		if !ok || !satisfiedFlip(d) {
			continue
		}
		i, ok := ackByID[d.Origin.MessageID]
		if !ok {
			others++
			continue
		}
		if !acked[i].After(warm) {
			continue
		}
		lat = append(lat, rc.at.Sub(acked[i]))
		buf, okB := rp.buffered[places[i]]
		pol, okP := rp.polled[places[i]]
		em, okE := emittedAt[d.Origin.MessageID]
		if !okB || !okP || !okE {
			continue
		}
		k, _ := slices.BinarySearchFunc(endTxn, em.at, time.Time.Compare)
		if k == len(endTxn) || em.made.IsZero() {
			continue
		}
		stFetch = append(stFetch, buf.Sub(acked[i]))
		stQueue = append(stQueue, pol.Sub(buf))
		stProcess = append(stProcess, em.made.Sub(pol))
		stProduce = append(stProduce, em.at.Sub(em.made))
		stCommit = append(stCommit, endTxn[k].Sub(em.at))
		stVisible = append(stVisible, rc.at.Sub(endTxn[k]))
	}
	if others > 0 {
		b.Errorf("%d decisions turned satisfied on an event other than their build's last PASSED", others)
	}
	if len(lat) == 0 {
		b.Fatal("no decision measured")
	}
	p := percentiles(lat, 0.5, 0.9, 0.99, 1)
	fp := percentiles(slices.Clone(floor), 0.5, 0.99)
	b.ReportMetric(ms(p[0]), "p50_ms")
	b.ReportMetric(ms(p[1]), "p90_ms")
	b.ReportMetric(ms(p[2]), "p99_ms")
	b.ReportMetric(ms(p[3]), "max_ms")
	b.ReportMetric(ms(fp[0]), "floor_p50_ms")
	b.ReportMetric(ms(fp[1]), "floor_p99_ms")
	b.ReportMetric(0, "ns/op") // the whole run: meaningless
	// Benchmark output is cut after 10 lines: keep it to 6.
	b.Logf("%d events in %v (%.0f/s), %d builds; measured %d decisions after %v of warm-up",
		n, produced.Round(time.Millisecond), float64(n)/produced.Seconds(), triggers, len(lat), loadWarmup)
	b.Logf("ack → decision received: %s; ack → input received (the floor, in the first %v): %s", dist(lat), floorEnd, dist(floor))
	b.Logf("stages p50/p90/p99 ms: fetch (ack → runner fetched the trigger) %s; queue (→ runner polled it) %s; "+
		"process (→ decision handed to the producer) %s; produce (→ acked in its transaction) %s; commit (→ EndTxn answered) %s; "+
		"visible (→ decision consumer received it) %s",
		short(stFetch), short(stQueue), short(stProcess), short(stProduce), short(stCommit), short(stVisible))
	b.Logf("runner: %s; %.0f transactions/s", runnerSummary(m), m["factory2_processor_transactions_total"]/produced.Seconds())
	b.Logf("runner requests:%s", req.summary())
	b.Logf("state: %s; %v (this process: the runner, the load and both consumers)", sfs.summary(), used)
}

// decodeDecision decodes a gating decision.
func decodeDecision(codec *avro.Codec, v []byte) (*avro.GatingDecision, bool) {
	rec, err := codec.Decode(v)
	if err != nil {
		return nil, false
	}
	d, ok := rec.(*avro.GatingDecision)
	return d, ok
}

// satisfiedFlip reports whether d turns its decision to satisfied.
func satisfiedFlip(d *avro.GatingDecision) bool {
	return d.PoliciesSatisfied && (d.Previous == nil || !d.Previous.PoliciesSatisfied)
}

// BenchmarkGatingThroughput pre-produces about 200k realistic events (see
// loadGen) to the input topics, then runs the gating processor from
// scratch until its group has committed past every one; in the same run a
// plain read_committed consumer reads the same topics (the read floor),
// and a plain transactional producer writes the runner's output again
// (the write floor, writeFloor: a ceiling on any processor's rate with
// this output on this broker). The rates count from the first fetch that
// brought records (the runner's group join is logged apart).
func BenchmarkGatingThroughput(b *testing.B) {
	for range b.N {
		benchThroughput(b)
	}
}

func benchThroughput(b *testing.B) {
	f := newBenchFixture(b)
	g := newLoadGen(b, f.cat, f.codec)
	builds := throughputEvents / eventsPerBuild
	n := builds * eventsPerBuild

	ctx, cancel := context.WithTimeout(context.Background(), benchTimeout)
	defer cancel()
	prod := kafkatest.Client(b, f.env, kgo.ProducerLinger(5*time.Millisecond), kgo.ProducerBatchMaxBytes(1<<20),
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)))
	var (
		mu   sync.Mutex
		last = map[tp]int64{}
		perr error
	)
	begin, seq := time.Now(), 0
	for k, j := range order(builds) {
		rec, err := g.record(k, j, seq)
		if err != nil {
			b.Fatal(err)
		}
		seq++
		prod.Produce(ctx, rec, func(r *kgo.Record, err error) {
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				perr = errors.Join(perr, err)
				return
			}
			p := tp{r.Topic, r.Partition}
			last[p] = max(last[p], r.Offset)
		})
	}
	if err := prod.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	if perr != nil {
		b.Fatalf("producing: %v", perr)
	}
	b.Logf("produced %d events of %d builds to %d partitions in %v", n, builds, len(last), time.Since(begin).Round(time.Millisecond))

	// The floor: a plain read_committed consumer of the same topics.
	raw := rawConsume(b, f, last)

	reg := prometheus.NewRegistry()
	req := newReqProbe()
	sfs := &syncFS{FS: vfs.Default}
	r := f.runner(b, 0, reg, sfs, req)
	stopProfile := startProfile(b)
	cpu, err := cpustat.Take()
	if err != nil {
		b.Fatal(err)
	}
	begin = time.Now()
	stopRunner := startRunner(b, r)
	var done time.Time
	for {
		if err := committedPast(ctx, f.adm, r.Group(), last); err == nil {
			done = time.Now()
			break
		} else if ctx.Err() != nil {
			b.Fatalf("after %v: %v", benchTimeout, err)
		}
		select {
		case <-time.After(20 * time.Millisecond):
		case <-ctx.Done():
		}
	}
	used, err := cpu.Since()
	if err != nil {
		b.Fatal(err)
	}
	stopProfile()
	if err := stopRunner(); err != nil {
		b.Fatalf("runner: %v", err)
	}
	m := metricValues(b, reg)
	if got := m["factory2_processor_records_processed_total"]; got < float64(n) {
		b.Errorf("processed %v events, want %d", got, n)
	}
	took := done.Sub(req.first())
	wf := writeFloor(b, f, int(m["factory2_processor_transactions_total"]))
	rate, rawRate := float64(n)/took.Seconds(), float64(n)/raw.Seconds()
	b.ReportMetric(rate, "events/s")
	b.ReportMetric(rawRate, "raw_events/s")
	b.ReportMetric(rate/rawRate, "ratio")
	b.ReportMetric(float64(n)/wf.took.Seconds(), "write_floor_events/s")
	b.ReportMetric(0, "ns/op") // the whole run: meaningless
	b.Logf("raw consumer: %d events in %v; runner: %d events in %v after its first fetch (%v after start); %v",
		n, raw.Round(time.Millisecond), n, took.Round(time.Millisecond), req.first().Sub(begin).Round(time.Millisecond), wf)
	b.Logf("runner: %s", runnerSummary(m))
	b.Logf("runner requests:%s", req.summary())
	b.Logf("state: %s; runner's %v", sfs.summary(), used)
}

// floorRun is writeFloor's measurement.
type floorRun struct {
	records, bytes, txns int
	took                 time.Duration
	cpu                  cpustat.Usage
}

func (w floorRun) String() string {
	return fmt.Sprintf("write floor: %d records (%.1f MB) in %d transactions written again in %v (%v)",
		w.records, float64(w.bytes)/1e6, w.txns, w.took.Round(time.Millisecond), w.cpu)
}

// writeFloor measures what writing the runner's output costs the broker
// alone: it reads back every record the runner wrote (outputs and
// changelog), then writes them again, to the same partitions, with one
// transactional producer configured as the runner's (5 ms linger, 1 MiB
// batches) in as many transactions as the runner made. No processor can
// write this output faster on this broker, so n events over its time is
// a ceiling on the runner's rate, measured in the same run.
func writeFloor(b *testing.B, f *benchFixture, txns int) floorRun {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), benchTimeout)
	defer cancel()
	outs := append(slices.Clone(f.spec.Outputs), f.cat.AddChangelog(f.spec.Name, gating.StoreSubjects))
	ends, err := f.adm.ListEndOffsets(ctx, outs...)
	if err != nil {
		b.Fatal(err)
	}
	left := map[tp]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err == nil && o.Offset > 0 {
			left[tp{o.Topic, o.Partition}] = o.Offset
		}
	})
	rd, err := kgo.NewClient(kgo.SeedBrokers(f.env.Brokers()...), kgo.ConsumeTopics(outs...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords())
	if err != nil {
		b.Fatal(err)
	}
	var recs []*kgo.Record
	for len(left) > 0 {
		fs := rd.PollFetches(ctx)
		if ctx.Err() != nil {
			b.Fatalf("write floor: reading the runner's output back: %d partitions left", len(left))
		}
		fs.EachRecord(func(r *kgo.Record) {
			p := tp{r.Topic, r.Partition}
			if !r.Attrs.IsControl() {
				recs = append(recs, &kgo.Record{Topic: r.Topic, Partition: r.Partition, Key: r.Key, Value: r.Value})
			}
			if end, ok := left[p]; ok && r.Offset+1 >= end {
				delete(left, p)
			}
		})
	}
	rd.Close() // before the clock starts: it would go on fetching

	w := floorRun{records: len(recs), txns: max(1, txns)}
	for _, r := range recs {
		w.bytes += len(r.Key) + len(r.Value)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(f.env.Brokers()...), kgo.TransactionalID(kafkatest.UniqueName(b)+"-floor"),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(5*time.Millisecond),
		kgo.ProducerBatchMaxBytes(1_000_012))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	cpu, err := cpustat.Take()
	if err != nil {
		b.Fatal(err)
	}
	begin := time.Now()
	per := (len(recs) + w.txns - 1) / w.txns
	for i := 0; i < len(recs); i += per {
		if err := cl.BeginTransaction(); err != nil {
			b.Fatal(err)
		}
		for _, r := range recs[i:min(i+per, len(recs))] {
			cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
				if err != nil {
					b.Errorf("write floor: %v", err)
				}
			})
		}
		if err := cl.Flush(ctx); err != nil {
			b.Fatal(err)
		}
		if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
			b.Fatal(err)
		}
	}
	w.took = time.Since(begin)
	if w.cpu, err = cpu.Since(); err != nil {
		b.Fatal(err)
	}
	return w
}

// rawConsume reads f's inputs with a plain read_committed consumer until
// it has every record up to last, and returns how long that took from its
// first fetch.
func rawConsume(b *testing.B, f *benchFixture, last map[tp]int64) time.Duration {
	b.Helper()
	req := newReqProbe()
	cl, err := kgo.NewClient(kgo.SeedBrokers(f.env.Brokers()...), kgo.ConsumeTopics(f.spec.Inputs...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.WithHooks(req))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), benchTimeout)
	defer cancel()
	left := len(last)
	reached := map[tp]bool{}
	for left > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			b.Fatalf("raw consumer: %d partitions not read through: %v", left, err)
		}
		fs.EachError(func(t string, p int32, err error) { b.Fatalf("raw consumer: %s/%d: %v", t, p, err) })
		fs.EachPartition(func(fp kgo.FetchTopicPartition) {
			p := tp{fp.Topic, fp.Partition}
			if n := len(fp.Records); n > 0 && !reached[p] && fp.Records[n-1].Offset >= last[p] {
				reached[p] = true
				left--
			}
		})
	}
	return time.Since(req.first())
}

// testcases are the sample policy's two required test cases.
var testcases = []string{"fedora-ci.koji-build.tier0.functional", "fedora-ci.koji-build.rpminspect.static-analysis"}

// eventsPerBuild is the length of one build's life in loadGen.
const eventsPerBuild = 11

// buildLag spaces the events of one build in the stream: between two of
// them, buildLag*eventsPerBuild events of other builds go by (27.5 ms at
// 2,000 events/s), so about 50 builds are in flight at any time.
const buildLag = 5

// loadGen makes the events of many distinct builds, each living the life
// internal/sample tells: BUILDING; COMPLETE with 3 RPMs; tagged into the
// candidate tag, then into the signing tag (an autosign decision); the 2
// required tests QUEUED; the 3 RPMs signed (a signed status); the 2 tests
// PASSED. The last PASSED is the build's trigger: its last satisfying
// event, which flips its gating decision to policies_satisfied.
//
// Every event's Origin.MessageID is its own id, and a decision's envelope
// takes its origin from its trigger (see gating's deriveEnvelope): that is
// how the benchmarks find the event behind a decision.
type loadGen struct {
	run    string    // unique per benchmark run; ids never repeat across runs
	base   time.Time // event time of the first event
	parser *ingest.Parser
	codec  *avro.Codec
}

func newLoadGen(b *testing.B, cat *topics.Catalog, codec *avro.Codec) *loadGen {
	return &loadGen{
		run:    kafkatest.UniqueName(b),
		base:   time.Now().UTC().Truncate(time.Second),
		parser: &ingest.Parser{Catalog: cat},
		codec:  codec,
	}
}

// order yields (build, event) of builds builds in stream order: row r
// holds event 0 of build r, event 1 of build r-buildLag, event 2 of build
// r-2*buildLag, and so on, so every build's events come in order and
// builds overlap.
func order(builds int) iter.Seq2[int, int] {
	return func(yield func(int, int) bool) {
		for r := 0; r < builds+(eventsPerBuild-1)*buildLag; r++ {
			for j := range eventsPerBuild {
				if k := r - j*buildLag; k >= 0 && k < builds {
					if !yield(k, j) {
						return
					}
				}
			}
		}
	}
}

// isTrigger reports whether event j of a build is its last satisfying one.
func isTrigger(j int) bool { return j == eventsPerBuild-1 }

// eventID is the id of event j of build k.
func (g *loadGen) eventID(k, j int) string { return fmt.Sprintf("%s-%d-%d", g.run, k, j) }

// event returns event j of build k; seq is its place in the stream, which
// gives its event time (500µs apart, as at 2,000 events/s).
func (g *loadGen) event(k, j, seq int) avro.Record {
	name, version, release := fmt.Sprintf("loadgen-%d", k), "1.0", "1.fc42"
	nvr := name + "-" + version + "-" + release
	at := g.base.Add(time.Duration(seq) * 500 * time.Microsecond)
	env := func(source, topic string) avro.Envelope {
		id := g.eventID(k, j)
		return avro.Envelope{ID: id, Source: source, EventTime: at,
			Origin: avro.Origin{Topic: "org.fedoraproject.prod." + topic, MessageID: id}}
	}
	buildID := int64(3_000_000 + k)
	var arts []avro.Artifact
	for i, a := range []string{"x86_64", "aarch64", "src"} {
		arts = append(arts, avro.Artifact{ID: fmt.Sprint(buildID*10 + int64(i)), Name: fmt.Sprintf("%s.%s.rpm", nvr, a), Type: "rpm", Arch: a})
	}
	build := func(kind, state, old, tag string) *avro.BuildEvent {
		e := &avro.BuildEvent{
			Envelope: env("koji/primary", "buildsys.build.state.change"),
			Kind:     kind, NVR: nvr, Name: name, Version: version, Release: release,
			BuildID: buildID, TaskID: buildID + 90_000_000, Owner: "packager", Instance: "primary",
			State: state, OldState: old, Tag: tag, CreationTime: g.base,
			SourceURL:    "git+https://src.fedoraproject.org/rpms/" + name + ".git#0123456789abcdef0123456789abcdef01234567",
			SourceCommit: "0123456789abcdef0123456789abcdef01234567",
		}
		if kind != avro.BuildStateChange {
			e.Origin.Topic = "org.fedoraproject.prod.buildsys." + kind
			e.TagUser = "bodhi"
		}
		if state == avro.StateComplete {
			e.CompletionTime = at
			e.Artifacts = arts
		}
		return e
	}
	result := func(tc, outcome string) *avro.TestResult {
		r := &avro.TestResult{
			Envelope: env("resultsdb", "resultsdb.result.new"),
			ResultID: fmt.Sprint(k*eventsPerBuild + j), Testcase: tc, Outcome: outcome,
			SubjectType: "koji_build", SubjectID: nvr,
			RefURL: "https://artifacts.example.org/" + nvr + "/" + tc,
		}
		r.SubmitTime = at
		return r
	}
	switch j {
	case 0:
		return build(avro.BuildStateChange, avro.StateBuilding, "", "")
	case 1:
		return build(avro.BuildStateChange, avro.StateComplete, avro.StateBuilding, "")
	case 2:
		return build(avro.BuildTag, avro.StateComplete, "", "f42-updates-candidate")
	case 3:
		return build(avro.BuildTag, avro.StateComplete, "", sample.SigningRule.From)
	case 4, 5:
		return result(testcases[j-4], avro.OutcomeQueued)
	case 6, 7, 8:
		return &avro.SignEvent{
			Envelope: env("koji/primary", "buildsys.rpm.sign"),
			NVR:      nvr, BuildID: buildID, SigKey: sample.SigningRule.KeyID,
			Artifacts: []avro.Artifact{arts[j-6]}, Signer: "robosignatory", Outcome: avro.SignSigned, Instance: "primary",
		}
	case 9, 10:
		return result(testcases[j-9], avro.OutcomePassed)
	}
	panic(fmt.Sprintf("loadGen: no event %d", j))
}

// record returns event j of build k as the Kafka record ingest would
// produce: validated, routed to its input topic, keyed by subject, encoded.
func (g *loadGen) record(k, j, seq int) (*kgo.Record, error) {
	evs, err := g.parser.Records(g.event(k, j, seq))
	if err != nil {
		return nil, err
	}
	v, err := g.codec.Encode(evs[0].Record)
	if err != nil {
		return nil, err
	}
	return &kgo.Record{Topic: evs[0].Topic, Key: []byte(evs[0].Key), Value: v}, nil
}

// benchFixture is a fresh catalog (6 partitions, changelog included, all
// created) with the gating spec over internal/sample's policy and signing
// rule.
type benchFixture struct {
	env   *kafkatest.Env
	cat   *topics.Catalog
	codec *avro.Codec
	spec  processors.Spec
	adm   *kadm.Client
}

// newBenchFixture returns a fixture on the real broker, or skips b. The
// topics and the processor's group are deleted when b ends.
func newBenchFixture(b *testing.B) *benchFixture {
	b.Helper()
	if os.Getenv(kafkatest.EnvBrokers) == "" {
		b.Skipf("needs a real Kafka broker: set %s=127.0.0.1:29092 (make kafka-up)", kafkatest.EnvBrokers)
	}
	env := kafkatest.Cluster(b)
	cat, err := topics.New(topics.Config{Prefix: kafkatest.UniqueName(b) + ".", Partitions: benchPartitions, Replication: 1,
		InputRetentionMS: -1, DecisionRetentionMS: -1})
	if err != nil {
		b.Fatal(err)
	}
	eng, codec := sampleEngine(b)
	f := &benchFixture{env: env, cat: cat, codec: codec, spec: gating.Spec(cat, eng), adm: kafkatest.Admin(b, env)}
	cat.AddChangelog(f.spec.Name, gating.StoreSubjects) // as NewRunner does, so that Ensure creates it
	ctx, cancel := context.WithTimeout(context.Background(), benchTimeout)
	defer cancel()
	// Registered after Admin's client closes, so it runs before that.
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := f.adm.DeleteGroup(ctx, cat.Prefix()+f.spec.Name); err != nil {
			b.Logf("deleting the benchmark's group: %v", err)
		}
		if _, err := f.adm.DeleteTopics(ctx, topics.Names(cat.Specs())...); err != nil {
			b.Logf("deleting the benchmark's topics: %v", err)
		}
	})
	if _, err := cat.Ensure(ctx, kafkatest.Client(b, env)); err != nil {
		b.Fatal(err)
	}
	return f
}

// sampleEngine returns the engine of internal/sample's policy and signing
// rule, and a codec: what every gating benchmark runs.
func sampleEngine(b *testing.B) (*gating.Engine, *avro.Codec) {
	b.Helper()
	ps, err := gating.LoadPolicies(map[string][]byte{"sample.yaml": []byte(sample.Policy)})
	if err != nil {
		b.Fatal(err)
	}
	eng, err := gating.NewEngine(ps, []gating.SigningRule{sample.SigningRule})
	if err != nil {
		b.Fatal(err)
	}
	codec, err := avro.NewCodec()
	if err != nil {
		b.Fatal(err)
	}
	return eng, codec
}

// runner returns a Runner of the gating spec with a commit interval
// (0: the default), its metrics in reg, its session client hooked, its
// state on fs.
func (f *benchFixture) runner(b *testing.B, interval time.Duration, reg prometheus.Registerer, fs vfs.FS, hooks ...kgo.Hook) *processors.Runner {
	b.Helper()
	r, err := processors.NewRunner(f.spec, processors.Config{
		Brokers:        f.env.Brokers(),
		InstanceID:     "bench",
		Catalog:        f.cat,
		Codec:          f.codec,
		StateDir:       b.TempDir(),
		FS:             fs,
		CommitInterval: interval,
		SessionTimeout: 6 * time.Second,
		Registerer:     reg,
		SessionHooks:   hooks,
		ClientOpts:     runnerExperiment(b),
		Threads:        benchThreads(b),
	})
	if err != nil {
		b.Fatal(err)
	}
	return r
}

// benchThreads is FACTORY2_BENCH_THREADS, the runner's processing
// threads (0, the default: the number of cores).
func benchThreads(b *testing.B) int {
	v := os.Getenv("FACTORY2_BENCH_THREADS")
	if v == "" {
		return 0
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		b.Fatalf("FACTORY2_BENCH_THREADS=%q: want a positive integer", v)
	}
	b.Logf("processing threads: %d", n)
	return n
}

// runnerExperiment returns client options that FACTORY2_BENCH_RUNNER_LINGER
// adds to the runner's (Config.ClientOpts win over the runner's own): a
// producer linger, e.g. 5ms, where the runner sets none. It is an
// experiment, not a setting of the runtime: the transaction's commit
// flushes lingering records at once, so a linger batches the outputs of
// a transaction without delaying its commit.
func runnerExperiment(b *testing.B) []kgo.Opt {
	var opts []kgo.Opt
	if v := os.Getenv("FACTORY2_BENCH_RUNNER_LINGER"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			b.Fatalf("FACTORY2_BENCH_RUNNER_LINGER: %v", err)
		}
		b.Logf("experiment: the runner's producer lingers %v", d)
		opts = append(opts, kgo.ProducerLinger(d))
	}
	if v := os.Getenv("FACTORY2_BENCH_RUNNER_COMPRESSION"); v != "" {
		codecs := map[string]kgo.CompressionCodec{"none": kgo.NoCompression(), "snappy": kgo.SnappyCompression(),
			"lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression(), "gzip": kgo.GzipCompression()}
		c, ok := codecs[v]
		if !ok {
			b.Fatalf("FACTORY2_BENCH_RUNNER_COMPRESSION: %q is none of none, snappy, lz4, zstd, gzip", v)
		}
		b.Logf("experiment: the runner's producer compresses with %s", v)
		opts = append(opts, kgo.ProducerBatchCompression(c))
	}
	return opts
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

// tp is a topic partition; tpo a record's place.
type (
	tp struct {
		topic     string
		partition int32
	}
	tpo struct {
		tp
		offset int64
	}
)

func placeOf(r *kgo.Record) tpo { return tpo{tp{r.Topic, r.Partition}, r.Offset} }

// committedPast reports nil once group's committed offsets are past
// last's offsets (the last produced record of each partition). Compare
// with what was produced, not with end offsets: a transaction's trailing
// commit marker is never consumed past.
func committedPast(ctx context.Context, adm *kadm.Client, group string, last map[tp]int64) error {
	offs, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return err
	}
	for p, off := range last {
		c, ok := offs.Lookup(p.topic, p.partition)
		if !ok || c.Err != nil || c.At <= off {
			return fmt.Errorf("group %s has not committed past %s/%d@%d", group, p.topic, p.partition, off)
		}
	}
	return nil
}

// reqProbe hooks a client: how long each kind of request takes (written
// to response read), when each transaction ended, and when the first
// fetch brought records.
type reqProbe struct {
	mu         sync.Mutex
	reqs       map[int16]*reqStat
	endTxn     []time.Time // EndTxn responses read
	firstFetch time.Time
}

type reqStat struct {
	n        int
	sum, max time.Duration
}

func newReqProbe() *reqProbe { return &reqProbe{reqs: map[int16]*reqStat{}} }

func (p *reqProbe) OnBrokerE2E(_ kgo.BrokerMetadata, key int16, e2e kgo.BrokerE2E) {
	now := time.Now()
	if e2e.Err() != nil {
		return
	}
	d := e2e.DurationE2E()
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.reqs[key]
	if s == nil {
		s = &reqStat{}
		p.reqs[key] = s
	}
	s.n++
	s.sum += d
	s.max = max(s.max, d)
	if key == kmsg.EndTxn.Int16() {
		p.endTxn = append(p.endTxn, now)
	}
}

func (p *reqProbe) OnFetchBatchRead(kgo.BrokerMetadata, string, int32, kgo.FetchBatchMetrics) {
	p.mu.Lock()
	if p.firstFetch.IsZero() {
		p.firstFetch = time.Now()
	}
	p.mu.Unlock()
}

func (p *reqProbe) first() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.firstFetch
}

// summary lists the requests by total time, each with its count, mean
// and max.
func (p *reqProbe) summary() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	keys := slices.Collect(func(yield func(int16) bool) {
		for k := range p.reqs {
			if !yield(k) {
				return
			}
		}
	})
	slices.SortFunc(keys, func(a, b int16) int { return int(p.reqs[b].sum - p.reqs[a].sum) })
	var sb strings.Builder
	for _, k := range keys {
		s := p.reqs[k]
		fmt.Fprintf(&sb, " %s n=%d mean=%v max=%v;", kmsg.NameForKey(k), s.n,
			(s.sum / time.Duration(s.n)).Round(10*time.Microsecond), s.max.Round(10*time.Microsecond))
	}
	return sb.String()
}

// recProbe hooks the runner's session client per record: when each
// input record was buffered by a fetch and polled by the runner, and when
// each gating decision was handed to the producer and acknowledged inside
// its transaction.
type recProbe struct {
	decisions string // topic
	mu        sync.Mutex
	buffered  map[tpo]time.Time
	polled    map[tpo]time.Time
	made      map[*kgo.Record]time.Time // decisions handed to the producer, not acknowledged yet
	emitted   []emitted
}

type emitted struct {
	value []byte
	made  time.Time // handed to the producer
	at    time.Time // acknowledged
}

func newRecProbe(decisions string) *recProbe {
	return &recProbe{decisions: decisions, buffered: map[tpo]time.Time{}, polled: map[tpo]time.Time{},
		made: map[*kgo.Record]time.Time{}}
}

func (p *recProbe) OnProduceRecordBuffered(r *kgo.Record) {
	if r.Topic != p.decisions {
		return
	}
	now := time.Now()
	p.mu.Lock()
	p.made[r] = now
	p.mu.Unlock()
}

func (p *recProbe) OnFetchRecordBuffered(r *kgo.Record) {
	now := time.Now()
	p.mu.Lock()
	p.buffered[placeOf(r)] = now
	p.mu.Unlock()
}

func (p *recProbe) OnFetchRecordUnbuffered(r *kgo.Record, polled bool) {
	if !polled {
		return
	}
	now := time.Now()
	p.mu.Lock()
	p.polled[placeOf(r)] = now
	p.mu.Unlock()
}

func (p *recProbe) OnProduceRecordUnbuffered(r *kgo.Record, err error) {
	if r.Topic != p.decisions {
		return
	}
	if err != nil {
		p.mu.Lock()
		delete(p.made, r)
		p.mu.Unlock()
		return
	}
	now := time.Now()
	p.mu.Lock()
	p.emitted = append(p.emitted, emitted{r.Value, p.made[r], now})
	delete(p.made, r)
	p.mu.Unlock()
}

// syncFS counts and times the fsyncs of the state (Pebble's WAL syncs of
// each committed batch, mostly).
type syncFS struct {
	vfs.FS
	n, ns atomic.Int64
	maxNS atomic.Int64
}

func (fs *syncFS) wrap(f vfs.File, err error) (vfs.File, error) {
	if err != nil {
		return nil, err
	}
	return &syncFile{File: f, fs: fs}, nil
}

func (fs *syncFS) Create(name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	return fs.wrap(fs.FS.Create(name, c))
}

func (fs *syncFS) OpenReadWrite(name string, c vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	return fs.wrap(fs.FS.OpenReadWrite(name, c, opts...))
}

func (fs *syncFS) ReuseForWrite(oldname, newname string, c vfs.DiskWriteCategory) (vfs.File, error) {
	return fs.wrap(fs.FS.ReuseForWrite(oldname, newname, c))
}

func (fs *syncFS) OpenDir(name string) (vfs.File, error) { return fs.wrap(fs.FS.OpenDir(name)) }

func (fs *syncFS) Unwrap() vfs.FS { return fs.FS }

func (fs *syncFS) timed(start time.Time) {
	d := int64(time.Since(start))
	fs.n.Add(1)
	fs.ns.Add(d)
	for m := fs.maxNS.Load(); d > m && !fs.maxNS.CompareAndSwap(m, d); m = fs.maxNS.Load() {
	}
}

func (fs *syncFS) summary() string {
	n := fs.n.Load()
	if n == 0 {
		return "no fsyncs"
	}
	return fmt.Sprintf("%d fsyncs, %v in all, mean %v, max %v", n, time.Duration(fs.ns.Load()).Round(time.Millisecond),
		(time.Duration(fs.ns.Load()) / time.Duration(n)).Round(10*time.Microsecond), time.Duration(fs.maxNS.Load()).Round(10*time.Microsecond))
}

type syncFile struct {
	vfs.File
	fs *syncFS
}

func (f *syncFile) Sync() error {
	defer f.fs.timed(time.Now())
	return f.File.Sync()
}

func (f *syncFile) SyncData() error {
	defer f.fs.timed(time.Now())
	return f.File.SyncData()
}

func (f *syncFile) SyncTo(length int64) (bool, error) {
	defer f.fs.timed(time.Now())
	return f.File.SyncTo(length)
}

// metricValues sums every series of each metric of reg by name: a
// counter's or gauge's value, a histogram's sum (and its count as
// name_count).
func metricValues(b *testing.B, reg *prometheus.Registry) map[string]float64 {
	b.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		b.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			switch {
			case m.Counter != nil:
				out[mf.GetName()] += m.Counter.GetValue()
			case m.Gauge != nil:
				out[mf.GetName()] += m.Gauge.GetValue()
			case m.Histogram != nil:
				out[mf.GetName()] += m.Histogram.GetSampleSum()
				out[mf.GetName()+"_count"] += float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return out
}

// runnerSummary says what the runner did, from its metrics.
func runnerSummary(m map[string]float64) string {
	txns := m["factory2_processor_transactions_total"]
	return fmt.Sprintf("%.0f records processed, %.0f emitted, %.0f dead-lettered; %.0f transactions (commit mean %.1f ms); "+
		"Process mean %.1f µs; %.0f changelog records; merge: %.0f records carried over, %.0f end lookups",
		m["factory2_processor_records_processed_total"], m["factory2_processor_records_emitted_total"],
		m["factory2_processor_records_dead_lettered_total"], txns,
		1e3*m["factory2_processor_commit_seconds"]/max(1, m["factory2_processor_commit_seconds_count"]),
		1e6*m["factory2_processor_process_seconds"]/max(1, m["factory2_processor_records_processed_total"]),
		m["factory2_processor_changelog_records_total"],
		m["factory2_processor_records_carried_over_total"], m["factory2_processor_input_end_lookups_total"])
}

// startProfile starts a CPU profile into the file named by
// FACTORY2_BENCH_CPUPROFILE, if set, and returns its stop.
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

// received is a record as a consumer polled it.
type received struct {
	rec *kgo.Record
	at  time.Time
}

// consumer polls a client in a goroutine and keeps what it receives, with
// the time each poll returned.
type consumer struct {
	cl     *kgo.Client
	once   sync.Once
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	got    []received
	err    error
	onRec  func(*kgo.Record) // called in the polling goroutine, after the time was taken
}

func startConsumer(b *testing.B, env *kafkatest.Env, onRec func(*kgo.Record), opts ...kgo.Opt) *consumer {
	b.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(env.Brokers()...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted())}, opts...)...)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &consumer{cl: cl, cancel: cancel, done: make(chan struct{}), onRec: onRec}
	go func() {
		defer close(c.done)
		for {
			fs := cl.PollFetches(ctx)
			now := time.Now()
			if ctx.Err() != nil || fs.IsClientClosed() {
				return
			}
			c.mu.Lock()
			fs.EachError(func(t string, p int32, err error) { c.err = errors.Join(c.err, fmt.Errorf("%s/%d: %w", t, p, err)) })
			fs.EachRecord(func(r *kgo.Record) { c.got = append(c.got, received{r, now}) })
			c.mu.Unlock()
			if c.onRec != nil {
				fs.EachRecord(c.onRec)
			}
		}
	}()
	b.Cleanup(c.stop)
	return c
}

// stop stops polling and closes the client; got and err are final then.
func (c *consumer) stop() {
	c.once.Do(func() {
		c.cancel()
		<-c.done
		c.cl.Close()
	})
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
