package gating

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/factory2/factory2/avro"
)

// Tests of the order the state follows (DESIGN.md, "One order of
// events"): Koji's state machine and log order for the build, log order
// for tags, Greenwave's order for results and waivers, and no content
// hash anywhere.

func TestKojiTransition(t *testing.T) {
	const (
		B = avro.StateBuilding
		C = avro.StateComplete
		D = avro.StateDeleted
		F = avro.StateFailed
		X = avro.StateCanceled
	)
	for _, tc := range []struct {
		cur, next, old string
		want           bool
	}{
		{"", B, "", true}, {"", C, "", true}, {"", F, B, true}, {"", D, "", true},
		{B, C, B, true}, {B, F, "", true}, {B, X, "", true}, {B, D, "", true},
		{B, B, "", false}, // a restarted build task re-initializing is silent in Koji
		{C, B, "", false}, {C, F, B, false}, {C, C, B, false},
		{C, D, C, true},
		{C, X, "", false}, {C, X, B, false}, // a CANCELED of an earlier attempt
		{C, X, C, true}, // reset_build names the state it reset
		{F, B, F, true}, {F, C, "", true}, {F, D, "", true}, {F, F, B, false}, {F, X, F, true},
		{X, B, X, true}, {X, C, "", true}, {X, F, B, false}, {X, D, "", true},
		{D, B, "", false}, {D, C, B, false}, {D, F, "", false}, {D, D, C, false},
		{D, X, "", false}, {D, X, D, true}, // reset_build of a deleted build
		{"IMPORTING", C, "", true}, {C, "IMPORTING", "", true}, // not Koji's: log order
	} {
		if got := kojiTransition(tc.cur, tc.next, tc.old); got != tc.want {
			t.Errorf("%q → %q (old %q): got %v, want %v", tc.cur, tc.next, tc.old, got, tc.want)
		}
	}
}

// withOld sets a state change's old state, as Koji's messages carry it.
func withOld(st string) opt { return func(r any) { r.(*avro.BuildEvent).OldState = st } }

