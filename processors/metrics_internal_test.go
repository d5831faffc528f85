package processors

import (
	"slices"
	"testing"

	"github.com/factory2/factory2/avro"
	"github.com/factory2/factory2/topics"
)

// TestDecisionKinds: only decision topics count as decisions, one kind
// per topic, except the compose topic's three, told apart by the
// record's Kind.
func TestDecisionKinds(t *testing.T) {
	cat, err := topics.New(topics.Config{Prefix: "t.", Partitions: 1, Replication: 1})
	if err != nil {
		t.Fatal(err)
	}
	r := &Runner{
		spec: Spec{Outputs: []string{cat.Name(topics.DecisionsGating), cat.Name(topics.GatingBuilds),
			cat.Name(topics.DecisionsComposeReady), cat.Name(topics.DecisionsRebuild)}},
		cfg:     Config{Catalog: cat},
		metrics: newMetrics("t.g"),
	}
	r.initDecisionOuts()
	var kinds []string
	for _, k := range r.decisionKinds {
		kinds = append(kinds, k.kind)
	}
	if want := []string{"gating", "compose_ready", "compose_readiness", "compose_gate", "rebuild"}; !slices.Equal(kinds, want) {
		t.Fatalf("kinds %v, want %v", kinds, want)
	}
	if len(r.decisionOuts) != 3 {
		t.Fatalf("%d decision outputs, want 3 (gating.builds is not a decision topic)", len(r.decisionOuts))
	}
	compose := &r.decisionOuts[1]
	for _, c := range []struct {
		rec  avro.Record
		kind string
	}{
		{&avro.ComposeReadyDecision{Kind: avro.ComposeReady}, "compose_ready"},
		{&avro.ComposeReadyDecision{}, "compose_ready"},
		{&avro.ComposeReadyDecision{Kind: avro.ComposeReadiness}, "compose_readiness"},
		{&avro.ComposeReadyDecision{Kind: avro.ComposeGate}, "compose_gate"},
	} {
		if got := r.decisionKinds[compose.slot(c.rec)].kind; got != c.kind {
			t.Errorf("%+v counts as %s, want %s", c.rec, got, c.kind)
		}
	}
	if got := r.decisionKinds[r.decisionOuts[2].slot(&avro.RebuildDecision{})].kind; got != "rebuild" {
		t.Errorf("a rebuild decision counts as %s", got)
	}
}
