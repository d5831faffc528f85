package main

import (
	"testing"

	"github.com/factory2/factory2/avro"
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
