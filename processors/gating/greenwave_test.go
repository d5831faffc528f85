package gating

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
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
			len(resp.SatisfiedRequirements) != 3 || len(resp.UnsatisfiedRequirements) != 3 || len(*resp.ApplicablePolicies) != 4 {
			t.Errorf("got %s", mustJSON(t, resp))
		}
	})
}

// storedSubjects is a Getter over the subjects harnesses stored, by
// subject id.
type storedSubjects map[string]*harness

func (g storedSubjects) Get(_ string, key []byte) ([]byte, bool, error) {
	h, ok := g[string(key)]
	if !ok || h.stored == nil {
		return nil, false, nil
	}
	return h.stored, true, nil
}

// postDecision sends a decision request with a JSON content type to e's
// API over the subjects of g, and returns the status and the body.
func postDecision(t *testing.T, e *Engine, g Getter, body string) (int, string) {
	t.Helper()
	return postDecisionAs(t, e, g, "application/json", body)
}

func postDecisionAs(t *testing.T, e *Engine, g Getter, contentType, body string) (int, string) {
	t.Helper()
	mux := http.NewServeMux()
	NewAPI(e, g).Register(mux)
	req := httptest.NewRequest(http.MethodPost, "/api/v1.0/decision", strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

// TestOnDemandRules: a decision request with "rules" instead of a
// decision_context is answered as Greenwave answers it. The expected
// answers are Greenwave's functional tests
// (functional-tests/test_api_v1.py) where there is one, and otherwise
// what its code gives: make_decision (greenwave/decision.py) builds an
// OnDemandPolicy (greenwave/policies.py) from the request for each
// subject, evaluates those instead of the configured policies, with no
// decision context, and leaves applicable_policies out of the answer.
func TestOnDemandRules(t *testing.T) {
	const nvrRules = `"rules": [{"type": "PassingTestCaseRule", "test_case_name": "dist.abicheck"},
	  {"type": "PassingTestCaseRule", "test_case_name": "dist.rpmdeplint"},
	  {"type": "PassingTestCaseRule", "test_case_name": "dist.upgradepath"}]`
	// The first test failed but was waived, the others passed.
	waivedAndPassed := func(t *testing.T) *harness {
		h := newHarness(t, fedoraYAML, nil)
		h.apply(result("dist.abicheck", "FAILED", 1, rid("1")), waive("dist.abicheck", "fedora-31", true, 2, rid("9")),
			result("dist.rpmdeplint", "PASSED", 3, rid("2")), result("dist.upgradepath", "PASSED", 4, rid("3")))
		return h
	}

	t.Run("test_make_a_decision_on_demand_policy", func(t *testing.T) {
		h := waivedAndPassed(t)
		status, body := postDecision(t, h.e, storedSubjects{testNVR: h}, `{"id": "on_demand", "product_version": "fedora-31",
		  "subject_type": "koji_build", "subject_identifier": "`+testNVR+`", `+nvrRules+`}`)
		if status != http.StatusOK {
			t.Fatalf("%d %s", status, body)
		}
		jsonEqual(t, json.RawMessage(body), `{
		  "policies_satisfied": true,
		  "summary": "All required tests (3 total) have passed or been waived",
		  "satisfied_requirements": [
		    {"type": "test-result-failed-waived", "testcase": "dist.abicheck", "subject_type": "koji_build",
		     "subject_identifier": "`+testNVR+`", "result_id": 1, "waiver_id": 9, "scenario": null,
		     "system_architecture": null, "system_variant": null, "source": null},
		    {"type": "test-result-passed", "testcase": "dist.rpmdeplint", "subject_type": "koji_build",
		     "subject_identifier": "`+testNVR+`", "result_id": 2, "scenario": null,
		     "system_architecture": null, "system_variant": null, "source": null},
		    {"type": "test-result-passed", "testcase": "dist.upgradepath", "subject_type": "koji_build",
		     "subject_identifier": "`+testNVR+`", "result_id": 3, "scenario": null,
		     "system_architecture": null, "system_variant": null, "source": null}],
		  "unsatisfied_requirements": []
		}`)
	})

	t.Run("test_make_a_decision_with_verbose_flag_on_demand_policy", func(t *testing.T) {
		h := waivedAndPassed(t)
		status, body := postDecision(t, h.e, storedSubjects{testNVR: h}, `{"product_version": "fedora-31", "verbose": true,
		  "subject_type": "koji_build", "subject_identifier": "`+testNVR+`", `+nvrRules+`}`)
		var got struct {
			Results     []map[string]any `json:"results"`
			Waivers     []map[string]any `json:"waivers"`
			Satisfied   []map[string]any `json:"satisfied_requirements"`
			Unsatisfied []map[string]any `json:"unsatisfied_requirements"`
			Applicable  *[]string        `json:"applicable_policies"`
		}
		if err := json.Unmarshal([]byte(body), &got); status != http.StatusOK || err != nil {
			t.Fatalf("%d %s %v", status, body, err)
		}
		if len(got.Results) != 3 || got.Results[0]["id"] != 3.0 || len(got.Waivers) != 1 || got.Waivers[0]["id"] != 9.0 ||
			len(got.Satisfied) != 3 || len(got.Unsatisfied) != 0 || got.Applicable != nil {
			t.Errorf("got %s", body)
		}
	})

	t.Run("test_make_a_decision_on_passed_result_with_custom_scenario", func(t *testing.T) {
		h := newHarness(t, fedoraYAML, nil)
		h.apply(result("test.testcase1", "FAILED", 1, rid("1")), result("test.testcase1", "PASSED", 2, rid("2"), scenario("scenario1")))
		status, body := postDecision(t, h.e, storedSubjects{testNVR: h}, `{"product_version": "fedora-26",
		  "subject_type": "koji_build", "subject_identifier": "`+testNVR+`",
		  "rules": [{"type": "PassingTestCaseRule", "test_case_name": "test.testcase1", "scenario": "scenario1"}]}`)
		if status != http.StatusOK {
			t.Fatalf("%d %s", status, body)
		}
		jsonEqual(t, json.RawMessage(body), `{
		  "policies_satisfied": true,
		  "summary": "All required tests (1 total) have passed or been waived",
		  "satisfied_requirements": [
		    {"type": "test-result-passed", "testcase": "test.testcase1", "subject_type": "koji_build",
		     "subject_identifier": "`+testNVR+`", "result_id": 2, "scenario": "scenario1",
		     "system_architecture": null, "system_variant": null, "source": null}],
		  "unsatisfied_requirements": []
		}`)
	})

	t.Run("test_make_a_decision_all_scenarios_waived", func(t *testing.T) {
		h := newHarness(t, fedoraYAML, nil)
		h.apply(result("test1", "FAILED", 1, rid("1"), scenario("scenario1")), result("test1", "FAILED", 2, rid("2"), scenario("scenario2")),
			waive("test1", "fedora-26", true, 3, rid("5")))
		status, body := postDecision(t, h.e, storedSubjects{testNVR: h}, `{"product_version": "fedora-26",
		  "subject_type": "koji_build", "subject_identifier": "`+testNVR+`",
		  "rules": [{"type": "PassingTestCaseRule", "test_case_name": "test1", "scenario": "scenario1"},
		            {"type": "PassingTestCaseRule", "test_case_name": "test1", "scenario": "scenario2"}]}`)
		if status != http.StatusOK {
			t.Fatalf("%d %s", status, body)
		}
		jsonEqual(t, json.RawMessage(body), `{
		  "policies_satisfied": true,
		  "summary": "All required tests (2 total) have passed or been waived",
		  "satisfied_requirements": [
		    {"type": "test-result-failed-waived", "testcase": "test1", "subject_type": "koji_build",
		     "subject_identifier": "`+testNVR+`", "result_id": 1, "waiver_id": 5, "scenario": "scenario1",
		     "system_architecture": null, "system_variant": null, "source": null},
		    {"type": "test-result-failed-waived", "testcase": "test1", "subject_type": "koji_build",
		     "subject_identifier": "`+testNVR+`", "result_id": 2, "waiver_id": 5, "scenario": "scenario2",
		     "system_architecture": null, "system_variant": null, "source": null}],
		  "unsatisfied_requirements": []
		}`)
	})

	t.Run("test_make_a_decision_on_redhat_cont_image (a container image's results include its build's)", func(t *testing.T) {
		h := newHarness(t, fedoraYAML, nil)
		h.apply(result("test.testcase1", "FAILED", 1, rid("1")),
			result("test.testcase2", "FAILED", 2, rid("2"), typ(SubjectContainerImage)))
		status, body := postDecision(t, h.e, storedSubjects{testNVR: h}, `{"product_version": "fedora-26",
		  "subject_type": "redhat-container-image", "subject_identifier": "`+testNVR+`",
		  "rules": [{"type": "PassingTestCaseRule", "test_case_name": "test.testcase1"},
		            {"type": "PassingTestCaseRule", "test_case_name": "test.testcase2"}]}`)
		if status != http.StatusOK {
			t.Fatalf("%d %s", status, body)
		}
		item := `"item": {"item": "` + testNVR + `", "type": "redhat-container-image"}, "subject_type": "redhat-container-image",
		  "subject_identifier": "` + testNVR + `", "scenario": null, "system_architecture": null, "system_variant": null, "source": null`
		jsonEqual(t, json.RawMessage(body), `{
		  "policies_satisfied": false,
		  "summary": "Of 2 required tests, 2 tests failed",
		  "satisfied_requirements": [],
		  "unsatisfied_requirements": [
		    {"type": "test-result-failed", "testcase": "test.testcase1", "result_id": 1, `+item+`},
		    {"type": "test-result-failed", "testcase": "test.testcase2", "result_id": 2, `+item+`}]
		}`)
	})

	// Reasoned from make_decision: one OnDemandPolicy per subject, each
	// applying to every subject. An excluded package stops each of them
	// before its rules (Policy.check), so it is excluded once per subject
	// of the request; a rule counts once per subject (RuleContext).
	t.Run("excluded_packages with two subjects", func(t *testing.T) {
		h := newHarness(t, fedoraYAML, nil)
		status, body := postDecision(t, h.e, storedSubjects{}, `{"product_version": "fedora-26",
		  "subject": [{"type": "koji_build", "item": "firefox-1-1.fc26"}, {"type": "koji_build", "item": "bash-1-1.fc26"}],
		  "excluded_packages": ["firefox"],
		  "rules": [{"type": "PassingTestCaseRule", "test_case_name": "tier0"}]}`)
		if status != http.StatusOK {
			t.Fatalf("%d %s", status, body)
		}
		excluded := `{"type": "excluded", "subject_identifier": "firefox-1-1.fc26", "policy": "on-demand-policy", "source": null}`
		jsonEqual(t, json.RawMessage(body), `{
		  "policies_satisfied": false,
		  "summary": "Of 1 required test, 1 result missing",
		  "satisfied_requirements": [`+excluded+`, `+excluded+`],
		  "unsatisfied_requirements": [
		    {"type": "test-result-missing", "testcase": "tier0", "subject_type": "koji_build",
		     "subject_identifier": "bash-1-1.fc26", "scenario": null, "source": null,
		     "item": {"type": "koji_build", "item": "bash-1-1.fc26"}}]
		}`)
	})

	// Reasoned from OnDemandPolicy.matches_sub_policy: a RemoteRule in
	// on-demand rules takes the package's policies that match the
	// request's product version, whatever their decision contexts (the
	// request has none), where a server policy takes those sharing its
	// decision context.
	t.Run("RemoteRule takes the gating.yaml policies of the product version", func(t *testing.T) {
		const url = "https://src.fedoraproject.org/rpms/nethack/raw/c3c47a08/f/gating.yaml"
		h := newHarness(t, fedoraYAML, nil)
		h.apply(remote("gating.yaml", `--- !Policy
product_versions: [fedora-*]
decision_context: some_context_of_its_own
rules:
  - !PassingTestCaseRule {test_case_name: dist.upgradepath}
--- !Policy
product_versions: [rhel-*]
decision_context: some_context_of_its_own
rules:
  - !PassingTestCaseRule {test_case_name: rhel.only}
`, 1, func(r any) { r.(*avro.RemoteRuleFile).SourceURL = url }))
		status, body := postDecision(t, h.e, storedSubjects{testNVR: h}, `{"product_version": "fedora-26",
		  "subject_type": "koji_build", "subject_identifier": "`+testNVR+`", "rules": [{"type": "RemoteRule"}]}`)
		if status != http.StatusOK {
			t.Fatalf("%d %s", status, body)
		}
		jsonEqual(t, json.RawMessage(body), `{
		  "policies_satisfied": false,
		  "summary": "Of 1 required test, 1 result missing",
		  "satisfied_requirements": [
		    {"type": "fetched-gating-yaml", "testcase": "fetched-gating-yaml", "subject_type": "koji_build",
		     "subject_identifier": "`+testNVR+`", "source": "`+url+`"}],
		  "unsatisfied_requirements": [
		    {"type": "test-result-missing", "testcase": "dist.upgradepath", "subject_type": "koji_build",
		     "subject_identifier": "`+testNVR+`", "scenario": null, "source": "`+url+`",
		     "item": {"type": "koji_build", "item": "`+testNVR+`"}}]
		}`)
	})

	// A product_versions attribute in the request replaces the on-demand
	// policy's (create_from_json updates its defaults with the request);
	// when it does not match, no policy applies: Greenwave's 404, with no
	// decision context to name.
	t.Run("product_versions that do not match", func(t *testing.T) {
		h := newHarness(t, fedoraYAML, nil)
		status, body := postDecision(t, h.e, storedSubjects{}, `{"product_version": "fedora-26", "product_versions": ["rhel-*"],
		  "subject_type": "koji_build", "subject_identifier": "`+testNVR+`",
		  "rules": [{"type": "PassingTestCaseRule", "test_case_name": "tier0"}]}`)
		jsonEqual(t, json.RawMessage(body), `{"message": "Found no applicable policies for koji_build subjects at gating point(s)  in fedora-26"}`)
		if status != http.StatusNotFound {
			t.Errorf("status %d", status)
		}
	})
}

// TestDecisionRequestErrors: a decision request Greenwave refuses gets
// Greenwave's status and message ({"message": ...}); the messages are
// those of make_decision (greenwave/decision.py), OnDemandPolicy and
// SafeYAMLObject.from_value (greenwave/safe_yaml.py), and Flask's for a
// content type that is not JSON. Greenwave's functional tests
// (functional-tests/test_api_v1.py) check the ones named after them.
func TestDecisionRequestErrors(t *testing.T) {
	h := newHarness(t, fedoraYAML, nil)
	const subject = `"subject_type": "koji_build", "subject_identifier": "` + testNVR + `"`
	const rule = `{"type": "PassingTestCaseRule", "test_case_name": "dist.abicheck"}`
	for _, tc := range []struct {
		name        string
		contentType string
		body        string
		status      int
		message     string
	}{
		{"test_415_for_missing_request_content_type", "application/json", `{}`, 415, "No JSON payload in request"},
		{"a form", "application/x-www-form-urlencoded", `{"decision_context": "x"}`, 415,
			"Did not attempt to load JSON data because the request Content-Type was not 'application/json'."},
		{"no content type", "", `{"decision_context": "x"}`, 415,
			"Did not attempt to load JSON data because the request Content-Type was not 'application/json'."},
		{"missing product version", "application/json", `{"decision_context": "bodhi_update_push_stable", ` + subject + `}`, 400,
			"Missing required product version"},
		{"neither context nor rules", "application/json", `{"product_version": "fedora-26", ` + subject + `}`, 400,
			"Either decision_context or rules is required."},
		{"empty rules", "application/json", `{"product_version": "fedora-26", "rules": [], ` + subject + `}`, 400,
			"Either decision_context or rules is required."},
		{"test_cannot_make_decision_with_both_decision_context_and_user_policies", "application/json",
			`{"product_version": "fedora-26", "decision_context": "koji_build_push_missing_results", "rules": [` + rule + `], ` + subject + `}`, 400,
			"Cannot have both decision_context and rules"},
		{"test_cannot_make_decision_without_required_rule_type", "application/json",
			`{"product_version": "fedora-26", "rules": [{"typo": "PassingTestCaseRule", "test_case_name": "dist.abicheck"}, ` + rule + `], ` + subject + `}`, 400,
			"Failed to parse on demand policy: Attribute 'rules': Key 'type' is required for each list item"},
		{"test_cannot_make_decision_without_required_rule_testcase_name", "application/json",
			`{"product_version": "fedora-26", "rules": [` + rule + `, {"type": "PassingTestCaseRule"}], ` + subject + `}`, 400,
			"Failed to parse on demand policy: Attribute 'rules': Attribute 'test_case_name' is required"},
		{"unknown rule type", "application/json",
			`{"product_version": "fedora-26", "rules": [{"type": "PassingTestCaseRul", "test_case_name": "x"}], ` + subject + `}`, 400,
			"Failed to parse on demand policy: Attribute 'rules': Key 'type' for an list item is not valid: PassingTestCaseRul"},
		{"obsolete rule", "application/json",
			`{"product_version": "fedora-26", "rules": [{"type": "PackageSpecificBuild"}], ` + subject + `}`, 400,
			`Failed to parse on demand policy: Attribute 'rules': !PackageSpecificBuild is obsolete. Please use the "packages" allowlist instead.`},
		{"rules not a list", "application/json",
			`{"product_version": "fedora-26", "rules": "dist.abicheck", ` + subject + `}`, 400,
			"Failed to parse on demand policy: Attribute 'rules': Expected list of Rule objects"},
		{"bad required", "application/json",
			`{"product_version": "fedora-26", "rules": [{"type": "RemoteRule", "required": "yes"}], ` + subject + `}`, 400,
			"Failed to parse on demand policy: Attribute 'rules': Attribute 'required': Expected a boolean value, got: yes"},
		{"bad packages", "application/json",
			`{"product_version": "fedora-26", "rules": [` + rule + `], "packages": [1], ` + subject + `}`, 400,
			"Failed to parse on demand policy: Attribute 'packages': Expected list of str objects"},
		{"verbose not a bool", "application/json",
			`{"product_version": "fedora-26", "decision_context": "bodhi_update_push_stable", "verbose": "yes", ` + subject + `}`, 400,
			"Invalid verbose flag, must be a bool"},
		{"verbose null", "application/json",
			`{"product_version": "fedora-26", "decision_context": "bodhi_update_push_stable", "verbose": null, ` + subject + `}`, 400,
			"Invalid verbose flag, must be a bool"},
		{"bad when", "application/json",
			`{"product_version": "fedora-26", "decision_context": "bodhi_update_push_stable", "when": "yesterday", ` + subject + `}`, 400,
			`Invalid "when" parameter, must be in ISO8601 format`},
		{"no subject type", "application/json",
			`{"product_version": "fedora-26", "decision_context": "bodhi_update_push_stable", "subject_identifier": "x"}`, 400,
			`Missing required "subject_type" parameter`},
		{"no subject identifier", "application/json",
			`{"product_version": "fedora-26", "decision_context": "bodhi_update_push_stable", "subject_type": "koji_build"}`, 400,
			`Missing required "subject_identifier" parameter`},
		{"subject not a list", "application/json",
			`{"product_version": "fedora-26", "decision_context": "bodhi_update_push_stable", "subject": {"item": "x"}}`, 400,
			"Invalid subject, must be a list of dicts"},
		{"subject without identifier", "application/json",
			`{"product_version": "fedora-26", "decision_context": "bodhi_update_push_stable", "subject": [{"type": "koji_build"}]}`, 400,
			"Could not detect subject_identifier"},
		{"a bad subject before the rules are parsed", "application/json",
			`{"product_version": "fedora-26", "rules": [{"type": "x"}], "subject": [{"type": "koji_build"}]}`, 400,
			"Could not detect subject_identifier"},
		{"not an object", "application/json", `["x"]`, 400, "Invalid JSON: the body must be a JSON object"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := postDecisionAs(t, h.e, storedSubjects{}, tc.contentType, tc.body)
			var got map[string]any
			if err := json.Unmarshal([]byte(body), &got); err != nil {
				t.Fatalf("%d %q: %v", status, body, err)
			}
			if status != tc.status || got["message"] != tc.message || len(got) != 1 {
				t.Errorf("got %d %s\nwant %d {\"message\": %q}", status, body, tc.status, tc.message)
			}
		})
	}
	// The subject list may name subjects by their types' item keys.
	status, body := postDecision(t, h.e, storedSubjects{}, `{"product_version": "fedora-rawhide",
	  "decision_context": "rawhide_compose_sync_to_mirrors", "subject": [{"productmd.compose.id": "Fedora-Rawhide-20240101.n.0"}]}`)
	if status != http.StatusOK || !strings.Contains(body, `"Fedora-Rawhide-20240101.n.0"`) {
		t.Errorf("compose by item key: %d %s", status, body)
	}
	// A JSON content type with parameters, or application/*+json, is JSON.
	for _, ct := range []string{"application/json; charset=utf-8", "application/vnd.greenwave+json"} {
		if status, body := postDecisionAs(t, h.e, storedSubjects{}, ct, `{"product_version": "fedora-26",
		  "decision_context": "bodhi_update_push_stable", `+subject+`}`); status != http.StatusOK {
			t.Errorf("%s: %d %s", ct, status, body)
		}
	}
}

// TestPoliciesEndpoint: GET /api/v1.0/policies has the shape of
// Greenwave's (Policy.to_json over its safe_yaml_attributes), which its
// functional test test_inspect_policies reads: decision_context and
// subject_type as written, the list forms otherwise, rules as their
// to_json has them.
func TestPoliciesEndpoint(t *testing.T) {
	h := newHarness(t, `
--- !Policy
id: "taskotron_release_critical_tasks"
product_versions: [fedora-26]
decision_context: bodhi_update_push_stable
subject_type: koji_build
rules:
  - !PassingTestCaseRule {test_case_name: dist.rpmdeplint}
  - !PassingTestCaseRule {test_case_name: dist.upgradepath, scenario: s1}
--- !Policy
id: "with_lists"
product_versions: [fedora-*]
decision_contexts: [a, b]
subject_types: [koji_build, bodhi_update]
excluded_packages: [firefox]
rules:
  - !RemoteRule {}
`, nil)
	mux := http.NewServeMux()
	NewAPI(h.e, storedSubjects{}).Register(mux)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1.0/policies", nil))
	var got map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || rec.Code != http.StatusOK {
		t.Fatalf("%d %s %v", rec.Code, rec.Body, err)
	}
	delete(got, "policy_version")
	jsonEqual(t, got, `{"policies": [
	  {"id": "taskotron_release_critical_tasks", "product_versions": ["fedora-26"],
	   "decision_context": "bodhi_update_push_stable", "decision_contexts": [],
	   "subject_type": "koji_build", "subject_types": [],
	   "rules": [{"rule": "PassingTestCaseRule", "test_case_name": "dist.rpmdeplint", "scenario": null},
	             {"rule": "PassingTestCaseRule", "test_case_name": "dist.upgradepath", "scenario": "s1"}],
	   "packages": [], "excluded_packages": [], "relevance_key": null, "relevance_value": null},
	  {"id": "with_lists", "product_versions": ["fedora-*"],
	   "decision_context": null, "decision_contexts": ["a", "b"],
	   "subject_type": null, "subject_types": ["koji_build", "bodhi_update"],
	   "rules": [{"rule": "RemoteRule", "required": false, "sources": []}],
	   "packages": [], "excluded_packages": ["firefox"], "relevance_key": null, "relevance_value": null}
	]}`)
}

// TestIgnoreIDs: ignore_result and ignore_waiver take ResultsDB's and
// WaiverDB's numeric ids, and the string ids of results known by their
// event id.
func TestIgnoreIDs(t *testing.T) {
	h := newHarness(t, fedoraYAML, nil)
	h.apply(result("dist.abicheck", "FAILED", 1, rid("7")), result("dist.abicheck", "PASSED", 2, rid("sha256:abc")))
	ask := func(ignore string) string {
		status, body := postDecision(t, h.e, storedSubjects{testNVR: h}, `{"product_version": "fedora-26",
		  "subject_type": "koji_build", "subject_identifier": "`+testNVR+`", "ignore_result": `+ignore+`,
		  "rules": [{"type": "PassingTestCaseRule", "test_case_name": "dist.abicheck"}]}`)
		if status != http.StatusOK {
			t.Fatalf("ignore_result %s: %d %s", ignore, status, body)
		}
		var d struct {
			Summary string `json:"summary"`
		}
		_ = json.Unmarshal([]byte(body), &d)
		return d.Summary
	}
	// Ignoring the latest result makes none the latest (ResultsRetriever
	// drops ignored ids from ResultsDB's latest results).
	for ignore, want := range map[string]string{
		`[]`:                "All required tests (1 total) have passed or been waived",
		`["sha256:abc"]`:    "Of 1 required test, 1 result missing",
		`[7, "sha256:abc"]`: "Of 1 required test, 1 result missing",
	} {
		if got := ask(ignore); got != want {
			t.Errorf("ignore_result %s: %q, want %q", ignore, got, want)
		}
	}
	status, body := postDecision(t, h.e, storedSubjects{}, `{"product_version": "fedora-26", "decision_context": "x",
	  "subject_type": "koji_build", "subject_identifier": "x", "ignore_result": [{"id": 7}]}`)
	if status != http.StatusBadRequest || !strings.Contains(body, "Invalid ignore_result, must be a list of ids") {
		t.Errorf("%d %s", status, body)
	}
}
