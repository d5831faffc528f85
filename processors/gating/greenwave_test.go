package gating

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"github.com/factory2/factory2/avro"
)

func jsonEqual(t *testing.T, got any, want string) {
	t.Helper()
	b, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	var g, w any
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad want JSON: %v", err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("got\n%s\nwant\n%s", mustJSON(t, g), mustJSON(t, w))
	}
}

// TestGreenwaveResponse checks the response shape against Greenwave's
// functional tests (functional-tests/test_api_v1.py).
func TestGreenwaveResponse(t *testing.T) {
	q := Query{DecisionContexts: []string{"bodhi_update_push_stable"}, ProductVersion: "fedora-26"}

	t.Run("test_make_a_decision_on_failed_result", func(t *testing.T) {
		h := newHarness(t, fedoraYAML, nil)
		h.apply(result("dist.abicheck", "FAILED", 1, rid("101")))
		resp, err := GreenwaveResponse(false, h.eval(q))
		if err != nil {
			t.Fatal(err)
		}
		jsonEqual(t, resp, `{
		  "policies_satisfied": false,
		  "summary": "Of 3 required tests, 2 results missing, 1 test failed",
		  "applicable_policies": ["taskotron_release_critical_tasks_with_blocklist", "taskotron_release_critical_tasks"],
		  "satisfied_requirements": [],
		  "unsatisfied_requirements": [
		    {"item": {"item": "nethack-1.2.3-1.el9000", "type": "koji_build"},
		     "subject_type": "koji_build", "subject_identifier": "nethack-1.2.3-1.el9000",
		     "result_id": 101, "testcase": "dist.abicheck", "scenario": null,
		     "system_architecture": null, "system_variant": null, "source": null,
		     "type": "test-result-failed"},
		    {"item": {"item": "nethack-1.2.3-1.el9000", "type": "koji_build"},
		     "subject_type": "koji_build", "subject_identifier": "nethack-1.2.3-1.el9000",
		     "testcase": "dist.rpmdeplint", "type": "test-result-missing", "scenario": null, "source": null},
		    {"item": {"item": "nethack-1.2.3-1.el9000", "type": "koji_build"},
		     "subject_type": "koji_build", "subject_identifier": "nethack-1.2.3-1.el9000",
		     "testcase": "dist.upgradepath", "type": "test-result-missing", "scenario": null, "source": null}
		  ]
		}`)
	})

	t.Run("test_make_a_decision_with_verbose_flag_all_results_returned", func(t *testing.T) {
		h := newHarness(t, fedoraYAML, nil)
		h.apply(result("dist.rpmdeplint", "FAILED", 1, rid("7")), waive("dist.rpmdeplint", "fedora-30", true, 2, rid("9")))
		vq := Query{DecisionContexts: []string{"koji_build_push_missing_results"}, ProductVersion: "fedora-30", Verbose: true}
		resp, err := GreenwaveResponse(true, h.eval(vq))
		if err != nil {
			t.Fatal(err)
		}
		jsonEqual(t, resp, `{
		  "policies_satisfied": true,
		  "summary": "All required tests (1 total) have passed or been waived",
		  "applicable_policies": ["koji_build_push_missing_results"],
		  "satisfied_requirements": [
		    {"subject_type": "koji_build", "subject_identifier": "nethack-1.2.3-1.el9000",
		     "result_id": 7, "waiver_id": 9, "testcase": "dist.rpmdeplint", "scenario": null,
		     "system_architecture": null, "system_variant": null, "source": null,
		     "type": "test-result-failed-waived"}
		  ],
		  "unsatisfied_requirements": [],
		  "results": [
		    {"id": 7, "outcome": "FAILED", "testcase": {"name": "dist.rpmdeplint"},
		     "submit_time": "2024-01-01T00:01:00.000000", "ref_url": null,
		     "data": {"item": ["nethack-1.2.3-1.el9000"], "type": ["koji_build"]}}
		  ],
		  "waivers": [
		    {"id": 9, "subject_type": "koji_build", "subject_identifier": "nethack-1.2.3-1.el9000",
		     "testcase": "dist.rpmdeplint", "scenario": null, "product_version": "fedora-30",
		     "waived": true, "username": "bob", "proxied_by": null, "comment": "This is fine",
		     "timestamp": "2024-01-01T00:02:00.000000"}
		  ]
		}`)
	})

	t.Run("test_make_a_decision_with_verbose_flag (no waivers is [])", func(t *testing.T) {
		h := newHarness(t, fedoraYAML, nil)
		h.apply(result("dist.rpmdeplint", "PASSED", 1, rid("7")))
		vq := Query{DecisionContexts: []string{"koji_build_push_missing_results"}, ProductVersion: "fedora-30", Verbose: true}
		resp, err := GreenwaveResponse(true, h.eval(vq))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(resp)
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		if w, ok := m["waivers"].([]any); !ok || len(w) != 0 {
			t.Errorf("waivers %v", m["waivers"])
		}
		resp, _ = GreenwaveResponse(false, h.eval(vq))
		b, _ = json.Marshal(resp)
		m = nil
		_ = json.Unmarshal(b, &m)
		if _, ok := m["results"]; ok {
			t.Error("results in a non-verbose response")
		}
	})

	t.Run("test_remote_rule_policy (remote requirements carry the file URL as source)", func(t *testing.T) {
		const url = "https://src.fedoraproject.org/rpms/nethack/raw/c3c47a08/f/gating.yaml"
		h := newHarness(t, remoteRulePolicy, nil)
		h.apply(remote("gating.yaml", remoteUpgradepath, 1, func(r any) { r.(*avro.RemoteRuleFile).SourceURL = url }))
		resp, err := GreenwaveResponse(false, h.eval(Query{DecisionContexts: []string{"bodhi_update_push_stable_with_remoterule"}, ProductVersion: "fedora-26"}))
		if err != nil {
			t.Fatal(err)
		}
		jsonEqual(t, resp, `{
		  "policies_satisfied": false,
		  "summary": "Of 1 required test, 1 result missing",
		  "applicable_policies": ["taskotron_release_critical_tasks_with_remoterule"],
		  "satisfied_requirements": [
		    {"type": "fetched-gating-yaml", "testcase": "fetched-gating-yaml", "subject_type": "koji_build",
		     "subject_identifier": "nethack-1.2.3-1.el9000", "source": "`+url+`"}],
		  "unsatisfied_requirements": [
		    {"type": "test-result-missing", "testcase": "dist.upgradepath", "subject_type": "koji_build",
		     "subject_identifier": "nethack-1.2.3-1.el9000", "scenario": null, "source": "`+url+`",
		     "item": {"type": "koji_build", "item": "nethack-1.2.3-1.el9000"}}]
		}`)
	})

	t.Run("test_make_decision_with_missing_required_gating_yaml", func(t *testing.T) {
		h := newHarness(t, `
--- !Policy
id: test
product_versions: [fedora-rawhide]
decision_context: test
rules:
  - !RemoteRule {required: true}
`, nil)
		h.apply(remoteMissing("gating.yaml", 1, commit("abc")))
		resp, err := GreenwaveResponse(false, h.eval(Query{DecisionContexts: []string{"test"}, ProductVersion: "fedora-rawhide"}))
		if err != nil {
			t.Fatal(err)
		}
		jsonEqual(t, resp, `{
		  "policies_satisfied": false,
		  "summary": "1 error due to missing remote rule file",
		  "applicable_policies": ["test"],
		  "satisfied_requirements": [],
		  "unsatisfied_requirements": [
		    {"type": "missing-gating-yaml", "testcase": "missing-gating-yaml", "subject_type": "koji_build",
		     "subject_identifier": "nethack-1.2.3-1.el9000", "scenario": null, "sources": ["gating.yaml@abc"]}]
		}`)
	})

	t.Run("test_make_decision_no_applicable_policies", func(t *testing.T) {
		h := newHarness(t, testPoliciesYAML, nil)
		_, err := GreenwaveResponse(false, h.eval(Query{DecisionContexts: []string{"test_policies_2"}, ProductVersion: "fedora-rawhide"}))
		var npe *NoPoliciesError
		if !errors.As(err, &npe) || err.Error() !=
			"Found no applicable policies for koji_build subjects at gating point(s) test_policies_2 in fedora-rawhide" {
			t.Errorf("got %v", err)
		}
	})

	t.Run("test_bodhi_nonexistent_bodhi_update_policy (ignore_missing_policy)", func(t *testing.T) {
		h := newHarness(t, fedoraYAML, nil)
		resp, err := GreenwaveResponse(false, h.eval(Query{SubjectType: "bodhi_update", DecisionContexts: []string{"bodhi_update_push_stable"}, ProductVersion: "fedora-26"}))
		if err != nil {
			t.Fatal(err)
		}
		jsonEqual(t, resp, `{"policies_satisfied": true, "summary": "No tests are required",
		  "applicable_policies": [], "satisfied_requirements": [], "unsatisfied_requirements": []}`)
	})

	t.Run("test_make_a_decision_with_verbose_flag_and_multiple_nvrs_with_results", func(t *testing.T) {
		h1 := newHarness(t, fedoraYAML, nil)
		h1.apply(taskotron("PASSED", 1)...)
		h2 := newHarness(t, fedoraYAML, nil)
		other := "other-1.0-1.fc26"
		h2.apply(result("dist.abicheck", "FAILED", 1, subj(other)))
		s2 := h2.subject()
		resp, err := GreenwaveResponse(true, h1.eval(q), h2.e.Evaluate(s2, q))
		if err != nil {
			t.Fatal(err)
		}
		if resp.PoliciesSatisfied || resp.Summary != "Of 6 required tests, 2 results missing, 1 test failed" ||
			len(resp.SatisfiedRequirements) != 3 || len(resp.UnsatisfiedRequirements) != 3 || len(resp.ApplicablePolicies) != 4 {
			t.Errorf("got %s", mustJSON(t, resp))
		}
	})
}
