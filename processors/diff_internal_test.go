package processors

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/factory2/factory2/avro"
)

// Decisions for the pairing tests: id, event time (seconds), and what
// they say.
func gatingAt(id string, sec int, nvr, pv string, ok bool, summary string, unsat ...string) diffRecord {
	d := &avro.GatingDecision{
		Decision: avro.Decision{Envelope: avro.Envelope{ID: id, EventTime: time.Unix(int64(sec), 0)}, PolicyVersion: "v-" + id,
			DerivedFrom: []string{"e-" + id}, Satisfied: []avro.Requirement{}, Unsatisfied: []avro.Requirement{}},
		SubjectType: "koji_build", SubjectID: nvr, DecisionContext: "stable", ProductVersion: pv,
		PoliciesSatisfied: ok, Summary: summary,
	}
	for _, tc := range unsat {
		d.Unsatisfied = append(d.Unsatisfied, avro.Requirement{Type: "test-result-missing", Testcase: tc})
	}
	if ok {
		d.Satisfied = append(d.Satisfied, avro.Requirement{Type: "test-result-passed", Testcase: "tier0"})
	}
	return diffRecord{topic: "decisions.gating", key: nvr, rec: d}
}

// withoutLists is r as decoding gives it back: empty lists nil.
func withoutLists(r diffRecord) diffRecord {
	d := *r.rec.(*avro.GatingDecision)
	if len(d.Satisfied) == 0 {
		d.Satisfied = nil
	}
	if len(d.Unsatisfied) == 0 {
		d.Unsatisfied = nil
	}
	r.rec = &d
	return r
}

func autosignAt(id string, sec int, nvr, keyID string) diffRecord {
	return diffRecord{topic: "decisions.autosign", key: nvr, rec: &avro.AutosignDecision{
		Decision: avro.Decision{Envelope: avro.Envelope{ID: id, EventTime: time.Unix(int64(sec), 0)}},
		Action:   avro.AutosignSign, NVR: nvr, KeyID: keyID,
	}}
}

func composeAt(id string, sec int, kind string, ready bool) diffRecord {
	return diffRecord{topic: "decisions.compose-ready", key: "f42", rec: &avro.ComposeReadyDecision{
		Decision:  avro.Decision{Envelope: avro.Envelope{ID: id, EventTime: time.Unix(int64(sec), 0)}},
		ComposeID: "f42", Kind: kind, Ready: ready,
		Manifest: []avro.ManifestEntry{{NVR: "a-1-1", DecisionIDs: []string{"g-" + id}}},
	}}
}

// describe is a Change as "kind about: before → after", ids standing for
// the records.
func describe(c Change) string {
	id := func(r avro.Record) string {
		if r == nil {
			return "-"
		}
		return r.Env().ID
	}
	s := fmt.Sprintf("%s %s %s: %s → %s", c.Change, c.Key, c.About, id(c.Before), id(c.After))
	for _, q := range c.Gained {
		s += fmt.Sprintf(" +%v:%s:%s", q.Satisfied, q.Type, q.Testcase)
	}
	for _, q := range c.Lost {
		s += fmt.Sprintf(" -%v:%s:%s", q.Satisfied, q.Type, q.Testcase)
	}
	return s
}

