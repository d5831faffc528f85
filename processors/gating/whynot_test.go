package gating

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/factory2/factory2/avro"
)

// ruleWant is what TestSigningReport expects of one rule.
type ruleWant struct {
	status string
	unsat  []string // condition types not holding
	// decision is the index, among the autosign decisions emitted, of
	// the one the rule status names (-1: none).
	decision int
}

// keyWant is what TestSigningReport expects of one key.
type keyWant struct {
	signed   bool
	reason   string // in Reason
	unsigned []string
}

// TestSigningReport: "why is this build not signed yet?" in every state a
// build can wait in, under the test signing rules (f41-build signs on
// completion, f41-gold after gating, f41-mass-rebuild with the gold key
// and no gating). Each case feeds events through the engine as the
// processor does, then reads the report from the stored state; its text
// is compared with testdata/whynot/<case>.txt (-update rewrites them).
func TestSigningReport(t *testing.T) {
	on := subj(f41NVR)
	complete := func(min int) *avro.BuildEvent { return build(avro.StateComplete, min, on, artifacts(rpms...)) }
	passed := func(min int) []avro.Record {
		return []avro.Record{
			result("fedora-ci.koji-build.tier0.functional", "PASSED", min, on),
			result("dist.rpmdeplint", "PASSED", min, on),
		}
	}
	none := ruleWant{status: RuleWaiting, unsat: []string{ReqTagged}, decision: -1}
	goldWaits := ruleWant{status: RuleWaiting, unsat: []string{ReqTagged, ReqContextSatisfied}, decision: -1}
	unsignedGold := keyWant{reason: "2 of 2 artifacts lack the key", unsigned: rpms}
	unsignedBuild := keyWant{reason: "2 of 2 artifacts lack the key", unsigned: rpms}
	for _, tc := range []struct {
		name   string
		events []avro.Record
		rules  map[string]ruleWant // by rule name
		keys   map[string]keyWant  // by key id
	}{
		{
			name:   "building",
			events: []avro.Record{build(avro.StateBuilding, 1, on)},
			rules: map[string]ruleWant{
				"f41-build":        {RuleWaiting, []string{ReqBuildComplete, ReqTagged}, -1},
				"f41-gold":         {RuleWaiting, []string{ReqBuildComplete, ReqTagged, ReqContextSatisfied}, -1},
				"f41-mass-rebuild": {RuleWaiting, []string{ReqBuildComplete, ReqTagged}, -1},
			},
			keys: map[string]keyWant{
				buildKey: {reason: ReasonNoArtifactList},
				goldKey:  {reason: ReasonNoArtifactList},
			},
		},
		{
			name:   "complete-untagged",
			events: []avro.Record{complete(1)},
			rules:  map[string]ruleWant{"f41-build": none, "f41-gold": goldWaits, "f41-mass-rebuild": none},
			keys:   map[string]keyWant{buildKey: unsignedBuild, goldKey: unsignedGold},
		},
		{
			name:   "sign-requested",
			events: []avro.Record{complete(1), tag("f41-updates-candidate", 2, on), sign1(buildKey, 3, rpms[0])},
			rules: map[string]ruleWant{
				"f41-build": {RuleRequested, nil, 0},
				"f41-gold":  goldWaits, "f41-mass-rebuild": none,
			},
			keys: map[string]keyWant{
				buildKey: {reason: "1 of 2 artifacts lack the key", unsigned: rpms[1:]},
				goldKey:  unsignedGold,
			},
		},
		{
			name: "signed",
			events: []avro.Record{complete(1), tag("f41-updates-candidate", 2, on),
				sign1(buildKey, 3, rpms[0]), sign1(buildKey, 4, rpms[1])},
			rules: map[string]ruleWant{
				"f41-build": {RuleSigned, nil, 0},
				"f41-gold":  goldWaits, "f41-mass-rebuild": none,
			},
			keys: map[string]keyWant{buildKey: {signed: true}, goldKey: unsignedGold},
		},
		{
			name:   "gold-waits-for-gating",
			events: []avro.Record{complete(1), tag("f41-signing-pending", 2, on), result("dist.rpmdeplint", "FAILED", 3, on)},
			rules: map[string]ruleWant{
				"f41-build": none,
				"f41-gold":  {RuleWaiting, []string{ReqContextSatisfied}, -1}, "f41-mass-rebuild": none,
			},
			keys: map[string]keyWant{buildKey: unsignedBuild, goldKey: unsignedGold},
		},
		{
			name: "gold-fulfilled-by-the-move",
			events: append(append([]avro.Record{complete(1), tag("f41-signing-pending", 2, on)}, passed(3)...),
				tag("f41-updates-testing-pending", 4, on), untag("f41-signing-pending", 5, on), sign1(goldKey, 6, rpms[0])),
			rules: map[string]ruleWant{
				"f41-build": none,
				"f41-gold":  {RuleFulfilled, []string{ReqTagged}, 0}, "f41-mass-rebuild": none,
			},
			keys: map[string]keyWant{
				buildKey: unsignedBuild,
				goldKey:  {reason: "1 of 2 artifacts lack the key", unsigned: rpms[1:]},
			},
		},
		{
			name: "gold-revoked",
			events: append(append([]avro.Record{complete(1), tag("f41-signing-pending", 2, on)}, passed(3)...),
				untag("f41-signing-pending", 4, on)),
			rules: map[string]ruleWant{
				"f41-build": none,
				"f41-gold":  {RuleRevoked, []string{ReqTagged}, 1}, "f41-mass-rebuild": none,
			},
			keys: map[string]keyWant{buildKey: unsignedBuild, goldKey: unsignedGold},
		},
		{
			name:   "key-requested-by-another-rule",
			events: []avro.Record{complete(1), tag("f41-rebuild", 2, on), tag("f41-signing-pending", 3, on)},
			rules: map[string]ruleWant{
				"f41-build":        none,
				"f41-gold":         {RuleOtherRule, []string{ReqContextSatisfied}, 0},
				"f41-mass-rebuild": {RuleRequested, nil, 0},
			},
			keys: map[string]keyWant{buildKey: unsignedBuild, goldKey: unsignedGold},
		},
		{
			// Real traffic without the Koji enrichment: the COMPLETE
			// message lists no RPMs, the sign messages name them.
			name: "artifact-list-unknown",
			events: []avro.Record{build(avro.StateComplete, 1, on), tag("f41-updates-candidate", 2, on),
				sign1(buildKey, 3, rpms[0]), sign1(buildKey, 4, rpms[1]),
				sign(goldKey, 5, on, artifacts(rpms[0]), func(r any) { r.(*avro.SignEvent).Outcome = avro.SignFailed })},
			rules: map[string]ruleWant{
				"f41-build": {RuleRequested, nil, 0},
				"f41-gold":  goldWaits, "f41-mass-rebuild": none,
			},
			keys: map[string]keyWant{
				buildKey: {reason: ReasonNoArtifactList},
				goldKey:  {reason: ReasonNoArtifactList, unsigned: rpms},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newAutosign(t)
			h.apply(tc.events...)
			var decisions []*avro.AutosignDecision
			for _, r := range h.out {
				if d, ok := r.(*avro.AutosignDecision); ok {
					decisions = append(decisions, d)
				}
			}
			rep := h.e.Signing(h.subject())
			if !rep.Build || rep.SubjectID != f41NVR || rep.EngineVersion != h.e.Version() {
				t.Fatalf("report %s", mustJSON(t, rep))
			}
			if len(rep.Rules) != len(tc.rules) {
				t.Fatalf("%d rules, want %d", len(rep.Rules), len(tc.rules))
			}
			for _, st := range rep.Rules {
				want := tc.rules[st.Rule]
				if st.Status != want.status || !slices.Equal(reqTypes(st.Unsatisfied), want.unsat) {
					t.Errorf("rule %s: %s waiting for %v, want %s waiting for %v", st.Rule, st.Status,
						reqTypes(st.Unsatisfied), want.status, want.unsat)
				}
				switch {
				case want.decision < 0 && st.Decision != nil:
					t.Errorf("rule %s names decision %+v", st.Rule, st.Decision)
				case want.decision >= 0 && (want.decision >= len(decisions) || st.Decision == nil ||
					st.Decision.ID != decisions[want.decision].ID || st.Decision.Action != decisions[want.decision].Action):
					t.Errorf("rule %s names decision %+v, want the %d. of %s", st.Rule, st.Decision, want.decision, mustJSON(t, decisions))
				}
			}
			if len(rep.Keys) != len(tc.keys) {
				t.Fatalf("%d keys, want %d", len(rep.Keys), len(tc.keys))
			}
			for _, ks := range rep.Keys {
				want := tc.keys[ks.KeyID]
				if ks.Signed != want.signed || ks.Reason != want.reason || !slices.Equal(ks.Unsigned, nonNil(want.unsigned)) {
					t.Errorf("key %s: signed %t %q unsigned %v, want %t %q %v", ks.KeyID, ks.Signed, ks.Reason,
						ks.Unsigned, want.signed, want.reason, want.unsigned)
				}
			}
			var b strings.Builder
			if err := rep.WriteText(&b); err != nil {
				t.Fatal(err)
			}
			// Decision ids hash the engine version: the golden text names
			// them by kind and order, so that a change of how policies are
			// versioned does not change it.
			text := b.String()
			for i, r := range h.out {
				text = strings.ReplaceAll(text, r.Env().ID, fmt.Sprintf("<%s #%d>", avro.TypeName(r), i+1))
			}
			checkGolden(t, filepath.Join("testdata", "whynot", tc.name+".txt"), text)
		})
	}
}

