package gating

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/factory2/factory2/avro"
)

// The default test subject, as in Greenwave's tests.
const testNVR = "nethack-1.2.3-1.el9000"

var t0 = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

func at(min int) time.Time { return t0.Add(time.Duration(min) * time.Minute) }

type opt func(any)

// Options for the event constructors below.
func subj(id string) opt {
	return func(r any) {
		switch e := r.(type) {
		case *avro.BuildEvent:
			e.NVR = id
		case *avro.SignEvent:
			e.NVR = id
		case *avro.TestResult:
			e.SubjectID = id
		case *avro.Waiver:
			e.SubjectID = id
		case *avro.RemoteRuleFile:
			e.SubjectID = id
		}
	}
}

func typ(t string) opt {
	return func(r any) {
		switch e := r.(type) {
		case *avro.TestResult:
			e.SubjectType = t
		case *avro.Waiver:
			e.SubjectType = t
		case *avro.RemoteRuleFile:
			e.SubjectType = t
		}
	}
}

func id(s string) opt { return func(r any) { r.(avro.Record).Env().ID = s } }

func rid(s string) opt {
	return func(r any) {
		switch e := r.(type) {
		case *avro.TestResult:
			e.ResultID = s
		case *avro.Waiver:
			e.WaiverID = s
		}
	}
}

func scenario(s string) opt {
	return func(r any) {
		switch e := r.(type) {
		case *avro.TestResult:
			e.Scenario = s
		case *avro.Waiver:
			e.Scenario = &s
		}
	}
}

func arch(a, variant string) opt {
	return func(r any) { e := r.(*avro.TestResult); e.SystemArch, e.SystemVariant = a, variant }
}

func created(t time.Time) opt { return func(r any) { r.(*avro.BuildEvent).CreationTime = t } }

func commit(c string) opt {
	return func(r any) {
		switch e := r.(type) {
		case *avro.BuildEvent:
			e.SourceCommit = c
		case *avro.RemoteRuleFile:
			e.SourceCommit = c
		}
	}
}

func artifacts(names ...string) opt {
	return func(r any) {
		var as []avro.Artifact
		for _, n := range names {
			as = append(as, avro.Artifact{Name: n, Type: "rpm"})
		}
		switch e := r.(type) {
		case *avro.BuildEvent:
			e.Artifacts = as
		case *avro.SignEvent:
			e.Artifacts = as
		}
	}
}

func apply[T avro.Record](r T, opts []opt) T {
	for _, o := range opts {
		o(r)
	}
	return r
}

func env(min int) avro.Envelope {
	return avro.Envelope{EventTime: at(min), IngestTime: at(min).Add(time.Second), Source: "test",
		Origin: avro.Origin{Topic: "test.topic"}}
}

func build(state string, min int, opts ...opt) *avro.BuildEvent {
	return apply(&avro.BuildEvent{Envelope: env(min), Kind: avro.BuildStateChange, NVR: testNVR,
		Name: "nethack", Version: "1.2.3", Release: "1.el9000", BuildID: 42, Owner: "alice", State: state}, opts)
}

func tag(tagName string, min int, opts ...opt) *avro.BuildEvent {
	return apply(&avro.BuildEvent{Envelope: env(min), Kind: avro.BuildTag, NVR: testNVR, Tag: tagName, TagUser: "bodhi"}, opts)
}

func untag(tagName string, min int, opts ...opt) *avro.BuildEvent {
	return apply(&avro.BuildEvent{Envelope: env(min), Kind: avro.BuildUntag, NVR: testNVR, Tag: tagName, TagUser: "bodhi"}, opts)
}

func sign(key string, min int, opts ...opt) *avro.SignEvent {
	return apply(&avro.SignEvent{Envelope: env(min), NVR: testNVR, SigKey: key, Outcome: avro.SignSigned}, opts)
}

func result(testcase, outcome string, min int, opts ...opt) *avro.TestResult {
	return apply(&avro.TestResult{Envelope: env(min), Testcase: testcase, Outcome: outcome,
		SubjectType: SubjectKojiBuild, SubjectID: testNVR, SubmitTime: at(min)}, opts)
}

