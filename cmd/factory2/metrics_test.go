package main

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/factory2/factory2/internal/config"
)

// TestPipelineMetrics: a fresh process, before it talks to Kafka,
// exports the series alert rules and dashboards rely on (at 0), with the
// label values they select on; each metric is in DESIGN.md's table.
func TestPipelineMetrics(t *testing.T) {
	cfg := config.Default()
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.State.Dir = t.TempDir()
	p, err := newPipeline(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	_, closeHTTP, err := p.listenHTTP()
	if err != nil {
		t.Fatal(err)
	}
	defer closeHTTP()
	mfs, err := p.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*dto.MetricFamily{}
	for _, mf := range mfs {
		byName[mf.GetName()] = mf
	}
	design, err := os.ReadFile(filepath.Join("..", "..", "DESIGN.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []struct {
		name   string
		labels map[string]string // a series with these labels must exist
	}{
		{"factory2_ingest_events_total", map[string]string{"kind": "build"}},
		{"factory2_ingest_rejected_total", map[string]string{"reason": "invalid"}},
		{"factory2_decisions_total", map[string]string{"processor": "gating", "kind": "gating"}},
		{"factory2_decisions_total", map[string]string{"processor": "gating", "kind": "autosign"}},
		{"factory2_decisions_total", map[string]string{"processor": "gating", "kind": "signed"}},
		{"factory2_decisions_total", map[string]string{"processor": "compose", "kind": "compose_ready"}},
		{"factory2_decisions_total", map[string]string{"processor": "compose", "kind": "compose_readiness"}},
		{"factory2_decisions_total", map[string]string{"processor": "compose", "kind": "compose_gate"}},
		{"factory2_decisions_total", map[string]string{"processor": "rebuild", "kind": "rebuild"}},
		{"factory2_decision_latency_seconds", map[string]string{"processor": "gating", "kind": "gating"}},
		{"factory2_processor_records_dead_lettered_total", map[string]string{"processor": "gating", "topic": "events.build", "reason": "decode"}},
		{"factory2_processor_records_dead_lettered_total", map[string]string{"processor": "gating", "topic": "changelog", "reason": "quarantined"}},
		{"factory2_processor_transaction_aborts_total", map[string]string{"processor": "gating", "cause": "kafka"}},
		{"factory2_processor_rebalances_total", map[string]string{"processor": "gating", "event": "lost"}},
		{"factory2_processor_restore_remaining_records", map[string]string{"processor": "gating"}},
		{"factory2_processor_tasks_restoring", map[string]string{"processor": "gating"}},
		{"factory2_processor_consecutive_aborts", map[string]string{"processor": "gating"}},
		{"factory2_processor_last_commit_timestamp_seconds", map[string]string{"processor": "gating"}},
		{"factory2_processor_waiting_for_kafka", map[string]string{"processor": "gating"}},
		{"factory2_http_logins_total", map[string]string{"result": "wrong_token"}},
	} {
		mf := byName[w.name]
		if mf == nil {
			t.Errorf("%s is not exported by a fresh process", w.name)
			continue
		}
		if !hasSeries(mf, w.labels) {
			t.Errorf("%s has no series %v at start", w.name, w.labels)
		}
		if !strings.Contains(string(design), "`"+w.name+"`") {
			t.Errorf("%s is not in DESIGN.md's metrics table", w.name)
		}
	}
	for name := range byName {
		if strings.HasPrefix(name, "factory2_") && !documented(string(design), name) {
			t.Errorf("%s is exported but not in DESIGN.md's metrics table", name)
		}
	}
}

// documented reports whether design names metric name, itself or by a
// "prefix_*" or "…_suffix" row.
func documented(design, name string) bool {
	if strings.Contains(design, "`"+name+"`") {
		return true
	}
	for _, prefix := range []string{"factory2_state_", "factory2_kafka_", "factory2_compose_table_"} {
		if strings.HasPrefix(name, prefix) && strings.Contains(design, "`"+prefix+"*`") {
			return true
		}
	}
	if rest, ok := strings.CutPrefix(name, "factory2_processor_"); ok {
		return strings.Contains(design, "`…_"+rest+"`") || strings.Contains(design, "`factory2_processor_"+rest+"`")
	}
	return false
}

func hasSeries(mf *dto.MetricFamily, labels map[string]string) bool {
metrics:
	for _, m := range mf.GetMetric() {
		for k, v := range labels {
			found := false
			for _, l := range m.GetLabel() {
				if l.GetName() == k && l.GetValue() == v {
					found = true
				}
			}
			if !found {
				continue metrics
			}
		}
		return true
	}
	return false
}
