package avro

import (
	"strings"
	"time"
)

// Record is one event or decision of the factory2 contract. Every record
// type has exactly one Avro schema (its current version, see Schemas) and
// carries an Envelope.
type Record interface {
	// SchemaName is the Avro full name of the record's schema, e.g.
	// "org.factory2.BuildEvent".
	SchemaName() string
	// Env returns the record's envelope. The pointer aliases the record.
	Env() *Envelope
}

// Envelope is carried by every event and every decision.
type Envelope struct {
	// ID is unique per record and is the producer's idempotency key. For
	// an event translated from a bus message it is derived deterministically
	// from that message (its message id, or a hash of its topic and body),
	// so re-sending the same message yields the same ID.
	ID string `json:"id"`
	// Source names the producing system and instance, e.g. "koji/primary",
	// "resultsdb", "waiverdb", "pungi", "factory2/gating".
	Source string `json:"source"`
	// EventTime is when the fact happened at the source.
	EventTime time.Time `json:"event_time"`
	// IngestTime is when the record entered factory2.
	IngestTime time.Time `json:"ingest_time"`
	// Origin is the provenance of the record: the original message it
	// was translated from, when there was one.
	Origin Origin `json:"origin"`
}

// Origin identifies the original bus message of a record.
type Origin struct {
	// Topic is the original message topic, e.g.
	// "org.fedoraproject.prod.buildsys.tag".
	Topic string `json:"topic,omitempty"`
	// MessageID is the original message id.
	MessageID string `json:"message_id,omitempty"`
}

// Artifact is one output of a build: an RPM, a container image, a module,
// a flatpak, an ostree commit, or anything else. Type is free-form data,
// never an enum: a new content format needs no code change.
type Artifact struct {
	// ID is the artifact's id in the build system (Koji rpm id, image
	// digest, ...), as a string.
	ID string `json:"id,omitempty"`
	// Name is e.g. "bash-5.2.26-3.fc41.x86_64.rpm" or an image pull spec.
	Name string `json:"name"`
	// Type is e.g. "rpm", "container", "module", "flatpak", "ostree".
	Type string `json:"type"`
	// Arch is e.g. "x86_64", "noarch", "src"; empty when not applicable.
	Arch string `json:"arch,omitempty"`
}

// Build event kinds.
const (
	BuildStateChange = "state_change"
	BuildTag         = "tag"
	BuildUntag       = "untag"
)

// Koji build states, as names.
const (
	StateBuilding = "BUILDING"
	StateComplete = "COMPLETE"
	StateDeleted  = "DELETED"
	StateFailed   = "FAILED"
	StateCanceled = "CANCELED"
)

// BuildEvent is a build system (Koji/Brew) build state change, or a tag or
// untag of a build. Keyed by NVR.
type BuildEvent struct {
	Envelope
	// Kind is BuildStateChange, BuildTag or BuildUntag.
	Kind string `json:"kind"`
	// NVR is name-version-release, the subject identifier.
	NVR     string `json:"nvr"`
	Name    string `json:"name"`
	Version string `json:"version"`
	Release string `json:"release"`
	// Epoch is empty when the build has none.
	Epoch   string `json:"epoch,omitempty"`
	BuildID int64  `json:"build_id,omitempty"`
	TaskID  int64  `json:"task_id,omitempty"`
	Owner   string `json:"owner,omitempty"`
	// Instance is the build system instance, e.g. "primary".
	Instance string `json:"instance,omitempty"`
	// State is the build's state after the change (BuildStateChange), or
	// its state when known (tag/untag); OldState the one before.
	State    string `json:"state,omitempty"`
	OldState string `json:"old_state,omitempty"`
	// Tag is the tag a build was tagged into or untagged from; TagUser
	// who did it.
	Tag     string `json:"tag,omitempty"`
	TagUser string `json:"tag_user,omitempty"`
	// CreationTime and CompletionTime are zero when unknown.
	CreationTime   time.Time `json:"creation_time,omitzero"`
	CompletionTime time.Time `json:"completion_time,omitzero"`
	SourceURL      string    `json:"source_url,omitempty"`
	SourceCommit   string    `json:"source_commit,omitempty"`
	// Artifacts produced by the build, where known.
	Artifacts []Artifact `json:"artifacts,omitempty"`
	// Buildroot lists the NVRs the build was built against, where known.
	Buildroot []string `json:"buildroot,omitempty"`
}

