package gating

import (
	"slices"
	"strings"
	"testing"

	"github.com/factory2/factory2/avro"
)

const f41NVR = "bash-5.2.26-3.fc41"

const f41Policies = `
--- !Policy
id: "fedora_stable"
product_versions: [fedora-*]
decision_contexts: [bodhi_update_push_stable, bodhi_update_push_stable_critpath]
subject_type: koji_build
rules:
  - !PassingTestCaseRule {test_case_name: fedora-ci.koji-build.tier0.functional}
  - !PassingTestCaseRule {test_case_name: dist.rpmdeplint}
--- !Policy
id: "rhel"
product_versions: [rhel-*]
decision_context: bodhi_update_push_stable
rules:
  - !PassingTestCaseRule {test_case_name: other}
`

// TestGatingSequence feeds a sequence of events and checks the decision
// updates: one per change of the requirement sets, none for a new result
// id with the same outcome or a duplicate, each carrying the previous one.
func TestGatingSequence(t *testing.T) {
	h := newHarness(t, f41Policies, nil)
	on := subj(f41NVR)
	type want struct {
		summaries []string // of the updates emitted, in key order
		previous  []string // their Previous summaries ("" for none)
	}
	const tier0 = "fedora-ci.koji-build.tier0.functional"
	steps := []struct {
		name string
		rec  avro.Record
		want want
	}{
		{"build complete: first decisions", build(avro.StateComplete, 0, on),
			want{[]string{"Of 2 required tests, 2 results missing", "Of 2 required tests, 2 results missing"}, []string{"", ""}}},
		{"tag: no change", tag("f41-updates-candidate", 1, on), want{}},
		{"queued: pending", result(tier0, "QUEUED", 2, on, rid("1")),
			want{[]string{"Of 2 required tests, 1 result missing, 1 test incomplete", "Of 2 required tests, 1 result missing, 1 test incomplete"},
				[]string{"Of 2 required tests, 2 results missing", "Of 2 required tests, 2 results missing"}}},
		{"running: still pending, no change", result(tier0, "RUNNING", 3, on, rid("2")), want{}},
		{"passed", result(tier0, "PASSED", 4, on, rid("3"), id("passed-3")),
			want{[]string{"Of 2 required tests, 1 result missing", "Of 2 required tests, 1 result missing"},
				[]string{"Of 2 required tests, 1 result missing, 1 test incomplete", "Of 2 required tests, 1 result missing, 1 test incomplete"}}},
		{"passed again, new result id: no change", result(tier0, "PASSED", 5, on, rid("4")), want{}},
		{"duplicate: no change", result(tier0, "PASSED", 4, on, rid("3"), id("passed-3")), want{}},
		{"failed", result("dist.rpmdeplint", "FAILED", 6, on, rid("5")),
			want{[]string{"Of 2 required tests, 1 test failed", "Of 2 required tests, 1 test failed"},
				[]string{"Of 2 required tests, 1 result missing", "Of 2 required tests, 1 result missing"}}},
		{"waiver for another product version: no change", waive("dist.rpmdeplint", "fedora-40", true, 7, on), want{}},
		{"waived", waive("dist.rpmdeplint", "fedora-41", true, 8, on, rid("20")),
			want{[]string{"All required tests (2 total) have passed or been waived", "All required tests (2 total) have passed or been waived"},
				[]string{"Of 2 required tests, 1 test failed", "Of 2 required tests, 1 test failed"}}},
		{"waived again: no change", waive("dist.rpmdeplint", "fedora-41", true, 9, on, rid("21")), want{}},
		{"unwaived", waive("dist.rpmdeplint", "fedora-41", false, 10, on, rid("22")),
			want{[]string{"Of 2 required tests, 1 test failed", "Of 2 required tests, 1 test failed"},
				[]string{"All required tests (2 total) have passed or been waived", "All required tests (2 total) have passed or been waived"}}},
	}
	var lastID string
	for _, st := range steps {
		out := gatingOf(h.apply(st.rec))
		var sums, prevs []string
		for _, d := range out {
			sums = append(sums, d.Summary)
			p := ""
			if d.Previous != nil {
				p = d.Previous.Summary
			}
			prevs = append(prevs, p)

			if d.SubjectID != f41NVR || d.SubjectType != SubjectKojiBuild || d.ProductVersion != "fedora-41" ||
				!slices.Equal(d.AppliedPolicies, []string{"fedora_stable"}) {
				t.Errorf("%s: decision %+v", st.name, d)
			}
			if d.Source != SourceGating || !d.EventTime.Equal(st.rec.Env().EventTime) ||
				!d.IngestTime.Equal(st.rec.Env().IngestTime) || d.Origin != st.rec.Env().Origin {
				t.Errorf("%s: envelope %+v", st.name, d.Envelope)
			}
			if d.PolicyVersion != h.e.Policies().Version() || len(d.ID) != 64 || d.ID == lastID {
				t.Errorf("%s: policy version %s, id %s", st.name, d.PolicyVersion, d.ID)
			}
			lastID = d.ID
			if d.PoliciesSatisfied != (len(d.Unsatisfied) == 0) {
				t.Errorf("%s: satisfied %v with %d unsatisfied", st.name, d.PoliciesSatisfied, len(d.Unsatisfied))
			}
		}
		if !slices.Equal(sums, st.want.summaries) || !slices.Equal(prevs, st.want.previous) {
			t.Errorf("%s: updates %q (previous %q), want %q (previous %q)", st.name, sums, prevs, st.want.summaries, st.want.previous)
		}
	}
	// The last decision rests on the latest tier0 result, the failed
	// result and the unwaiver; not on superseded results.
	all := gatingOf(h.out)
	last := all[len(all)-1]
	if last.DecisionContext != "bodhi_update_push_stable_critpath" {
		t.Fatalf("last %s", last.DecisionContext)
	}
	for _, id := range []string{"ev-005", "ev-006", "ev-010"} {
		if !slices.Contains(last.DerivedFrom, id) {
			t.Errorf("DerivedFrom %v lacks %s", last.DerivedFrom, id)
		}
	}
	if slices.Contains(last.DerivedFrom, "ev-003") || slices.Contains(last.DerivedFrom, "passed-3") {
		t.Errorf("DerivedFrom %v has the superseded QUEUED result", last.DerivedFrom)
	}
	if last.Previous == nil || !last.Previous.PoliciesSatisfied || last.Previous.Satisfied[0].WaiverID != "20" {
		t.Errorf("previous %+v", last.Previous)
	}
}

