package ingest

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/factory2/factory2/avro"
	"github.com/factory2/factory2/internal/spell"
)

// problem is one invalid field of an event.
type problem struct {
	field string
	err   error
}

func missing(field string) problem { return problem{field, ErrMissing} }

// notOneOf reports a value that is not one of those allowed, with the
// one the writer probably meant when one is close ("did you mean PASSED?").
func notOneOf(field, v string, allowed ...string) problem {
	return problem{field, fmt.Errorf("%q is not one of %s%s", v, strings.Join(allowed, ", "), spell.DidYouMean(v, allowed))}
}

var (
	buildKinds   = []string{avro.BuildStateChange, avro.BuildTag, avro.BuildUntag}
	buildStates  = []string{avro.StateBuilding, avro.StateComplete, avro.StateDeleted, avro.StateFailed, avro.StateCanceled}
	signOutcomes = []string{avro.SignSigned, avro.SignFailed}
	composeKinds = []string{avro.ComposeDefinition, avro.ComposeStatusChange}
	// outcomes are ResultsDB's.
	outcomes = []string{avro.OutcomePassed, avro.OutcomeInfo, avro.OutcomeFailed, avro.OutcomeNeedsInspection,
		avro.OutcomeError, avro.OutcomeQueued, avro.OutcomeRunning}
)

// strictness says how much of what a field may hold is checked.
type strictness bool

const (
	// strict is for what people write (our JSON events, flags): a value
	// outside a field's vocabulary is a typo, refused with a suggestion.
	strict strictness = true
	// tolerant is for what machines send (bus messages): the source
	// system's own rules stand. ResultsDB stores any outcome string, and
	// Greenwave counts an outcome it does not know as a failure, so a test
	// result from the bus keeps its outcome and gating does the same.
	tolerant strictness = false
)

// validate returns every problem of rec, a routed event with its defaults
// filled. Field names are the JSON names. Under strict, a test result's
// outcome must be one of ResultsDB's.
func validate(rec avro.Record, how strictness) []problem {
	var ps []problem
	env := rec.Env()
	if env.ID == "" {
		ps = append(ps, missing("id"))
	}
	if env.Source == "" {
		ps = append(ps, problem{"source", fmt.Errorf("%w (name the producing system, e.g. koji/primary; emit --source sets it)", ErrMissing)})
	}
	if env.EventTime.IsZero() {
		ps = append(ps, problem{"event_time", fmt.Errorf("%w (when the event happened, RFC 3339; emit --event-time-now uses the current time)", ErrMissing)})
	}
	need := func(field, v string) {
		if strings.TrimSpace(v) == "" {
			ps = append(ps, missing(field))
		}
	}
	switch r := rec.(type) {
	case *avro.BuildEvent:
		need("nvr", r.NVR)
		if r.NVR != "" && (r.Name == "" || r.Version == "" || r.Release == "") {
			ps = append(ps, problem{"nvr", fmt.Errorf("%q is not name-version-release (or give name, version and release)", r.NVR)})
		}
		switch {
		case r.Kind == "":
			ps = append(ps, missing("kind"))
		case !slices.Contains(buildKinds, r.Kind):
			ps = append(ps, notOneOf("kind", r.Kind, buildKinds...))
		case r.Kind == avro.BuildStateChange && r.State == "":
			ps = append(ps, problem{"state", fmt.Errorf("%w (a state change needs the new state)", ErrMissing)})
		case r.Kind != avro.BuildStateChange && r.Tag == "":
			ps = append(ps, problem{"tag", fmt.Errorf("%w (a %s needs the tag)", ErrMissing, r.Kind)})
		}
		if r.State != "" && !slices.Contains(buildStates, r.State) {
			ps = append(ps, notOneOf("state", r.State, buildStates...))
		}
		if r.OldState != "" && !slices.Contains(buildStates, r.OldState) {
			ps = append(ps, notOneOf("old_state", r.OldState, buildStates...))
		}
		ps = append(ps, artifactProblems(r.Artifacts)...)
	case *avro.SignEvent:
		need("nvr", r.NVR)
		need("sigkey", r.SigKey)
		if r.Outcome == "" {
			ps = append(ps, missing("outcome"))
		} else if !slices.Contains(signOutcomes, r.Outcome) {
			ps = append(ps, notOneOf("outcome", r.Outcome, signOutcomes...))
		}
		ps = append(ps, artifactProblems(r.Artifacts)...)
	case *avro.TestResult:
		need("subject_type", r.SubjectType)
		need("subject_id", r.SubjectID)
		need("testcase", r.Testcase)
		need("outcome", r.Outcome)
		if how == strict && r.Outcome != "" && !slices.Contains(outcomes, r.Outcome) {
			ps = append(ps, notOneOf("outcome", r.Outcome, outcomes...))
		}
	case *avro.Waiver:
		need("subject_type", r.SubjectType)
		need("subject_id", r.SubjectID)
		need("testcase", r.Testcase)
		need("product_version", r.ProductVersion)
	case *avro.RemoteRuleFile:
		need("subject_type", r.SubjectType)
		need("subject_id", r.SubjectID)
		need("path", r.Path)
		if r.Missing && r.Content != "" {
			ps = append(ps, problem{"content", fmt.Errorf("given for a file that is missing")})
		}
	case *avro.ComposeEvent:
		need("compose_id", r.ComposeID)
		switch {
		case r.Kind == "":
			ps = append(ps, missing("kind"))
		case !slices.Contains(composeKinds, r.Kind):
			ps = append(ps, notOneOf("kind", r.Kind, composeKinds...))
		case r.Kind == avro.ComposeStatusChange && r.Status == "":
			ps = append(ps, problem{"status", fmt.Errorf("%w (a status change needs the new status)", ErrMissing)})
		}
		for i, it := range r.Contents {
			if it.SubjectType == "" || it.SubjectID == "" {
				ps = append(ps, problem{"contents", fmt.Errorf("item %d: subject_type and subject_id are required", i+1)})
			}
		}
		switch r.Kind {
		case avro.ComposeDefinition:
			ps = append(ps, definitionProblems(r)...)
		case avro.ComposeStatusChange:
			for _, f := range definitionFieldsSet(r) {
				ps = append(ps, problem{f, errors.New("set on a status event; it belongs to definition events (kind definition)")})
			}
		}
	case *avro.DependencyEdge:
		need("from_type", r.FromType)
		need("from_id", r.FromID)
		need("relation", r.Relation)
		need("to_type", r.ToType)
		need("to_id", r.ToID)
		if r.FromType == r.ToType && r.FromID == r.ToID && r.FromID != "" {
			ps = append(ps, problem{"to_id", errors.New("an edge from a node to itself")})
		}
	}
	return ps
}

