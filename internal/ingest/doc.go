// Package ingest is the one place events enter factory2. The CLI
// (`factory2 emit`) and the HTTP API (POST /api/v1/events) both hand it
// their input and produce what it returns, so the two agree on every rule
// below.
//
// # Input
//
// A [Parser] accepts three forms:
//
//   - our JSON events ([Parser.ParseJSON]): one JSON object per event in
//     the form of avro.MarshalJSON (a leading "type" such as "build" or
//     "test_result"), as JSON lines, as one document, or as a JSON array;
//   - bus messages ([Parser.ParseMessages]): fedora-messaging, fedmsg,
//     datagrepper, UMB, or a bare body with a default topic, one per line
//     or one document, translated by internal/bus;
//   - one event written with flags ([Kind.Build], then [Parser.Records]):
//     the essentials of each kind, e.g. `emit build --nvr N --state COMPLETE`.
//
// JSON input must be valid UTF-8: the first invalid byte rejects the
// whole input ([ErrInvalidUTF8], naming its line and byte offset) rather
// than being decoded as U+FFFD.
//
// # Envelope defaults
//
// Defaults are deterministic, so that re-sending the same input yields the
// same events:
//
//   - id: kept when given. A bus message's events take their id from the
//     message (internal/bus). A JSON or flag event without one gets
//     "sha256:" and the first 128 bits, in hex, of the SHA-256 of its
//     canonical JSON (avro.MarshalJSON of the event with id and
//     ingest_time empty, after the other defaults): the same line sent
//     twice has the same id, whatever its key order and spacing.
//   - source: required. Kept when given, else [Parser.Source] (--source),
//     else the event is rejected.
//   - event_time: required. Kept when given; a bus message's events take
//     it from the message. Only with [Parser.EventTimeNow]
//     (--event-time-now) does an event without one get the ingest time,
//     and then its derived id differs on every run: that is why it is
//     opt-in.
//   - ingest_time: never taken from the input. The parser gives every
//     event of a batch its clock's time (what --dry-run shows); the
//     Producer replaces it when it produces the batch (see Order).
//   - build events without name, version and release get them by
//     splitting the NVR; test results without result_id and waivers
//     without waiver_id get the event's id.
//
// # Validation and routing
//
// Every event is checked for the fields its type needs (the NVR of builds
// and signatures, subject type and id of results and waivers, compose id,
// ...), and a compose definition's requirements for what they must be
// (source tags, package globs, a hexadecimal signing key id, decision
// contexts, the cadence's HH:MM window: see [DefinitionProblems]); a
// status event must not carry them. A problem is an [*InputError] naming
// the line (and array element) the event started on and the field.
//
// Strict where people type, tolerant where machines send: our JSON events
// and flags are written by people, so a value outside a field's
// vocabulary (a build state, a test outcome) is refused with the value
// probably meant ("PASS" is not one of PASSED, ...; did you mean
// PASSED?). Bus messages are what the source systems sent, and their
// rules stand: ResultsDB stores any outcome string, and Greenwave counts
// an outcome it does not know as a failure, so a result from the bus
// keeps its outcome and gating counts an unknown one as failed, as
// Greenwave does. Input that is not JSON at all is named as such, with
// its line; a bus message without a topic (a bare body) names the option
// that gives it (--topic, or &topic= over HTTP).
// Decisions are never accepted as input: they are derived by the
// processors ([ErrDecision]).
//
// Each event goes to the input topic of its type (build → events.build,
// sign → events.sign, test_result and waiver → events.test,
// remote_rule_file → events.policy, compose → events.compose) with the key
// bus.Key gives it, so everything about a subject shares a partition.
//
// # Order
//
// The processors take the records of one partition of their input topics
// in the order of their Kafka record timestamps (then a fixed topic
// order, then offsets), the same live and in replay. A record's timestamp
// is its event's ingest time, set by the Producer when it produces the
// batch: the clock in whole milliseconds, never earlier than the last
// ingest time the Producer gave, and a millisecond later when the topic
// changes from one record to the next. So records a Producer produces
// later never order before those it produced earlier, and events without
// a time of their own (Koji's messages) keep the order of the input. The
// event time (when it happened, by its source) orders nothing in the
// runtime; gating reads results' and waivers' own times as Greenwave does.
//
// # Producing
//
// A [Producer] produces a batch all-or-nothing, in one Kafka transaction.
// Parsing rejects a whole batch when any event in it is bad, so a bad
// line means nothing is produced; a failure while producing aborts the
// transaction, so read_committed consumers (every factory2 processor, and
// `factory2 watch`) see none of the batch. An event whose record is larger
// than [ProducerConfig.MaxEventBytes] (by default just under the default
// record batch limits) rejects its batch before anything is
// produced, with a [*TooLargeError] naming it; so does a record Kafka
// itself refuses as too large.
package ingest
