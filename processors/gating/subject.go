package gating

import (
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/factory2/factory2/avro"
)

// Subject types with a built-in meaning.
const (
	SubjectKojiBuild      = "koji_build"
	SubjectCompose        = "compose"
	SubjectBodhiUpdate    = "bodhi_update"
	SubjectContainerImage = "redhat-container-image"
	SubjectModule         = "redhat-module"
)

// NormalizeSubjectType resolves subject type aliases: "brew-build" (Brew is
// Red Hat's Koji) is "koji_build", as in Greenwave's subject type config.
func NormalizeSubjectType(t string) string {
	if t == "brew-build" {
		return SubjectKojiBuild
	}
	return t
}

// Errors of Subject.Apply and Subject.UnmarshalBinary.
var (
	// ErrUnsupportedRecord: the record type has no meaning for gating.
	ErrUnsupportedRecord = errors.New("gating: unsupported record")
	// ErrInvalidRecord: the record lacks a field gating needs.
	ErrInvalidRecord = errors.New("gating: invalid record")
	// ErrSubjectMismatch: the record is about another subject than the
	// state it is applied to (a keying bug upstream).
	ErrSubjectMismatch = errors.New("gating: record is about another subject")
	// ErrCorruptState: stored subject bytes do not decode.
	ErrCorruptState = errors.New("gating: corrupt subject state")
)

// maxHistory bounds the entries kept per result key and per waiver key.
// The latest decides; the older ones answer as-of ("when") queries and
// ignore_result/ignore_waiver.
const maxHistory = 4

// EventRef names the event a piece of state comes from: its envelope ID
// and its own time (event time; submit time for results).
type EventRef struct {
	ID   string
	Time time.Time
}

// after orders events by time, then ID. It only picks which of two events
// a piece of provenance (Build.Info, ArtifactsEvent, Signatures.Last) or
// an immutable fact (a remote rule file of one commit) cites: no register
// that a decision follows is ordered by it.
func (r EventRef) after(o EventRef) bool {
	if !r.Time.Equal(o.Time) {
		return r.Time.After(o.Time)
	}
	return r.ID > o.ID
}

// Subject is the gating state of one subject (a build NVR, a compose id,
// a Bodhi update): everything the gating and autosign decisions are
// computed from, and what was emitted already.
//
// Events are applied in the order the runtime gives them, which is the
// log order within each input topic-partition (and one fixed merge of the
// topics, the same live and in replay). Each part of the state follows
// the order that is the truth for it:
//
//   - the build state follows Koji's state machine in log order: the
//     latest state change applies unless Koji cannot make that
//     transition from the current state (kojiTransition);
//   - a tag's membership is its latest tag or untag event in log order;
//   - results and waivers are ordered by their own times (ResultsDB's
//     submit_time, WaiverDB's timestamp), then by their ResultsDB or
//     WaiverDB ids, then by log order, as Greenwave reads them;
//   - signatures and artifacts are sets that only grow, and the build's
//     immutable facts (ids, times, source) join to the greater value.
//
// No content hash decides what is current. Applying an event twice (the
// same envelope ID) changes nothing: results and waivers are kept by
// their ids, and the ids of the latest build events are remembered
// (RecentBuildEvents). Slices are kept sorted by their key.
//
// A Subject is not safe for concurrent use.
type Subject struct {
	// ID is the subject identifier (NVR, compose id, update alias).
	ID string
	// Types are the subject types events named it with, normalized and
	// sorted (usually one: koji_build).
	Types []string
	// Build is what the build system said about the build.
	Build Build
	// Tags are the build's tags, including untagged ones (Tagged false)
	// so that a late, older tag event cannot resurrect them.
	Tags []Tag
	// Signatures are per signing key.
	Signatures []Signatures
	// Results are the latest test results per ResultKey.
	Results []ResultSeries
	// Waivers are the latest waivers per WaiverKey.
	Waivers []WaiverSeries
	// RemoteFiles are the fetched remote rule files (gating.yaml) per
	// (commit, path).
	RemoteFiles []RemoteFile
	// Gating is the last gating decision emitted per (subject type,
	// decision context, product version).
	Gating []GatingRecord
	// Autosign is the autosign decision state per signing key.
	Autosign []AutosignRecord
	// Signed is the signed status emitted per signing key.
	Signed []SignedRecord
	// GatingInput fingerprints what the gating decisions were last
	// computed from (the engine and the state they depend on), so that
	// Gating skips the evaluation when an event changed nothing of it
	// (a tag, a signature). Zero forces the next evaluation.
	GatingInput uint64
	// RecentBuildEvents are fingerprints (eventFingerprint) of the ids of
	// the latest maxRecentBuildEvents build events applied, oldest first:
	// build state and tags follow log order, so a build event delivered
	// again later (a bus redelivery, a re-sent capture) is recognized by
	// its id and changes nothing.
	RecentBuildEvents []uint64

	encodedSize int // of the last encoding, to size the next one
}