// checkGolden compares got with the golden file, or rewrites it with
// -update.
func checkGolden(t *testing.T, path, got string) {
	t.Helper()
	if updating() {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(want) != got {
		t.Fatalf("text differs from %s (run with -update after checking it):\n%s", path, got)
	}
}

// TestSigningReportEdges: a subject that is not a build says nothing; a
// build whose rules hold before the processor took the state is ready;
// a failed signature later signed is not listed as failed.
func TestSigningReportEdges(t *testing.T) {
	h := newAutosign(t)
	h.apply(result("compose.tier0", "PASSED", 1, subj("Fedora-Rawhide-20260101.n.0"), typ(SubjectCompose)))
	rep := h.e.Signing(h.subject())
	var b strings.Builder
	if err := rep.WriteText(&b); err != nil || rep.Build || len(rep.Rules) != 0 || b.Len() != 0 {
		t.Fatalf("compose: %v %s %q", err, mustJSON(t, rep), b.String())
	}

	var s Subject
	for _, r := range []avro.Record{
		build(avro.StateComplete, 1, subj(f41NVR), artifacts(rpms...), id("e1")),
		tag("f41-updates-candidate", 2, subj(f41NVR), id("e2")),
		sign(buildKey, 3, subj(f41NVR), artifacts(rpms[0]), id("e3"), func(r any) { r.(*avro.SignEvent).Outcome = avro.SignFailed }),
		sign(buildKey, 4, subj(f41NVR), artifacts(rpms[0]), id("e4")),
		sign(buildKey, 5, subj(f41NVR), artifacts(rpms[1]), id("e5"), func(r any) { r.(*avro.SignEvent).Outcome = avro.SignFailed }),
	} {
		if _, err := s.Apply(r); err != nil {
			t.Fatal(err)
		}
	}
	rep = h.e.Signing(&s) // Autosign never ran on s
	if st := rep.Rules[slices.IndexFunc(rep.Rules, func(r RuleStatus) bool { return r.Rule == "f41-build" })]; st.Status != RuleReady {
		t.Errorf("f41-build: %s", mustJSON(t, st))
	}
	for _, ks := range rep.Keys {
		if ks.KeyID == buildKey && (!slices.Equal(ks.Failed, rpms[1:]) || !slices.Equal(ks.SignedArtifacts, rpms[:1])) {
			t.Errorf("build key: %s", mustJSON(t, ks))
		}
	}

	// No rules, no signatures: one line says so.
	e, err := NewEngine(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	b.Reset()
	_ = e.Signing(&s).WriteText(&b)
	if !strings.Contains(b.String(), "signed "+f41NVR+": key "+buildKey) {
		t.Errorf("no rules, a signature: %q", b.String())
	}
	b.Reset()
	_ = e.Signing(&Subject{ID: f41NVR, Types: []string{SubjectKojiBuild}}).WriteText(&b)
	if b.String() != "autosign "+f41NVR+": no signing rule is configured and no signature was seen\n" {
		t.Errorf("nothing: %q", b.String())
	}
}

// TestSigningRoute: GET /api/v1/why/{subject}/signing answers the report
// as JSON, as text with format=text, and 404 for an unknown subject.
func TestSigningRoute(t *testing.T) {
	h := newAutosign(t)
	h.apply(build(avro.StateComplete, 1, subj(f41NVR)))
	mux := http.NewServeMux()
	api := NewAPI(h.e, storedSubject{f41NVR: h.stored})
	api.Register(mux)
	api.RegisterSigning(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	for _, tc := range []struct {
		path, want string
		status     int
	}{
		{"/api/v1/why/" + f41NVR + "/signing", `"reason":"` + ReasonNoArtifactList + `"`, http.StatusOK},
		{"/api/v1/why/" + f41NVR + "/signing?format=text", "NOT SIGNED: " + ReasonNoArtifactList, http.StatusOK},
		{"/api/v1/why/other-1-1.fc41/signing", "no event about other-1-1.fc41 has been seen", http.StatusNotFound},
		{"/api/v1/why/" + f41NVR + "?format=text", "bodhi_update_push_stable @ fedora-41", http.StatusOK},
	} {
		resp, err := srv.Client().Get(srv.URL + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		got := body(t, resp)
		if resp.StatusCode != tc.status || !strings.Contains(got, tc.want) {
			t.Errorf("GET %s: %s\n%s\nwant %d with %q", tc.path, resp.Status, got, tc.status, tc.want)
		}
	}
}

// updating reports whether -update was given (the flag is defined by
// the package's external tests, compiled into the same test binary).
func updating() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

func body(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// storedSubject is a Getter over encoded subjects by id.
type storedSubject map[string][]byte

func (m storedSubject) Get(_ string, key []byte) ([]byte, bool, error) {
	v, ok := m[string(key)]
	return v, ok, nil
}
