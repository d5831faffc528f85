package gating

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/factory2/factory2/avro"
)

// Policies from Greenwave's conf/policies/fedora.yaml and redhat.yaml, which
// its functional tests (functional-tests/test_api_v1.py) run against.
const fedoraYAML = `
--- !Policy
id: "taskotron_release_critical_tasks_with_blocklist"
product_versions:
  - fedora-26
decision_context: bodhi_update_push_stable
subject_type: koji_build
excluded_packages:
  - firefox
  - module-build*
rules:
  - !PassingTestCaseRule {test_case_name: dist.abicheck}
--- !Policy
id: "taskotron_release_critical_tasks"
product_versions:
  - fedora-26
decision_context: bodhi_update_push_stable
subject_type: koji_build
rules:
  - !PassingTestCaseRule {test_case_name: dist.rpmdeplint}
  - !PassingTestCaseRule {test_case_name: dist.upgradepath}
--- !Policy
id: "openqa_important_stuff_for_rawhide"
product_versions:
  - fedora-rawhide
decision_context: rawhide_compose_sync_to_mirrors
subject_type: compose
rules:
  - !PassingTestCaseRule {test_case_name: compose.install_no_user, scenario: scenario1}
  - !PassingTestCaseRule {test_case_name: compose.install_no_user, scenario: scenario2}
--- !Policy
id: "osci_compose"
product_versions:
- rhel-something
decision_context: osci_compose_gate
subject_type: koji_build
excluded_packages:
- module-build*
packages:
- avahi
- module-build-service
rules:
- !PassingTestCaseRule {test_case_name: osci.brew-build.tier0.functional}
--- !Policy
id: "rtt_compose"
product_versions:
  - rhel-something
decision_context: rtt_compose_gate
subject_type: compose
rules:
  - !PassingTestCaseRule {test_case_name: rtt.acceptance.validation}
--- !Policy
id: "compose-test-scenario"
product_versions:
  - fedora-29
decision_context: compose_test_scenario
subject_type: compose
rules:
  - !PassingTestCaseRule {test_case_name: testcase_name}
--- !Policy
id: "koji_build_push_missing_results"
product_versions:
- fedora-30
decision_context: koji_build_push_missing_results
subject_type: koji_build
rules:
  - !PassingTestCaseRule {test_case_name: dist.rpmdeplint}
`

// The default policy of greenwave/tests/test_api_v1.py.
const testPoliciesYAML = `
--- !Policy
id: "test_policy"
product_versions:
  - fedora-rawhide
decision_context: test_policies
subject_type: koji_build
rules:
  - !PassingTestCaseRule {test_case_name: sometest}
`

const remoteRulePolicy = `
--- !Policy
id: "taskotron_release_critical_tasks_with_remoterule"
product_versions:
  - fedora-26
decision_context: bodhi_update_push_stable_with_remoterule
subject_type: koji_build
rules:
  - !RemoteRule {}
`

const remoteUpgradepath = `
--- !Policy
id: "some-policy-from-a-random-packager"
product_versions:
  - fedora-26
decision_context: bodhi_update_push_stable_with_remoterule
rules:
- !PassingTestCaseRule {test_case_name: dist.upgradepath}
`

type step struct {
	events []avro.Record
	// query adjusts the case's query (ignore ids, when).
	query      func(q *Query)
	satisfied  bool
	summary    string
	answers    []string
	applicable []string // checked when not nil
	noPolicies bool
}

type decisionCase struct {
	name        string // the Greenwave test it is ported from, or what it checks
	policies    string
	subject     string
	subjectType string
	ctx         []string
	pv          string
	steps       []step
}

func ev(rs ...avro.Record) []avro.Record { return rs }

func taskotron(outcome string, min int) []avro.Record {
	var out []avro.Record
	for i, tc := range []string{"dist.abicheck", "dist.rpmdeplint", "dist.upgradepath"} {
		out = append(out, result(tc, outcome, min+i))
	}
	return out
}

