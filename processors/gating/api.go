package gating

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// API answers queries from the materialized subject state: Greenwave's
// POST /api/v1.0/decision and GET /api/v1.0/policies, so Bodhi and other
// Greenwave clients can point at factory2 unchanged, and factory2's own
// GET /api/v1/why/{subject} behind `factory2 why`.
//
// Answers come from the committed state of the instance that owns the
// subject's partition; a subject owned by another instance gets 503 with
// the reason (scatter-gather across instances is future work).
type API struct {
	engine *Engine
	get    Getter
}

// NewAPI returns an API reading subjects through get (for example a
// processors.Runner).
func NewAPI(e *Engine, get Getter) *API { return &API{engine: e, get: get} }

// Handler registers routes on a mux.
type Handler interface {
	Handle(pattern string, h http.Handler)
}

// Register adds the API's routes to mux.
func (a *API) Register(mux Handler) {
	mux.Handle("POST /api/v1.0/decision", http.HandlerFunc(a.decision))
	mux.Handle("GET /api/v1.0/policies", http.HandlerFunc(a.policies))
	mux.Handle("GET /api/v1/why/{subject}", http.HandlerFunc(a.why))
}

// decisionRequest is a parsed decision request (Greenwave's
// POST /api/v1.0/decision body).
type decisionRequest struct {
	contexts       []string
	productVersion string
	subjects       []subjectRef
	// onDemand are the request's on-demand rules as Greenwave's
	// OnDemandPolicy, one per subject as Greenwave builds them; nil when
	// the request names decision contexts instead.
	onDemand      []*Policy
	verbose       bool
	when          time.Time
	ignoreResults []string
	ignoreWaivers []string
}

type subjectRef struct{ typ, id string }

// requestError is a decision request refused: the status and Greenwave's
// message ({"message": ...}).
type requestError struct {
	status int
	msg    string
}

func badRequest(format string, args ...any) *requestError {
	return &requestError{http.StatusBadRequest, fmt.Sprintf(format, args...)}
}

// maxDecisionBody bounds a decision request's body.
const maxDecisionBody = 1 << 20

// decision answers Greenwave's POST /api/v1.0/decision: read the request
// (readDecisionBody), parse it as Greenwave's make_decision does
// (parseDecisionRequest), evaluate each subject, and combine the answers
// (GreenwaveResponse). Errors are Greenwave's statuses and messages.
func (a *API) decision(w http.ResponseWriter, r *http.Request) {
	body, rerr := readDecisionBody(w, r)
	if rerr == nil {
		var req *decisionRequest
		if req, rerr = parseDecisionRequest(body); rerr == nil {
			rerr = a.decide(w, req)
		}
	}
	if rerr != nil {
		apiError(w, rerr.status, rerr.msg)
	}
}

// decide evaluates req and writes the decision.
func (a *API) decide(w http.ResponseWriter, req *decisionRequest) *requestError {
	q := Query{DecisionContexts: req.contexts, ProductVersion: req.productVersion, Verbose: req.verbose,
		When: req.when, IgnoreResults: req.ignoreResults, IgnoreWaivers: req.ignoreWaivers}
	if req.onDemand != nil {
		q.Policies = req.onDemand
	}
	evals := make([]*Evaluation, 0, len(req.subjects))
	for _, sr := range req.subjects {
		s, err := LoadSubject(a.get, []byte(sr.id))
		if err != nil {
			return &requestError{http.StatusServiceUnavailable, err.Error()}
		}
		if s.ID == "" {
			s.ID = sr.id // never seen: evaluated as having nothing
		}
		q.SubjectType = sr.typ
		evals = append(evals, a.engine.Evaluate(s, q))
	}
	resp, err := GreenwaveResponse(req.verbose, evals...)
	var np *NoPoliciesError
	switch {
	case errors.As(err, &np):
		return &requestError{http.StatusNotFound, err.Error()}
	case err != nil:
		return &requestError{http.StatusInternalServerError, err.Error()}
	}
	if req.onDemand != nil {
		resp.ApplicablePolicies = nil // Greenwave leaves it out for on-demand rules
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// readDecisionBody checks the content type and reads the body of a
// decision request. A content type other than JSON (application/json or
// application/*+json) is refused with 415 and Flask's message, as
// Greenwave's request.get_json() does; a body over maxDecisionBody with
// 413, one not received within the server's read timeout with 408,
// invalid UTF-8 (which encoding/json would silently replace with U+FFFD)
// with 400.
func readDecisionBody(w http.ResponseWriter, r *http.Request) ([]byte, *requestError) {
	if !isJSONContentType(r.Header.Get("Content-Type")) {
		return nil, &requestError{http.StatusUnsupportedMediaType,
			"Did not attempt to load JSON data because the request Content-Type was not 'application/json'."}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxDecisionBody))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return nil, &requestError{http.StatusRequestEntityTooLarge, fmt.Sprintf("Request body exceeds %d bytes", maxDecisionBody)}
	case errors.Is(err, os.ErrDeadlineExceeded):
		return nil, &requestError{http.StatusRequestTimeout, "Timed out reading the request body"}
	case err != nil:
		return nil, badRequest("Reading the request body: %v", err)
	}
	if off := invalidUTF8(body); off >= 0 {
		return nil, badRequest("Invalid JSON: invalid UTF-8 at byte offset %d (0x%02x)", off, body[off])
	}
	return body, nil
}