// TestGatingDeterministic: the same events give byte-identical decisions
// (and state), run after run.
func TestGatingDeterministic(t *testing.T) {
	run := func() (string, []byte) {
		h := newHarness(t, fedoraYAML+remoteRulePolicy, []SigningRule{
			{Name: "build", From: "f41-updates-candidate", To: "f41-updates-candidate", Key: "k", KeyID: "e99d6ad1"},
			{Name: "gold", From: "f41-signing-pending", To: "f41-updates-testing-pending", Key: "g", KeyID: "a15b79cc",
				RequireContext: "bodhi_update_push_stable"},
		}, asFedora26)
		out := h.apply(lifecycle()...)
		return mustJSON(t, out), h.stored
	}
	j1, s1 := run()
	j2, s2 := run()
	if j1 != j2 || string(s1) != string(s2) {
		t.Fatal("the same events gave different outputs")
	}
	if !strings.Contains(j1, `"decision_context": "bodhi_update_push_stable"`) || !strings.Contains(j1, `"signed": true`) {
		t.Errorf("unexpected output:\n%s", j1)
	}
}

// TestGatingNoProductVersion: a subject whose product version cannot be
// told gets no decisions, until a waiver names one (Greenwave's WaiverDB
// listener).
func TestGatingNoProductVersion(t *testing.T) {
	h := newHarness(t, `
--- !Policy
id: p
product_versions: [fedora-*]
decision_context: bodhi_update_push
subject_type: bodhi_update
rules:
  - !PassingTestCaseRule {test_case_name: update.install}
`, nil)
	const alias = "FEDORA-2024-abcdef"
	if out := h.apply(result("update.install", "FAILED", 1, subj(alias), typ("bodhi_update"))); len(out) != 0 {
		t.Fatalf("decisions without a product version: %v", out)
	}
	out := gatingOf(h.apply(waive("update.install", "fedora-41", true, 2, subj(alias), typ("bodhi_update"))))
	if len(out) != 1 || out[0].ProductVersion != "fedora-41" || !out[0].PoliciesSatisfied || out[0].SubjectType != SubjectBodhiUpdate {
		t.Fatalf("got %s", mustJSON(t, out))
	}
}

func TestGatingNilTrigger(t *testing.T) {
	h := newHarness(t, f41Policies, nil)
	h.apply(build(avro.StateComplete, 0, subj(f41NVR)))
	s := h.subject()
	if out := h.e.Gating(s, nil); len(out) != 0 {
		t.Fatalf("nothing changed, yet %s", mustJSON(t, out))
	}
	s.Gating, s.GatingInput = nil, 0
	a := h.e.Gating(s, nil)
	s.Gating, s.GatingInput = nil, 0
	b := h.e.Gating(s, nil)
	if len(a) != 2 || mustJSON(t, a) != mustJSON(t, b) || !a[0].EventTime.IsZero() {
		t.Errorf("got %s", mustJSON(t, a))
	}
}

func TestEvaluationWriteText(t *testing.T) {
	h := newHarness(t, fedoraYAML, nil)
	h.apply(result("dist.abicheck", "FAILED", 1, rid("11")), waive("dist.abicheck", "fedora-26", true, 2),
		result("dist.rpmdeplint", "RUNNING", 3, rid("12")))
	var b strings.Builder
	if err := h.eval(Query{DecisionContexts: []string{"bodhi_update_push_stable"}, ProductVersion: "fedora-26"}).WriteText(&b); err != nil {
		t.Fatal(err)
	}
	want := `koji_build nethack-1.2.3-1.el9000: bodhi_update_push_stable @ fedora-26 (policies `
	got := b.String()
	for _, w := range []string{want,
		"NOT SATISFIED: Of 3 required tests, 1 result missing, 1 test incomplete",
		`✓ test-result-failed-waived dist.abicheck [FAILED since 2024-01-01T00:01:00Z, result 11] [waived by bob at 2024-01-01T00:02:00Z: "This is fine"]`,
		"… test-result-missing dist.rpmdeplint [RUNNING since 2024-01-01T00:03:00Z, result 12]",
		"✗ test-result-missing dist.upgradepath <taskotron_release_critical_tasks>",
	} {
		if !strings.Contains(got, w) {
			t.Errorf("output lacks %q:\n%s", w, got)
		}
	}
}