// TestBuildStateFollowsKoji: the latest state change in log order applies
// unless Koji cannot make it; the event time and the event id (a content
// hash for messages without an id) decide nothing.
func TestBuildStateFollowsKoji(t *testing.T) {
	for _, tc := range []struct {
		name   string
		events []avro.Record
		want   string
	}{
		{"BUILDING then COMPLETE at the same time, whatever the ids", []avro.Record{
			build(avro.StateBuilding, 5, id("sha256:ffff")),
			build(avro.StateComplete, 5, id("sha256:0000"), withOld(avro.StateBuilding)),
		}, avro.StateComplete},
		{"COMPLETE with an earlier event time than BUILDING", []avro.Record{
			build(avro.StateBuilding, 9),
			build(avro.StateComplete, 3, withOld(avro.StateBuilding)),
		}, avro.StateComplete},
		{"a late BUILDING after COMPLETE", []avro.Record{
			build(avro.StateComplete, 5),
			build(avro.StateBuilding, 6),
		}, avro.StateComplete},
		{"FAILED, resubmitted under the same NVR, COMPLETE", []avro.Record{
			build(avro.StateBuilding, 1),
			build(avro.StateFailed, 2, withOld(avro.StateBuilding)),
			build(avro.StateBuilding, 3, withOld(avro.StateFailed)),
			build(avro.StateComplete, 4, withOld(avro.StateBuilding)),
		}, avro.StateComplete},
		{"FAILED, resubmitted, the FAILED redelivered", []avro.Record{
			build(avro.StateBuilding, 1, id("b1")),
			build(avro.StateFailed, 2, id("f1"), withOld(avro.StateBuilding)),
			build(avro.StateBuilding, 3, id("b2"), withOld(avro.StateFailed)),
			build(avro.StateFailed, 2, id("f1"), withOld(avro.StateBuilding)),
		}, avro.StateBuilding},
		{"CANCELED, resubmitted, COMPLETE, a stale FAILED", []avro.Record{
			build(avro.StateBuilding, 1),
			build(avro.StateCanceled, 2, withOld(avro.StateBuilding)),
			build(avro.StateBuilding, 3, withOld(avro.StateCanceled)),
			build(avro.StateComplete, 4, withOld(avro.StateBuilding)),
			build(avro.StateFailed, 5, withOld(avro.StateBuilding)),
		}, avro.StateComplete},
		{"DELETED is final", []avro.Record{
			build(avro.StateComplete, 1),
			build(avro.StateDeleted, 2, withOld(avro.StateComplete)),
			build(avro.StateComplete, 3, withOld(avro.StateBuilding)),
			build(avro.StateBuilding, 4, withOld(avro.StateFailed)),
		}, avro.StateDeleted},
		{"a CANCELED of an earlier attempt after COMPLETE", []avro.Record{
			build(avro.StateComplete, 1),
			build(avro.StateCanceled, 2, withOld(avro.StateBuilding)),
		}, avro.StateComplete},
		{"reset_build, then a reimport", []avro.Record{
			build(avro.StateComplete, 1),
			build(avro.StateCanceled, 2, withOld(avro.StateComplete)),
			build(avro.StateBuilding, 3, withOld(avro.StateCanceled)),
		}, avro.StateBuilding},
		{"a state in lower case", []avro.Record{
			build("building", 1),
			build("complete", 1),
		}, avro.StateComplete},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s Subject
			for i, r := range tc.events {
				if r.Env().ID == "" {
					r.Env().ID = fmt.Sprintf("ev-%d", i)
				}
			}
			applyAll(t, &s, tc.events)
			if s.Build.State != tc.want {
				t.Errorf("state %s, want %s", s.Build.State, tc.want)
			}
			// Round trip.
			var d Subject
			if err := d.UnmarshalBinary(marshal(t, &s)); err != nil || d.Build.State != tc.want ||
				!slices.Equal(d.RecentBuildEvents, s.RecentBuildEvents) {
				t.Errorf("decoded %+v: %v", d.Build, err)
			}
		})
	}
}

// TestTagsFollowLogOrder: the latest tag or untag in log order decides,
// whatever the event times and ids; a redelivered one changes nothing.
func TestTagsFollowLogOrder(t *testing.T) {
	var s Subject
	applyAll(t, &s, []avro.Record{
		tag("f41-signing-pending", 7, id("sha256:0000")),
		untag("f41-signing-pending", 7, id("sha256:ffff")),
		tag("f41-signing-pending", 7, id("sha256:8888")),
	})
	if !s.Tagged("f41-signing-pending") {
		t.Fatal("tag, untag, tag at one time: not tagged")
	}
	applyAll(t, &s, []avro.Record{untag("f41-signing-pending", 2, id("u2"))})
	if s.Tagged("f41-signing-pending") {
		t.Fatal("an untag with an earlier event time, later in the log, did not apply")
	}
	before := marshal(t, &s)
	for _, r := range []avro.Record{
		tag("f41-signing-pending", 7, id("sha256:8888")), // redelivered
		tag("f41-signing-pending", 7, id("sha256:0000")),
	} {
		if changed, err := s.Apply(r); changed || err != nil {
			t.Errorf("redelivered %s: changed=%v err=%v", r.Env().ID, changed, err)
		}
	}
	if !bytes.Equal(marshal(t, &s), before) || s.Tagged("f41-signing-pending") {
		t.Error("redelivered tags changed the state")
	}
}

