package processors

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/factory2/factory2/state"
)

// Metadata names in a task's DB.
func inOffsetName(topic string) string    { return "in/" + topic }
func changelogOffsetName(s string) string { return "changelog/" + s }

// task is one partition of a processor: its Pebble DB, its Processor, and
// the pending (uncommitted) batch of the open transaction. The runner
// holds its lock around every use; promises touch only clEnd, under mu.
type task struct {
	r         *Runner
	partition int32
	label     string
	dir       string
	db        *state.DB
	proc      Processor

	batch    *state.Batch
	ctx      *Context
	restored bool
	// restoring is set while the loop restores the task outside mu;
	// cancelRestore stops it, restoreDone is closed when it has stopped,
	// and gone tells it that the task was revoked meanwhile (and closed
	// by the revocation).
	restoring     bool
	cancelRestore context.CancelFunc
	restoreDone   chan struct{}
	gone          bool
	// offsetsKnown: the partition's committed offsets have been fetched
	// (records came from them), so no earlier owner can still commit.
	offsetsKnown bool
	// caughtUp: the task has reached the end of its inputs at least once
	// since it was assigned (see Health).
	caughtUp bool
	// lag is, per input topic, the last stable offset minus the position
	// at the last fetch; lagGauge exports their sum.
	lag      map[string]int64
	lagGauge prometheus.Gauge
	// position is the next input offset per topic as of the last commit.
	position map[string]int64
	// Punctuation backs off after failures.
	punctFailures int
	punctRetryAt  time.Time
	// quarantined are changelog values the restore refused; sent is set
	// once they are in the open transaction (dead letters, tombstones).
	quarantined     []quarantined
	quarantinedSent bool
	// inNext is the next input offset per topic processed in the open
	// transaction.
	inNext map[string]int64
	// queues are the fetched, unprocessed records per input, in
	// Spec.Inputs order (merge.go); idleSince is when the task began to
	// wait out Config.MaxTaskIdle.
	queues    []*inputQueue
	idleSince time.Time
	// openWake is when the merge's wait for an open transaction on an
	// input ends (Config.MaxTxnWait), set with mergeOpenTxn.
	openWake time.Time

	// What a drain (Runner.drain, possibly on another goroutine) leaves
	// for the runner: records processed and the last one, why it
	// stopped, the error that stopped it. current is the record being
	// processed, to which a failed output is attributed; emitted caches
	// the output counters by topic.
	processed int
	lastRef   recordRef
	wait      mergeWait
	drainErr  error
	current   *kgo.Record
	emitted   map[string]prometheus.Counter
	// decisions holds, per decision kind (Runner.decisionKinds, by
	// index), the timestamps of the inputs that caused the decisions
	// emitted in the open transaction (zero for a punctuation's): counted
	// and observed once the transaction commits.
	decisions [][]time.Time

	mu sync.Mutex
	// clEnd is one past the offset of the last changelog record per store
	// produced in the open transaction, as acknowledged by the broker.
	clEnd map[string]int64
}

func (r *Runner) openTask(p int32) (*task, error) {
	t := &task{
		r:         r,
		partition: p,
		label:     fmt.Sprintf("%s/%d", r.spec.Name, p),
		dir:       filepath.Join(r.cfg.StateDir, r.spec.Name, strconv.Itoa(int(p))),
		inNext:    map[string]int64{},
		emitted:   map[string]prometheus.Counter{},
		clEnd:     map[string]int64{},
		lag:       map[string]int64{},
		position:  map[string]int64{},
		queues:    newQueues(r.spec.Inputs),
		decisions: make([][]time.Time, len(r.decisionKinds)),
	}
	for _, q := range t.queues {
		q.processed = r.metrics.processed.WithLabelValues(r.alias(q.topic))
	}
	if err := t.open(); err != nil {
		return nil, err
	}
	t.proc = r.spec.New(p)
	return t, nil
}

func (t *task) open() error {
	db, err := state.Open(state.Options{Dir: t.dir, FS: t.r.cfg.FS, Cache: t.r.cfg.Cache, ValueCacheBytes: t.r.cfg.StateValueCacheBytes, Logger: t.r.log})
	if err != nil {
		return fmt.Errorf("processors: %s: opening state: %w", t.label, err)
	}
	t.db = db
	t.batch = db.NewBatch()
	t.ctx = NewContext(t.partition, t.batch, t.r.emitFor(t))
	t.ctx.maxValue = t.r.cfg.MaxRecordBytes
	t.r.stateMetrics.Add(t.label, db)
	return nil
}

// discard drops the pending batch: the transaction aborted, and the
// consumer rewinds to the last committed offsets. The DB's cache of
// committed values stays valid: Pebble never saw the batch.
func (t *task) discard() {
	t.resetPending()
	for _, q := range t.queues {
		q.reset()
	}
	t.idleSince = time.Time{}
}

// resetPending empties what the open transaction accumulated. The batch
// is reset, not replaced: its map keeps its capacity for the next
// transaction.
func (t *task) resetPending() {
	t.quarantinedSent = false
	t.batch.Reset()
	clear(t.ctx.cache)
	clear(t.inNext)
	for i := range t.decisions {
		t.decisions[i] = t.decisions[i][:0]
	}
	t.mu.Lock()
	clear(t.clEnd)
	t.mu.Unlock()
}

