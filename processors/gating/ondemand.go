package gating

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// On-demand rules: Greenwave's POST /api/v1.0/decision takes "rules" in
// the request body instead of a decision_context, and evaluates them as
// an OnDemandPolicy (greenwave/policies.py) made of the request itself.
// The policy is built the way Greenwave builds it (create_from_json, then
// SafeYAMLObject.from_value), so it takes the same attributes and fails
// with the same messages, in the same order.

// onDemandDefaults are the attributes create_from_json gives an
// OnDemandPolicy before the request's own.
const (
	onDemandID      = "on-demand-policy"
	onDemandContext = "on-demand-policy"
)

// OnDemandPolicy builds Greenwave's OnDemandPolicy from a decision
// request (a JSON object, already checked to have rules and a string
// product_version) for one subject type: id (default "on-demand-policy"),
// product_versions (default: the request's product_version), rules,
// packages and excluded_packages come from the request. It applies to any
// subject type and to no decision context in particular. The error is
// Greenwave's message, without its "Failed to parse on demand policy: "
// prefix.
func OnDemandPolicy(request map[string]json.RawMessage, productVersion, subjectType string) (*Policy, error) {
	attr := func(name string, err error) error { return fmt.Errorf("Attribute '%s': %w", name, err) }
	pol := &Policy{
		ID:               onDemandID,
		ProductVersions:  []string{productVersion},
		DecisionContexts: []string{onDemandContext},
		SubjectTypes:     []string{NormalizeSubjectType(subjectType)},
		anySubjectType:   true,
		onDemand:         true,
	}
	// from_value reads the attributes in Policy.safe_yaml_attributes
	// order and stops at the first problem.
	if v, ok := present(request, "id"); ok {
		pol.ID = pyStr(v)
	}
	if v, ok := present(request, "product_versions"); ok {
		pvs, err := strList(v)
		if err != nil {
			return nil, attr("product_versions", err)
		}
		pol.ProductVersions = pvs
	}
	for _, name := range []string{"decision_contexts", "subject_types"} {
		if v, ok := present(request, name); ok {
			if _, err := strList(v); err != nil {
				return nil, attr(name, err)
			}
		}
	}
	rules, err := onDemandRules(request["rules"])
	if err != nil {
		return nil, attr("rules", err)
	}
	pol.Rules = rules
	for _, f := range []struct {
		name string
		dst  *[]string
	}{{"excluded_packages", &pol.ExcludedPackages}, {"packages", &pol.Packages}} {
		if v, ok := present(request, f.name); ok {
			if *f.dst, err = strList(v); err != nil {
				return nil, attr(f.name, err)
			}
		}
	}
	for _, g := range []struct {
		name     string
		patterns []string
		dst      *globs
	}{
		{"product_versions", pol.ProductVersions, &pol.pvGlobs},
		{"excluded_packages", pol.ExcludedPackages, &pol.exclGlobs},
		{"packages", pol.Packages, &pol.pkgGlobs},
	} {
		for _, pat := range g.patterns {
			c, err := compileGlob(pat)
			if err != nil {
				return nil, attr(g.name, err)
			}
			*g.dst = append(*g.dst, c)
		}
	}
	return pol, nil
}

// onDemandRules is SafeYAMLList(Rule).from_value over JSON: every object
// needs a "type" naming a rule class (PassingTestCaseRule, RemoteRule;
// the obsolete ones fail as they do in YAML), and anything that is not an
// object fails the list's type check after the objects.
func onDemandRules(raw json.RawMessage) ([]Rule, error) {
	errNotRules := errors.New("Expected list of Rule objects")
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, errNotRules
	}
	rules := make([]Rule, 0, len(items))
	notObject := false
	for _, it := range items {
		var m map[string]json.RawMessage
		if json.Unmarshal(it, &m) != nil || m == nil {
			notObject = true
			continue
		}
		typ, ok := present(m, "type")
		if !ok || !truthy(typ) {
			return nil, errors.New("Key 'type' is required for each list item")
		}
		var (
			r   Rule
			err error
		)
		switch name := pyStr(typ); name {
		case "PassingTestCaseRule":
			r, err = onDemandTestCaseRule(m)
		case "RemoteRule":
			r, err = onDemandRemoteRule(m)
		case "PackageSpecificBuild", "FedoraAtomicCi":
			err = fmt.Errorf(`!%s is obsolete. Please use the "packages" allowlist instead.`, name)
		default:
			err = fmt.Errorf("Key 'type' for an list item is not valid: %s", name)
		}
		if err != nil {
			return nil, err
		}
		r.k = r.key()
		rules = append(rules, r)
	}
	if notObject {
		return nil, errNotRules
	}
	return rules, nil
}

