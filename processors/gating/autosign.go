package gating

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/factory2/factory2/avro"
)

// Signing rule types.
const (
	// SigningTypeDefault signs builds tagged into From and moves them to To.
	SigningTypeDefault = ""
	// SigningTypeModular signs the builds of module content tags: From is
	// a wildcard pattern over tags (e.g. "module-*") and the build is not
	// moved unless To is set.
	SigningTypeModular = "modular"
)

// Autosign requirement types (AutosignDecision reasons).
const (
	ReqBuildComplete     = "build-complete"
	ReqTagged            = "tagged"
	ReqContextSatisfied  = "context-satisfied"
	ReqUnsignedArtifacts = "unsigned-artifacts"
	ReqSigned            = "signed"
	ReqRuleRemoved       = "rule-removed"
)

// SigningRule is one autosign rule, robosignatory's from/to/key/keyid: a
// COMPLETE build tagged into From gets its unsigned artifacts signed with
// Key and is then moved to To.
//
// The decision carries Priority so that a signer can order its queue (a
// mass-rebuild tag with a low priority never starves user updates); the
// engine itself emits every decision as soon as its conditions hold.
type SigningRule struct {
	Name string `yaml:"name" json:"name"`
	From string `yaml:"from" json:"from"`
	// To is where the signer moves the build after signing; To == From
	// means no move. Modular rules may leave it empty (no move).
	To  string `yaml:"to" json:"to"`
	Key string `yaml:"key" json:"key"`
	// KeyID is the hexadecimal key id sign events name (sigkey).
	KeyID string `yaml:"key_id" json:"key_id"`
	// Type is SigningTypeDefault or SigningTypeModular.
	Type string `yaml:"type" json:"type,omitempty"`
	// RequireContext, when set, is a gating decision context that must be
	// satisfied first: a build key signs on completion, a gold key waits
	// for gating.
	RequireContext string `yaml:"require_context" json:"require_context,omitempty"`
	// ProductVersion is the product version RequireContext is evaluated
	// for; empty means every product version the build is gated for (at
	// least one must have an applicable policy, and all must be
	// satisfied).
	ProductVersion string `yaml:"product_version" json:"product_version,omitempty"`
	Priority       int32  `yaml:"priority" json:"priority"`
}

// Validate reports every problem of the rule at once.
func (r SigningRule) Validate() error {
	name := r.Name
	if name == "" {
		name = "(unnamed)"
	}
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("gating: signing rule %s: %s", name, fmt.Sprintf(format, args...)))
	}
	if r.Name == "" {
		bad("name is required")
	}
	if r.From == "" {
		bad("from is required")
	}
	if r.Key == "" {
		bad("key is required")
	}
	if r.KeyID == "" {
		bad("key_id is required")
	} else if _, err := strconv.ParseUint(r.KeyID, 16, 64); err != nil || len(r.KeyID) > 16 {
		bad("key_id %q is not a hexadecimal key id", r.KeyID)
	}
	switch r.Type {
	case SigningTypeDefault:
		if r.To == "" {
			bad("to is required (set it to from for no move)")
		}
		if strings.ContainsAny(r.From, "*?[") {
			bad("from %q is a pattern; only modular rules take patterns", r.From)
		}
	case SigningTypeModular:
		if _, err := compileGlob(r.From); err != nil {
			bad("%v", err)
		}
	default:
		bad("unknown type %q (want %q or %q)", r.Type, SigningTypeDefault, SigningTypeModular)
	}
	if r.ProductVersion != "" && r.RequireContext == "" {
		bad("product_version needs require_context")
	}
	return errors.Join(errs...)
}

// ValidateSigningRules validates every rule and that names are unique.
func ValidateSigningRules(rules []SigningRule) error {
	var errs []error
	seen := map[string]bool{}
	for _, r := range rules {
		if err := r.Validate(); err != nil {
			errs = append(errs, err)
		}
		if r.Name != "" && seen[r.Name] {
			errs = append(errs, fmt.Errorf("gating: signing rule %s: duplicate name", r.Name))
		}
		seen[r.Name] = true
	}
	return errors.Join(errs...)
}

