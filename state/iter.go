package state

import (
	"github.com/cockroachdb/pebble/v2"
)

// Iter iterates over the keys of one store in ascending order, within the
// bounds given to NewIter. Keys are returned without the store prefix.
//
// Usage:
//
//	it, err := db.NewIter("subjects", nil, nil)
//	if err != nil { ... }
//	for ok := it.First(); ok; ok = it.Next() {
//		use(it.Key(), it.Value())
//	}
//	if err := it.Close(); err != nil { ... } // I/O or corruption error
//
// The end of iteration (positioning methods returning false) is not proof
// that all data was seen: an I/O error or a corrupt block also stops the
// iterator. Error, and Close, report such an error; a loop must check one of
// them. Scan does this for you.
//
// An Iter is not safe for concurrent use. It must be closed by its owner;
// closing the DB, or committing, resetting or closing the Batch it was
// created from, closes it forcibly, after which it is invalid and Error and
// Close return ErrClosed.
type Iter struct {
	db    *DB
	batch *Batch // nil for DB iterators
	it    *pebble.Iterator
	// view is the indexed Pebble batch a Batch's iterator reads its
	// writes from (nil for DB iterators); it is released with the Iter.
	view      *pebble.Batch
	store     string
	prefixLen int
	seekBuf   []byte

	// Current position, captured while the DB lock is held so that Key,
	// Value and Valid need no locking.
	key, value []byte
	valid      bool

	// err is a sticky error: a value that failed to load, or ErrClosed
	// after a forced close.
	err    error
	closed bool
}

// First moves to the first key in bounds and reports whether there is one.
func (i *Iter) First() bool {
	if !i.lock() {
		return false
	}
	defer i.db.mu.RUnlock()
	return i.settle(i.it.First())
}

// Next moves to the next key and reports whether there is one.
func (i *Iter) Next() bool {
	if !i.lock() {
		return false
	}
	defer i.db.mu.RUnlock()
	return i.settle(i.it.Next())
}

// SeekGE moves to the first key >= key (clamped to the iterator's bounds)
// and reports whether there is one. key is not retained.
func (i *Iter) SeekGE(key []byte) bool {
	if !i.lock() {
		return false
	}
	defer i.db.mu.RUnlock()
	i.seekBuf = appendStoreKey(i.seekBuf[:0], i.store, key)
	return i.settle(i.it.SeekGE(i.seekBuf))
}

// Valid reports whether the iterator is positioned at a key.
func (i *Iter) Valid() bool {
	i.db.mu.RLock()
	defer i.db.mu.RUnlock()
	return i.valid && !i.closed
}

// Key returns the current key, without the store prefix. The slice is owned
// by the iterator (it may alias Pebble's block cache) and valid only until
// the next positioning call or the Iter's Close, whether by its owner or
// forced by closing its DB or Batch; copy it to keep it. Nil if the last
// positioning call returned false.
func (i *Iter) Key() []byte { return i.key }

// Value returns the current value. Ownership as for Key. Nil if !Valid().
// Values are loaded when the iterator is positioned, so a value that cannot
// be read makes the positioning call return false and Error report why.
func (i *Iter) Value() []byte { return i.value }

// Error returns the error that stopped the iterator, if any: an I/O error,
// a *CorruptionError, or ErrClosed after a forced close (or any call after
// Close).
func (i *Iter) Error() error {
	i.db.mu.RLock()
	defer i.db.mu.RUnlock()
	if i.err != nil {
		return i.err
	}
	if i.closed {
		return ErrClosed
	}
	return wrapErr("iterate", i.it.Error())
}

// Close releases the iterator and returns the error that stopped it, if any
// (as Error). Closing an iterator that was closed forcibly returns
// ErrClosed; closing it again after that, or after a normal Close, returns
// nil.
func (i *Iter) Close() error {
	i.db.mu.RLock()
	defer i.db.mu.RUnlock()
	if i.batch != nil {
		delete(i.batch.iters, i)
	}
	if i.closed {
		err := i.err
		i.err = nil
		return err
	}
	err := i.release()
	if i.err != nil {
		err = i.err
	}
	i.err = nil
	return err
}

// lock read-locks the DB for a positioning call. It returns false (lock
// not held) if the iterator cannot move.
func (i *Iter) lock() bool {
	i.db.mu.RLock()
	if i.closed || i.err != nil {
		i.db.mu.RUnlock()
		i.clearPosition()
		return false
	}
	return true
}

// settle captures the position after a Pebble positioning call. Requires
// db.mu read-locked.
func (i *Iter) settle(ok bool) bool {
	if !ok {
		i.clearPosition()
		return false
	}
	// ValueAndErr, not the deprecated Value, which drops the error of a
	// value that fails to load.
	v, err := i.it.ValueAndErr()
	if err != nil {
		i.clearPosition()
		i.err = wrapErr("iterate", err)
		return false
	}
	i.key, i.value, i.valid = i.it.Key()[i.prefixLen:], v, true
	return true
}

func (i *Iter) clearPosition() {
	i.key, i.value, i.valid = nil, nil, false
}

// release closes the Pebble iterator and unregisters it from the DB; the
// caller unregisters it from its batch. Requires db.mu read-locked.
func (i *Iter) release() error {
	i.closed = true
	i.clearPosition()
	i.db.untrack(i)
	err := wrapErr("iterate", i.it.Close())
	i.releaseView()
	return err
}

// releaseView releases the Pebble batch of a Batch's iterator.
func (i *Iter) releaseView() {
	if i.view != nil {
		_ = i.view.Close() // it only recycles the batch
		i.view = nil
	}
}

// forceClose closes the iterator on behalf of its DB or Batch. Requires
// db.mu held; the caller unregisters it. It leaves the position fields
// alone: DB.Close may run concurrently with the owner reading them, and
// after a forced close the owner learns from Valid, Error or the next
// positioning call that the iterator is gone.
func (i *Iter) forceClose() {
	if i.closed {
		return
	}
	i.closed = true
	_ = i.it.Close() // the owner is told ErrClosed instead
	i.releaseView()
	i.err = ErrClosed
}
