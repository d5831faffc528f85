package processors

import (
	"cmp"
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The order of records within a task (DESIGN.md, "One order of events").
//
// A task consumes partition p of every input topic. Its records are
// processed in one order, the same live and in replay: of the records at
// the head of each input partition, the one with the smallest record
// timestamp first, then the earlier input topic (Spec.Inputs order), then
// the smaller offset. Within one topic-partition the log order is kept
// whatever the timestamps. Live, a head is taken only once every other
// input partition of the task either has records fetched (so its head
// takes part in the comparison) or is known to hold nothing more: its
// last stable offset, as reported after the head was fetched, is at the
// task's position. A partition with committed data not yet fetched is
// waited for; so is one whose log holds an open transaction at the task's
// position (its high watermark is above its last stable offset): those
// records may commit with an earlier timestamp than the heads, as when a
// producer's transaction over several inputs has its commit markers
// written partition by partition. That wait is bounded by
// Config.MaxTxnWait, so a hanging producer cannot stop the task.
// Config.MaxTaskIdle adds a wait for data not yet produced.

// before orders two head records of one task: by timestamp, then input
// order, then offset.
func before(a *kgo.Record, ai int, b *kgo.Record, bi int) bool {
	return cmp.Or(a.Timestamp.Compare(b.Timestamp), cmp.Compare(ai, bi), cmp.Compare(a.Offset, b.Offset)) < 0
}

// inputQueue holds the fetched, unprocessed records of one input
// partition of a task, in offset order, with what is known of the
// partition's end.
type inputQueue struct {
	topic string
	idx   int // the topic's place in Spec.Inputs
	recs  []*kgo.Record
	seqs  []uint64 // the poll each record arrived in
	bytes int      // of the records' keys and values (backpressure)

	// next is one past the last offset fetched (control records
	// included), -1 when not known since the last rewind.
	next int64
	// lso, hw and logStart are the partition's last stable offset, high
	// watermark and log start as last reported (-1: never), in poll seen
	// (or later: a broker answer obtained after that poll).
	lso, hw, logStart int64
	seen              uint64
	// openLSO is the last stable offset at which the merge began to wait
	// for an open transaction (Config.MaxTxnWait), at openSince.
	openLSO   int64
	openSince time.Time

	processed prometheus.Counter // records processed, by the runner
}

func newQueues(inputs []string) []*inputQueue {
	qs := make([]*inputQueue, len(inputs))
	for i, t := range inputs {
		qs[i] = &inputQueue{topic: t, idx: i, next: -1, lso: -1, hw: -1, logStart: -1, openLSO: -1}
	}
	return qs
}

// reset forgets the queued records and the position: the consumer was
// rewound to the committed offsets (an abort).
func (q *inputQueue) reset() {
	clear(q.recs)
	q.recs, q.seqs = q.recs[:0], q.seqs[:0]
	q.bytes = 0
	q.next = -1
}

func (q *inputQueue) pop() *kgo.Record {
	rec := q.recs[0]
	q.bytes -= len(rec.Key) + len(rec.Value)
	q.recs[0] = nil
	q.recs, q.seqs = q.recs[1:], q.seqs[1:]
	if len(q.recs) == 0 {
		q.recs, q.seqs = q.recs[:0:0], q.seqs[:0:0] // let the arrays go
	}
	return rec
}

// mergeWait says why a task cannot take its next record now.
type mergeWait int

const (
	mergeReady    mergeWait = iota
	mergeEmpty              // nothing queued
	mergeFetch              // an input partition has committed data not yet fetched
	mergeEvidence           // an input partition's end is not known as of the head's fetch
	mergeOpenTxn            // an input partition holds an open transaction at the task's position
	mergeIdle               // Config.MaxTaskIdle: waiting for data not yet produced
	mergeBudget             // the drain's share of MaxPollRecords is spent; more is ready
)

// mergeWaitReasons label factory2_processor_tasks_merge_waiting, by
// mergeWait ("": not a wait on another input).
var mergeWaitReasons = [...]string{
	mergeFetch:    "fetch",
	mergeEvidence: "evidence",
	mergeOpenTxn:  "open_txn",
	mergeIdle:     "idle",
	mergeBudget:   "",
}

// queueOf returns t's queue of topic, nil if topic is not an input.
func (t *task) queueOf(topic string) *inputQueue {
	for _, q := range t.queues {
		if q.topic == topic {
			return q
		}
	}
	return nil
}

// queued reports whether t holds fetched records it has not processed.
func (t *task) queued() bool {
	for _, q := range t.queues {
		if len(q.recs) > 0 {
			return true
		}
	}
	return false
}

// enqueue adds the records of one poll to the tasks' queues, and what the
// poll reported of each partition's end. Called with mu held.
func (r *Runner) enqueue(fetches kgo.Fetches) {
	r.pollSeq++
	fetches.EachPartition(func(fp kgo.FetchTopicPartition) {
		if fp.Err != nil {
			return
		}
		t := r.tasks[fp.Partition]
		if t == nil {
			return // revoked since the fetch
		}
		q := t.queueOf(fp.Topic)
		if q == nil {
			return
		}
		for _, rec := range fp.Records {
			q.recs = append(q.recs, rec)
			q.seqs = append(q.seqs, r.pollSeq)
			q.bytes += len(rec.Key) + len(rec.Value)
		}
		if n := len(fp.Records); n > 0 {
			q.next = fp.Records[n-1].Offset + 1
			t.offsetsKnown = true
		}
		if fp.LastStableOffset >= 0 {
			q.lso, q.hw, q.seen = fp.LastStableOffset, fp.HighWatermark, r.pollSeq
			// A fetch answer, records or not: the client fetches a
			// partition only from the offset the group's (stable)
			// offset fetch gave, so the committed offsets are known,
			// also for a partition that never had a record.
			t.offsetsKnown = true
		}
		if fp.LogStartOffset >= 0 {
			q.logStart = fp.LogStartOffset
		}
		switch {
		case q.next >= 0 && q.lso >= 0:
			t.noteLag(q.topic, q.lso-q.next)
		case len(fp.Records) == 0 && fp.LastStableOffset >= 0:
			// Nothing to return at the position: at the end (a
			// partition that never had a record, or one consumed to
			// its end before this session).
			t.noteLag(q.topic, 0)
		}
	})
}

// position is where the consumer delivers q's next record: one past the
// last fetched offset, else the committed offset, else (nothing was ever
// committed: consuming starts at the log start) the log start; -1 when
// none is known. Called with mu held.
func (r *Runner) position(t *task, q *inputQueue, committed map[string]map[int32]kgo.EpochOffset) int64 {
	pos := q.logStart
	if o, ok := committed[q.topic][t.partition]; ok && o.Offset >= 0 {
		pos = o.Offset
	} else if p, ok := t.position[q.topic]; ok {
		pos = p
	}
	if q.next >= 0 {
		pos = q.next
	}
	if pos >= 0 && q.logStart > pos {
		// Deleted meanwhile: the consumer resets to the log start.
		pos = q.logStart
	}
	return pos
}

// nextRecord returns the queue whose head t processes next, or why it must
// wait. Control records at the heads are consumed on the way (they move
// the position only). Called with mu held.
func (r *Runner) nextRecord(t *task, now time.Time, committed func() map[string]map[int32]kgo.EpochOffset) (*inputQueue, mergeWait) {
	var best *inputQueue
	t.openWake = time.Time{}
	for _, q := range t.queues {
		for len(q.recs) > 0 && q.recs[0].Attrs.IsControl() {
			rec := q.pop()
			t.inNext[q.topic] = rec.Offset + 1
		}
		if len(q.recs) > 0 && (best == nil || before(q.recs[0], q.idx, best.recs[0], best.idx)) {
			best = q
		}
	}
	if best == nil {
		t.idleSince = time.Time{}
		return nil, mergeEmpty
	}
	if r.cfg.MaxTaskIdle < 0 || len(t.queues) == 1 {
		return best, mergeReady
	}
	headSeq := best.seqs[0]
	why := mergeReady
	var c map[string]map[int32]kgo.EpochOffset
	for _, q := range t.queues {
		if len(q.recs) > 0 {
			continue
		}
		if c == nil {
			c = committed()
		}
		pos := r.position(t, q, c)
		switch {
		case q.lso >= 0 && pos >= 0 && q.lso > pos:
			return nil, mergeFetch // known data: always wait for it
		case q.lso < 0 || pos < 0 || q.seen < headSeq:
			why = mergeEvidence
		case q.hw > q.lso && q.lso == pos && r.awaitOpenTxn(t, q, now):
			if why == mergeReady {
				why = mergeOpenTxn
			}
		}
	}
	if why != mergeReady {
		return nil, why
	}
	if r.cfg.MaxTaskIdle > 0 && t.hasEmptyQueue() {
		if t.idleSince.IsZero() {
			t.idleSince = now
		}
		if now.Sub(t.idleSince) < r.cfg.MaxTaskIdle {
			return nil, mergeIdle
		}
	}
	return best, mergeReady
}

// awaitOpenTxn reports whether t still waits for the open transaction at
// q's last stable offset, and notes when the wait ends in t.openWake. A
// wait past Config.MaxTxnWait is given up for that offset (counted and
// logged once): the producer may hang until its transaction times out.
func (r *Runner) awaitOpenTxn(t *task, q *inputQueue, now time.Time) bool {
	if r.cfg.MaxTxnWait < 0 {
		return false
	}
	if q.openLSO != q.lso {
		q.openLSO, q.openSince = q.lso, now
	}
	end := q.openSince.Add(r.cfg.MaxTxnWait)
	if !now.Before(end) {
		if !q.openSince.IsZero() {
			q.openSince = time.Time{} // given up for this offset
			if r.metrics != nil {
				r.metrics.openTxnGiveUps.Inc()
			}
			if r.log != nil {
				r.log.Warn("went on without an open transaction on an input: its records, if committed, may be processed in another order than a replay's",
					"topic", q.topic, "partition", t.partition, "last_stable_offset", q.lso, "high_watermark", q.hw, "waited", r.cfg.MaxTxnWait)
			}
		}
		return false
	}
	if t.openWake.IsZero() || end.Before(t.openWake) {
		t.openWake = end
	}
	return true
}

func (t *task) hasEmptyQueue() bool {
	for _, q := range t.queues {
		if len(q.recs) == 0 {
			return true
		}
	}
	return false
}

// fetchEnds asks the brokers for the last stable offset and log start of
// the input partitions that tasks wait on for evidence (their leader's
// fetch answer carried nothing). The answer postdates every queued record,
// so it is evidence for all of them.
func (r *Runner) fetchEnds(ctx context.Context, want map[string][]int32) error {
	if len(want) == 0 {
		return nil
	}
	r.mu.Lock()
	seq := r.pollSeq
	r.mu.Unlock()
	lctx, cancel := context.WithTimeout(ctx, r.cfg.SessionTimeout)
	defer cancel()
	adm := kadm.NewClient(r.admin)
	var topics []string
	for t := range want {
		topics = append(topics, t)
	}
	ends, err := adm.ListCommittedOffsets(lctx, topics...)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return fmt.Errorf("processors: %s: listing input end offsets: %w", r.spec.Name, err)
	}
	// The high watermarks, asked after the last stable offsets: a high
	// watermark above the last stable offset asked before it means an
	// open transaction then (or records since, which the wait also
	// covers).
	hws, err := adm.ListEndOffsets(lctx, topics...)
	if err == nil {
		err = hws.Error()
	}
	if err != nil {
		return fmt.Errorf("processors: %s: listing input high watermarks: %w", r.spec.Name, err)
	}
	starts, err := adm.ListStartOffsets(lctx, topics...)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return fmt.Errorf("processors: %s: listing input start offsets: %w", r.spec.Name, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.metrics.endLookups.Inc()
	for topic, ps := range want {
		for _, p := range ps {
			t := r.tasks[p]
			if t == nil {
				continue
			}
			q := t.queueOf(topic)
			end, ok1 := ends.Lookup(topic, p)
			start, ok2 := starts.Lookup(topic, p)
			hw, ok3 := hws.Lookup(topic, p)
			if q == nil || !ok1 || !ok2 || !ok3 {
				continue
			}
			q.lso, q.hw, q.logStart = end.Offset, hw.Offset, start.Offset
			q.seen = max(q.seen, seq)
		}
	}
	return nil
}

// queuedFrom returns, for every input partition with queued records, the
// offset of the first one: the transaction about to commit consumed up
// to there only. The consumer keeps its position past them, and they
// stay queued for the next transaction. Called with mu held.
func (r *Runner) queuedFrom() map[string]map[int32]kgo.EpochOffset {
	var from map[string]map[int32]kgo.EpochOffset
	for _, t := range r.tasks {
		for _, q := range t.queues {
			if len(q.recs) == 0 {
				continue
			}
			if from == nil {
				from = map[string]map[int32]kgo.EpochOffset{}
			}
			if from[q.topic] == nil {
				from[q.topic] = map[int32]kgo.EpochOffset{}
			}
			first := q.recs[0]
			from[q.topic][t.partition] = kgo.EpochOffset{Epoch: first.LeaderEpoch, Offset: first.Offset}
			r.metrics.carried.Add(float64(len(q.recs)))
		}
	}
	return from
}

// commitQueuedFrom returns ctx with a hook on the transaction's offset
// commit (kgo.PreTxnCommitFnContext) that commits, for the partitions of
// from, the first queued offset instead of the consumer's position. The
// session records the offsets as sent, so an abort later rewinds to them.
func commitQueuedFrom(ctx context.Context, from map[string]map[int32]kgo.EpochOffset) context.Context {
	if len(from) == 0 {
		return ctx
	}
	return kgo.PreTxnCommitFnContext(ctx, func(req *kmsg.TxnOffsetCommitRequest) error {
		for i := range req.Topics {
			t := &req.Topics[i]
			for j := range t.Partitions {
				p := &t.Partitions[j]
				if o, ok := from[t.Topic][p.Partition]; ok && o.Offset < p.Offset {
					p.Offset, p.LeaderEpoch = o.Offset, o.Epoch
				}
			}
		}
		return nil
	})
}
