package gating

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/factory2/factory2/avro"
)

// Rule statuses of a SigningReport: where autosign stands for a build
// under one signing rule.
const (
	// RuleWaiting: some condition of the rule does not hold (Unsatisfied
	// says which); no sign request is outstanding for it.
	RuleWaiting = "waiting"
	// RuleRequested: a sign decision of this rule is outstanding; the
	// signer has yet to sign the artifacts in Unsigned.
	RuleRequested = "sign-requested"
	// RuleFulfilled: the rule's sign decision was fulfilled by the
	// signer moving the build from From to To; the key's KeyStatus says
	// whether every artifact is signed.
	RuleFulfilled = "fulfilled"
	// RuleRevoked: the rule's sign decision was revoked (a condition
	// stopped holding before the build was signed); Unsatisfied says
	// which conditions do not hold now.
	RuleRevoked = "revoked"
	// RuleSigned: every artifact of the build is signed with the rule's
	// key: nothing is left to sign.
	RuleSigned = "signed"
	// RuleOtherRule: the key's outstanding sign decision was made under
	// another rule (OtherRule) for the same key.
	RuleOtherRule = "other-rule"
	// RuleReady: every condition holds, yet no sign decision is recorded:
	// the processor has not taken this state yet (a decision follows).
	RuleReady = "ready"
)

// SigningReport answers "why is this build not signed yet?" from the
// stored state of a build: for every signing rule, what autosign still
// waits for (build COMPLETE, tagged into From, the required context
// satisfied, artifacts left unsigned) or what it did (the decision it
// emitted, fulfilled or revoked); for every key, whether every artifact
// is signed with it and which ones are not. It is computed like the
// decisions are (Engine.Signing), never emitted.
type SigningReport struct {
	SubjectID string `json:"subject_id"`
	// Build is false for a subject no build event or build-typed event
	// named (a compose, a Bodhi update): signing does not apply.
	Build bool `json:"build"`
	// BuildState is the build's state; empty when no state change was
	// seen.
	BuildState string `json:"build_state"`
	// ArtifactList is true once a build event listed the build's
	// artifacts. Without it no key can be told to sign every artifact:
	// Artifacts are then only those sign events named.
	ArtifactList bool            `json:"artifact_list"`
	Artifacts    []avro.Artifact `json:"artifacts"`
	// Rules are the configured signing rules, highest priority first.
	Rules []RuleStatus `json:"rules"`
	// Keys are the keys of the rules and of the signatures seen, sorted.
	Keys []KeyStatus `json:"keys"`
	// EngineVersion is the version of the policies and signing rules the
	// report was computed with (Engine.Version).
	EngineVersion string `json:"engine_version"`
}

// RuleStatus is where autosign stands for a build under one rule.
type RuleStatus struct {
	Rule           string `json:"rule"`
	Key            string `json:"key"`
	KeyID          string `json:"key_id"`
	From           string `json:"from"`
	To             string `json:"to,omitempty"`
	RequireContext string `json:"require_context,omitempty"`
	Priority       int32  `json:"priority"`
	// Status is one of RuleWaiting, RuleRequested, RuleFulfilled,
	// RuleRevoked, RuleSigned, RuleOtherRule, RuleReady.
	Status string `json:"status"`
	// Satisfied and Unsatisfied are the rule's conditions now (types
	// build-complete, tagged, context-satisfied), as in its decisions.
	Satisfied   []avro.Requirement `json:"satisfied"`
	Unsatisfied []avro.Requirement `json:"unsatisfied"`
	// Unsigned are the known artifacts not signed with the key.
	Unsigned []string `json:"unsigned"`
	// Decision is the key's last autosign decision, when this rule made
	// it (or, for RuleOtherRule, the other rule's outstanding one).
	Decision *AutosignRef `json:"decision,omitempty"`
	// OtherRule names the rule of the key's outstanding decision
	// (RuleOtherRule).
	OtherRule string `json:"other_rule,omitempty"`
}

// AutosignRef is an emitted autosign decision.
type AutosignRef struct {
	ID string `json:"id"`
	// Action is avro.AutosignSign or avro.AutosignRevoke.
	Action string `json:"action"`
	// Outstanding is true while a sign decision is neither fulfilled nor
	// revoked.
	Outstanding bool   `json:"outstanding"`
	Rule        string `json:"rule"`
	FromTag     string `json:"from_tag"`
	ToTag       string `json:"to_tag"`
	// Moved is true when the build is now in ToTag and no longer in
	// FromTag (another tag than ToTag): the signer's move.
	Moved bool `json:"moved,omitempty"`
}

