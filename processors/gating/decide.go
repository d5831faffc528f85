package gating

import (
	"fmt"
	"hash/crc32"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/factory2/factory2/avro"
)

// Requirement types: Greenwave's vocabulary, plus pending-gating-yaml for
// a remote rule file that has not been fetched yet.
const (
	ReqTestResultPassed      = "test-result-passed"
	ReqTestResultFailed      = "test-result-failed"
	ReqTestResultMissing     = "test-result-missing"
	ReqTestResultErrored     = "test-result-errored"
	ReqWaivedSuffix          = "-waived"
	ReqFetchedGatingYAML     = "fetched-gating-yaml"
	ReqInvalidGatingYAML     = "invalid-gating-yaml"
	ReqMissingGatingYAML     = "missing-gating-yaml"
	ReqFailedFetchGatingYAML = "failed-fetch-gating-yaml"
	ReqPendingGatingYAML     = "pending-gating-yaml"
	ReqExcluded              = "excluded"
	ReqBlacklisted           = "blacklisted"
)

// maxDerivedFrom bounds Decision.DerivedFrom; the newest ids are kept.
const maxDerivedFrom = 64

type answerKind uint8

const (
	kindPassed answerKind = iota + 1
	kindMissing
	kindIncomplete
	kindFailed
	kindErrored
	kindFetched
	kindExcluded
	kindInvalidYAML
	kindMissingYAML
	kindFailedFetch
	kindPendingYAML
)

// isTest reports whether the answer counts as a required test in the
// summary ("Of N required tests, ...").
func (k answerKind) isTest() bool { return k >= kindPassed && k <= kindErrored }

// outcomeKind classifies a ResultsDB outcome like Greenwave's
// OUTCOMES_PASSED, OUTCOMES_INCOMPLETE and OUTCOMES_ERROR; anything else,
// unknown outcomes included, failed.
func outcomeKind(outcome string) answerKind {
	switch outcome {
	case avro.OutcomePassed, avro.OutcomeInfo:
		return kindPassed
	case avro.OutcomeQueued, avro.OutcomeRunning:
		return kindIncomplete
	case avro.OutcomeError:
		return kindErrored
	}
	return kindFailed
}

// Query asks for one decision, like Greenwave's POST /api/v1.0/decision.
type Query struct {
	// SubjectType defaults to the subject's primary type (koji_build when
	// it is a build).
	SubjectType string
	// DecisionContexts are evaluated together (Greenwave's
	// decision_context may be a list); a rule required by several counts
	// once.
	DecisionContexts []string
	ProductVersion   string
	// When, if not zero, evaluates as of that time: later results and
	// waivers are ignored (up to the history kept per key).
	When time.Time
	// IgnoreResults and IgnoreWaivers are ids to disregard (Greenwave's
	// ignore_result and ignore_waiver).
	IgnoreResults []string
	IgnoreWaivers []string
	// Verbose fills Evaluation.Results and Evaluation.Waivers.
	Verbose bool
	// Policies, when not nil, are evaluated instead of the engine's
	// (a decision request's on-demand rules, see OnDemandPolicy).
	Policies []*Policy
}

// Answer is one requirement of an evaluation together with the evidence
// behind it, for people: the latest result and since when, who waived it
// and why.
type Answer struct {
	// Requirement is what decisions carry. Its Source is the policy id
	// (or the remote rule file for rules from a gating.yaml).
	Requirement avro.Requirement
	Satisfied   bool
	// Test is true for answers that count as a required test.
	Test   bool
	Waived bool
	// Remote is true for rules from a remote rule file.
	Remote bool
	// PolicyID is the policy the rule comes from ("" for an untitled
	// remote policy).
	PolicyID string
	// Sources are the remote rule files consulted (remote rule answers).
	Sources []string
	// Result is the latest result the answer rests on (nil when none) and
	// Waiver the waiver in force (nil unless Waived). They point into the
	// Subject evaluated, and stay valid while it is not changed.
	Result *ResultEntry
	Waiver *WaiverEntry

	unwaived *WaiverEntry  // the unwaiver that ended a waiver, for provenance
	files    []*RemoteFile // remote rule files consulted
	kind     answerKind
}

// Events returns the events the answer rests on.
func (a *Answer) Events() []EventRef {
	var out []EventRef
	return a.appendEvents(out)
}

