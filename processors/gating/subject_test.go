package gating

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/factory2/factory2/avro"
)

// lifecycle is a realistic event history of one build, with explicit ids
// so that it can be shuffled.
func lifecycle() []avro.Record {
	recs := []avro.Record{
		build(avro.StateBuilding, 0, created(at(0))),
		build(avro.StateComplete, 10, created(at(0)), commit("c1"), artifacts("nethack-1.2.3-1.el9000.src.rpm", "nethack-1.2.3-1.el9000.x86_64.rpm"),
			func(r any) { r.(*avro.BuildEvent).CompletionTime = at(10) }),
		tag("f41-updates-candidate", 11),
		tag("f41-signing-pending", 12),
		sign("E99D6AD1", 13, artifacts("nethack-1.2.3-1.el9000.src.rpm")),
		sign("e99d6ad1", 14, artifacts("nethack-1.2.3-1.el9000.x86_64.rpm")),
		func() avro.Record {
			s := sign("a15b79cc", 15, artifacts("nethack-1.2.3-1.el9000.x86_64.rpm"))
			s.Outcome = avro.SignFailed
			return s
		}(),
		untag("f41-signing-pending", 16),
		tag("f41-updates-testing-pending", 16),
		remote("gating.yaml", remoteUpgradepath, 17, commit("c1")),
		remoteError("gating.yaml", "timeout", 18, commit("c1")),
		result("dist.rpmdeplint", "QUEUED", 20, rid("1")),
		result("dist.rpmdeplint", "RUNNING", 21, rid("2")),
		result("dist.rpmdeplint", "PASSED", 22, rid("3")),
		result("dist.rpmdeplint", "FAILED", 23, rid("4")),
		result("dist.rpmdeplint", "PASSED", 24, rid("5")),
		result("dist.upgradepath", "FAILED", 25, rid("6"), arch("x86_64", "")),
		result("dist.upgradepath", "ERROR", 25, rid("7"), arch("aarch64", ""), func(r any) { r.(*avro.TestResult).ErrorReason = "boom" }),
		waive("dist.upgradepath", "fedora-26", true, 26, rid("10")),
		waive("dist.upgradepath", "fedora-26", false, 27, rid("11")),
		waive("dist.upgradepath", "fedora-26", true, 28, rid("12"), scenario("s1")),
		waive("dist.upgradepath", "fedora-26", true, 29, rid("13")),
	}
	for i, r := range recs {
		r.Env().ID = fmt.Sprintf("e%02d", i)
	}
	return recs
}

func applyAll(t testing.TB, s *Subject, recs []avro.Record) {
	t.Helper()
	for _, r := range recs {
		if _, err := s.Apply(r); err != nil {
			t.Fatalf("%s: %v", r.Env().ID, err)
		}
	}
}

