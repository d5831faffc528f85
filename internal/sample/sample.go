// Package sample is a small, realistic pipeline for `factory2 dev
// --sample`: four Fedora packages built and tested, three of them signed
// with the build key and moved to testing, then signed with the gold key
// once gating passes (one only after a waiver), one blocked by a failing
// test for good, and a compose of the gold-signed builds that becomes
// ready at the end, which Pungi composes and an openQA test passes; with
// the gating policies, signing rules and compose definition that make
// these decisions appear.
package sample

import (
	"fmt"
	"time"

	"github.com/factory2/factory2/avro"
	"github.com/factory2/factory2/processors/deps"
	"github.com/factory2/factory2/processors/gating"
)

// DecisionContext is the decision context of Policy's build policy.
const DecisionContext = "bodhi_update_push_stable"

// ComposeContext is the decision context of Policy's compose policy.
const ComposeContext = "compose_sync_to_mirrors"

// ComposeTest is the test ComposeContext requires of a compose.
const ComposeTest = "compose.install_default"

// Policy is the Greenwave policy set the sample is gated by, in the shape
// of Fedora's: builds by bodhi_update_push_stable (two CI tests), composes
// by ComposeContext (an openQA test). The build policy comes last, so
// that appending a rule to Policy adds it to the build policy.
const Policy = `--- !Policy
id: sample_fedora_compose
product_versions:
  - fedora-*
decision_context: ` + ComposeContext + `
subject_type: compose
rules:
  - !PassingTestCaseRule {test_case_name: ` + ComposeTest + `}
--- !Policy
id: sample_fedora_stable
product_versions:
  - fedora-*
decision_context: ` + DecisionContext + `
subject_type: koji_build
rules:
  - !PassingTestCaseRule {test_case_name: fedora-ci.koji-build.tier0.functional}
  - !PassingTestCaseRule {test_case_name: fedora-ci.koji-build.rpminspect.static-analysis}
`

// Tests are the testcases Policy requires of a build.
var Tests = []string{"fedora-ci.koji-build.tier0.functional", "fedora-ci.koji-build.rpminspect.static-analysis"}

// SigningRule is the sample's build key rule, in robosignatory's terms:
// builds tagged into From (by Bodhi, when an update is submitted) are
// signed with KeyID at once, untested, and moved to To, the testing tag.
var SigningRule = gating.SigningRule{
	Name: "fedora-42-build-key", From: "f42-signing-pending", To: "f42-updates-testing-pending",
	Key: "fedora-42", KeyID: "105ef944", Priority: 10,
}

// GoldRule is the sample's gold key rule: a build in testing (the build
// key rule's To) is signed with the gold key once it satisfies
// DecisionContext for fedora-42, in place (From == To: no move). The
// build key says "built by Fedora", the gold key "passed gating": the
// talk's autosigner split (Factory 2.0, Flock 2016).
var GoldRule = gating.SigningRule{
	Name: "fedora-42-gold", From: SigningRule.To, To: SigningRule.To,
	Key: "fedora-42-gold", KeyID: "a15b79cc", RequireContext: DecisionContext, ProductVersion: "fedora-42", Priority: 20,
}

// SigningRules are the rules the sample is signed by: the build key and
// the gold key.
var SigningRules = []gating.SigningRule{SigningRule, GoldRule}

// ComposeID is the compose the sample defines: Fedora 42 updates, made of
// the builds in testing (SigningRule.To) that are signed with the gold
// key (GoldRule.KeyID) and satisfy DecisionContext for fedora-42.
const ComposeID = "fedora-42-updates"

// The sample's builds, by the part each plays.
const (
	// Passing passes its tests: build key, testing, gold key.
	Passing = "bash-5.2.37-1.fc42"
	// Blocked fails a required test that nobody waives: gating blocks it
	// for good, so its update is never submitted; it stays in the
	// candidate tag, unsigned, out of the compose.
	Blocked = "curl-8.11.1-3.fc42"
	// Waived fails a required test that is then waived: gating passes
	// after the waiver, the gold key follows, and the compose, which it
	// blocked, becomes ready.
	Waived = "xz-5.6.3-2.fc42"
)

