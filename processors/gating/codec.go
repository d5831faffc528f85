package gating

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/factory2/factory2/avro"
)

// subjectFormat is the first byte of an encoded Subject. A change of the
// encoding gets a new value; UnmarshalBinary rejects unknown ones.
// Format 2 added RecentBuildEvents at the end; format 1 (without them)
// still decodes.
const (
	subjectFormat   byte = 2
	subjectFormatV1 byte = 1
)

// MarshalBinary encodes the subject compactly and deterministically: the
// same state always gives the same bytes (every slice is kept sorted, times
// are UTC seconds and nanoseconds). The first byte is the format version.
func (s *Subject) MarshalBinary() ([]byte, error) {
	return s.AppendBinary(make([]byte, 0, s.sizeHint()))
}

// AppendBinary appends the encoding of MarshalBinary to b (a buffer to
// reuse when the encoding is copied away, as Context.Put does).
func (s *Subject) AppendBinary(b []byte) ([]byte, error) {
	start := len(b)
	b = append(b, subjectFormat)
	b = appendStr(b, s.ID)
	b = appendStrs(b, s.Types)

	bd := &s.Build
	for _, v := range []string{bd.Name, bd.Version, bd.Release, bd.Epoch, bd.Owner, bd.Instance, bd.SourceURL, bd.SourceCommit, bd.State} {
		b = appendStr(b, v)
	}
	b = binary.AppendVarint(b, bd.BuildID)
	b = binary.AppendVarint(b, bd.TaskID)
	b = appendTime(b, bd.CreationTime)
	b = appendTime(b, bd.CompletionTime)
	b = appendRef(b, bd.Info)
	b = appendRef(b, bd.StateEvent)
	b = appendBool(b, bd.ArtifactList)
	b = appendRef(b, bd.ArtifactsEvent)
	b = binary.AppendUvarint(b, uint64(len(bd.Artifacts)))
	for i := range bd.Artifacts {
		a := &bd.Artifacts[i]
		b = appendStr(b, a.ID)
		b = appendStr(b, a.Name)
		b = appendStr(b, a.Type)
		b = appendStr(b, a.Arch)
	}

	b = binary.AppendUvarint(b, uint64(len(s.Tags)))
	for i := range s.Tags {
		t := &s.Tags[i]
		b = appendStr(b, t.Name)
		b = appendBool(b, t.Tagged)
		b = appendStr(b, t.By)
		b = appendRef(b, t.Event)
	}

	b = binary.AppendUvarint(b, uint64(len(s.Signatures)))
	for i := range s.Signatures {
		g := &s.Signatures[i]
		b = appendStr(b, g.KeyID)
		b = appendStrs(b, g.Signed)
		b = appendStrs(b, g.Failed)
		b = appendRef(b, g.Last)
	}

	b = binary.AppendUvarint(b, uint64(len(s.Results)))
	for i := range s.Results {
		r := &s.Results[i]
		b = appendStr(b, r.SubjectType)
		b = appendStr(b, r.Testcase)
		b = appendStr(b, r.SystemArch)
		b = appendStr(b, r.SystemVariant)
		b = appendStr(b, r.Scenario)
		b = binary.AppendUvarint(b, uint64(len(r.History)))
		for j := range r.History {
			h := &r.History[j]
			b = appendStr(b, h.ResultID)
			b = appendStr(b, h.Outcome)
			b = appendStr(b, h.RefURL)
			b = appendStr(b, h.ErrorReason)
			b = appendRef(b, h.Event)
		}
	}

	b = binary.AppendUvarint(b, uint64(len(s.Waivers)))
	for i := range s.Waivers {
		w := &s.Waivers[i]
		b = appendStr(b, w.SubjectType)
		b = appendStr(b, w.Testcase)
		b = appendStr(b, w.Scenario)
		b = appendBool(b, w.AllScenarios)
		b = appendStr(b, w.ProductVersion)
		b = binary.AppendUvarint(b, uint64(len(w.History)))
		for j := range w.History {
			h := &w.History[j]
			b = appendStr(b, h.WaiverID)
			b = appendBool(b, h.Waived)
			b = appendStr(b, h.User)
			b = appendStr(b, h.ProxiedBy)
			b = appendStr(b, h.Comment)
			b = appendRef(b, h.Event)
		}
	}

	b = binary.AppendUvarint(b, uint64(len(s.RemoteFiles)))
	for i := range s.RemoteFiles {
		f := &s.RemoteFiles[i]
		b = appendStr(b, f.Commit)
		b = appendStr(b, f.Path)
		b = appendStr(b, f.SourceURL)
		b = appendStr(b, f.Content)
		b = appendBool(b, f.Missing)
		b = appendStr(b, f.FetchError)
		b = appendRef(b, f.Event)
	}

	b = binary.AppendUvarint(b, s.GatingInput)
	b = binary.AppendUvarint(b, uint64(len(s.Gating)))
	for i := range s.Gating {
		g := &s.Gating[i]
		b = appendStr(b, g.SubjectType)
		b = appendStr(b, g.DecisionContext)
		b = appendStr(b, g.ProductVersion)
		b = appendBool(b, g.PoliciesSatisfied)
		b = appendStr(b, g.Summary)
		b = appendReqs(b, g.Satisfied, g.SubjectType, s.ID)
		b = appendReqs(b, g.Unsatisfied, g.SubjectType, s.ID)
		b = appendStr(b, g.DecisionID)
		b = appendTime(b, g.DecisionTime)
	}

	b = binary.AppendUvarint(b, uint64(len(s.Autosign)))
	for i := range s.Autosign {
		a := &s.Autosign[i]
		b = appendStr(b, a.KeyID)
		b = appendBool(b, a.Active)
		b = appendStr(b, a.Action)
		b = appendStr(b, a.Rule)
		b = appendStr(b, a.Key)
		b = appendStr(b, a.FromTag)
		b = appendStr(b, a.ToTag)
		b = binary.AppendVarint(b, int64(a.Priority))
		b = appendStr(b, a.DecisionID)
	}

	b = binary.AppendUvarint(b, uint64(len(s.Signed)))
	for i := range s.Signed {
		r := &s.Signed[i]
		b = appendStr(b, r.KeyID)
		b = appendBool(b, r.Signed)
		b = appendStr(b, r.DecisionID)
	}

	b = binary.AppendUvarint(b, uint64(len(s.RecentBuildEvents)))
	for _, fp := range s.RecentBuildEvents {
		b = binary.LittleEndian.AppendUint64(b, fp)
	}
	s.encodedSize = len(b) - start
	return b, nil
}