// Sign outcomes.
const (
	SignSigned = "signed"
	SignFailed = "failed"
)

// SignEvent says that artifacts of a build were signed (or failed to be)
// with a key. Keyed by the build's NVR.
type SignEvent struct {
	Envelope
	NVR     string `json:"nvr"`
	BuildID int64  `json:"build_id,omitempty"`
	// SigKey is the key id, e.g. "a15b79cc".
	SigKey  string `json:"sigkey"`
	SigHash string `json:"sighash,omitempty"`
	// Artifacts signed by this event (one RPM per Koji message).
	Artifacts []Artifact `json:"artifacts"`
	Signer    string     `json:"signer,omitempty"`
	// Outcome is SignSigned or SignFailed.
	Outcome  string `json:"outcome"`
	Instance string `json:"instance,omitempty"`
}

// Test outcomes as ResultsDB names them. Unknown outcomes count as failed.
const (
	OutcomePassed          = "PASSED"
	OutcomeInfo            = "INFO"
	OutcomeFailed          = "FAILED"
	OutcomeNeedsInspection = "NEEDS_INSPECTION"
	OutcomeError           = "ERROR"
	OutcomeQueued          = "QUEUED"
	OutcomeRunning         = "RUNNING"
)

// TestResult is a test result (ResultsDB). Keyed by subject identifier.
type TestResult struct {
	Envelope
	// ResultID is the result's id in the result store.
	ResultID string `json:"result_id"`
	Testcase string `json:"testcase"`
	Outcome  string `json:"outcome"`
	Scenario string `json:"scenario,omitempty"`
	// SystemArch and SystemVariant are ResultsDB's system_architecture
	// and system_variant.
	SystemArch    string `json:"system_arch,omitempty"`
	SystemVariant string `json:"system_variant,omitempty"`
	// SubjectType is e.g. "koji_build", "compose", "redhat-module";
	// SubjectID the NVR, compose id, ...
	SubjectType string    `json:"subject_type"`
	SubjectID   string    `json:"subject_id"`
	RefURL      string    `json:"ref_url,omitempty"`
	Note        string    `json:"note,omitempty"`
	ErrorReason string    `json:"error_reason,omitempty"`
	SubmitTime  time.Time `json:"submit_time,omitzero"`
}

// Waiver waives (or, with Waived false, unwaives) a test for a subject
// (WaiverDB). The latest waiver for a (subject, testcase, scenario,
// product version) wins. Keyed by subject identifier.
type Waiver struct {
	Envelope
	WaiverID    string `json:"waiver_id"`
	SubjectType string `json:"subject_type"`
	SubjectID   string `json:"subject_id"`
	Testcase    string `json:"testcase"`
	// Scenario nil waives every scenario of the testcase.
	Scenario       *string `json:"scenario"`
	ProductVersion string  `json:"product_version"`
	Waived         bool    `json:"waived"`
	User           string  `json:"user,omitempty"`
	ProxiedBy      string  `json:"proxied_by,omitempty"`
	Comment        string  `json:"comment,omitempty"`
}

// RemoteRuleFile records the content of a package's gating.yaml at a
// build's source commit (Greenwave's RemoteRule), so that gating reads
// policy from the log and never fetches during processing. Missing true
// means the file does not exist at that commit. Keyed by NVR.
type RemoteRuleFile struct {
	Envelope
	SubjectType  string `json:"subject_type"`
	SubjectID    string `json:"subject_id"`
	SourceURL    string `json:"source_url,omitempty"`
	SourceCommit string `json:"source_commit,omitempty"`
	Path         string `json:"path"`
	Content      string `json:"content,omitempty"`
	Missing      bool   `json:"missing,omitempty"`
	// FetchError is set when the fetcher could not read the file; the
	// gating processor then reports the rule as unsatisfied.
	FetchError string `json:"fetch_error,omitempty"`
}

// Compose event kinds.
const (
	ComposeDefinition   = "definition"
	ComposeStatusChange = "status"
)

