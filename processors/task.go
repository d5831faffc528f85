package processors

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
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
	// inNext is the next input offset per topic processed in the open
	// transaction.
	inNext map[string]int64

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
	t.r.stateMetrics.Add(t.label, db)
	return nil
}

// discard drops the pending batch: the transaction aborted, and the
// consumer rewinds to the last committed offsets.
func (t *task) discard() {
	t.batch.Close()
	t.resetPending()
}

func (t *task) resetPending() {
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
			t.r.produce(ctx, rec, func(r *kgo.Record) {
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
func (t *task) applyCommitted() error {
	for topic, off := range t.inNext {
		if err := t.batch.SetOffset(inOffsetName(topic), off); err != nil {
			return err
		}
	}
	t.mu.Lock()
	for store, off := range t.clEnd {
		if err := t.batch.SetOffset(changelogOffsetName(store), off); err != nil {
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

// close releases the task. A pending batch is dropped: if its transaction
// committed after all, the changelog has its writes and the next restore
// of this partition reads them back.
func (t *task) close() error {
	t.r.stateMetrics.Remove(t.label)
	t.batch.Close()
	return t.db.Close()
}

// restore brings the local store up to the changelog's committed end,
// reading only the tail the local store lacks.
func (t *task) restore(ctx context.Context) error {
	if len(t.r.spec.Stores) == 0 {
		t.restored = true
		return nil
	}
	adm := kadm.NewClient(t.r.admin)
	topics := make([]string, 0, len(t.r.spec.Stores))
	for _, s := range t.r.spec.Stores {
		topics = append(topics, t.r.changelogs[s])
	}
	starts, err := adm.ListStartOffsets(ctx, topics...)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return fmt.Errorf("processors: %s: listing changelog start offsets: %w", t.label, err)
	}
	// The committed end: the last stable offset, which read_committed
	// consumers can reach.
	ends, err := adm.ListCommittedOffsets(ctx, topics...)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return fmt.Errorf("processors: %s: listing changelog end offsets: %w", t.label, err)
	}
	from := map[string]int64{}
	wipe := false
	for _, s := range t.r.spec.Stores {
		topic := t.r.changelogs[s]
		start, _ := starts.Lookup(topic, t.partition)
		end, _ := ends.Lookup(topic, t.partition)
		local, ok, err := t.db.Offset(changelogOffsetName(s))
		if err != nil {
			return fmt.Errorf("processors: %s: %w", t.label, err)
		}
		switch {
		case !ok:
			local = 0
		case local > end.Offset:
			// The changelog is behind the local store: it was
			// recreated or truncated. The local store cannot be trusted.
			t.r.log.Warn("local state is ahead of its changelog; rebuilding it", "task", t.label, "store", s, "local", local, "changelog_end", end.Offset)
			wipe = true
		case local < start.Offset:
			// Records the local store lacks were compacted or deleted
			// away (tombstones among them): only a full restore is safe.
			t.r.log.Warn("local state is older than its changelog's start; rebuilding it", "task", t.label, "store", s, "local", local, "changelog_start", start.Offset)
			wipe = true
		}
		from[s] = local
	}
	if wipe {
		if err := t.db.Close(); err != nil {
			return err
		}
		t.r.stateMetrics.Remove(t.label)
		if err := state.Destroy(t.r.cfg.FS, t.dir); err != nil {
			return fmt.Errorf("processors: %s: wiping state: %w", t.label, err)
		}
		if err := t.open(); err != nil {
			return err
		}
		for s := range from {
			from[s] = 0
		}
	}
	for _, s := range t.r.spec.Stores {
		topic := t.r.changelogs[s]
		end, _ := ends.Lookup(topic, t.partition)
		// The local offset is one past the last changelog record this
		// store applied; the commit marker of that record's transaction
		// follows it. Every changelog write is transactional, so a tail of
		// one offset is that marker alone, and there is nothing to read.
		if from[s] >= end.Offset-1 && !(from[s] == 0 && end.Offset == 1) {
			continue
		}
		if err := t.restoreStore(ctx, s, topic, from[s], end.Offset); err != nil {
			return err
		}
	}
	t.restored = true
	return nil
}

func (t *task) restoreStore(ctx context.Context, store, topic string, from, end int64) error {
	begin := time.Now()
	t.r.log.Info("restoring state from changelog", "task", t.label, "store", store, "from", from, "to", end, "records_max", end-from)
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(t.r.cfg.Brokers...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {t.partition: kgo.NewOffset().At(from)}}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// Control records (transaction markers) are returned so the
		// position can reach the end offset, which is one past the
		// last transaction's commit marker.
		kgo.KeepControlRecords(),
		kgo.FetchMaxBytes(64<<20),
	)
	if err != nil {
		return err
	}
	defer cl.Close()
	rs, err := t.db.NewRestorer(store)
	if err != nil {
		return err
	}
	defer rs.Close()
	pos, n := from, int64(0)
	lastLog := time.Now()
	for pos < end {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return err
		}
		var ferr error
		fs.EachError(func(_ string, _ int32, err error) { ferr = errors.Join(ferr, err) })
		if ferr != nil {
			return fmt.Errorf("processors: %s: reading changelog %s: %w", t.label, topic, ferr)
		}
		var werr error
		fs.EachRecord(func(r *kgo.Record) {
			if werr != nil || r.Offset >= end {
				return
			}
			pos = r.Offset + 1
			if r.Attrs.IsControl() {
				return
			}
			n++
			if r.Value == nil {
				werr = rs.Delete(r.Key)
			} else {
				werr = rs.Put(r.Key, r.Value)
			}
		})
		if werr != nil {
			return fmt.Errorf("processors: %s: restoring: %w", t.label, werr)
		}
		if time.Since(lastLog) > 2*time.Second {
			t.r.log.Info("restoring", "task", t.label, "store", store, "offset", pos, "end", end, "done_pct", 100*(pos-from)/max(1, end-from))
			lastLog = time.Now()
		}
	}
	if err := rs.Finish(changelogOffsetName(store), end); err != nil {
		return fmt.Errorf("processors: %s: finishing restore: %w", t.label, err)
	}
	t.r.metrics.restoredRecords.Add(float64(n))
	t.r.log.Info("restored state from changelog", "task", t.label, "store", store, "records", n, "took", time.Since(begin).Round(time.Millisecond))
	return nil
}