// Build is the build system's view of a build.
type Build struct {
	Name, Version, Release, Epoch string
	BuildID, TaskID               int64
	Owner, Instance               string
	CreationTime, CompletionTime  time.Time
	SourceURL, SourceCommit       string
	// Info is the latest event that carried any of the fields above.
	// Those are facts that do not change; should two events disagree, the
	// greater value is kept (a join, so the order of events is moot).
	Info EventRef
	// State is the build state (avro.StateComplete, ...): the latest
	// state change in log order that Koji's state machine allows from
	// the state before it (kojiTransition). StateEvent is that change.
	State      string
	StateEvent EventRef
	// Artifacts are the known artifacts, sorted by name: those listed by
	// build events and those named by sign events.
	Artifacts []avro.Artifact
	// ArtifactList is true once a build event listed the build's
	// artifacts; only then can "every artifact is signed" be told.
	ArtifactList   bool
	ArtifactsEvent EventRef
}

// Tag is the current membership of the build in one tag: the latest tag
// or untag event for it in log order. Koji lets a build be tagged,
// untagged and tagged again in any sequence (and sends an untag even for
// a build not in the tag when asked not to be strict), so no sequence is
// refused.
type Tag struct {
	Name   string
	Tagged bool
	// By is who tagged or untagged.
	By    string
	Event EventRef
}

// Signatures are the artifacts signed with one key.
type Signatures struct {
	// KeyID is lower-case.
	KeyID string
	// Signed and Failed are artifact names, sorted. An artifact in both
	// failed once and was signed later: it counts as signed.
	Signed []string
	Failed []string
	// Last is the latest sign event for the key.
	Last EventRef
}

// ResultKey is what a latest result is kept per: Greenwave's
// DISTINCT_LATEST_RESULTS_ON (scenario, system_architecture,
// system_variant) within a test case, plus the subject type the result
// was reported for.
type ResultKey struct {
	SubjectType   string
	Testcase      string
	SystemArch    string
	SystemVariant string
	Scenario      string
}

func (k ResultKey) compare(o ResultKey) int {
	return cmpStrings(k.SubjectType, o.SubjectType, k.Testcase, o.Testcase,
		k.SystemArch, o.SystemArch, k.SystemVariant, o.SystemVariant, k.Scenario, o.Scenario)
}

// ResultSeries is the bounded history of results for a key, oldest
// first; the last entry is the latest.
type ResultSeries struct {
	ResultKey
	History []ResultEntry
}

// ResultEntry is one test result. Event.Time is the result's submit time
// (its event time when the submit time is unknown).
type ResultEntry struct {
	ResultID    string
	Outcome     string
	RefURL      string
	ErrorReason string
	Event       EventRef
}

func (e *ResultEntry) identity() string {
	if e.ResultID != "" {
		return e.ResultID
	}
	return "\x00" + e.Event.ID
}

// compareResults orders results as Greenwave reads them from ResultsDB
// (/results/latest, newest first): by submit_time, then by ResultsDB id.
// Results it cannot tell apart (the same time, ids that are not
// ResultsDB's) compare equal, and the history keeps them in log order
// (insertHistory puts a result after its equals).
func compareResults(a, b *ResultEntry) int {
	if c := a.Event.Time.Compare(b.Event.Time); c != 0 {
		return c
	}
	return cmpSerial(a.ResultID, b.ResultID)
}