func marshal(t testing.TB, s *Subject) []byte {
	t.Helper()
	b, err := s.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// interleaving returns the events in a random order that keeps the build
// events (one topic, whose log order the state follows) in their order,
// with dups duplicates each somewhere after its original: the orders the
// runtime's merge of the input topics can give, with redeliveries.
func interleaving(rng *rand.Rand, recs []avro.Record, dups int) []avro.Record {
	perm := slices.Clone(recs)
	rng.Shuffle(len(perm), func(a, b int) { perm[a], perm[b] = perm[b], perm[a] })
	var builds []avro.Record
	for _, r := range recs {
		if _, ok := r.(*avro.BuildEvent); ok {
			builds = append(builds, r)
		}
	}
	for i, r := range perm {
		if _, ok := r.(*avro.BuildEvent); ok {
			perm[i], builds = builds[0], builds[1:]
		}
	}
	for j := 0; j < dups; j++ {
		at := rng.IntN(len(perm))
		perm = slices.Insert(perm, at+1+rng.IntN(len(perm)-at), perm[at])
	}
	return perm
}

// TestApplyConverges: any interleaving of the input topics, with
// redelivered duplicates, gives the same state as in-order delivery.
func TestApplyConverges(t *testing.T) {
	recs := lifecycle()
	var want Subject
	applyAll(t, &want, recs)
	wantBytes := marshal(t, &want)

	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 200; i++ {
		perm := interleaving(rng, recs, 5)
		var s Subject
		applyAll(t, &s, perm)
		if got := marshal(t, &s); !bytes.Equal(got, wantBytes) {
			t.Fatalf("permutation %d: state differs\norder: %v", i, ids(perm))
		}
	}

	// Re-applying any event changes nothing.
	for _, r := range recs {
		if changed, err := want.Apply(r); err != nil || changed {
			t.Errorf("re-applying %s: changed=%v err=%v", r.Env().ID, changed, err)
		}
	}
	if !bytes.Equal(marshal(t, &want), wantBytes) {
		t.Error("duplicates changed the state")
	}

	// What the state says.
	if want.Build.State != avro.StateComplete || want.Build.SourceCommit != "c1" || !want.Build.ArtifactList ||
		len(want.Build.Artifacts) != 2 || want.Build.BuildID != 42 {
		t.Errorf("build %+v", want.Build)
	}
	if !want.Tagged("f41-updates-candidate") || want.Tagged("f41-signing-pending") || !want.Tagged("f41-updates-testing-pending") {
		t.Errorf("tags %+v", want.Tags)
	}
	if sig := want.signatures("e99d6ad1"); sig == nil || len(sig.Signed) != 2 {
		t.Errorf("signatures %+v", want.Signatures)
	}
	if f := want.remoteFile("gating.yaml"); f == nil || f.Content == "" || f.FetchError != "" {
		t.Errorf("the fetched file must beat a later fetch error: %+v", f)
	}
	if len(want.Results) != 3 || len(want.Results[0].History) != maxHistory ||
		want.Results[0].History[maxHistory-1].ResultID != "5" {
		t.Errorf("results %+v", want.Results)
	}
}

func ids(recs []avro.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.Env().ID
	}
	return out
}

// asFedora26 gates every test subject as fedora-26, the product version of
// Greenwave's example policies.
var asFedora26 = WithProductVersionRules(ProductVersionRule{Match: ".*", ProductVersion: "fedora-26"})

