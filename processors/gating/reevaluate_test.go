package gating

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/factory2/factory2/avro"
	"github.com/factory2/factory2/processors"
)

// Policies of the re-evaluation tests: f41Policies (engine "A") with one
// more required test ("B"), or two more ("C"). Every subject's decisions
// change from A to B and from B to C.
var (
	policiesB = strings.Replace(f41Policies, "  - !PassingTestCaseRule {test_case_name: dist.rpmdeplint}\n",
		"  - !PassingTestCaseRule {test_case_name: dist.rpmdeplint}\n  - !PassingTestCaseRule {test_case_name: extra.one}\n", 1)
	policiesC = strings.Replace(policiesB, "  - !PassingTestCaseRule {test_case_name: extra.one}\n",
		"  - !PassingTestCaseRule {test_case_name: extra.one}\n  - !PassingTestCaseRule {test_case_name: extra.two}\n", 1)
)

// reevalSubjects are the stored subjects, in key order.
var reevalSubjects = []string{
	"pkg-a-1.0-1.fc41", "pkg-b-1.0-1.fc41", "pkg-c-1.0-1.fc41", "pkg-d-1.0-1.fc41",
	"pkg-e-1.0-1.fc41", "pkg-f-1.0-1.fc41", "pkg-g-1.0-1.fc41",
}

// seedTask stores reevalSubjects, decided with engine A, in a new state in
// fs and returns the task (closed: reopen it with newTask).
func seedTask(t *testing.T, fs vfs.FS) {
	t.Helper()
	k := newTask(t, mustEngine(t, f41Policies), fs, "task")
	for i, nvr := range reevalSubjects {
		k.process("", build(avro.StateComplete, i, subj(nvr), id("build-"+nvr)))
	}
	// The first punctuation finds every subject decided with A: it
	// only records the engine version.
	if more, outs := k.punctuate(at(100)); more || len(outs) != 0 {
		t.Fatalf("punctuation under the engine of the decisions: more %v, %d outputs", more, len(outs))
	}
	k.close()
}

// cursor returns the stored re-evaluation cursor, or nil.
func (k *task) cursor() *reevaluation {
	k.t.Helper()
	v, ok := k.stored(string(reevaluationKey))
	if !ok {
		return nil
	}
	var r reevaluation
	if err := r.unmarshal(v); err != nil {
		k.t.Fatal(err)
	}
	return &r
}

func (k *task) engineVersion() string {
	v, _ := k.stored(string(engineVersionKey))
	return string(v)
}

// keysOf lists the keys of outs, sorted and without repeats.
func keysOf(outs []processors.Output) []string {
	var ks []string
	for _, o := range outs {
		ks = append(ks, string(o.Key))
	}
	slices.Sort(ks)
	return slices.Compact(ks)
}

// unchunked returns what one punctuation at now under e emits over the
// seeded state after prepare ran on it.
func unchunked(t *testing.T, e *Engine, prepare func(fs vfs.FS), now time.Time) []processors.Output {
	t.Helper()
	fs := vfs.NewMem()
	seedTask(t, fs)
	if prepare != nil {
		prepare(fs)
	}
	k := newTask(t, e, fs, "task")
	more, outs := k.punctuate(now)
	if more {
		t.Fatal("an unchunked re-evaluation wants more")
	}
	return outs
}

