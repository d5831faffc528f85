package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/factory2/factory2/avro"
	"github.com/factory2/factory2/internal/ingest"
	"github.com/factory2/factory2/processors/compose"
	"github.com/factory2/factory2/topics"
)

var at = time.Date(2026, 11, 25, 9, 0, 37, 0, time.UTC)

func env(id string) avro.Envelope { return avro.Envelope{ID: id, EventTime: at} }

func req(typ, testcase string) avro.Requirement {
	return avro.Requirement{Type: typ, Testcase: testcase}
}

// TestRecordText: the text line of each kind of decision and event.
func TestRecordText(t *testing.T) {
	const tier0 = "fedora-ci.koji-build.tier0.functional"
	gatingDecision := func(ok bool, summary string, sat, unsat []avro.Requirement) *avro.GatingDecision {
		return &avro.GatingDecision{Decision: avro.Decision{Envelope: env("g"), Satisfied: sat, Unsatisfied: unsat},
			SubjectType: "koji_build", SubjectID: "curl-8.11.1-3.fc42", DecisionContext: "bodhi_update_push_stable",
			ProductVersion: "fedora-42", PoliciesSatisfied: ok, Summary: summary}
	}
	arts := []avro.Artifact{{Name: "a.rpm"}, {Name: "b.rpm"}}
	for _, tc := range []struct {
		name string
		rec  avro.Record
		want string
	}{
		{"gating blocked by a failed test", gatingDecision(false, "Of 2 required tests, 1 test failed", nil,
			[]avro.Requirement{req("test-result-failed", tier0)}),
			"2026-11-25 09:00:37  gating        curl-8.11.1-3.fc42             blocked  bodhi_update_push_stable@fedora-42: Of 2 required tests, 1 test failed (failed " + tier0 + ")"},
		{"gating waiting for results", gatingDecision(false, "Of 2 required tests, 2 results missing", nil,
			[]avro.Requirement{req("test-result-missing", "a"), {Type: "test-result-missing", Testcase: "b", Pending: true}}),
			"2026-11-25 09:00:37  gating        curl-8.11.1-3.fc42             waiting  bodhi_update_push_stable@fedora-42: Of 2 required tests, 2 results missing"},
		{"gating passed with a waiver", gatingDecision(true, "All required tests (2 total) have passed or been waived",
			[]avro.Requirement{req("test-result-failed-waived", tier0), req("test-result-passed", "b")}, nil),
			"2026-11-25 09:00:37  gating        curl-8.11.1-3.fc42             passed   bodhi_update_push_stable@fedora-42: All required tests (2 total) have passed or been waived (waived " + tier0 + ")"},
		{"autosign with the build key", &avro.AutosignDecision{Decision: avro.Decision{Envelope: env("a"),
			Satisfied: []avro.Requirement{req("build-complete", ""), req("tagged", "")}},
			Action: avro.AutosignSign, NVR: "bash-5.2.37-1.fc42", Key: "fedora-42", KeyID: "105ef944",
			FromTag: "f42-signing-pending", ToTag: "f42-updates-testing-pending", Unsigned: arts},
			"2026-11-25 09:00:37  autosign      bash-5.2.37-1.fc42             sign     fedora-42 (105ef944): 2 artifacts unsigned, tagged into f42-signing-pending; then move to f42-updates-testing-pending"},
		{"autosign with the gold key", &avro.AutosignDecision{Decision: avro.Decision{Envelope: env("a"),
			Satisfied: []avro.Requirement{req("context-satisfied", "bodhi_update_push_stable")}},
			Action: avro.AutosignSign, NVR: "bash-5.2.37-1.fc42", Key: "fedora-42-gold", KeyID: "a15b79cc",
			FromTag: "f42-updates-testing-pending", ToTag: "f42-updates-testing-pending", Unsigned: arts[:1]},
			"2026-11-25 09:00:37  autosign      bash-5.2.37-1.fc42             sign     fedora-42-gold (a15b79cc): 1 artifact unsigned, bodhi_update_push_stable passed; stays in f42-updates-testing-pending"},
		{"autosign revoked", &avro.AutosignDecision{Decision: avro.Decision{Envelope: env("a"),
			Unsatisfied: []avro.Requirement{{Type: "tagged", Detail: "not tagged into f42-signing-pending"}}},
			Action: avro.AutosignRevoke, NVR: "bash-5.2.37-1.fc42", Key: "fedora-42", KeyID: "105ef944"},
			"2026-11-25 09:00:37  autosign      bash-5.2.37-1.fc42             revoke   fedora-42 (105ef944): no longer holds: not tagged into f42-signing-pending"},
		{"signed", &avro.SignedStatus{Decision: avro.Decision{Envelope: env("s")}, NVR: "xz-5.6.3-2.fc42", KeyID: "a15b79cc", Signed: true, Artifacts: arts},
			"2026-11-25 09:00:37  signed        xz-5.6.3-2.fc42                signed   all 2 artifacts signed with a15b79cc"},
		{"compose ready", &avro.ComposeReadyDecision{Decision: avro.Decision{Envelope: env("c")}, ComposeID: "fedora-42-updates",
			Kind: avro.ComposeReady, Ready: true, Summary: "ready: 3 builds, complete"},
			"2026-11-25 09:00:37  compose-ready fedora-42-updates              ready    3 builds, complete"},
		{"compose readiness blocked", &avro.ComposeReadyDecision{Decision: avro.Decision{Envelope: env("c"),
			Unsatisfied: []avro.Requirement{{Type: compose.ReqUnsigned, SubjectID: "xz-5.6.3-2.fc42"}, {Type: compose.ReqGatingFail, SubjectID: "xz-5.6.3-2.fc42"}}},
			ComposeID: "fedora-42-updates", Kind: avro.ComposeReadiness, Summary: "not ready: 1 of 3 builds blocked (1 build-unsigned, 1 gating-failed)"},
			"2026-11-25 09:00:37  readiness     fedora-42-updates              blocked  1 of 3 builds blocked (1 build-unsigned, 1 gating-failed): xz-5.6.3-2.fc42"},
		{"compose readiness loading", &avro.ComposeReadyDecision{Decision: avro.Decision{Envelope: env("c"),
			Unsatisfied: []avro.Requirement{{Type: compose.ReqLoading, SubjectID: "fedora-42-updates"}}},
			ComposeID: "fedora-42-updates", Kind: avro.ComposeReadiness, Summary: "not ready: loading the content (4 of 6 partitions)"},
			"2026-11-25 09:00:37  readiness     fedora-42-updates              loading  loading the content (4 of 6 partitions)"},
		{"compose gate waiting", &avro.ComposeReadyDecision{Decision: avro.Decision{Envelope: env("c")}, ComposeID: "Fedora-42-updates-20261125.0",
			Kind: avro.ComposeGate, Summary: "waiting: no compose gating decision yet"},
			"2026-11-25 09:00:37  gate          Fedora-42-updates-20261125.0   waiting  no compose gating decision yet"},
		{"compose gate passed", &avro.ComposeReadyDecision{Decision: avro.Decision{Envelope: env("c")}, ComposeID: "Fedora-42-updates-20261125.0",
			Kind: avro.ComposeGate, Ready: true, Summary: "passed: every compose gating decision is satisfied"},
			"2026-11-25 09:00:37  gate          Fedora-42-updates-20261125.0   passed   every compose gating decision is satisfied"},
		{"rebuild", &avro.RebuildDecision{Decision: avro.Decision{Envelope: env("r")}, SubjectType: "container", SubjectID: "httpd-container-2.4-3",
			TriggerType: "koji_build", TriggerID: "openssl-3.2.4-1.fc42", Relation: "ContainerIncludesRPM"},
			"2026-11-25 09:00:37  rebuild       httpd-container-2.4-3          rebuild  koji_build openssl-3.2.4-1.fc42 changed (ContainerIncludesRPM)"},
		{"build tagged", &avro.BuildEvent{Envelope: env("b"), Kind: avro.BuildTag, NVR: "bash-5.2.37-1.fc42", Tag: "f42-signing-pending", TagUser: "bodhi"},
			"2026-11-25 09:00:37  build         bash-5.2.37-1.fc42             tagged   into f42-signing-pending by bodhi"},
		{"build completed", &avro.BuildEvent{Envelope: env("b"), Kind: avro.BuildStateChange, NVR: "bash-5.2.37-1.fc42", State: avro.StateComplete, OldState: avro.StateBuilding},
			"2026-11-25 09:00:37  build         bash-5.2.37-1.fc42             COMPLETE BUILDING → COMPLETE"},
		{"test result", &avro.TestResult{Envelope: env("t"), SubjectID: "curl-8.11.1-3.fc42", Testcase: tier0, Outcome: avro.OutcomeFailed},
			"2026-11-25 09:00:37  test          curl-8.11.1-3.fc42             FAILED   " + tier0},
		{"waiver", &avro.Waiver{Envelope: env("w"), SubjectID: "xz-5.6.3-2.fc42", Testcase: tier0, ProductVersion: "fedora-42", Waived: true, User: "maintainer", Comment: "flaky"},
			"2026-11-25 09:00:37  waiver        xz-5.6.3-2.fc42                waived   " + tier0 + "@fedora-42 by maintainer: flaky"},
		{"sign event", &avro.SignEvent{Envelope: env("s"), NVR: "xz-5.6.3-2.fc42", SigKey: "a15b79cc", Outcome: avro.SignSigned, Artifacts: arts[:1]},
			"2026-11-25 09:00:37  sign          xz-5.6.3-2.fc42                signed   with a15b79cc: a.rpm"},
		{"compose definition", &avro.ComposeEvent{Envelope: env("d"), Kind: avro.ComposeDefinition, ComposeID: "fedora-42-updates", ProductVersion: "fedora-42",
			SourceTags: []string{"f42-updates-testing-pending"}, SigningKey: "a15b79cc", DecisionContexts: []string{"bodhi_update_push_stable"}},
			"2026-11-25 09:00:37  compose       fedora-42-updates              defined  from f42-updates-testing-pending, signed with a15b79cc, gated by bodhi_update_push_stable@fedora-42"},
		{"build view", &avro.ComposeMember{Envelope: env("v"), NVR: "xz-5.6.3-2.fc42", State: avro.StateComplete,
			Tags: []avro.MemberTag{{Tag: "f42-updates-testing-pending"}}, SignedKeys: []string{"105ef944"},
			Gating: []avro.MemberGating{{DecisionContext: "bodhi_update_push_stable", ProductVersion: "fedora-42", Pending: true}}},
			"2026-11-25 09:00:37  build-view    xz-5.6.3-2.fc42                COMPLETE in f42-updates-testing-pending; signed with 105ef944; bodhi_update_push_stable@fedora-42 waiting"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := recordText(tc.rec).String(); got != tc.want {
				t.Errorf("got\n  %s\nwant\n  %s", got, tc.want)
			}
		})
	}
}

