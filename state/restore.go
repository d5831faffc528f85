package state

import (
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// restoreBatchBytes is the size at which a Restorer commits its buffered
// writes. Large enough to amortise the commit pipeline, small enough to stay
// under Pebble's large-batch threshold (half a memtable), above which a
// batch is turned into its own flushable and forces an early flush.
const restoreBatchBytes = 4 << 20

// Restorer writes a store's changelog tail into the DB at bulk speed. It
// buffers raw key/values in plain (non-indexed) batches, commits each full
// batch without fsync (pebble.NoSync), and makes everything durable with a
// single synced commit in Finish, which also records the changelog offset.
//
// Why skipping the per-batch fsync is safe: Pebble's WAL is one append-only
// log replayed in order, and a synced write makes every earlier write in it
// durable too. A crash before Finish therefore recovers a prefix of the
// restored batches (possibly none) together with the changelog offset as it
// was before the restore began, which is at or below the data present. The
// next restore reads the changelog from that offset again and re-applies
// records that may already be present; that is idempotent because changelog
// records are full values or tombstones applied in changelog order, so
// applying a record twice leaves the same final state. What can never
// happen is the reverse (an offset pointing past data that is missing),
// because the offset is written only in the last, synced batch.
//
// Restore must not run concurrently with processing on the same stores
// (the runtime restores before it starts the task). A Restorer is not safe
// for concurrent use; the caller must Finish or Close it.
type Restorer struct {
	db     *DB
	store  string
	b      *pebble.Batch
	key    []byte
	n      int64
	closed bool
}

// NewRestorer returns a Restorer writing into store.
func (db *DB) NewRestorer(store string) (*Restorer, error) {
	if err := validStoreName(store); err != nil {
		return nil, err
	}
	if err := db.rlock(); err != nil {
		return nil, err
	}
	defer db.mu.RUnlock()
	if db.readOnly {
		return nil, fmt.Errorf("%w: restore", ErrReadOnly)
	}
	return &Restorer{
		db:    db,
		store: store,
		b:     db.pdb.NewBatchWithSize(restoreBatchBytes + restoreBatchBytes/8),
	}, nil
}

// Put writes key=value (a changelog record). key and value are copied.
func (r *Restorer) Put(key, value []byte) error {
	if r.closed {
		return ErrClosed
	}
	r.key = appendStoreKey(r.key[:0], r.store, key)
	if err := r.b.Set(r.key, value, nil); err != nil {
		return wrapErr("restore put", err)
	}
	return r.record()
}

// Delete deletes key (a changelog tombstone). key is copied.
func (r *Restorer) Delete(key []byte) error {
	if r.closed {
		return ErrClosed
	}
	r.key = appendStoreKey(r.key[:0], r.store, key)
	if err := r.b.Delete(r.key, nil); err != nil {
		return wrapErr("restore delete", err)
	}
	return r.record()
}

// Records returns the number of Puts and Deletes so far.
func (r *Restorer) Records() int64 { return r.n }

func (r *Restorer) record() error {
	r.n++
	if r.b.Len() < restoreBatchBytes {
		return nil
	}
	return r.commit(pebble.NoSync)
}

// commit applies the buffered batch and empties it.
func (r *Restorer) commit(o *pebble.WriteOptions) error {
	if err := r.db.rlock(); err != nil {
		return err
	}
	defer r.db.mu.RUnlock()
	if err := r.db.pdb.Apply(r.b, o); err != nil {
		return wrapErr("restore commit", err)
	}
	// The committed state changed under the value cache.
	r.db.values.reset()
	r.b.Reset()
	return nil
}

// Checkpoint records offset under offsetName (as Finish does) and commits
// everything buffered so far with it, syncing the WAL, and stays open: a
// restore interrupted after Checkpoint resumes from offset instead of from
// its beginning. offset must be one past the last changelog record put or
// deleted so far, so that the stored offset never points past the data.
func (r *Restorer) Checkpoint(offsetName string, offset int64) error {
	if r.closed {
		return ErrClosed
	}
	if err := validMetaName(offsetName); err != nil {
		return err
	}
	r.key = appendMetaKey(r.key[:0], offsetName)
	if err := r.b.Set(r.key, encodeOffset(offset), nil); err != nil {
		return wrapErr("restore checkpoint", err)
	}
	return r.commit(pebble.Sync)
}

// SetOffset buffers offset under offsetName, written with the next commit
// (a checkpoint or Finish): for metadata that must land with the records,
// such as the time the store last matched its changelog.
func (r *Restorer) SetOffset(offsetName string, offset int64) error {
	if r.closed {
		return ErrClosed
	}
	if err := validMetaName(offsetName); err != nil {
		return err
	}
	r.key = appendMetaKey(r.key[:0], offsetName)
	return wrapErr("restore set offset", r.b.Set(r.key, encodeOffset(offset), nil))
}

// Finish records offset under offsetName (e.g. "changelog/subjects", read
// back with DB.Offset) and commits it with the remaining records, syncing
// the WAL: when Finish returns nil, all records and the offset are durable.
// The Restorer is closed afterwards, whatever the outcome.
func (r *Restorer) Finish(offsetName string, offset int64) error {
	if r.closed {
		return ErrClosed
	}
	defer r.Close()
	if err := validMetaName(offsetName); err != nil {
		return err
	}
	r.key = appendMetaKey(r.key[:0], offsetName)
	if err := r.b.Set(r.key, encodeOffset(offset), nil); err != nil {
		return wrapErr("restore finish", err)
	}
	return r.commit(pebble.Sync)
}

// Close releases the Restorer, discarding records not yet committed (they
// were never promised durable; see the type documentation). Closing a
// closed or finished Restorer does nothing.
func (r *Restorer) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	return wrapErr("restore close", r.b.Close())
}
