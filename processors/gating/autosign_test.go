package gating

import (
	"slices"
	"strings"
	"testing"

	"github.com/factory2/factory2/avro"
)

const (
	buildKey = "e99d6ad1"
	goldKey  = "a15b79cc"
)

var (
	rpms = []string{"bash-5.2.26-3.fc41.src.rpm", "bash-5.2.26-3.fc41.x86_64.rpm"}

	// The build key signs on completion; the gold key waits for gating.
	signingRules = []SigningRule{
		{Name: "f41-build", From: "f41-updates-candidate", To: "f41-updates-candidate", Key: "fedora-41-build",
			KeyID: strings.ToUpper(buildKey), Priority: 10},
		{Name: "f41-gold", From: "f41-signing-pending", To: "f41-updates-testing-pending", Key: "fedora-41",
			KeyID: goldKey, RequireContext: "bodhi_update_push_stable", Priority: 20},
		{Name: "f41-mass-rebuild", From: "f41-rebuild", To: "f41", Key: "fedora-41", KeyID: goldKey, Priority: -5},
	}
)

// records splits emitted records by type.
func records(out []avro.Record) (sign []*avro.AutosignDecision, status []*avro.SignedStatus) {
	for _, r := range out {
		switch x := r.(type) {
		case *avro.AutosignDecision:
			sign = append(sign, x)
		case *avro.SignedStatus:
			status = append(status, x)
		}
	}
	return sign, status
}

func reqTypes(rs []avro.Requirement) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Type)
	}
	return out
}

func newAutosign(t *testing.T) *harness {
	return newHarness(t, f41Policies, signingRules)
}

func TestAutosignBuildKeyOnCompletion(t *testing.T) {
	h := newAutosign(t)
	on := subj(f41NVR)
	// Tagged before the completion event arrives: nothing yet.
	if s, _ := records(h.apply(tag("f41-updates-candidate", 1, on))); len(s) != 0 {
		t.Fatalf("signed before completion: %+v", s)
	}
	sign, status := records(h.apply(build(avro.StateComplete, 2, on, artifacts(rpms...))))
	if len(sign) != 1 || len(status) != 0 {
		t.Fatalf("got %d sign decisions, %d statuses", len(sign), len(status))
	}
	d := sign[0]
	if d.Action != avro.AutosignSign || d.NVR != f41NVR || d.KeyID != buildKey || d.Key != "fedora-41-build" ||
		d.FromTag != "f41-updates-candidate" || d.ToTag != "f41-updates-candidate" || d.Rule != "f41-build" ||
		d.Priority != 10 || d.IdempotencyKey != f41NVR+"/"+buildKey || len(d.Unsigned) != 2 || d.BuildID != 42 {
		t.Errorf("decision %s", mustJSON(t, d))
	}
	if got := reqTypes(d.Satisfied); !slices.Equal(got, []string{ReqBuildComplete, ReqTagged, ReqUnsignedArtifacts}) || len(d.Unsatisfied) != 0 {
		t.Errorf("reasons %v / %v", got, d.Unsatisfied)
	}
	if d.Source != SourceAutosign || d.PolicyVersion != h.e.Version() || !slices.Contains(d.DerivedFrom, "ev-001") ||
		!slices.Contains(d.DerivedFrom, "ev-002") {
		t.Errorf("envelope %+v derived %v", d.Envelope, d.DerivedFrom)
	}

	// Idempotency: the same events again emit nothing.
	b := build(avro.StateComplete, 2, on, artifacts(rpms...))
	b.ID = "ev-002"
	tg := tag("f41-updates-candidate", 1, on)
	tg.ID = "ev-001"
	if out := h.apply(b, tg, tag("f41-updates-candidate", 1, on)); len(out) != 0 {
		t.Errorf("re-applied events emitted %s", mustJSON(t, out))
	}

	// One RPM signed: nothing. Both: SignedStatus, once, and no revoke.
	if out := h.apply(sign1(buildKey, 3, rpms[0])); len(out) != 0 {
		t.Errorf("half signed: %s", mustJSON(t, out))
	}
	sign2, status := records(h.apply(sign1(buildKey, 4, rpms[1])))
	if len(sign2) != 0 || len(status) != 1 || !status[0].Signed || status[0].KeyID != buildKey || len(status[0].Artifacts) != 2 {
		t.Fatalf("got %s", mustJSON(t, h.out[len(h.out)-1:]))
	}
	if out := h.apply(sign1(buildKey, 5, rpms[1]), untag("f41-updates-candidate", 6, on)); len(out) != 0 {
		t.Errorf("after signing: %s", mustJSON(t, out))
	}

	// A new artifact appears: Signed false.
	_, status = records(h.apply(build(avro.StateComplete, 7, on, artifacts(append(rpms, "bash-debuginfo-5.2.26-3.fc41.x86_64.rpm")...))))
	if len(status) != 1 || status[0].Signed || !strings.Contains(status[0].Unsatisfied[0].Detail, "debuginfo") {
		t.Errorf("new artifact: %s", mustJSON(t, status))
	}
}

