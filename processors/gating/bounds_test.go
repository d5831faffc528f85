package gating

import (
	"fmt"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/factory2/factory2/avro"
	"github.com/factory2/factory2/processors"
)

// policyFile is a remote rule file event of n bytes for subject nvr at
// commit c.
func policyFile(nvr, c string, n, min int) *avro.RemoteRuleFile {
	return remote("gating.yaml", "#"+strings.Repeat("x", n-1), min, subj(nvr), commit(c), id("file-"+nvr+"-"+c))
}

// TestSizeEstimateBoundsEncoding: the size Process keeps for a cached
// subject is never below the length of its encoding, whatever records
// and decisions it took (an estimate below it could let a subject grow
// past the maximum unchecked).
func TestSizeEstimateBoundsEncoding(t *testing.T) {
	e, err := NewEngine(mustPolicies(t, f41Policies), signingRules)
	if err != nil {
		t.Fatal(err)
	}
	k := newTask(t, e, vfs.NewMem(), "task")
	on := subj(f41NVR)
	long := strings.Repeat("ü", 300)
	recs := []avro.Record{
		tag("f41-updates-candidate", 1, on),
		build(avro.StateComplete, 2, on, artifacts(rpms...), commit("c0ffee"), created(at(0))),
		sign(buildKey, 3, on, artifacts(rpms[0])),
		sign(buildKey, 4, on, artifacts(rpms[1]), func(r any) { r.(*avro.SignEvent).Outcome = avro.SignFailed }),
		tag("f41-signing-pending", 5, on),
		result("fedora-ci.koji-build.tier0.functional", "queued", 6, on, rid("1"), scenario(long), arch("x86_64", long)),
		result("fedora-ci.koji-build.tier0.functional", "passed", 7, on, rid("2"), scenario(long), arch("x86_64", long)),
		result("dist.rpmdeplint", "failed", 8, on, rid("3"), func(r any) { r.(*avro.TestResult).ErrorReason = long }),
		waive("dist.rpmdeplint", "fedora-41", true, 9, on, rid("4"), func(r any) { r.(*avro.Waiver).Comment = long + long }),
		waive("dist.rpmdeplint", "fedora-41", true, 10, on, rid("5"), scenario("s")),
		remote("gating.yaml", "--- !Policy\nid: x\nproduct_versions: [fedora-41]\ndecision_contexts: [bodhi_update_push_stable]\nrules:\n  - !PassingTestCaseRule {test_case_name: "+long+"}\n", 11, on, commit("c0ffee")),
		remoteError("other.yaml", long, 12, on),
		untag("f41-signing-pending", 13, on),
		sign(goldKey, 14, on, artifacts(rpms...)),
		build(avro.StateDeleted, 15, on),
	}
	k.txn(func(c *processors.Context) {
		for _, r := range recs {
			if err := k.p.Process(c, &processors.Input{Key: []byte(f41NVR), Record: r}); err != nil {
				t.Fatalf("%s: %v", r.Env().ID, err)
			}
			cs := c.TxnCache()[f41NVR].(*cachedSubject)
			b, err := cs.s.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			if len(b) > cs.size {
				t.Fatalf("after %T %s: encoding %d bytes, estimate %d", r, r.Env().ID, len(b), cs.size)
			}
		}
	})
}

// Two 600 KB gating.yaml files for one build made its state 1.2 MB, a
// changelog record Kafka refused on every attempt. The second file is
// rejected now, the first kept, and the other subjects go on, whether
// the files come in one transaction or two.
func TestSubjectBoundTwoLargePolicyFiles(t *testing.T) {
	const big = 600_000
	x, y := "big-1.0-1.fc41", "small-1.0-1.fc41"
	for _, sameTxn := range []bool{true, false} {
		t.Run(fmt.Sprintf("same transaction %v", sameTxn), func(t *testing.T) {
			e := mustEngine(t, f41Policies, WithMaxSubjectBytes(MaxSubjectBytesLimit), WithMaxPolicyFileBytes(700<<10))
			k := newTask(t, e, vfs.NewMem(), "task")
			first := []avro.Record{
				build(avro.StateComplete, 0, subj(x)),
				build(avro.StateComplete, 0, subj(y)),
				policyFile(x, "c1", big, 1),
				result("dist.rpmdeplint", "PASSED", 2, subj(y), id("y-1")),
			}
			second := []avro.Record{
				policyFile(x, "c2", big, 3),
				result("fedora-ci.koji-build.tier0.functional", "PASSED", 4, subj(y), id("y-2")),
				result("dist.rpmdeplint", "PASSED", 5, subj(x), id("x-small")),
			}
			var outs []processors.Output
			var rejs []rejection
			if sameTxn {
				outs, rejs = k.process("", append(first, second...)...)
			} else {
				outs, rejs = k.process("", first...)
				o, r := k.process("", second...)
				outs, rejs = append(outs, o...), append(rejs, r...)
			}
			if len(rejs) != 1 || rejs[0].ID != "file-"+x+"-c2" {
				t.Fatalf("rejected %v, want the second file", rejs)
			}
			for _, w := range []string{x, "over the limit of 786432 bytes per subject", "would take 1200"} {
				if !strings.Contains(rejs[0].Reason, w) {
					t.Errorf("reason %q does not say %q", rejs[0].Reason, w)
				}
			}
			v, _ := k.stored(x)
			var s Subject
			if err := s.UnmarshalBinary(v); err != nil {
				t.Fatal(err)
			}
			if len(v) > MaxSubjectBytesLimit || len(s.RemoteFiles) != 1 || s.RemoteFiles[0].Commit != "c1" || len(s.Results) != 1 {
				t.Fatalf("%s: %d bytes, files %d, results %d: want the first file and the later result", x, len(v), len(s.RemoteFiles), len(s.Results))
			}
			v, _ = k.stored(y)
			if err := s.UnmarshalBinary(v); err != nil {
				t.Fatal(err)
			}
			if len(s.Results) != 2 {
				t.Fatalf("%s has %d results, want 2", y, len(s.Results))
			}
			decidedY := 0
			for _, o := range outs {
				if string(o.Key) == y {
					decidedY++
				}
			}
			if decidedY != 6 { // 2 contexts × (build, first result, second result)
				t.Fatalf("%s: %d decisions, want 6", y, decidedY)
			}

			// Sent again, the file is refused again, against the stored
			// state this time.
			if _, rejs := k.process("", policyFile(x, "c2", big, 3)); len(rejs) != 1 {
				t.Fatalf("re-sent file: rejected %v", rejs)
			}
		})
	}
}