var decisionCases = []decisionCase{
	// greenwave/tests/test_policies.py
	{
		name:     "test_decision_with_missing_result",
		policies: fedoraYAML, subject: "Fedora-Rawhide-20240101.n.0", subjectType: "compose",
		ctx: []string{"rawhide_compose_sync_to_mirrors"}, pv: "fedora-rawhide",
		steps: []step{{
			summary: "Of 2 required tests, 2 results missing",
			answers: []string{"test-result-missing compose.install_no_user scenario=scenario1",
				"test-result-missing compose.install_no_user scenario=scenario2"},
		}},
	},
	{
		name: "test_waive_brew_koji_mismatch",
		policies: `
--- !Policy
id: some_id
product_versions:
- fedora-rawhide
decision_context: test
subject_type: koji_build
rules:
  - !PassingTestCaseRule {test_case_name: sometest}
`, ctx: []string{"test"}, pv: "fedora-rawhide",
		steps: []step{
			{events: ev(result("sometest", "FAILED", 1, typ("brew-build"))),
				summary: "Of 1 required test, 1 test failed", answers: []string{"test-result-failed sometest"}},
			{events: ev(waive("sometest", "fedora-rawhide", true, 2)), satisfied: true,
				summary: "All required tests (1 total) have passed or been waived", answers: []string{"test-result-failed-waived sometest"}},
		},
	},
	{
		name: "test_waive_bodhi_update",
		policies: `
--- !Policy
id: some_id
product_versions:
- fedora-rawhide
decision_context: test
subject_type: bodhi_update
rules:
  - !PassingTestCaseRule {test_case_name: sometest}
`, subject: "FEDORA-2024-abcdef", subjectType: "bodhi_update", ctx: []string{"test"}, pv: "fedora-rawhide",
		steps: []step{
			{events: ev(result("sometest", "FAILED", 1, typ("bodhi_update"), subj("FEDORA-2024-abcdef"))),
				answers: []string{"test-result-failed sometest"}, summary: "Of 1 required test, 1 test failed"},
			{events: ev(waive("sometest", "fedora-rawhide", true, 2, typ("bodhi_update"), subj("FEDORA-2024-abcdef"))),
				satisfied: true, answers: []string{"test-result-failed-waived sometest"},
				summary: "All required tests (1 total) have passed or been waived"},
		},
	},
	{
		name: "test_product_versions_pattern[fedora-27]",
		policies: `
--- !Policy
id: dummy_policy
product_versions:
  - fedora-*
decision_context: dummy_context
subject_type: bodhi_update
rules:
  - !PassingTestCaseRule {test_case_name: test}
`, subject: "FEDORA-2024-1", subjectType: "bodhi_update", ctx: []string{"dummy_context"}, pv: "fedora-27",
		steps: []step{{summary: "Of 1 required test, 1 result missing", answers: []string{"test-result-missing test"},
			applicable: []string{"dummy_policy"}}},
	},
	{
		name: "test_product_versions_pattern[epel-7]",
		policies: `
--- !Policy
id: dummy_policy
product_versions:
  - fedora-*
decision_context: dummy_context
subject_type: bodhi_update
rules:
  - !PassingTestCaseRule {test_case_name: test}
`, subject: "FEDORA-2024-1", subjectType: "bodhi_update", ctx: []string{"dummy_context"}, pv: "epel-7",
		steps: []step{{noPolicies: true, satisfied: true, summary: "No tests are required", answers: []string{}}},
	},
	{
		name:     "test_remote_rule_policy",
		policies: remoteRulePolicy, ctx: []string{"bodhi_update_push_stable_with_remoterule"}, pv: "fedora-26",
		steps: []step{
			{events: ev(build(avro.StateComplete, 0, commit("c3c47a08"))),
				summary: "1 remote rule file not fetched yet", answers: []string{"pending-gating-yaml pending"}},
			{events: ev(remote("gating.yaml", remoteUpgradepath, 1, commit("c3c47a08"))),
				summary: "Of 1 required test, 1 result missing",
				answers: []string{"fetched-gating-yaml", "test-result-missing dist.upgradepath"}},
			{events: ev(result("dist.upgradepath", "FAILED", 2)),
				summary: "Of 1 required test, 1 test failed",
				answers: []string{"fetched-gating-yaml", "test-result-failed dist.upgradepath"}},
			{events: ev(result("dist.upgradepath", "PASSED", 3)), satisfied: true,
				summary: "All required tests (1 total) have passed or been waived",
				answers: []string{"fetched-gating-yaml", "test-result-passed dist.upgradepath"}},
		},
	},
	{
		name:     "remote rule file for another commit is not used",
		policies: remoteRulePolicy, ctx: []string{"bodhi_update_push_stable_with_remoterule"}, pv: "fedora-26",
		steps: []step{
			{events: ev(remote("gating.yaml", remoteUpgradepath, 1, commit("old"))),
				summary: "Of 1 required test, 1 result missing",
				answers: []string{"fetched-gating-yaml", "test-result-missing dist.upgradepath"}},
			{events: ev(build(avro.StateComplete, 0, commit("new"))),
				summary: "1 remote rule file not fetched yet", answers: []string{"pending-gating-yaml pending"}},
			{events: ev(remoteMissing("gating.yaml", 2, commit("new"))), satisfied: true,
				summary: "No tests are required", answers: []string{}},
		},
	},
	{
		name: "test_remote_rule_with_multiple_contexts",
		policies: `
--- !Policy
id: "taskotron_release_critical_tasks_with_remoterule"
product_versions:
  - rhel-8
decision_contexts:
  - osci_compose_gate1
  - osci_compose_gate2
subject_type: redhat-container-image
rules:
  - !RemoteRule {}
`, subject: "389-ds-1.4-820181127205924.9edba152", subjectType: "redhat-container-image",
		ctx: []string{"osci_compose_gate1"}, pv: "rhel-8",
		steps: []step{{
			events: ev(
				remote("gating.yaml", `
--- !Policy
product_versions:
  - rhel-8
decision_context: osci_compose_gate1
subject_type: redhat-container-image
rules:
  - !PassingTestCaseRule {test_case_name: baseos-ci.redhat-container-image.tier0.functional}

--- !Policy
product_versions:
  - rhel-8
decision_context: osci_compose_gate2
subject_type: redhat-container-image
rules:
  - !PassingTestCaseRule {test_case_name: baseos-ci.redhat-container-image.tier1.functional}
`, 1, subj("389-ds-1.4-820181127205924.9edba152"), typ("redhat-container-image")),
				result("baseos-ci.redhat-container-image.tier0.functional", "PASSED", 2,
					subj("389-ds-1.4-820181127205924.9edba152"), typ("redhat-container-image"))),
			satisfied: true, summary: "All required tests (1 total) have passed or been waived",
			answers: []string{"fetched-gating-yaml", "test-result-passed baseos-ci.redhat-container-image.tier0.functional"},
		}},
	},
	{
		name:     "test_remote_rule_policy_optional_id",
		policies: remoteRulePolicy, ctx: []string{"bodhi_update_push_stable_with_remoterule"}, pv: "fedora-26",
		steps: []step{{
			events: ev(remote("gating.yaml", `
--- !Policy
decision_context: bodhi_update_push_stable_with_remoterule
rules:
  - !PassingTestCaseRule {test_case_name: dist.upgradepath}
`, 1)),
			summary: "Of 1 required test, 1 result missing",
			answers: []string{"fetched-gating-yaml", "test-result-missing dist.upgradepath"},
		}},
	},
	{
		name:     "test_remote_rule_malformed_yaml / test_remote_rule_malformed_yaml_with_waiver",
		policies: remoteRulePolicy, ctx: []string{"bodhi_update_push_stable_with_remoterule"}, pv: "fedora-26",
		steps: []step{
			{events: ev(remote("gating.yaml", `
--- !Policy
id: "some-policy-from-a-random-packager"
product_versions:
  - fedora-26
decision_context: bodhi_update_push_stable_with_remoterule
rules:
  - !RemoteRule {test_case_name: dist.upgradepath}
`, 1)),
				summary: "1 error due to invalid remote rule file",
				answers: []string{"fetched-gating-yaml", "invalid-gating-yaml"}},
			{events: ev(waive("invalid-gating-yaml", "fedora-26", true, 2)), satisfied: true,
				summary: "No tests are required", answers: []string{"fetched-gating-yaml"}},
		},
	},
	{
		name: "test_remote_rule_required / test_make_decision_with_missing_required_gating_yaml",
		policies: `
--- !Policy
id: test
product_versions: [fedora-rawhide]
decision_context: test
subject_type: koji_build
rules:
  - !RemoteRule {required: true}
`, ctx: []string{"test"}, pv: "fedora-rawhide",
		steps: []step{{events: ev(remoteMissing("gating.yaml", 1)),
			summary: "1 error due to missing remote rule file", answers: []string{"missing-gating-yaml"}}},
	},
	{
		name:     "test_make_decision_with_no_tests_required_and_missing_gating_yaml",
		policies: strings.Replace(testPoliciesYAML, "!PassingTestCaseRule {test_case_name: sometest}", "!RemoteRule {}", 1),
		ctx:      []string{"test_policies"}, pv: "fedora-rawhide",
		steps: []step{{events: ev(remoteMissing("gating.yaml", 1)), satisfied: true,
			summary: "No tests are required", answers: []string{}}},
	},
	{
		name: "test_make_decision_with_no_tests_required_and_empty_remote_rules",
		policies: `
--- !Policy
id: "test_policy"
product_versions:
  - fedora-rawhide
decision_contexts:
  - test_policies
  - xyz
subject_type: koji_build
rules:
  - !RemoteRule {}
`, ctx: []string{"test_policies"}, pv: "fedora-rawhide",
		steps: []step{
			{events: ev(remote("gating.yaml", "--- !Policy\ndecision_contexts:\n- test_policies\n- abc\nrules: [ ]\n", 1)),
				satisfied: true, summary: "No tests are required", answers: []string{"fetched-gating-yaml"}},
			{events: ev(remote("gating.yaml", "--- !Policy\ndecision_contexts:\n- foo\n- bar\nrules: [ ]\n", 2)),
				satisfied: true, summary: "No tests are required", answers: []string{"fetched-gating-yaml"}},
		},
	},
	{
		name: "test_decision_multiple_contexts",
		policies: `
--- !Policy
id: "some_policy"
product_versions:
  - rhel-9000
decision_context: bodhi_update_push_stable
subject_type: kind-of-magic
rules:
  - !PassingTestCaseRule {test_case_name: sometest}

--- !Policy
id: "some_other_policy"
product_versions:
  - rhel-9000
decision_context: some_other_context
subject_type: kind-of-magic
rules:
  - !PassingTestCaseRule {test_case_name: someothertest}
`, subjectType: "kind-of-magic", ctx: []string{"bodhi_update_push_stable", "some_other_context"}, pv: "rhel-9000",
		steps: []step{{events: ev(result("sometest", "PASSED", 1, typ("kind-of-magic"))),
			summary: "Of 2 required tests, 1 result missing",
			answers: []string{"test-result-passed sometest", "test-result-missing someothertest"}}},
	},
	{
		name: "test_make_decision_multiple_contexts",
		policies: testPoliciesYAML + `
--- !Policy
id: "test_policy_2"
product_versions:
  - fedora-rawhide
decision_context: test_2
subject_type: koji_build
rules:
  - !PassingTestCaseRule {test_case_name: sometest_2}

--- !Policy
id: "test_policy_3"
product_versions:
  - fedora-rawhide
decision_context: test_3
subject_type: koji_build
rules:
  - !PassingTestCaseRule {test_case_name: sometest_3}
`, ctx: []string{"test_policies", "test_2"}, pv: "fedora-rawhide",
		steps: []step{{events: ev(result("sometest", "FAILED", 1), result("sometest_2", "FAILED", 2), result("sometest_3", "FAILED", 3)),
			summary:    "Of 2 required tests, 2 tests failed",
			answers:    []string{"test-result-failed sometest", "test-result-failed sometest_2"},
			applicable: []string{"test_policy", "test_policy_2"}}},
	},
	{
		name:     "test_make_decision_with_no_tests_required (rules: [])",
		policies: strings.Replace(testPoliciesYAML, "rules:\n  - !PassingTestCaseRule {test_case_name: sometest}", "rules: []", 1),
		ctx:      []string{"test_policies"}, pv: "fedora-rawhide",
		steps: []step{{satisfied: true, summary: "No tests are required", answers: []string{}}},
	},
	{
		name: "test_two_rules_no_duplicate",
		policies: `
--- !Policy
id: "taskotron_release_critical_tasks_with_remoterule"
product_versions:
  - fedora-31
decision_context: bodhi_update_push_stable_with_remoterule
subject_type: koji_build
rules:
  - !RemoteRule {}
  - !PassingTestCaseRule {test_case_name: dist.upgradepath}
`, ctx: []string{"bodhi_update_push_stable_with_remoterule"}, pv: "fedora-31",
		steps: []step{
			{events: ev(remote("gating.yaml", strings.ReplaceAll(remoteUpgradepath, "fedora-26", "fedora-31"), 1)),
				summary: "Of 1 required test, 1 result missing",
				answers: []string{"fetched-gating-yaml", "test-result-missing dist.upgradepath"}},
			{events: ev(result("dist.upgradepath", "FAILED", 2)), summary: "Of 1 required test, 1 test failed",
				answers: []string{"fetched-gating-yaml", "test-result-failed dist.upgradepath"}},
		},
	},
	{
		name: "test_passing_test_case_rule_replace_using_valid_times[old build]",
		policies: `
--- !Policy
id: "some_policy"
product_versions: [rhel-9000]
decision_context: bodhi_update_push_stable
subject_type: koji_build
rules:
  - !PassingTestCaseRule
    valid_until: 2021-10-06 06:00:00.000000+00:00
    test_case_name: old_test_case
  - !PassingTestCaseRule
    valid_since: 2021-10-06 06:00:00.000000+00:00
    test_case_name: new_test_case
`, ctx: []string{"bodhi_update_push_stable"}, pv: "rhel-9000",
		steps: []step{
			// While the creation time is unknown, both rules apply.
			{summary: "Of 2 required tests, 2 results missing",
				answers: []string{"test-result-missing old_test_case", "test-result-missing new_test_case"}},
			{events: ev(build(avro.StateComplete, 0, created(time.Date(2021, 10, 6, 5, 59, 59, 999999000, time.UTC)))),
				summary: "Of 1 required test, 1 result missing", answers: []string{"test-result-missing old_test_case"}},
		},
	},
	{
		name: "test_passing_test_case_rule_replace_using_valid_times[new build]",
		policies: `
--- !Policy
id: "some_policy"
product_versions: [rhel-9000]
decision_context: bodhi_update_push_stable
subject_type: koji_build
rules:
  - !PassingTestCaseRule
    valid_until: 2021-10-06 06:00:00.000000+00:00
    test_case_name: old_test_case
  - !PassingTestCaseRule
    valid_since: 2021-10-06 06:00:00.000000+00:00
    test_case_name: new_test_case
`, ctx: []string{"bodhi_update_push_stable"}, pv: "rhel-9000",
		steps: []step{{events: ev(build(avro.StateComplete, 0, created(time.Date(2021, 10, 6, 6, 0, 0, 0, time.UTC)))),
			summary: "Of 1 required test, 1 result missing", answers: []string{"test-result-missing new_test_case"}}},
	},
	{
		name: "test_remote_rule_custom_sources",
		policies: `
---
id: "some_policy"
product_versions: [rhel-9000]
decision_context: bodhi_update_push_stable
subject_type: koji_build
rules:
  - !RemoteRule
    sources:
      - https://gating.example.com/gating1.yml
      - https://gating.example.com/gating2.yml
`, ctx: []string{"bodhi_update_push_stable"}, pv: "rhel-9000",
		steps: []step{
			{events: ev(remoteMissing("https://gating.example.com/gating1.yml", 1)),
				summary: "1 remote rule file not fetched yet", answers: []string{"pending-gating-yaml pending"}},
			{events: ev(remote("https://gating.example.com/gating2.yml",
				"---\ndecision_context: bodhi_update_push_stable\nrules:\n  - !PassingTestCaseRule {test_case_name: some_test_case}\n", 2)),
				summary: "Of 1 required test, 1 result missing",
				answers: []string{"fetched-gating-yaml", "test-result-missing some_test_case"}},
		},
	},
	{
		name: "test_remote_rule_custom_sources_multiple_rules",
		policies: `
---
id: "some_policy"
product_versions: [rhel-9000]
decision_context: bodhi_update_push_stable
subject_type: koji_build
rules:
  - !RemoteRule
    sources:
      - https://gating.example.com/gating1.yml
  - !RemoteRule
    sources:
      - https://gating.example.com/gating2.yml
  - !RemoteRule {}
`, ctx: []string{"bodhi_update_push_stable"}, pv: "rhel-9000",
		steps: []step{{
			events: ev(remoteMissing("https://gating.example.com/gating1.yml", 1),
				remote("https://gating.example.com/gating2.yml",
					"---\ndecision_context: bodhi_update_push_stable\nrules:\n  - !PassingTestCaseRule {test_case_name: some_test_case}\n", 2),
				remoteError("gating.yaml", "Koji build not found for subject_type 'koji_build', subject_identifier 'nethack-1.2.3-1.el9000'", 3)),
			summary: "1 error while trying to fetch remote rule file. Of 1 required test, 1 result missing",
			answers: []string{"fetched-gating-yaml", "test-result-missing some_test_case", "failed-fetch-gating-yaml"},
		}},
	},
	{
		name: "test_remote_rule_include_failures",
		policies: `
--- !Policy
id: "some_policy"
product_versions: [rhel-9000]
decision_context: bodhi_update_push_stable
subject_type: koji_build
rules:
  - !RemoteRule {}
`, ctx: []string{"bodhi_update_push_stable"}, pv: "rhel-9000",
		steps: []step{
			{events: ev(remote("gating.yaml", "--- !Policy", 1)),
				summary: "1 error due to invalid remote rule file", answers: []string{"fetched-gating-yaml", "invalid-gating-yaml"}},
		},
	},
	{
		name: "test_get_sub_policies_scm_error (fetch error; a later successful fetch wins)",
		policies: `
--- !Policy
id: "some_policy"
product_versions: [rhel-9000]
decision_context: bodhi_update_push_stable
subject_type: koji_build
rules:
  - !RemoteRule {}
`, ctx: []string{"bodhi_update_push_stable"}, pv: "rhel-9000",
		steps: []step{
			{events: ev(remoteError("gating.yaml", "Failed to parse SCM URL", 1)),
				summary: "1 error while trying to fetch remote rule file", answers: []string{"failed-fetch-gating-yaml"}},
			{events: ev(remoteMissing("gating.yaml", 0)), satisfied: true, summary: "No tests are required", answers: []string{}},
			{events: ev(remoteError("gating.yaml", "timeout", 5)), satisfied: true, summary: "No tests are required", answers: []string{}},
		},
	},
	// functional-tests/test_api_v1.py, with Greenwave's example policies.
	{
		name:     "test_make_a_decision_on_passed_result",
		policies: fedoraYAML, ctx: []string{"bodhi_update_push_stable"}, pv: "fedora-26",
		steps: []step{{events: taskotron("PASSED", 1), satisfied: true,
			summary:    "All required tests (3 total) have passed or been waived",
			answers:    []string{"test-result-passed dist.abicheck", "test-result-passed dist.rpmdeplint", "test-result-passed dist.upgradepath"},
			applicable: []string{"taskotron_release_critical_tasks_with_blocklist", "taskotron_release_critical_tasks"}}},
	},
	{
		name:     "test_make_a_decision_on_no_results",
		policies: fedoraYAML, ctx: []string{"bodhi_update_push_stable"}, pv: "fedora-26",
		steps: []step{{summary: "Of 3 required tests, 3 results missing",
			answers: []string{"test-result-missing dist.abicheck", "test-result-missing dist.rpmdeplint", "test-result-missing dist.upgradepath"}}},
	},
	{
		name:     "test_make_a_decision_on_failed_result",
		policies: fedoraYAML, ctx: []string{"bodhi_update_push_stable"}, pv: "fedora-26",
		steps: []step{{events: ev(result("dist.abicheck", "FAILED", 1)),
			summary: "Of 3 required tests, 2 results missing, 1 test failed",
			answers: []string{"test-result-failed dist.abicheck", "test-result-missing dist.rpmdeplint", "test-result-missing dist.upgradepath"}}},
	},
	{
		name:     "test_make_a_decision_on_incomplete_result[QUEUED,RUNNING] then PASSED",
		policies: fedoraYAML, ctx: []string{"bodhi_update_push_stable"}, pv: "fedora-26",
		steps: []step{
			{events: ev(result("dist.abicheck", "QUEUED", 1)),
				summary: "Of 3 required tests, 2 results missing, 1 test incomplete",
				answers: []string{"test-result-missing dist.abicheck pending", "test-result-missing dist.rpmdeplint", "test-result-missing dist.upgradepath"}},
			{events: ev(result("dist.abicheck", "RUNNING", 2)),
				summary: "Of 3 required tests, 2 results missing, 1 test incomplete",
				answers: []string{"test-result-missing dist.abicheck pending", "test-result-missing dist.rpmdeplint", "test-result-missing dist.upgradepath"}},
			{events: ev(result("dist.abicheck", "PASSED", 3)),
				summary: "Of 3 required tests, 2 results missing",
				answers: []string{"test-result-passed dist.abicheck", "test-result-missing dist.rpmdeplint", "test-result-missing dist.upgradepath"}},
		},
	},
	{
		name:     "test_make_a_decision_on_failed_result_with_waiver",
		policies: fedoraYAML, ctx: []string{"bodhi_update_push_stable"}, pv: "fedora-26",
		steps: []step{{events: ev(result("dist.abicheck", "FAILED", 1), waive("dist.abicheck", "fedora-26", true, 2),
			result("dist.rpmdeplint", "PASSED", 3), result("dist.upgradepath", "PASSED", 4)),
			satisfied: true, summary: "All required tests (3 total) have passed or been waived",
			answers: []string{"test-result-failed-waived dist.abicheck", "test-result-passed dist.rpmdeplint", "test-result-passed dist.upgradepath"}}},
	},
	{
		name:     "test_multiple_results_in_a_subject (the latest result counts)",
		policies: fedoraYAML, ctx: []string{"bodhi_update_push_stable"}, pv: "fedora-26",
		steps: []step{{events: ev(result("dist.abicheck", "PASSED", 1), result("dist.abicheck", "FAILED", 2),
			result("dist.rpmdeplint", "PASSED", 3), result("dist.upgradepath", "PASSED", 4)),
			summary: "Of 3 required tests, 1 test failed",
			answers: []string{"test-result-failed dist.abicheck", "test-result-passed dist.rpmdeplint", "test-result-passed dist.upgradepath"}}},
	},
	{
		name:     "test_make_a_decision_on_passed_result_with_scenario",
		policies: fedoraYAML, subject: "Fedora-Rawhide-20240101.n.0", subjectType: "compose",
		ctx: []string{"rawhide_compose_sync_to_mirrors"}, pv: "fedora-rawhide",
		steps: []step{
			{events: ev(
				result("compose.install_no_user", "QUEUED", 1, scenario("scenario1"), subj("Fedora-Rawhide-20240101.n.0"), typ("compose")),
				result("compose.install_no_user", "QUEUED", 1, scenario("scenario2"), subj("Fedora-Rawhide-20240101.n.0"), typ("compose"))),
				summary: "Of 2 required tests, 2 tests incomplete",
				answers: []string{"test-result-missing compose.install_no_user scenario=scenario1 pending",
					"test-result-missing compose.install_no_user scenario=scenario2 pending"}},
			{events: ev(
				result("compose.install_no_user", "PASSED", 2, scenario("scenario1"), subj("Fedora-Rawhide-20240101.n.0"), typ("compose")),
				result("compose.install_no_user", "PASSED", 2, scenario("scenario2"), subj("Fedora-Rawhide-20240101.n.0"), typ("compose"))),
				satisfied: true, summary: "All required tests (2 total) have passed or been waived",
				answers: []string{"test-result-passed compose.install_no_user scenario=scenario1",
					"test-result-passed compose.install_no_user scenario=scenario2"},
				applicable: []string{"openqa_important_stuff_for_rawhide"}},
		},
	},
	{
		name:     "test_make_a_decision_on_failing_result_with_scenario",
		policies: fedoraYAML, subject: "Fedora-Rawhide-20240101.n.0", subjectType: "compose",
		ctx: []string{"rawhide_compose_sync_to_mirrors"}, pv: "fedora-rawhide",
		steps: []step{{events: ev(
			result("compose.install_no_user", "QUEUED", 1, scenario("scenario1"), subj("Fedora-Rawhide-20240101.n.0"), typ("compose")),
			result("compose.install_no_user", "QUEUED", 1, scenario("scenario2"), subj("Fedora-Rawhide-20240101.n.0"), typ("compose")),
			result("compose.install_no_user", "PASSED", 2, scenario("scenario1"), subj("Fedora-Rawhide-20240101.n.0"), typ("compose")),
			result("compose.install_no_user", "FAILED", 2, scenario("scenario2"), subj("Fedora-Rawhide-20240101.n.0"), typ("compose"))),
			summary: "Of 2 required tests, 1 test failed",
			answers: []string{"test-result-passed compose.install_no_user scenario=scenario1",
				"test-result-failed compose.install_no_user scenario=scenario2"}}},
	},
	{
		name:     "test_make_a_decision_about_compose_all_variants_architectures",
		policies: fedoraYAML, subject: "RHEL-9.4.0-20240101.0", subjectType: "compose",
		ctx: []string{"rtt_compose_gate"}, pv: "rhel-something",
		steps: []step{{events: ev(
			result("rtt.acceptance.validation", "FAILED", 1, arch("ppc64", "BaseOS"), subj("RHEL-9.4.0-20240101.0"), typ("compose")),
			result("rtt.acceptance.validation", "PASSED", 2, arch("x86_64", "BaseOS"), subj("RHEL-9.4.0-20240101.0"), typ("compose"))),
			summary: "Of 2 required tests, 1 test failed",
			answers: []string{"test-result-passed rtt.acceptance.validation arch=x86_64 variant=BaseOS",
				"test-result-failed rtt.acceptance.validation arch=ppc64 variant=BaseOS"}}},
	},
	{
		name:     "test_make_a_decision_about_compose_latest_variants_architectures / _new_variants_architectures",
		policies: fedoraYAML, subject: "RHEL-9.4.0-20240101.0", subjectType: "compose",
		ctx: []string{"rtt_compose_gate"}, pv: "rhel-something",
		steps: []step{
			{events: ev(
				result("rtt.acceptance.validation", "FAILED", 1, arch("ppc64", "BaseOS"), subj("RHEL-9.4.0-20240101.0"), typ("compose")),
				result("rtt.acceptance.validation", "PASSED", 2, arch("ppc64", "BaseOS"), subj("RHEL-9.4.0-20240101.0"), typ("compose"))),
				satisfied: true, summary: "All required tests (1 total) have passed or been waived",
				answers: []string{"test-result-passed rtt.acceptance.validation arch=ppc64 variant=BaseOS"}},
			{events: ev(
				result("rtt.acceptance.validation", "PASSED", 3, arch("x86_64", "BaseOS"), subj("RHEL-9.4.0-20240101.0"), typ("compose"))),
				satisfied: true, summary: "All required tests (2 total) have passed or been waived",
				answers: []string{"test-result-passed rtt.acceptance.validation arch=x86_64 variant=BaseOS",
					"test-result-passed rtt.acceptance.validation arch=ppc64 variant=BaseOS"}},
		},
	},
	{
		name: "test_make_a_decision_on_passed_result_with_custom_scenario",
		policies: `
--- !Policy
id: p
product_versions: [fedora-26]
decision_context: c
rules:
  - !PassingTestCaseRule {test_case_name: test.testcase1, scenario: scenario1}
`, ctx: []string{"c"}, pv: "fedora-26",
		steps: []step{{events: ev(result("test.testcase1", "FAILED", 1), result("test.testcase1", "PASSED", 2, scenario("scenario1"))),
			satisfied: true, summary: "All required tests (1 total) have passed or been waived",
			answers: []string{"test-result-passed test.testcase1 scenario=scenario1"}}},
	},
	{
		name: "test_make_a_decision_all_scenarios_waived / test_waive_scenarios_all",
		policies: `
--- !Policy
id: p
product_versions: [fedora-26]
decision_context: c
rules:
  - !PassingTestCaseRule {test_case_name: test1, scenario: scenario1}
  - !PassingTestCaseRule {test_case_name: test1, scenario: scenario2}
`, ctx: []string{"c"}, pv: "fedora-26",
		steps: []step{
			{events: ev(result("test1", "FAILED", 1, scenario("scenario1")), result("test1", "FAILED", 2, scenario("scenario2"))),
				summary: "Of 2 required tests, 2 tests failed",
				answers: []string{"test-result-failed test1 scenario=scenario1", "test-result-failed test1 scenario=scenario2"}},
			{events: ev(waive("test1", "fedora-26", true, 3)), satisfied: true,
				summary: "All required tests (2 total) have passed or been waived",
				answers: []string{"test-result-failed-waived test1 scenario=scenario1", "test-result-failed-waived test1 scenario=scenario2"}},
		},
	},
	{
		name: "test_waive_scenario (greenwave/tests/test_waive.py)",
		policies: `
--- !Policy
id: p
product_versions: [rawhide]
decision_context: c
rules:
  - !PassingTestCaseRule {test_case_name: test1}
`, ctx: []string{"c"}, pv: "rawhide",
		steps: []step{
			{events: ev(result("test1", "FAILED", 1, scenario("scenario1")), waive("test1", "rawhide", true, 2, scenario("scenario2"))),
				summary: "Of 1 required test, 1 test failed", answers: []string{"test-result-failed test1 scenario=scenario1"}},
			{events: ev(waive("test1", "rawhide", true, 3, scenario("scenario1"))), satisfied: true,
				summary: "All required tests (1 total) have passed or been waived",
				answers: []string{"test-result-failed-waived test1 scenario=scenario1"}},
		},
	},
	{
		name: "test_waive_missing_result / test_waive_incomplete_result / test_waive_errored_result (test_waive.py)",
		policies: `
--- !Policy
id: p
product_versions: [rawhide]
decision_context: c
rules:
  - !PassingTestCaseRule {test_case_name: test1, scenario: scenario1}
  - !PassingTestCaseRule {test_case_name: test2}
  - !PassingTestCaseRule {test_case_name: test3}
`, ctx: []string{"c"}, pv: "rawhide",
		steps: []step{
			{events: ev(result("test2", "QUEUED", 1), result("test3", "ERROR", 2)),
				summary: "Of 3 required tests, 1 result missing, 1 test errored, 1 test incomplete",
				answers: []string{"test-result-missing test1 scenario=scenario1", "test-result-missing test2 pending", "test-result-errored test3"}},
			{events: ev(waive("test1", "rawhide", true, 3), waive("test2", "rawhide", true, 4), waive("test3", "rawhide", true, 5)),
				satisfied: true, summary: "All required tests (3 total) have passed or been waived",
				answers: []string{"test-result-missing-waived test1 scenario=scenario1", "test-result-missing-waived test2 pending",
					"test-result-errored-waived test3"}},
		},
	},
	{
		name:     "test_excluded_packages (excluded wins over packages)",
		policies: fedoraYAML, subject: "module-build-service-2.0-1.el8", ctx: []string{"osci_compose_gate"}, pv: "rhel-something",
		steps: []step{{events: ev(result("osci.brew-build.tier0.functional", "FAILED", 1, typ("brew-build"), subj("module-build-service-2.0-1.el8"))),
			satisfied: true, summary: "No tests are required", answers: []string{"excluded"}}},
	},
	{
		name:     "test_blocklist (excluded_packages, exact name)",
		policies: fedoraYAML, subject: "firefox-1.0-1.el7", ctx: []string{"bodhi_update_push_stable"}, pv: "fedora-26",
		steps: []step{{events: ev(
			result("dist.abicheck", "FAILED", 1, subj("firefox-1.0-1.el7")),
			result("dist.rpmdeplint", "PASSED", 2, subj("firefox-1.0-1.el7")),
			result("dist.upgradepath", "PASSED", 3, subj("firefox-1.0-1.el7"))),
			satisfied: true, summary: "All required tests (2 total) have passed or been waived",
			answers: []string{"excluded", "test-result-passed dist.rpmdeplint", "test-result-passed dist.upgradepath"}}},
	},
	{
		name: "blacklist (old name of excluded_packages)",
		policies: `
--- !Policy
id: p
product_versions: [fedora-26]
decision_context: c
blacklist: [nethack]
rules:
  - !PassingTestCaseRule {test_case_name: test1}
`, ctx: []string{"c"}, pv: "fedora-26",
		steps: []step{{satisfied: true, summary: "No tests are required", answers: []string{"blacklisted"}}},
	},
	{
		name:     "test_ignore_result",
		policies: fedoraYAML, ctx: []string{"bodhi_update_push_stable"}, pv: "fedora-26",
		steps: []step{
			{events: ev(result("dist.rpmdeplint", "PASSED", 1), result("dist.upgradepath", "PASSED", 2),
				result("dist.abicheck", "PASSED", 3, rid("1003"))),
				satisfied: true, summary: "All required tests (3 total) have passed or been waived",
				answers: []string{"test-result-passed dist.abicheck", "test-result-passed dist.rpmdeplint", "test-result-passed dist.upgradepath"}},
			{query: func(q *Query) { q.IgnoreResults = []string{"1003"} },
				summary: "Of 3 required tests, 1 result missing",
				answers: []string{"test-result-missing dist.abicheck", "test-result-passed dist.rpmdeplint", "test-result-passed dist.upgradepath"}},
			{query: func(q *Query) { q.When = at(3).Add(-time.Microsecond) },
				summary: "Of 3 required tests, 1 result missing",
				answers: []string{"test-result-missing dist.abicheck", "test-result-passed dist.rpmdeplint", "test-result-passed dist.upgradepath"}},
		},
	},
	{
		name:     "test_ignore_waiver / test_api_with_when",
		policies: fedoraYAML, ctx: []string{"bodhi_update_push_stable"}, pv: "fedora-26",
		steps: []step{
			{events: ev(result("dist.abicheck", "FAILED", 1), result("dist.rpmdeplint", "PASSED", 2), result("dist.upgradepath", "PASSED", 3),
				waive("dist.abicheck", "fedora-26", true, 4, rid("77"))),
				satisfied: true, summary: "All required tests (3 total) have passed or been waived",
				answers: []string{"test-result-failed-waived dist.abicheck", "test-result-passed dist.rpmdeplint", "test-result-passed dist.upgradepath"}},
			{query: func(q *Query) { q.IgnoreWaivers = []string{"77"} },
				summary: "Of 3 required tests, 1 test failed",
				answers: []string{"test-result-failed dist.abicheck", "test-result-passed dist.rpmdeplint", "test-result-passed dist.upgradepath"}},
			{query: func(q *Query) { q.When = at(4).Add(-time.Microsecond) },
				summary: "Of 3 required tests, 1 test failed",
				answers: []string{"test-result-failed dist.abicheck", "test-result-passed dist.rpmdeplint", "test-result-passed dist.upgradepath"}},
			{query: func(q *Query) { q.When = at(1) },
				summary: "Of 3 required tests, 2 results missing, 1 test failed",
				answers: []string{"test-result-failed dist.abicheck", "test-result-missing dist.rpmdeplint", "test-result-missing dist.upgradepath"}},
		},
	},
	{
		name:     "test_make_decision_retrieves_waivers_on_errored (test_api_v1.py)",
		policies: testPoliciesYAML, ctx: []string{"test_policies"}, pv: "fedora-rawhide",
		steps: []step{{events: ev(result("sometest", "ERROR", 1)), summary: "Of 1 required test, 1 test errored",
			answers: []string{"test-result-errored sometest"}}},
	},
	{
		name:     "outcomes: INFO passes, NEEDS_INSPECTION and unknown outcomes fail",
		policies: testPoliciesYAML, ctx: []string{"test_policies"}, pv: "fedora-rawhide",
		steps: []step{
			{events: ev(result("sometest", "INFO", 1)), satisfied: true,
				summary: "All required tests (1 total) have passed or been waived", answers: []string{"test-result-passed sometest"}},
			{events: ev(result("sometest", "NEEDS_INSPECTION", 2)), summary: "Of 1 required test, 1 test failed",
				answers: []string{"test-result-failed sometest"}},
			{events: ev(result("sometest", "passed", 3)), satisfied: true, // outcomes are case-insensitive
				summary: "All required tests (1 total) have passed or been waived", answers: []string{"test-result-passed sometest"}},
			{events: ev(result("sometest", "CRASHED", 4)), summary: "Of 1 required test, 1 test failed",
				answers: []string{"test-result-failed sometest"}},
		},
	},
	{
		name:     "waived=false unwaives; a waiver for another product version does not apply",
		policies: testPoliciesYAML, ctx: []string{"test_policies"}, pv: "fedora-rawhide",
		steps: []step{
			{events: ev(result("sometest", "FAILED", 1), waive("sometest", "fedora-41", true, 2)),
				summary: "Of 1 required test, 1 test failed", answers: []string{"test-result-failed sometest"}},
			{events: ev(waive("sometest", "fedora-rawhide", true, 3)), satisfied: true,
				summary: "All required tests (1 total) have passed or been waived", answers: []string{"test-result-failed-waived sometest"}},
			{events: ev(waive("sometest", "fedora-rawhide", false, 4)),
				summary: "Of 1 required test, 1 test failed", answers: []string{"test-result-failed sometest"}},
			// An older waiver arriving late does not override the unwaive.
			{events: ev(waive("sometest", "fedora-rawhide", true, 3, rid("w-late"))),
				summary: "Of 1 required test, 1 test failed", answers: []string{"test-result-failed sometest"}},
		},
	},
	{
		name: "test_multiple_subject_types[bodhi_update]",
		policies: `
--- !Policy
id: "taskotron_release_critical_tasks_with_remoterule"
product_versions:
  - fedora-30
decision_context: test_policy
subject_types: [koji_build, bodhi_update]
rules:
  - !PassingTestCaseRule {test_case_name: test1}
  - !RemoteRule {sources: ["https://git.example.com/policies/remote.yml"]}
`, subject: "httpd-2.4.el9000", subjectType: "bodhi_update", ctx: []string{"test_policy"}, pv: "fedora-30",
		steps: []step{{events: ev(
			result("test1", "PASSED", 1, subj("httpd-2.4.el9000"), typ("bodhi_update")),
			remote("https://git.example.com/policies/remote.yml", `
--- !Policy
id: remote-policy
product_versions:
  - fedora-30
subject_types: [koji_build]
decision_context: test_policy
rules:
  - !PassingTestCaseRule {test_case_name: remote_test}
`, 2, subj("httpd-2.4.el9000"), typ("bodhi_update"))),
			satisfied: true, summary: "All required tests (1 total) have passed or been waived",
			answers: []string{"test-result-passed test1", "fetched-gating-yaml"}}},
	},
}