// UnmarshalBinary decodes what MarshalBinary encoded, replacing s. It
// returns an error wrapping ErrCorruptState for anything else. The decoded
// strings share one copy of data, which the caller may reuse afterwards.
func (s *Subject) UnmarshalBinary(data []byte) error {
	return s.unmarshal(string(data))
}

// unmarshal is UnmarshalBinary of data held in a string, which the
// decoded strings share without a copy.
func (s *Subject) unmarshal(data string) error {
	if len(data) == 0 {
		return fmt.Errorf("%w: empty", ErrCorruptState)
	}
	if data[0] != subjectFormat && data[0] != subjectFormatV1 {
		return fmt.Errorf("%w: unknown format %d", ErrCorruptState, data[0])
	}
	d := decoder{s: data, off: 1}
	var n Subject
	n.ID = d.str()
	n.Types = d.strs()

	b := &n.Build
	for _, p := range []*string{&b.Name, &b.Version, &b.Release, &b.Epoch, &b.Owner, &b.Instance, &b.SourceURL, &b.SourceCommit, &b.State} {
		*p = d.str()
	}
	b.BuildID = d.varint()
	b.TaskID = d.varint()
	b.CreationTime = d.time()
	b.CompletionTime = d.time()
	b.Info = d.ref()
	b.StateEvent = d.ref()
	b.ArtifactList = d.boolean()
	b.ArtifactsEvent = d.ref()
	if c := d.count(4); c > 0 {
		b.Artifacts = make([]avro.Artifact, c)
		for i := range b.Artifacts {
			a := &b.Artifacts[i]
			a.ID, a.Name, a.Type, a.Arch = d.str(), d.str(), d.str(), d.str()
		}
	}

	if c := d.count(4); c > 0 {
		n.Tags = make([]Tag, c)
		for i := range n.Tags {
			t := &n.Tags[i]
			t.Name = d.str()
			t.Tagged = d.boolean()
			t.By = d.str()
			t.Event = d.ref()
		}
	}

	if c := d.count(5); c > 0 {
		n.Signatures = make([]Signatures, c)
		for i := range n.Signatures {
			g := &n.Signatures[i]
			g.KeyID = d.str()
			g.Signed = d.strs()
			g.Failed = d.strs()
			g.Last = d.ref()
		}
	}

	if c := d.count(6); c > 0 {
		n.Results = make([]ResultSeries, c)
		for i := range n.Results {
			r := &n.Results[i]
			r.SubjectType, r.Testcase, r.SystemArch, r.SystemVariant, r.Scenario = d.str(), d.str(), d.str(), d.str(), d.str()
			if hc := d.count(6); hc > 0 {
				r.History = make([]ResultEntry, hc)
				for j := range r.History {
					h := &r.History[j]
					h.ResultID, h.Outcome, h.RefURL, h.ErrorReason = d.str(), d.str(), d.str(), d.str()
					h.Event = d.ref()
				}
			}
		}
	}

	if c := d.count(6); c > 0 {
		n.Waivers = make([]WaiverSeries, c)
		for i := range n.Waivers {
			w := &n.Waivers[i]
			w.SubjectType, w.Testcase, w.Scenario = d.str(), d.str(), d.str()
			w.AllScenarios = d.boolean()
			w.ProductVersion = d.str()
			if hc := d.count(7); hc > 0 {
				w.History = make([]WaiverEntry, hc)
				for j := range w.History {
					h := &w.History[j]
					h.WaiverID = d.str()
					h.Waived = d.boolean()
					h.User, h.ProxiedBy, h.Comment = d.str(), d.str(), d.str()
					h.Event = d.ref()
				}
			}
		}
	}

	if c := d.count(8); c > 0 {
		n.RemoteFiles = make([]RemoteFile, c)
		for i := range n.RemoteFiles {
			f := &n.RemoteFiles[i]
			f.Commit, f.Path, f.SourceURL, f.Content = d.str(), d.str(), d.str(), d.str()
			f.Missing = d.boolean()
			f.FetchError = d.str()
			f.Event = d.ref()
		}
	}

	n.GatingInput = d.uvarint()
	if c := d.count(8); c > 0 {
		n.Gating = make([]GatingRecord, c)
		for i := range n.Gating {
			g := &n.Gating[i]
			g.SubjectType, g.DecisionContext, g.ProductVersion = d.str(), d.str(), d.str()
			g.PoliciesSatisfied = d.boolean()
			g.Summary = d.str()
			g.Satisfied = d.reqs(g.SubjectType, n.ID)
			g.Unsatisfied = d.reqs(g.SubjectType, n.ID)
			g.DecisionID = d.str()
			g.DecisionTime = d.time()
		}
	}

	if c := d.count(9); c > 0 {
		n.Autosign = make([]AutosignRecord, c)
		for i := range n.Autosign {
			a := &n.Autosign[i]
			a.KeyID = d.str()
			a.Active = d.boolean()
			a.Action, a.Rule, a.Key, a.FromTag, a.ToTag = d.str(), d.str(), d.str(), d.str(), d.str()
			a.Priority = int32(d.varint())
			a.DecisionID = d.str()
		}
	}

	if c := d.count(3); c > 0 {
		n.Signed = make([]SignedRecord, c)
		for i := range n.Signed {
			r := &n.Signed[i]
			r.KeyID = d.str()
			r.Signed = d.boolean()
			r.DecisionID = d.str()
		}
	}

	if data[0] >= subjectFormat {
		if c := d.count(8); c > 0 {
			n.RecentBuildEvents = make([]uint64, c)
			for i := range n.RecentBuildEvents {
				n.RecentBuildEvents[i] = d.fixed64()
			}
		}
	}
	if d.err == nil && d.off != len(d.s) {
		d.fail("trailing bytes")
	}
	if d.err != nil {
		return d.err
	}
	*s = n
	s.encodedSize = len(data)
	return nil
}