func (a *Answer) appendEvents(out []EventRef) []EventRef {
	if a.Result != nil {
		out = append(out, a.Result.Event)
	}
	if a.Waiver != nil {
		out = append(out, a.Waiver.Event)
	}
	if a.unwaived != nil {
		out = append(out, a.unwaived.Event)
	}
	for _, f := range a.files {
		out = append(out, f.Event)
	}
	return out
}

// Since is when the answer's current evidence appeared: the waiver, else
// the result, else the remote rule file (zero for a missing result).
func (a *Answer) Since() time.Time {
	switch {
	case a.Waiver != nil:
		return a.Waiver.Event.Time
	case a.Result != nil:
		return a.Result.Event.Time
	case len(a.files) > 0:
		return a.files[len(a.files)-1].Event.Time
	}
	return time.Time{}
}

// Evaluation is one decision computed from state: what Gating emits and
// what the query API (Greenwave-compatible decisions, "factory2 why")
// shows.
type Evaluation struct {
	SubjectType      string
	SubjectID        string
	DecisionContexts []string
	ProductVersion   string
	When             time.Time
	PolicyVersion    string
	// ApplicablePolicies are the ids of the server policies that apply.
	ApplicablePolicies []string
	// NoApplicablePolicies is Greenwave's 404, unless
	// IgnoreMissingPolicy (bodhi_update subjects).
	NoApplicablePolicies bool
	IgnoreMissingPolicy  bool
	PoliciesSatisfied    bool
	Summary              string
	// Answers are in Greenwave's order: policy, then rule, then result.
	Answers []Answer
	// Results and Waivers are filled for verbose queries: the latest
	// result per key and the waivers in force for the product version.
	Results []ResultView
	Waivers []WaiverView

	extra []EventRef
}

// ResultView is a latest result.
type ResultView struct {
	ResultKey
	ResultEntry
}

// WaiverView is a waiver in force.
type WaiverView struct {
	WaiverKey
	WaiverEntry
}

// Evaluate computes a decision for s from its state. It never emits and
// never changes s.
func (e *Engine) Evaluate(s *Subject, q Query) *Evaluation {
	return e.evaluate(s, q, true)
}

// evaluate is Evaluate, leaving Summary empty unless summary is set:
// Gating needs it only for the decisions it emits.
func (e *Engine) evaluate(s *Subject, q Query, summary bool) *Evaluation {
	typ := NormalizeSubjectType(q.SubjectType)
	if typ == "" {
		typ = s.primaryType()
	}
	ev := &Evaluation{
		SubjectType:         typ,
		SubjectID:           s.ID,
		DecisionContexts:    q.DecisionContexts,
		ProductVersion:      q.ProductVersion,
		When:                q.When,
		PolicyVersion:       e.policies.Version(),
		IgnoreMissingPolicy: e.ignoreMissing[typ],
	}
	x := evaluator{e: e, s: s, typ: typ, q: &q, ev: ev}
	x.verified = x.vbuf[:0]
	var applicable [8]*Policy
	pols, nrules := applicable[:0], 0
	policies := e.policies.Policies()
	if q.Policies != nil {
		policies = q.Policies
	}
	for _, p := range policies {
		if p.matches(q.DecisionContexts, q.ProductVersion, typ) {
			pols = append(pols, p)
			nrules += len(p.Rules)
		}
	}
	ev.ApplicablePolicies = make([]string, len(pols))
	ev.Answers = make([]Answer, 0, nrules+1)
	for i, p := range pols {
		ev.ApplicablePolicies[i] = p.ID
		x.checkPolicy(p, p.ID)
	}
	ev.NoApplicablePolicies = len(ev.ApplicablePolicies) == 0
	x.waive()
	ev.PoliciesSatisfied = true
	for i := range ev.Answers {
		if !ev.Answers[i].Satisfied {
			ev.PoliciesSatisfied = false
			break
		}
	}
	if summary {
		ev.Summary = summarize(ev.Answers)
	}
	if q.Verbose {
		x.views()
	}
	return ev
}

func (s *Subject) primaryType() string {
	if s.HasType(SubjectKojiBuild) || len(s.Types) == 0 {
		return SubjectKojiBuild
	}
	return s.Types[0]
}

type evaluator struct {
	e        *Engine
	s        *Subject
	typ      string
	q        *Query
	ev       *Evaluation
	verified []string
	vbuf     [8]string
}

