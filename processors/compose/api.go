package compose

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/factory2/factory2/avro"
)

// API answers the compose queries from a Table, on any instance:
//
//	GET /api/v1/composes        every compose's Overview: {"composes": [...]}
//	GET /api/v1/composes/{id}   one compose's Status (?manifest=false
//	                            leaves out the last compose-ready's manifest)
//
// While the table loads, both answer 503 with Retry-After and the
// progress ("loading compose table: n of m records"); an unknown compose
// is a 404. Errors are {"message": "..."}, as the gating API's.
type API struct {
	table *Table
}

// NewAPI returns the compose API over t.
func NewAPI(t *Table) *API { return &API{table: t} }

// Handler registers routes on a mux.
type Handler interface {
	Handle(pattern string, h http.Handler)
}

// Register adds the API's routes to mux.
func (a *API) Register(mux Handler) {
	mux.Handle("GET /api/v1/composes", http.HandlerFunc(a.list))
	mux.Handle("GET /api/v1/composes/{id}", http.HandlerFunc(a.status))
}

// Overview is one compose as GET /api/v1/composes lists it.
type Overview struct {
	ComposeID string `json:"compose_id"`
	// Ready, Members, BlockerCounts and Summary come from the compose's
	// latest readiness decision. Ready is null when none has been seen
	// (a Pungi compose known only by its gate).
	Ready         *bool               `json:"ready"`
	Members       int64               `json:"members"`
	BlockerCounts []avro.BlockerCount `json:"blocker_counts"`
	Summary       string              `json:"summary"`
	// LastDecision is the compose's latest decision of any kind.
	LastDecision DecisionRef `json:"last_decision"`
	// Gate is the latest compose gate decision, if any; the list leaves
	// out its requirements.
	Gate *GateView `json:"gate,omitempty"`
}

// DecisionRef names one compose decision.
type DecisionRef struct {
	// Kind is avro.ComposeReadiness, avro.ComposeReady or
	// avro.ComposeGate.
	Kind string `json:"kind"`
	ID   string `json:"id"`
	// Time is the decision's ingest time: that of the event that caused
	// it (or, for a compose-ready the cadence held back, when it was let
	// out).
	Time    time.Time `json:"time"`
	Summary string    `json:"summary"`
}

// Status is one compose as GET /api/v1/composes/{id} answers it: its
// Overview and the details of its latest decisions.
type Status struct {
	Overview
	ProductVersion  string `json:"product_version,omitempty"`
	DecisionContext string `json:"decision_context,omitempty"`
	PolicyVersion   string `json:"policy_version,omitempty"`
	// ContentDigest identifies the content the readiness is about.
	ContentDigest string `json:"content_digest,omitempty"`
	// Blockers are what the latest readiness decision lists as holding
	// the compose, with reasons: at most MaxListedBlockers of them
	// (BlockerCounts counts them all).
	Blockers []avro.Requirement `json:"blockers"`
	// LastReady is the latest compose-ready decision; null if none.
	LastReady *ReadyView `json:"last_ready"`
}

// ReadyView is a compose-ready decision: go now, with exactly Manifest.
type ReadyView struct {
	DecisionRef
	ContentDigest string `json:"content_digest"`
	Members       int64  `json:"members"`
	// Current: the latest readiness says ready, with this content.
	Current bool `json:"current"`
	// ManifestEntries is the manifest's length, also when Manifest is
	// left out (?manifest=false).
	ManifestEntries int                  `json:"manifest_entries"`
	Manifest        []avro.ManifestEntry `json:"manifest,omitempty"`
}

// GateView is a compose gate decision: the compose-level gating of a
// Pungi compose.
type GateView struct {
	DecisionRef
	// Status is the Pungi status the decision answers (FINISHED,
	// FINISHED_INCOMPLETE, DOOMED, TERMINATED).
	Status          string             `json:"status"`
	Passed          bool               `json:"passed"`
	DecisionContext string             `json:"decision_context,omitempty"`
	Satisfied       []avro.Requirement `json:"satisfied,omitempty"`
	Unsatisfied     []avro.Requirement `json:"unsatisfied,omitempty"`
}

func ref(d *avro.ComposeReadyDecision) DecisionRef {
	kind := d.Kind
	if kind == "" {
		kind = avro.ComposeReadiness // schema version 1
	}
	return DecisionRef{Kind: kind, ID: d.ID, Time: d.IngestTime, Summary: d.Summary}
}