// isJSONContentType is werkzeug's Request.is_json: the media type is
// application/json or application/*+json.
func isJSONContentType(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	return mt == "application/json" || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))
}

// parseDecisionRequest is the checking half of Greenwave's make_decision
// (greenwave/decision.py), in its order and with its messages: an empty
// payload (415), product_version, decision_context or rules (not both),
// the on-demand policy built from the rules, verbose (a bool), when,
// then the subjects. It goes further where Greenwave would fail with 500
// (a body that is not an object, a value of the wrong type): 400 naming
// the field.
func parseDecisionRequest(body []byte) (*decisionRequest, *requestError) {
	if !json.Valid(body) {
		var top any
		return nil, badRequest("Invalid JSON: %v", json.Unmarshal(body, &top))
	}
	if !truthy(body) {
		return nil, &requestError{http.StatusUnsupportedMediaType, "No JSON payload in request"}
	}
	var data map[string]json.RawMessage
	if err := json.Unmarshal(body, &data); err != nil {
		return nil, badRequest("Invalid JSON: the body must be a JSON object")
	}
	req := &decisionRequest{}

	pv, ok := data["product_version"]
	if !ok || !truthy(pv) {
		return nil, badRequest("Missing required product version")
	}
	if json.Unmarshal(pv, &req.productVersion) != nil {
		return nil, badRequest("Invalid product_version, must be a string")
	}
	dc, hasDC := data["decision_context"]
	rules, hasRules := data["rules"]
	hasRules = hasRules && truthy(rules)
	if !hasRules && (!hasDC || !truthy(dc)) {
		return nil, badRequest("Either decision_context or rules is required.")
	}
	if hasRules && hasDC && string(bytes.TrimSpace(dc)) != "[]" {
		// Greenwave turns any value but a list into a one-element list.
		return nil, badRequest("Cannot have both decision_context and rules")
	}
	if hasDC && !hasRules {
		var err error
		if req.contexts, err = contextList(dc); err != nil {
			return nil, badRequest("%v", err)
		}
	}
	if hasRules {
		// Greenwave builds the on-demand policy subject by subject, so
		// that a bad subject before the first good one is reported first.
		req.onDemand = []*Policy{}
		if rerr := forEachSubject(data, func(sr subjectRef) *requestError {
			pol, err := OnDemandPolicy(data, req.productVersion, sr.typ)
			if err != nil {
				return badRequest("Failed to parse on demand policy: %v", err)
			}
			req.onDemand = append(req.onDemand, pol)
			return nil
		}); rerr != nil {
			return nil, rerr
		}
	}
	if v, ok := data["verbose"]; ok {
		if json.Unmarshal(v, &req.verbose) != nil || string(bytes.TrimSpace(v)) == "null" {
			return nil, badRequest("Invalid verbose flag, must be a bool")
		}
	}
	if v, ok := data["when"]; ok && truthy(v) {
		var when string
		var err error
		if json.Unmarshal(v, &when) == nil {
			req.when, err = parseWhen(when)
		}
		if when == "" || err != nil {
			return nil, badRequest(`Invalid "when" parameter, must be in ISO8601 format`)
		}
	}
	var rerr *requestError
	if req.ignoreResults, rerr = idList(data, "ignore_result"); rerr != nil {
		return nil, rerr
	}
	if req.ignoreWaivers, rerr = idList(data, "ignore_waiver"); rerr != nil {
		return nil, rerr
	}
	if rerr := forEachSubject(data, func(sr subjectRef) *requestError {
		req.subjects = append(req.subjects, sr)
		return nil
	}); rerr != nil {
		return nil, rerr
	}
	return req, nil
}