func (x *evaluator) add(a Answer) {
	a.Test = a.kind.isTest()
	a.Satisfied = a.kind == kindPassed || a.kind == kindFetched || a.kind == kindExcluded
	a.Requirement.SubjectType = x.typ
	a.Requirement.SubjectID = x.s.ID
	x.ev.Answers = append(x.ev.Answers, a)
}

// checkPolicy is Greenwave's Policy.check: package filters, then every
// rule not verified yet in this decision.
func (x *evaluator) checkPolicy(p *Policy, source string) {
	if x.e.nvrTypes[x.typ] {
		if name := packageName(x.s.ID); name != "" {
			switch {
			case slices.Contains(p.Blacklist, name):
				x.add(Answer{kind: kindExcluded, PolicyID: p.ID, Remote: p.Remote,
					Requirement: avro.Requirement{Type: ReqBlacklisted, Source: source, Detail: "blacklisted by " + p.label()}})
				return
			case p.exclGlobs.match(name):
				x.add(Answer{kind: kindExcluded, PolicyID: p.ID, Remote: p.Remote,
					Requirement: avro.Requirement{Type: ReqExcluded, Source: source, Detail: "excluded by " + p.label()}})
				return
			case len(p.pkgGlobs) > 0 && !p.pkgGlobs.match(name):
				return // the packages allowlist does not list it
			}
		}
	}
	for i := range p.Rules {
		r := &p.Rules[i]
		k := r.k
		if k == "" {
			k = r.key()
		}
		if slices.Contains(x.verified, k) {
			continue
		}
		x.verified = append(x.verified, k)
		switch r.Kind {
		case RulePassingTestCase:
			x.checkTestCase(p, r, source)
		case RuleRemote:
			x.checkRemote(p, r)
		}
	}
}

type resultHit struct {
	key   *ResultKey
	entry *ResultEntry
}

func (x *evaluator) checkTestCase(p *Policy, r *Rule, source string) {
	if !r.ValidSince.IsZero() || !r.ValidUntil.IsZero() {
		// Compare with the build's creation time, so that a policy edit
		// does not rewrite history. Unknown yet: the rule applies.
		if ct := x.s.Build.CreationTime; !ct.IsZero() {
			x.ev.extra = append(x.ev.extra, x.s.Build.Info)
			if !r.ValidSince.IsZero() && ct.Before(r.ValidSince) {
				return
			}
			if !r.ValidUntil.IsZero() && !r.ValidUntil.After(ct) {
				return
			}
		}
	}
	var buf [4]resultHit
	hits := x.latestResults(r.TestCaseName, buf[:0])
	if r.HasScenario {
		n := 0
		for _, h := range hits {
			if h.key.Scenario == r.Scenario {
				hits[n] = h
				n++
			}
		}
		hits = hits[:n]
	}
	if len(hits) == 0 {
		req := avro.Requirement{Type: ReqTestResultMissing, Testcase: r.TestCaseName, Source: source}
		if r.HasScenario {
			req.Scenario = r.Scenario
		}
		x.add(Answer{kind: kindMissing, PolicyID: p.ID, Remote: p.Remote, Requirement: req})
		return
	}
	for _, h := range hits {
		kind := outcomeKind(h.entry.Outcome)
		req := avro.Requirement{
			Testcase:      r.TestCaseName,
			Scenario:      h.key.Scenario,
			SystemArch:    h.key.SystemArch,
			SystemVariant: h.key.SystemVariant,
			ResultID:      h.entry.ResultID,
			Source:        source,
		}
		switch kind {
		case kindPassed:
			req.Type = ReqTestResultPassed
		case kindIncomplete:
			req.Type, req.Pending = ReqTestResultMissing, true
		case kindErrored:
			req.Type, req.Detail = ReqTestResultErrored, h.entry.ErrorReason
		default:
			req.Type = ReqTestResultFailed
		}
		x.add(Answer{kind: kind, PolicyID: p.ID, Remote: p.Remote, Requirement: req,
			Result: h.entry})
	}
}

// resultTypes are the subject types whose results count for a subject
// type (Greenwave's result_queries: a container image's results include
// those reported for its Koji build).
func resultTypes(t string, buf *[2]string) []string {
	buf[0] = t
	if t == SubjectContainerImage {
		buf[1] = SubjectKojiBuild
		return buf[:2]
	}
	return buf[:1]
}

