package gating

import (
	"testing"

	"github.com/factory2/factory2/avro"
)

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