// TestDecisions ports Greenwave's decision tests; each case names the
// Greenwave test it comes from.
func TestDecisions(t *testing.T) {
	for _, tc := range decisionCases {
		t.Run(tc.name, func(t *testing.T) {
			subject, st := tc.subject, tc.subjectType
			if subject == "" {
				subject = testNVR
			}
			if st == "" {
				st = SubjectKojiBuild
			}
			h := newHarness(t, tc.policies, nil)
			for i, s := range tc.steps {
				h.apply(s.events...)
				q := Query{SubjectType: st, DecisionContexts: tc.ctx, ProductVersion: tc.pv, Verbose: true}
				if s.query != nil {
					s.query(&q)
				}
				sub := h.subject()
				if sub.ID == "" {
					sub.ID = subject
				}
				ev := h.e.Evaluate(sub, q)
				if got := answerStrings(ev.Answers); !slices.Equal(got, s.answers) {
					t.Errorf("step %d: answers\n%s\nwant\n%s", i, joinLines(got), joinLines(s.answers))
				}
				if ev.Summary != s.summary {
					t.Errorf("step %d: summary %q, want %q", i, ev.Summary, s.summary)
				}
				if ev.PoliciesSatisfied != s.satisfied {
					t.Errorf("step %d: satisfied %v, want %v", i, ev.PoliciesSatisfied, s.satisfied)
				}
				if ev.NoApplicablePolicies != s.noPolicies {
					t.Errorf("step %d: no applicable policies %v, want %v", i, ev.NoApplicablePolicies, s.noPolicies)
				}
				if s.applicable != nil && !slices.Equal(ev.ApplicablePolicies, s.applicable) {
					t.Errorf("step %d: applicable %v, want %v", i, ev.ApplicablePolicies, s.applicable)
				}
			}
		})
	}
}