func onDemandTestCaseRule(m map[string]json.RawMessage) (Rule, error) {
	r := Rule{Kind: RulePassingTestCase}
	v, ok := present(m, "test_case_name")
	if !ok {
		return r, errors.New("Attribute 'test_case_name' is required")
	}
	r.TestCaseName = pyStr(v)
	if v, ok := present(m, "scenario"); ok {
		r.Scenario, r.HasScenario = pyStr(v), true
	}
	for _, f := range []struct {
		name string
		dst  *time.Time
	}{{"valid_since", &r.ValidSince}, {"valid_until", &r.ValidUntil}} {
		if v, ok := present(m, f.name); ok {
			t, ok := parseTime(pyStr(v))
			if !ok {
				return r, fmt.Errorf("Attribute '%s': Could not parse string as date/time, got: %s", f.name, pyStr(v))
			}
			*f.dst = t
		}
	}
	return r, nil
}

func onDemandRemoteRule(m map[string]json.RawMessage) (Rule, error) {
	r := Rule{Kind: RuleRemote}
	if v, ok := present(m, "sources"); ok {
		srcs, err := strList(v)
		if err != nil {
			return r, fmt.Errorf("Attribute 'sources': %w", err)
		}
		r.Sources = srcs
	}
	if v, ok := present(m, "required"); ok {
		if err := json.Unmarshal(v, &r.Required); err != nil {
			return r, fmt.Errorf("Attribute 'required': Expected a boolean value, got: %s", pyStr(v))
		}
	}
	return r, nil
}

// present returns the value of key unless it is absent or null (which
// from_value treats alike: the attribute's default).
func present(m map[string]json.RawMessage, key string) (json.RawMessage, bool) {
	v, ok := m[key]
	v = bytes.TrimSpace(v)
	if !ok || len(v) == 0 || string(v) == "null" {
		return nil, false
	}
	return v, true
}

// strList is SafeYAMLList(str): a list of strings.
func strList(v json.RawMessage) ([]string, error) {
	var out []string
	if err := json.Unmarshal(v, &out); err != nil {
		return nil, errors.New("Expected list of str objects")
	}
	return out, nil
}

// truthy is Python's truth of a JSON value: null, false, 0, "", [] and {}
// are false.
func truthy(v json.RawMessage) bool {
	v = bytes.TrimSpace(v)
	switch string(v) {
	case "", "null", "false", `""`:
		return false
	}
	switch v[0] {
	case '[', '{':
		var n []json.RawMessage
		if json.Unmarshal(v, &n) == nil {
			return len(n) > 0
		}
		var m map[string]json.RawMessage
		return json.Unmarshal(v, &m) != nil || len(m) > 0
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		f, err := strconv.ParseFloat(string(v), 64)
		return err != nil || f != 0
	}
	return true
}

// pyStr is Python's str() of a JSON value, as SafeYAMLString.from_value
// takes it: a string is itself, true and false are True and False, a
// number or anything else its JSON text.
func pyStr(v json.RawMessage) string {
	var s string
	if json.Unmarshal(v, &s) == nil {
		return s
	}
	switch string(bytes.TrimSpace(v)) {
	case "true":
		return "True"
	case "false":
		return "False"
	}
	return string(bytes.TrimSpace(v))
}
