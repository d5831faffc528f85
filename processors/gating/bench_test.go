package gating

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/factory2/factory2/avro"
)

// benchSetup builds a typical Fedora build subject: a completed build
// with 12 RPMs, tagged and signed with the build key, 8 test results
// (2 test cases still running), a waiver, and a package gating.yaml (the
// real gcc one) behind a RemoteRule, gated in 3 decision contexts.
func benchSetup(b *testing.B) (*Engine, []byte) {
	b.Helper()
	gcc, err := os.ReadFile(filepath.Join("testdata", "gating-yaml", "gcc_gating.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	ps := mustPolicies(b, `
--- !Policy
id: "bodhi_update_push_testing"
product_versions: [fedora-*]
decision_contexts: [bodhi_update_push_testing, bodhi_update_push_stable, bodhi_update_push_stable_critpath]
subject_type: koji_build
rules:
  - !RemoteRule {}
--- !Policy
id: "critpath"
product_versions: [fedora-*]
decision_context: bodhi_update_push_stable_critpath
subject_type: koji_build
rules:
  - !PassingTestCaseRule {test_case_name: update.install_default_update_netinst}
  - !PassingTestCaseRule {test_case_name: update.base_selinux}
`)
	e, err := NewEngine(ps, signingRules)
	if err != nil {
		b.Fatal(err)
	}
	on := subj(f41NVR)
	var names []string
	for i := 0; i < 12; i++ {
		names = append(names, fmt.Sprintf("bash-sub%d-5.2.26-3.fc41.x86_64.rpm", i))
	}
	recs := []avro.Record{
		build(avro.StateComplete, 0, on, artifacts(names...), commit("c1")),
		tag("f41-updates-candidate", 1, on),
		tag("f41-signing-pending", 2, on),
		remote("gating.yaml", string(gcc), 3, on, commit("c1")),
		waive("baseos-qe.koji-build.scratch-build.validation", "fedora-41", true, 4, on),
	}
	for _, n := range names {
		recs = append(recs, sign(buildKey, 5, on, artifacts(n)))
	}
	for i, tc := range []string{"fedora-ci.koji-build.tier0.functional", "update.install_default_update_netinst", "update.base_selinux",
		"fedora-ci.koji-build.rpminspect", "fedora-ci.koji-build.installability", "dist.abicheck"} {
		recs = append(recs, result(tc, "PASSED", 10+i, on, rid(fmt.Sprint(1000+i))))
	}
	recs = append(recs, result("fedora-ci.koji-build.rpmlint", "RUNNING", 20, on), result("x.y", "QUEUED", 21, on))
	var s Subject
	for i, r := range recs {
		r.Env().ID = fmt.Sprint("setup-", i)
		if _, err := s.Apply(r); err != nil {
			b.Fatal(err)
		}
		e.Gating(&s, r.Env())
		e.Autosign(&s, r.Env())
	}
	stored, err := s.MarshalBinary()
	if err != nil {
		b.Fatal(err)
	}
	return e, stored
}

// BenchmarkProcess measures what the processor does per event: decode
// the stored subject, apply the event, compute gating and autosign
// decisions, encode the subject. Sub-benchmarks are kinds of events:
//
//   - result-flip: a result that flips a decision every time (worst
//     case: three gating decisions and a sign or revoke emitted);
//   - result-same: a new result with the outcome of the previous one
//     (decisions evaluated, nothing emitted);
//   - sign: a signature (the commonest event: one per RPM; gating is
//     skipped, its inputs unchanged);
//   - tag: a tag event.
func BenchmarkProcess(b *testing.B) {
	e, stored := benchSetup(b)
	on := subj(f41NVR)
	mk := func(n int, f func(i int) avro.Record) []avro.Record {
		out := make([]avro.Record, n)
		for i := range out {
			out[i] = f(i)
			out[i].Env().ID = fmt.Sprint("bench-", i)
		}
		return out
	}
	for _, bc := range []struct {
		name string
		recs []avro.Record
	}{
		{"result-flip", mk(64, func(i int) avro.Record {
			return result("fedora-ci.koji-build.tier0.functional", []string{"FAILED", "PASSED"}[i%2], 100+i, on, rid(fmt.Sprint(5000+i)))
		})},
		{"result-same", mk(64, func(i int) avro.Record {
			return result("fedora-ci.koji-build.tier0.functional", "PASSED", 100+i, on, rid(fmt.Sprint(5000+i)))
		})},
		{"sign", mk(64, func(i int) avro.Record {
			return sign(buildKey, 100+i, on, artifacts(fmt.Sprintf("bash-sub%d-5.2.26-3.fc41.x86_64.rpm", i%12)))
		})},
		{"tag", mk(64, func(i int) avro.Record { return tag("f41-updates-testing", 100+i, on) })},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			emitted, i := 0, 0
			for b.Loop() {
				var s Subject
				if err := s.UnmarshalBinary(stored); err != nil {
					b.Fatal(err)
				}
				r := bc.recs[i%len(bc.recs)]
				i++
				if _, err := s.Apply(r); err != nil {
					b.Fatal(err)
				}
				emitted += len(e.Gating(&s, r.Env()))
				emitted += len(e.Autosign(&s, r.Env()))
				if _, err := s.MarshalBinary(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(emitted)/float64(b.N), "records/op")
			b.ReportMetric(float64(len(stored)), "state-bytes")
		})
	}
}

// BenchmarkSubjectCodec measures the state (de)serialization alone.
func BenchmarkSubjectCodec(b *testing.B) {
	_, stored := benchSetup(b)
	b.ReportAllocs()
	b.SetBytes(int64(len(stored)))
	for b.Loop() {
		var s Subject
		if err := s.UnmarshalBinary(stored); err != nil {
			b.Fatal(err)
		}
		if _, err := s.MarshalBinary(); err != nil {
			b.Fatal(err)
		}
	}
}
