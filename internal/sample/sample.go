// Package sample is a small, realistic pipeline for `factory2 dev
// --sample`: a few Fedora packages built, tagged for signing, signed and
// moved on by the signer, tested (one failure, later waived), and
// composed, with the gating policy, signing rule and compose definition
// that make decisions appear.
package sample

import (
	"fmt"
	"time"

	"github.com/factory2/factory2/avro"
	"github.com/factory2/factory2/processors/gating"
)

// DecisionContext is the decision context of Policy.
const DecisionContext = "bodhi_update_push_stable"

// Policy is the Greenwave policy the sample is gated by (the shape of
// Fedora's bodhi_update_push_stable policy).
const Policy = `--- !Policy
id: sample_fedora_stable
product_versions:
  - fedora-*
decision_context: ` + DecisionContext + `
subject_type: koji_build
rules:
  - !PassingTestCaseRule {test_case_name: fedora-ci.koji-build.tier0.functional}
  - !PassingTestCaseRule {test_case_name: fedora-ci.koji-build.rpminspect.static-analysis}
`

// SigningRule is the sample's autosign rule, in robosignatory's terms:
// builds tagged into From are signed with KeyID and moved to To.
var SigningRule = gating.SigningRule{
	Name: "fedora-42-build-key", From: "f42-signing-pending", To: "f42-updates-testing-pending",
	Key: "fedora-42", KeyID: "105ef944", Priority: 10,
}

// ComposeID is the compose the sample defines: Fedora 42 updates, made of
// the builds the signer moved into SigningRule.To, each signed with
// SigningRule.KeyID and satisfying DecisionContext for fedora-42.
const ComposeID = "fedora-42-updates"

