package bus

import "github.com/factory2/factory2/avro"

// Key returns the partition key of a record: the identifier of the
// subject the record is about. Everything about a build (its build, tag,
// sign and signed-status events, test results, waivers, gating, signing
// and rebuild decisions) is keyed by the build's NVR, which is also the
// subject identifier results and waivers carry, so all of it lands on one
// partition; compose events and decisions are keyed by compose id. Key
// returns "" for a record type it does not know.
//
// The key is the identifier alone, without the subject type, so that a
// "koji_build" result and a "redhat-container-image" result on the same
// NVR are co-partitioned with the build.
func Key(r avro.Record) string {
	switch r := r.(type) {
	case *avro.BuildEvent:
		return r.NVR
	case *avro.SignEvent:
		return r.NVR
	case *avro.TestResult:
		return r.SubjectID
	case *avro.Waiver:
		return r.SubjectID
	case *avro.RemoteRuleFile:
		return r.SubjectID
	case *avro.ComposeEvent:
		return r.ComposeID
	case *avro.GatingDecision:
		return r.SubjectID
	case *avro.AutosignDecision:
		return r.NVR
	case *avro.SignedStatus:
		return r.NVR
	case *avro.ComposeReadyDecision:
		return r.ComposeID
	case *avro.RebuildDecision:
		return r.SubjectID
	case *avro.DependencyEdge:
		// The id alone, so that an edge of build:NVR shares the
		// partition of the build's events.
		return r.FromID
	}
	return ""
}