// KeyStatus is the signed status of a build for one key.
type KeyStatus struct {
	KeyID string `json:"key_id"`
	// Rules are the names of the signing rules that sign with the key.
	Rules []string `json:"rules"`
	// Signed is true when every artifact of the build's artifact list is
	// signed with the key.
	Signed bool `json:"signed"`
	// Reason says why not, when not.
	Reason string `json:"reason,omitempty"`
	// SignedArtifacts, Unsigned and Failed are artifact names: signed
	// with the key, not (yet) signed with it among the known artifacts,
	// and those whose signing failed and that were not signed since.
	SignedArtifacts []string `json:"signed_artifacts"`
	Unsigned        []string `json:"unsigned"`
	Failed          []string `json:"failed"`
	// Decision is the last signed status emitted for the key, if any.
	Decision *SignedRef `json:"decision,omitempty"`
}

// SignedRef is an emitted signed status.
type SignedRef struct {
	ID     string `json:"id"`
	Signed bool   `json:"signed"`
}

// ReasonNoArtifactList is KeyStatus.Reason when no build event listed the
// build's artifacts: Koji's bus messages never carry the RPM list, so
// with real traffic only the ingest-side enrichment (ingest.koji_hub_url)
// records it.
const ReasonNoArtifactList = "the build's artifact list is unknown: no build event listed the artifacts " +
	"(bus messages do not carry them; set ingest.koji_hub_url to record them from Koji)"

// Signing explains where autosign and the signed status stand for s. It
// reads the stored state and evaluates required contexts like Autosign
// does; it never emits and never changes s.
func (e *Engine) Signing(s *Subject) *SigningReport {
	rep := &SigningReport{
		SubjectID:     s.ID,
		Build:         s.HasType(SubjectKojiBuild) || s.Build.State != "",
		BuildState:    s.Build.State,
		ArtifactList:  s.Build.ArtifactList,
		Artifacts:     append([]avro.Artifact{}, s.Build.Artifacts...),
		Rules:         []RuleStatus{},
		Keys:          []KeyStatus{},
		EngineVersion: e.version,
	}
	if !rep.Build {
		return rep
	}
	run := &autosignRun{e: e, s: s}
	for i := range e.rules {
		rep.Rules = append(rep.Rules, run.ruleStatus(&e.rules[i]))
	}
	keys := slices.Clone(e.keyIDs)
	for i := range s.Signatures {
		insertString(&keys, s.Signatures[i].KeyID)
	}
	for i := range s.Signed {
		insertString(&keys, s.Signed[i].KeyID)
	}
	for _, k := range keys {
		rep.Keys = append(rep.Keys, e.keyStatus(s, k))
	}
	return rep
}

// ruleStatus is where autosign stands under rule r. The order of the
// cases is that of Autosign: a key whose artifacts are all signed needs
// nothing; an outstanding decision is the key's, whichever rule made it;
// otherwise the rule's own last decision, then its conditions.
func (a *autosignRun) ruleStatus(r *SigningRule) RuleStatus {
	s := a.s
	c := a.checkRule(r, true)
	sat, unsat := c.requirements(s)
	st := RuleStatus{
		Rule: r.Name, Key: r.Key, KeyID: r.KeyID, From: r.From, To: r.To,
		RequireContext: r.RequireContext, Priority: r.Priority,
		Satisfied: sat, Unsatisfied: unsat, Unsigned: artifactNames(s.unsignedWith(r.KeyID)),
	}
	rec := s.autosignRecord(r.KeyID)
	mine := rec != nil && rec.Rule == r.Name
	if rec != nil && (mine || rec.Active) {
		st.Decision = &AutosignRef{ID: rec.DecisionID, Action: rec.Action, Outstanding: rec.Active,
			Rule: rec.Rule, FromTag: rec.FromTag, ToTag: rec.ToTag,
			Moved: rec.ToTag != rec.FromTag && s.Tagged(rec.ToTag) && !s.Tagged(rec.FromTag)}
	}
	switch {
	case s.signedWith(r.KeyID):
		st.Status = RuleSigned
	case rec != nil && rec.Active && mine:
		st.Status = RuleRequested
	case rec != nil && rec.Active:
		st.Status, st.OtherRule = RuleOtherRule, rec.Rule
	case c.holds:
		st.Status = RuleReady
	case mine && rec.Action == avro.AutosignSign:
		st.Status = RuleFulfilled
	case mine && rec.Action == avro.AutosignRevoke:
		st.Status = RuleRevoked
	default:
		st.Status = RuleWaiting
	}
	return st
}