// flush lets a Flusher write what it holds in its transaction cache.
func (t *task) flush() error {
	if f, ok := t.proc.(Flusher); ok && len(t.ctx.cache) > 0 {
		if err := f.Flush(t.ctx); err != nil {
			return fmt.Errorf("processors: %s: flush: %w", t.label, err)
		}
	}
	return nil
}

// produceChangelog sends the last write of every key changed in the open
// transaction to the store's changelog, in key order (deterministic): the
// pending batch keeps exactly that, one write per key, tombstones (nil
// values) for deletes. The records share their values with the batch,
// which never overwrites a value it handed out. A batch that cannot be
// read (its DB is closed) dooms the transaction with a StorageError.
func (t *task) produceChangelog(ctx context.Context) {
	for _, store := range t.r.spec.Stores {
		topic := t.r.changelogs[store]
		acked := func(r *kgo.Record) {
			t.mu.Lock()
			if r.Offset+1 > t.clEnd[store] {
				t.clEnd[store] = r.Offset + 1
			}
			t.mu.Unlock()
		}
		n := 0
		err := t.batch.Changes(store, func(key, value []byte) {
			n++
			t.r.produce(ctx, &kgo.Record{Topic: topic, Partition: t.partition, Key: key, Value: value}, nil, acked)
		})
		if err != nil {
			t.r.setProduceErr(&StorageError{fmt.Errorf("%s: reading the changes of %s: %w", t.label, store, err)})
			return
		}
		t.r.metrics.changelogRecords.Add(float64(n))
	}
}

// applyCommitted writes the pending batch, with the input offsets it
// consumed and the changelog offsets it produced, to Pebble in one atomic
// batch. It runs only after the Kafka transaction committed: Pebble is a
// cache of the changelog, never ahead of it.
func (t *task) applyCommitted(now time.Time) error {
	t.countDecisions(now)
	for topic, off := range t.inNext {
		if err := t.batch.SetOffset(inOffsetName(topic), off); err != nil {
			return err
		}
		t.position[topic] = off
	}
	if t.quarantinedSent {
		t.quarantined = nil
	}
	t.mu.Lock()
	for store, off := range t.clEnd {
		if err := t.batch.SetOffset(changelogOffsetName(store), off); err != nil {
			t.mu.Unlock()
			return err
		}
		// The store matches its changelog now (see restoreFrom).
		if err := t.batch.SetOffset(syncedAtName(store), now.UnixMilli()); err != nil {
			t.mu.Unlock()
			return err
		}
	}
	t.mu.Unlock()
	if !t.batch.Empty() {
		// Not fsynced: the changelog is the durable copy. An OS crash that
		// loses this batch loses its offsets with it (one atomic batch),
		// so the store is left older and consistent, and the next restore
		// re-applies the tail. The fsync was a quarter of the commit loop.
		if err := t.db.CommitNoSync(t.batch); err != nil {
			return fmt.Errorf("processors: %s: committing state: %w", t.label, err)
		}
	}
	t.resetPending()
	return nil
}

// countDecisions counts the decisions of the transaction that committed
// at now, and observes their latency from the input that caused each.
func (t *task) countDecisions(now time.Time) {
	for i, caused := range t.decisions {
		if len(caused) == 0 {
			continue
		}
		d := &t.r.decisionKinds[i]
		d.count.Add(float64(len(caused)))
		for _, ts := range caused {
			if !ts.IsZero() {
				d.latency.Observe(max(0, now.Sub(ts).Seconds()))
			}
		}
	}
}

// noteDecision records a decision of kind i, caused by src (nil: by a
// punctuation), until the transaction ends.
func (t *task) noteDecision(i int, src *kgo.Record) {
	var ts time.Time
	if src != nil {
		ts = src.Timestamp
	}
	t.decisions[i] = append(t.decisions[i], ts)
}

// hasWrites reports whether the open transaction changed the task's state
// or may still change it (a Flusher's transaction cache).
func (t *task) hasWrites() bool {
	return !t.batch.Empty() || len(t.ctx.cache) > 0
}

// emittedCounter returns the emitted-records counter of topic.
func (t *task) emittedCounter(topic string) prometheus.Counter {
	c, ok := t.emitted[topic]
	if !ok {
		c = t.r.metrics.emitted.WithLabelValues(t.r.alias(topic))
		t.emitted[topic] = c
	}
	return c
}

// noteLag records the task's lag on an input: its last stable offset
// minus the position fetched to.
func (t *task) noteLag(topic string, lag int64) {
	lag = max(0, lag)
	t.lag[topic] = lag
	var sum int64
	for _, l := range t.lag {
		sum += l
	}
	// Transaction markers are fetched too (KeepControlRecords), so the
	// position reaches the last stable offset.
	if lag == 0 {
		t.caughtUp = true
	}
	if t.lagGauge == nil {
		t.lagGauge = t.r.metrics.lag.WithLabelValues(strconv.Itoa(int(t.partition)))
	}
	t.lagGauge.Set(float64(sum))
}

// close releases the task. A pending batch is dropped: if its transaction
// committed after all, the changelog has its writes and the next restore
// of this partition reads them back.
func (t *task) close() error {
	t.r.stateMetrics.Remove(t.label)
	t.batch.Close()
	return t.db.Close()
}
