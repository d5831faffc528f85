package check

import (
	"testing"
)

// TestDashboard: deploy/grafana/factory2.json reads as a dashboard whose
// every panel and query takes its data source from the $datasource
// variable (so it imports into any Grafana), whose panel ids are unique,
// and whose every query is PromQL.
func TestDashboard(t *testing.T) {
	d, err := LoadDashboard(deployPath("grafana", "factory2.json"))
	if err != nil {
		t.Fatal(err)
	}
	if d.UID == "" || d.Title == "" {
		t.Errorf("uid %q, title %q: both needed", d.UID, d.Title)
	}
	vars := map[string]Variable{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v
	}
	if v, ok := vars["datasource"]; !ok || v.Type != "datasource" || v.QueryString() != "prometheus" {
		t.Errorf("no datasource variable of type prometheus: %+v", v)
	}
	const ds = "${datasource}"
	for _, v := range d.Templating.List {
		if v.Type == "query" && (v.Datasource == nil || v.Datasource.UID != ds) {
			t.Errorf("variable %s: data source %+v, want uid %s", v.Name, v.Datasource, ds)
		}
	}
	ids := map[int]string{}
	queries := 0
	for _, p := range d.AllPanels() {
		if prev, dup := ids[p.ID]; dup || p.ID == 0 {
			t.Errorf("panel %q: id %d (also %q)", p.Title, p.ID, prev)
		}
		ids[p.ID] = p.Title
		if p.GridPos == nil {
			t.Errorf("panel %q: no gridPos", p.Title)
		}
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || p.Datasource.UID != ds {
			t.Errorf("panel %q: data source %+v, want uid %s", p.Title, p.Datasource, ds)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q: no query", p.Title)
		}
		for _, q := range p.Targets {
			queries++
			if q.Datasource != nil && q.Datasource.UID != ds {
				t.Errorf("panel %q query %s: data source %+v, want uid %s", p.Title, q.RefID, q.Datasource, ds)
			}
		}
	}
	uses, _, err := DashboardUses(d)
	if err != nil {
		t.Fatal(err)
	}
	if len(uses) < queries {
		t.Errorf("%d metric uses in %d queries: the extraction lost some", len(uses), queries)
	}
	// What the issue asks the dashboard to show.
	used := map[string]bool{}
	for _, u := range uses {
		used[u.Name] = true
	}
	for _, want := range []string{
		"factory2_ingest_events_total", "factory2_decisions_total", "factory2_decision_latency_seconds_bucket",
		"factory2_processor_records_dead_lettered_total", "factory2_processor_task_lag_records",
		"factory2_processor_restore_remaining_records", "factory2_processor_rebalances_total",
		"factory2_processor_transaction_aborts_total", "factory2_state_disk_usage_bytes",
		"factory2_kafka_produce_bytes_total", "factory2_kafka_fetch_bytes_total", "go_memstats_heap_inuse_bytes",
	} {
		if !used[want] {
			t.Errorf("no panel shows %s", want)
		}
	}
}