// autosignRun is one Autosign call: what its rule checks share.
type autosignRun struct {
	e *Engine
	s *Subject

	currentDone, current bool
	pvsDone              bool
	pvs                  []string
}

// gatingCurrent reports whether the gating decisions recorded in s are
// those of its current state (Gating ran since the last change).
func (a *autosignRun) gatingCurrent() bool {
	if !a.currentDone {
		a.current = a.s.GatingInput != 0 && a.s.GatingInput == a.e.gatingInput(a.s)
		a.currentDone = true
	}
	return a.current
}

func (a *autosignRun) productVersions() []string {
	if !a.pvsDone {
		a.pvs = a.e.ProductVersions(a.s, SubjectKojiBuild)
		a.pvsDone = true
	}
	return a.pvs
}

// ruleCheck is the state of a rule's conditions for a build.
type ruleCheck struct {
	rule     *SigningRule
	complete bool
	tag      string // the From tag the build is in ("" when none)
	tagRef   EventRef
	untagRef EventRef // the untag from From, if any
	// ctxChecked, ctxOK, ctxDetail and ctxRefs are the RequireContext
	// evaluation.
	ctxChecked bool
	ctxOK      bool
	ctxDetail  string
	ctxRefs    []EventRef
	// holds is true when the build is complete, tagged and its context
	// satisfied (everything but "has unsigned artifacts").
	holds bool
}

// checkRule evaluates a rule's conditions. Unless full, it stops before
// the (costly) context evaluation when the build is not complete and
// tagged, since the rule cannot hold then.
func (a *autosignRun) checkRule(r *SigningRule, full bool) ruleCheck {
	s := a.s
	c := ruleCheck{rule: r, complete: s.Build.State == avro.StateComplete}
	for i := range s.Tags {
		t := &s.Tags[i]
		switch {
		case !t.Tagged:
			if t.Name == r.From {
				c.untagRef = t.Event
			}
		case t.Name == r.From || (r.Type == SigningTypeModular && a.e.fromGlob(r).match(t.Name)):
			if c.tag == "" {
				c.tag, c.tagRef = t.Name, t.Event
			}
		}
	}
	if !full && (!c.complete || c.tag == "") {
		return c
	}
	c.ctxOK = true
	if r.RequireContext != "" {
		c.ctxChecked = true
		c.ctxOK, c.ctxDetail, c.ctxRefs = a.contextSatisfied(r)
	}
	c.holds = c.complete && c.tag != "" && c.ctxOK
	return c
}

// requirements returns the conditions as satisfied and unsatisfied
// requirements.
func (c *ruleCheck) requirements(s *Subject) (sat, unsat []avro.Requirement) {
	sat, unsat = []avro.Requirement{}, []avro.Requirement{}
	put := func(ok bool, req avro.Requirement) {
		req.SubjectType, req.SubjectID, req.Source = SubjectKojiBuild, s.ID, c.rule.Name
		if ok {
			sat = append(sat, req)
		} else {
			unsat = append(unsat, req)
		}
	}
	state := s.Build.State
	if state == "" {
		state = "unknown"
	}
	put(c.complete, avro.Requirement{Type: ReqBuildComplete, Detail: "state " + state})
	if c.tag != "" {
		put(true, avro.Requirement{Type: ReqTagged, Detail: c.tag})
	} else {
		put(false, avro.Requirement{Type: ReqTagged, Detail: "not tagged into " + c.rule.From})
	}
	if c.ctxChecked {
		put(c.ctxOK, avro.Requirement{Type: ReqContextSatisfied, Testcase: c.rule.RequireContext, Detail: c.ctxDetail})
	}
	return sat, unsat
}

// refs returns the events the conditions rest on.
func (c *ruleCheck) refs(s *Subject) []EventRef {
	refs := append([]EventRef{s.Build.StateEvent, c.tagRef, c.untagRef}, c.ctxRefs...)
	if c.tag != "" {
		refs[2] = EventRef{} // the untag is not why
	}
	return refs
}

