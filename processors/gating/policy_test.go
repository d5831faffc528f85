package gating

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestRealGatingYAML parses the real package gating.yaml files copied
// from Fedora dist-git (testdata/gating-yaml/SOURCES.md).
func TestRealGatingYAML(t *testing.T) {
	for _, tc := range []struct {
		file string
		want []Policy
	}{
		{"gcc_gating.yaml", []Policy{
			{
				ProductVersions:  []string{"fedora-*"},
				DecisionContexts: []string{"bodhi_update_push_stable"},
				SubjectTypes:     []string{SubjectKojiBuild},
				Rules: []Rule{
					{Kind: RulePassingTestCase, TestCaseName: "fedora-ci.koji-build.tier0.functional"},
					{Kind: RulePassingTestCase, TestCaseName: "baseos-qe.koji-build.scratch-build.validation"},
				},
			},
			{
				ProductVersions:  []string{"rhel-9"},
				DecisionContexts: []string{"osci_compose_gate"},
				SubjectTypes:     []string{"*"},
				Rules: []Rule{
					{Kind: RulePassingTestCase, TestCaseName: "baseos-ci.brew-build.tier1-gating.functional"},
					{Kind: RulePassingTestCase, TestCaseName: "baseos-ci.brew-build.tier1-gating-p9.functional"},
					{Kind: RulePassingTestCase, TestCaseName: "baseos-qe.koji-build.scratch-build.validation"},
				},
			},
		}},
		{"llvm_gating.yaml", []Policy{{
			ProductVersions:  []string{"fedora-*"},
			DecisionContexts: []string{"bodhi_update_push_testing", "bodhi_update_push_stable", "bodhi_update_push_stable_critpath"},
			SubjectTypes:     []string{SubjectKojiBuild},
			Rules:            []Rule{{Kind: RulePassingTestCase, TestCaseName: "fedora-ci.koji-build.tier0.functional"}},
		}}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", "gating-yaml", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			pols, err := ParseRemotePolicies(tc.file, data)
			if err != nil {
				t.Fatal(err)
			}
			if len(pols) != len(tc.want) {
				t.Fatalf("got %d policies, want %d", len(pols), len(tc.want))
			}
			for i, p := range pols {
				w := tc.want[i]
				if !p.Remote || p.File != tc.file {
					t.Errorf("policy %d: Remote=%v File=%q", i, p.Remote, p.File)
				}
				if !slices.Equal(p.ProductVersions, w.ProductVersions) || !slices.Equal(p.DecisionContexts, w.DecisionContexts) ||
					!slices.Equal(p.SubjectTypes, w.SubjectTypes) {
					t.Errorf("policy %d: got %v %v %v", i, p.ProductVersions, p.DecisionContexts, p.SubjectTypes)
				}
				if len(p.Rules) != len(w.Rules) {
					t.Fatalf("policy %d: %d rules, want %d", i, len(p.Rules), len(w.Rules))
				}
				for j, r := range p.Rules {
					if r.Kind != w.Rules[j].Kind || r.TestCaseName != w.Rules[j].TestCaseName || r.HasScenario {
						t.Errorf("policy %d rule %d: %+v", i, j, r)
					}
				}
			}
		})
	}
}

var wantRE = regexp.MustCompile(`(?m)^# want: (\d+): (.*)$`)

// TestPolicyFiles loads testdata/{policies,remote}/*.good.yaml, which must
// load, and *.bad.yaml, whose "# want: LINE: TEXT" comments name every
// error expected as FILE:LINE: ...TEXT.
func TestPolicyFiles(t *testing.T) {
	for _, dir := range []string{"policies", "remote"} {
		remote := dir == "remote"
		paths, err := filepath.Glob(filepath.Join("testdata", dir, "*.yaml"))
		if err != nil || len(paths) == 0 {
			t.Fatalf("no test files in %s: %v", dir, err)
		}
		for _, path := range paths {
			t.Run(dir+"/"+filepath.Base(path), func(t *testing.T) {
				data, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				if remote {
					_, err = ParseRemotePolicies(path, data)
				} else {
					_, err = LoadPolicies(map[string][]byte{path: data})
				}
				if strings.HasSuffix(path, ".good.yaml") {
					if err != nil {
						t.Fatalf("unexpected error: %v", err)
					}
					return
				}
				if err == nil {
					t.Fatal("no error")
				}
				var pe *PolicyError
				if !errors.As(err, &pe) {
					t.Fatalf("error %v is not a *PolicyError", err)
				}
				wants := wantRE.FindAllStringSubmatch(string(data), -1)
				if len(wants) == 0 {
					t.Fatal("bad file has no '# want:' comment")
				}
				// Every error names the file and a line.
				lineRE := regexp.MustCompile(`^` + regexp.QuoteMeta(path) + `:[1-9][0-9]*: `)
				for _, l := range strings.Split(err.Error(), "\n") {
					if !lineRE.MatchString(l) {
						t.Errorf("error without file and line: %q", l)
					}
				}
				for _, w := range wants {
					line, _ := strconv.Atoi(w[1])
					prefix := path + ":" + strconv.Itoa(line) + ": "
					found := false
					for _, l := range strings.Split(err.Error(), "\n") {
						if strings.HasPrefix(l, prefix) && strings.Contains(l, w[2]) {
							found = true
						}
					}
					if !found {
						t.Errorf("want %q%s…, got:\n%v", prefix, w[2], err)
					}
				}
			})
		}
	}
}