// FieldError is a problem with one field of an event, named by its JSON
// name ("cadence.window_start" for a nested one).
type FieldError struct {
	Field string
	Err   error
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Err.Error() }

func (e *FieldError) Unwrap() error { return e.Err }

// DefinitionProblems returns every problem of the definition fields of c
// (the compose's requirements: source tags, package globs, signing key,
// decision contexts, cadence), whatever c's kind: the rules that ingest
// applies to definition events, for those who build definitions another
// way (the configuration's composes section).
func DefinitionProblems(c *avro.ComposeEvent) []*FieldError {
	var out []*FieldError
	for _, p := range definitionProblems(c) {
		out = append(out, &FieldError{Field: p.field, Err: p.err})
	}
	return out
}

// definitionProblems checks the definition fields of c:
//
//   - source_tags: at least one, unless the definition is retired or
//     lists its contents (a version-1 definition of one Pungi compose);
//     no blank or repeated tag;
//   - packages_allow, packages_deny: globs in path.Match syntax;
//   - signing_key: a hexadecimal key id in lower case, as Koji names
//     keys (the gating engine lower-cases sign events' key ids);
//   - decision_contexts: no blank or repeated context;
//   - cadence: min_interval_ms not negative; window_start and window_end
//     both "HH:MM" (UTC) or both empty, and not equal (a window may wrap
//     midnight, but an empty one would never open).
func definitionProblems(c *avro.ComposeEvent) []problem {
	var ps []problem
	if len(c.SourceTags) == 0 && !c.Retired && len(c.Contents) == 0 {
		ps = append(ps, problem{"source_tags", fmt.Errorf("%w (a definition needs at least one source tag, unless it is retired)", ErrMissing)})
	}
	ps = append(ps, listProblems("source_tags", c.SourceTags)...)
	ps = append(ps, globProblems("packages_allow", c.PackagesAllow)...)
	ps = append(ps, globProblems("packages_deny", c.PackagesDeny)...)
	if k := c.SigningKey; k != "" {
		if _, err := strconv.ParseUint(k, 16, 64); err != nil || len(k) > 16 {
			ps = append(ps, problem{"signing_key", fmt.Errorf("%q is not a hexadecimal key id such as 105ef944", k)})
		} else if k != strings.ToLower(k) {
			// Sign events' key ids are compared in lower case.
			ps = append(ps, problem{"signing_key", fmt.Errorf("%q: write key ids in lower case (%s)", k, strings.ToLower(k))})
		}
	}
	ps = append(ps, listProblems("decision_contexts", c.DecisionContexts)...)
	cad := c.Cadence
	if cad.MinIntervalMS < 0 {
		ps = append(ps, problem{"cadence.min_interval_ms", fmt.Errorf("%d is negative", cad.MinIntervalMS)})
	}
	for _, w := range []struct{ field, v string }{{"cadence.window_start", cad.WindowStart}, {"cadence.window_end", cad.WindowEnd}} {
		if w.v != "" && !isClock(w.v) {
			ps = append(ps, problem{w.field, fmt.Errorf("%q is not a time of day as HH:MM (UTC), e.g. 22:00", w.v)})
		}
	}
	switch start, end := cad.WindowStart, cad.WindowEnd; {
	case (start == "") != (end == ""):
		ps = append(ps, problem{"cadence", errors.New("window_start and window_end go together: give both or neither")})
	case start != "" && start == end && isClock(start):
		ps = append(ps, problem{"cadence", fmt.Errorf("window_start and window_end are both %s: the window would never open", start)})
	}
	return ps
}