func (s *Subject) sizeHint() int {
	if s.encodedSize > 0 {
		return s.encodedSize + 512
	}
	n := 256 + len(s.ID) + 64*len(s.Build.Artifacts) + 48*len(s.Tags)
	for i := range s.Results {
		n += 64 + 96*len(s.Results[i].History)
	}
	for i := range s.Waivers {
		n += 64 + 128*len(s.Waivers[i].History)
	}
	for i := range s.RemoteFiles {
		n += 64 + len(s.RemoteFiles[i].Content)
	}
	for i := range s.Gating {
		n += 64 + 96*(len(s.Gating[i].Satisfied)+len(s.Gating[i].Unsatisfied))
	}
	for i := range s.Signatures {
		n += 32 + 48*(len(s.Signatures[i].Signed)+len(s.Signatures[i].Failed))
	}
	return n + 64*(len(s.Autosign)+len(s.Signed)) + 8*len(s.RecentBuildEvents)
}

func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}

func appendTime(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(b, 0)
	}
	b = append(b, 1)
	b = binary.AppendVarint(b, t.Unix())
	return binary.AppendUvarint(b, uint64(t.Nanosecond()))
}

func appendRef(b []byte, r EventRef) []byte {
	return appendTime(appendStr(b, r.ID), r.Time)
}