// WaiverKey is what the latest waiver is kept per. AllScenarios is a
// waiver without a scenario, which waives every scenario of the test case.
type WaiverKey struct {
	SubjectType    string
	Testcase       string
	Scenario       string
	AllScenarios   bool
	ProductVersion string
}

func (k WaiverKey) compare(o WaiverKey) int {
	if c := cmpStrings(k.SubjectType, o.SubjectType, k.Testcase, o.Testcase,
		k.ProductVersion, o.ProductVersion, k.Scenario, o.Scenario); c != 0 {
		return c
	}
	return cmpBool(k.AllScenarios, o.AllScenarios)
}

// WaiverSeries is the bounded history of waivers for a key, oldest first;
// the last entry is the one in force (which may unwaive).
type WaiverSeries struct {
	WaiverKey
	History []WaiverEntry
}

// WaiverEntry is one waiver (Waived true) or unwaiver (Waived false).
type WaiverEntry struct {
	WaiverID  string
	Waived    bool
	User      string
	ProxiedBy string
	Comment   string
	Event     EventRef
}

func (e *WaiverEntry) identity() string {
	if e.WaiverID != "" {
		return e.WaiverID
	}
	return "\x00" + e.Event.ID
}

// compareWaivers orders waivers by WaiverDB's timestamp, then by WaiverDB
// id (WaiverDB's "most recent" is the greatest id, and its ids and
// timestamps grow together). Waivers it cannot tell apart (the same
// time, ids that are not WaiverDB's) compare equal, and the history keeps
// them in log order, so an unwaiver sent after a waiver with the same
// time wins.
func compareWaivers(a, b *WaiverEntry) int {
	if c := a.Event.Time.Compare(b.Event.Time); c != 0 {
		return c
	}
	return cmpSerial(a.WaiverID, b.WaiverID)
}

// RemoteFile is a fetched remote rule file. A file read or found missing
// beats a fetch error; otherwise the latest event wins.
type RemoteFile struct {
	Commit     string
	Path       string
	SourceURL  string
	Content    string
	Missing    bool
	FetchError string
	Event      EventRef
}

func (f *RemoteFile) rank() int {
	if f.FetchError != "" && !f.Missing && f.Content == "" {
		return 0
	}
	return 1
}

// locator names the file in requirements (Greenwave's policy source).
func (f *RemoteFile) locator() string {
	if f.SourceURL != "" {
		return f.SourceURL
	}
	if f.Commit != "" {
		return f.Path + "@" + f.Commit
	}
	return f.Path
}

// GatingRecord is the last gating decision emitted for a key.
type GatingRecord struct {
	SubjectType       string
	DecisionContext   string
	ProductVersion    string
	PoliciesSatisfied bool
	Summary           string
	Satisfied         []avro.Requirement
	Unsatisfied       []avro.Requirement
	// DecisionID and DecisionTime are the emitted decision's envelope ID
	// and event time.
	DecisionID   string
	DecisionTime time.Time
}

func (r *GatingRecord) key() DecisionKey {
	return DecisionKey{SubjectType: r.SubjectType, DecisionContext: r.DecisionContext, ProductVersion: r.ProductVersion}
}

// AutosignRecord is the autosign state of one signing key.
type AutosignRecord struct {
	KeyID string
	// Active is true while a sign decision is outstanding: emitted, and
	// neither revoked nor fulfilled.
	Active bool
	// Action is the last emitted action.
	Action string
	// Rule, Key, FromTag, ToTag and Priority are those of the last sign
	// decision, for its revoke.
	Rule     string
	Key      string
	FromTag  string
	ToTag    string
	Priority int32
	// DecisionID is the last emitted decision's envelope ID.
	DecisionID string
}

// SignedRecord is the signed status emitted for one key.
type SignedRecord struct {
	KeyID      string
	Signed     bool
	DecisionID string
}