func mustPolicies(t testing.TB, docs ...string) *PolicySet {
	t.Helper()
	files := map[string][]byte{}
	for i, d := range docs {
		files["p"+strconv.Itoa(i)+".yaml"] = []byte(d)
	}
	// Greenwave's tests gate a subject type of their own.
	ps, err := LoadPolicies(files, WithSubjectTypes("kind-of-magic"))
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

// TestParsePolicies ports Greenwave's policy parsing tests
// (greenwave/tests/test_policies.py and test_rules.py).
func TestParsePolicies(t *testing.T) {
	for _, tc := range []struct {
		name    string // the Greenwave test it comes from
		remote  bool
		yaml    string
		wantErr string // empty: must parse
		check   func(t *testing.T, ps []*Policy)
	}{
		{name: "test_parse_policies_missing_id", yaml: `
--- !Policy
product_versions: [fedora-rawhide]
decision_context: test
subject_type: compose
excluded_packages: []
rules:
  - !PassingTestCaseRule {test_case_name: compose.cloud.all}
`, wantErr: `policy (untitled): attribute "id" is required`},
		{name: "test_parse_policies_missing_product_versions", yaml: `
--- !Policy
id: test
decision_context: test
subject_type: compose
rules: []
`, wantErr: `policy "test": attribute "product_versions" is required`},
		{name: "test_parse_policies_missing_decision_context[Policy]", yaml: `
--- !Policy
id: test
product_versions: [fedora-rawhide]
subject_type: compose
rules: []
`, wantErr: "no decision contexts provided"},
		{name: "test_parse_policies_missing_decision_context[RemotePolicy]", remote: true, yaml: `
--- !Policy
id: test
product_versions: [fedora-rawhide]
rules: []
`, wantErr: "no decision contexts provided"},
		{name: "test_parse_policies_both_decision_contexts_set[RemotePolicy]", remote: true, yaml: `
--- !Policy
id: test
decision_context: test1
decision_contexts: [test1, test2]
rules: []
`, wantErr: `both properties "decision_contexts" and "decision_context" were set`},
		{name: "test_parse_policies_both_subject_types_set[RemotePolicy]", remote: true, yaml: `
--- !Policy
id: test
decision_context: test1
subject_type: test1
subject_types: [test1, test2]
rules: []
`, wantErr: `both properties "subject_types" and "subject_type" were set`},
		// Greenwave requires subject_type in server policies ("No subject
		// types provided"); factory2 defaults it to koji_build, as older
		// Greenwave did.
		{name: "test_parse_policies_missing_subject_type (deliberate deviation)", yaml: `
--- !Policy
id: test
product_versions: [fedora-rawhide]
decision_context: test1
rules: []
`, check: func(t *testing.T, ps []*Policy) {
			if !slices.Equal(ps[0].SubjectTypes, []string{SubjectKojiBuild}) {
				t.Errorf("subject types %v", ps[0].SubjectTypes)
			}
		}},
		{name: "test_misconfigured_policy_rules", yaml: `
--- !Policy
id: "taskotron_release_critical_tasks"
product_versions:
  - fedora-26
decision_context: bodhi_update_push_stable
subject_type: bodhi_update
rules:
  - {test_case_name: dist.abicheck}
`, wantErr: `policy "taskotron_release_critical_tasks": rules[0]: expected list of Rule objects`},
		{name: "test_passing_testcasename_with_scenario", yaml: `
--- !Policy
id: "rawhide_compose_sync_to_mirrors"
product_versions:
  - fedora-rawhide
decision_context: rawhide_compose_sync_to_mirrors
subject_type: compose
rules:
  - !PassingTestCaseRule {test_case_name: compose.install_default_upload,
  scenario: somescenario}
`, check: func(t *testing.T, ps []*Policy) {
			r := ps[0].Rules[0]
			if !r.HasScenario || r.Scenario != "somescenario" {
				t.Errorf("rule %+v", r)
			}
		}},
		{name: "test_parse_policies_remote_missing_id_is_ok", remote: true, yaml: `
--- !Policy
product_versions: [fedora-rawhide]
decision_context: test
subject_type: koji_build
rules:
  - !PassingTestCaseRule {test_case_name: test.case.name}
`, check: func(t *testing.T, ps []*Policy) {
			if len(ps) != 1 || ps[0].ID != "" {
				t.Errorf("got %+v", ps)
			}
		}},
		{name: "test_parse_policies_remote_decision_contexts", remote: true, yaml: `
--- !Policy
product_versions: [fedora-rawhide]
decision_contexts: [test1, test2]
subject_type: koji_build
rules: []
`, check: func(t *testing.T, ps []*Policy) {
			if !slices.Equal(ps[0].DecisionContexts, []string{"test1", "test2"}) {
				t.Errorf("got %v", ps[0].DecisionContexts)
			}
		}},
		{name: "test_parse_policies_remote_missing_subject_type_is_ok", remote: true, yaml: `
--- !Policy
product_versions: [fedora-rawhide]
decision_context: test
rules:
  - !PassingTestCaseRule {test_case_name: test.case.name}
`, check: func(t *testing.T, ps []*Policy) {
			if !slices.Equal(ps[0].SubjectTypes, []string{"*"}) || !ps[0].matchesSubjectType("anything") {
				t.Errorf("got %v", ps[0].SubjectTypes)
			}
		}},
		{name: "test_parse_policies_remote_recursive", remote: true, yaml: `
--- !Policy
id: test
product_versions: [fedora-rawhide]
decision_context: bodhi_update_push_stable_with_remoterule
subject_type: koji_build
rules:
  - !RemoteRule {}
`, wantErr: `policy "test": RemoteRule is not allowed in remote policies`},
		{name: "test_parse_policies_remote_multiple", remote: true, yaml: `
--- !Policy
id: test1
product_versions: [fedora-rawhide]
decision_context: test
rules:
  - !PassingTestCaseRule {test_case_name: test.case.name}

--- !Policy
id: test2
product_versions: [fedora-rawhide]
decision_context: test
rules:
  - !PassingTestCaseRule {test_case_name: test.case.name}
`, check: func(t *testing.T, ps []*Policy) {
			if len(ps) != 2 || ps[0].ID != "test1" || ps[1].ID != "test2" {
				t.Errorf("got %v", ps)
			}
		}},
		{name: "test_parse_policies_remote_subject_types", remote: true, yaml: `
--- !Policy
id: test1
decision_context: test
subject_type: koji_build
rules: []
--- !Policy
id: test2
decision_context: test
subject_type: redhat-module
rules: []
`, check: func(t *testing.T, ps []*Policy) {
			if ps[0].SubjectTypes[0] != SubjectKojiBuild || ps[1].SubjectTypes[0] != SubjectModule {
				t.Errorf("got %v %v", ps[0].SubjectTypes, ps[1].SubjectTypes)
			}
		}},
		{name: "test_parse_policies_remote_minimal", remote: true, yaml: `
id: test1
decision_context: test
rules: []
`, check: func(t *testing.T, ps []*Policy) {
			if len(ps) != 1 || ps[0].ID != "test1" || len(ps[0].Rules) != 0 || !slices.Equal(ps[0].ProductVersions, []string{"*"}) {
				t.Errorf("got %+v", ps[0])
			}
		}},
		{name: "test_parse_policies_remote_missing_rule_attribute", remote: true, yaml: `
--- !Policy
id: test
product_versions: [fedora-rawhide]
decision_context: test
rules:
  - !PassingTestCaseRule {test_case: test.case.name}
`, wantErr: `policy "test": rules[0]: !PassingTestCaseRule: attribute "test_case_name" is required`},
		{name: "test_parse_policies_unexpected_type", remote: true, yaml: `
--- !Policy
42
`, wantErr: "expected mapping for !Policy tagged object"},
		{name: "test_parse_policies_invalid_rule", yaml: `
--- !Policy
id: test
product_versions: [fedora-rawhide]
decision_context: test
subject_type: compose
excluded_packages: []
rules:
  - !PassingTestCaseRule {test_case_name: compose.cloud.all}
  - bad_rule
`, wantErr: `policy "test": rules[1]: expected list of Rule objects`},
		{name: "test_validate_gating_yaml_obsolete_rule", remote: true, yaml: `
--- !Policy
id: "test"
product_versions:
  - fedora-26
decision_context: test
rules:
  - !PackageSpecificBuild {
      test_case_name: osci.brew-build.tier0.functional,
      repos: ["avahi", "cockpit"]
    }
`, wantErr: `!PackageSpecificBuild is obsolete. Please use the "packages" allowlist instead.`},
		{name: "test_validate_gating_yaml_missing_optional_tag", remote: true, yaml: `
---
id: "test"
product_versions:
  - fedora-26
decision_context: test
rules:
  - !PassingTestCaseRule {test_case_name: test}
`},
		{name: "test_remote_rule_include_failures (bare !Policy)", remote: true, yaml: "--- !Policy",
			wantErr: "expected mapping for !Policy tagged object"},
		{name: "test_remote_rule_malformed_yaml (first fragment)", remote: true, yaml: `
--- !Policy
   : "some-policy-from-a-random-packager"
product_versions:
  - fedora-26
decision_context: bodhi_update_push_stable_with_remoterule
excluded_packages: []
rules:
  - !PassingTestCaseRule {test_case_name: dist.upgradepath}
`, wantErr: "YAML parser error"},
		{name: "test_passing_test_case_rule_replace_using_valid_times", yaml: `
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
`, check: func(t *testing.T, ps []*Policy) {
			want := time.Date(2021, 10, 6, 6, 0, 0, 0, time.UTC)
			if !ps[0].Rules[0].ValidUntil.Equal(want) || !ps[0].Rules[1].ValidSince.Equal(want) {
				t.Errorf("got %+v", ps[0].Rules)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var (
				ps  []*Policy
				err error
			)
			if tc.remote {
				ps, err = ParseRemotePolicies("gating.yaml", []byte(tc.yaml))
			} else {
				var set *PolicySet
				set, err = LoadPolicies(map[string][]byte{"policy.yaml": []byte(tc.yaml)})
				ps = set.Policies()
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.check != nil {
				tc.check(t, ps)
			}
		})
	}
}

// TestRemoteRuleRequiredFlag ports test_remote_rule_requiered_flag and
// test_remote_rule_requiered_flag_bad (greenwave/tests/test_rules.py): YAML
// 1.1 booleans as PyYAML reads them.
func TestRemoteRuleRequiredFlag(t *testing.T) {
	for flag, want := range map[string]bool{
		"true": true, "True": true, "on": true, "On": true, "ON": true, "yes": true, "Yes": true, "YES": true,
		"false": false, "False": false, "off": false, "Off": false, "OFF": false, "no": false, "No": false, "NO": false,
	} {
		ps, err := LoadPolicies(map[string][]byte{"p.yaml": []byte(`
--- !Policy
id: test
product_versions: [fedora-rawhide]
decision_context: test
subject_type: koji_build
rules:
  - !RemoteRule {required: ` + flag + `}
`)})
		if err != nil {
			t.Fatalf("%s: %v", flag, err)
		}
		if r := ps.Policies()[0].Rules[0]; r.Kind != RuleRemote || r.Required != want {
			t.Errorf("%s: got %+v", flag, r)
		}
	}
	for _, flag := range []string{`""`, "0", "1", "nope", "TRUe", "oN"} {
		_, err := LoadPolicies(map[string][]byte{"p.yaml": []byte(`
--- !Policy
id: test
product_versions: [fedora-rawhide]
decision_context: test
rules:
  - !RemoteRule {required: ` + flag + `}
`)})
		if err == nil || !strings.Contains(err.Error(), "expected a boolean value") {
			t.Errorf("%s: got %v", flag, err)
		}
	}
}

// TestValidDateBad ports test_remote_rule_valid_date_bad
// (greenwave/tests/test_rules.py).
func TestValidDateBad(t *testing.T) {
	for _, v := range []string{"False", `""`, "x"} {
		_, err := LoadPolicies(map[string][]byte{"p.yaml": []byte(`
--- !Policy
id: test
product_versions: [fedora-rawhide]
decision_context: test
rules:
  - !PassingTestCaseRule {test_case_name: some_test_case, valid_since: ` + v + `}
`)})
		if err == nil || !strings.Contains(err.Error(), "could not parse string as date/time") {
			t.Errorf("%s: got %v", v, err)
		}
	}
}

func TestPolicySetVersion(t *testing.T) {
	a := mustPolicies(t, "--- !Policy\nid: a\nproduct_versions: [x]\ndecision_context: c\nrules: []\n")
	b := mustPolicies(t, "--- !Policy\nid: a\nproduct_versions: [x]\ndecision_context: c\nrules: []\n")
	c := mustPolicies(t, "--- !Policy\nid: b\nproduct_versions: [x]\ndecision_context: c\nrules: []\n")
	if a.Version() != b.Version() || a.Version() == c.Version() || len(a.Version()) != 16 {
		t.Errorf("versions %s %s %s", a.Version(), b.Version(), c.Version())
	}
	tmp := t.TempDir()
	good, err := os.ReadFile(filepath.Join("testdata", "policies", "fedora.good.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"fedora.yaml": good, "ignored.yml": []byte("bogus: [")} {
		if err := os.WriteFile(filepath.Join(tmp, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dir, err := LoadPolicyDir(tmp)
	if err != nil {
		t.Fatal(err)
	}
	if len(dir.Policies()) != 4 || dir.Policies()[0].File != filepath.Join(tmp, "fedora.yaml") {
		t.Errorf("LoadPolicyDir: %d policies", len(dir.Policies()))
	}
	// The version hashes base names: the same files elsewhere, same version.
	if same := mustPolicies(t, string(good)); same.Version() == dir.Version() {
		t.Errorf("different file name, same version %s", same.Version())
	}
	if again, _ := LoadPolicies(map[string][]byte{"/elsewhere/fedora.yaml": good}); again.Version() != dir.Version() {
		t.Errorf("version depends on the directory: %s != %s", again.Version(), dir.Version())
	}
	if _, err := LoadPolicyDir(filepath.Join("testdata", "nonexistent")); err == nil {
		t.Error("LoadPolicyDir of a missing dir: no error")
	}
	// Errors from several files are all reported.
	_, err = LoadPolicies(map[string][]byte{
		"a.yaml": []byte("--- !Policy\nid: a\nbogus: 1\n"),
		"b.yaml": []byte("--- !Policy\nid: b\nother: 1\n"),
	})
	if err == nil || !strings.Contains(err.Error(), "a.yaml:3:") || !strings.Contains(err.Error(), "b.yaml:3:") {
		t.Errorf("got %v", err)
	}
}

// TestGlob checks Python fnmatch semantics.
func TestGlob(t *testing.T) {
	for _, tc := range []struct {
		pattern, s string
		want       bool
	}{
		{"fedora-*", "fedora-41", true},
		{"fedora-*", "fedora-", true},
		{"fedora-*", "epel-7", false},
		{"*", "", true},
		{"net*", "nethack", true},
		{"nethack", "nethack", true},
		{"nethack", "nethack2", false},
		{"python2-*", "python2-foo", true},
		{"module-build*", "module-build-service", true},
		{"rhel-?", "rhel-9", true},
		{"rhel-?", "rhel-10", false},
		{"rhel-[89]", "rhel-8", true},
		{"rhel-[!89]", "rhel-8", false},
		{"rhel-[!89]", "rhel-7", true},
		{"a/*", "a/b/c", true},
		{"[", "[", true},
		{"a.b", "axb", false},
		{"*-devel", "foo-devel", true},
		{"f*-x", "fedora-x", true},
		{"F*", "f", false},
	} {
		g, err := compileGlob(tc.pattern)
		if err != nil {
			t.Fatalf("%q: %v", tc.pattern, err)
		}
		if got := g.match(tc.s); got != tc.want {
			t.Errorf("fnmatch(%q, %q) = %v, want %v", tc.s, tc.pattern, got, tc.want)
		}
	}
}

// Greenwave reads a package's gating.yaml ignoring keys it does not know
// (safe_yaml.py, SafeYAMLObject.from_yaml): so do we, while a server
// policy with the same keys is an error.
func TestRemotePolicyIgnoresUnknownKeys(t *testing.T) {
	data, err := os.ReadFile("testdata/remote/unknown-keys.good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	pols, err := ParseRemotePolicies("gating.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	if len(pols) != 1 || len(pols[0].Rules) != 1 || pols[0].Rules[0].TestCaseName != "dist.rpmdeplint" {
		t.Fatalf("parsed %+v", pols)
	}
	server := strings.Replace(string(data), "decision_context: test", "id: p\ndecision_context: test", 1)
	if _, err := LoadPolicies(map[string][]byte{"server.yaml": []byte(server)}); err == nil ||
		!strings.Contains(err.Error(), `unknown key "maintainers_note"`) || !strings.Contains(err.Error(), `unknown key "comment"`) {
		t.Fatalf("server policy with unknown keys: %v", err)
	}
}