func sign1(key string, min int, name string) *avro.SignEvent {
	return sign(key, min, subj(f41NVR), artifacts(name))
}

func TestAutosignGoldKeyWaitsForGating(t *testing.T) {
	h := newAutosign(t)
	on := subj(f41NVR)
	h.apply(build(avro.StateComplete, 1, on, artifacts(rpms...)))
	sign, _ := records(h.apply(tag("f41-signing-pending", 2, on)))
	if len(sign) != 0 {
		t.Fatalf("gold key signed before gating: %s", mustJSON(t, sign))
	}
	h.apply(result("fedora-ci.koji-build.tier0.functional", "PASSED", 3, on))
	out := h.apply(result("dist.rpmdeplint", "PASSED", 4, on))
	sign, _ = records(out)
	if len(gatingOf(out)) != 2 || len(sign) != 1 {
		t.Fatalf("got %s", mustJSON(t, out))
	}
	d := sign[0]
	if d.KeyID != goldKey || d.Rule != "f41-gold" || d.FromTag != "f41-signing-pending" || d.ToTag != "f41-updates-testing-pending" || d.Priority != 20 {
		t.Errorf("decision %s", mustJSON(t, d))
	}
	if got := reqTypes(d.Satisfied); !slices.Equal(got, []string{ReqBuildComplete, ReqContextSatisfied, ReqTagged, ReqUnsignedArtifacts}) {
		t.Errorf("reasons %v", got)
	}
	// It derives from the gating decision that satisfied the context.
	var stable string
	for _, g := range gatingOf(out) {
		if g.DecisionContext == "bodhi_update_push_stable" {
			stable = g.ID
		}
	}
	if !slices.Contains(d.DerivedFrom, stable) || !slices.Contains(d.DerivedFrom, "ev-002") {
		t.Errorf("DerivedFrom %v lacks the gating decision %s or the tag", d.DerivedFrom, stable)
	}
	// Without current gating records, the engine evaluates the context.
	s := h.subject()
	s.GatingInput = 0
	ok, detail, refs := (&autosignRun{e: h.e, s: s}).contextSatisfied(&h.e.rules[0])
	if !ok || detail != "bodhi_update_push_stable@fedora-41: All required tests (2 total) have passed or been waived" ||
		!slices.ContainsFunc(refs, func(r EventRef) bool { return r.ID == "ev-004" }) {
		t.Errorf("evaluated context: %v %q %v", ok, detail, refs)
	}

	// The context stops being satisfied before signing: revoke.
	sign, _ = records(h.apply(result("dist.rpmdeplint", "FAILED", 5, on)))
	if len(sign) != 1 || sign[0].Action != avro.AutosignRevoke || sign[0].IdempotencyKey != d.IdempotencyKey ||
		!slices.Equal(reqTypes(sign[0].Unsatisfied), []string{ReqContextSatisfied}) {
		t.Fatalf("got %s", mustJSON(t, sign))
	}
	// Satisfied again (waived): sign again.
	sign, _ = records(h.apply(waive("dist.rpmdeplint", "fedora-41", true, 6, on)))
	if len(sign) != 1 || sign[0].Action != avro.AutosignSign {
		t.Fatalf("got %s", mustJSON(t, sign))
	}
	// The signer signs and moves the build: no revoke, signed.
	h.apply(sign1(goldKey, 7, rpms[0]))
	h.apply(tag("f41-updates-testing-pending", 8, on))
	out = h.apply(untag("f41-signing-pending", 8, on))
	if sign, _ := records(out); len(sign) != 0 {
		t.Errorf("the signer's move was revoked: %s", mustJSON(t, sign))
	}
	_, status := records(h.apply(sign1(goldKey, 9, rpms[1])))
	if len(status) != 1 || !status[0].Signed || status[0].KeyID != goldKey {
		t.Errorf("status %s", mustJSON(t, status))
	}
}

