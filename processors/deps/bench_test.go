package deps_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/factory2/factory2/avro"
	"github.com/factory2/factory2/internal/debian"
	"github.com/factory2/factory2/internal/ingest"
	"github.com/factory2/factory2/internal/kafkatest"
	"github.com/factory2/factory2/processors"
	"github.com/factory2/factory2/processors/deps"
	"github.com/factory2/factory2/topics"
)

// debianEdges loads the largest binary index apt has on this machine.
func debianEdges(b testing.TB) ([]avro.DependencyEdge, debian.Index) {
	b.Helper()
	xs, err := debian.Indexes(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	var best []avro.DependencyEdge
	var bx debian.Index
	for _, x := range xs {
		if !strings.HasPrefix(x.MetaKey, "main/") {
			continue
		}
		edges, _, err := debian.Load(context.Background(), x, debian.LoadOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if len(edges) > len(best) {
			best, bx = edges, x
		}
	}
	if len(best) == 0 {
		b.Fatal("no main binary index")
	}
	return best, bx
}

func graphOf(edges []avro.DependencyEdge) *deps.Graph {
	g := deps.NewGraph()
	for _, e := range edges {
		g.Add(deps.Edge{From: avro.NodeKey(e.FromType, e.FromID), Relation: e.Relation, To: avro.NodeKey(e.ToType, e.ToID)})
	}
	return g
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

func percentile(ds []time.Duration, p float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

// BenchmarkTraceDebian: trace latency from the HTTP API on the graph of
// this machine's Debian index (the real popularity skew), for popular
// nodes, answers up to 10,000 nodes; and the graph's memory. Reports
// p50/p99/max per node; the baseline is a trace of a leaf (one node) in
// the same run.
func BenchmarkTraceDebian(b *testing.B) {
	before := heapInUse()
	edges, x := debianEdges(b)
	g := graphOf(edges)
	leafNode := "deb:" + leaf(g, edges)
	edges = nil // an instance holds the graph, not the events it was loaded from
	after := heapInUse()
	nodes, n := g.Size()
	b.Logf("%s %s: %d nodes, %d edges; graph heap %.1f MiB (%.0f bytes per edge)", x.Codename, x.MetaKey, nodes, n,
		float64(after-before)/(1<<20), float64(after-before)/float64(n))
	b.ReportMetric(float64(after-before)/(1<<20), "graph-MiB")

	srv := httptest.NewServer(func() http.Handler {
		mux := http.NewServeMux()
		deps.NewAPI(tableOver(g)).Register(mux)
		return mux
	}())
	defer srv.Close()
	cl := srv.Client()
	queries := []struct{ name, node, params string }{
		{"leaf", leafNode, "direction=down"},
		{"libc6-down-depth1", "deb:libc6", "direction=down&depth=1"},
		{"zlib1g-down", "deb:zlib1g", "direction=down"},
		{"libssl3-down", "deb:libssl3", "direction=down"},
		{"python3-up", "deb:python3", "direction=up"},
	}
	for _, q := range queries {
		b.Run(q.name, func(b *testing.B) {
			var lat []time.Duration
			var got int
			var body bytes.Buffer
			for b.Loop() {
				start := time.Now()
				resp, err := cl.Get(srv.URL + "/api/v1/trace?node=" + url.QueryEscape(q.node) + "&" + q.params)
				if err != nil {
					b.Fatal(err)
				}
				body.Reset()
				_, err = body.ReadFrom(resp.Body)
				resp.Body.Close()
				lat = append(lat, time.Since(start))
				if err != nil || resp.StatusCode != 200 {
					b.Fatalf("%s: %d %v %s", q.node, resp.StatusCode, err, body.String())
				}
				got = bytes.Count(body.Bytes(), []byte(`"key":`))
			}
			b.ReportMetric(float64(got), "nodes")
			b.ReportMetric(float64(percentile(lat, 0.5).Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(percentile(lat, 0.99).Microseconds())/1000, "p99-ms")
			b.ReportMetric(float64(slices.Max(lat).Microseconds())/1000, "max-ms")
		})
	}
}

// leaf returns a package nothing depends on.
func leaf(g *deps.Graph, edges []avro.DependencyEdge) string {
	for _, e := range edges {
		if t, err := g.Trace(deps.TraceQuery{Node: avro.NodeKey(e.FromType, e.FromID), Direction: deps.Down}); err == nil && len(t.Nodes) == 1 {
			return e.FromID
		}
	}
	return edges[0].FromID
}

// tableOver is a loaded Table over g, for the API.
func tableOver(g *deps.Graph) *deps.Table { return deps.LoadedTable(g) }

// BenchmarkDependencyViewsKafka: on the real broker, this machine's
// Debian index goes in as edge events and the edges processor and the
// graph table of one instance build the view (events/s from the first
// produce to the table holding every edge); then 5,000 images include an
// RPM of an older build of a library and a newer build becomes signed and
// gated: the time from its last satisfying event's produce
// acknowledgement to the last of its 5,000 rebuild decisions read
// read_committed. Also the process's heap with the graph loaded.
func BenchmarkDependencyViewsKafka(b *testing.B) {
	if os.Getenv("FACTORY2_KAFKA_BROKERS") == "" {
		b.Skip("needs the real broker: FACTORY2_KAFKA_BROKERS (make bench sets it)")
	}
	edges, x := debianEdges(b)
	for b.Loop() {
		benchViews(b, edges, x)
	}
}

func benchViews(b *testing.B, edges []avro.DependencyEdge, x debian.Index) {
	env := kafkatest.RequireReal(b)
	prefix := fmt.Sprintf("%s%d.", kafkatest.UniqueName(b), time.Now().UnixNano()%1e6)
	cat, err := catalog(prefix)
	if err != nil {
		b.Fatal(err)
	}
	p, err := newPipeline(env.Brokers(), cat, b.TempDir(), nil)
	if err != nil {
		b.Fatal(err)
	}
	p.cfg.CommitInterval = 0 // the default
	p.specs[2] = deps.RebuildSpec(cat, p.table.Graph, deps.RebuildRules{Context: rules.Context, Key: rules.Key, Cap: 10000})
	for _, s := range p.specs {
		if _, err := processors.NewRunner(s, p.cfg); err != nil {
			b.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := cat.Ensure(ctx, kafkatest.Client(b, env)); err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.run(ctx) }()
	defer func() { cancel(); <-done }()

	prod := kafkatest.Client(b, env, kgo.ProducerLinger(5*time.Millisecond), kgo.MaxBufferedRecords(100000))
	codec, err := avro.NewCodec()
	if err != nil {
		b.Fatal(err)
	}
	produce := func(es []avro.DependencyEdge) {
		now := time.Now()
		for i := range es {
			e := &es[i]
			e.IngestTime = now
			v, err := codec.Encode(e)
			if err != nil {
				b.Fatal(err)
			}
			prod.Produce(ctx, &kgo.Record{Topic: cat.Name(topics.EventsDeps), Key: []byte(e.FromID), Value: v}, func(_ *kgo.Record, err error) {
				if err != nil {
					b.Error(err)
				}
			})
		}
		if err := prod.Flush(ctx); err != nil {
			b.Fatal(err)
		}
	}
	waitEdges := func(want int, start time.Time) {
		last := time.Now()
		for {
			if _, n := p.table.Graph.Size(); n >= want {
				return
			}
			if time.Since(last) > 5*time.Second {
				_, n := p.table.Graph.Size()
				b.Logf("view: %d of %d edges after %s", n, want, time.Since(start).Round(time.Second))
				last = time.Now()
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	start := time.Now()
	produce(edges)
	produced := time.Since(start)
	waitEdges(len(edges), start)
	built := time.Since(start)
	b.Logf("%s %s: %d edges produced in %s, in the instance's graph after %s: %.0f events/s; heap in use %.0f MiB",
		x.Codename, x.MetaKey, len(edges), produced.Round(time.Millisecond), built.Round(time.Millisecond),
		float64(len(edges))/built.Seconds(), float64(heapInUse())/(1<<20))
	b.ReportMetric(float64(len(edges))/built.Seconds(), "view-events/s")

	// 5,000 images include the library's RPM of the older build.
	f := &fixture{t: &testing.T{}, clock: time.Now()}
	const old, newer = "openssl-3.0.1-1.fc42", "openssl-3.0.2-1.fc42"
	var imgs []avro.DependencyEdge
	for i := range 5000 {
		imgs = append(imgs, *f.edge("container", fmt.Sprintf("img%04d-1", i), avro.RelIncludes, "rpm", rpmOf(old)))
	}
	hooks, err := newHooks(env.Brokers(), cat, codec, prefix+"hooks")
	if err != nil {
		b.Fatal(err)
	}
	defer hooks.Close()
	hooks.send(b, f.build(old, "c1")...)
	produce(imgs)
	waitEdges(len(edges)+len(imgs)+3, time.Now())

	steps := f.build(newer, "c2")
	hooks.send(b, steps[:len(steps)-1]...)
	time.Sleep(500 * time.Millisecond) // the new build's state, signature and tags are in
	t0 := hooks.send(b, steps[len(steps)-1])
	// Read, read_committed, until all 5,000 are there (a whole read of the
	// topic each time: a few ms of resolution).
	n := 0
	var lastAt time.Time
	for n < len(imgs) {
		if time.Since(t0) > 60*time.Second {
			b.Fatalf("%d of %d rebuild decisions after 60s", n, len(imgs))
		}
		recs, err := processors.ReadCommitted(ctx, env.Brokers(), []string{cat.Name(topics.DecisionsRebuild)})
		if err != nil {
			b.Fatal(err)
		}
		n, lastAt = len(recs), time.Now()
	}
	d := lastAt.Sub(t0)
	b.Logf("a newer %s, signed and gated: %d rebuild decisions, the last read %s after the satisfying event's acknowledgement", newer, n, d.Round(time.Millisecond))
	b.ReportMetric(float64(d.Microseconds())/1000, "rebuild-5000-ms")
}

// hooks produces events the way the hooks do, through the ingest
// Producer (which stamps the record timestamps).
type hooks struct {
	*ingest.Producer
	cat *topics.Catalog
}

func newHooks(brokers []string, cat *topics.Catalog, codec *avro.Codec, txnID string) (*hooks, error) {
	p, err := ingest.NewProducer(ingest.ProducerConfig{Brokers: brokers, TransactionalID: txnID, Codec: codec})
	if err != nil {
		return nil, err
	}
	return &hooks{Producer: p, cat: cat}, nil
}

// send produces recs in one transaction and returns when it was
// acknowledged.
func (h *hooks) send(b testing.TB, recs ...avro.Record) time.Time {
	b.Helper()
	evs, err := (&ingest.Parser{Catalog: h.cat}).Records(recs...)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := h.Produce(ctx, evs); err != nil {
		b.Fatal(err)
	}
	return time.Now()
}