// TestReevaluationInChunks: after an engine change, punctuations
// re-evaluate the stored subjects a chunk at a time, keep a cursor in the
// state, resume from it in a new Processor, and emit exactly what one
// unchunked re-evaluation emits.
func TestReevaluationInChunks(t *testing.T) {
	engB := mustEngine(t, policiesB, WithReevaluationChunk(3))
	start := at(500).Add(123456789 * time.Nanosecond)
	want := unchunked(t, mustEngine(t, policiesB), nil, start)
	if got := keysOf(want); !slices.Equal(got, reevalSubjects) {
		t.Fatalf("unchunked re-evaluation decided %v", got)
	}

	fs := vfs.NewMem()
	seedTask(t, fs)
	k := newTask(t, engB, fs, "task")
	var got []processors.Output
	steps := []struct {
		now     time.Time
		restart bool // a new Processor over the same state first
		more    bool
		decided []string
		after   string // the cursor's last key; "" for no cursor
	}{
		{now: start, more: true, decided: reevalSubjects[0:3], after: reevalSubjects[2]},
		{now: start.Add(time.Minute), more: true, decided: reevalSubjects[3:6], after: reevalSubjects[5]},
		{now: start.Add(2 * time.Minute), restart: true, more: false, decided: reevalSubjects[6:]},
		{now: start.Add(3 * time.Minute), restart: true, more: false},
	}
	for i, st := range steps {
		if st.restart {
			k.close()
			k = newTask(t, engB, fs, "task")
		}
		more, outs := k.punctuate(st.now)
		got = append(got, outs...)
		if more != st.more || !slices.Equal(keysOf(outs), st.decided) {
			t.Fatalf("chunk %d: more %v, decided %v; want %v, %v", i, more, keysOf(outs), st.more, st.decided)
		}
		for _, o := range outs {
			if e := o.Record.Env(); e.EventTime != start.Truncate(time.Microsecond) || e.ID == "" {
				t.Fatalf("chunk %d: decision event time %s, want the re-evaluation's start %s", i, e.EventTime, start)
			}
		}
		cur := k.cursor()
		switch {
		case st.after == "" && cur != nil:
			t.Fatalf("chunk %d: cursor %+v left after the last chunk", i, cur)
		case st.after != "" && (cur == nil || string(cur.after) != st.after || cur.version != engB.Version() ||
			!cur.start.Equal(start.Truncate(time.Microsecond))):
			t.Fatalf("chunk %d: cursor %+v, want after %s, version %s, start %s", i, cur, st.after, engB.Version(), start)
		}
		wantVersion := mustEngine(t, f41Policies).Version()
		if !st.more {
			wantVersion = engB.Version()
		}
		if v := k.engineVersion(); v != wantVersion {
			t.Fatalf("chunk %d: engine version %s stored, want %s", i, v, wantVersion)
		}
	}
	if a, b := mustJSON(t, got), mustJSON(t, want); a != b {
		t.Fatalf("chunked re-evaluation emitted\n%s\nunchunked\n%s", a, b)
	}
}

// TestReevaluationRestartsWhenEngineChangesMidway: a re-evaluation cut
// short by another engine change starts over from the first subject under
// the newer engine, with a new start time, and ends decided as an
// unchunked re-evaluation under that engine would.
func TestReevaluationRestartsWhenEngineChangesMidway(t *testing.T) {
	chunkB := func(fs vfs.FS) {
		k := newTask(t, mustEngine(t, policiesB, WithReevaluationChunk(3)), fs, "task")
		if more, outs := k.punctuate(at(500)); !more || len(keysOf(outs)) != 3 {
			t.Fatalf("first chunk under B: more %v, decided %v", more, keysOf(outs))
		}
		k.close()
	}
	engC := mustEngine(t, policiesC, WithReevaluationChunk(4))
	want := unchunked(t, mustEngine(t, policiesC), chunkB, at(600))

	fs := vfs.NewMem()
	seedTask(t, fs)
	chunkB(fs)
	k := newTask(t, engC, fs, "task")
	more, got := k.punctuate(at(600))
	if cur := k.cursor(); !more || cur == nil || cur.version != engC.Version() || !cur.start.Equal(at(600)) ||
		string(cur.after) != reevalSubjects[3] {
		t.Fatalf("first chunk under C: more %v, cursor %+v", more, cur)
	}
	if d := keysOf(got); !slices.Equal(d, reevalSubjects[:4]) {
		t.Fatalf("first chunk under C decided %v, want the first 4 subjects", d)
	}
	more, outs := k.punctuate(at(601))
	got = append(got, outs...)
	if more || k.cursor() != nil || k.engineVersion() != engC.Version() {
		t.Fatalf("last chunk under C: more %v, cursor %+v, engine version %s", more, k.cursor(), k.engineVersion())
	}
	if a, b := mustJSON(t, got), mustJSON(t, want); a != b {
		t.Fatalf("re-evaluation restarted under C emitted\n%s\nunchunked\n%s", a, b)
	}
}

