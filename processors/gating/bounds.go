package gating

import (
	"errors"
	"fmt"

	"github.com/factory2/factory2/avro"
)

// Bounds of what one subject may hold. A subject's state is one changelog
// record, which Kafka refuses above its maximum message size (1 MiB by
// default); a refused changelog record aborts the transaction on every
// attempt, so the processor would never get past the event that made it.
const (
	// DefaultMaxSubjectBytes is the default largest encoded state of one
	// subject.
	DefaultMaxSubjectBytes = 512 << 10
	// MaxSubjectBytesLimit is the largest accepted WithMaxSubjectBytes:
	// three quarters of Kafka's default 1 MiB record limit, the rest
	// being room for the record's key and headers and for decision
	// records a re-evaluation adds (which are never refused).
	MaxSubjectBytesLimit = 768 << 10
	// DefaultMaxPolicyFileBytes is the default largest remote rule file
	// (gating.yaml) content a subject accepts.
	DefaultMaxPolicyFileBytes = 256 << 10
)

// validateBounds reports what is wrong with the bounds of
// WithMaxSubjectBytes and WithMaxPolicyFileBytes (internal/config checks
// the same, naming its keys).
func validateBounds(maxSubjectBytes, maxPolicyFileBytes int) error {
	var errs []error
	if maxSubjectBytes <= 0 || maxSubjectBytes > MaxSubjectBytesLimit {
		errs = append(errs, fmt.Errorf("gating: max subject bytes %d: must be in (0, %d]", maxSubjectBytes, MaxSubjectBytesLimit))
	}
	if maxPolicyFileBytes <= 0 || maxPolicyFileBytes >= maxSubjectBytes {
		errs = append(errs, fmt.Errorf("gating: max policy file bytes %d: must be positive and below the max subject bytes %d", maxPolicyFileBytes, maxSubjectBytes))
	}
	return errors.Join(errs...)
}

// WithMaxSubjectBytes bounds the encoded state of one subject (default
// DefaultMaxSubjectBytes, at most MaxSubjectBytesLimit): an event that
// would make it larger is rejected to the dead-letter topic and the
// subject stays as it was. Bounds decide which events enter the state, not
// what a state decides, so they are not part of the engine version.
func WithMaxSubjectBytes(n int) Option {
	return optionFunc(func(o *options) { o.maxSubjectBytes = n })
}

// WithMaxPolicyFileBytes bounds the content of a remote rule file
// (gating.yaml) event (default DefaultMaxPolicyFileBytes); a larger one is
// rejected to the dead-letter topic.
func WithMaxPolicyFileBytes(n int) Option {
	return optionFunc(func(o *options) { o.maxPolicyFileBytes = n })
}

// subjectCheckBytes is the estimated size from which Process checks a
// record's effect on a subject's size exactly. It leaves an eighth of the
// maximum for the decision records an event adds, which are known only
// once the event is applied: below it, an event is applied in place.
func (e *Engine) subjectCheckBytes() int { return e.maxSubjectBytes - e.maxSubjectBytes/8 }

// Upper bounds of encoded pieces: a uvarint (a length, a count, an
// integer) and a time.
const (
	varintBound = 10
	timeBound   = 1 + 2*varintBound
)

func strBound(ss ...string) int {
	n := 0
	for _, s := range ss {
		n += varintBound + len(s)
	}
	return n
}

func refBound(id string) int { return strBound(id) + timeBound }

func artifactsBound(as []avro.Artifact) int {
	n := 0
	for _, a := range as {
		// An artifact name is kept in the build's artifacts and in a
		// signature's list.
		n += strBound(a.ID, a.Name, a.Type, a.Arch) + strBound(a.Name)
	}
	return n
}

// applyBound is an upper bound of how much Subject.Apply(r) can grow a
// subject's encoding: every string of r that the state may keep, with its
// length, where it may be kept (once per place), plus the counts of the
// lists it may extend. Values that replace others are counted whole.
func applyBound(r avro.Record) int {
	// The subject's identity (id and type) and the counts of the lists
	// a record may extend.
	const lists = 8 * varintBound
	switch e := r.(type) {
	case *avro.BuildEvent:
		return lists + strBound(e.NVR, SubjectKojiBuild) +
			strBound(e.Name, e.Version, e.Release, e.Epoch, e.Owner, e.Instance, e.SourceURL, e.SourceCommit) +
			2*strBound(e.State) + // upper-cased, which may lengthen it

			2*varintBound + 2*timeBound + 3*refBound(e.ID) + 1 +
			artifactsBound(e.Artifacts) +
			strBound(e.Tag, e.TagUser) + 1 + refBound(e.ID) +
			8 // its id's fingerprint in RecentBuildEvents
	case *avro.SignEvent:
		return lists + strBound(e.NVR, SubjectKojiBuild) + varintBound +
			artifactsBound(e.Artifacts) + strBound(e.SigKey) + refBound(e.ID)
	case *avro.TestResult:
		return lists + strBound(e.SubjectID, e.SubjectType) +
			strBound(e.SubjectType, e.Testcase, e.SystemArch, e.SystemVariant, e.Scenario) +
			strBound(e.ResultID, e.RefURL, e.ErrorReason) + 2*strBound(e.Outcome) + refBound(e.ID)
	case *avro.Waiver:
		scenario := ""
		if e.Scenario != nil {
			scenario = *e.Scenario
		}
		return lists + strBound(e.SubjectID, e.SubjectType) +
			strBound(e.SubjectType, e.Testcase, scenario, e.ProductVersion) + 1 +
			strBound(e.WaiverID, e.User, e.ProxiedBy) + varintBound + min(len(e.Comment), maxCommentBytes) + 1 + refBound(e.ID)
	case *avro.RemoteRuleFile:
		return lists + strBound(e.SubjectID, e.SubjectType) +
			strBound(e.SourceCommit, e.Path, e.SourceURL, e.Content, e.FetchError) + 1 + refBound(e.ID)
	}
	return 0 // Apply rejects it
}

// recordBound is an upper bound of how much emitting the decision r grows
// its subject's encoding: the record the subject keeps of it (which
// replaces the previous one of its key, counted whole) and the gating
// fingerprint.
func recordBound(r avro.Record) int {
	n := varintBound + varintBound // GatingInput, a list count
	switch d := r.(type) {
	case *avro.GatingDecision:
		n += strBound(d.SubjectType, d.DecisionContext, d.ProductVersion, d.Summary, d.ID) + 1 + timeBound +
			reqsBound(d.Satisfied) + reqsBound(d.Unsatisfied)
	case *avro.AutosignDecision:
		n += strBound(d.KeyID, d.Action, d.Rule, d.Key, d.FromTag, d.ToTag, d.ID) + 1 + varintBound
	case *avro.SignedStatus:
		n += strBound(d.KeyID, d.ID) + 1
	}
	return n
}

func reqsBound(rs []avro.Requirement) int {
	n := varintBound
	for i := range rs {
		r := &rs[i]
		n += 1 + strBound(r.SubjectType, r.SubjectID, r.Type, r.Testcase, r.Scenario, r.SystemArch,
			r.SystemVariant, r.ResultID, r.WaiverID, r.Source, r.Detail)
	}
	return n
}
