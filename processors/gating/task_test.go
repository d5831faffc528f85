package gating

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/factory2/factory2/avro"
	"github.com/factory2/factory2/processors"
	"github.com/factory2/factory2/state"
	"github.com/factory2/factory2/topics"
)

// task runs the gating Processor the way the runtime runs one task, in
// memory: each call is one transaction over a Pebble state (Process or
// Punctuate, then Flush, then commit), so a test sees what commits.
type task struct {
	t  testing.TB
	db *state.DB
	p  *Processor
	// views are the build views emitted, apart from the decisions.
	views []*avro.ComposeMember
}

// rejection is one record the processor sent to the dead-letter topic.
type rejection struct {
	ID     string
	Reason string
}

// newTask opens the state in dir of fs (a fresh one, or one an earlier
// task left there) and a new Processor for e.
func newTask(t testing.TB, e *Engine, fs vfs.FS, dir string) *task {
	t.Helper()
	db, err := state.Open(state.Options{Dir: dir, FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	cat, err := topics.New(topics.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return &task{t: t, db: db, p: Spec(cat, e).New(0).(*Processor)}
}

// close closes the state, as a stopped task does.
func (k *task) close() {
	k.t.Helper()
	if err := k.db.Close(); err != nil {
		k.t.Fatal(err)
	}
}

// txn runs fn in one transaction and commits it; it returns the
// decisions fn emitted (build views go to k.views).
func (k *task) txn(fn func(c *processors.Context)) []processors.Output {
	k.t.Helper()
	b := k.db.NewBatch()
	defer b.Close()
	var outs []processors.Output
	c := processors.NewContext(0, b, func(o processors.Output) {
		if o.Topic == k.p.builds {
			k.views = append(k.views, o.Record.(*avro.ComposeMember))
			return
		}
		outs = append(outs, o)
	})
	fn(c)
	if err := k.p.Flush(c); err != nil {
		k.t.Fatal(err)
	}
	if err := k.db.Commit(b); err != nil {
		k.t.Fatal(err)
	}
	return outs
}

// process processes recs in one transaction, keyed by their subject
// unless key is set, and returns the outputs and the rejections.
func (k *task) process(key string, recs ...avro.Record) ([]processors.Output, []rejection) {
	k.t.Helper()
	var rejs []rejection
	outs := k.txn(func(c *processors.Context) {
		for _, r := range recs {
			kk := key
			if kk == "" {
				kk, _ = subjectOf(r)
			}
			err := k.p.Process(c, &processors.Input{Key: []byte(kk), Record: r})
			var rej *processors.RejectError
			switch {
			case errors.As(err, &rej):
				rejs = append(rejs, rejection{r.Env().ID, rej.Reason})
			case err != nil:
				k.t.Fatalf("process %s: %v", r.Env().ID, err)
			}
		}
	})
	return outs, rejs
}

// punctuate runs one punctuation in its own transaction.
func (k *task) punctuate(now time.Time) (bool, []processors.Output) {
	k.t.Helper()
	var more bool
	outs := k.txn(func(c *processors.Context) {
		var err error
		if more, err = k.p.Punctuate(c, now); err != nil {
			k.t.Fatalf("punctuate: %v", err)
		}
	})
	return more, outs
}

// stored returns the committed value of key in the subjects store.
func (k *task) stored(key string) ([]byte, bool) {
	k.t.Helper()
	v, err := k.db.Get(StoreSubjects, []byte(key))
	if errors.Is(err, state.ErrNotFound) {
		return nil, false
	}
	if err != nil {
		k.t.Fatal(err)
	}
	return v, true
}

// keys lists the committed keys of the subjects store.
func (k *task) keys() []string {
	k.t.Helper()
	var out []string
	if err := k.db.Scan(StoreSubjects, nil, nil, func(key, _ []byte) error {
		out = append(out, string(key))
		return nil
	}); err != nil {
		k.t.Fatal(err)
	}
	return out
}

func mustEngine(t testing.TB, policies string, opts ...Option) *Engine {
	t.Helper()
	var ps *PolicySet
	if policies != "" {
		ps = mustPolicies(t, policies)
	}
	e, err := NewEngine(ps, nil, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// A record stored under another key than its subject would live in the
// wrong partition's state: it is rejected whether or not the key has
// state, for every record type.
func TestProcessRejectsKeyOtherThanSubject(t *testing.T) {
	const other = "other-1.0-1.fc41"
	on := subj(f41NVR)
	recs := []avro.Record{
		build(avro.StateComplete, 1, on, id("b")),
		tag("f41-updates", 2, on, id("t")),
		sign("abcd", 3, on, artifacts("bash-5.2.26-3.fc41.src.rpm"), id("s")),
		result("dist.rpmdeplint", "PASSED", 4, on, id("r")),
		waive("dist.rpmdeplint", "fedora-41", true, 5, on, id("w")),
		remote("gating.yaml", "--- !Policy\n", 6, on, id("f")),
	}
	for _, withState := range []bool{false, true} {
		name := "no state for the key"
		if withState {
			name = "state for the key"
		}
		t.Run(name, func(t *testing.T) {
			k := newTask(t, mustEngine(t, f41Policies), vfs.NewMem(), "task")
			if withState {
				if _, rejs := k.process("", build(avro.StateComplete, 0, subj(other), id("o"))); len(rejs) != 0 {
					t.Fatalf("rejected: %v", rejs)
				}
			}
			before, _ := k.stored(other)
			outs, rejs := k.process(other, recs...)
			if len(outs) != 0 {
				t.Errorf("emitted %d records", len(outs))
			}
			if len(rejs) != len(recs) {
				t.Fatalf("rejected %d of %d records: %v", len(rejs), len(recs), rejs)
			}
			for _, r := range rejs {
				if !strings.Contains(r.Reason, `"`+other+`" is not the record's subject "`+f41NVR+`"`) {
					t.Errorf("%s: reason %q", r.ID, r.Reason)
				}
			}
			if after, _ := k.stored(other); string(after) != string(before) {
				t.Error("the key's state changed")
			}
			if _, ok := k.stored(f41NVR); ok {
				t.Error("the subject got state")
			}
		})
	}
}

// The runtime gives every task the Processor Spec's New returns, one for
// all partitions, and runs tasks on several threads at once
// (processing.threads): Process, Flush and the outputs must keep no
// per-task state in it. Two tasks here process their own builds, each
// on its own goroutine and state, through the one Processor; under
// -race this fails on any state they share (a reused outputs slice in
// the Processor did, and panicked in the throughput benchmark), and
// without it on an output that another task's event overwrote.
func TestProcessorServesConcurrentTasks(t *testing.T) {
	e, err := NewEngine(mustPolicies(t, f41Policies), signingRules)
	if err != nil {
		t.Fatal(err)
	}
	cat, err := topics.New(topics.Config{Partitions: 2, Replication: 1})
	if err != nil {
		t.Fatal(err)
	}
	spec := Spec(cat, e)
	if spec.New(0) != spec.New(1) {
		t.Log("Spec's New now returns a Processor per task; this test still checks concurrent use")
	}
	const builds, txns = 40, 5
	var wg sync.WaitGroup
	for task := range int32(2) {
		p := spec.New(task)
		wg.Go(func() {
			db, err := state.Open(state.Options{Dir: fmt.Sprint("task", task), FS: vfs.NewMem()})
			if err != nil {
				t.Error(err)
				return
			}
			defer db.Close()
			for txn := range txns {
				b := db.NewBatch()
				c := processors.NewContext(task, b, func(o processors.Output) {
					id := ""
					if o.Record != nil {
						id = o.Record.Env().ID
					}
					if want := fmt.Sprintf("task%d-", task); !strings.Contains(string(o.Key), want) {
						t.Errorf("task %d emitted %s for key %q, another task's", task, id, o.Key)
					}
				})
				for i := range builds {
					nvr := fmt.Sprintf("task%d-b%d-1.0-1.fc41", task, txn*builds+i)
					for j, r := range []avro.Record{
						build(avro.StateComplete, 0, subj(nvr), artifacts(nvr+".x86_64.rpm")),
						tag("f41-updates-candidate", 1, subj(nvr)),
						sign(buildKey, 2, subj(nvr), artifacts(nvr+".x86_64.rpm")),
						result("dist.rpmdeplint", "PASSED", 3, subj(nvr), rid(nvr)),
					} {
						r.Env().ID = fmt.Sprintf("%s-%d", nvr, j)
						if err := p.Process(c, &processors.Input{Key: []byte(nvr), Record: r}); err != nil {
							t.Errorf("task %d, %s: %v", task, r.Env().ID, err)
						}
					}
				}
				if err := p.(processors.Flusher).Flush(c); err != nil {
					t.Error(err)
				}
				if err := db.Commit(b); err != nil {
					t.Error(err)
				}
				b.Close()
			}
		})
	}
	wg.Wait()
}