func (e *Engine) fromGlob(r *SigningRule) glob {
	g, err := compileGlob(r.From)
	if err != nil { // validated in NewEngine
		return glob{kind: globExact, lit: r.From}
	}
	return g
}

// contextSatisfied evaluates a rule's RequireContext. When the gating
// decisions recorded in s are current (Gating ran on this state), it reads
// them and derives from the gating decision; otherwise it evaluates.
func (a *autosignRun) contextSatisfied(r *SigningRule) (bool, string, []EventRef) {
	e, s := a.e, a.s
	pvs := []string{r.ProductVersion}
	if r.ProductVersion == "" {
		pvs = a.productVersions()
	}
	current := a.gatingCurrent()
	var (
		refs    []EventRef
		details []string
		n       int
		ok      = true
	)
	for _, pv := range pvs {
		var rec *GatingRecord
		if current {
			rec = s.gatingRecord(DecisionKey{SubjectType: SubjectKojiBuild, DecisionContext: r.RequireContext, ProductVersion: pv})
		}
		var (
			satisfied bool
			summary   string
		)
		if rec != nil {
			satisfied, summary = rec.PoliciesSatisfied, rec.Summary
			refs = append(refs, EventRef{ID: rec.DecisionID, Time: rec.DecisionTime})
		} else {
			ev := e.Evaluate(s, Query{SubjectType: SubjectKojiBuild, DecisionContexts: []string{r.RequireContext}, ProductVersion: pv})
			if ev.NoApplicablePolicies {
				continue
			}
			satisfied, summary = ev.PoliciesSatisfied, ev.Summary
			for i := range ev.Answers {
				refs = ev.Answers[i].appendEvents(refs)
			}
		}
		n++
		ok = ok && satisfied
		details = append(details, r.RequireContext+"@"+pv+": "+summary)
	}
	if n == 0 {
		return false, fmt.Sprintf("no applicable policy for %s at %s", r.RequireContext, strings.Join(pvs, ", ")), nil
	}
	return ok, strings.Join(details, "; "), refs
}

// signedWith reports whether every artifact of the build is signed with
// key. Only a build event can list every artifact, so without one the
// build never counts as signed.
func (s *Subject) signedWith(key string) bool {
	arts := s.Build.Artifacts
	if !s.Build.ArtifactList || len(arts) == 0 {
		return false
	}
	sig := s.signatures(key)
	if sig == nil || len(sig.Signed) < len(arts) {
		return false
	}
	// Both are sorted by name: walk them together.
	j := 0
	for i := range arts {
		for j < len(sig.Signed) && sig.Signed[j] < arts[i].Name {
			j++
		}
		if j == len(sig.Signed) || sig.Signed[j] != arts[i].Name {
			return false
		}
		j++
	}
	return true
}

// unsignedWith lists the known artifacts not signed with key.
func (s *Subject) unsignedWith(key string) []avro.Artifact {
	sig := s.signatures(key)
	unsigned := []avro.Artifact{}
	for _, a := range s.Build.Artifacts {
		if sig == nil {
			unsigned = append(unsigned, a)
		} else if _, found := slices.BinarySearch(sig.Signed, a.Name); !found {
			unsigned = append(unsigned, a)
		}
	}
	return unsigned
}