// TestPackagesAllowlist ports test_policy_with_packages_allowlist
// (greenwave/tests/test_policies.py).
func TestPackagesAllowlist(t *testing.T) {
	for pkg, want := range map[string][]string{
		"nethack":         {"test-result-passed sometest"},
		"net*":            {"test-result-passed sometest"},
		"python-requests": {},
	} {
		h := newHarness(t, `
--- !Policy
id: "some_policy"
product_versions:
  - rhel-9000
decision_context: test
subject_type: koji_build
packages:
- `+pkg+`
rules:
  - !PassingTestCaseRule {test_case_name: sometest}
`, nil)
		h.apply(result("sometest", "PASSED", 1))
		ev := h.eval(Query{DecisionContexts: []string{"test"}, ProductVersion: "rhel-9000"})
		if got := answerStrings(ev.Answers); !slices.Equal(got, want) {
			t.Errorf("packages [%s]: got %v, want %v", pkg, got, want)
		}
		if !slices.Equal(ev.ApplicablePolicies, []string{"some_policy"}) {
			t.Errorf("applicable %v", ev.ApplicablePolicies)
		}
	}
}

// TestValidTimes ports test_passing_test_case_rule_valid_times
// (greenwave/tests/test_rules.py): the build was created
// 2021-10-06 06:00 UTC.
func TestValidTimes(t *testing.T) {
	for props, valid := range map[string]bool{
		"valid_since: 2021-10-06":                          true,
		"valid_since: 2021-10-07":                          false,
		"valid_until: 2021-10-07":                          true,
		"valid_until: 2021-10-06":                          false,
		"valid_since: 2021-10-06, valid_until: 2021-10-07": true,
		"valid_since: 2021-10-07, valid_until: 2021-10-08": false,
		"valid_since: 2021-10-05, valid_until: 2021-10-06": false,
	} {
		h := newHarness(t, `
--- !Policy
id: "some_policy"
product_versions: [rhel-9000]
decision_context: bodhi_update_push_stable
subject_type: koji_build
rules:
  - !PassingTestCaseRule {test_case_name: some_test_case, `+props+`}
`, nil)
		h.apply(build(avro.StateComplete, 0, created(time.Date(2021, 10, 6, 6, 0, 0, 0, time.UTC))))
		ev := h.eval(Query{DecisionContexts: []string{"bodhi_update_push_stable"}, ProductVersion: "rhel-9000"})
		want := []string{}
		if valid {
			want = []string{"test-result-missing some_test_case"}
		}
		if got := answerStrings(ev.Answers); !slices.Equal(got, want) {
			t.Errorf("%s: got %v, want %v", props, got, want)
		}
		if !slices.Contains(ev.DerivedFrom(), "ev-001") {
			t.Errorf("%s: the build event is not in DerivedFrom %v", props, ev.DerivedFrom())
		}
	}
}