// TestReevaluationSkipsSubjectsDecidedByEvents: a subject that receives
// an event during a re-evaluation is decided with the new engine by that
// event, before or after the cursor passed it, and never again by the
// re-evaluation.
func TestReevaluationSkipsSubjectsDecidedByEvents(t *testing.T) {
	engB := mustEngine(t, policiesB, WithReevaluationChunk(3))
	fs := vfs.NewMem()
	seedTask(t, fs)
	k := newTask(t, engB, fs, "task")
	more, chunks := k.punctuate(at(500))
	if !more {
		t.Fatal("one chunk did everything")
	}
	// One subject the cursor passed, one it has not reached.
	behind, ahead := reevalSubjects[1], reevalSubjects[5]
	byEvents, rejs := k.process("",
		result("extra.one", "PASSED", 501, subj(behind), id("r-behind")),
		result("extra.one", "PASSED", 501, subj(ahead), id("r-ahead")))
	if len(rejs) != 0 {
		t.Fatal(rejs)
	}
	if d := keysOf(byEvents); !slices.Equal(d, []string{behind, ahead}) {
		t.Fatalf("events decided %v", d)
	}
	for more {
		var outs []processors.Output
		more, outs = k.punctuate(at(502))
		chunks = append(chunks, outs...)
	}
	wantChunks := slices.DeleteFunc(slices.Clone(reevalSubjects), func(s string) bool { return s == ahead })
	if d := keysOf(chunks); !slices.Equal(d, wantChunks) {
		t.Fatalf("the re-evaluation decided %v, want %v", d, wantChunks)
	}
	// Every subject holds one decision per key, made with B.
	count := map[string]int{}
	for _, o := range append(chunks, byEvents...) {
		d := o.Record.(*avro.GatingDecision)
		if d.PolicyVersion != engB.Policies().Version() {
			t.Fatalf("decision with policy version %s", d.PolicyVersion)
		}
		count[fmt.Sprintf("%s/%s", o.Key, d.DecisionContext)]++
	}
	for _, nvr := range reevalSubjects {
		want := 1
		if nvr == behind {
			want = 2 // the re-evaluation, then the event changed it
		}
		for _, dc := range []string{"bodhi_update_push_stable", "bodhi_update_push_stable_critpath"} {
			if n := count[nvr+"/"+dc]; n != want {
				t.Errorf("%s %s: %d decisions with B, want %d", nvr, dc, n, want)
			}
		}
	}
}

// TestReevaluationBackToRecordedEngine: going back to the engine the task
// recorded, while a re-evaluation under another one was cut short, still
// re-evaluates: the subjects that chunk decided are decided again.
func TestReevaluationBackToRecordedEngine(t *testing.T) {
	fs := vfs.NewMem()
	seedTask(t, fs)
	k := newTask(t, mustEngine(t, policiesB, WithReevaluationChunk(3)), fs, "task")
	if more, _ := k.punctuate(at(500)); !more {
		t.Fatal("one chunk did everything")
	}
	k.close()
	engA := mustEngine(t, f41Policies, WithReevaluationChunk(3))
	k = newTask(t, engA, fs, "task")
	var outs []processors.Output
	for more := true; more; {
		var o []processors.Output
		more, o = k.punctuate(at(600))
		outs = append(outs, o...)
	}
	if d := keysOf(outs); !slices.Equal(d, reevalSubjects[:3]) {
		t.Fatalf("back under A, decided %v, want the subjects B's chunk decided", d)
	}
	if k.cursor() != nil || k.engineVersion() != engA.Version() {
		t.Fatalf("cursor %+v, engine version %s", k.cursor(), k.engineVersion())
	}
}