// Autosign returns the autosign records to emit after trigger was applied
// to s, and records them in s:
//
//   - an AutosignDecision with Action sign, once per (build, key id), as
//     soon as a rule for the key holds (build COMPLETE, tagged into From,
//     RequireContext satisfied) and some artifact is not signed with it;
//     the highest-priority holding rule is used;
//   - an AutosignDecision with Action revoke when an outstanding sign
//     decision stops holding before the build is signed (untagged from
//     From, build no longer COMPLETE, context no longer satisfied). A
//     build moved from From to To, the signer's own move, is not revoked;
//   - a SignedStatus with Signed true when every artifact the build lists
//     is signed with a key, and Signed false if that stops being true
//     (a new unsigned artifact).
//
// Records are deterministic like Gating's.
func (e *Engine) Autosign(s *Subject, trigger *avro.Envelope) []avro.Record {
	if trigger == nil {
		trigger = &avro.Envelope{}
	}
	var out []avro.Record
	run := &autosignRun{e: e, s: s}
	// Clipped, the engine's slice is never written: an insert copies it.
	// A build signed with the configured keys then costs no copy.
	keys := slices.Clip(e.keyIDs)
	for i := range s.Autosign {
		if s.Autosign[i].Active {
			insertString(&keys, s.Autosign[i].KeyID)
		}
	}
	for _, key := range keys {
		if d := run.autosignKey(trigger, key); d != nil {
			out = append(out, d)
		}
	}

	skeys := slices.Clip(e.keyIDs)
	for i := range s.Signatures {
		insertString(&skeys, s.Signatures[i].KeyID)
	}
	for i := range s.Signed {
		insertString(&skeys, s.Signed[i].KeyID)
	}
	for _, key := range skeys {
		if st := e.signedStatus(s, trigger, key); st != nil {
			out = append(out, st)
		}
	}
	return out
}

func (a *autosignRun) autosignKey(trigger *avro.Envelope, key string) *avro.AutosignDecision {
	e, s := a.e, a.s
	signed := s.signedWith(key)
	rec := s.autosignRecord(key)
	active := rec != nil && rec.Active
	if signed && !active {
		return nil // nothing to sign, nothing outstanding
	}
	var (
		rule  *SigningRule
		check ruleCheck
	)
	if !signed {
		for i := range e.rules {
			r := &e.rules[i]
			if r.KeyID != key {
				continue
			}
			if c := a.checkRule(r, false); c.holds {
				rule, check = r, c
				break
			}
		}
	}

	switch {
	case active && signed:
		rec.Active = false // fulfilled
		return nil
	case active && rule == nil:
		if rec.ToTag != rec.FromTag && s.Tagged(rec.ToTag) && !s.Tagged(rec.FromTag) &&
			s.Build.State == avro.StateComplete {
			rec.Active = false // the signer moved it: done, sign events may lag
			return nil
		}
		return a.revoke(trigger, rec, s.unsignedWith(key))
	case !active && rule != nil:
		unsigned := s.unsignedWith(key)
		to := rule.To
		if to == "" {
			to = check.tag
		}
		detail := fmt.Sprintf("%d of %d artifacts unsigned", len(unsigned), len(s.Build.Artifacts))
		if !s.Build.ArtifactList {
			detail = "artifact list unknown: sign every unsigned artifact"
		}
		sat, _ := check.requirements(s)
		sat = append(sat, avro.Requirement{Type: ReqUnsignedArtifacts, SubjectType: SubjectKojiBuild,
			SubjectID: s.ID, Source: rule.Name, Detail: detail})
		refs := append(check.refs(s), s.Build.ArtifactsEvent)
		env := e.deriveEnvelope(SourceAutosign, trigger, "autosign", s.ID, key)
		s.putAutosignRecord(AutosignRecord{KeyID: key, Active: true, Action: avro.AutosignSign, Rule: rule.Name,
			Key: rule.Key, FromTag: check.tag, ToTag: to, Priority: rule.Priority, DecisionID: env.ID})
		return &avro.AutosignDecision{
			Decision: avro.Decision{
				Envelope:      env,
				PolicyVersion: e.version,
				DerivedFrom:   derivedFrom(refs),
				Satisfied:     sortedRequirements(sat),
				Unsatisfied:   []avro.Requirement{},
			},
			Action:         avro.AutosignSign,
			NVR:            s.ID,
			BuildID:        s.Build.BuildID,
			Key:            rule.Key,
			KeyID:          key,
			FromTag:        check.tag,
			ToTag:          to,
			Unsigned:       unsigned,
			IdempotencyKey: s.ID + "/" + key,
			Priority:       rule.Priority,
			Rule:           rule.Name,
		}
	}
	return nil
}

