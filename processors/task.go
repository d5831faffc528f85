package processors

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
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
	// at the last fetch.
	lag map[string]int64
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
		clEnd:     map[string]int64{},
		lag:       map[string]int64{},
		position:  map[string]int64{},
		queues:    newQueues(r.spec.Inputs),
		emitted:   map[string]prometheus.Counter{},
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
	db, err := state.Open(state.Options{Dir: t.dir, FS: t.r.cfg.FS, Cache: t.r.cfg.Cache, Logger: t.r.log})
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
// consumer rewinds to the last committed offsets.
func (t *task) discard() {
	t.batch.Close()
	t.resetPending()
	for _, q := range t.queues {
		q.reset(-1)
	}
	t.idleSince = time.Time{}
}

func (t *task) resetPending() {
	t.quarantinedSent = false
	t.batch = t.db.NewBatch()
	t.ctx.view = t.batch
	clear(t.ctx.dirty)
	clear(t.ctx.cache)
	clear(t.inNext)
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
// transaction to the store's changelog, in key order (deterministic).
func (t *task) produceChangelog(ctx context.Context) {
	for _, store := range t.r.spec.Stores {
		m := t.ctx.dirty[store]
		if len(m) == 0 {
			continue
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		topic := t.r.changelogs[store]
		for _, k := range keys {
			rec := &kgo.Record{Topic: topic, Partition: t.partition, Key: []byte(k), Value: m[k]}
			t.r.metrics.changelogRecords.Inc()
			t.r.produce(ctx, rec, nil, func(r *kgo.Record) {
				t.mu.Lock()
				if r.Offset+1 > t.clEnd[store] {
					t.clEnd[store] = r.Offset + 1
				}
				t.mu.Unlock()
			})
		}
	}
}

// applyCommitted writes the pending batch, with the input offsets it
// consumed and the changelog offsets it produced, to Pebble in one atomic
// batch. It runs only after the Kafka transaction committed: Pebble is a
// cache of the changelog, never ahead of it.
func (t *task) applyCommitted(now time.Time) error {
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
	t.batch.Close()
	t.resetPending()
	return nil
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
	t.r.metrics.lag.WithLabelValues(strconv.Itoa(int(t.partition))).Set(float64(sum))
}

// close releases the task. A pending batch is dropped: if its transaction
// committed after all, the changelog has its writes and the next restore
// of this partition reads them back.
func (t *task) close() error {
	t.r.stateMetrics.Remove(t.label)
	t.batch.Close()
	return t.db.Close()
}