// Apply merges one event into the state and reports whether the state
// changed. It is deterministic, and idempotent: a duplicate (same
// envelope ID, same content) changes nothing. Events of one input topic
// must be applied in their log order (build state and tags follow it);
// how the topics interleave changes no part of the final state, only the
// decisions made on the way. Records that are not gating inputs give
// ErrUnsupportedRecord; on any error the state is unchanged.
func (s *Subject) Apply(r avro.Record) (changed bool, err error) {
	switch e := r.(type) {
	case *avro.BuildEvent:
		return s.applyBuild(e)
	case *avro.SignEvent:
		return s.applySign(e)
	case *avro.TestResult:
		return s.applyResult(e)
	case *avro.Waiver:
		return s.applyWaiver(e)
	case *avro.RemoteRuleFile:
		return s.applyRemoteFile(e)
	case nil:
		return false, fmt.Errorf("%w: nil record", ErrInvalidRecord)
	}
	return false, fmt.Errorf("%w: %s", ErrUnsupportedRecord, r.SchemaName())
}

func invalid(kind, id, why string) error {
	return fmt.Errorf("%w: %s %s: %s", ErrInvalidRecord, kind, id, why)
}

func (s *Subject) checkID(id string) error {
	if s.ID != "" && s.ID != id {
		return fmt.Errorf("%w: state is %q, record is about %q", ErrSubjectMismatch, s.ID, id)
	}
	return nil
}

func (s *Subject) addIdentity(id, typ string) bool {
	ch := false
	if s.ID == "" {
		s.ID, ch = id, true
	}
	if i, found := slices.BinarySearch(s.Types, typ); !found {
		s.Types = slices.Insert(s.Types, i, typ)
		ch = true
	}
	return ch
}

// HasType reports whether events named the subject with subject type t.
func (s *Subject) HasType(t string) bool {
	_, found := slices.BinarySearch(s.Types, NormalizeSubjectType(t))
	return found
}

func (s *Subject) applyBuild(e *avro.BuildEvent) (bool, error) {
	if e.NVR == "" {
		return false, invalid("build event", e.ID, "no NVR")
	}
	switch e.Kind {
	case avro.BuildStateChange:
	case avro.BuildTag, avro.BuildUntag:
		if e.Tag == "" {
			return false, invalid("build event", e.ID, e.Kind+" without a tag")
		}
	default:
		return false, invalid("build event", e.ID, fmt.Sprintf("unknown kind %q", e.Kind))
	}
	if err := s.checkID(e.NVR); err != nil {
		return false, err
	}
	fp := eventFingerprint(e.ID)
	if slices.Contains(s.RecentBuildEvents, fp) {
		return false, nil // delivered again
	}
	// From here on the state changes, if only by remembering the event.
	s.rememberBuildEvent(fp)
	s.addIdentity(e.NVR, SubjectKojiBuild)
	ref := EventRef{ID: e.ID, Time: normTime(e.EventTime)}
	b := &s.Build
	carries := false
	for _, f := range []struct {
		dst *string
		v   string
	}{
		{&b.Name, e.Name}, {&b.Version, e.Version}, {&b.Release, e.Release}, {&b.Epoch, e.Epoch},
		{&b.Owner, e.Owner}, {&b.Instance, e.Instance},
		{&b.SourceURL, e.SourceURL}, {&b.SourceCommit, e.SourceCommit},
	} {
		if f.v != "" {
			carries = true
			joinString(f.dst, f.v)
		}
	}
	for _, f := range []struct {
		dst *int64
		v   int64
	}{{&b.BuildID, e.BuildID}, {&b.TaskID, e.TaskID}} {
		if f.v != 0 {
			carries = true
			joinInt(f.dst, f.v)
		}
	}
	for _, f := range []struct {
		dst *time.Time
		v   time.Time
	}{{&b.CreationTime, e.CreationTime}, {&b.CompletionTime, e.CompletionTime}} {
		if !f.v.IsZero() {
			carries = true
			joinTime(f.dst, normTime(f.v))
		}
	}
	if carries && ref.after(b.Info) {
		b.Info = ref
	}
	if len(e.Artifacts) > 0 {
		b.addArtifacts(e.Artifacts)
		b.ArtifactList = true
		if ref.after(b.ArtifactsEvent) {
			b.ArtifactsEvent = ref
		}
	}
	if e.State != "" {
		st := strings.ToUpper(e.State)
		if kojiTransition(b.State, st, strings.ToUpper(e.OldState)) {
			b.State, b.StateEvent = st, ref
		}
	}
	if e.Kind != avro.BuildStateChange {
		s.setTag(Tag{Name: e.Tag, Tagged: e.Kind == avro.BuildTag, By: e.TagUser, Event: ref})
	}
	return true, nil
}

