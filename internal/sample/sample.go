// Package sample is a small, realistic pipeline for `factory2 dev
// --sample`: a few Fedora packages built, tagged for signing, signed, tested
// (one failure, later waived), and composed, with the gating policy and
// signing rule that make decisions appear.
package sample

import (
	"fmt"
	"time"

	"github.com/factory2/factory2/avro"
	"github.com/factory2/factory2/processors/gating"
)

// Policy is the Greenwave policy the sample is gated by (the shape of
// Fedora's bodhi_update_push_stable policy).
const Policy = `--- !Policy
id: sample_fedora_stable
product_versions:
  - fedora-*
decision_context: bodhi_update_push_stable
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

// Events returns the sample pipeline in the order a real one would
// produce it, with event times a second apart in that order. Ids and
// event times are fixed, so feeding the sample twice is idempotent (the
// second time changes nothing).
//
// The order matters: the build is tagged for signing before its RPMs are
// signed, so an autosign decision is made, and the tests report before
// the waiver. The events span four topics; produced in this order in one
// batch by an ingest Producer, their records' timestamps (their ingest
// times) never decrease and increase at every change of topic, so the
// processors, which merge their input topics by record timestamp (then
// topic, then offset), take them in this order. The ingest time is left
// to the Producer.
func Events(base time.Time) []avro.Record {
	var out []avro.Record
	seq := 0
	env := func(source, topic string) avro.Envelope {
		seq++
		t := base.Add(time.Duration(seq) * time.Second).UTC()
		return avro.Envelope{
			ID:        fmt.Sprintf("sample-%03d", seq),
			Source:    source,
			EventTime: t,
			Origin:    avro.Origin{Topic: "org.fedoraproject.prod." + topic, MessageID: fmt.Sprintf("sample-msg-%03d", seq)},
		}
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
	for _, p := range pkgs {
		nvr := p.name + "-" + p.version + "-" + p.release
		var arts []avro.Artifact
		for i, a := range p.arches {
			arts = append(arts, avro.Artifact{ID: fmt.Sprint(p.buildID*10 + int64(i)), Name: fmt.Sprintf("%s-%s-%s.%s.rpm", p.name, p.version, p.release, a), Type: "rpm", Arch: a})
		}
		created := base.UTC()
		build := func(kind, state, old, tag string) *avro.BuildEvent {
			e := &avro.BuildEvent{
				Envelope: env("koji/primary", "buildsys.build.state.change"),
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
		out = append(out,
			build(avro.BuildStateChange, avro.StateBuilding, "", ""),
			build(avro.BuildStateChange, avro.StateComplete, avro.StateBuilding, ""),
			build(avro.BuildTag, avro.StateComplete, "", "f42-updates-candidate"),
			build(avro.BuildTag, avro.StateComplete, "", SigningRule.From),
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
	compose := &avro.ComposeEvent{
		Envelope: env("pungi", "pungi.compose.status.change"),
		Kind:     avro.ComposeDefinition, ComposeID: "Fedora-42-updates-testing-20261125.0", Release: "Fedora-42",
	}
	for _, p := range pkgs {
		compose.Contents = append(compose.Contents, avro.ComposeItem{SubjectType: "koji_build", SubjectID: p.name + "-" + p.version + "-" + p.release})
	}
	status := &avro.ComposeEvent{
		Envelope: env("pungi", "pungi.compose.status.change"),
		Kind:     avro.ComposeStatusChange, ComposeID: compose.ComposeID, Status: avro.ComposeFinished,
		Location: "https://kojipkgs.example.org/compose/updates/" + compose.ComposeID + "/compose", Release: "Fedora-42",
	}
	return append(out, compose, status)
}