// keyStatus is the signed status of s for key.
func (e *Engine) keyStatus(s *Subject, key string) KeyStatus {
	ks := KeyStatus{KeyID: key, Rules: []string{}, SignedArtifacts: []string{}, Failed: []string{},
		Signed: s.signedWith(key), Unsigned: artifactNames(s.unsignedWith(key))}
	for i := range e.rules {
		if e.rules[i].KeyID == key {
			ks.Rules = append(ks.Rules, e.rules[i].Name)
		}
	}
	if sig := s.signatures(key); sig != nil {
		ks.SignedArtifacts = append(ks.SignedArtifacts, sig.Signed...)
		for _, f := range sig.Failed {
			if _, found := slices.BinarySearch(sig.Signed, f); !found {
				ks.Failed = append(ks.Failed, f)
			}
		}
	}
	if rec := s.signedRecord(key); rec != nil {
		ks.Decision = &SignedRef{ID: rec.DecisionID, Signed: rec.Signed}
	}
	switch {
	case ks.Signed:
	case !s.Build.ArtifactList:
		ks.Reason = ReasonNoArtifactList
	case len(s.Build.Artifacts) == 0:
		ks.Reason = "the build lists no artifacts"
	default:
		ks.Reason = fmt.Sprintf("%d of %d artifacts lack the key", len(ks.Unsigned), len(s.Build.Artifacts))
	}
	return ks
}

func artifactNames(as []avro.Artifact) []string {
	names := make([]string, len(as))
	for i, a := range as {
		names[i] = a.Name
	}
	return names
}