func waive(testcase, pv string, waived bool, min int, opts ...opt) *avro.Waiver {
	return apply(&avro.Waiver{Envelope: env(min), SubjectType: SubjectKojiBuild, SubjectID: testNVR,
		Testcase: testcase, ProductVersion: pv, Waived: waived, User: "bob", Comment: "This is fine"}, opts)
}

func remote(path, content string, min int, opts ...opt) *avro.RemoteRuleFile {
	return apply(&avro.RemoteRuleFile{Envelope: env(min), SubjectType: SubjectKojiBuild, SubjectID: testNVR,
		Path: path, Content: content}, opts)
}

func remoteMissing(path string, min int, opts ...opt) *avro.RemoteRuleFile {
	f := remote(path, "", min, opts...)
	f.Missing = true
	return f
}

func remoteError(path, why string, min int, opts ...opt) *avro.RemoteRuleFile {
	f := remote(path, "", min, opts...)
	f.FetchError = why
	return f
}

// harness runs the engine like the processor does: for each record,
// decode the stored state, apply, decide, encode.
type harness struct {
	t      testing.TB
	e      *Engine
	stored []byte
	n      int
	// out collects every emitted record.
	out []avro.Record
}

func newHarness(t testing.TB, policies string, rules []SigningRule, opts ...Option) *harness {
	t.Helper()
	var ps *PolicySet
	if policies != "" {
		ps = mustPolicies(t, policies)
	}
	e, err := NewEngine(ps, rules, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, e: e}
}

func (h *harness) subject() *Subject {
	h.t.Helper()
	var s Subject
	if h.stored != nil {
		if err := s.UnmarshalBinary(h.stored); err != nil {
			h.t.Fatal(err)
		}
	}
	return &s
}

// apply processes records in order; records without an envelope ID get
// "ev-N". It returns what they emitted.
func (h *harness) apply(recs ...avro.Record) []avro.Record {
	h.t.Helper()
	var out []avro.Record
	for _, r := range recs {
		if r.Env().ID == "" {
			h.n++
			r.Env().ID = fmt.Sprintf("ev-%03d", h.n)
		}
		s := h.subject()
		if _, err := s.Apply(r); err != nil {
			h.t.Fatalf("apply %s: %v", r.Env().ID, err)
		}
		for _, d := range h.e.Gating(s, r.Env()) {
			out = append(out, d)
		}
		out = append(out, h.e.Autosign(s, r.Env())...)
		b, err := s.MarshalBinary()
		if err != nil {
			h.t.Fatal(err)
		}
		h.stored = b
	}
	h.out = append(h.out, out...)
	return out
}

func (h *harness) eval(q Query) *Evaluation {
	h.t.Helper()
	s := h.subject()
	if s.ID == "" {
		s.ID = testNVR
	}
	return h.e.Evaluate(s, q)
}

// answerStrings describes answers compactly: "type testcase [scenario=..]
// [arch=..] [pending]" (the testcase is left out when it repeats the type).
func answerStrings(as []Answer) []string {
	out := []string{}
	for _, a := range as {
		r := a.Requirement
		s := r.Type
		if r.Testcase != "" && r.Testcase != r.Type {
			s += " " + r.Testcase
		}
		if r.Scenario != "" {
			s += " scenario=" + r.Scenario
		}
		if r.SystemArch != "" {
			s += " arch=" + r.SystemArch
		}
		if r.SystemVariant != "" {
			s += " variant=" + r.SystemVariant
		}
		if r.Pending {
			s += " pending"
		}
		out = append(out, s)
	}
	return out
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", " ")
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func gatingOf(recs []avro.Record) []*avro.GatingDecision {
	var out []*avro.GatingDecision
	for _, r := range recs {
		if d, ok := r.(*avro.GatingDecision); ok {
			out = append(out, d)
		}
	}
	return out
}

func joinLines(ss []string) string { return strings.Join(ss, "\n") }
