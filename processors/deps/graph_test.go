package deps

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/factory2/factory2/avro"
	"github.com/factory2/factory2/processors"
	"github.com/factory2/factory2/state"
)

func keys(t *Trace) []string {
	var out []string
	for _, n := range t.Nodes {
		out = append(out, n.Key)
	}
	return out
}

func mustTrace(t *testing.T, g *Graph, q TraceQuery) *Trace {
	t.Helper()
	tr, err := g.Trace(q)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// chainGraph: an upstream commit built into a build, whose RPM an image
// includes, which a child image is built on, which a compose contains,
// which a product is made from.
func chainGraph() *Graph {
	g := NewGraph()
	for _, e := range []Edge{
		{"build:openssl-3.0.1-1.fc42", avro.RelBuiltFrom, "source:https://src.example/rpms/openssl#c1"},
		{"rpm:openssl-libs-3.0.1-1.fc42.x86_64.rpm", avro.RelProducedBy, "build:openssl-3.0.1-1.fc42"},
		{"container:base-42-1", avro.RelIncludes, "rpm:openssl-libs-3.0.1-1.fc42.x86_64.rpm"},
		{"container:toolbox-42-1", avro.RelParent, "container:base-42-1"},
		{"compose:Fedora-42-20261101.0", avro.RelContains, "container:toolbox-42-1"},
		{"product:fedora-42", avro.RelMadeFrom, "compose:Fedora-42-20261101.0"},
	} {
		g.Add(e)
	}
	return g
}

func TestTraceDownFromACommitToTheProduct(t *testing.T) {
	g := chainGraph()
	tr := mustTrace(t, g, TraceQuery{Node: "source:https://src.example/rpms/openssl#c1", Direction: Down})
	want := []string{"source:https://src.example/rpms/openssl#c1", "build:openssl-3.0.1-1.fc42", "rpm:openssl-libs-3.0.1-1.fc42.x86_64.rpm",
		"container:base-42-1", "container:toolbox-42-1", "compose:Fedora-42-20261101.0", "product:fedora-42"}
	if !slices.Equal(keys(tr), want) {
		t.Fatalf("down: %v", keys(tr))
	}
	// "Which composes and products ship code from this commit?" is one call.
	tr = mustTrace(t, g, TraceQuery{Node: "source:https://src.example/rpms/openssl#c1", Direction: Down, Types: []string{"compose", "product"}})
	if got := keys(tr); !slices.Equal(got, []string{"source:https://src.example/rpms/openssl#c1", "compose:Fedora-42-20261101.0", "product:fedora-42"}) {
		t.Fatalf("types: %v", got)
	}
	if n := tr.Nodes[1]; n.Parent != tr.Node || len(n.Via) != 4 || n.Via[0] != "build:openssl-3.0.1-1.fc42" {
		t.Fatalf("the compose's way: %+v", n)
	}
	// "Which sources and builds went into this compose?"
	tr = mustTrace(t, g, TraceQuery{Node: "compose:Fedora-42-20261101.0", Direction: Up, Types: []string{"source", "build"}})
	if got := keys(tr); !slices.Equal(got, []string{"compose:Fedora-42-20261101.0", "build:openssl-3.0.1-1.fc42", "source:https://src.example/rpms/openssl#c1"}) {
		t.Fatalf("up: %v", got)
	}
	tr = mustTrace(t, g, TraceQuery{Node: "build:openssl-3.0.1-1.fc42", Direction: Down, Depth: 2})
	if got := keys(tr); len(got) != 3 || tr.Nodes[2].Depth != 2 {
		t.Fatalf("depth 2: %v", got)
	}
	tr = mustTrace(t, g, TraceQuery{Node: "build:openssl-3.0.1-1.fc42", Direction: Down, Relations: []string{avro.RelProducedBy}})
	if got := keys(tr); len(got) != 2 {
		t.Fatalf("produced-by only: %v", got)
	}
	if _, err := g.Trace(TraceQuery{Node: "build:nope-1-1"}); err == nil {
		t.Fatal("an unknown node answered")
	}
}

func TestRemovedEdgesAndOrigins(t *testing.T) {
	g := chainGraph()
	e := Edge{"container:base-42-1", avro.RelIncludes, "rpm:openssl-libs-3.0.1-1.fc42.x86_64.rpm"}
	g.Add(e) // a second origin asserts it
	g.Remove(e)
	if tr := mustTrace(t, g, TraceQuery{Node: "build:openssl-3.0.1-1.fc42", Direction: Down}); len(tr.Nodes) != 7-1 {
		t.Fatalf("one origin left, the edge stays: %v", keys(tr))
	}
	g.Remove(e)
	if tr := mustTrace(t, g, TraceQuery{Node: "build:openssl-3.0.1-1.fc42", Direction: Down}); len(tr.Nodes) != 2 {
		t.Fatalf("edge gone, the walk stops at the RPM: %v", keys(tr))
	}
	g.Remove(e) // a tombstone whose put was compacted away
	if _, edges := g.Size(); edges != 5 {
		t.Fatalf("%d edges", edges)
	}
}

func TestCyclesEnd(t *testing.T) {
	g := NewGraph()
	for i := range 5 {
		g.Add(Edge{fmt.Sprintf("rpm:p%d", i), avro.RelRequires, fmt.Sprintf("rpm:p%d", (i+1)%5)})
	}
	g.Add(Edge{"rpm:p0", avro.RelRequires, "rpm:p0x"})
	tr := mustTrace(t, g, TraceQuery{Node: "rpm:p0", Direction: Up})
	if len(tr.Nodes) != 6 || tr.Walked != 6 {
		t.Fatalf("cycle: %v", keys(tr))
	}
}

func TestFiftyThousandDependents(t *testing.T) {
	g := NewGraph()
	for i := range 50000 {
		g.Add(Edge{fmt.Sprintf("deb:pkg%05d", i), avro.RelRequires, "deb:libc6"})
	}
	tr := mustTrace(t, g, TraceQuery{Node: "deb:libc6", Direction: Down})
	if len(tr.Nodes) != DefaultMaxNodes || !tr.Truncated {
		t.Fatalf("%d nodes, truncated %v", len(tr.Nodes), tr.Truncated)
	}
	tr = mustTrace(t, g, TraceQuery{Node: "deb:libc6", Direction: Down, MaxNodes: 60000})
	if len(tr.Nodes) != 50001 || tr.Truncated {
		t.Fatalf("%d nodes, truncated %v", len(tr.Nodes), tr.Truncated)
	}
	// Removing one from the middle of a 50,000-long adjacency list.
	g.Remove(Edge{"deb:pkg25000", avro.RelRequires, "deb:libc6"})
	if _, e := g.Size(); e != 49999 {
		t.Fatalf("%d edges", e)
	}
}

func TestTraceText(t *testing.T) {
	g := chainGraph()
	tr := mustTrace(t, g, TraceQuery{Node: "build:openssl-3.0.1-1.fc42", Direction: Down, Types: []string{"container", "product"}})
	var b strings.Builder
	if err := tr.WriteTree(&b); err != nil {
		t.Fatal(err)
	}
	want := "build:openssl-3.0.1-1.fc42\n" +
		"  container:base-42-1  (◀ includes via rpm:openssl-libs-3.0.1-1.fc42.x86_64.rpm)\n" +
		"    container:toolbox-42-1  (◀ parent)\n" +
		"      product:fedora-42  (◀ made-from via compose:Fedora-42-20261101.0)\n"
	if b.String() != want {
		t.Fatalf("tree:\n%s\nwant:\n%s", b.String(), want)
	}
	b.Reset()
	if err := tr.WriteDOT(&b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `"container:toolbox-42-1" -> "container:base-42-1" [label="parent"];`) {
		t.Fatalf("dot:\n%s", b.String())
	}
}

// edgesTask runs the edges processor over an in-memory state and returns
// the graph its changelog would give (applied the way the Table does).
type edgesTask struct {
	t  *testing.T
	db *state.DB
	g  *Graph
}

func newEdgesTask(t *testing.T) *edgesTask {
	db, err := state.Open(state.Options{Dir: "edges", FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return &edgesTask{t: t, db: db, g: NewGraph()}
}

func (k *edgesTask) process(key string, r avro.Record) {
	k.t.Helper()
	b := k.db.NewBatch()
	defer b.Close()
	c := processors.NewContext(0, b, func(processors.Output) { k.t.Fatal("the edges processor emits nothing") })
	if err := (&Edges{}).Process(c, &processors.Input{Key: []byte(key), Record: r}); err != nil {
		k.t.Fatal(err)
	}
	// What the changelog carries: the last write of each changed key.
	if err := b.Changes(StoreEdges, func(key, value []byte) {
		_, e, ok := parseEdgeKey(key)
		if !ok {
			k.t.Fatalf("key %q", key)
		}
		if value == nil {
			k.g.Remove(e)
		} else {
			k.g.Add(e)
		}
	}); err != nil {
		k.t.Fatal(err)
	}
	if err := k.db.Commit(b); err != nil {
		k.t.Fatal(err)
	}
}

func TestEdgesFromEvents(t *testing.T) {
	k := newEdgesTask(t)
	nvr := "openssl-3.0.1-1.fc42"
	build := &avro.BuildEvent{Kind: avro.BuildStateChange, NVR: nvr, State: avro.StateComplete,
		SourceURL: "https://src.example/rpms/openssl", SourceCommit: "c1", Buildroot: []string{"gcc-14-1.fc42"},
		Artifacts: []avro.Artifact{{Name: "openssl-libs-3.0.1-1.fc42.x86_64.rpm", Type: "rpm"}}}
	k.process(nvr, build)
	k.process(nvr, build) // again: nothing new
	if n, e := k.g.Size(); n != 4 || e != 3 {
		t.Fatalf("%d nodes, %d edges", n, e)
	}
	img := &avro.DependencyEdge{FromType: "container", FromID: "base-42-1", Relation: avro.RelIncludes, ToType: "rpm", ToID: "openssl-libs-3.0.1-1.fc42.x86_64.rpm"}
	k.process("base-42-1", img)
	k.process("Fedora-42-updates", &avro.ComposeReadyDecision{Kind: avro.ComposeReady, ComposeID: "Fedora-42-updates",
		Manifest: []avro.ManifestEntry{{NVR: nvr}}})
	tr := mustTrace(t, k.g, TraceQuery{Node: "source:https://src.example/rpms/openssl#c1", Direction: Down})
	if got := keys(tr); len(got) != 5 {
		t.Fatalf("down from the commit: %v", got)
	}
	// A new compose-ready replaces the manifest's edges.
	k.process("Fedora-42-updates", &avro.ComposeReadyDecision{Kind: avro.ComposeReady, ComposeID: "Fedora-42-updates",
		Manifest: []avro.ManifestEntry{{NVR: "bash-5.2-1.fc42"}}})
	if got := mustTrace(t, k.g, TraceQuery{Node: "compose:Fedora-42-updates", Direction: Up}); !slices.Equal(keys(got), []string{"compose:Fedora-42-updates", "build:bash-5.2-1.fc42"}) {
		t.Fatalf("replaced manifest: %v", keys(got))
	}
	img.Removed = true
	k.process("base-42-1", img)
	if got := mustTrace(t, k.g, TraceQuery{Node: "rpm:openssl-libs-3.0.1-1.fc42.x86_64.rpm", Direction: Down}); len(got.Nodes) != 1 {
		t.Fatalf("removed edge: %v", keys(got))
	}
	// A deleted build loses its edges.
	k.process(nvr, &avro.BuildEvent{Kind: avro.BuildStateChange, NVR: nvr, State: avro.StateDeleted})
	if _, e := k.g.Size(); e != 1 { // only the compose's
		t.Fatalf("%d edges after the deletion", e)
	}
}

func TestRPMVersionOrder(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"1.0", "1.0", 0}, {"1.0", "1.1", -1}, {"1.10", "1.9", 1}, {"1.0a", "1.0", 1},
		{"1.0~rc1", "1.0", -1}, {"1.0^git1", "1.0", 1}, {"2.0", "1.99", 1}, {"1.001", "1.1", 0},
		{"1.a", "1.1", -1}, {"5.2.26", "5.2.37", -1},
	} {
		if got := rpmvercmp(tc.a, tc.b); got != tc.want {
			t.Errorf("rpmvercmp(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
	if compareNVR("openssl-3.0.1-1.fc42", "openssl-3.0.1-2.fc42") >= 0 || compareNVR("openssl-3.0.10-1.fc42", "openssl-3.0.9-9.fc42") <= 0 {
		t.Fatal("NVR order")
	}
}

func TestTraceJSONIsEncodingJSONs(t *testing.T) {
	g := chainGraph()
	g.Add(Edge{"container:we\"ird\\id\n\u2028\x01é", avro.RelIncludes, "rpm:openssl-libs-3.0.1-1.fc42.x86_64.rpm"})
	for _, q := range []TraceQuery{
		{Node: "build:openssl-3.0.1-1.fc42", Direction: Down},
		{Node: "build:openssl-3.0.1-1.fc42", Direction: Down, Types: []string{"product"}, Depth: 9},
		{Node: "product:fedora-42", Direction: Up, MaxNodes: 2},
	} {
		tr := mustTrace(t, g, q)
		want, err := json.Marshal(tr)
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(tr); err != nil {
			t.Fatal(err)
		}
		if got := string(tr.AppendJSON(nil)); got != b.String() {
			t.Fatalf("AppendJSON:\n%s\nencoding/json:\n%s", got, b.String())
		}
		direct, err := g.AppendTraceJSON([]byte("prefix"), q)
		if err != nil || string(direct) != "prefix"+b.String() {
			t.Fatalf("AppendTraceJSON (%v):\n%s\nencoding/json:\n%s", err, direct, b.String())
		}
		_ = want
	}
}