func TestAutosignRevoke(t *testing.T) {
	for name, stop := range map[string]avro.Record{
		"untagged before signing": untag("f41-updates-candidate", 5, subj(f41NVR)),
		"deleted":                 build(avro.StateDeleted, 5, subj(f41NVR)),
	} {
		t.Run(name, func(t *testing.T) {
			h := newAutosign(t)
			on := subj(f41NVR)
			h.apply(build(avro.StateComplete, 1, on, artifacts(rpms...)), tag("f41-updates-candidate", 2, on))
			h.apply(sign1(buildKey, 3, rpms[0]))
			sign, _ := records(h.apply(stop))
			if len(sign) != 1 || sign[0].Action != avro.AutosignRevoke || sign[0].KeyID != buildKey ||
				sign[0].FromTag != "f41-updates-candidate" || len(sign[0].Unsigned) != 1 || sign[0].Rule != "f41-build" {
				t.Fatalf("got %s", mustJSON(t, h.out))
			}
			if len(sign[0].Unsatisfied) != 1 || !slices.Contains(sign[0].DerivedFrom, stop.Env().ID) {
				t.Errorf("reasons %+v derived %v", sign[0].Unsatisfied, sign[0].DerivedFrom)
			}
			// Revoked once.
			if out := h.apply(result("x", "PASSED", 6, on)); len(out) != 0 {
				if s, _ := records(out); len(s) != 0 {
					t.Errorf("revoked twice: %s", mustJSON(t, s))
				}
			}
		})
	}
}

// TestAutosignSignBeforeTag: signatures that arrive before the build and
// its tag converge; a build already signed is not signed again.
func TestAutosignSignBeforeTag(t *testing.T) {
	h := newAutosign(t)
	on := subj(f41NVR)
	out := h.apply(sign1(buildKey, 3, rpms[0]), sign1(buildKey, 4, rpms[1]))
	if sign, status := records(out); len(sign) != 0 || len(status) != 0 {
		t.Fatalf("before the build: %s", mustJSON(t, out))
	}
	out = h.apply(tag("f41-updates-candidate", 2, on), build(avro.StateComplete, 1, on, artifacts(rpms...)))
	sign, status := records(out)
	if len(sign) != 0 || len(status) != 1 || !status[0].Signed {
		t.Fatalf("got %s", mustJSON(t, out))
	}
}

// TestAutosignPriority: among rules of one key that hold, the highest
// priority one is used; the decision carries its priority.
func TestAutosignPriority(t *testing.T) {
	h := newAutosign(t)
	on := subj(f41NVR)
	h.apply(build(avro.StateComplete, 1, on, artifacts(rpms...)))
	sign, _ := records(h.apply(tag("f41-rebuild", 2, on)))
	if len(sign) != 1 || sign[0].Rule != "f41-mass-rebuild" || sign[0].Priority != -5 || sign[0].ToTag != "f41" {
		t.Fatalf("got %s", mustJSON(t, sign))
	}
}

