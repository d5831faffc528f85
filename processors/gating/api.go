package gating

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
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

// decisionRequest is Greenwave's request body.
type decisionRequest struct {
	DecisionContext   json.RawMessage  `json:"decision_context"`
	ProductVersion    string           `json:"product_version"`
	SubjectType       string           `json:"subject_type"`
	SubjectIdentifier string           `json:"subject_identifier"`
	Subject           []map[string]any `json:"subject"`
	Verbose           bool             `json:"verbose"`
	When              string           `json:"when"`
	IgnoreResult      []json.Number    `json:"ignore_result"`
	IgnoreWaiver      []json.Number    `json:"ignore_waiver"`
}

type subjectRef struct{ typ, id string }

// maxDecisionBody bounds a decision request's body.
const maxDecisionBody = 1 << 20

func (a *API) decision(w http.ResponseWriter, r *http.Request) {
	req, status, err := readDecisionRequest(w, r)
	if err != nil {
		apiError(w, status, err.Error())
		return
	}
	contexts, err := contextList(req.DecisionContext)
	if err != nil {
		apiError(w, http.StatusBadRequest, err.Error())
		return
	}
	if len(contexts) == 0 {
		apiError(w, http.StatusBadRequest, "Missing required decision context")
		return
	}
	if req.ProductVersion == "" {
		apiError(w, http.StatusBadRequest, "Missing required product version")
		return
	}
	subjects, err := req.subjects()
	if err != nil {
		apiError(w, http.StatusBadRequest, err.Error())
		return
	}
	q := Query{DecisionContexts: contexts, ProductVersion: req.ProductVersion, Verbose: req.Verbose}
	if req.When != "" {
		if q.When, err = parseWhen(req.When); err != nil {
			apiError(w, http.StatusBadRequest, err.Error())
			return
		}
	}
	for _, n := range req.IgnoreResult {
		q.IgnoreResults = append(q.IgnoreResults, n.String())
	}
	for _, n := range req.IgnoreWaiver {
		q.IgnoreWaivers = append(q.IgnoreWaivers, n.String())
	}
	evals := make([]*Evaluation, 0, len(subjects))
	for _, sr := range subjects {
		s, err := LoadSubject(a.get, []byte(sr.id))
		if err != nil {
			apiError(w, http.StatusServiceUnavailable, err.Error())
			return
		}
		if s.ID == "" {
			s.ID = sr.id // never seen: evaluated as having nothing
		}
		q.SubjectType = sr.typ
		evals = append(evals, a.engine.Evaluate(s, q))
	}
	resp, err := GreenwaveResponse(req.Verbose, evals...)
	var np *NoPoliciesError
	if errors.As(err, &np) {
		apiError(w, http.StatusNotFound, err.Error())
		return
	}
	if err != nil {
		apiError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// readDecisionRequest reads and decodes the body of a decision request.
// On error it returns the status to answer with: 413 for a body over
// maxDecisionBody, 408 for one not received within the server's read
// timeout, 400 for anything else, including invalid UTF-8 (which
// encoding/json would silently replace with U+FFFD).
func readDecisionRequest(w http.ResponseWriter, r *http.Request) (*decisionRequest, int, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxDecisionBody))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("Request body exceeds %d bytes", maxDecisionBody)
	case errors.Is(err, os.ErrDeadlineExceeded):
		return nil, http.StatusRequestTimeout, errors.New("Timed out reading the request body")
	case err != nil:
		return nil, http.StatusBadRequest, fmt.Errorf("Reading the request body: %w", err)
	}
	if off := invalidUTF8(body); off >= 0 {
		return nil, http.StatusBadRequest, fmt.Errorf("Invalid JSON: invalid UTF-8 at byte offset %d (0x%02x)", off, body[off])
	}
	var req decisionRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&req); err != nil {
		return nil, http.StatusBadRequest, fmt.Errorf("Invalid JSON: %w", err)
	}
	return &req, http.StatusOK, nil
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

func (req *decisionRequest) subjects() ([]subjectRef, error) {
	if req.SubjectIdentifier != "" || req.SubjectType != "" {
		if req.SubjectIdentifier == "" || req.SubjectType == "" {
			return nil, errors.New("Both subject_type and subject_identifier are required")
		}
		return []subjectRef{{req.SubjectType, req.SubjectIdentifier}}, nil
	}
	if len(req.Subject) == 0 {
		return nil, errors.New("Missing required subject")
	}
	var out []subjectRef
	for i, m := range req.Subject {
		str := func(k string) string { s, _ := m[k].(string); return s }
		switch {
		case str("type") != "" && str("item") != "":
			out = append(out, subjectRef{str("type"), str("item")})
		case str("productmd.compose.id") != "":
			out = append(out, subjectRef{SubjectCompose, str("productmd.compose.id")})
		case str("original_spec_nvr") != "":
			out = append(out, subjectRef{SubjectKojiBuild, str("original_spec_nvr")})
		default:
			return nil, fmt.Errorf("Invalid subject %d: want type and item", i)
		}
	}
	return out, nil
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

func (a *API) policies(w http.ResponseWriter, _ *http.Request) {
	var out []map[string]any
	for _, p := range a.engine.Policies().Policies() {
		rules := []map[string]any{}
		for _, r := range p.Rules {
			m := map[string]any{"rule": r.Kind.String()}
			switch r.Kind {
			case RulePassingTestCase:
				m["test_case_name"] = r.TestCaseName
				if r.HasScenario {
					m["scenario"] = r.Scenario
				} else {
					m["scenario"] = nil
				}
				if !r.ValidSince.IsZero() {
					m["valid_since"] = r.ValidSince.Format(time.RFC3339)
				}
				if !r.ValidUntil.IsZero() {
					m["valid_until"] = r.ValidUntil.Format(time.RFC3339)
				}
			case RuleRemote:
				m["required"] = r.Required
				if len(r.Sources) > 0 {
					m["sources"] = r.Sources
				}
			}
			rules = append(rules, m)
		}
		out = append(out, map[string]any{
			"id":                p.ID,
			"product_versions":  nonNil(p.ProductVersions),
			"decision_contexts": nonNil(p.DecisionContexts),
			"subject_type":      nonNil(p.SubjectTypes),
			"packages":          nonNil(p.Packages),
			"excluded_packages": nonNil(append(append([]string{}, p.ExcludedPackages...), p.Blacklist...)),
			"rules":             rules,
		})
	}
	writeJSON(w, http.StatusOK, map[string]any{"policies": nonNil(out), "policy_version": a.engine.Policies().Version()})
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