// TestRecentBuildEventsBound: the ids of the latest build events are
// remembered, at most maxRecentBuildEvents of them.
func TestRecentBuildEventsBound(t *testing.T) {
	var s Subject
	for i := 0; i < maxRecentBuildEvents+4; i++ {
		r := tag(fmt.Sprint("t", i%3), i, id(fmt.Sprint("e", i)))
		if i%2 == 1 {
			r.Kind = avro.BuildUntag
		}
		applyAll(t, &s, []avro.Record{r})
	}
	if len(s.RecentBuildEvents) != maxRecentBuildEvents ||
		s.RecentBuildEvents[0] != eventFingerprint("e4") ||
		s.RecentBuildEvents[maxRecentBuildEvents-1] != eventFingerprint(fmt.Sprint("e", maxRecentBuildEvents+3)) {
		t.Fatalf("recent %v", s.RecentBuildEvents)
	}
	// The latest are recognized; the oldest are forgotten.
	if changed, _ := s.Apply(tag("t1", 0, id(fmt.Sprint("e", maxRecentBuildEvents+3)))); changed {
		t.Error("the latest build event, redelivered, changed the state")
	}
	if changed, _ := s.Apply(tag("t1", 0, id("e1"))); !changed {
		t.Error("a build event older than the bound was taken for a redelivery")
	}
}

// TestSubjectFormat1Decodes: a subject stored before RecentBuildEvents
// existed (format 1) still decodes, and re-encodes in the current format.
func TestSubjectFormat1Decodes(t *testing.T) {
	var s Subject
	applyAll(t, &s, []avro.Record{result("t", "PASSED", 1, rid("7")), waive("t", "fedora-26", true, 2)})
	cur := marshal(t, &s)
	if cur[0] != subjectFormat || cur[len(cur)-1] != 0 {
		t.Fatalf("format %d, last byte %d", cur[0], cur[len(cur)-1])
	}
	v1 := slices.Clone(cur[:len(cur)-1]) // no RecentBuildEvents count
	v1[0] = subjectFormatV1
	var d Subject
	if err := d.UnmarshalBinary(v1); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(marshal(t, &d), cur) {
		t.Error("format 1 decoded to another state")
	}
	if err := d.UnmarshalBinary(append(slices.Clone(v1), 0)); err == nil {
		t.Error("format 1 with trailing bytes decoded")
	}
}

// TestResultAndWaiverTies: results and waivers are ordered by their own
// time, then by ResultsDB or WaiverDB id; when neither tells them apart,
// the later one in the log is the latest.
func TestResultAndWaiverTies(t *testing.T) {
	waivedNow := func(recs ...avro.Record) bool {
		var s Subject
		s.ID = testNVR
		applyAll(t, &s, recs)
		return s.Waivers[0].History[len(s.Waivers[0].History)-1].Waived
	}
	// The same timestamp, ids that are content hashes: log order.
	w := waive("dist.rpmdeplint", "fedora-26", true, 5, id("sha256:ffff"), rid("sha256:ffff"))
	u := waive("dist.rpmdeplint", "fedora-26", false, 5, id("sha256:0000"), rid("sha256:0000"))
	if waivedNow(w, u) {
		t.Error("waive, unwaive at one time: still waived")
	}
	if !waivedNow(u, w) {
		t.Error("unwaive, waive at one time: not waived")
	}
	// WaiverDB ids: the greater id is WaiverDB's most recent, whatever
	// the order they arrive in.
	w = waive("dist.rpmdeplint", "fedora-26", true, 5, rid("9"))
	u = waive("dist.rpmdeplint", "fedora-26", false, 5, rid("10"))
	if waivedNow(w, u) || waivedNow(u, w) {
		t.Error("WaiverDB's id 10 (unwaive) must beat id 9 (waive)")
	}
	// The waiver's own time first.
	w = waive("dist.rpmdeplint", "fedora-26", true, 6, rid("9"))
	if !waivedNow(u, w) || !waivedNow(w, u) {
		t.Error("a later timestamp must win")
	}

	latest := func(recs ...avro.Record) string {
		var s Subject
		applyAll(t, &s, recs)
		h := s.Results[0].History
		return h[len(h)-1].Outcome
	}
	q := result("t", "QUEUED", 5, id("sha256:ffff"), rid("sha256:ffff"))
	p := result("t", "PASSED", 5, id("sha256:0000"), rid("sha256:0000"))
	if latest(q, p) != "PASSED" || latest(p, q) != "QUEUED" {
		t.Error("results at one time with ids that are not ResultsDB's: log order")
	}
	q = result("t", "QUEUED", 5, rid("100"))
	p = result("t", "PASSED", 5, rid("101"))
	if latest(q, p) != "PASSED" || latest(p, q) != "PASSED" {
		t.Error("results at one time: ResultsDB's id")
	}
}