// Events returns the sample pipeline in the order a real one would
// produce it, event times a second apart. Ids (sample-001, sample-002,
// ...) and event times are fixed, so feeding the sample twice is
// idempotent (the second time changes nothing).
//
// The story, build by build (bash, python-requests, curl, xz):
//
//   - Koji builds it and tags it into f42-updates-candidate; CI queues
//     its two required tests.
//   - Except curl, its update is submitted: Bodhi tags it into
//     SigningRule.From, so an autosign decision with the build key is
//     made; the signer signs every RPM and moves the build to testing
//     (SigningRule.To).
//   - The tests report. bash and python-requests pass; gating passes, so
//     an autosign decision with the gold key is made and the signer signs
//     every RPM with it, in place.
//   - curl's tier0 test fails and nobody waives it: gating stays blocked,
//     its update is never submitted, and it is never signed nor in the
//     compose's source tag.
//   - Before xz's tests report, the operator defines the compose
//     ComposeID (`factory2 emit composes`): bash and python-requests are
//     ready; xz, in testing but untested and without the gold key,
//     blocks it. Its tier0 test fails (still blocked); a waiver clears
//     it, gating passes, the gold key follows, and with xz's last RPM
//     signed the compose is ready.
//   - Pungi composes them; compose-level gating waits for its test,
//     which passes: the compose gate passes.
//
// The events span four input topics; produced in this order in one batch
// by an ingest Producer, their records' timestamps (their ingest times)
// never decrease and increase at every change of topic, so the
// processors, which merge their input topics by record timestamp (then
// topic, then offset), take them in this order. The ingest time is left
// to the Producer.
func Events(base time.Time) []avro.Record {
	var out []avro.Record
	seq := 0
	// env is the envelope of the next event; topic is the bus topic it
	// was translated from ("" for none).
	env := func(source, topic string) avro.Envelope {
		seq++
		e := avro.Envelope{
			ID:        fmt.Sprintf("sample-%03d", seq),
			Source:    source,
			EventTime: base.Add(time.Duration(seq) * time.Second).UTC(),
		}
		if topic != "" {
			e.Origin = avro.Origin{Topic: "org.fedoraproject.prod." + topic, MessageID: fmt.Sprintf("sample-msg-%03d", seq)}
		}
		return e
	}
	type pkg struct {
		name, version, release string
		buildID                int64
		arches                 []string
		tier0                  string
		// submitted: an update is made, so the build is signed and tested
		// in testing; waived: the failed tier0 test is waived.
		submitted, waived bool
	}
	// The dependency graph before the sample: the toolbox image ships
	// bash's RPM of an older build, so the newer bash, once signed with
	// the gold key and gated, gives a rebuild decision for the image.
	// Their times precede the first event's, and their ids are their own:
	// the events after keep theirs.
	for i, e := range []struct{ ft, fid, rel, tt, tid string }{
		{"rpm", OldBashRPM, avro.RelProducedBy, "build", OldBash},
		{"container", ToolboxImage, avro.RelIncludes, "rpm", OldBashRPM},
	} {
		out = append(out, &avro.DependencyEdge{
			Envelope: avro.Envelope{ID: fmt.Sprintf("sample-edge-%d", i+1), Source: "image-builder",
				EventTime: base.Add(time.Duration(i+1) * 100 * time.Millisecond).UTC()},
			FromType: e.ft, FromID: e.fid, Relation: e.rel, ToType: e.tt, ToID: e.tid,
		})
	}
	pkgs := []pkg{
		{"bash", "5.2.37", "1.fc42", 2601001, []string{"x86_64", "aarch64", "src"}, avro.OutcomePassed, true, false},
		{"python-requests", "2.32.3", "4.fc42", 2601002, []string{"noarch", "src"}, avro.OutcomePassed, true, false},
		{"curl", "8.11.1", "3.fc42", 2601004, []string{"x86_64", "src"}, avro.OutcomeFailed, false, false},
		{"xz", "5.6.3", "2.fc42", 2601003, []string{"x86_64", "aarch64", "src"}, avro.OutcomeFailed, true, true},
	}
	for _, p := range pkgs {
		nvr := p.name + "-" + p.version + "-" + p.release
		var arts []avro.Artifact
		for i, a := range p.arches {
			arts = append(arts, avro.Artifact{ID: fmt.Sprint(p.buildID*10 + int64(i)), Name: fmt.Sprintf("%s-%s-%s.%s.rpm", p.name, p.version, p.release, a), Type: "rpm", Arch: a})
		}
		build := func(kind, state, old, tag, user string) *avro.BuildEvent {
			topic := "buildsys.build.state.change"
			if kind != avro.BuildStateChange {
				topic = "buildsys." + kind
			}
			e := &avro.BuildEvent{
				Envelope: env("koji/primary", topic),
				Kind:     kind, NVR: nvr, Name: p.name, Version: p.version, Release: p.release,
				BuildID: p.buildID, TaskID: p.buildID + 90000000, Owner: "packager", Instance: "primary",
				State: state, OldState: old, Tag: tag, TagUser: user, CreationTime: base.UTC(),
				SourceURL:    "git+https://src.fedoraproject.org/rpms/" + p.name + ".git#0123456789abcdef0123456789abcdef01234567",
				SourceCommit: "0123456789abcdef0123456789abcdef01234567",
			}
			if state == avro.StateComplete {
				e.CompletionTime = e.EventTime
				e.Artifacts = arts
			}
			return e
		}
		result := func(testcase, outcome string) *avro.TestResult {
			e := env("resultsdb", "resultsdb.result.new")
			r := &avro.TestResult{
				Envelope: e,
				Testcase: testcase, Outcome: outcome, SubjectType: "koji_build", SubjectID: nvr,
				RefURL: "https://artifacts.example.org/" + nvr + "/" + testcase,
			}
			r.ResultID, r.SubmitTime = fmt.Sprint(seq+1000), r.EventTime
			return r
		}
		sign := func(key string) {
			for _, a := range arts {
				out = append(out, &avro.SignEvent{
					Envelope: env("koji/primary", "buildsys.rpm.sign"),
					NVR:      nvr, BuildID: p.buildID, SigKey: key,
					Artifacts: []avro.Artifact{a}, Signer: "robosignatory", Outcome: avro.SignSigned, Instance: "primary",
				})
			}
		}

		out = append(out,
			build(avro.BuildStateChange, avro.StateBuilding, "", "", ""),
			build(avro.BuildStateChange, avro.StateComplete, avro.StateBuilding, "", ""),
			build(avro.BuildTag, avro.StateComplete, "", "f42-updates-candidate", "packager"),
		)
		if p.submitted {
			out = append(out, build(avro.BuildTag, avro.StateComplete, "", SigningRule.From, "bodhi"))
		}
		for _, tc := range Tests {
			out = append(out, result(tc, avro.OutcomeQueued))
		}
		if p.submitted {
			// The signer signs with the build key, then moves the build
			// on (Koji's moveBuild: tag, then untag).
			sign(SigningRule.KeyID)
			out = append(out,
				build(avro.BuildTag, avro.StateComplete, "", SigningRule.To, "robosignatory"),
				build(avro.BuildUntag, avro.StateComplete, "", SigningRule.From, "robosignatory"))
		}
		if nvr == Waived {
			// The operator defines the compose, the last build in its
			// source tag and not yet gated.
			out = append(out, &avro.ComposeEvent{
				Envelope: env("factory2/config", ""),
				Kind:     avro.ComposeDefinition, ComposeID: ComposeID, ProductVersion: "fedora-42",
				SourceTags: []string{SigningRule.To}, SigningKey: GoldRule.KeyID,
				DecisionContexts: []string{DecisionContext},
			})
		}
		out = append(out, result(Tests[0], p.tier0), result(Tests[1], avro.OutcomePassed))
		if p.waived {
			e := env("waiverdb", "waiverdb.waiver.new")
			out = append(out, &avro.Waiver{
				Envelope: e,
				WaiverID: fmt.Sprint(seq + 5000), SubjectType: "koji_build", SubjectID: nvr,
				Testcase: Tests[0], ProductVersion: "fedora-42",
				Waived: true, User: "maintainer", Comment: "known flaky test on aarch64, see the bug",
			})
		}
		if p.submitted && (p.tier0 == avro.OutcomePassed || p.waived) {
			sign(GoldRule.KeyID) // gating passed: the gold key
		}
	}
	status := &avro.ComposeEvent{
		Envelope: env("pungi", "pungi.compose.status.change"),
		Kind:     avro.ComposeStatusChange, ComposeID: PungiComposeID, Status: avro.ComposeFinished,
		Location: "https://kojipkgs.example.org/compose/updates/" + PungiComposeID + "/compose", Release: "Fedora-42",
	}
	e := env("resultsdb", "resultsdb.result.new")
	openqa := &avro.TestResult{
		Envelope: e, ResultID: fmt.Sprint(seq + 1000), Testcase: ComposeTest, Outcome: avro.OutcomePassed,
		Scenario: "fedora.updates-everything-boot-iso.x86_64.64bit", SystemArch: "x86_64",
		SubjectType: "compose", SubjectID: PungiComposeID, SubmitTime: e.EventTime,
		RefURL: "https://openqa.example.org/tests/1042",
	}
	return append(out, status, openqa)
}

