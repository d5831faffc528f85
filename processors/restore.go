package processors

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/factory2/factory2/state"
)

// restoreCheckpointEvery is how often a restore makes its progress durable,
// so that a restore interrupted by a revocation, a crash or a broker fault
// resumes where it stopped instead of from its beginning.
const restoreCheckpointEvery = 2 * time.Second

// syncedAtName names the metadata under which a task's DB keeps, per store,
// the time (Unix milliseconds) at which the store last matched its
// changelog up to its stored changelog offset.
func syncedAtName(store string) string { return "synced/" + store }

// quarantined is a changelog value a restore refused (see StateValidator).
// The key was deleted locally; the deletion reaches the changelog, and the
// value the dead-letter topic, in the task's next committed transaction.
type quarantined struct {
	store  string
	key    []byte
	value  []byte
	offset int64
	reason string
}

// restore brings the local stores up to the changelogs' committed ends,
// reading only the tail a store lacks, and wipes a store first when its
// tail cannot be trusted. The caller must not hold the runner's lock: a
// restore can take long, and revocation needs that lock (ctx is cancelled
// when the task is revoked meanwhile).
func (t *task) restore(ctx context.Context) error {
	if len(t.r.spec.Stores) == 0 {
		return nil
	}
	asOf := time.Now()
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
		local, why, err := t.restoreFrom(s, start.Offset, end.Offset, asOf)
		if err != nil {
			return err
		}
		if why != "" {
			t.r.log.Warn("rebuilding local state from the whole changelog", "task", t.label, "store", s, "why", why)
			wipe = true
		}
		from[s] = local
	}
	if wipe {
		if err := t.wipe(); err != nil {
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
			if err := t.markSynced(s, asOf); err != nil {
				return err
			}
			continue
		}
		if err := t.restoreStore(ctx, s, topic, from[s], end.Offset, asOf); err != nil {
			return err
		}
	}
	return nil
}

// restoreFrom returns the changelog offset store's restore starts at, or
// why the store must be rebuilt from the whole changelog.
func (t *task) restoreFrom(store string, start, end int64, asOf time.Time) (from int64, wipe string, err error) {
	local, ok, err := t.db.Offset(changelogOffsetName(store))
	if err != nil {
		return 0, "", fmt.Errorf("processors: %s: %w", t.label, err)
	}
	if !ok {
		return 0, "", nil
	}
	switch {
	case local > end:
		// The changelog is behind the local store: it was recreated or
		// truncated. The local store cannot be trusted.
		return 0, fmt.Sprintf("local state (offset %d) is ahead of its changelog (end %d): was the topic recreated?", local, end), nil
	case local < start:
		// Records the local store lacks were deleted away.
		return 0, fmt.Sprintf("local state (offset %d) is older than its changelog's start (%d)", local, start), nil
	case local >= end-1:
		return local, "", nil // nothing new since the store last synced
	}
	// Compaction removes a tombstone once it is older than the topic's
	// delete.retention.ms without moving the log start offset. If the
	// tail this store lacks began longer ago than that, a key deleted in
	// it may have no tombstone left, and reading the tail would keep it.
	synced, ok, err := t.db.Offset(syncedAtName(store))
	if err != nil {
		return 0, "", fmt.Errorf("processors: %s: %w", t.label, err)
	}
	retention := t.r.deleteRetention(t.r.changelogs[store])
	if ok && asOf.Sub(time.UnixMilli(synced)) > retention*9/10 {
		return 0, fmt.Sprintf("local state last matched its changelog %s ago, near or past the changelog's delete.retention.ms (%s): tombstones it lacks may be compacted away",
			asOf.Sub(time.UnixMilli(synced)).Round(time.Second), retention), nil
	}
	return local, "", nil
}

// wipe deletes the task's DB and opens an empty one.
func (t *task) wipe() error {
	if err := t.db.Close(); err != nil {
		return err
	}
	t.r.stateMetrics.Remove(t.label)
	if err := state.Destroy(t.r.cfg.FS, t.dir); err != nil {
		return fmt.Errorf("processors: %s: wiping state: %w", t.label, err)
	}
	return t.open()
}