// Pungi compose statuses.
const (
	ComposeStarted            = "STARTED"
	ComposeFinished           = "FINISHED"
	ComposeFinishedIncomplete = "FINISHED_INCOMPLETE"
	ComposeDoomed             = "DOOMED"
	ComposeTerminated         = "TERMINATED"
)

// ComposeItem is one subject a compose contains.
type ComposeItem struct {
	SubjectType string `json:"subject_type"`
	SubjectID   string `json:"subject_id"`
	Variant     string `json:"variant,omitempty"`
	Arch        string `json:"arch,omitempty"`
}

// ComposeEvent is a compose definition (what it must contain) or a Pungi
// compose status change. Keyed by compose id.
type ComposeEvent struct {
	Envelope
	// Kind is ComposeDefinition or ComposeStatusChange.
	Kind      string `json:"kind"`
	ComposeID string `json:"compose_id"`
	Status    string `json:"status,omitempty"`
	Location  string `json:"location,omitempty"`
	// Release is e.g. "Fedora-Rawhide" or "Fedora-41".
	Release string `json:"release,omitempty"`
	// Contents is the compose's content (definition events).
	Contents []ComposeItem `json:"contents,omitempty"`

	// The fields below are a definition's (version 2): what the compose
	// must contain for the compose processor to say it is ready.

	// ProductVersion is e.g. "fedora-rawhide".
	ProductVersion string `json:"product_version,omitempty"`
	// SourceTags are the Koji tags whose latest build per package (latest
	// by tagging order, as Koji defines it) forms the content, in
	// priority order: a package in several tags comes from the first.
	SourceTags []string `json:"source_tags,omitempty"`
	// PackagesAllow, when not empty, limits the content to packages
	// matching one of these globs; PackagesDeny drops packages matching
	// one.
	PackagesAllow []string `json:"packages_allow,omitempty"`
	PackagesDeny  []string `json:"packages_deny,omitempty"`
	// SigningKey is the key id every build must be signed with; empty:
	// no signature required.
	SigningKey string `json:"signing_key,omitempty"`
	// DecisionContexts are the gating decision contexts every build must
	// satisfy.
	DecisionContexts []string `json:"decision_contexts,omitempty"`
	// Cadence limits how often and when compose-ready is said.
	Cadence ComposeCadence `json:"cadence,omitzero"`
	// Retired definitions produce no more decisions.
	Retired bool `json:"retired,omitempty"`
}

// ComposeCadence is a product's compose cadence. The zero value means as
// soon as ready.
type ComposeCadence struct {
	// MinIntervalMS, when positive, is the least time between two
	// compose-ready decisions of a compose.
	MinIntervalMS int64 `json:"min_interval_ms,omitempty"`
	// WindowStart and WindowEnd ("HH:MM", UTC), when set, are the daily
	// window outside which compose-ready waits; a window may wrap
	// midnight ("22:00" to "04:00").
	WindowStart string `json:"window_start,omitempty"`
	WindowEnd   string `json:"window_end,omitempty"`
}

// ComposeMember is one build as the compose processor sees it, sent by
// the compose-members processor (keyed by NVR) to the compose processor
// (keyed by compose id) through an internal topic, for every compose
// whose source tags the build is or was in. Each is a whole snapshot:
// the compose keeps the one with the highest Seq. Keyed by compose id.
type ComposeMember struct {
	Envelope
	ComposeID string `json:"compose_id"`
	NVR       string `json:"nvr"`
	// Package is the build's package name (the N of its NVR).
	Package string `json:"package"`
	BuildID int64  `json:"build_id,omitempty"`
	// State is the Koji build state; empty until a state change is seen.
	State string `json:"state"`
	// Seq increases with every snapshot of the build.
	Seq int64 `json:"seq"`
	// Tags are the compose's source tags the build is in now.
	Tags []MemberTag `json:"tags"`
	// SignedKeys are the key ids the build is fully signed with.
	SignedKeys []string `json:"signed_keys"`
	// Gating is the build's latest gating decision per (decision context,
	// product version).
	Gating []MemberGating `json:"gating"`
	// A record with an empty NVR is a load marker instead: the task of
	// partition Partition has sent every build of the definition whose
	// event id is DefinitionID. A compose waits for the markers of every
	// partition before its content can be complete.
	DefinitionID string `json:"definition_id,omitempty"`
	Partition    int32  `json:"partition,omitempty"`
}