// readinessSource is the decision the compose's readiness comes from:
// its latest readiness decision, or its compose-ready when none is left.
func (r *tableRow) readinessSource() *avro.ComposeReadyDecision {
	if r.readiness != nil {
		return r.readiness
	}
	return r.ready
}

func (r *tableRow) overview(id string) Overview {
	o := Overview{ComposeID: id, BlockerCounts: []avro.BlockerCount{}, LastDecision: ref(r.last)}
	if src := r.readinessSource(); src != nil {
		ready := src.Ready
		o.Ready, o.Members, o.Summary = &ready, src.Members, src.Summary
		o.BlockerCounts = sortedBlockerCounts(src.BlockerCounts)
	}
	if r.gate != nil {
		o.Gate = &GateView{DecisionRef: ref(r.gate), Status: r.gate.Status, Passed: r.gate.Ready, DecisionContext: r.gate.DecisionContext}
	}
	return o
}

func (r *tableRow) status(id string, withManifest bool) *Status {
	s := &Status{Overview: r.overview(id), Blockers: []avro.Requirement{}}
	if src := r.readinessSource(); src != nil {
		s.ProductVersion, s.DecisionContext, s.PolicyVersion = src.ProductVersion, src.DecisionContext, src.PolicyVersion
		s.ContentDigest = src.ContentDigest
		if src.Kind != avro.ComposeReady {
			s.Blockers = append(s.Blockers, src.Unsatisfied...)
		}
	}
	if s.Gate != nil {
		s.Gate.Satisfied, s.Gate.Unsatisfied = r.gate.Satisfied, r.gate.Unsatisfied
	}
	if d := r.ready; d != nil {
		s.LastReady = &ReadyView{
			DecisionRef: ref(d), ContentDigest: d.ContentDigest, Members: d.Members,
			Current:         s.Ready != nil && *s.Ready && s.ContentDigest == d.ContentDigest,
			ManifestEntries: len(d.Manifest),
		}
		if withManifest {
			s.LastReady.Manifest = d.Manifest
		}
	}
	return s
}

// sortedBlockerCounts returns counts sorted by type, never nil.
func sortedBlockerCounts(counts []avro.BlockerCount) []avro.BlockerCount {
	out := append([]avro.BlockerCount{}, counts...)
	slices.SortFunc(out, func(x, y avro.BlockerCount) int { return strings.Compare(x.Type, y.Type) })
	return out
}

func (a *API) list(w http.ResponseWriter, _ *http.Request) {
	l, err := a.table.List()
	if err != nil {
		respondError(w, err)
		return
	}
	respondJSON(w, http.StatusOK, map[string]any{"composes": l})
}

func (a *API) status(w http.ResponseWriter, r *http.Request) {
	withManifest := true
	if v := r.URL.Query().Get("manifest"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			respondJSON(w, http.StatusBadRequest, map[string]string{"message": fmt.Sprintf("manifest=%q: want true or false", v)})
			return
		}
		withManifest = b
	}
	s, err := a.table.Status(r.PathValue("id"), withManifest)
	if err != nil {
		respondError(w, err)
		return
	}
	respondJSON(w, http.StatusOK, s)
}

// respondError answers err: 503 with Retry-After while the table loads,
// 404 for an unknown compose.
func respondError(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	var le *LoadingError
	switch {
	case errors.As(err, &le):
		code = http.StatusServiceUnavailable
		w.Header().Set("Retry-After", "1")
	case errors.Is(err, ErrUnknownCompose):
		code = http.StatusNotFound
	}
	respondJSON(w, code, map[string]string{"message": err.Error()})
}

func respondJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v) // the client went away; nothing to do
}