func TestAutosignModular(t *testing.T) {
	h := newHarness(t, "", []SigningRule{{Name: "modules", Type: SigningTypeModular, From: "module-*-build",
		Key: "fedora-modularity", KeyID: "12345678"}})
	on := subj(f41NVR)
	h.apply(build(avro.StateComplete, 1, on, artifacts(rpms...)))
	sign, _ := records(h.apply(tag("module-nodejs-20-4120240101-build", 2, on)))
	if len(sign) != 1 || sign[0].FromTag != "module-nodejs-20-4120240101-build" || sign[0].ToTag != sign[0].FromTag {
		t.Fatalf("got %s", mustJSON(t, sign))
	}
}

// TestAutosignRuleRemoved: an outstanding sign decision whose rule is gone
// from the configuration is revoked.
func TestAutosignRuleRemoved(t *testing.T) {
	h := newAutosign(t)
	on := subj(f41NVR)
	h.apply(build(avro.StateComplete, 1, on, artifacts(rpms...)), tag("f41-updates-candidate", 2, on))
	e, err := NewEngine(h.e.Policies(), signingRules[1:])
	if err != nil {
		t.Fatal(err)
	}
	h.e = e
	sign, _ := records(h.apply(result("x", "PASSED", 3, on)))
	if len(sign) != 1 || sign[0].Action != avro.AutosignRevoke || reqTypes(sign[0].Unsatisfied)[0] != ReqRuleRemoved {
		t.Fatalf("got %s", mustJSON(t, sign))
	}
}

func TestSigningRuleValidate(t *testing.T) {
	good := SigningRule{Name: "r", From: "a", To: "b", Key: "k", KeyID: "a15b79cc"}
	for _, tc := range []struct {
		name string
		edit func(r *SigningRule)
		want string // "" valid
	}{
		{"valid", func(r *SigningRule) {}, ""},
		{"no name", func(r *SigningRule) { r.Name = "" }, "name is required"},
		{"no from", func(r *SigningRule) { r.From = "" }, "from is required"},
		{"no to", func(r *SigningRule) { r.To = "" }, "to is required"},
		{"no key", func(r *SigningRule) { r.Key = "" }, "key is required"},
		{"no key id", func(r *SigningRule) { r.KeyID = "" }, "key_id is required"},
		{"bad key id", func(r *SigningRule) { r.KeyID = "xyz" }, "not a hexadecimal key id"},
		{"bad type", func(r *SigningRule) { r.Type = "fancy" }, `unknown type "fancy"`},
		{"pattern", func(r *SigningRule) { r.From = "f*" }, "only modular rules take patterns"},
		{"modular pattern", func(r *SigningRule) { r.Type, r.From, r.To = SigningTypeModular, "module-*", "" }, ""},
		{"product version without context", func(r *SigningRule) { r.ProductVersion = "fedora-41" }, "needs require_context"},
	} {
		r := good
		tc.edit(&r)
		err := r.Validate()
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: got %v, want %q", tc.name, err, tc.want)
		}
	}
	err := ValidateSigningRules([]SigningRule{good, good, {Name: "x"}})
	if err == nil || !strings.Contains(err.Error(), "duplicate name") || !strings.Contains(err.Error(), "from is required") {
		t.Errorf("got %v", err)
	}
	if _, err := NewEngine(nil, []SigningRule{{Name: "x"}}); err == nil {
		t.Error("NewEngine accepted an invalid rule")
	}
	e1, _ := NewEngine(nil, []SigningRule{good})
	e2, _ := NewEngine(nil, []SigningRule{good})
	good.Priority = 3
	e3, _ := NewEngine(nil, []SigningRule{good})
	if e1.Version() != e2.Version() || e1.Version() == e3.Version() {
		t.Errorf("engine versions %s %s %s", e1.Version(), e2.Version(), e3.Version())
	}
}
