package gating

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// GreenwaveDecision is the response body of Greenwave's
// POST /api/v1.0/decision (greenwave/decision.py make_decision). Requirement
// objects have Greenwave's per-type keys, so they are maps; encoding/json
// writes map keys sorted, so the encoding is deterministic.
type GreenwaveDecision struct {
	PoliciesSatisfied       bool             `json:"policies_satisfied"`
	Summary                 string           `json:"summary"`
	SatisfiedRequirements   []map[string]any `json:"satisfied_requirements"`
	UnsatisfiedRequirements []map[string]any `json:"unsatisfied_requirements"`
	// ApplicablePolicies is absent for a request with on-demand rules,
	// as in Greenwave.
	ApplicablePolicies *[]string `json:"applicable_policies,omitempty"`
	// Results and Waivers are present for verbose requests only.
	Results *[]map[string]any `json:"results,omitempty"`
	Waivers *[]map[string]any `json:"waivers,omitempty"`
}

// NoPoliciesError is Greenwave's 404: no policy applies to a subject at
// the requested decision contexts and product version.
type NoPoliciesError struct {
	SubjectType      string
	DecisionContexts []string
	ProductVersion   string
}

func (e *NoPoliciesError) Error() string {
	return fmt.Sprintf("Found no applicable policies for %s subjects at gating point(s) %s in %s",
		e.SubjectType, strings.Join(e.DecisionContexts, " "), e.ProductVersion)
}

// GreenwaveResponse combines the evaluations of one request (one per
// subject of the request, each evaluated with the request's contexts,
// product version and "when") into Greenwave's response. It returns a
// *NoPoliciesError when a subject has no applicable policy and its type
// does not ignore that (Greenwave answers 404 then).
func GreenwaveResponse(verbose bool, evals ...*Evaluation) (*GreenwaveDecision, error) {
	resp := &GreenwaveDecision{
		PoliciesSatisfied:       true,
		SatisfiedRequirements:   []map[string]any{},
		UnsatisfiedRequirements: []map[string]any{},
	}
	applicable := []string{}
	var all []Answer
	results, waivers := []map[string]any{}, []map[string]any{}
	seenResults, seenWaivers := map[string]bool{}, map[string]bool{}
	for _, ev := range evals {
		if ev.NoApplicablePolicies && !ev.IgnoreMissingPolicy {
			return nil, &NoPoliciesError{SubjectType: ev.SubjectType, DecisionContexts: ev.DecisionContexts, ProductVersion: ev.ProductVersion}
		}
		applicable = append(applicable, ev.ApplicablePolicies...)
		for i := range ev.Answers {
			a := &ev.Answers[i]
			all = append(all, *a)
			if a.Satisfied {
				resp.SatisfiedRequirements = append(resp.SatisfiedRequirements, answerJSON(a))
			} else {
				resp.PoliciesSatisfied = false
				resp.UnsatisfiedRequirements = append(resp.UnsatisfiedRequirements, answerJSON(a))
			}
		}
		for i := range ev.Results {
			r := &ev.Results[i]
			id := r.ResultID + "\x00" + r.Event.ID
			if !seenResults[id] {
				seenResults[id] = true
				results = append(results, resultJSON(ev, r))
			}
		}
		for i := range ev.Waivers {
			w := &ev.Waivers[i]
			id := w.WaiverID + "\x00" + w.Event.ID
			if !seenWaivers[id] {
				seenWaivers[id] = true
				waivers = append(waivers, waiverJSON(ev, w))
			}
		}
	}
	resp.ApplicablePolicies = &applicable
	resp.Summary = summarize(all)
	if verbose {
		resp.Results, resp.Waivers = &results, &waivers
	}
	return resp, nil
}