// Autosign acts only on states the log order reached.

// TestAutosignCompleteSameTimeAsBuilding: a build whose BUILDING and
// COMPLETE messages carry the same time (Koji's messages have none of
// their own) is signed once tagged, whatever the event ids.
func TestAutosignCompleteSameTimeAsBuilding(t *testing.T) {
	for _, ids := range [][2]string{{"sha256:ffff", "sha256:0000"}, {"sha256:0000", "sha256:ffff"}} {
		h := newAutosign(t)
		on := subj(f41NVR)
		out := h.apply(
			build(avro.StateBuilding, 5, on, id(ids[0])),
			build(avro.StateComplete, 5, on, id(ids[1]), withOld(avro.StateBuilding), artifacts(rpms...)),
			tag("f41-updates-candidate", 5, on),
		)
		sign, _ := records(out)
		if len(sign) != 1 || sign[0].Action != avro.AutosignSign || sign[0].KeyID != buildKey {
			t.Fatalf("ids %v: got %s", ids, mustJSON(t, out))
		}
		if st := h.subject().Build.State; st != avro.StateComplete {
			t.Errorf("ids %v: state %s", ids, st)
		}
	}
}

// goldSetup is a complete build with one required test passed and the
// other failed, for the gold key's rule (f41-gold: signs builds tagged
// into f41-signing-pending once bodhi_update_push_stable is satisfied).
func goldSetup(on opt) []avro.Record {
	return []avro.Record{
		build(avro.StateBuilding, 1, on),
		build(avro.StateComplete, 1, on, withOld(avro.StateBuilding), artifacts(rpms...)),
		result("fedora-ci.koji-build.tier0.functional", "PASSED", 2, on),
		result("dist.rpmdeplint", "FAILED", 3, on),
	}
}

func goldSigns(out []avro.Record) []*avro.AutosignDecision {
	var ds []*avro.AutosignDecision
	for _, r := range out {
		if d, ok := r.(*avro.AutosignDecision); ok && d.KeyID == goldKey {
			ds = append(ds, d)
		}
	}
	return ds
}