// markSynced records that store matches its changelog as of asOf.
func (t *task) markSynced(store string, asOf time.Time) error {
	b := t.db.NewBatch()
	defer b.Close()
	if err := b.SetOffset(syncedAtName(store), asOf.UnixMilli()); err != nil {
		return err
	}
	return t.db.CommitNoSync(b)
}

func (t *task) restoreStore(ctx context.Context, store, topic string, from, end int64, asOf time.Time) error {
	begin := time.Now()
	t.r.log.Info("restoring state from changelog", "task", t.label, "store", store, "from", from, "to", end, "records_max", end-from)
	// left is what this restore adds to restore_remaining_records.
	left := max(0, end-from)
	t.r.metrics.restoreRemaining.Add(float64(left))
	defer func() { t.r.metrics.restoreRemaining.Sub(float64(left)) }()
	t.r.metrics.restoring.Inc()
	defer t.r.metrics.restoring.Dec()
	cl, err := NewClient(t.r.cfg.Brokers, t.r.cfg.ClientOpts,
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {t.partition: kgo.NewOffset().At(from)}}),
		// Only committed changelog data: an aborted transaction's
		// records never reach the store.
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
	validator, _ := t.proc.(StateValidator)
	pos, n, lastTS := from, int64(0), int64(0)
	lastCheckpoint := time.Now()
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
			lastTS = r.Timestamp.UnixMilli()
			if r.Value == nil {
				werr = rs.Delete(r.Key)
				return
			}
			if validator != nil {
				if verr := validator.ValidateState(store, r.Key, r.Value); verr != nil {
					t.quarantine(store, r, verr)
					werr = rs.Delete(r.Key)
					return
				}
			}
			werr = rs.Put(r.Key, r.Value)
		})
		if werr != nil {
			return fmt.Errorf("processors: %s: restoring: %w", t.label, werr)
		}
		t.r.beat()
		if now := max(0, end-pos); now < left {
			t.r.metrics.restoreRemaining.Sub(float64(left - now))
			left = now
		}
		if time.Since(lastCheckpoint) >= restoreCheckpointEvery && pos < end {
			// The store now matches the changelog up to pos, as it
			// was when its last record was written: that is the time
			// the tail after pos began, for the tombstone check.
			if err := rs.SetOffset(syncedAtName(store), lastTS); err != nil {
				return err
			}
			if err := rs.Checkpoint(changelogOffsetName(store), pos); err != nil {
				return fmt.Errorf("processors: %s: checkpointing restore: %w", t.label, err)
			}
			t.r.log.Info("restoring", "task", t.label, "store", store, "offset", pos, "end", end, "done_pct", 100*(pos-from)/max(1, end-from))
			lastCheckpoint = time.Now()
		}
	}
	if err := rs.SetOffset(syncedAtName(store), asOf.UnixMilli()); err != nil {
		return err
	}
	if err := rs.Finish(changelogOffsetName(store), end); err != nil {
		return fmt.Errorf("processors: %s: finishing restore: %w", t.label, err)
	}
	t.r.metrics.restoredRecords.Add(float64(n))
	t.r.log.Info("restored state from changelog", "task", t.label, "store", store, "records", n, "took", time.Since(begin).Round(time.Millisecond))
	return nil
}

// quarantine records that the changelog value of rec failed validation.
func (t *task) quarantine(store string, rec *kgo.Record, err error) {
	t.r.metrics.quarantined.Inc()
	t.r.log.Warn("quarantining a changelog value the processor cannot use; its key is reset",
		"task", t.label, "store", store, "offset", rec.Offset, "bytes", len(rec.Value), "reason", err)
	t.quarantined = append(t.quarantined, quarantined{
		store: store, key: append([]byte(nil), rec.Key...), value: append([]byte(nil), rec.Value...),
		offset: rec.Offset, reason: err.Error(),
	})
}