// MemberTag is a build's membership of one tag.
type MemberTag struct {
	Tag string `json:"tag"`
	// Order is the tagging order of the build in the tag (the tag event's
	// time, microseconds): the latest build of a package is the one with
	// the highest Order, ties broken by NVR.
	Order int64 `json:"order"`
	// EventID is the tag event's envelope id.
	EventID string `json:"event_id"`
}

// MemberGating is the summary of one gating decision of a build.
type MemberGating struct {
	DecisionContext string `json:"decision_context"`
	ProductVersion  string `json:"product_version"`
	Satisfied       bool   `json:"satisfied"`
	// Pending is true when every unsatisfied requirement is a test that
	// is queued, running or not yet reported: waiting, not failing.
	Pending    bool   `json:"pending,omitempty"`
	DecisionID string `json:"decision_id"`
	Summary    string `json:"summary,omitempty"`
}

// Requirement is one satisfied or unsatisfied requirement of a decision,
// in Greenwave's vocabulary (Type is e.g. "test-result-passed",
// "test-result-missing", "test-result-failed-waived", "signed", ...).
type Requirement struct {
	Type          string `json:"type"`
	Testcase      string `json:"testcase,omitempty"`
	Scenario      string `json:"scenario,omitempty"`
	SystemArch    string `json:"system_arch,omitempty"`
	SystemVariant string `json:"system_variant,omitempty"`
	SubjectType   string `json:"subject_type,omitempty"`
	SubjectID     string `json:"subject_id,omitempty"`
	ResultID      string `json:"result_id,omitempty"`
	WaiverID      string `json:"waiver_id,omitempty"`
	// Pending is true for a missing result whose test is queued or
	// running, so "waiting" is told apart from "never scheduled".
	Pending bool `json:"pending,omitempty"`
	// Source names the policy (or config rule) the requirement comes from.
	Source string `json:"source,omitempty"`
	// Detail is free text for people (error reason, unsigned count, ...).
	Detail string `json:"detail,omitempty"`
}

// Decision is the part every decision carries: why it was made.
type Decision struct {
	Envelope
	// PolicyVersion is the content hash of the policy set (and config
	// rules) the decision was computed with.
	PolicyVersion string `json:"policy_version"`
	// DerivedFrom lists the ids of the events the decision was derived
	// from, oldest first.
	DerivedFrom []string `json:"derived_from"`
	// Satisfied and Unsatisfied are the decision's reasons.
	Satisfied   []Requirement `json:"satisfied"`
	Unsatisfied []Requirement `json:"unsatisfied"`
}

// PreviousGating is the previous gating decision of a subject in a context.
type PreviousGating struct {
	PoliciesSatisfied bool          `json:"policies_satisfied"`
	Summary           string        `json:"summary"`
	Satisfied         []Requirement `json:"satisfied"`
	Unsatisfied       []Requirement `json:"unsatisfied"`
}

// GatingDecision is emitted when the satisfied or unsatisfied requirement
// sets of a (subject, decision context, product version) change.
// Keyed by subject identifier.
type GatingDecision struct {
	Decision
	SubjectType       string   `json:"subject_type"`
	SubjectID         string   `json:"subject_id"`
	DecisionContext   string   `json:"decision_context"`
	ProductVersion    string   `json:"product_version"`
	PoliciesSatisfied bool     `json:"policies_satisfied"`
	Summary           string   `json:"summary"`
	AppliedPolicies   []string `json:"applied_policies"`
	// Previous is nil for the first decision.
	Previous *PreviousGating `json:"previous"`
}

// Autosign actions.
const (
	AutosignSign   = "sign"
	AutosignRevoke = "revoke"
)