// forEachSubject is Greenwave's _decision_subjects_for_request: the
// subjects of a "subject" list (which wins when present), else the one of
// subject_type and subject_identifier; fn is called on each in turn, as
// it is parsed.
func forEachSubject(data map[string]json.RawMessage, fn func(subjectRef) *requestError) *requestError {
	if raw, ok := data["subject"]; ok {
		var list []map[string]json.RawMessage
		if json.Unmarshal(raw, &list) != nil || len(list) == 0 ||
			slices.ContainsFunc(list, func(m map[string]json.RawMessage) bool { return m == nil }) {
			return badRequest("Invalid subject, must be a list of dicts")
		}
		for _, m := range list {
			sr, rerr := subjectFromData(m)
			if rerr == nil {
				rerr = fn(sr)
			}
			if rerr != nil {
				return rerr
			}
		}
		return nil
	}
	typ, ok := data["subject_type"]
	if !ok {
		return badRequest(`Missing required "subject_type" parameter`)
	}
	id, ok := data["subject_identifier"]
	if !ok {
		return badRequest(`Missing required "subject_identifier" parameter`)
	}
	var sr subjectRef
	if json.Unmarshal(typ, &sr.typ) != nil {
		return badRequest("Invalid subject_type, must be a string")
	}
	if json.Unmarshal(id, &sr.id) != nil {
		return badRequest("Subject item/identificator must be a string")
	}
	return fn(sr)
}

// itemKeys are the subject types whose subjects a "subject" entry can
// name by a key of their own (item_key in Greenwave's subject type
// configuration), in the order Greenwave tries them.
var itemKeys = []struct{ typ, key string }{
	{SubjectCompose, "productmd.compose.id"},
	{SubjectKojiBuild, "original_spec_nvr"},
	{SubjectContainerImage, "nvr"},
}

// subjectFromData is Greenwave's create_subject_from_data: the first
// subject type (of the entry's "type", when it has one) whose item key the
// entry has, else "type" and "item".
func subjectFromData(m map[string]json.RawMessage) (subjectRef, *requestError) {
	var typ string
	if v, ok := present(m, "type"); ok {
		typ = pyStr(v)
	}
	for _, k := range itemKeys {
		if typ != "" && typ != k.typ {
			continue
		}
		if v, ok := m[k.key]; ok && truthy(v) {
			return subjectRef{k.typ, pyStr(v)}, nil
		}
	}
	if v, ok := m["item"]; ok && truthy(v) && typ != "" {
		var id string
		if json.Unmarshal(v, &id) != nil {
			return subjectRef{}, badRequest("Subject item/identificator must be a string")
		}
		return subjectRef{typ, id}, nil
	}
	return subjectRef{}, badRequest("Could not detect subject_identifier")
}

// idList reads ignore_result or ignore_waiver: result or waiver ids, as
// numbers (ResultsDB's and WaiverDB's) or strings (any id, such as the
// event id a result without a ResultsDB id is known by).
func idList(data map[string]json.RawMessage, key string) ([]string, *requestError) {
	v, ok := present(data, key)
	if !ok {
		return nil, nil
	}
	var items []json.RawMessage
	if json.Unmarshal(v, &items) != nil {
		return nil, badRequest("Invalid %s, must be a list of ids", key)
	}
	out := make([]string, len(items))
	for i, it := range items {
		var n json.Number
		if json.Unmarshal(it, &out[i]) != nil && json.Unmarshal(it, &n) != nil {
			return nil, badRequest("Invalid %s, must be a list of ids", key)
		}
		if n != "" {
			out[i] = n.String()
		}
	}
	return out, nil
}

// invalidUTF8 returns the offset of the first byte of b that is not part
// of valid UTF-8, or -1 when b is valid.
func invalidUTF8(b []byte) int {
	if utf8.Valid(b) {
		return -1
	}
	for off := 0; off < len(b); {
		r, n := utf8.DecodeRune(b[off:])
		if r == utf8.RuneError && n == 1 {
			return off
		}
		off += n
	}
	return -1 // unreachable: utf8.Valid said otherwise
}

func contextList(raw json.RawMessage) ([]string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var one string
	if err := json.Unmarshal(raw, &one); err == nil {
		if one == "" {
			return nil, nil
		}
		return []string{one}, nil
	}
	var many []string
	if err := json.Unmarshal(raw, &many); err != nil {
		return nil, errors.New("decision_context must be a string or a list of strings")
	}
	return many, nil
}

func parseWhen(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999", "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("Invalid when: %q is not an ISO 8601 time", s)
}