// definitionFieldsSet names the definition fields of c that are set.
func definitionFieldsSet(c *avro.ComposeEvent) []string {
	var set []string
	for _, f := range []struct {
		name string
		set  bool
	}{
		{"product_version", c.ProductVersion != ""},
		{"source_tags", len(c.SourceTags) > 0},
		{"packages_allow", len(c.PackagesAllow) > 0},
		{"packages_deny", len(c.PackagesDeny) > 0},
		{"signing_key", c.SigningKey != ""},
		{"decision_contexts", len(c.DecisionContexts) > 0},
		{"cadence", c.Cadence != avro.ComposeCadence{}},
		{"retired", c.Retired},
	} {
		if f.set {
			set = append(set, f.name)
		}
	}
	return set
}

// listProblems reports blank and repeated entries of a list of names.
func listProblems(field string, vs []string) []problem {
	var ps []problem
	for i, v := range vs {
		switch {
		case strings.TrimSpace(v) == "":
			ps = append(ps, problem{field, fmt.Errorf("entry %d is blank", i+1)})
		case slices.Contains(vs[:i], v):
			ps = append(ps, problem{field, fmt.Errorf("entry %d %q repeats an earlier one", i+1, v)})
		}
	}
	return ps
}

// globProblems reports entries that are not path.Match patterns.
func globProblems(field string, globs []string) []problem {
	var ps []problem
	for i, g := range globs {
		if g == "" {
			ps = append(ps, problem{field, fmt.Errorf("entry %d is empty", i+1)})
			continue
		}
		// Match checks the whole pattern, even past a mismatch.
		if _, err := path.Match(g, ""); err != nil {
			ps = append(ps, problem{field, fmt.Errorf("entry %d %q is not a glob (path.Match syntax, e.g. python-*): %v", i+1, g, err)})
		}
	}
	return ps
}

// isClock reports whether v is a time of day as HH:MM, 00:00 to 23:59.
func isClock(v string) bool {
	if len(v) != 5 || v[2] != ':' {
		return false
	}
	h, herr := strconv.Atoi(v[:2])
	m, merr := strconv.Atoi(v[3:])
	digits := strings.Trim(v[:2]+v[3:], "0123456789") == ""
	return herr == nil && merr == nil && digits && h < 24 && m < 60
}

func artifactProblems(as []avro.Artifact) []problem {
	var ps []problem
	for i, a := range as {
		if a.Name == "" || a.Type == "" {
			ps = append(ps, problem{"artifacts", fmt.Errorf("artifact %d: name and type are required", i+1)})
		}
	}
	return ps
}

// fillFromNVR gives a build event without name, version and release the
// parts of its NVR (name-version-release, split at the last two dashes).
func fillFromNVR(rec avro.Record) {
	b, ok := rec.(*avro.BuildEvent)
	if !ok || b.Name != "" || b.Version != "" || b.Release != "" {
		return
	}
	if n, v, r, ok := splitNVR(b.NVR); ok {
		b.Name, b.Version, b.Release = n, v, r
	}
}

func splitNVR(nvr string) (name, version, release string, ok bool) {
	i := strings.LastIndexByte(nvr, '-')
	if i <= 0 {
		return "", "", "", false
	}
	j := strings.LastIndexByte(nvr[:i], '-')
	if j <= 0 || j+1 == i || i+1 == len(nvr) {
		return "", "", "", false
	}
	return nvr[:j], nvr[j+1 : i], nvr[i+1:], true
}

// fillFromID gives a test result without a result id, and a waiver without
// a waiver id, the event's id.
func fillFromID(rec avro.Record) {
	switch r := rec.(type) {
	case *avro.TestResult:
		if r.ResultID == "" {
			r.ResultID = r.ID
		}
	case *avro.Waiver:
		if r.WaiverID == "" {
			r.WaiverID = r.ID
		}
	}
}