// latestResults returns the latest result per key for a test case,
// newest first (ResultsDB's /results/latest order).
func (x *evaluator) latestResults(testcase string, hits []resultHit) []resultHit {
	var tb [2]string
	for _, t := range resultTypes(x.typ, &tb) {
		rs := x.s.Results
		i, _ := slices.BinarySearchFunc(rs, ResultKey{SubjectType: t, Testcase: testcase},
			func(a ResultSeries, k ResultKey) int { return a.ResultKey.compare(k) })
		for ; i < len(rs) && rs[i].SubjectType == t && rs[i].Testcase == testcase; i++ {
			if h := x.latest(&rs[i]); h != nil {
				hits = append(hits, resultHit{&rs[i].ResultKey, h})
			}
		}
	}
	if len(hits) > 1 {
		slices.SortStableFunc(hits, func(a, b resultHit) int { return compareResults(b.entry, a.entry) })
	}
	return hits
}

func (x *evaluator) latest(rs *ResultSeries) *ResultEntry {
	for i := len(rs.History) - 1; i >= 0; i-- {
		h := &rs.History[i]
		if !x.q.When.IsZero() && h.Event.Time.After(x.q.When) {
			continue
		}
		if slices.Contains(x.q.IgnoreResults, h.ResultID) {
			return nil
		}
		return h
	}
	return nil
}

// latestWaiver returns the waiver (or unwaiver) in force for a key as of
// the query's time; nil when none, or when it is ignored.
func (x *evaluator) latestWaiver(ws *WaiverSeries) *WaiverEntry {
	for i := len(ws.History) - 1; i >= 0; i-- {
		h := &ws.History[i]
		if !x.q.When.IsZero() && h.Event.Time.After(x.q.When) {
			continue
		}
		if slices.Contains(x.q.IgnoreWaivers, h.WaiverID) {
			return nil
		}
		return h
	}
	return nil
}

// findWaiver returns the latest waiver in force for the test case and
// scenario at the query's product version (a waiver without a scenario
// waives every scenario) and, when there is none, the latest unwaiver that
// matches, for provenance.
func (x *evaluator) findWaiver(testcase, scenario string) (active, unwaived *WaiverEntry) {
	ws := x.s.Waivers
	i, _ := slices.BinarySearchFunc(ws, WaiverKey{SubjectType: x.typ, Testcase: testcase},
		func(a WaiverSeries, k WaiverKey) int { return a.WaiverKey.compare(k) })
	for ; i < len(ws) && ws[i].SubjectType == x.typ && ws[i].Testcase == testcase; i++ {
		w := &ws[i]
		if w.ProductVersion != x.q.ProductVersion || (!w.AllScenarios && w.Scenario != scenario) {
			continue
		}
		h := x.latestWaiver(w)
		switch {
		case h == nil:
		case h.Waived:
			if active == nil || compareWaivers(h, active) > 0 {
				active = h
			}
		case unwaived == nil || compareWaivers(h, unwaived) > 0:
			unwaived = h
		}
	}
	if active != nil {
		unwaived = nil
	}
	return active, unwaived
}

// checkRemote is Greenwave's RemoteRule.check over the remote rule files
// in state: the first source whose file exists is used.
func (x *evaluator) checkRemote(p *Policy, r *Rule) {
	sources := r.Sources
	if len(sources) == 0 {
		sources = []string{x.e.remotePath}
	}
	var (
		file  *RemoteFile
		tried []string
		files []*RemoteFile
	)
	for _, src := range sources {
		f := x.s.remoteFile(src)
		if f == nil {
			x.add(Answer{kind: kindPendingYAML, PolicyID: p.ID, Sources: sources,
				Requirement: avro.Requirement{Type: ReqPendingGatingYAML, Testcase: ReqPendingGatingYAML,
					Pending: true, Source: p.ID, Detail: "remote rule file not fetched yet: " + src}})
			return
		}
		tried = append(tried, f.locator())
		files = append(files, f)
		if f.rank() == 0 {
			x.add(Answer{kind: kindFailedFetch, PolicyID: p.ID, Sources: tried, files: files,
				Requirement: avro.Requirement{Type: ReqFailedFetchGatingYAML, Testcase: ReqFailedFetchGatingYAML,
					Source: p.ID, Detail: f.FetchError}})
			return
		}
		if !f.Missing {
			file = f
			break
		}
	}
	if file == nil {
		if r.Required {
			x.add(Answer{kind: kindMissingYAML, PolicyID: p.ID, Sources: tried, files: files,
				Requirement: avro.Requirement{Type: ReqMissingGatingYAML, Testcase: ReqMissingGatingYAML,
					Source: p.ID, Detail: "not found: " + strings.Join(tried, ", ")}})
		}
		return
	}
	loc := file.locator()
	x.add(Answer{kind: kindFetched, PolicyID: p.ID, Remote: true, Sources: []string{loc}, files: []*RemoteFile{file},
		Requirement: avro.Requirement{Type: ReqFetchedGatingYAML, Testcase: ReqFetchedGatingYAML, Source: loc}})
	pols, err := x.e.parseRemote(file)
	if err != nil {
		x.add(Answer{kind: kindInvalidYAML, PolicyID: p.ID, Remote: true, Sources: []string{loc}, files: []*RemoteFile{file},
			Requirement: avro.Requirement{Type: ReqInvalidGatingYAML, Testcase: ReqInvalidGatingYAML,
				Source: loc, Detail: err.Error()}})
		return
	}
	for _, sp := range pols {
		if !p.matchesSubPolicy(sp) {
			continue
		}
		if sp.matches(x.q.DecisionContexts, x.q.ProductVersion, x.typ) {
			x.checkPolicy(sp, loc)
		}
	}
}