// WriteText writes s for people: what `factory2 compose status` and
// `factory2 why` print for a compose.
func (s *Status) WriteText(w io.Writer) error {
	var b strings.Builder
	headline := readyWord(s.Ready)
	if s.Ready == nil && s.Gate != nil {
		headline = "gate " + s.Gate.Status + ", " + passedWord(s.Gate.Passed)
	}
	fmt.Fprintf(&b, "compose %s: %s\n", s.ComposeID, headline)
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	field := func(name, format string, args ...any) {
		fmt.Fprintf(tw, "  %s:\t"+format+"\n", append([]any{name}, args...)...)
	}
	if s.Ready != nil {
		field("summary", "%s", s.Summary)
		field("members", "%d", s.Members)
		field("blockers", "%s", countsText(s.BlockerCounts))
	} else {
		field("readiness", "no readiness decision (a compose known only by its gate)")
	}
	if s.ProductVersion != "" || s.DecisionContext != "" {
		field("requires", "%s", requiresText(s.ProductVersion, s.DecisionContext))
	}
	field("last decision", "%s", refText(s.LastDecision))
	if r := s.LastReady; r != nil {
		state := "the content has changed since"
		if r.Current {
			state = "the current content"
		}
		field("last compose-ready", "%s: %d builds, manifest of %d entries, %s (id %s)",
			timeText(r.Time), r.Members, r.ManifestEntries, state, r.ID)
	} else {
		field("last compose-ready", "none yet")
	}
	if g := s.Gate; g != nil {
		field("gate", "%s, %s at %s: %s", g.Status, passedWord(g.Passed), timeText(g.Time), g.Summary)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(s.Blockers) > 0 {
		more := ""
		if len(s.Blockers) >= MaxListedBlockers {
			more = fmt.Sprintf(", the first %d", len(s.Blockers))
		}
		fmt.Fprintf(&b, "  blocked by (listed by the latest readiness decision%s):\n", more)
		if err := writeRequirements(&b, s.Blockers); err != nil {
			return err
		}
	}
	if s.Gate != nil && len(s.Gate.Unsatisfied) > 0 {
		b.WriteString("  gate unsatisfied:\n")
		if err := writeRequirements(&b, s.Gate.Unsatisfied); err != nil {
			return err
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteOverviewText writes composes as a table for people: what
// `factory2 compose list` prints.
func WriteOverviewText(w io.Writer, composes []Overview) error {
	if len(composes) == 0 {
		_, err := io.WriteString(w, "no compose decision has been seen\n")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "COMPOSE\tREADINESS\tMEMBERS\tBLOCKERS\tGATE\tLAST DECISION")
	for _, o := range composes {
		gate := "-"
		if o.Gate != nil {
			gate = o.Gate.Status + " " + passedWord(o.Gate.Passed)
		}
		members := "-"
		if o.Ready != nil {
			members = strconv.FormatInt(o.Members, 10)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", o.ComposeID, readyWord(o.Ready), members,
			countsText(o.BlockerCounts), gate, o.LastDecision.Kind+" "+timeText(o.LastDecision.Time))
	}
	return tw.Flush()
}

// writeRequirements writes one line per requirement: type, subject,
// detail.
func writeRequirements(w io.Writer, rs []avro.Requirement) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, r := range rs {
		subject := r.SubjectID
		if r.Testcase != "" {
			subject = strings.TrimSpace(subject + " " + r.Testcase)
			if r.Scenario != "" {
				subject += " [" + r.Scenario + "]"
			}
		}
		if subject == "" {
			subject = "-"
		}
		detail := r.Detail
		if detail == "" && r.Pending {
			detail = "pending"
		}
		fmt.Fprintf(tw, "    %s\t%s\t%s\n", r.Type, subject, detail)
	}
	return tw.Flush()
}

func readyWord(ready *bool) string {
	switch {
	case ready == nil:
		return "-"
	case *ready:
		return "READY"
	}
	return "NOT READY"
}

func passedWord(passed bool) string {
	if passed {
		return "passed"
	}
	return "not passed"
}

func countsText(counts []avro.BlockerCount) string {
	if len(counts) == 0 {
		return "none"
	}
	parts := make([]string, 0, len(counts))
	for _, c := range counts {
		parts = append(parts, fmt.Sprintf("%d %s", c.Count, c.Type))
	}
	return strings.Join(parts, ", ")
}

func requiresText(pv, contexts string) string {
	var parts []string
	if pv != "" {
		parts = append(parts, "product version "+pv)
	}
	if contexts != "" {
		parts = append(parts, "gating in "+strings.ReplaceAll(contexts, ",", ", "))
	}
	return strings.Join(parts, "; ")
}

func refText(d DecisionRef) string {
	return fmt.Sprintf("%s at %s: %s (id %s)", d.Kind, timeText(d.Time), d.Summary, d.ID)
}

func timeText(t time.Time) string {
	if t.IsZero() {
		return "an unknown time"
	}
	return t.UTC().Format(time.RFC3339)
}