// AutosignDecision tells a signer to sign a build's unsigned artifacts
// with a key and then move the build from one tag to another; or, with
// Action AutosignRevoke, that an earlier sign decision no longer holds
// (untagged, deleted). Keyed by NVR.
type AutosignDecision struct {
	Decision
	Action  string `json:"action"`
	NVR     string `json:"nvr"`
	BuildID int64  `json:"build_id,omitempty"`
	Key     string `json:"key"`
	KeyID   string `json:"key_id"`
	FromTag string `json:"from_tag"`
	ToTag   string `json:"to_tag"`
	// Unsigned lists the artifacts still to sign with the key.
	Unsigned []Artifact `json:"unsigned"`
	// IdempotencyKey is stable per (build, key): a signer that sees it
	// twice signs once.
	IdempotencyKey string `json:"idempotency_key"`
	Priority       int32  `json:"priority"`
	// Rule names the signing rule from config.
	Rule string `json:"rule"`
}

// SignedStatus is the explicit "this build is signed with this key"
// record: every known artifact carries the key's signature. Signed false
// retracts an earlier status (for example after a new artifact appeared).
// Keyed by NVR.
type SignedStatus struct {
	Decision
	NVR       string     `json:"nvr"`
	BuildID   int64      `json:"build_id,omitempty"`
	KeyID     string     `json:"key_id"`
	Signed    bool       `json:"signed"`
	Artifacts []Artifact `json:"artifacts"`
}

// ComposeReadyDecision says a compose's content is complete, signed and
// gated (Ready), or no longer is. Keyed by compose id.
//
// Kind tells three decisions apart: ComposeReady (go now, with exactly
// Manifest; Ready is true), ComposeReadiness (the compose's blockers
// changed; Ready says whether it is ready, Unsatisfied lists blockers,
// at most a bounded number, BlockerCounts counts them all) and
// ComposeGate (the compose-level gating of a Pungi compose: Ready says it
// passed; Status is the Pungi status it answers).
type ComposeReadyDecision struct {
	Decision
	ComposeID       string `json:"compose_id"`
	Ready           bool   `json:"ready"`
	DecisionContext string `json:"decision_context,omitempty"`
	ProductVersion  string `json:"product_version,omitempty"`
	Summary         string `json:"summary"`

	// Version 2.

	Kind   string `json:"kind"`
	Status string `json:"status,omitempty"`
	// ContentDigest identifies the content (the set of NVRs): the same
	// content never yields a second ComposeReady.
	ContentDigest string `json:"content_digest,omitempty"`
	// Members is the number of builds in the content.
	Members       int64          `json:"members"`
	BlockerCounts []BlockerCount `json:"blocker_counts,omitempty"`
	// Manifest is the content of a ComposeReady decision, sorted by
	// package.
	Manifest []ManifestEntry `json:"manifest,omitempty"`
}

// Compose decision kinds.
const (
	ComposeReady     = "ready"
	ComposeReadiness = "readiness"
	ComposeGate      = "gate"
)

// BlockerCount counts the blockers of one type (a Requirement type such
// as "build-unsigned").
type BlockerCount struct {
	Type  string `json:"type"`
	Count int64  `json:"count"`
}

// ManifestEntry is one build of a ready compose.
type ManifestEntry struct {
	NVR     string `json:"nvr"`
	Package string `json:"package"`
	// KeyID is the key the build is signed with; empty when the compose
	// requires none.
	KeyID string `json:"key_id,omitempty"`
	// DecisionIDs are the gating decisions the build passed, one per
	// required decision context.
	DecisionIDs []string `json:"decision_ids"`
}

// RebuildDecision asks for a subject to be rebuilt because something it
// depends on changed. Keyed by the subject to rebuild.
type RebuildDecision struct {
	Decision
	SubjectType string `json:"subject_type"`
	SubjectID   string `json:"subject_id"`
	// Trigger is the subject whose change caused the rebuild.
	TriggerType string `json:"trigger_type"`
	TriggerID   string `json:"trigger_id"`
	// Relation is the dependency kind, e.g. "ContainerIncludesRPM".
	Relation string `json:"relation"`
	Reason   string `json:"reason"`
	Priority int32  `json:"priority"`
}