// policies answers GET /api/v1.0/policies as Greenwave does: every
// attribute of each policy (Policy.to_json: decision_context or
// decision_contexts and subject_type or subject_types as written, the
// other null or empty), each rule as its to_json has it. It adds
// valid_since and valid_until to the rules that have them, and
// policy_version.
func (a *API) policies(w http.ResponseWriter, _ *http.Request) {
	out := []map[string]any{}
	for _, p := range a.engine.Policies().Policies() {
		out = append(out, policyJSON(p))
	}
	writeJSON(w, http.StatusOK, map[string]any{"policies": out, "policy_version": a.engine.Policies().Version()})
}

func policyJSON(p *Policy) map[string]any {
	rules := []map[string]any{}
	for _, r := range p.Rules {
		m := map[string]any{"rule": r.Kind.String()}
		switch r.Kind {
		case RulePassingTestCase:
			m["test_case_name"] = r.TestCaseName
			m["scenario"] = nil
			if r.HasScenario {
				m["scenario"] = r.Scenario
			}
			if !r.ValidSince.IsZero() {
				m["valid_since"] = r.ValidSince.Format(time.RFC3339)
			}
			if !r.ValidUntil.IsZero() {
				m["valid_until"] = r.ValidUntil.Format(time.RFC3339)
			}
		case RuleRemote:
			m["required"] = r.Required
			m["sources"] = nonNil(r.Sources)
		}
		rules = append(rules, m)
	}
	// One of the single and list forms, as written.
	single := func(ok bool, vs []string) (any, []string) {
		if ok && len(vs) == 1 {
			return vs[0], []string{}
		}
		return nil, nonNil(vs)
	}
	dc, dcs := single(p.singleContext, p.DecisionContexts)
	st, sts := single(p.singleSubjectType, p.SubjectTypes)
	return map[string]any{
		"id":                p.ID,
		"product_versions":  nonNil(p.ProductVersions),
		"decision_context":  dc,
		"decision_contexts": dcs,
		"subject_type":      st,
		"subject_types":     sts,
		"rules":             rules,
		"packages":          nonNil(p.Packages),
		"excluded_packages": nonNil(append(append([]string{}, p.ExcludedPackages...), p.Blacklist...)),
		"relevance_key":     nullable(p.RelevanceKey),
		"relevance_value":   nullable(p.RelevanceValue),
	}
}

// why answers "why is this (not) ready?": every decision the subject
// gets (or the ones asked for with ?context= and ?product_version=), with
// what is satisfied, what is missing, pending or failing, and since when.
// ?format=text gives the text `factory2 why` prints.
func (a *API) why(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("subject")
	s, err := LoadSubject(a.get, []byte(id))
	if err != nil {
		apiError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	if s.ID == "" {
		apiError(w, http.StatusNotFound, fmt.Sprintf("no event about %s has been seen", id))
		return
	}
	qv := r.URL.Query()
	contexts, pv, typ := qv["context"], qv.Get("product_version"), qv.Get("subject_type")
	var evals []*Evaluation
	if len(contexts) > 0 || pv != "" {
		if len(contexts) == 0 || pv == "" {
			apiError(w, http.StatusBadRequest, "give both context and product_version, or neither")
			return
		}
		evals = append(evals, a.engine.Evaluate(s, Query{SubjectType: typ, DecisionContexts: contexts, ProductVersion: pv, Verbose: true}))
	} else {
		for _, k := range a.engine.DecisionKeys(s) {
			if typ != "" && NormalizeSubjectType(typ) != k.SubjectType {
				continue
			}
			evals = append(evals, a.engine.Evaluate(s, Query{SubjectType: k.SubjectType, DecisionContexts: []string{k.DecisionContext}, ProductVersion: k.ProductVersion, Verbose: true}))
		}
	}
	if qv.Get("format") == "text" {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		var b strings.Builder
		if len(evals) == 0 {
			fmt.Fprintf(&b, "%s: no policy applies (product version %q)\n", id, strings.Join(a.engine.ProductVersions(s, s.primaryType()), ","))
		}
		for _, ev := range evals {
			_ = ev.WriteText(&b)
		}
		fmt.Fprint(w, b.String())
		return
	}
	out := make([]map[string]any, 0, len(evals))
	for _, ev := range evals {
		var text strings.Builder
		_ = ev.WriteText(&text)
		resp, _ := GreenwaveResponse(true, ev)
		out = append(out, map[string]any{
			"subject_type":     ev.SubjectType,
			"subject_id":       ev.SubjectID,
			"decision_context": strings.Join(ev.DecisionContexts, ","),
			"product_version":  ev.ProductVersion,
			"policy_version":   ev.PolicyVersion,
			"decision":         resp,
			"text":             text.String(),
		})
	}
	writeJSON(w, http.StatusOK, map[string]any{"subject": id, "decisions": out})
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func apiError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"message": msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}
