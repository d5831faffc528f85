// Package gating is the pure domain engine of factory2's gating and
// autosign processor: Greenwave's gating decisions and robosignatory's
// signing, computed from per-subject state built from the event log. It
// has no Kafka, no storage and no clock; the processing runtime feeds it
// records and stores the state.
//
// # Processing contract
//
// For each input record, keyed by subject identifier (an NVR, a compose
// id, a Bodhi update):
//
//	var s gating.Subject
//	s.UnmarshalBinary(stored)          // or the zero Subject
//	s.Apply(record)                    // merge the event
//	out := engine.Gating(&s, env)      // gating decision updates
//	out2 := engine.Autosign(&s, env)   // autosign decisions, signed status
//	stored, _ = s.MarshalBinary()
//
// Gating first: Autosign then reads the gating decisions just recorded
// instead of evaluating the required context again (either order gives
// the same records). Gating fingerprints its inputs (Subject.GatingInput)
// and returns at once when an event changed none of them, which is the
// case of tags and signatures, the commonest events. The query API
// (Greenwave's POST /api/v1.0/decision, "factory2 why") calls Evaluate on
// the stored state and GreenwaveResponse or Evaluation.WriteText; "why"
// also reads Engine.Signing (SigningReport): what autosign waits for per
// signing rule and what lacks each key.
//
// All of it is a deterministic function of (state, record): the emitted
// records' envelopes derive from the triggering record (ID = sha256 of the
// source, the decision's identity and the trigger's ID; times and origin
// copied from the trigger), so a replay of the log reproduces the decision
// history byte for byte. Engine is immutable and safe for concurrent use;
// Subject is not.
//
// # State model
//
// A Subject holds, for one subject identifier: its subject types; the
// build (state, ids, owner, creation and completion times, source URL and
// commit, artifacts); its tags with who tagged and when; per signing key
// the signed (and failed) artifacts; per (subject type, test case,
// system_architecture, system_variant, scenario) the latest results (a
// bounded history of maxHistory, for as-of queries), each with result id,
// outcome, submit time and whether it is pending (QUEUED/RUNNING); per
// (subject type, test case, scenario or all scenarios, product version)
// the latest waivers; the remote rule files (gating.yaml) per (commit,
// path); and what was emitted: the last gating decision per (subject
// type, decision context, product version), the autosign state and the
// signed status per key.
//
// The engine takes events in the order the runtime gives them: the log
// order within each input topic-partition, and one merge of the topics
// (by record timestamp, then topic, then offset) that is the same live
// and in replay. Each part of the state follows the order that is the
// truth for it (see Subject): the build state follows Koji's state
// machine in log order, so a state change Koji cannot make from the
// current state (a BUILDING or FAILED after COMPLETE, anything but
// CANCELED after DELETED) is a stale message and changes nothing; a
// tag's membership is its latest tag or untag in log order; results and
// waivers are ordered by their own times and ids, as Greenwave reads
// them from ResultsDB and WaiverDB, then by log order; signatures only
// grow and the build's immutable facts join. No content hash decides
// what is current, and a duplicate (the same envelope ID) changes
// nothing. So the final state does not depend on how the topics
// interleave (results before the build, a signature before the tag), and
// the decisions on the way are those of the merged order. Provenance is
// kept per piece of state (each result, waiver, tag, file remembers its
// event), so a decision's DerivedFrom lists the events behind its
// requirements rather than an ever-growing list.
//
// # Gating semantics
//
// Policies use Greenwave's format and semantics (greenwave/policies.py,
// decision.py, waivers.py), re-implemented:
//
//   - A subject gets a decision for every (subject type, decision context,
//     product version) where some policy's subject types include the
//     subject type and its product_versions patterns match the subject's
//     product version. The product version comes from configured
//     overrides, else the NVR's dist tag (fc41 → fedora-41, el9_2 →
//     rhel-9, epel8 → epel-8) or the compose id (Fedora-Rawhide-… →
//     fedora-rawhide, RHEL-9.4.0-… → rhel-9), else from the subject's
//     waivers (Greenwave's WaiverDB listener decides for a waiver's
//     product version). A subject with none gets no decisions; the query
//     API still answers for an explicit product version.
//   - A PassingTestCaseRule requires the latest result per (arch, variant,
//     scenario) of its test case to pass (PASSED, INFO); QUEUED and
//     RUNNING are missing but pending (Requirement.Pending; the summary
//     says "test incomplete", as Greenwave's does); ERROR is errored;
//     FAILED, NEEDS_INSPECTION and unknown outcomes failed. A rule with a
//     scenario only looks at results of that scenario. valid_since and
//     valid_until compare with the build's creation time; while that is
//     unknown the rule applies. The same rule in several policies of one
//     decision counts once.
//   - A waiver in force (the latest per key, waived true) for the subject,
//     test case and product version turns a missing, failed or errored
//     requirement into its "-waived" form; a waiver without scenario
//     waives every scenario. Waiving invalid-gating-yaml,
//     missing-gating-yaml or failed-fetch-gating-yaml drops it.
//   - A RemoteRule reads the package's gating.yaml from a
//     avro.RemoteRuleFile in the log (never fetched here): the file for
//     the build's source commit, for the rule's path (RemoteRuleFile.Path:
//     the engine's remote rule path for rules without sources, else each
//     source as written in the policy, tried in order). Until it is in the
//     log the rule is unsatisfied with pending-gating-yaml, so a decision
//     does not pass and then flip when the file arrives. Missing: nothing
//     required, unless required: true (missing-gating-yaml). Fetch error:
//     failed-fetch-gating-yaml. Unparsable: invalid-gating-yaml.
//   - A decision update is emitted only when its satisfied or unsatisfied
//     requirements change, ignoring result and waiver ids, and carries the
//     previous one. Its DerivedFrom lists the events behind its
//     requirements (the latest results, the waivers or unwaivers, the
//     remote rule file, the build event when valid_since/valid_until were
//     checked), oldest first, at most 64.
//
// Requirements carry their policy's id as Source (the remote rule file for
// rules from a gating.yaml). Requirements are sorted; Evaluation.Answers
// keep Greenwave's order for the Greenwave-compatible response, where
// source is null for server policies, as there.
//
// Parsing server policies is stricter than Greenwave in two respects,
// each error reported with file and line: unknown keys are errors
// (Greenwave ignores them), and so is a subject type that is neither one
// of Greenwave's (GreenwaveSubjectTypes) nor declared (WithSubjectTypes),
// where Greenwave would load a policy that never applies. DESIGN.md,
// "Differences from Greenwave", lists every difference.
//
// # Autosign semantics
//
// See Engine.Autosign. A sign decision is outstanding until the build is
// signed with the key (every artifact a build event listed), or revoked.
// An outstanding decision is revoked when its conditions stop holding,
// except when the build left From for the rule's To: that is the signer's
// own move after signing (robosignatory untags and tags), and the sign
// events may simply lag behind it. A signing rule's Priority is carried by
// its decisions so that a signer can order its queue (a mass rebuild never
// starves user updates); the engine emits every decision immediately.
package gating