// jsonID writes a numeric id as a JSON number, as ResultsDB and WaiverDB
// do, and anything else as a string.
func jsonID(id string) any {
	switch {
	case id == "":
		return nil
	case isDigits(id):
		if t := strings.TrimLeft(id, "0"); t != "" {
			return json.Number(t)
		}
		return json.Number("0")
	}
	return id
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// itemDict is Greenwave's Subject.to_dict (the backwards compatible
// "item" of unsatisfied requirements).
func itemDict(subjectType, id string) map[string]any {
	if subjectType == SubjectCompose {
		return map[string]any{"productmd.compose.id": id}
	}
	return map[string]any{"type": subjectType, "item": id}
}

func answerJSON(a *Answer) map[string]any {
	r := &a.Requirement
	m := map[string]any{
		"type":               r.Type,
		"subject_type":       r.SubjectType,
		"subject_identifier": r.SubjectID,
	}
	// Greenwave's source is the remote rule file URL for rules from a
	// gating.yaml and null for server policies.
	var source any
	if a.Remote {
		source = r.Source
	}
	resultData := func() {
		m["testcase"] = r.Testcase
		m["source"] = source
		m["result_id"] = jsonID(r.ResultID)
		m["scenario"] = nullable(r.Scenario)
		m["system_architecture"] = nullable(r.SystemArch)
		m["system_variant"] = nullable(r.SystemVariant)
	}
	switch a.kind {
	case kindPassed:
		resultData()
	case kindIncomplete, kindFailed:
		resultData()
		m["item"] = itemDict(r.SubjectType, r.SubjectID)
	case kindErrored:
		resultData()
		m["item"] = itemDict(r.SubjectType, r.SubjectID)
		m["error_reason"] = nullable(r.Detail)
	case kindMissing:
		m["testcase"] = r.Testcase
		m["scenario"] = nullable(r.Scenario)
		m["source"] = source
		m["item"] = itemDict(r.SubjectType, r.SubjectID)
	case kindFetched:
		m["testcase"] = r.Testcase
		m["source"] = r.Source
	case kindExcluded:
		delete(m, "subject_type")
		m["policy"] = a.PolicyID
		m["source"] = source
	case kindInvalidYAML:
		m["testcase"] = r.Testcase
		m["scenario"] = nil
		m["source"] = r.Source
		m["details"] = r.Detail
	case kindMissingYAML, kindPendingYAML:
		m["testcase"] = r.Testcase
		m["scenario"] = nil
		m["sources"] = append([]string{}, a.Sources...)
	case kindFailedFetch:
		m["testcase"] = r.Testcase
		m["scenario"] = nil
		m["sources"] = append([]string{}, a.Sources...)
		m["error"] = r.Detail
	}
	if a.Waived {
		delete(m, "item")
		m["waiver_id"] = jsonID(r.WaiverID)
	}
	return m
}

const greenwaveTime = "2006-01-02T15:04:05.000000"

func formatTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(greenwaveTime)
}

// resultJSON is a ResultsDB result as Greenwave's verbose response lists
// it.
func resultJSON(ev *Evaluation, r *ResultView) map[string]any {
	data := map[string]any{"type": []string{r.SubjectType}}
	if r.SubjectType == SubjectCompose {
		data["productmd.compose.id"] = []string{ev.SubjectID}
	} else {
		data["item"] = []string{ev.SubjectID}
	}
	for k, v := range map[string]string{"scenario": r.Scenario, "system_architecture": r.SystemArch, "system_variant": r.SystemVariant} {
		if v != "" {
			data[k] = []string{v}
		}
	}
	return map[string]any{
		"id":          jsonID(r.ResultID),
		"testcase":    map[string]any{"name": r.Testcase},
		"outcome":     r.Outcome,
		"submit_time": formatTime(r.Event.Time),
		"ref_url":     nullable(r.RefURL),
		"data":        data,
	}
}

// waiverJSON is a WaiverDB waiver as Greenwave's verbose response lists it.
func waiverJSON(ev *Evaluation, w *WaiverView) map[string]any {
	var scenario any
	if !w.AllScenarios {
		scenario = w.Scenario
	}
	return map[string]any{
		"id":                 jsonID(w.WaiverID),
		"subject_type":       w.SubjectType,
		"subject_identifier": ev.SubjectID,
		"testcase":           w.Testcase,
		"scenario":           scenario,
		"product_version":    w.ProductVersion,
		"waived":             w.Waived,
		"username":           w.User,
		"proxied_by":         nullable(w.ProxiedBy),
		"comment":            w.Comment,
		"timestamp":          formatTime(w.Event.Time),
	}
}
