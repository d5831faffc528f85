package state

import (
	"github.com/cockroachdb/pebble/v2"
)

type batchState uint8

const (
	batchOpen batchState = iota
	batchCommitted
	batchClosed
)

// Batch accumulates the writes of one Kafka transaction: store writes and
// the offsets they correspond to. It is indexed, so its reads see its own
// writes layered over the committed state of the DB (read-your-writes),
// while nobody else sees them until DB.Commit applies the whole batch
// atomically. Discarding it (Close, or Reset) is an abort.
//
// Lifecycle: open -> Commit -> committed; Reset returns a committed or open
// batch to empty and open (reusing its memory); Close releases it for good.
// A committed batch returns ErrCommitted from everything but Reset and
// Close; a closed one returns ErrClosed.
//
// A Batch is not safe for concurrent use. Keys and values passed to it are
// copied; slices it returns are owned by the caller (Get) or documented on
// Iter.
type Batch struct {
	db    *DB
	b     *pebble.Batch // nil if created on a closed DB
	state batchState
	key   []byte // scratch for building Pebble keys; Pebble copies them
	iters map[*Iter]struct{}
}

// usable reports whether the batch may be read or written.
func (b *Batch) usable() error {
	switch b.state {
	case batchCommitted:
		return ErrCommitted
	case batchClosed:
		return ErrClosed
	}
	return nil
}

// Get returns a copy of the value of key in store as this batch sees it:
// its own latest write to key if any (ErrNotFound if that is a Delete),
// otherwise the committed value, otherwise ErrNotFound. The copy belongs to
// the caller.
func (b *Batch) Get(store string, key []byte) ([]byte, error) {
	if err := b.usable(); err != nil {
		return nil, err
	}
	if err := validStoreName(store); err != nil {
		return nil, err
	}
	if err := b.db.rlock(); err != nil {
		return nil, err
	}
	defer b.db.mu.RUnlock()
	b.key = appendStoreKey(b.key[:0], store, key)
	return getCopy("batch get", b.b.Get, b.key)
}

// Set records that key in store has value. key and value are copied.
func (b *Batch) Set(store string, key, value []byte) error {
	if err := b.usable(); err != nil {
		return err
	}
	if err := validStoreName(store); err != nil {
		return err
	}
	b.key = appendStoreKey(b.key[:0], store, key)
	return wrapErr("batch set", b.b.Set(b.key, value, nil))
}

// Delete records that key in store has no value. key is copied. Deleting
// an absent key is not an error.
func (b *Batch) Delete(store string, key []byte) error {
	if err := b.usable(); err != nil {
		return err
	}
	if err := validStoreName(store); err != nil {
		return err
	}
	b.key = appendStoreKey(b.key[:0], store, key)
	return wrapErr("batch delete", b.b.Delete(b.key, nil))
}

// SetMeta records metadata value under name (for example a consumer
// position the runtime tracks). value is copied.
func (b *Batch) SetMeta(name string, value []byte) error {
	if err := b.usable(); err != nil {
		return err
	}
	if err := validMetaName(name); err != nil {
		return err
	}
	b.key = appendMetaKey(b.key[:0], name)
	return wrapErr("batch set meta", b.b.Set(b.key, value, nil))
}

// SetOffset records offset off under name, e.g. the next input offset
// "in/<topic>/<partition>" or the applied changelog offset
// "changelog/<store>". It becomes durable together with the rest of the
// batch, which is what makes state and offsets agree after a crash. Read it
// back with DB.Offset.
func (b *Batch) SetOffset(name string, off int64) error {
	return b.SetMeta(name, encodeOffset(off))
}

// NewIter returns an iterator over store in [lower, upper) (nil = store
// start/end) that merges this batch's writes over the committed state. The
// iterator sees the batch as it was when NewIter was called, not later
// writes. It is closed forcibly when the batch is committed, reset or
// closed. lower and upper are not retained.
func (b *Batch) NewIter(store string, lower, upper []byte) (*Iter, error) {
	if err := b.usable(); err != nil {
		return nil, err
	}
	if err := validStoreName(store); err != nil {
		return nil, err
	}
	lo, hi := iterBounds(store, lower, upper)
	if err := b.db.rlock(); err != nil {
		return nil, err
	}
	defer b.db.mu.RUnlock()
	pit, err := b.b.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return nil, wrapErr("batch new iterator", err)
	}
	it := b.db.track(pit, store, b)
	b.iters[it] = struct{}{}
	return it, nil
}

// Scan is DB.Scan over this batch's merged view (see NewIter).
func (b *Batch) Scan(store string, lower, upper []byte, fn func(k, v []byte) error) error {
	it, err := b.NewIter(store, lower, upper)
	if err != nil {
		return err
	}
	return scan(it, fn)
}

// Len returns the size in bytes of the batch's encoded writes (a proxy for
// its memory use and WAL record size). Zero if closed.
func (b *Batch) Len() int {
	if b.state == batchClosed {
		return 0
	}
	return b.b.Len()
}

// Count returns the number of writes (Set, Delete, SetMeta, SetOffset) in
// the batch. Writes to the same key are counted separately. Zero if closed.
func (b *Batch) Count() int {
	if b.state == batchClosed {
		return 0
	}
	return int(b.b.Count())
}

// Empty reports whether the batch holds no writes.
func (b *Batch) Empty() bool {
	return b.state == batchClosed || b.b.Empty()
}

// Reset discards the batch's writes (an abort if it was not committed) and
// makes it open and empty again, keeping its memory for reuse. Iters on the
// batch are closed. Reset on a closed batch does nothing.
func (b *Batch) Reset() {
	if b.state == batchClosed {
		return
	}
	b.closeIters()
	b.b.Reset()
	b.state = batchOpen
}

// Close releases the batch, discarding any uncommitted writes, and closes
// its Iters. Further calls to Close do nothing and return nil.
func (b *Batch) Close() error {
	if b.state == batchClosed {
		return nil
	}
	b.closeIters()
	b.state = batchClosed
	// Pebble's Batch.Close only recycles the batch; it does not touch the
	// DB, so it is safe even if the DB has been closed.
	return wrapErr("batch close", b.b.Close())
}

// closeIters force-closes the batch's iterators.
func (b *Batch) closeIters() {
	if len(b.iters) == 0 {
		return
	}
	b.db.mu.RLock()
	defer b.db.mu.RUnlock()
	b.closeItersLocked()
}

// closeItersLocked is closeIters with db.mu already read-locked (RWMutex
// read locks must not be taken recursively: a waiting Close would
// deadlock them).
func (b *Batch) closeItersLocked() {
	for it := range b.iters {
		if !it.closed {
			it.forceClose()
			b.db.untrack(it)
		}
	}
	clear(b.iters)
}