// The image the sample's graph holds, and the older bash it ships.
const (
	ToolboxImage = "fedora-toolbox-42-1"
	OldBash      = "bash-5.2.32-1.fc42"
	OldBashRPM   = "bash-5.2.32-1.fc42.x86_64.rpm"
)

// RebuildRules rebuild what ships an older build once the newer one is
// signed with the gold key and gated.
var RebuildRules = deps.RebuildRules{Context: DecisionContext, Key: GoldRule.KeyID}

// PungiComposeID is the compose Pungi makes of the sample's builds.
const PungiComposeID = "Fedora-42-updates-20261125.0"

// Steps returns Events cut where a real pipeline takes time: before each
// build, around the compose definition, and before each of the Pungi
// compose's events. Producing a step once the processors have consumed
// the one before (as dev does) makes the decisions that join several
// processors' outputs (compose readiness, the compose gate) follow the
// story too, and not only the gating processor's, which one batch
// already orders.
func Steps(base time.Time) [][]avro.Record {
	var steps [][]avro.Record
	cut := true
	for _, r := range Events(base) {
		switch e := r.(type) {
		case *avro.BuildEvent:
			cut = cut || e.State == avro.StateBuilding
		case *avro.ComposeEvent:
			cut = true
		case *avro.TestResult:
			cut = cut || e.SubjectType == "compose"
		}
		if cut {
			steps = append(steps, nil)
			cut = false
		}
		steps[len(steps)-1] = append(steps[len(steps)-1], r)
		if e, ok := r.(*avro.ComposeEvent); ok && e.Kind == avro.ComposeDefinition {
			cut = true
		}
	}
	return steps
}
