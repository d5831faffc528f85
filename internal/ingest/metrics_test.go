package ingest

import (
	"errors"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/factory2/factory2/avro"
)

// TestEventTypes: EventTypes are exactly the contract's types that
// ingestion accepts as events (not decisions, not internal records).
func TestEventTypes(t *testing.T) {
	accepted := map[string]bool{}
	for _, s := range avro.Schemas() {
		rec, err := avro.NewRecord(s.TypeName)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Alias(rec); err == nil {
			accepted[s.TypeName] = true
		} else if !errors.Is(err, ErrDecision) && !errors.Is(err, avro.ErrUnknownType) {
			t.Errorf("%s: %v", s.TypeName, err)
		}
	}
	if len(accepted) != len(EventTypes) {
		t.Errorf("accepted event types %v, EventTypes %v", accepted, EventTypes)
	}
	for _, k := range EventTypes {
		if !accepted[k] {
			t.Errorf("EventTypes has %q, which ingestion does not accept", k)
		}
	}
}

// TestMetrics: every kind and reason exports 0 from the start, and
// counts move by what was committed or refused.
func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(reg, "factory2_ingest_events_total"); n != len(EventTypes)+1 {
		t.Errorf("%d event series at start, want %d", n, len(EventTypes)+1)
	}
	if n := testutil.CollectAndCount(reg, "factory2_ingest_rejected_total"); n != len(RejectReasons) {
		t.Errorf("%d reject series at start, want %d", n, len(RejectReasons))
	}
	m.Committed([]Produced{{Type: "build"}, {Type: "build"}, {Type: "sign"}})
	m.Rejected("invalid")
	if got := testutil.ToFloat64(m.events["build"]); got != 2 {
		t.Errorf("build events %v, want 2", got)
	}
	if got := testutil.ToFloat64(m.events["sign"]); got != 1 {
		t.Errorf("sign events %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.rejected["invalid"]); got != 1 {
		t.Errorf("invalid rejections %v, want 1", got)
	}
}