// kojiTransition reports whether Koji changes a build's state from cur to
// next, as its hub does (kojihub.py, koji 1.35):
//
//   - a new build is created BUILDING (initBuild, cg_init_build) or
//     COMPLETE (an import), so from no known state anything goes;
//   - BUILDING → COMPLETE (completeBuild, import_build, a content
//     generator import), → FAILED (failBuild, cg_refund_build),
//     → CANCELED (cancel_build, cg_refund_build);
//   - FAILED or CANCELED → BUILDING or COMPLETE: new_build on an NVR that
//     exists recycles the build (recycle_build: only a FAILED or CANCELED
//     build without tag history, RPMs or archives, under the same build
//     id, with the new task); a BUILDING or COMPLETE build is never
//     recycled;
//   - any state but DELETED → DELETED (delete_build, which refuses
//     nothing by state; a DELETED build is left as it is);
//   - any state → CANCELED by reset_build (an admin's reset before a
//     reimport), whose message names the state it reset from: so from a
//     state other than BUILDING, a CANCELED that does not name the
//     current state as its old state is not a transition Koji made.
//
// A state equal to the current one is no transition (Koji sends none: a
// restarted build task re-initializing its build is silent). States Koji
// does not have are taken in log order.
func kojiTransition(cur, next, old string) bool {
	if cur == "" || !isKojiState(cur) || !isKojiState(next) {
		return cur != next
	}
	switch next {
	case cur:
		return false
	case avro.StateDeleted:
		return true
	case avro.StateCanceled:
		return cur == avro.StateBuilding || old == cur
	case avro.StateFailed:
		return cur == avro.StateBuilding
	case avro.StateComplete:
		return cur == avro.StateBuilding || cur == avro.StateFailed || cur == avro.StateCanceled
	case avro.StateBuilding:
		return cur == avro.StateFailed || cur == avro.StateCanceled
	}
	return false
}

func isKojiState(st string) bool {
	switch st {
	case avro.StateBuilding, avro.StateComplete, avro.StateDeleted, avro.StateFailed, avro.StateCanceled:
		return true
	}
	return false
}

// maxRecentBuildEvents bounds Subject.RecentBuildEvents. A build sees a
// handful of build events (two or three state changes per attempt, a tag
// and untag per step of its way to a release); a redelivery of one older
// than the last maxRecentBuildEvents would be applied again.
const maxRecentBuildEvents = 16

// eventFingerprint is the 64-bit FNV-1a hash of an event id: what
// RecentBuildEvents keeps of each id.
func eventFingerprint(id string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(id))
	return h.Sum64()
}

func (s *Subject) rememberBuildEvent(fp uint64) {
	if len(s.RecentBuildEvents) >= maxRecentBuildEvents {
		s.RecentBuildEvents = slices.Delete(s.RecentBuildEvents, 0, len(s.RecentBuildEvents)-maxRecentBuildEvents+1)
	}
	s.RecentBuildEvents = append(s.RecentBuildEvents, fp)
}

// setTag records the latest tag or untag event of a tag.
func (s *Subject) setTag(t Tag) {
	i, found := slices.BinarySearchFunc(s.Tags, t.Name, func(x Tag, n string) int { return strings.Compare(x.Name, n) })
	if !found {
		s.Tags = slices.Insert(s.Tags, i, t)
		return
	}
	s.Tags[i] = t
}

// Tagged reports whether the build is currently in tag.
func (s *Subject) Tagged(tag string) bool {
	i, found := slices.BinarySearchFunc(s.Tags, tag, func(x Tag, n string) int { return strings.Compare(x.Name, n) })
	return found && s.Tags[i].Tagged
}

func (b *Build) addArtifacts(as []avro.Artifact) bool {
	ch := false
	for _, a := range as {
		if a.Name == "" {
			continue
		}
		i, found := slices.BinarySearchFunc(b.Artifacts, a.Name, func(x avro.Artifact, n string) int { return strings.Compare(x.Name, n) })
		if !found {
			b.Artifacts = slices.Insert(b.Artifacts, i, a)
			ch = true
			continue
		}
		cur := &b.Artifacts[i]
		ch = joinString(&cur.ID, a.ID) || ch
		ch = joinString(&cur.Type, a.Type) || ch
		ch = joinString(&cur.Arch, a.Arch) || ch
	}
	return ch
}

