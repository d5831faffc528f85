// Package compose is compose readiness: it tells a compose runner "go
// now, with exactly this content" the moment a compose's content is
// complete, signed and gated, says what holds a compose back while it is
// not, and gates a finished Pungi compose on its compose-level gating.
//
// Two processors run on the runtime beside the gating processor:
//
//   - compose-members (MembersSpec, keyed by NVR) follows every build
//     through the gating processor's build views and sends its snapshot
//     to each compose whose source tags hold it;
//   - compose (Spec, keyed by compose id) keeps each compose's content
//     (the latest build per package of its source tags) with running
//     blocker counts, and emits readiness, compose-ready and gate
//     decisions (avro.ComposeReadyDecision).
//
// Compose definitions (avro.ComposeEvent of kind definition: source tags,
// package globs, signing key, decision contexts, cadence) come from
// `factory2 emit composes`. Table answers the queries on every instance
// from the decisions topic. See DESIGN.md, "Compose readiness".
package compose
