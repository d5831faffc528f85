package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/factory2/factory2/avro"
	"github.com/factory2/factory2/internal/sample"
	"github.com/factory2/factory2/processors"
)

func TestChangeText(t *testing.T) {
	before := &avro.GatingDecision{Decision: avro.Decision{Envelope: env("o")}, SubjectID: "bash-5.2.37-1.fc42",
		DecisionContext: "stable", ProductVersion: "fedora-42", PoliciesSatisfied: true, Summary: "All required tests (2 total) have passed or been waived"}
	after := &avro.GatingDecision{Decision: avro.Decision{Envelope: env("n"), Unsatisfied: []avro.Requirement{req("test-result-missing", "install")}},
		SubjectID: "bash-5.2.37-1.fc42", DecisionContext: "stable", ProductVersion: "fedora-42", Summary: "Of 3 required tests, 1 result missing"}
	for _, tc := range []struct {
		change processors.Change
		want   string
	}{
		{processors.Change{Change: processors.ChangeChanged, Before: before, After: after,
			Gained: []processors.RequirementChange{{Satisfied: false, Requirement: req("test-result-missing", "install")}},
			Lost:   []processors.RequirementChange{{Satisfied: true, Requirement: avro.Requirement{Type: "test-result-passed", Testcase: "tier0", SubjectID: "bash-5.2.37-1.fc42"}}}},
			`changed  2026-11-25 09:00:37  gating        bash-5.2.37-1.fc42             passed → waiting
           was: stable@fedora-42: All required tests (2 total) have passed or been waived
           now: stable@fedora-42: Of 3 required tests, 1 result missing
           + unsatisfied test-result-missing install
           - satisfied test-result-passed tier0
`},
		{processors.Change{Change: processors.ChangeNew, After: after},
			"new      2026-11-25 09:00:37  gating        bash-5.2.37-1.fc42             waiting  stable@fedora-42: Of 3 required tests, 1 result missing\n"},
		{processors.Change{Change: processors.ChangeGone, Before: before},
			"gone     2026-11-25 09:00:37  gating        bash-5.2.37-1.fc42             passed   stable@fedora-42: All required tests (2 total) have passed or been waived\n"},
	} {
		if got := changeText(tc.change); got != tc.want {
			t.Errorf("got\n%s\nwant\n%s", got, tc.want)
		}
	}
}

func TestRederiveSummaryText(t *testing.T) {
	s := rederiveSummary{Processor: "gating", Inputs: 57, Outputs: 45, Diff: &diffCounts{Changed: 3, New: 1, Gone: 2, Reidentified: 40, Internal: 9}}
	want := `gating: re-derived 45 outputs from 57 input records (0 dead letters)
compared with the decisions emitted: 3 changed, 1 new, 2 gone; not listed: 40 the same but re-identified, 0 identical, 9 internal records changed
nothing was published (a dry run; --apply publishes)
`
	if got := s.text(); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

// TestRederiveAgainstDev: against a running dev, --apply is refused
// before anything is re-derived; after a policy change, --diff pairs the
// decisions into changes before → after and ends with the counts.
func TestRederiveAgainstDev(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole pipeline")
	}
	d := startDev(t, "-o", "json")

	_, stderr, err := evCLIWithin(t, time.Minute, "replay", "rederive", "--processor", "gating", "--apply", "--brokers", d.broker)
	if err == nil || !strings.Contains(err.Error(), "--apply refused: 1 instance of gating running") {
		t.Errorf("--apply while dev runs: %v", err)
	}
	if strings.Contains(stderr, "applying") || strings.Contains(stderr, "re-deriving") {
		t.Errorf("--apply refused late:\n%s", stderr)
	}

	// The sample's policy with one more required test, and its signing rules.
	dir := t.TempDir()
	stricter := sample.Policy + "  - !PassingTestCaseRule {test_case_name: fedora-ci.koji-build.installability.functional}\n"
	if err := os.WriteFile(filepath.Join(dir, "sample.yaml"), []byte(stricter), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf("brokers: [%s]\ngating:\n  policies: [%s]\n  signing_rules:\n", d.broker, dir)
	for _, r := range sample.SigningRules {
		cfg += fmt.Sprintf("    - {name: %s, from: %s, to: %s, key: %s, key_id: %s, require_context: %q, product_version: %q, priority: %d}\n",
			r.Name, r.From, r.To, r.Key, r.KeyID, r.RequireContext, r.ProductVersion, r.Priority)
	}
	path := filepath.Join(t.TempDir(), "factory2.yml") // not among the policies
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}

	stdout, stderr, err := evCLIWithin(t, 2*time.Minute, "replay", "rederive", "--processor", "gating", "--diff", "-o", "text", "--config", path)
	if err != nil {
		t.Fatalf("rederive --diff: %v\n%s", err, stderr)
	}
	if !strings.HasPrefix(stderr, "re-deriving gating [") || !strings.HasSuffix(stderr, "\n") || strings.Contains(stderr, "\r") {
		t.Errorf("progress on a non-terminal: %q", stderr)
	}
	for _, want := range []string{
		`(?m)^changed  2026-11-25 09:00:13  gating +` + sample.Passing + ` +passed → waiting$`,
		`(?m)^ +now: bodhi_update_push_stable@fedora-42: Of 3 required tests, 1 result missing$`,
		`(?m)^ +\+ unsatisfied test-result-missing fedora-ci.koji-build.installability.functional$`,
		`(?m)^gone     2026-11-25 09:00:13  autosign +` + sample.Passing + ` +sign +fedora-42-gold`,
		`(?m)^compared with the decisions emitted: \d+ changed, 0 new, 3 gone; `,
		`nothing was published \(a dry run; --apply publishes\)\n$`,
	} {
		if !regexp.MustCompile(want).MatchString(stdout) {
			t.Errorf("no %q in:\n%s", want, stdout)
		}
	}
	if regexp.MustCompile(`(?m)^(add|remove) `).MatchString(stdout) {
		t.Errorf("unpaired adds and removes:\n%s", stdout)
	}

	stdout, stderr, err = evCLIWithin(t, 2*time.Minute, "replay", "rederive", "--processor", "gating", "--diff", "-o", "json", "--config", path)
	if err != nil {
		t.Fatalf("rederive --diff -o json: %v\n%s", err, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	var sum rederiveSummary
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &sum); err != nil || sum.Diff == nil || sum.Diff.Gone != 3 || sum.Diff.Changed == 0 {
		t.Errorf("summary %s: %+v %v", lines[len(lines)-1], sum.Diff, err)
	}
	for _, l := range lines[:len(lines)-1] {
		var c struct {
			Change string          `json:"change"`
			About  string          `json:"about"`
			Before json.RawMessage `json:"before"`
		}
		if err := json.Unmarshal([]byte(l), &c); err != nil || c.Change == "" || c.About == "" {
			t.Errorf("change line %s: %v", l, err)
		}
	}
}