func (s *Subject) applySign(e *avro.SignEvent) (bool, error) {
	if e.NVR == "" || e.SigKey == "" {
		return false, invalid("sign event", e.ID, "no NVR or sigkey")
	}
	outcome := strings.ToLower(e.Outcome)
	if outcome != avro.SignSigned && outcome != avro.SignFailed {
		return false, invalid("sign event", e.ID, fmt.Sprintf("unknown outcome %q", e.Outcome))
	}
	var names []string
	for _, a := range e.Artifacts {
		if a.Name != "" {
			names = append(names, a.Name)
		}
	}
	if len(names) == 0 {
		return false, invalid("sign event", e.ID, "no artifacts")
	}
	if err := s.checkID(e.NVR); err != nil {
		return false, err
	}
	ref := EventRef{ID: e.ID, Time: normTime(e.EventTime)}
	ch := s.addIdentity(e.NVR, SubjectKojiBuild)
	if e.BuildID != 0 {
		ch = joinInt(&s.Build.BuildID, e.BuildID) || ch
	}
	ch = s.Build.addArtifacts(e.Artifacts) || ch
	key := strings.ToLower(e.SigKey)
	i, found := slices.BinarySearchFunc(s.Signatures, key, func(x Signatures, k string) int { return strings.Compare(x.KeyID, k) })
	if !found {
		s.Signatures = slices.Insert(s.Signatures, i, Signatures{KeyID: key})
		ch = true
	}
	sig := &s.Signatures[i]
	for _, n := range names {
		if outcome == avro.SignSigned {
			ch = insertString(&sig.Signed, n) || ch
		} else {
			ch = insertString(&sig.Failed, n) || ch
		}
	}
	if ref.after(sig.Last) {
		sig.Last, ch = ref, true
	}
	return ch, nil
}

func (s *Subject) signatures(key string) *Signatures {
	i, found := slices.BinarySearchFunc(s.Signatures, key, func(x Signatures, k string) int { return strings.Compare(x.KeyID, k) })
	if !found {
		return nil
	}
	return &s.Signatures[i]
}

func (s *Subject) applyResult(e *avro.TestResult) (bool, error) {
	if e.SubjectID == "" || e.SubjectType == "" || e.Testcase == "" {
		return false, invalid("test result", e.ID, "no subject type, subject id or testcase")
	}
	if err := s.checkID(e.SubjectID); err != nil {
		return false, err
	}
	typ := NormalizeSubjectType(e.SubjectType)
	t := e.SubmitTime
	if t.IsZero() {
		t = e.EventTime
	}
	entry := ResultEntry{
		ResultID:    e.ResultID,
		Outcome:     strings.ToUpper(strings.TrimSpace(e.Outcome)),
		RefURL:      e.RefURL,
		ErrorReason: e.ErrorReason,
		Event:       EventRef{ID: e.ID, Time: normTime(t)},
	}
	key := ResultKey{SubjectType: typ, Testcase: e.Testcase, SystemArch: e.SystemArch,
		SystemVariant: e.SystemVariant, Scenario: e.Scenario}
	ch := s.addIdentity(e.SubjectID, typ)
	i, found := slices.BinarySearchFunc(s.Results, key, func(x ResultSeries, k ResultKey) int { return x.ResultKey.compare(k) })
	if !found {
		s.Results = slices.Insert(s.Results, i, ResultSeries{ResultKey: key})
	}
	ch = insertHistory(&s.Results[i].History, entry, (*ResultEntry).identity, compareResults,
		func(e *ResultEntry) string { return e.Event.ID }) || ch
	return ch, nil
}

