package gating_test

import (
	"fmt"
	"os"
	"time"

	"github.com/factory2/factory2/avro"
	"github.com/factory2/factory2/processors/gating"
)

// Example shows the processing of one subject: for each record, decode the
// state, apply, decide, encode.
func Example() {
	policies, err := gating.LoadPolicies(map[string][]byte{"fedora.yaml": []byte(`
--- !Policy
id: fedora_stable
product_versions: [fedora-*]
decision_context: bodhi_update_push_stable
subject_type: koji_build
rules:
  - !PassingTestCaseRule {test_case_name: fedora-ci.koji-build.tier0.functional}
`)})
	if err != nil {
		panic(err)
	}
	engine, err := gating.NewEngine(policies, []gating.SigningRule{{
		Name: "f41", From: "f41-signing-pending", To: "f41-updates-testing-pending",
		Key: "fedora-41", KeyID: "a15b79cc", RequireContext: "bodhi_update_push_stable",
	}})
	if err != nil {
		panic(err)
	}

	const nvr = "bash-5.2.26-3.fc41"
	t := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	events := []avro.Record{
		&avro.BuildEvent{Envelope: avro.Envelope{ID: "b1", EventTime: t}, Kind: avro.BuildStateChange, NVR: nvr,
			State: avro.StateComplete, Artifacts: []avro.Artifact{{Name: nvr + ".x86_64.rpm", Type: "rpm"}}},
		&avro.BuildEvent{Envelope: avro.Envelope{ID: "t1", EventTime: t.Add(time.Minute)}, Kind: avro.BuildTag, NVR: nvr,
			Tag: "f41-signing-pending"},
		&avro.TestResult{Envelope: avro.Envelope{ID: "r1", EventTime: t.Add(time.Hour)}, ResultID: "1",
			Testcase: "fedora-ci.koji-build.tier0.functional", Outcome: "PASSED", SubjectType: "koji_build", SubjectID: nvr},
	}

	var stored []byte // what the runtime keeps under the subject's key
	for _, ev := range events {
		var s gating.Subject
		if stored != nil {
			if err := s.UnmarshalBinary(stored); err != nil {
				panic(err)
			}
		}
		if _, err := s.Apply(ev); err != nil {
			panic(err)
		}
		for _, d := range engine.Gating(&s, ev.Env()) {
			fmt.Printf("%s: gating %s@%s: %s\n", ev.Env().ID, d.DecisionContext, d.ProductVersion, d.Summary)
		}
		for _, r := range engine.Autosign(&s, ev.Env()) {
			if d, ok := r.(*avro.AutosignDecision); ok {
				fmt.Printf("%s: %s %s with %s, then %s → %s\n", ev.Env().ID, d.Action, d.NVR, d.KeyID, d.FromTag, d.ToTag)
			}
		}
		if stored, err = s.MarshalBinary(); err != nil {
			panic(err)
		}
	}

	// The query API answers from the same state.
	var s gating.Subject
	if err := s.UnmarshalBinary(stored); err != nil {
		panic(err)
	}
	ev := engine.Evaluate(&s, gating.Query{DecisionContexts: []string{"bodhi_update_push_stable"}, ProductVersion: "fedora-41"})
	if err := ev.WriteText(os.Stdout); err != nil {
		panic(err)
	}
	// Output:
	// b1: gating bodhi_update_push_stable@fedora-41: Of 1 required test, 1 result missing
	// r1: gating bodhi_update_push_stable@fedora-41: All required tests (1 total) have passed or been waived
	// r1: sign bash-5.2.26-3.fc41 with a15b79cc, then f41-signing-pending → f41-updates-testing-pending
	// koji_build bash-5.2.26-3.fc41: bodhi_update_push_stable @ fedora-41 (policies 2611ea7328e0bc61)
	//   policies: fedora_stable
	//   SATISFIED: All required tests (1 total) have passed or been waived
	//   ✓ test-result-passed fedora-ci.koji-build.tier0.functional [PASSED since 2024-01-01T01:00:00Z, result 1] <fedora_stable>
}