// Events returns the sample pipeline in the order a real one would
// produce it, with event times increasing in that order. Ids and event
// times are fixed, so feeding the sample twice is idempotent (the second
// time changes nothing).
//
// The order matters: the build is tagged for signing before its RPMs are
// signed, so an autosign decision is made, and the tests report before
// the waiver. Once a build's RPMs are signed, the signer moves it from
// SigningRule.From to SigningRule.To. The compose ComposeID (source tag
// SigningRule.To) is defined once the last build, xz, is there too:
// bash and python-requests are then signed and gated, xz is signed but
// its tests are still queued, so xz blocks the compose; its tier0 test
// fails (still blocked), the waiver clears it, and the compose, all three
// builds signed and gated, is ready. A Pungi compose of the same builds
// ends the sample.
//
// The events span four topics; produced in this order in one batch by an
// ingest Producer, their records' timestamps (their ingest times) never
// decrease and increase at every change of topic, so the processors,
// which merge their input topics by record timestamp (then topic, then
// offset), take them in this order. The ingest time is left to the
// Producer.
//
// Events are numbered sample-001, sample-002, ..., a second apart. The
// signer's moves and the compose definition came later to the sample:
// each is numbered after the event it follows (sample-009.1 follows
// sample-009, a tenth of a second later), so that the other events kept
// their ids and times, which other tests' golden files name.
func Events(base time.Time) []avro.Record {
	var out []avro.Record
	seq, sub := 0, 0
	env := func(source, topic string) avro.Envelope {
		seq++
		sub = 0
		t := base.Add(time.Duration(seq) * time.Second).UTC()
		return avro.Envelope{
			ID:        fmt.Sprintf("sample-%03d", seq),
			Source:    source,
			EventTime: t,
			Origin:    avro.Origin{Topic: "org.fedoraproject.prod." + topic, MessageID: fmt.Sprintf("sample-msg-%03d", seq)},
		}
	}
	// after is env for an event inserted after the last numbered one.
	after := func(source, topic string) avro.Envelope {
		sub++
		t := base.Add(time.Duration(seq)*time.Second + time.Duration(sub)*100*time.Millisecond).UTC()
		e := avro.Envelope{
			ID:        fmt.Sprintf("sample-%03d.%d", seq, sub),
			Source:    source,
			EventTime: t,
		}
		if topic != "" {
			e.Origin = avro.Origin{Topic: "org.fedoraproject.prod." + topic, MessageID: fmt.Sprintf("sample-msg-%03d.%d", seq, sub)}
		}
		return e
	}
	type pkg struct {
		name, version, release string
		buildID                int64
		arches                 []string
		tier0                  string
	}
	pkgs := []pkg{
		{"bash", "5.2.37", "1.fc42", 2601001, []string{"x86_64", "aarch64", "src"}, avro.OutcomePassed},
		{"python-requests", "2.32.3", "4.fc42", 2601002, []string{"noarch", "src"}, avro.OutcomePassed},
		{"xz", "5.6.3", "2.fc42", 2601003, []string{"x86_64", "aarch64", "src"}, avro.OutcomeFailed},
	}
	for pi, p := range pkgs {
		nvr := p.name + "-" + p.version + "-" + p.release
		var arts []avro.Artifact
		for i, a := range p.arches {
			arts = append(arts, avro.Artifact{ID: fmt.Sprint(p.buildID*10 + int64(i)), Name: fmt.Sprintf("%s-%s-%s.%s.rpm", p.name, p.version, p.release, a), Type: "rpm", Arch: a})
		}
		created := base.UTC()
		build := func(env avro.Envelope, kind, state, old, tag string) *avro.BuildEvent {
			e := &avro.BuildEvent{
				Envelope: env,
				Kind:     kind, NVR: nvr, Name: p.name, Version: p.version, Release: p.release,
				BuildID: p.buildID, TaskID: p.buildID + 90000000, Owner: "packager", Instance: "primary",
				State: state, OldState: old, Tag: tag, CreationTime: created,
				SourceURL:    "git+https://src.fedoraproject.org/rpms/" + p.name + ".git#0123456789abcdef0123456789abcdef01234567",
				SourceCommit: "0123456789abcdef0123456789abcdef01234567",
			}
			if kind != avro.BuildStateChange {
				e.Origin.Topic = "org.fedoraproject.prod.buildsys." + kind
				e.TagUser = "bodhi"
			}
			if state == avro.StateComplete {
				e.CompletionTime = e.EventTime
				e.Artifacts = arts
			}
			return e
		}
		change := func() avro.Envelope { return env("koji/primary", "buildsys.build.state.change") }
		out = append(out,
			build(change(), avro.BuildStateChange, avro.StateBuilding, "", ""),
			build(change(), avro.BuildStateChange, avro.StateComplete, avro.StateBuilding, ""),
			build(change(), avro.BuildTag, avro.StateComplete, "", "f42-updates-candidate"),
			build(change(), avro.BuildTag, avro.StateComplete, "", SigningRule.From),
		)
		// Tests are queued, then report.
		for _, tc := range []string{"fedora-ci.koji-build.tier0.functional", "fedora-ci.koji-build.rpminspect.static-analysis"} {
			r := &avro.TestResult{
				Envelope: env("resultsdb", "resultsdb.result.new"),
				ResultID: fmt.Sprint(seq + 1000), Testcase: tc, Outcome: avro.OutcomeQueued,
				SubjectType: "koji_build", SubjectID: nvr,
				RefURL: "https://artifacts.example.org/" + nvr + "/" + tc,
			}
			r.SubmitTime = r.EventTime
			out = append(out, r)
		}
		for _, a := range arts {
			s := &avro.SignEvent{
				Envelope: env("koji/primary", "buildsys.rpm.sign"),
				NVR:      nvr, BuildID: p.buildID, SigKey: SigningRule.KeyID,
				Artifacts: []avro.Artifact{a}, Signer: "robosignatory", Outcome: avro.SignSigned, Instance: "primary",
			}
			out = append(out, s)
		}
		// The signer moves the signed build on (Koji's moveBuild: tag,
		// then untag).
		for _, m := range []struct{ kind, tag string }{{avro.BuildTag, SigningRule.To}, {avro.BuildUntag, SigningRule.From}} {
			e := build(after("koji/primary", "buildsys."+m.kind), m.kind, avro.StateComplete, "", m.tag)
			e.TagUser = "robosignatory"
			out = append(out, e)
		}
		if pi == len(pkgs)-1 {
			// The operator defines the compose (`factory2 emit composes`),
			// the last build in its source tag and not yet gated.
			out = append(out, &avro.ComposeEvent{
				Envelope: after("factory2/config", ""),
				Kind:     avro.ComposeDefinition, ComposeID: ComposeID, ProductVersion: "fedora-42",
				SourceTags: []string{SigningRule.To}, SigningKey: SigningRule.KeyID,
				DecisionContexts: []string{DecisionContext},
			})
		}
		for _, tc := range []struct{ name, outcome string }{
			{"fedora-ci.koji-build.tier0.functional", p.tier0},
			{"fedora-ci.koji-build.rpminspect.static-analysis", avro.OutcomePassed},
		} {
			r := &avro.TestResult{
				Envelope: env("resultsdb", "resultsdb.result.new"),
				ResultID: fmt.Sprint(seq + 1000), Testcase: tc.name, Outcome: tc.outcome,
				SubjectType: "koji_build", SubjectID: nvr,
				RefURL: "https://artifacts.example.org/" + nvr + "/" + tc.name,
			}
			r.SubmitTime = r.EventTime
			out = append(out, r)
		}
		if p.tier0 == avro.OutcomeFailed {
			out = append(out, &avro.Waiver{
				Envelope: env("waiverdb", "waiverdb.waiver.new"),
				WaiverID: fmt.Sprint(seq + 5000), SubjectType: "koji_build", SubjectID: nvr,
				Testcase: "fedora-ci.koji-build.tier0.functional", ProductVersion: "fedora-42",
				Waived: true, User: "maintainer", Comment: "known flaky test on aarch64, see the bug",
			})
		}
	}
	const pungiID = "Fedora-42-updates-testing-20261125.0"
	status := &avro.ComposeEvent{
		Envelope: env("pungi", "pungi.compose.status.change"),
		Kind:     avro.ComposeStatusChange, ComposeID: pungiID, Status: avro.ComposeFinished,
		Location: "https://kojipkgs.example.org/compose/updates/" + pungiID + "/compose", Release: "Fedora-42",
	}
	return append(out, status)
}