func appendStrs(b []byte, ss []string) []byte {
	b = binary.AppendUvarint(b, uint64(len(ss)))
	for _, s := range ss {
		b = appendStr(b, s)
	}
	return b
}

// Requirement flags. The subject type and id of a gating requirement are
// nearly always the decision's: they are not repeated.
const (
	reqPending = 1 << iota
	reqSameSubjectType
	reqSameSubjectID
)

func appendReqs(b []byte, rs []avro.Requirement, subjectType, subjectID string) []byte {
	b = binary.AppendUvarint(b, uint64(len(rs)))
	for i := range rs {
		r := &rs[i]
		var flags byte
		if r.Pending {
			flags |= reqPending
		}
		if r.SubjectType == subjectType {
			flags |= reqSameSubjectType
		}
		if r.SubjectID == subjectID {
			flags |= reqSameSubjectID
		}
		b = append(b, flags)
		if flags&reqSameSubjectType == 0 {
			b = appendStr(b, r.SubjectType)
		}
		if flags&reqSameSubjectID == 0 {
			b = appendStr(b, r.SubjectID)
		}
		for _, v := range []string{r.Type, r.Testcase, r.Scenario, r.SystemArch, r.SystemVariant,
			r.ResultID, r.WaiverID, r.Source, r.Detail} {
			b = appendStr(b, v)
		}
	}
	return b
}

type decoder struct {
	s   string
	off int
	err error
}

func (d *decoder) fail(why string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s at byte %d", ErrCorruptState, why, d.off)
	}
	d.off = len(d.s)
}

func (d *decoder) uvarint() uint64 {
	if d.off < len(d.s) && d.s[d.off] < 0x80 {
		d.off++
		return uint64(d.s[d.off-1])
	}
	return d.uvarintSlow()
}

