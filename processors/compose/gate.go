package compose

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/factory2/factory2/avro"
	"github.com/factory2/factory2/processors"
)

// gate is a Pungi compose's gate: its status and its compose-level gating
// decisions (subject type "compose", from the gating processor).
type gate struct {
	Status    string         `json:"status,omitempty"`
	StatusID  string         `json:"status_id,omitempty"`
	Decisions []gateDecision `json:"decisions,omitempty"` // sorted by context, product version
	// Last fingerprints the last gate decision; Final is set by a
	// DOOMED or TERMINATED compose, which gets no decision after.
	Last  string `json:"last,omitempty"`
	Final bool   `json:"final,omitempty"`

	dirty bool
}

type gateDecision struct {
	DecisionContext string             `json:"decision_context"`
	ProductVersion  string             `json:"product_version"`
	Satisfied       bool               `json:"satisfied"`
	ID              string             `json:"id"`
	Summary         string             `json:"summary"`
	PolicyVersion   string             `json:"policy_version,omitempty"`
	Unsatisfied     []avro.Requirement `json:"unsatisfied,omitempty"`
}

// maxGateRequirements bounds the unsatisfied requirements a gate keeps per
// decision (a rawhide policy has dozens of openQA scenarios).
const maxGateRequirements = 64

func (p *Processor) gate(c *processors.Context, id string) (*gate, error) {
	key := prefixGate + id
	if g, ok := c.TxnCache()[key].(*gate); ok {
		return g, nil
	}
	g := &gate{}
	v, ok, err := c.Get(StoreComposes, []byte(key))
	if err != nil {
		return nil, err
	}
	if ok {
		if err := json.Unmarshal(v, g); err != nil {
			return nil, fmt.Errorf("compose: gate of %s: %w", id, err)
		}
	}
	c.TxnCache()[key] = g
	return g, nil
}

// status applies a Pungi status change.
func (p *Processor) status(c *processors.Context, in *processors.Input, e *avro.ComposeEvent) error {
	switch e.Status {
	case avro.ComposeStarted, avro.ComposeFinished, avro.ComposeFinishedIncomplete, avro.ComposeDoomed, avro.ComposeTerminated:
	default:
		return processors.Reject("compose: unknown Pungi status %q of %s", e.Status, e.ComposeID)
	}
	g, err := p.gate(c, e.ComposeID)
	if err != nil {
		return err
	}
	if g.Final || g.Status == e.Status || (e.Status == avro.ComposeStarted && g.Status != "") {
		return nil // after the end, a repeat, or a late STARTED
	}
	g.Status, g.StatusID, g.dirty = e.Status, e.ID, true
	p.evaluateGate(c, e.ComposeID, g, &e.Envelope)
	return nil
}

// gating applies a compose gating decision.
func (p *Processor) gating(c *processors.Context, in *processors.Input, r *avro.GatingDecision) error {
	g, err := p.gate(c, r.SubjectID)
	if err != nil {
		return err
	}
	if g.Final {
		return nil
	}
	d := gateDecision{
		DecisionContext: r.DecisionContext, ProductVersion: r.ProductVersion,
		Satisfied: r.PoliciesSatisfied, ID: r.ID, Summary: r.Summary, PolicyVersion: r.PolicyVersion,
		Unsatisfied: r.Unsatisfied[:min(len(r.Unsatisfied), maxGateRequirements)],
	}
	cmp := func(x, y gateDecision) int {
		if c := strings.Compare(x.DecisionContext, y.DecisionContext); c != 0 {
			return c
		}
		return strings.Compare(x.ProductVersion, y.ProductVersion)
	}
	i, found := slices.BinarySearchFunc(g.Decisions, d, cmp)
	if found {
		g.Decisions[i] = d
	} else {
		g.Decisions = slices.Insert(g.Decisions, i, d)
	}
	g.dirty = true
	p.evaluateGate(c, r.SubjectID, g, &r.Envelope)
	return nil
}

// evaluateGate emits the compose's gate decision when it changed: once
// Pungi finished, passed when every compose gating decision is
// satisfied; a DOOMED or TERMINATED compose gets a final negative one.
func (p *Processor) evaluateGate(c *processors.Context, id string, g *gate, trigger *avro.Envelope) {
	var (
		passed   bool
		summary  string
		sat      []avro.Requirement
		unsat    []avro.Requirement
		derived  []string
		contexts []string
		policy   []string
	)
	if g.StatusID != "" {
		derived = append(derived, g.StatusID)
	}
	for _, d := range g.Decisions {
		derived = append(derived, d.ID)
		contexts = append(contexts, d.DecisionContext)
		if !slices.Contains(policy, d.PolicyVersion) {
			policy = append(policy, d.PolicyVersion)
		}
	}
	switch g.Status {
	case avro.ComposeDoomed, avro.ComposeTerminated:
		g.Final = true
		summary = "failed: Pungi reported " + g.Status
		unsat = append(unsat, avro.Requirement{Type: ReqGateFinal, SubjectType: "compose", SubjectID: id, Detail: "Pungi reported " + g.Status})
	case avro.ComposeFinished, avro.ComposeFinishedIncomplete:
		if len(g.Decisions) == 0 {
			summary = "waiting: no compose gating decision yet"
			unsat = append(unsat, avro.Requirement{Type: ReqGateMissing, SubjectType: "compose", SubjectID: id,
				Detail: "no gating decision for the compose yet (tests not reported)", Pending: true})
			break
		}
		passed = true
		var parts []string
		for _, d := range g.Decisions {
			r := avro.Requirement{Type: "gating-passed", SubjectType: "compose", SubjectID: id, Source: d.ID,
				Detail: d.DecisionContext + ": " + d.Summary}
			if d.Satisfied {
				sat = append(sat, r)
				continue
			}
			passed = false
			parts = append(parts, d.DecisionContext+": "+d.Summary)
			unsat = append(unsat, d.Unsatisfied...)
		}
		if passed {
			summary = "passed: every compose gating decision is satisfied"
		} else {
			summary = "not passed: " + strings.Join(parts, "; ")
		}
	default:
		return // STARTED, or no status: nothing to decide
	}
	fp := envelopeID(g.Status, fmt.Sprint(passed), strings.Join(derived, ","))
	if fp == g.Last {
		return
	}
	g.Last, g.dirty = fp, true
	d := &avro.ComposeReadyDecision{
		Decision: avro.Decision{
			Envelope: avro.Envelope{
				ID:         envelopeID("gate", id, fp, trigger.ID),
				Source:     "factory2/" + Name,
				EventTime:  trigger.EventTime,
				IngestTime: trigger.IngestTime,
				Origin:     trigger.Origin,
			},
			PolicyVersion: strings.Join(policy, ","),
			DerivedFrom:   derived,
			Satisfied:     sat,
			Unsatisfied:   unsat,
		},
		ComposeID:       id,
		Ready:           passed,
		DecisionContext: strings.Join(contexts, ","),
		Summary:         summary,
		Kind:            avro.ComposeGate,
		Status:          g.Status,
	}
	c.Emit(p.decisions, []byte(id), d)
}