func TestPairChanges(t *testing.T) {
	for _, tc := range []struct {
		name           string
		removed, added []diffRecord
		changed        [][2]diffRecord
		want           []string
		reidentified   int
	}{{
		name: "a policy change pairs the decisions of the same event; identical meaning is counted, not listed",
		removed: []diffRecord{
			gatingAt("o1", 1, "bash-1-1", "fedora-42", false, "Of 1 required test, 1 result missing", "tier0"),
			gatingAt("o2", 2, "bash-1-1", "fedora-42", true, "All passed"),
		},
		added: []diffRecord{
			gatingAt("n1", 1, "bash-1-1", "fedora-42", false, "Of 1 required test, 1 result missing", "tier0"),
			gatingAt("n2", 2, "bash-1-1", "fedora-42", false, "Of 2 required tests, 1 result missing", "install"),
		},
		want: []string{
			"changed bash-1-1 gating koji_build stable fedora-42: o2 → n2 +false:test-result-missing:install -true:test-result-passed:tier0",
		},
		reidentified: 1,
	}, {
		name: "other key ids, product versions, subjects and compose kinds never pair",
		removed: []diffRecord{
			autosignAt("o1", 1, "bash-1-1", "aaaa"),
			gatingAt("o2", 1, "bash-1-1", "fedora-42", true, "All passed"),
			gatingAt("o3", 1, "curl-1-1", "fedora-42", true, "All passed"),
			composeAt("o4", 1, avro.ComposeReadiness, true),
		},
		added: []diffRecord{
			autosignAt("n1", 1, "bash-1-1", "bbbb"),
			gatingAt("n2", 1, "bash-1-1", "fedora-43", true, "All passed"),
			gatingAt("n3", 1, "xz-1-1", "fedora-42", true, "All passed"),
			composeAt("n4", 1, avro.ComposeReady, true),
		},
		want: []string{
			"gone bash-1-1 autosign aaaa: o1 → -",
			"new bash-1-1 autosign bbbb: - → n1",
			"gone bash-1-1 gating koji_build stable fedora-42: o2 → -",
			"new bash-1-1 gating koji_build stable fedora-43: - → n2",
			"gone curl-1-1 gating koji_build stable fedora-42: o3 → -",
			"gone f42 compose readiness: o4 → -",
			"new f42 compose ready: - → n4",
			"new xz-1-1 gating koji_build stable fedora-42: - → n3",
		},
	}, {
		name: "without a decision at the same time, the rest pair in order and the extra one is gone",
		removed: []diffRecord{
			gatingAt("o1", 1, "bash-1-1", "fedora-42", false, "missing", "tier0"),
			gatingAt("o3", 3, "bash-1-1", "fedora-42", true, "All passed"),
		},
		added: []diffRecord{
			gatingAt("n2", 2, "bash-1-1", "fedora-42", false, "missing", "install"),
		},
		want: []string{
			"changed bash-1-1 gating koji_build stable fedora-42: o1 → n2 +false:test-result-missing:install -false:test-result-missing:tier0",
			"gone bash-1-1 gating koji_build stable fedora-42: o3 → -",
		},
	}, {
		name: "the same id with other content is a change; decision ids inside a compose manifest are identity; a decoded empty list is nil",
		changed: [][2]diffRecord{
			{gatingAt("x", 1, "bash-1-1", "fedora-42", true, "All passed"), gatingAt("x", 1, "bash-1-1", "fedora-42", false, "missing", "tier0")},
		},
		removed: []diffRecord{composeAt("o1", 5, avro.ComposeReady, true), withoutLists(gatingAt("o2", 6, "bash-1-1", "fedora-42", false, "missing"))},
		added:   []diffRecord{composeAt("n1", 5, avro.ComposeReady, true), gatingAt("n2", 6, "bash-1-1", "fedora-42", false, "missing")},
		want: []string{
			"changed bash-1-1 gating koji_build stable fedora-42: x → x +false:test-result-missing:tier0 -true:test-result-passed:tier0",
		},
		reidentified: 2,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			d := &recordDiff{removed: tc.removed, added: tc.added, identical: 7}
			for _, c := range tc.changed {
				d.changed = append(d.changed, struct{ before, after diffRecord }{c[0], c[1]})
			}
			res := pairChanges(d)
			var got []string
			for _, c := range res.Changes {
				got = append(got, describe(c))
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("changes:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tc.want, "\n  "))
			}
			if res.Reidentified != tc.reidentified || res.Identical != 7 {
				t.Errorf("reidentified %d, identical %d; want %d, 7", res.Reidentified, res.Identical, tc.reidentified)
			}
		})
	}
}

func TestChangeJSON(t *testing.T) {
	b := gatingAt("o", 1, "bash-1-1", "fedora-42", true, "All passed")
	a := gatingAt("n", 1, "bash-1-1", "fedora-42", false, "missing", "tier0")
	res := pairChanges(&recordDiff{removed: []diffRecord{b}, added: []diffRecord{a}})
	if len(res.Changes) != 1 {
		t.Fatalf("changes %v", res.Changes)
	}
	js, err := res.Changes[0].MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"change":"changed"`, `"about":"gating koji_build stable fedora-42"`, `"before":{"type":"gating_decision","id":"o"`,
		`"gained":[{"satisfied":false,"type":"test-result-missing","testcase":"tier0"}]`} {
		if !strings.Contains(string(js), want) {
			t.Errorf("JSON %s\nlacks %s", js, want)
		}
	}
}