func (s *Subject) applyWaiver(e *avro.Waiver) (bool, error) {
	if e.SubjectID == "" || e.SubjectType == "" || e.Testcase == "" || e.ProductVersion == "" {
		return false, invalid("waiver", e.ID, "no subject type, subject id, testcase or product version")
	}
	if err := s.checkID(e.SubjectID); err != nil {
		return false, err
	}
	typ := NormalizeSubjectType(e.SubjectType)
	key := WaiverKey{SubjectType: typ, Testcase: e.Testcase, ProductVersion: e.ProductVersion}
	if e.Scenario == nil || *e.Scenario == "" {
		key.AllScenarios = true
	} else {
		key.Scenario = *e.Scenario
	}
	entry := WaiverEntry{
		WaiverID:  e.WaiverID,
		Waived:    e.Waived,
		User:      e.User,
		ProxiedBy: e.ProxiedBy,
		Comment:   truncate(e.Comment, maxCommentBytes),
		Event:     EventRef{ID: e.ID, Time: normTime(e.EventTime)},
	}
	ch := s.addIdentity(e.SubjectID, typ)
	i, found := slices.BinarySearchFunc(s.Waivers, key, func(x WaiverSeries, k WaiverKey) int { return x.WaiverKey.compare(k) })
	if !found {
		s.Waivers = slices.Insert(s.Waivers, i, WaiverSeries{WaiverKey: key})
	}
	ch = insertHistory(&s.Waivers[i].History, entry, (*WaiverEntry).identity, compareWaivers,
		func(e *WaiverEntry) string { return e.Event.ID }) || ch
	return ch, nil
}

// maxCommentBytes bounds a waiver comment kept in state.
const maxCommentBytes = 512

func (s *Subject) applyRemoteFile(e *avro.RemoteRuleFile) (bool, error) {
	if e.SubjectID == "" || e.Path == "" {
		return false, invalid("remote rule file", e.ID, "no subject id or path")
	}
	if err := s.checkID(e.SubjectID); err != nil {
		return false, err
	}
	typ := SubjectKojiBuild
	if e.SubjectType != "" {
		typ = NormalizeSubjectType(e.SubjectType)
	}
	f := RemoteFile{
		Commit:     e.SourceCommit,
		Path:       e.Path,
		SourceURL:  e.SourceURL,
		Content:    e.Content,
		Missing:    e.Missing,
		FetchError: e.FetchError,
		Event:      EventRef{ID: e.ID, Time: normTime(e.EventTime)},
	}
	ch := s.addIdentity(e.SubjectID, typ)
	i, found := slices.BinarySearchFunc(s.RemoteFiles, f, func(x, y RemoteFile) int {
		return cmpStrings(x.Commit, y.Commit, x.Path, y.Path)
	})
	switch {
	case !found:
		s.RemoteFiles = slices.Insert(s.RemoteFiles, i, f)
		ch = true
	case f.rank() > s.RemoteFiles[i].rank() ||
		(f.rank() == s.RemoteFiles[i].rank() && f.Event.after(s.RemoteFiles[i].Event)):
		s.RemoteFiles[i] = f
		ch = true
	}
	return ch, nil
}

// insertHistory inserts e into the sorted history h, after the entries
// that compare equal to it (so that equals stay in log order), then keeps
// the maxHistory latest entries. An entry with the same identity (the
// same result or waiver again) is kept unless e is later by cmp; when the
// two compare equal, the copy with the greater event ID is kept in place,
// so that which copy the state holds does not depend on their order.
func insertHistory[E any](h *[]E, e E, identity func(*E) string, cmp func(a, b *E) int, eventID func(*E) string) bool {
	id := identity(&e)
	for i := range *h {
		old := &(*h)[i]
		if identity(old) != id {
			continue
		}
		switch c := cmp(&e, old); {
		case c < 0:
			return false
		case c == 0:
			if eventID(&e) <= eventID(old) {
				return false
			}
			*old = e
			return true
		}
		*h = slices.Delete(*h, i, i+1)
		break
	}
	// The first entry later than e.
	i := sort.Search(len(*h), func(j int) bool { return cmp(&(*h)[j], &e) > 0 })
	if len(*h) >= maxHistory && i == 0 {
		return false // older than everything kept
	}
	*h = slices.Insert(*h, i, e)
	if len(*h) > maxHistory {
		*h = slices.Delete(*h, 0, len(*h)-maxHistory)
	}
	return true
}