func TestTextOutput(t *testing.T) {
	var buf bytes.Buffer
	for _, tc := range []struct {
		format string
		want   bool
		err    bool
	}{
		{"auto", false, false}, // a buffer is no terminal
		{"", false, false},
		{"text", true, false},
		{"json", false, false},
		{"yaml", false, true},
	} {
		got, err := textOutput(tc.format, &buf)
		if got != tc.want || (err != nil) != tc.err {
			t.Errorf("textOutput(%q) = %v, %v; want %v, error %v", tc.format, got, err, tc.want, tc.err)
		}
	}
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if isTerminal(f) {
		t.Errorf("a regular file is a terminal")
	}
}

func TestTopicsText(t *testing.T) {
	var b strings.Builder
	err := writeTopicsText(&b, []topics.Status{
		{Topic: "factory2.events.build", Role: topics.Input, Action: topics.OK, Partitions: 6, Replicas: 1, Doc: "build events"},
		{Topic: "factory2.decisions.gating", Role: topics.Decision, Action: topics.Drifted, Partitions: 3, Replicas: 1, Doc: "gating decisions",
			Drift: []string{"partitions 3, want 6"}},
		{Topic: "factory2.deadletter", Role: topics.DeadLetter, Action: topics.Missing},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := `TOPIC                      ROLE         STATUS   PARTITIONS  REPLICATION  HOLDS
factory2.events.build      input        ok       6           1            build events
factory2.decisions.gating  decision     drift    3           1            gating decisions
factory2.deadletter        dead-letter  missing  -           -
factory2.decisions.gating drifted: partitions 3, want 6
`
	if got := b.String(); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestDryRunText(t *testing.T) {
	ev := ingest.Event{Topic: "factory2.events.test", Key: "bash-1-1", Record: &avro.TestResult{Envelope: env("t"),
		SubjectID: "bash-1-1", Testcase: "tier0", Outcome: avro.OutcomePassed}}
	want := "2026-11-25 09:00:37  test          bash-1-1                       PASSED   tier0  → factory2.events.test"
	if got := dryRunText(ev); got != want {
		t.Errorf("got\n  %s\nwant\n  %s", got, want)
	}
}
