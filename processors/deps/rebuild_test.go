package deps

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/factory2/factory2/avro"
	"github.com/factory2/factory2/processors"
	"github.com/factory2/factory2/state"
	"github.com/factory2/factory2/topics"
)

type rebuildTask struct {
	t  *testing.T
	db *state.DB
	p  processors.Processor
}

func newRebuildTask(t *testing.T, g *Graph, rules RebuildRules) *rebuildTask {
	db, err := state.Open(state.Options{Dir: "rebuild", FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	cat, err := topics.New(topics.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return &rebuildTask{t: t, db: db, p: RebuildSpec(cat, g, rules).New(0)}
}

func (k *rebuildTask) view(v *avro.ComposeMember) []*avro.RebuildDecision {
	k.t.Helper()
	b := k.db.NewBatch()
	defer b.Close()
	var out []*avro.RebuildDecision
	c := processors.NewContext(0, b, func(o processors.Output) { out = append(out, o.Record.(*avro.RebuildDecision)) })
	if err := k.p.Process(c, &processors.Input{Key: []byte(v.NVR), Record: v}); err != nil {
		k.t.Fatal(err)
	}
	if err := k.db.Commit(b); err != nil {
		k.t.Fatal(err)
	}
	return out
}

func signedAndGated(nvr string) *avro.ComposeMember {
	return &avro.ComposeMember{Envelope: avro.Envelope{ID: "view-" + nvr}, NVR: nvr, Package: avro.PackageOf(nvr), State: avro.StateComplete,
		SignedKeys: []string{"105ef944"}, Gating: []avro.MemberGating{{DecisionContext: "bodhi_update_push_stable", Satisfied: true}}}
}

func rebuildGraph() *Graph {
	g := chainGraph()
	for _, e := range []Edge{
		{"module:nodejs-20-4220", avro.RelContains, "build:openssl-3.0.1-1.fc42"},
		{"container:standalone-1", avro.RelEmbeds, "build:openssl-3.0.1-1.fc42"},
		// An image that has the new build already is still an image of
		// the package; one of another package is not touched.
		{"rpm:zlib-1.3-1.fc42.x86_64.rpm", avro.RelProducedBy, "build:zlib-1.3-1.fc42"},
		{"container:zlib-only-1", avro.RelIncludes, "rpm:zlib-1.3-1.fc42.x86_64.rpm"},
		{"build:openssl-3.0.0-1.fc42", avro.RelBuiltFrom, "source:https://src.example/rpms/openssl#c0"},
	} {
		g.Add(e)
	}
	return g
}

func TestRebuildOnASignedAndGatedBuild(t *testing.T) {
	k := newRebuildTask(t, rebuildGraph(), RebuildRules{Context: "bodhi_update_push_stable", Key: "105ef944"})
	unsigned := signedAndGated("openssl-3.0.2-1.fc42")
	unsigned.SignedKeys = nil
	if out := k.view(unsigned); len(out) != 0 {
		t.Fatalf("decided before signing: %d", len(out))
	}
	out := k.view(signedAndGated("openssl-3.0.2-1.fc42"))
	var got []string
	for _, d := range out {
		got = append(got, fmt.Sprintf("%d %s:%s", d.Priority, d.SubjectType, d.SubjectID))
		if d.TriggerID != "openssl-3.0.2-1.fc42" || d.Reason == "" || d.ID == "" {
			t.Errorf("decision %+v", d)
		}
	}
	want := []string{"0 container:base-42-1", "0 container:standalone-1", "0 module:nodejs-20-4220", "1 container:toolbox-42-1"}
	if !slices.Equal(got, want) {
		t.Fatalf("decisions %v, want %v (the parent image before its child)", got, want)
	}
	if r := out[3].Reason; r != "container:toolbox-42-1 -parent-> container:base-42-1 -includes-> rpm:openssl-libs-3.0.1-1.fc42.x86_64.rpm -produced-by-> build:openssl-3.0.1-1.fc42" {
		t.Fatalf("reason chain %q", r)
	}
	// Seen again, and after a revoke and a return: decided once.
	if out := k.view(signedAndGated("openssl-3.0.2-1.fc42")); len(out) != 0 {
		t.Fatalf("again: %d", len(out))
	}
	k.view(unsigned)
	if out := k.view(signedAndGated("openssl-3.0.2-1.fc42")); len(out) != 0 {
		t.Fatalf("after a revoke and a return: %d", len(out))
	}
	// An older build than those shipped triggers nothing.
	if out := k.view(signedAndGated("openssl-2.9-1.fc42")); len(out) != 0 {
		t.Fatalf("older build: %d", len(out))
	}
}

func TestRebuildCap(t *testing.T) {
	g := NewGraph()
	g.Add(Edge{"rpm:lib-1-1.x86_64.rpm", avro.RelProducedBy, "build:lib-1-1"})
	for i := range 5000 {
		g.Add(Edge{fmt.Sprintf("container:app%04d", i), avro.RelIncludes, "rpm:lib-1-1.x86_64.rpm"})
	}
	k := newRebuildTask(t, g, RebuildRules{Cap: 100})
	out := k.view(signedAndGated("lib-1-2"))
	if len(out) != 100 || !strings.Contains(out[0].Satisfied[0].Detail, "4900 more dependents over the cap of 100") {
		t.Fatalf("%d decisions; %q", len(out), out[0].Satisfied[0].Detail)
	}
}
