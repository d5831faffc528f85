package gating

import (
	"hash/maphash"

	"github.com/factory2/factory2/avro"
)

// The build view: what the compose processors need of a build (state,
// tags, signed keys, gating decisions), sent as an avro.ComposeMember
// without compose id to topics.GatingBuilds whenever it changes. The
// compose-members processor reads it instead of the build events, so
// that every input it has is written by this processor's task, in one
// order that a replay reproduces (see DESIGN.md, "Compose readiness").

var viewSeed = maphash.MakeSeed()

// isBuild reports whether s is a build the build system told of.
func isBuild(s *Subject) bool { return s.Build.State != "" || len(s.Tags) > 0 }

// viewFingerprint fingerprints the build view of s (0: s is no build).
// It is only compared within one process.
func viewFingerprint(s *Subject) uint64 {
	if !isBuild(s) {
		return 0
	}
	var h maphash.Hash
	h.SetSeed(viewSeed)
	str := func(v string) {
		h.WriteString(v)
		h.WriteByte(0)
	}
	var b [8]byte
	i64 := func(v int64) {
		for i := range b {
			b[i] = byte(v >> (8 * i))
		}
		h.Write(b[:])
	}
	str(s.Build.State)
	i64(int64(s.Build.BuildID))
	for _, t := range s.Tags {
		if t.Tagged {
			str(t.Name)
			str(t.Event.ID)
			// The instant, not its text: formatting it was a tenth of
			// this function's cost, and a zone is no change of view.
			if t.Event.Time.IsZero() {
				h.WriteByte(0)
			} else {
				h.WriteByte(1)
				i64(t.Event.Time.Unix())
				i64(int64(t.Event.Time.Nanosecond()))
			}
		}
	}
	h.WriteByte(1)
	for _, r := range s.Signed {
		if r.Signed {
			str(r.KeyID)
		}
	}
	h.WriteByte(1)
	for _, g := range s.Gating {
		str(g.SubjectType)
		str(g.DecisionContext)
		str(g.ProductVersion)
		str(g.DecisionID)
	}
	return h.Sum64() | 1
}

// buildView returns the build view of s after trigger, nil if s is no
// build. Its envelope derives from the trigger like a decision's.
func (e *Engine) buildView(s *Subject, trigger *avro.Envelope) *avro.ComposeMember {
	if !isBuild(s) {
		return nil
	}
	v := &avro.ComposeMember{
		Envelope: e.deriveEnvelope(SourceGating, trigger, "build-view", s.ID),
		NVR:      s.ID,
		Package:  packageName(s.ID),
		BuildID:  s.Build.BuildID,
		State:    s.Build.State,
	}
	// Each list is allocated once, at its length (nil when empty).
	tagged, signed := 0, 0
	for _, t := range s.Tags {
		if t.Tagged {
			tagged++
		}
	}
	for _, r := range s.Signed {
		if r.Signed {
			signed++
		}
	}
	if tagged > 0 {
		v.Tags = make([]avro.MemberTag, 0, tagged)
	}
	if signed > 0 {
		v.SignedKeys = make([]string, 0, signed)
	}
	if len(s.Gating) > 0 {
		v.Gating = make([]avro.MemberGating, 0, len(s.Gating))
	}
	for _, t := range s.Tags {
		if t.Tagged {
			v.Tags = append(v.Tags, avro.MemberTag{Tag: t.Name, Order: t.Event.Time.UnixMicro(), EventID: t.Event.ID})
		}
	}
	for _, r := range s.Signed {
		if r.Signed {
			v.SignedKeys = append(v.SignedKeys, r.KeyID)
		}
	}
	for _, g := range s.Gating {
		v.Gating = append(v.Gating, avro.MemberGating{
			DecisionContext: g.DecisionContext,
			ProductVersion:  g.ProductVersion,
			Satisfied:       g.PoliciesSatisfied,
			Pending:         !g.PoliciesSatisfied && allWaiting(g.Unsatisfied),
			DecisionID:      g.DecisionID,
			Summary:         g.Summary,
		})
	}
	return v
}

// allWaiting reports whether every unsatisfied requirement waits for
// something (a test result, a gating.yaml) rather than failed.
func allWaiting(rs []avro.Requirement) bool {
	for _, r := range rs {
		if r.Type != ReqTestResultMissing && r.Type != ReqPendingGatingYAML {
			return false
		}
	}
	return true
}
