package gating_test

import (
	"runtime"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/factory2/factory2/internal/cpustat"
	"github.com/factory2/factory2/processors"
	"github.com/factory2/factory2/processors/gating"
	"github.com/factory2/factory2/state"
	"github.com/factory2/factory2/topics"
)

// streamTxnEvents is how many events BenchmarkProcessStream puts in one
// transaction: about what the runner's transactions hold when it catches
// up on a backlog with two threads.
const streamTxnEvents = 500

// BenchmarkProcessStream measures the gating processor's own CPU and
// allocations per event, without Kafka: the stream of
// BenchmarkGatingThroughput (loadGen's builds, interleaved), decoded as
// the runner decodes it, processed by one task in transactions of
// streamTxnEvents over an in-memory Pebble, each transaction's writes
// committed, every output encoded as the runner encodes it. What it
// leaves out is the Kafka client's share (fetching, producing) and the
// runner's loop; it is the part of the throughput benchmark's cost that
// this package controls, and it is steady enough on a shared machine to
// compare two versions of the code. cpu-ns/event is the process's CPU
// time (cpustat; all threads: the garbage collector runs beside the
// benchmark on the other core, where ns/event does not see it).
func BenchmarkProcessStream(b *testing.B) {
	cat, err := topics.New(topics.Config{Partitions: 1, Replication: 1})
	if err != nil {
		b.Fatal(err)
	}
	eng, codec := sampleEngine(b)
	spec := gating.Spec(cat, eng)
	g := newLoadGen(b, cat, codec)
	const builds = 2000
	var recs []*kgo.Record
	for k, j := range order(builds) {
		rec, err := g.record(k, j, len(recs))
		if err != nil {
			b.Fatal(err)
		}
		recs = append(recs, rec)
	}

	var outputs, outBytes int
	emit := func(o processors.Output) {
		v, err := codec.Encode(o.Record)
		if err != nil {
			b.Fatal(err)
		}
		outputs++
		outBytes += len(o.Key) + len(v)
	}
	// The CPU sample reads /proc: taken outside the allocation count.
	cpu, err := cpustat.Take()
	if err != nil {
		b.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for b.Loop() {
		db, err := state.Open(state.Options{Dir: b.TempDir(), FS: vfs.Default})
		if err != nil {
			b.Fatal(err)
		}
		p := spec.New(0)
		for i := 0; i < len(recs); i += streamTxnEvents {
			batch := db.NewBatch()
			c := processors.NewContext(0, batch, emit)
			for _, rec := range recs[i:min(i+streamTxnEvents, len(recs))] {
				r, err := codec.Decode(rec.Value)
				if err != nil {
					b.Fatal(err)
				}
				if err := p.Process(c, &processors.Input{Topic: rec.Topic, Key: rec.Key, Record: r}); err != nil {
					b.Fatalf("event %s: %v", r.Env().ID, err)
				}
			}
			if f, ok := p.(processors.Flusher); ok {
				if err := f.Flush(c); err != nil {
					b.Fatal(err)
				}
			}
			if err := db.CommitNoSync(batch); err != nil {
				b.Fatal(err)
			}
			batch.Close()
		}
		if err := db.Close(); err != nil {
			b.Fatal(err)
		}
	}
	runtime.ReadMemStats(&after)
	used, err := cpu.Since()
	if err != nil {
		b.Fatal(err)
	}
	events := float64(b.N * len(recs))
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/events, "ns/event")
	b.ReportMetric(used.Self*float64(used.Wall.Nanoseconds())/events, "cpu-ns/event")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/events, "allocs/event")
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/events, "B/event")
	b.ReportMetric(float64(outputs)/events, "outputs/event")
	b.ReportMetric(float64(outBytes)/float64(outputs), "B/output")
	b.ReportMetric(0, "ns/op") // the whole stream: see ns/event
	if testing.Verbose() {
		b.Logf("%d events of %d builds per op", len(recs), builds)
	}
}