// DependencyEdge says that one node of the dependency graph depends on
// another (From uses To), or, with Removed, no longer does. Nodes are
// (type, id) pairs whose types are data, never an enum: "source" (an
// upstream repository at a commit, "https://src.example.org/rpms/bash#c0ffee"),
// "build" (an NVR), "rpm", "container", "module", "compose", "product",
// "deb" and "deb-source" (Debian binary and source packages), or any other.
// Keyed by FromID (an edge of a build shares the partition of its build
// events).
type DependencyEdge struct {
	Envelope
	FromType string `json:"from_type"`
	FromID   string `json:"from_id"`
	// Relation is one of the Rel* constants or any other kind of edge.
	Relation string `json:"relation"`
	ToType   string `json:"to_type"`
	ToID     string `json:"to_id"`
	// Removed says the edge no longer holds (an untag, a deletion, a
	// compose replaced by a new one).
	Removed bool `json:"removed,omitempty"`
}

// Dependency relations: From <relation> To.
const (
	RelBuiltFrom  = "built-from"  // a build from its source; a Debian binary from its source package
	RelProducedBy = "produced-by" // an artifact (RPM, image) from the build that produced it
	RelBuildroot  = "buildroot"   // a build was built against another build (build-time dependency)
	RelRequires   = "requires"    // runtime dependency (RPM Requires, Debian Depends and Pre-Depends)
	RelEmbeds     = "embeds"      // static linking, Debian Built-Using, vendored Go and Rust code
	RelIncludes   = "includes"    // a container image includes an RPM
	RelParent     = "parent"      // a container image is built on a parent image
	RelContains   = "contains"    // a module or compose contains a build or image
	RelMadeFrom   = "made-from"   // a product is made from a compose
	RelProvidedBy = "provided-by" // a virtual package (Debian Provides) by a package that provides it
)

// SplitNVR splits name-version-release at its last two dashes; ok is
// false when nvr has fewer than two, or nothing before them.
func SplitNVR(nvr string) (name, version, release string, ok bool) {
	i := strings.LastIndexByte(nvr, '-')
	if i <= 0 {
		return "", "", "", false
	}
	j := strings.LastIndexByte(nvr[:i], '-')
	if j <= 0 {
		return "", "", "", false
	}
	return nvr[:j], nvr[j+1 : i], nvr[i+1:], true
}

// PackageOf is the name of an NVR (what precedes its last two dashes),
// or nvr itself when it is not one.
func PackageOf(nvr string) string {
	if n, _, _, ok := SplitNVR(nvr); ok {
		return n
	}
	return nvr
}

// NodeKey is the key of a graph node: type, a colon, id.
func NodeKey(typ, id string) string { return typ + ":" + id }

// Schema full names.
const (
	NameBuildEvent           = "org.factory2.BuildEvent"
	NameSignEvent            = "org.factory2.SignEvent"
	NameTestResult           = "org.factory2.TestResult"
	NameWaiver               = "org.factory2.Waiver"
	NameRemoteRuleFile       = "org.factory2.RemoteRuleFile"
	NameComposeEvent         = "org.factory2.ComposeEvent"
	NameGatingDecision       = "org.factory2.GatingDecision"
	NameAutosignDecision     = "org.factory2.AutosignDecision"
	NameSignedStatus         = "org.factory2.SignedStatus"
	NameComposeReadyDecision = "org.factory2.ComposeReadyDecision"
	NameRebuildDecision      = "org.factory2.RebuildDecision"
	NameComposeMember        = "org.factory2.ComposeMember"
	NameDependencyEdge       = "org.factory2.DependencyEdge"
)

func (*BuildEvent) SchemaName() string           { return NameBuildEvent }
func (*SignEvent) SchemaName() string            { return NameSignEvent }
func (*TestResult) SchemaName() string           { return NameTestResult }
func (*Waiver) SchemaName() string               { return NameWaiver }
func (*RemoteRuleFile) SchemaName() string       { return NameRemoteRuleFile }
func (*ComposeEvent) SchemaName() string         { return NameComposeEvent }
func (*GatingDecision) SchemaName() string       { return NameGatingDecision }
func (*AutosignDecision) SchemaName() string     { return NameAutosignDecision }
func (*SignedStatus) SchemaName() string         { return NameSignedStatus }
func (*ComposeReadyDecision) SchemaName() string { return NameComposeReadyDecision }
func (*RebuildDecision) SchemaName() string      { return NameRebuildDecision }
func (*ComposeMember) SchemaName() string        { return NameComposeMember }
func (*DependencyEdge) SchemaName() string       { return NameDependencyEdge }

// Env returns the envelope.
func (e *Envelope) Env() *Envelope { return e }