func (d *decoder) uvarintSlow() uint64 {
	var v uint64
	for shift := uint(0); shift < 64; shift += 7 {
		if d.off >= len(d.s) {
			d.fail("truncated varint")
			return 0
		}
		c := d.s[d.off]
		d.off++
		v |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return v
		}
	}
	d.fail("varint overflow")
	return 0
}

func (d *decoder) varint() int64 {
	u := d.uvarint()
	v := int64(u >> 1)
	if u&1 != 0 {
		v = ^v
	}
	return v
}

// count reads a slice length, rejecting lengths the remaining bytes cannot
// hold (each element takes at least min bytes).
func (d *decoder) count(min int) int {
	c := d.uvarint()
	if c > uint64(len(d.s)-d.off)/uint64(min) {
		d.fail("length out of range")
		return 0
	}
	return int(c)
}

func (d *decoder) str() string {
	// Fast path: a length below 128 is one byte.
	if d.off < len(d.s) {
		if n := int(d.s[d.off]); n < 0x80 && n < len(d.s)-d.off {
			s := d.s[d.off+1 : d.off+1+n]
			d.off += 1 + n
			return s
		}
	}
	return d.strSlow()
}

func (d *decoder) strSlow() string {
	n := d.uvarint()
	if n > uint64(len(d.s)-d.off) {
		d.fail("string out of range")
		return ""
	}
	s := d.s[d.off : d.off+int(n)]
	d.off += int(n)
	return s
}

func (d *decoder) fixed64() uint64 {
	if len(d.s)-d.off < 8 {
		d.fail("truncated fixed64")
		return 0
	}
	var v uint64
	for i := 7; i >= 0; i-- {
		v = v<<8 | uint64(d.s[d.off+i])
	}
	d.off += 8
	return v
}

func (d *decoder) boolean() bool {
	if d.off >= len(d.s) {
		d.fail("truncated bool")
		return false
	}
	c := d.s[d.off]
	d.off++
	if c > 1 {
		d.fail("bad bool")
	}
	return c == 1
}

func (d *decoder) time() time.Time {
	if !d.boolean() {
		return time.Time{}
	}
	sec := d.varint()
	nsec := d.uvarint()
	if nsec >= 1e9 {
		d.fail("bad nanoseconds")
		return time.Time{}
	}
	t := time.Unix(sec, int64(nsec)).UTC()
	if t.IsZero() {
		d.fail("zero time marked present")
	}
	return t
}

func (d *decoder) ref() EventRef {
	id := d.str()
	return EventRef{ID: id, Time: d.time()}
}

func (d *decoder) strs() []string {
	c := d.count(1)
	if c == 0 {
		return nil
	}
	out := make([]string, c)
	for i := range out {
		out[i] = d.str()
	}
	return out
}

func (d *decoder) reqs(subjectType, subjectID string) []avro.Requirement {
	c := d.count(10)
	if c == 0 {
		return nil
	}
	out := make([]avro.Requirement, c)
	for i := range out {
		r := &out[i]
		if d.off >= len(d.s) {
			d.fail("truncated requirement")
			return nil
		}
		flags := d.s[d.off]
		d.off++
		if flags >= reqSameSubjectID<<1 {
			d.fail("bad requirement flags")
			return nil
		}
		r.Pending = flags&reqPending != 0
		r.SubjectType, r.SubjectID = subjectType, subjectID
		if flags&reqSameSubjectType == 0 {
			r.SubjectType = d.str()
		}
		if flags&reqSameSubjectID == 0 {
			r.SubjectID = d.str()
		}
		r.Type, r.Testcase, r.Scenario, r.SystemArch, r.SystemVariant = d.str(), d.str(), d.str(), d.str(), d.str()
		r.ResultID, r.WaiverID, r.Source, r.Detail = d.str(), d.str(), d.str(), d.str()
	}
	return out
}