// TestAutosignWaiveUnwaiveTag: a failed test waived, unwaived, and then
// the build tagged into the signing tag, processed in that order, never
// yields a sign decision: not with WaiverDB's ids, not with ids that are
// content hashes and one timestamp, and not in any interleaving of the
// topics that keeps the tag after the unwaiver (the runtime's merge puts
// the tag, produced after the unwaiver, after it).
func TestAutosignWaiveUnwaiveTag(t *testing.T) {
	on := subj(f41NVR)
	variants := map[string][]avro.Record{
		"WaiverDB ids": {
			waive("dist.rpmdeplint", "fedora-41", true, 4, on, rid("501")),
			waive("dist.rpmdeplint", "fedora-41", false, 5, on, rid("502")),
			tag("f41-signing-pending", 6, on),
		},
		"one timestamp, hashed ids": {
			waive("dist.rpmdeplint", "fedora-41", true, 4, on, id("sha256:ffff"), rid("sha256:ffff")),
			waive("dist.rpmdeplint", "fedora-41", false, 4, on, id("sha256:0000"), rid("sha256:0000")),
			tag("f41-signing-pending", 4, on, id("sha256:7777")),
		},
	}
	for name, tail := range variants {
		t.Run(name, func(t *testing.T) {
			h := newAutosign(t)
			if d := goldSigns(h.apply(append(goldSetup(on), tail...)...)); len(d) != 0 {
				t.Fatalf("sign decisions: %s", mustJSON(t, d))
			}
			ev := h.eval(Query{SubjectType: SubjectKojiBuild, DecisionContexts: []string{"bodhi_update_push_stable"}, ProductVersion: "fedora-41"})
			if ev.PoliciesSatisfied {
				t.Errorf("unwaived failure satisfies gating: %s", ev.Summary)
			}
		})
	}
	// Interleavings: the results, the waiver and the unwaiver (one topic,
	// in order) around the build events (another topic, in order), the
	// tag after the unwaiver.
	rng := rand.New(rand.NewPCG(5, 6))
	for i := 0; i < 50; i++ {
		setup := goldSetup(on)
		builds := slices.Clone(setup[:2])
		tests := append(slices.Clone(setup[2:]),
			waive("dist.rpmdeplint", "fedora-41", true, 4, on, rid("501")),
			waive("dist.rpmdeplint", "fedora-41", false, 5, on, rid("502")))
		var order []avro.Record
		for len(builds)+len(tests) > 0 {
			if len(tests) == 0 || (len(builds) > 0 && rng.IntN(2) == 0) {
				order, builds = append(order, builds[0]), builds[1:]
			} else {
				order, tests = append(order, tests[0]), tests[1:]
			}
		}
		order = append(order, tag("f41-signing-pending", 6, on))
		h := newAutosign(t)
		if d := goldSigns(h.apply(order...)); len(d) != 0 {
			t.Fatalf("interleaving %d %v: sign decisions %s", i, ids(order), mustJSON(t, d))
		}
	}
}

// TestAutosignWaiveTagUnwaive: tagged while a waiver is in force, the
// build satisfies Greenwave's decision, so the sign decision is made when
// the tag arrives (the log has reached a state where every condition
// holds); the unwaiver then revokes it if the signer has not signed, and
// changes nothing once the build is signed.
func TestAutosignWaiveTagUnwaive(t *testing.T) {
	on := subj(f41NVR)
	waiver := waive("dist.rpmdeplint", "fedora-41", true, 4, on, rid("501"))
	unwaiver := waive("dist.rpmdeplint", "fedora-41", false, 6, on, rid("502"))

	h := newAutosign(t)
	h.apply(append(goldSetup(on), waiver)...)
	sign := goldSigns(h.apply(tag("f41-signing-pending", 5, on)))
	if len(sign) != 1 || sign[0].Action != avro.AutosignSign {
		t.Fatalf("tag while waived: %s", mustJSON(t, sign))
	}
	revoke := goldSigns(h.apply(unwaiver))
	if len(revoke) != 1 || revoke[0].Action != avro.AutosignRevoke || revoke[0].IdempotencyKey != sign[0].IdempotencyKey ||
		!slices.Equal(reqTypes(revoke[0].Unsatisfied), []string{ReqContextSatisfied}) ||
		!revoke[0].EventTime.Equal(unwaiver.EventTime) {
		t.Fatalf("unwaive before signing: %s", mustJSON(t, revoke))
	}

	// Signed (and moved by the signer) before the unwaiver: nothing to
	// take back; the signed status stands.
	h = newAutosign(t)
	h.apply(append(goldSetup(on), waiver, tag("f41-signing-pending", 5, on))...)
	out := h.apply(sign1(goldKey, 5, rpms[0]), sign1(goldKey, 5, rpms[1]))
	if _, status := records(out); len(status) != 1 || !status[0].Signed {
		t.Fatalf("signing: %s", mustJSON(t, out))
	}
	if d := goldSigns(h.apply(unwaiver)); len(d) != 0 {
		t.Fatalf("unwaive after signing: %s", mustJSON(t, d))
	}
}