// remoteFile returns the file for a path at the build's source commit:
// a file fetched at that commit, else one fetched without a known commit.
// While the build's commit is unknown, the latest file of the path is
// used. Nil means not fetched yet.
func (s *Subject) remoteFile(path string) *RemoteFile {
	commit := s.Build.SourceCommit
	var best, unknown *RemoteFile
	better := func(a, b *RemoteFile) bool {
		return b == nil || a.rank() > b.rank() || (a.rank() == b.rank() && a.Event.after(b.Event))
	}
	for i := range s.RemoteFiles {
		f := &s.RemoteFiles[i]
		if f.Path != path {
			continue
		}
		switch {
		case commit == "" || f.Commit == commit:
			if better(f, best) {
				best = f
			}
		case f.Commit == "":
			if better(f, unknown) {
				unknown = f
			}
		}
	}
	if best == nil {
		return unknown
	}
	return best
}

// waive turns unsatisfied test answers with a waiver in force into
// "-waived" satisfied ones, and drops remote rule file errors that are
// waived (Greenwave's to_waived returns None for those).
func (x *evaluator) waive() {
	out := x.ev.Answers[:0]
	for _, a := range x.ev.Answers {
		if !a.Satisfied {
			switch a.kind {
			case kindMissing, kindIncomplete, kindFailed, kindErrored:
				w, unwaived := x.findWaiver(a.Requirement.Testcase, a.Requirement.Scenario)
				switch {
				case w != nil:
					a.Satisfied, a.Waived = true, true
					a.Requirement.Type += ReqWaivedSuffix
					a.Requirement.WaiverID = w.WaiverID
					a.Waiver = w
				case unwaived != nil:
					a.unwaived = unwaived
				}
			case kindInvalidYAML, kindMissingYAML, kindFailedFetch:
				if w, _ := x.findWaiver(a.Requirement.Testcase, ""); w != nil {
					continue
				}
			}
		}
		out = append(out, a)
	}
	x.ev.Answers = out
}

func (x *evaluator) views() {
	var tb [2]string
	for _, t := range resultTypes(x.typ, &tb) {
		for i := range x.s.Results {
			rs := &x.s.Results[i]
			if rs.SubjectType != t {
				continue
			}
			if h := x.latest(rs); h != nil {
				x.ev.Results = append(x.ev.Results, ResultView{rs.ResultKey, *h})
			}
		}
	}
	slices.SortStableFunc(x.ev.Results, func(a, b ResultView) int { return compareResults(&b.ResultEntry, &a.ResultEntry) })
	for i := range x.s.Waivers {
		ws := &x.s.Waivers[i]
		if ws.SubjectType != x.typ || ws.ProductVersion != x.q.ProductVersion {
			continue
		}
		if h := x.latestWaiver(ws); h != nil && h.Waived {
			x.ev.Waivers = append(x.ev.Waivers, WaiverView{ws.WaiverKey, *h})
		}
	}
	slices.SortStableFunc(x.ev.Waivers, func(a, b WaiverView) int { return compareWaivers(&b.WaiverEntry, &a.WaiverEntry) })
}