// TestSummarize ports greenwave/tests/test_summary.py and
// test_summarize_answers (test_policies.py).
func TestSummarize(t *testing.T) {
	a := func(k answerKind, waived bool) Answer {
		x := Answer{kind: k, Test: k.isTest(), Waived: waived}
		x.Satisfied = k == kindPassed || k == kindFetched || k == kindExcluded || waived
		return x
	}
	passed, failed, missing := a(kindPassed, false), a(kindFailed, false), a(kindMissing, false)
	errored, incomplete, invalid := a(kindErrored, false), a(kindIncomplete, false), a(kindInvalidYAML, false)
	for _, tc := range []struct {
		name    string
		answers []Answer
		want    string
	}{
		{"test_summary_passed", []Answer{passed}, "All required tests (1 total) have passed or been waived"},
		{"test_summary_empty", nil, "No tests are required"},
		{"test_summary_failed", []Answer{failed}, "Of 1 required test, 1 test failed"},
		{"test_summary_incomplete", []Answer{incomplete}, "Of 1 required test, 1 test incomplete"},
		{"test_summary_missing", []Answer{missing}, "Of 1 required test, 1 result missing"},
		{"test_summary_missing_waived", []Answer{a(kindMissing, true)}, "All required tests (1 total) have passed or been waived"},
		{"test_summary_errored", []Answer{errored}, "Of 1 required test, 1 test errored"},
		{"test_summary_one_passed_one_failed", []Answer{passed, failed}, "Of 2 required tests, 1 test failed"},
		{"test_summary_one_passed_one_missing", []Answer{passed, missing}, "Of 2 required tests, 1 result missing"},
		{"test_summary_one_passed_one_missing_waived", []Answer{passed, a(kindMissing, true)}, "All required tests (2 total) have passed or been waived"},
		{"test_summary_one_failed_one_missing", []Answer{failed, missing}, "Of 2 required tests, 1 result missing, 1 test failed"},
		{"test_summary_one_passed_one_failed_one_missing", []Answer{passed, failed, missing}, "Of 3 required tests, 1 result missing, 1 test failed"},
		{"test_summary_one_passed_one_failed_one_missing_two_errored", []Answer{errored, passed, failed, missing, errored},
			"Of 5 required tests, 1 result missing, 2 tests errored, 1 test failed"},
		{"test_summary_invalid_gating_yaml", []Answer{invalid}, "1 error due to invalid remote rule file"},
		{"test_summary_one_passed_one_invalid_gating_yaml_one_missing", []Answer{passed, missing, invalid},
			"1 error due to invalid remote rule file. Of 2 required tests, 1 result missing"},
		{"test_summarize_answers (two missing)", []Answer{failed, missing, missing}, "Of 3 required tests, 2 results missing, 1 test failed"},
		{"non-test answers do not count", []Answer{a(kindFetched, false), a(kindExcluded, false)}, "No tests are required"},
		{"pending remote rule file", []Answer{a(kindPendingYAML, false), missing}, "1 remote rule file not fetched yet. Of 1 required test, 1 result missing"},
	} {
		if got := summarize(tc.answers); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestContainerImageResults: a container image's decision counts results
// reported for its Koji build too (Greenwave's redhat-container-image
// result_queries), and the Subject has both subject types.
func TestContainerImageResults(t *testing.T) {
	const nvr = "389-ds-1.4-820181127205924.9edba152"
	h := newHarness(t, `
--- !Policy
id: p
product_versions: [rhel-8]
decision_context: c
subject_type: redhat-container-image
rules:
  - !PassingTestCaseRule {test_case_name: test.testcase1}
  - !PassingTestCaseRule {test_case_name: test.testcase2}
`, nil)
	// test_make_a_decision_on_redhat_cont_image (functional-tests).
	h.apply(result("test.testcase1", "FAILED", 1, subj(nvr)),
		result("test.testcase2", "FAILED", 2, subj(nvr), typ("redhat-container-image")))
	s := h.subject()
	if !slices.Equal(s.Types, []string{SubjectKojiBuild, SubjectContainerImage}) {
		t.Errorf("types %v", s.Types)
	}
	ev := h.e.Evaluate(s, Query{SubjectType: "redhat-container-image", DecisionContexts: []string{"c"}, ProductVersion: "rhel-8"})
	if ev.Summary != "Of 2 required tests, 2 tests failed" {
		t.Errorf("summary %q", ev.Summary)
	}
	for _, a := range ev.Answers {
		if a.Requirement.SubjectType != SubjectContainerImage {
			t.Errorf("answer subject type %q", a.Requirement.SubjectType)
		}
	}
}