func (s *Subject) gatingRecord(k DecisionKey) *GatingRecord {
	i, found := slices.BinarySearchFunc(s.Gating, k, func(r GatingRecord, k DecisionKey) int { return r.key().compare(k) })
	if !found {
		return nil
	}
	return &s.Gating[i]
}

func (s *Subject) putGatingRecord(r GatingRecord) {
	i, found := slices.BinarySearchFunc(s.Gating, r.key(), func(x GatingRecord, k DecisionKey) int { return x.key().compare(k) })
	if found {
		s.Gating[i] = r
		return
	}
	s.Gating = slices.Insert(s.Gating, i, r)
}

func (s *Subject) autosignRecord(key string) *AutosignRecord {
	i, found := slices.BinarySearchFunc(s.Autosign, key, func(r AutosignRecord, k string) int { return strings.Compare(r.KeyID, k) })
	if !found {
		return nil
	}
	return &s.Autosign[i]
}

func (s *Subject) putAutosignRecord(r AutosignRecord) {
	i, found := slices.BinarySearchFunc(s.Autosign, r.KeyID, func(x AutosignRecord, k string) int { return strings.Compare(x.KeyID, k) })
	if found {
		s.Autosign[i] = r
		return
	}
	s.Autosign = slices.Insert(s.Autosign, i, r)
}

func (s *Subject) signedRecord(key string) *SignedRecord {
	i, found := slices.BinarySearchFunc(s.Signed, key, func(r SignedRecord, k string) int { return strings.Compare(r.KeyID, k) })
	if !found {
		return nil
	}
	return &s.Signed[i]
}

func (s *Subject) putSignedRecord(r SignedRecord) {
	i, found := slices.BinarySearchFunc(s.Signed, r.KeyID, func(x SignedRecord, k string) int { return strings.Compare(x.KeyID, k) })
	if found {
		s.Signed[i] = r
		return
	}
	s.Signed = slices.Insert(s.Signed, i, r)
}

// normTime drops the monotonic reading and location so that times compare
// and encode identically after a round trip.
func normTime(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return time.Unix(t.Unix(), int64(t.Nanosecond())).UTC()
}

func joinString(dst *string, v string) bool {
	if v != "" && v > *dst {
		*dst = v
		return true
	}
	return false
}

func joinInt(dst *int64, v int64) bool {
	if v > *dst {
		*dst = v
		return true
	}
	return false
}

func joinTime(dst *time.Time, v time.Time) bool {
	if v.After(*dst) {
		*dst = v
		return true
	}
	return false
}

func insertString(set *[]string, v string) bool {
	i, found := slices.BinarySearch(*set, v)
	if found {
		return false
	}
	*set = slices.Insert(*set, i, v)
	return true
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && n < len(s) && s[n]&0xC0 == 0x80 {
		n-- // do not split a UTF-8 sequence
	}
	return s[:n]
}

// cmpSerial compares ids that a database sequence assigned (ResultsDB and
// WaiverDB ids, decimal numbers) numerically. An id that is not one sorts
// before those that are, and two such ids compare equal: unlike cmpID it
// is a total preorder, as a sorted history needs, and it never orders by
// an id that is a content hash.
func cmpSerial(a, b string) int {
	switch an, bn := isDigits(a), isDigits(b); {
	case an && bn:
		return cmpID(a, b)
	case an:
		return 1
	case bn:
		return -1
	}
	return 0
}

// cmpID compares ids numerically when both are decimal numbers (ResultsDB
// and WaiverDB ids), as strings otherwise.
func cmpID(a, b string) int {
	if isDigits(a) && isDigits(b) {
		a, b = strings.TrimLeft(a, "0"), strings.TrimLeft(b, "0")
		if len(a) != len(b) {
			return cmpInt(len(a), len(b))
		}
	}
	return strings.Compare(a, b)
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case !a:
		return -1
	}
	return 1
}

// cmpStrings compares pairs (a0, b0), (a1, b1), ... lexicographically.
func cmpStrings(pairs ...string) int {
	for i := 0; i+1 < len(pairs); i += 2 {
		if c := strings.Compare(pairs[i], pairs[i+1]); c != 0 {
			return c
		}
	}
	return 0
}