// Near the maximum, Process checks a record's effect exactly: a record
// that fits is kept, one that does not is rejected and changes nothing,
// and a record that does not grow the subject is never rejected.
func TestSubjectBoundExactCheckNearLimit(t *testing.T) {
	const limit = 64 << 10 // exact checks from 56 KiB
	e := mustEngine(t, f41Policies, WithMaxSubjectBytes(limit), WithMaxPolicyFileBytes(48<<10))
	k := newTask(t, e, vfs.NewMem(), "task")
	on := subj(f41NVR)
	for _, st := range []struct {
		rec      avro.Record
		rejected bool
	}{
		{build(avro.StateComplete, 0, on), false},
		{policyFile(f41NVR, "c1", 30_000, 1), false},
		{policyFile(f41NVR, "c2", 27_000, 2), false}, // the estimate passes 56 KiB, the encoding fits
		{policyFile(f41NVR, "c3", 20_000, 3), true},
		{policyFile(f41NVR, "c2", 27_000, 2), false}, // a duplicate: no growth
		{policyFile(f41NVR, "c4", 1_000, 4), false},
		{policyFile(f41NVR, "c1", 45_000, 5), true}, // a newer version of a file, larger
		{result("dist.rpmdeplint", "PASSED", 6, on), false},
	} {
		before, _ := k.stored(f41NVR)
		_, rejs := k.process("", st.rec)
		after, _ := k.stored(f41NVR)
		if got := len(rejs) == 1; got != st.rejected {
			t.Fatalf("%s: rejected %v, want %v (%d bytes stored)", st.rec.Env().ID, rejs, st.rejected, len(before))
		}
		if st.rejected && string(after) != string(before) {
			t.Fatalf("%s: rejected, but the subject changed", st.rec.Env().ID)
		}
		if len(after) > limit {
			t.Fatalf("%s: subject is %d bytes, over %d", st.rec.Env().ID, len(after), limit)
		}
	}
}

// A gating.yaml larger than the maximum policy file is rejected, whatever
// room its subject has.
func TestPolicyFileOverLimitRejected(t *testing.T) {
	k := newTask(t, mustEngine(t, f41Policies), vfs.NewMem(), "task")
	_, rejs := k.process("",
		policyFile(f41NVR, "c1", DefaultMaxPolicyFileBytes+1, 1),
		policyFile(f41NVR, "c2", DefaultMaxPolicyFileBytes, 2))
	if len(rejs) != 1 || rejs[0].ID != "file-"+f41NVR+"-c1" {
		t.Fatalf("rejected %v, want the file over the limit only", rejs)
	}
	want := fmt.Sprintf("gating.yaml of %s is %d bytes, over the limit of %d bytes", f41NVR, DefaultMaxPolicyFileBytes+1, DefaultMaxPolicyFileBytes)
	if !strings.Contains(rejs[0].Reason, want) {
		t.Fatalf("reason %q does not say %q", rejs[0].Reason, want)
	}
}

func TestEngineRejectsBadBounds(t *testing.T) {
	for _, tc := range []struct {
		opts []Option
		want string
	}{
		{[]Option{WithMaxSubjectBytes(0)}, "max subject bytes 0"},
		{[]Option{WithMaxSubjectBytes(1 << 20)}, "max subject bytes 1048576"},
		{[]Option{WithMaxPolicyFileBytes(-1)}, "max policy file bytes -1"},
		{[]Option{WithMaxSubjectBytes(100 << 10), WithMaxPolicyFileBytes(100 << 10)}, "below the max subject bytes"},
		{[]Option{WithReevaluationChunk(0)}, "re-evaluation chunk"},
	} {
		if _, err := NewEngine(nil, nil, tc.opts...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewEngine: %v, want an error saying %q", err, tc.want)
		}
	}
}