func (a *autosignRun) revoke(trigger *avro.Envelope, rec *AutosignRecord, unsigned []avro.Artifact) *avro.AutosignDecision {
	e, s := a.e, a.s
	var (
		sat, unsat []avro.Requirement
		refs       []EventRef
		found      bool
	)
	for i := range e.rules {
		if e.rules[i].Name == rec.Rule && e.rules[i].KeyID == rec.KeyID {
			c := a.checkRule(&e.rules[i], true)
			sat, unsat = c.requirements(s)
			refs, found = c.refs(s), true
			break
		}
	}
	if !found {
		sat = []avro.Requirement{}
		unsat = []avro.Requirement{{Type: ReqRuleRemoved, SubjectType: SubjectKojiBuild,
			SubjectID: s.ID, Source: rec.Rule, Detail: "signing rule no longer configured"}}
	}
	env := e.deriveEnvelope(SourceAutosign, trigger, "autosign", s.ID, rec.KeyID)
	rec.Active, rec.Action, rec.DecisionID = false, avro.AutosignRevoke, env.ID
	return &avro.AutosignDecision{
		Decision: avro.Decision{
			Envelope:      env,
			PolicyVersion: e.version,
			DerivedFrom:   derivedFrom(refs),
			Satisfied:     sortedRequirements(sat),
			Unsatisfied:   sortedRequirements(unsat),
		},
		Action:         avro.AutosignRevoke,
		NVR:            s.ID,
		BuildID:        s.Build.BuildID,
		Key:            rec.Key,
		KeyID:          rec.KeyID,
		FromTag:        rec.FromTag,
		ToTag:          rec.ToTag,
		Unsigned:       unsigned,
		IdempotencyKey: s.ID + "/" + rec.KeyID,
		Priority:       rec.Priority,
		Rule:           rec.Rule,
	}
}

func (e *Engine) signedStatus(s *Subject, trigger *avro.Envelope, key string) *avro.SignedStatus {
	signed := s.signedWith(key)
	rec := s.signedRecord(key)
	if signed == (rec != nil && rec.Signed) {
		return nil
	}
	unsigned := s.unsignedWith(key)
	refs := []EventRef{s.Build.ArtifactsEvent}
	if sig := s.signatures(key); sig != nil {
		refs = append(refs, sig.Last)
	}
	req := avro.Requirement{SubjectType: SubjectKojiBuild, SubjectID: s.ID, Source: key}
	sat, unsat := []avro.Requirement{}, []avro.Requirement{}
	if signed {
		req.Type, req.Detail = ReqSigned, fmt.Sprintf("%d artifacts signed with %s", len(s.Build.Artifacts), key)
		sat = append(sat, req)
	} else {
		names := make([]string, len(unsigned))
		for i, a := range unsigned {
			names[i] = a.Name
		}
		req.Type, req.Detail = ReqUnsignedArtifacts, strings.Join(names, ", ")
		unsat = append(unsat, req)
	}
	env := e.deriveEnvelope(SourceAutosign, trigger, "signed", s.ID, key)
	s.putSignedRecord(SignedRecord{KeyID: key, Signed: signed, DecisionID: env.ID})
	return &avro.SignedStatus{
		Decision: avro.Decision{
			Envelope:      env,
			PolicyVersion: e.version,
			DerivedFrom:   derivedFrom(refs),
			Satisfied:     sat,
			Unsatisfied:   unsat,
		},
		NVR:       s.ID,
		BuildID:   s.Build.BuildID,
		KeyID:     key,
		Signed:    signed,
		Artifacts: append([]avro.Artifact{}, s.Build.Artifacts...),
	}
}

func sortedRequirements(rs []avro.Requirement) []avro.Requirement {
	out := append([]avro.Requirement{}, rs...)
	slices.SortFunc(out, compareRequirements)
	return out
}