// TestOutOfOrderDecisions: results before the build, signatures before
// the tag (any interleaving of the input topics): the decisions converge
// to those of in-order delivery.
func TestOutOfOrderDecisions(t *testing.T) {
	rules := []SigningRule{{Name: "build", From: "f41-updates-candidate", To: "f41-updates-candidate", Key: "k", KeyID: "e99d6ad1"}}
	final := func(recs []avro.Record) (map[string]string, []byte) {
		h := newHarness(t, fedoraYAML+remoteRulePolicy, rules, asFedora26)
		h.apply(recs...)
		// The last decision emitted per key, ignoring result and waiver ids
		// (an update is not emitted for those alone, so which ids the last
		// one carries depends on the order), and the decision evaluated
		// from the final state, exactly.
		last := map[string]string{}
		strip := func(rs []avro.Requirement) []avro.Requirement {
			out := slices.Clone(rs)
			for i := range out {
				out[i].ResultID, out[i].WaiverID = "", ""
			}
			return out
		}
		for _, d := range gatingOf(h.out) {
			last[d.DecisionContext+"@"+d.ProductVersion] = mustJSON(t, []any{d.PoliciesSatisfied, d.Summary, strip(d.Satisfied), strip(d.Unsatisfied)})
		}
		for _, k := range h.e.DecisionKeys(h.subject()) {
			ev := h.e.Evaluate(h.subject(), Query{SubjectType: k.SubjectType, DecisionContexts: []string{k.DecisionContext}, ProductVersion: k.ProductVersion})
			last["eval "+k.DecisionContext] = mustJSON(t, []any{ev.Summary, ev.Satisfied(), ev.Unsatisfied(), ev.DerivedFrom()})
		}
		var signed []byte
		for _, r := range h.out {
			if st, ok := r.(*avro.SignedStatus); ok {
				signed = []byte(mustJSON(t, st.Signed))
			}
		}
		s := h.subject()
		s.Gating, s.Autosign, s.Signed = nil, nil, nil
		return last, append(signed, marshal(t, s)...)
	}
	recs := lifecycle()
	inOrderDecisions, inOrderState := final(recs)
	if len(inOrderDecisions) == 0 {
		t.Fatal("no decisions")
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 30; i++ {
		d, s := final(interleaving(rng, lifecycle(), 0))
		if !bytes.Equal(s, inOrderState) {
			t.Fatalf("permutation %d: state or signed status differs", i)
		}
		for k, v := range inOrderDecisions {
			if d[k] != v {
				t.Fatalf("permutation %d: last decision for %s differs:\n%s\nwant\n%s", i, k, d[k], v)
			}
		}
	}
}

func TestSubjectRoundTrip(t *testing.T) {
	h := newHarness(t, fedoraYAML+remoteRulePolicy, []SigningRule{
		{Name: "build", From: "f41-updates-candidate", To: "f41-updates-candidate", Key: "k", KeyID: "e99d6ad1", Priority: -3}}, asFedora26)
	h.apply(lifecycle()...)
	s := h.subject()
	if len(s.Gating) == 0 || len(s.Signed) == 0 {
		t.Fatalf("expected emitted records in state: %+v %+v", s.Gating, s.Signed)
	}
	b1 := marshal(t, s)
	var s2 Subject
	if err := s2.UnmarshalBinary(b1); err != nil {
		t.Fatal(err)
	}
	if b2 := marshal(t, &s2); !bytes.Equal(b1, b2) {
		t.Fatal("MarshalBinary → UnmarshalBinary → MarshalBinary is not identical")
	}
	if mustJSON(t, s) != mustJSON(t, &s2) {
		t.Error("decoded subject differs")
	}
	var empty Subject
	b := marshal(t, &empty)
	if err := empty.UnmarshalBinary(b); err != nil || !bytes.Equal(marshal(t, &empty), b) {
		t.Errorf("empty subject: %v", err)
	}

	for name, data := range map[string][]byte{
		"empty":          nil,
		"unknown format": {99},
		"truncated":      b1[:len(b1)/2],
		"trailing":       append(slices.Clone(b1), 0),
	} {
		var x Subject
		if err := x.UnmarshalBinary(data); !errors.Is(err, ErrCorruptState) {
			t.Errorf("%s: got %v", name, err)
		}
	}
}

func TestApplyErrors(t *testing.T) {
	for name, tc := range map[string]struct {
		rec  avro.Record
		want error
	}{
		"build without NVR":      {&avro.BuildEvent{Kind: avro.BuildStateChange}, ErrInvalidRecord},
		"tag without tag":        {&avro.BuildEvent{Kind: avro.BuildTag, NVR: testNVR}, ErrInvalidRecord},
		"unknown build kind":     {&avro.BuildEvent{Kind: "rename", NVR: testNVR}, ErrInvalidRecord},
		"sign without key":       {&avro.SignEvent{NVR: testNVR, Outcome: avro.SignSigned}, ErrInvalidRecord},
		"sign bad outcome":       {&avro.SignEvent{NVR: testNVR, SigKey: "a", Outcome: "maybe", Artifacts: []avro.Artifact{{Name: "x"}}}, ErrInvalidRecord},
		"sign without artifacts": {&avro.SignEvent{NVR: testNVR, SigKey: "a", Outcome: avro.SignSigned}, ErrInvalidRecord},
		"result without testcase": {&avro.TestResult{SubjectType: SubjectKojiBuild, SubjectID: testNVR, Outcome: "PASSED"},
			ErrInvalidRecord},
		"waiver without product version": {&avro.Waiver{SubjectType: SubjectKojiBuild, SubjectID: testNVR, Testcase: "t"}, ErrInvalidRecord},
		"remote file without path":       {&avro.RemoteRuleFile{SubjectID: testNVR}, ErrInvalidRecord},
		"another subject":                {result("t", "PASSED", 1, subj("other-1-1.fc41")), ErrSubjectMismatch},
		"compose event":                  {&avro.ComposeEvent{ComposeID: "x"}, ErrUnsupportedRecord},
		"decision":                       {&avro.GatingDecision{}, ErrUnsupportedRecord},
	} {
		var s Subject
		s.ID = testNVR
		before := marshal(t, &s)
		changed, err := s.Apply(tc.rec)
		if !errors.Is(err, tc.want) || changed {
			t.Errorf("%s: changed=%v err=%v, want %v", name, changed, err, tc.want)
		}
		if !bytes.Equal(before, marshal(t, &s)) {
			t.Errorf("%s: state changed on error", name)
		}
	}
}

// TestHistoryBound: the history per key is bounded, and an old result
// arriving after newer ones fill it changes nothing.
func TestHistoryBound(t *testing.T) {
	var s Subject
	for i := 0; i < 10; i++ {
		applyAll(t, &s, []avro.Record{result("t", "PASSED", 10+i, rid(fmt.Sprint(100+i)), id(fmt.Sprint("r", i)))})
	}
	h := s.Results[0].History
	if len(h) != maxHistory || h[0].ResultID != "106" || h[maxHistory-1].ResultID != "109" {
		t.Fatalf("history %+v", h)
	}
	if changed, _ := s.Apply(result("t", "FAILED", 1, rid("50"), id("old"))); changed {
		t.Error("an evicted-old result changed the state")
	}
	// The same result id with another envelope: the greater copy is kept,
	// whatever the order.
	a := result("t", "PASSED", 30, rid("200"), id("x1"))
	b := result("t", "PASSED", 30, rid("200"), id("x2"))
	var s1, s2 Subject
	applyAll(t, &s1, []avro.Record{a, b})
	applyAll(t, &s2, []avro.Record{b, a})
	if !bytes.Equal(marshal(t, &s1), marshal(t, &s2)) {
		t.Error("same result id, different envelope: order matters")
	}
}

func TestNormTime(t *testing.T) {
	loc := time.FixedZone("X", 3600)
	in := time.Date(2024, 5, 6, 7, 8, 9, 10, loc)
	out := normTime(in)
	if !out.Equal(in) || out.Location() != time.UTC {
		t.Errorf("normTime(%v) = %v", in, out)
	}
	if !normTime(time.Time{}).IsZero() {
		t.Error("zero time")
	}
}

// FuzzSubjectUnmarshal: decoding arbitrary bytes never panics, and what
// decodes re-encodes to bytes that decode to the same encoding.
func FuzzSubjectUnmarshal(f *testing.F) {
	var s Subject
	applyAll(f, &s, lifecycle())
	b, _ := s.MarshalBinary()
	f.Add(b)
	f.Add([]byte{subjectFormat})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		var x Subject
		if err := x.UnmarshalBinary(data); err != nil {
			return
		}
		b1, err := x.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var y Subject
		if err := y.UnmarshalBinary(b1); err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		b2, _ := y.MarshalBinary()
		if !bytes.Equal(b1, b2) {
			t.Fatal("encoding not stable")
		}
	})
}

// FuzzParsePolicies: the policy parser never panics.
func FuzzParsePolicies(f *testing.F) {
	f.Add([]byte(remoteUpgradepath))
	f.Add([]byte(fedoraYAML))
	f.Add([]byte("--- !Policy\n42\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = ParseRemotePolicies("fuzz.yaml", data)
		_, _ = LoadPolicies(map[string][]byte{"fuzz.yaml": data})
	})
}
