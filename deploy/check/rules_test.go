package check

import (
	"strings"
	"testing"
	"time"
)

// TestAlertRules: deploy/prometheus/alerts.yml is a rule file Prometheus
// loads (its own parser: unknown fields, expressions and templates are
// errors), and every alert has a severity and says what to check.
func TestAlertRules(t *testing.T) {
	groups, err := LoadRules(deployPath("prometheus", "alerts.yml"))
	if err != nil {
		t.Fatalf("Prometheus refuses deploy/prometheus/alerts.yml:\n%v", err)
	}
	alerts := map[string]bool{}
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			if alerts[r.Alert] {
				t.Errorf("alert %s: defined twice", r.Alert)
			}
			alerts[r.Alert] = true
			switch r.Labels["severity"] {
			case "warning", "critical":
			default:
				t.Errorf("alert %s: severity %q, want warning or critical", r.Alert, r.Labels["severity"])
			}
			for _, a := range []string{"summary", "description", "runbook"} {
				if len(strings.TrimSpace(r.Annotations[a])) < 20 {
					t.Errorf("alert %s: annotation %s %q says too little", r.Alert, a, r.Annotations[a])
				}
			}
			if !strings.Contains(r.Expr, `job="factory2"`) {
				t.Errorf("alert %s: expression does not select job=\"factory2\": %s", r.Alert, r.Expr)
			}
			if time.Duration(r.For) > time.Hour {
				t.Errorf("alert %s: for %v: an hour or more is too late", r.Alert, r.For)
			}
		}
	}
	// What the issue asks alerts for: lag, dead letters, decision latency,
	// restore stuck, abort loops; and what an operator needs besides.
	for _, want := range []string{
		"Factory2InstanceDown", "Factory2WaitingForKafka", "Factory2LagHigh", "Factory2LagGrowing",
		"Factory2NoCommits", "Factory2TransactionAbortLoop", "Factory2DeadLetters",
		"Factory2RestoreStuck", "Factory2DecisionLatencyHigh",
	} {
		if !alerts[want] {
			t.Errorf("no alert %s", want)
		}
	}
	uses, _, err := RuleUses(groups)
	if err != nil {
		t.Fatal(err)
	}
	if len(uses) < len(alerts) {
		t.Errorf("%d metric uses in %d alerts: the extraction lost some", len(uses), len(alerts))
	}
}

// TestLoadRulesRefuses: the rule check fails on what Prometheus refuses.
func TestLoadRulesRefuses(t *testing.T) {
	for name, text := range map[string]string{
		"bad expression": "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: rate(x[5m]\n",
		"unknown field":  "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up == 0\n    severity: critical\n",
		"bad template":   "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up == 0\n    annotations: {summary: \"{{ $labels.x \"}\n",
	} {
		path := t.TempDir() + "/rules.yml"
		writeFile(t, path, text)
		if _, err := LoadRules(path); err == nil {
			t.Errorf("%s: loaded", name)
		}
	}
}
