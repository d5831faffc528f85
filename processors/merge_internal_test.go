package processors

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func mergeTask(inputs ...string) *task {
	return &task{queues: newQueues(inputs), inNext: map[string]int64{}, position: map[string]int64{}, lag: map[string]int64{}}
}

func rec(topic string, offset int64, ms int64) *kgo.Record {
	return &kgo.Record{Topic: topic, Offset: offset, Timestamp: time.UnixMilli(ms)}
}

func push(q *inputQueue, seq uint64, rs ...*kgo.Record) {
	for _, r := range rs {
		q.recs = append(q.recs, r)
		q.seqs = append(q.seqs, seq)
		q.next = r.Offset + 1
	}
}

func noCommits() map[string]map[int32]kgo.EpochOffset { return nil }

func TestMergeTakesSmallestTimestampThenInputOrderThenOffset(t *testing.T) {
	r := &Runner{}
	tk := mergeTask("a", "b")
	a, b := tk.queues[0], tk.queues[1]
	push(a, 1, rec("a", 0, 20), rec("a", 1, 10), rec("a", 2, 30)) // log order kept within a
	push(b, 1, rec("b", 0, 20), rec("b", 1, 30))
	var got []string
	for {
		q, why := r.nextRecord(tk, time.Now(), noCommits)
		if why == mergeEmpty {
			break
		}
		if why != mergeReady {
			// An input ran dry: say it holds nothing more, as of now.
			for _, e := range tk.queues {
				if len(e.recs) == 0 {
					e.lso, e.seen = e.next, 1
				}
			}
			continue
		}
		x := q.pop()
		got = append(got, x.Topic+"@"+string(rune('0'+x.Offset)))
	}
	want := []string{"a@0", "a@1", "b@0", "a@2", "b@1"}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
}

func TestMergeWaitsForWhatAnIdleInputMayHold(t *testing.T) {
	r := &Runner{}
	tk := mergeTask("a", "b")
	a, b := tk.queues[0], tk.queues[1]
	push(a, 5, rec("a", 0, 10))
	now := time.Now()

	// Nothing known of b: ask.
	if _, why := r.nextRecord(tk, now, noCommits); why != mergeEvidence {
		t.Fatalf("b unknown: %v, want mergeEvidence", why)
	}
	// b's end known, but from a fetch answer older than a's record.
	b.lso, b.logStart, b.seen = 0, 0, 4
	if _, why := r.nextRecord(tk, now, noCommits); why != mergeEvidence {
		t.Fatalf("b's end stale: %v, want mergeEvidence", why)
	}
	// b has committed data not fetched: wait for the fetch.
	b.lso, b.seen = 3, 5
	if _, why := r.nextRecord(tk, now, noCommits); why != mergeFetch {
		t.Fatalf("b has data: %v, want mergeFetch", why)
	}
	// The committed offset is b's position when nothing was fetched.
	committed := func() map[string]map[int32]kgo.EpochOffset {
		return map[string]map[int32]kgo.EpochOffset{"b": {0: {Offset: 3}}}
	}
	if q, why := r.nextRecord(tk, now, committed); why != mergeReady || q != a {
		t.Fatalf("b caught up at its committed offset: %v, want a's record", why)
	}
	// Fetched up to its end: go.
	b.next = 3
	if q, why := r.nextRecord(tk, now, noCommits); why != mergeReady || q != a {
		t.Fatalf("b caught up: %v, want a's record", why)
	}

	// MaxTaskIdle waits for data not yet produced, then goes.
	r.cfg.MaxTaskIdle = time.Second
	if _, why := r.nextRecord(tk, now, noCommits); why != mergeIdle {
		t.Fatalf("idle wait: %v, want mergeIdle", why)
	}
	if q, why := r.nextRecord(tk, now.Add(time.Second), noCommits); why != mergeReady || q != a {
		t.Fatalf("after the idle wait: %v, want a's record", why)
	}
	// Negative: never wait.
	r.cfg.MaxTaskIdle = -1
	b.lso = 9
	if q, why := r.nextRecord(tk, now, noCommits); why != mergeReady || q != a {
		t.Fatalf("MaxTaskIdle < 0: %v, want a's record", why)
	}
}

// An input read to its last stable offset, with its high watermark above
// it, holds an open transaction whose records may commit with earlier
// timestamps: the merge waits for it, up to MaxTxnWait, and then goes on
// without waiting again for the same transaction.
func TestMergeWaitsForAnOpenTransactionOnAnIdleInput(t *testing.T) {
	r := &Runner{}
	r.cfg.MaxTxnWait = time.Second
	tk := mergeTask("a", "b")
	a, b := tk.queues[0], tk.queues[1]
	push(a, 5, rec("a", 0, 10))
	b.next, b.lso, b.hw, b.logStart, b.seen = 3, 3, 3, 0, 5
	now := time.Now()
	if q, why := r.nextRecord(tk, now, noCommits); why != mergeReady || q != a {
		t.Fatalf("b at its end, nothing open: %v, want a's record", why)
	}

	b.hw = 5 // records 3 and 4: an open transaction's
	if _, why := r.nextRecord(tk, now, noCommits); why != mergeOpenTxn {
		t.Fatalf("open transaction on b: %v, want mergeOpenTxn", why)
	}
	if want := now.Add(time.Second); !tk.openWake.Equal(want) {
		t.Fatalf("wake at %v, want %v", tk.openWake, want)
	}
	if _, why := r.nextRecord(tk, now.Add(999*time.Millisecond), noCommits); why != mergeOpenTxn {
		t.Fatalf("open transaction on b, within MaxTxnWait: %v, want mergeOpenTxn", why)
	}
	if q, why := r.nextRecord(tk, now.Add(time.Second), noCommits); why != mergeReady || q != a {
		t.Fatalf("after MaxTxnWait: %v, want a's record", why)
	}
	if q, why := r.nextRecord(tk, now.Add(2*time.Second), noCommits); why != mergeReady || q != a {
		t.Fatalf("same transaction, given up: %v, want a's record", why)
	}

	// The transaction committed (its marker at 5): the stable offset is
	// past b's position, so b has data to fetch.
	b.lso, b.hw = 6, 6
	if _, why := r.nextRecord(tk, now.Add(2*time.Second), noCommits); why != mergeFetch {
		t.Fatalf("committed: %v, want mergeFetch", why)
	}
	// Fetched, and another transaction opens: a new wait.
	b.next, b.hw = 6, 8
	later := now.Add(3 * time.Second)
	if _, why := r.nextRecord(tk, later, noCommits); why != mergeOpenTxn {
		t.Fatalf("next transaction: %v, want mergeOpenTxn", why)
	}
	// A stale answer is asked again before the open transaction counts.
	b.seen = 4
	if _, why := r.nextRecord(tk, later, noCommits); why != mergeEvidence {
		t.Fatalf("stale end: %v, want mergeEvidence", why)
	}
	b.seen = 5

	// Negative MaxTxnWait, or MaxTaskIdle: no wait.
	r.cfg.MaxTxnWait = -1
	if q, why := r.nextRecord(tk, later, noCommits); why != mergeReady || q != a {
		t.Fatalf("MaxTxnWait < 0: %v, want a's record", why)
	}
	r.cfg.MaxTxnWait, r.cfg.MaxTaskIdle = time.Second, -1
	if q, why := r.nextRecord(tk, later, noCommits); why != mergeReady || q != a {
		t.Fatalf("MaxTaskIdle < 0: %v, want a's record", why)
	}
}