// Summary messages, in the order Greenwave sorts them (by their
// templates).
var (
	testMsgs = [...]struct {
		kind answerKind
		text string
	}{
		{kindMissing, "result%s missing"},
		{kindErrored, "test%s errored"},
		{kindFailed, "test%s failed"},
		{kindIncomplete, "test%s incomplete"},
	}
	otherMsgs = [...]struct {
		kind answerKind
		text string
	}{
		{kindInvalidYAML, "error%s due to invalid remote rule file"},
		{kindMissingYAML, "error%s due to missing remote rule file"},
		{kindFailedFetch, "error%s while trying to fetch remote rule file"},
		{kindPendingYAML, "remote rule file%s not fetched yet"},
	}
)

// summarize is Greenwave's summarize_answers. A missing result whose test
// is queued or running is "incomplete", as Greenwave says.
func summarize(answers []Answer) string {
	var counts [kindPendingYAML + 1]int
	tests := 0
	for i := range answers {
		a := &answers[i]
		if a.Test {
			tests++
		}
		if !a.Satisfied {
			counts[a.kind]++
		}
	}
	plural := func(n int) string {
		if n == 1 {
			return ""
		}
		return "s"
	}
	var b strings.Builder
	for _, m := range otherMsgs {
		if n := counts[m.kind]; n > 0 {
			if b.Len() > 0 {
				b.WriteString(", ")
			}
			b.WriteString(strconv.Itoa(n) + " " + strings.Replace(m.text, "%s", plural(n), 1))
		}
	}
	first := true
	for _, m := range testMsgs {
		if n := counts[m.kind]; n > 0 {
			switch {
			case first && b.Len() > 0:
				b.WriteString(". ")
				fallthrough
			case first:
				b.WriteString("Of " + strconv.Itoa(tests) + " required test" + plural(tests) + ", ")
				first = false
			default:
				b.WriteString(", ")
			}
			b.WriteString(strconv.Itoa(n) + " " + strings.Replace(m.text, "%s", plural(n), 1))
		}
	}
	switch {
	case b.Len() > 0:
		return b.String()
	case tests > 0:
		return "All required tests (" + strconv.Itoa(tests) + " total) have passed or been waived"
	}
	return "No tests are required"
}

// Satisfied returns the satisfied requirements, sorted.
func (ev *Evaluation) Satisfied() []avro.Requirement { return ev.requirements(true) }

// Unsatisfied returns the unsatisfied requirements, sorted.
func (ev *Evaluation) Unsatisfied() []avro.Requirement { return ev.requirements(false) }

func (ev *Evaluation) requirements(sat bool) []avro.Requirement {
	n := 0
	for i := range ev.Answers {
		if ev.Answers[i].Satisfied == sat {
			n++
		}
	}
	out := make([]avro.Requirement, 0, n) // never nil; grown once
	for i := range ev.Answers {
		if ev.Answers[i].Satisfied == sat {
			out = append(out, ev.Answers[i].Requirement)
		}
	}
	slices.SortFunc(out, compareRequirements)
	return out
}

// DerivedFrom returns the ids of the events behind the answers, oldest
// first, at most the 64 newest.
func (ev *Evaluation) DerivedFrom() []string {
	refs := make([]EventRef, 0, 2*len(ev.Answers)+len(ev.extra))
	for i := range ev.Answers {
		refs = ev.Answers[i].appendEvents(refs)
	}
	refs = append(refs, ev.extra...)
	return derivedFrom(refs)
}

func derivedFrom(refs []EventRef) []string {
	refs = slices.DeleteFunc(refs, func(r EventRef) bool { return r.ID == "" })
	slices.SortFunc(refs, func(a, b EventRef) int {
		if c := strings.Compare(a.ID, b.ID); c != 0 {
			return c
		}
		return a.Time.Compare(b.Time)
	})
	refs = slices.CompactFunc(refs, func(a, b EventRef) bool { return a.ID == b.ID })
	slices.SortFunc(refs, func(a, b EventRef) int {
		if c := a.Time.Compare(b.Time); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	if len(refs) > maxDerivedFrom {
		refs = refs[len(refs)-maxDerivedFrom:]
	}
	out := make([]string, len(refs))
	for i, r := range refs {
		out[i] = r.ID
	}
	return out
}

func compareRequirements(a, b avro.Requirement) int {
	if c := cmpStrings(a.Type, b.Type, a.SubjectType, b.SubjectType, a.SubjectID, b.SubjectID,
		a.Testcase, b.Testcase, a.Scenario, b.Scenario, a.SystemArch, b.SystemArch,
		a.SystemVariant, b.SystemVariant, a.Source, b.Source, a.Detail, b.Detail); c != 0 {
		return c
	}
	if c := cmpBool(a.Pending, b.Pending); c != 0 {
		return c
	}
	if c := cmpID(a.ResultID, b.ResultID); c != 0 {
		return c
	}
	return cmpID(a.WaiverID, b.WaiverID)
}

// sameRequirements compares sorted requirement lists ignoring result and
// waiver ids: a new result with the same outcome is no change.
func sameRequirements(a, b []avro.Requirement) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		x.ResultID, y.ResultID, x.WaiverID, y.WaiverID = "", "", "", ""
		if x != y {
			return false
		}
	}
	return true
}

