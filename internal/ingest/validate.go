package ingest

import (
	"fmt"
	"slices"
	"strings"

	"github.com/factory2/factory2/avro"
)

// problem is one invalid field of an event.
type problem struct {
	field string
	err   error
}

func missing(field string) problem { return problem{field, ErrMissing} }

func notOneOf(field, v string, allowed ...string) problem {
	return problem{field, fmt.Errorf("%q is not one of %s", v, strings.Join(allowed, ", "))}
}

var (
	buildKinds   = []string{avro.BuildStateChange, avro.BuildTag, avro.BuildUntag}
	buildStates  = []string{avro.StateBuilding, avro.StateComplete, avro.StateDeleted, avro.StateFailed, avro.StateCanceled}
	signOutcomes = []string{avro.SignSigned, avro.SignFailed}
	composeKinds = []string{avro.ComposeDefinition, avro.ComposeStatusChange}
)

// validate returns every problem of rec, a routed event with its defaults
// filled. Field names are the JSON names.
func validate(rec avro.Record) []problem {
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
	}
	return ps
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
