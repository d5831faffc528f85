// Package avro is factory2's record contract on the wire: the Avro schemas
// of every event and decision (record.go has the Go types), a Codec that
// encodes and decodes them, and a JSON form for people and the CLI.
//
// # Schemas
//
// Every record type has its schemas in schemas/<Record>/v<N>.avsc
// (namespace org.factory2), embedded in the binary; the highest N is the
// current version, the one Encode writes. Each file is self-contained:
// named types (Envelope, Origin, Artifact, Requirement, ComposeItem,
// PreviousGating, ComposeCadence, BlockerCount, ManifestEntry, MemberTag,
// MemberGating) are defined inline where first used, so another team can
// compile any one file in any language. Mapping from Go:
//
//   - Avro field names are the Go json tag names (snake_case).
//   - The embedded Envelope is the first field, "envelope", a nested
//     record; a decision's Decision fields (policy_version, derived_from,
//     satisfied, unsatisfied) follow it at the top level.
//   - Every field but "envelope" has a default (strings "", numbers 0,
//     booleans false, arrays [], unions null, records the record of their
//     fields' defaults), so a later version can drop or add fields.
//   - Times are ["null", {"type":"long","logicalType":"timestamp-micros"}]:
//     the zero time.Time is null; any other time is its microseconds since
//     the Unix epoch, decoded in UTC. Sub-microsecond precision is
//     truncated; times outside int64 microseconds fail with ErrTimeRange.
//   - Waiver.scenario is ["null","string"]: nil and "" stay distinct.
//   - Artifact and subject types are strings, never enums: types are data.
//   - Avro has no nil/empty distinction for arrays: an empty array decodes
//     as a nil slice.
//
// Schemas and Schema describe the schemas (text, Parsing Canonical Form,
// fingerprint, every version) for "factory2 topics describe" and docs.
//
// # Wire formats
//
// Single-object encoding (the default; Avro specification):
//
//	0xC3 0x01 | CRC-64-AVRO fingerprint of the writer schema's Parsing
//	Canonical Form, 8 bytes little-endian | Avro binary body
//
// Confluent wire format (with WithRegistry):
//
//	0x00 | schema registry id, 4 bytes big-endian | Avro binary body
//
// under the RecordNameStrategy subject, the record's full name (e.g.
// "org.factory2.BuildEvent"), so one topic can carry several record types
// (events.test carries TestResult and Waiver). Decode accepts both formats
// and tells the record type from the writer schema, never from the topic.
//
// Fingerprints are computed by this package over the Parsing Canonical
// Form as the Java implementation computes it, where a primitive with a
// logicalType is written "long". goavro and the Python avro package write
// {"type":"long"} there and so compute other fingerprints for our schemas
// (which have timestamp-micros fields); Decode accepts those too, Encode
// writes Java's.
//
// # Decoding and schema resolution
//
// The current version of every record type has a hand-written,
// reflection-free codec (fast.go) from the Avro binary straight to the Go
// struct; decoded strings share one allocation per record. Tests prove on
// random records that it encodes byte-for-byte what goavro encodes from
// the .avsc and decodes what goavro decodes, so the .avsc and the Go code
// cannot drift apart unnoticed.
//
// Data written with another version (an older one found by fingerprint,
// or any version of a known record fetched from the registry by id) goes
// through schema resolution per the Avro specification, which this
// package implements (goavro has none): the writer's data is rewritten
// into the current version's encoding — reader fields the writer lacks get
// their defaults, writer fields the reader lacks are skipped, int→long→
// float→double and string⇄bytes are promoted, unions are resolved per
// branch, records match by name or alias — and then read by the fast
// codec.
//
// # Evolution rules
//
// To change a schema:
//
//  1. Copy schemas/<Record>/v<N>.avsc to v<N+1>.avsc and edit the copy;
//     never edit or delete a released version (producers may still write
//     it, and topics keep it).
//  2. Only add fields, each with a default and a doc. Do not remove,
//     rename or retype fields (TestCurrentIsBackwardCompatible enforces
//     this: old readers must read new data too).
//  3. Change the Go type (record.go) and its codec in fast.go to match the
//     new version; TestFastPathMatchesGoavro fails until they agree.
//  4. Run "go test ./avro -update" to write the new version's sample
//     (testdata/versions/<Record>/v<N+1>.json) and refresh the golden
//     files. TestEveryVersionReadable then reads a sample of every stored
//     version with the current one.
//
// # JSON form
//
// MarshalJSON and UnmarshalJSON give a record's encoding/json form with a
// leading "type" discriminator ("build", "sign", "test_result", "waiver",
// "remote_rule_file", "compose", "gating_decision", "autosign",
// "signed_status", "compose_ready", "rebuild", "compose_member",
// "dependency_edge");
// unknown types and fields are errors. It is for people and the CLI, not
// a wire format.
package avro