// Gating returns the gating decision updates to emit after trigger was
// applied to s: for every decision key of s whose satisfied or unsatisfied
// requirements changed (ignoring result and waiver ids) since the last
// decision emitted for it, a decision carrying that one as Previous. It
// records what it returns in s. The decisions are deterministic: the same
// state and trigger give the same bytes (see deriveEnvelope). A nil
// trigger gives decisions with a zero envelope time and origin (for a
// re-evaluation after a policy change, say).
func (e *Engine) Gating(s *Subject, trigger *avro.Envelope) []*avro.GatingDecision {
	if trigger == nil {
		trigger = &avro.Envelope{}
	}
	fp := e.gatingInput(s)
	if fp == s.GatingInput {
		return nil // nothing gating depends on changed since the last call
	}
	s.GatingInput = fp
	var out []*avro.GatingDecision
	keys := e.DecisionKeys(s)
	for _, k := range keys {
		ev := e.evaluate(s, Query{SubjectType: k.SubjectType, DecisionContexts: []string{k.DecisionContext},
			ProductVersion: k.ProductVersion}, false)
		if ev.NoApplicablePolicies {
			continue
		}
		sat, unsat := ev.Satisfied(), ev.Unsatisfied()
		rec := s.gatingRecord(k)
		if rec != nil && rec.PoliciesSatisfied == ev.PoliciesSatisfied &&
			sameRequirements(rec.Satisfied, sat) && sameRequirements(rec.Unsatisfied, unsat) {
			continue
		}
		ev.Summary = summarize(ev.Answers) // for the decision emitted
		env := e.deriveEnvelope(SourceGating, trigger, "gating", k.SubjectType, s.ID, k.DecisionContext, k.ProductVersion)
		d := &avro.GatingDecision{
			Decision: avro.Decision{
				Envelope:      env,
				PolicyVersion: e.policies.Version(),
				DerivedFrom:   ev.DerivedFrom(),
				Satisfied:     sat,
				Unsatisfied:   unsat,
			},
			SubjectType:       k.SubjectType,
			SubjectID:         s.ID,
			DecisionContext:   k.DecisionContext,
			ProductVersion:    k.ProductVersion,
			PoliciesSatisfied: ev.PoliciesSatisfied,
			Summary:           ev.Summary,
			AppliedPolicies:   ev.ApplicablePolicies,
		}
		// Requirement lists are never changed in place (a record is
		// replaced whole), so the decision and the subject share them:
		// the previous record's lists pass to Previous, the new lists
		// are both the decision's and the stored record's.
		if rec != nil {
			d.Previous = &avro.PreviousGating{
				PoliciesSatisfied: rec.PoliciesSatisfied,
				Summary:           rec.Summary,
				Satisfied:         rec.Satisfied,
				Unsatisfied:       rec.Unsatisfied,
			}
		}
		s.putGatingRecord(GatingRecord{
			SubjectType:       k.SubjectType,
			DecisionContext:   k.DecisionContext,
			ProductVersion:    k.ProductVersion,
			PoliciesSatisfied: ev.PoliciesSatisfied,
			Summary:           ev.Summary,
			Satisfied:         sat,
			Unsatisfied:       unsat,
			DecisionID:        env.ID,
			DecisionTime:      normTime(env.EventTime),
		})
		if out == nil {
			out = make([]*avro.GatingDecision, 0, len(keys)) // one allocation
		}
		out = append(out, d)
	}
	return out
}