// WriteText writes the report for people ("factory2 why"): per rule, its
// status and conditions; per key, signed or what is missing. A subject
// that is not a build writes nothing.
func (r *SigningReport) WriteText(w io.Writer) error {
	if !r.Build {
		return nil
	}
	var b strings.Builder
	if len(r.Rules) == 0 && len(r.Keys) == 0 {
		fmt.Fprintf(&b, "autosign %s: no signing rule is configured and no signature was seen\n", r.SubjectID)
	}
	for i := range r.Rules {
		r.writeRule(&b, &r.Rules[i])
	}
	for i := range r.Keys {
		r.writeKey(&b, &r.Keys[i])
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func (r *SigningReport) writeRule(b *strings.Builder, st *RuleStatus) {
	move := st.From + " → " + st.To
	switch {
	case st.To == "" || st.To == st.From:
		move = st.From + ", no move"
	}
	fmt.Fprintf(b, "autosign %s: rule %s (key %s %s; %s", r.SubjectID, st.Rule, st.Key, st.KeyID, move)
	if st.RequireContext != "" {
		fmt.Fprintf(b, "; after %s", st.RequireContext)
	}
	b.WriteString(")\n")
	d := st.Decision
	switch st.Status {
	case RuleSigned:
		fmt.Fprintf(b, "  SIGNED: every artifact is signed with %s, nothing to sign", st.KeyID)
		if d != nil && d.Action == avro.AutosignSign {
			fmt.Fprintf(b, " (sign decision %s fulfilled)", d.ID)
		}
		b.WriteString("\n")
		return
	case RuleRequested:
		fmt.Fprintf(b, "  SIGN REQUESTED: decision %s is outstanding, waiting for the signer\n", d.ID)
	case RuleOtherRule:
		fmt.Fprintf(b, "  BY RULE %s: the key's sign decision %s is outstanding under rule %s\n", st.OtherRule, d.ID, st.OtherRule)
	case RuleReady:
		b.WriteString("  READY: every condition holds; no sign decision is recorded yet (the processor has yet to take this state)\n")
	case RuleFulfilled:
		how := "fulfilled"
		if d.Moved {
			how = fmt.Sprintf("fulfilled: the signer moved the build from %s to %s", d.FromTag, d.ToTag)
		}
		fmt.Fprintf(b, "  FULFILLED: sign decision %s was %s (the key's signed status follows)\n", d.ID, how)
	case RuleRevoked:
		fmt.Fprintf(b, "  REVOKED by decision %s; waiting for: %s\n", d.ID, requirementTypes(st.Unsatisfied))
	default:
		fmt.Fprintf(b, "  WAITING for: %s\n", requirementTypes(st.Unsatisfied))
	}
	for _, req := range st.Satisfied {
		writeCondition(b, "✓", req)
	}
	for _, req := range st.Unsatisfied {
		writeCondition(b, "✗", req)
	}
	fmt.Fprintf(b, "  · unsigned with %s: %s\n", st.KeyID, r.unsignedText(st.Unsigned))
}

// unsignedText names the artifacts not signed with a key, or says that
// the artifact list is not known.
func (r *SigningReport) unsignedText(unsigned []string) string {
	switch {
	case !r.ArtifactList && len(unsigned) == 0:
		return "not known: no build event listed the artifacts"
	case !r.ArtifactList:
		return "not known (no build event listed the artifacts), at least " + strings.Join(unsigned, ", ")
	case len(unsigned) == 0:
		return "none"
	}
	return fmt.Sprintf("%d of %d artifacts: %s", len(unsigned), len(r.Artifacts), strings.Join(unsigned, ", "))
}

func writeCondition(b *strings.Builder, mark string, req avro.Requirement) {
	fmt.Fprintf(b, "  %s %s", mark, req.Type)
	if req.Testcase != "" {
		fmt.Fprintf(b, " %s", req.Testcase)
	}
	if req.Detail != "" {
		fmt.Fprintf(b, " (%s)", req.Detail)
	}
	b.WriteString("\n")
}

func requirementTypes(rs []avro.Requirement) string {
	if len(rs) == 0 {
		return "nothing"
	}
	names := make([]string, len(rs))
	for i, r := range rs {
		names[i] = r.Type
		if r.Type == ReqContextSatisfied && r.Testcase != "" {
			names[i] += " " + r.Testcase
		}
	}
	return strings.Join(names, ", ")
}

func (r *SigningReport) writeKey(b *strings.Builder, ks *KeyStatus) {
	fmt.Fprintf(b, "signed %s: key %s", r.SubjectID, ks.KeyID)
	if len(ks.Rules) > 0 {
		fmt.Fprintf(b, " (rules %s)", strings.Join(ks.Rules, ", "))
	}
	b.WriteString("\n")
	if ks.Signed {
		fmt.Fprintf(b, "  SIGNED: all %d artifacts", len(r.Artifacts))
	} else {
		fmt.Fprintf(b, "  NOT SIGNED: %s", ks.Reason)
	}
	if d := ks.Decision; d != nil {
		said := "not signed"
		if d.Signed {
			said = "signed"
		}
		fmt.Fprintf(b, " (last signed status %s: %s)", d.ID, said)
	}
	b.WriteString("\n")
	if !ks.Signed && r.ArtifactList && len(ks.Unsigned) > 0 {
		fmt.Fprintf(b, "  ✗ unsigned: %s\n", strings.Join(ks.Unsigned, ", "))
	}
	if !ks.Signed && len(ks.SignedArtifacts) > 0 {
		fmt.Fprintf(b, "  ✓ signed: %s\n", strings.Join(ks.SignedArtifacts, ", "))
	}
	if len(ks.Failed) > 0 {
		fmt.Fprintf(b, "  ✗ signing failed: %s\n", strings.Join(ks.Failed, ", "))
	}
}

// RegisterSigning adds GET /api/v1/why/{subject}/signing to mux: the
// subject's SigningReport as JSON, or with ?format=text the text
// `factory2 why` prints after the gating decisions. 404 for a subject no
// event named; 503 when the subject's state cannot be read here.
func (a *API) RegisterSigning(mux Handler) {
	mux.Handle("GET /api/v1/why/{subject}/signing", http.HandlerFunc(a.whySigning))
}

func (a *API) whySigning(w http.ResponseWriter, r *http.Request) {
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
	rep := a.engine.Signing(s)
	if r.URL.Query().Get("format") == "text" {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		var b strings.Builder
		_ = rep.WriteText(&b)
		fmt.Fprint(w, b.String())
		return
	}
	writeJSON(w, http.StatusOK, rep)
}