// gatingInput fingerprints everything gating decisions depend on: the
// engine (policies, options), the subject's identity and types, the
// build's creation time and source commit, the latest result and waiver
// per key and the remote rule files. Event ids
// stand for content (an event's content does not change). Two CRC-32s
// with different polynomials make a 64-bit fingerprint.
func (e *Engine) gatingInput(s *Subject) uint64 {
	bp := scratchPool.Get().(*[]byte)
	b := (*bp)[:0]
	b = appendStr(b, e.version)
	b = appendStr(b, s.ID)
	b = appendStrs(b, s.Types)
	b = appendTime(b, s.Build.CreationTime)
	b = appendStr(b, s.Build.SourceCommit)
	for i := range s.Results {
		r := &s.Results[i]
		b = append(b, 'r')
		b = appendStr(b, r.SubjectType)
		b = appendStr(b, r.Testcase)
		b = appendStr(b, r.SystemArch)
		b = appendStr(b, r.SystemVariant)
		b = appendStr(b, r.Scenario)
		if n := len(r.History); n > 0 {
			b = appendStr(b, r.History[n-1].Event.ID)
			b = appendStr(b, r.History[n-1].ResultID)
		}
	}
	for i := range s.Waivers {
		w := &s.Waivers[i]
		b = append(b, 'w')
		b = appendStr(b, w.SubjectType)
		b = appendStr(b, w.Testcase)
		b = appendStr(b, w.Scenario)
		b = appendBool(b, w.AllScenarios)
		b = appendStr(b, w.ProductVersion)
		if n := len(w.History); n > 0 {
			b = appendStr(b, w.History[n-1].Event.ID)
			b = appendStr(b, w.History[n-1].WaiverID)
		}
	}
	for i := range s.RemoteFiles {
		f := &s.RemoteFiles[i]
		b = append(b, 'f')
		b = appendStr(b, f.Commit)
		b = appendStr(b, f.Path)
		b = appendStr(b, f.Event.ID)
	}
	fp := uint64(crc32.Checksum(b, castagnoli))<<32 | uint64(crc32.ChecksumIEEE(b))
	putScratch(bp, b)
	return fp
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// scratchPool holds the buffers gatingInput fingerprints in: a buffer on
// the stack escapes to the heap (crc32 keeps no reference, but the
// compiler cannot tell), which cost an allocation of 1 KiB per event.
var scratchPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// putScratch returns bp to the pool with b, what it grew to, unless b
// grew past 64 KiB (a rare huge subject): the pool keeps no such buffer.
func putScratch(bp *[]byte, b []byte) {
	if cap(b) > 64<<10 {
		return
	}
	*bp = b[:0]
	scratchPool.Put(bp)
}

// WriteText writes the evaluation for people ("factory2 why"): the
// verdict, then every requirement with its evidence and since when.
func (ev *Evaluation) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s: %s @ %s (policies %s)\n", ev.SubjectType, ev.SubjectID,
		strings.Join(ev.DecisionContexts, ","), ev.ProductVersion, ev.PolicyVersion)
	if ev.NoApplicablePolicies {
		b.WriteString("  no applicable policies\n")
	} else {
		fmt.Fprintf(&b, "  policies: %s\n", strings.Join(ev.ApplicablePolicies, ", "))
	}
	verdict := "NOT SATISFIED"
	if ev.PoliciesSatisfied {
		verdict = "SATISFIED"
	}
	fmt.Fprintf(&b, "  %s: %s\n", verdict, ev.Summary)
	for i := range ev.Answers {
		a := &ev.Answers[i]
		mark := "✗"
		switch {
		case a.Satisfied:
			mark = "✓"
		case a.Requirement.Pending:
			mark = "…"
		}
		r := &a.Requirement
		fmt.Fprintf(&b, "  %s %s %s", mark, r.Type, r.Testcase)
		for _, kv := range [][2]string{{"scenario", r.Scenario}, {"arch", r.SystemArch}, {"variant", r.SystemVariant}} {
			if kv[1] != "" {
				fmt.Fprintf(&b, " %s=%s", kv[0], kv[1])
			}
		}
		if res := a.Result; res != nil {
			fmt.Fprintf(&b, " [%s since %s, result %s]", res.Outcome, res.Event.Time.Format(time.RFC3339), res.ResultID)
		}
		if w := a.Waiver; w != nil {
			fmt.Fprintf(&b, " [waived by %s at %s: %q]", w.User, w.Event.Time.Format(time.RFC3339), w.Comment)
		}
		if r.Detail != "" {
			fmt.Fprintf(&b, " (%s)", r.Detail)
		}
		if r.Source != "" {
			fmt.Fprintf(&b, " <%s>", r.Source)
		}
		b.WriteByte('\n')
	}
	_, err := io.WriteString(w, b.String())
	return err
}
