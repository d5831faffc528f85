package state

import (
	"slices"
	"strings"

	"github.com/cockroachdb/pebble/v2"
)

type batchState uint8

const (
	batchOpen batchState = iota
	batchCommitted
	batchClosed
)

// Batch accumulates the writes of one Kafka transaction: store writes and
// the offsets they correspond to. Its reads see its own writes layered
// over the committed state of the DB (read-your-writes), while nobody else
// sees them until DB.Commit applies the whole batch atomically.
// Discarding it (Close, or Reset) is an abort.
//
// A Batch keeps only the last write of each key, in a hash map: reading a
// key the transaction wrote costs a map lookup, and writing a key again
// overwrites the previous value in place. Reads of other keys go to the
// DB's committed-value cache, then to Pebble. Commit builds one Pebble
// batch of the last values, so a key written a thousand times in a
// transaction is applied once.
//
// Lifecycle: open -> Commit -> committed; Reset returns a committed or open
// batch to empty and open (reusing its memory); Close releases it for good.
// A committed batch returns ErrCommitted from everything but Reset and
// Close; a closed one returns ErrClosed.
//
// A Batch is not safe for concurrent use. Keys and values passed to it are
// copied; slices it returns are owned by the caller (Get), documented on
// Iter, or documented on Changes.
type Batch struct {
	db    *DB
	state batchState
	// idx maps a written Pebble key (store or metadata key) to its write.
	idx    map[string]int32
	writes []write
	size   int
	// shared is set once Changes handed out values: from then on a
	// write replaces a value instead of overwriting it in place.
	shared bool
	key    []byte // scratch for building Pebble keys
	// store is the last store name validated.
	store string
	iters map[*Iter]struct{}
}

// write is the last write of one key in a Batch.
type write struct {
	key     string // the full Pebble key
	value   []byte // non-nil unless deleted
	deleted bool
}

// usable reports whether the batch may be read or written.
func (b *Batch) usable() error {
	switch {
	case b.state == batchCommitted:
		return ErrCommitted
	case b.state == batchClosed, b.db.closed.Load():
		return ErrClosed
	}
	return nil
}

// storeKey validates store (once per change of store name) and builds
// the Pebble key of (store, key) in b.key.
func (b *Batch) storeKey(store string, key []byte) error {
	if store != b.store || b.store == "" {
		if err := validStoreName(store); err != nil {
			return err
		}
		b.store = store
	}
	b.key = appendStoreKey(b.key[:0], store, key)
	return nil
}

// Get returns a copy of the value of key in store as this batch sees it:
// its own latest write to key if any (ErrNotFound if that is a Delete),
// otherwise the committed value, otherwise ErrNotFound. The copy belongs to
// the caller.
func (b *Batch) Get(store string, key []byte) ([]byte, error) {
	var out []byte
	if err := b.Read(store, key, func(v []byte) { out = clone(v) }); err != nil {
		return nil, err
	}
	return out, nil
}

// Read is Get without the copy: it calls fn with the value, which is
// valid only during the call and must not be modified, or returns
// ErrNotFound without calling fn. fn must not use the batch or its DB. A
// caller that converts the value (decodes it, makes a string of it) saves
// the copy Get makes.
func (b *Batch) Read(store string, key []byte, fn func(v []byte)) error {
	if err := b.usable(); err != nil {
		return err
	}
	if err := b.storeKey(store, key); err != nil {
		return err
	}
	if i, ok := b.idx[string(b.key)]; ok {
		w := &b.writes[i]
		if w.deleted {
			return ErrNotFound
		}
		fn(w.value)
		return nil
	}
	return b.db.readCommitted("batch get", b.key, fn)
}

// Set records that key in store has value. key and value are copied.
func (b *Batch) Set(store string, key, value []byte) error {
	if err := b.usable(); err != nil {
		return err
	}
	if err := b.storeKey(store, key); err != nil {
		return err
	}
	b.set(value, false)
	return nil
}

// Delete records that key in store has no value. key is copied. Deleting
// an absent key is not an error.
func (b *Batch) Delete(store string, key []byte) error {
	if err := b.usable(); err != nil {
		return err
	}
	if err := b.storeKey(store, key); err != nil {
		return err
	}
	b.set(nil, true)
	return nil
}

// set records the write of the key in b.key.
func (b *Batch) set(value []byte, deleted bool) {
	i, ok := b.idx[string(b.key)]
	if !ok {
		w := write{key: string(b.key), deleted: deleted}
		if !deleted {
			w.value = clone(value)
		}
		b.idx[w.key] = int32(len(b.writes))
		b.writes = append(b.writes, w)
		b.size += len(w.key) + len(w.value)
		return
	}
	w := &b.writes[i]
	b.size -= len(w.value)
	switch {
	case deleted:
		w.value = nil
	case w.value != nil && cap(w.value) >= len(value) && !b.shared:
		// Nobody else holds w.value: Get hands out copies.
		w.value = append(w.value[:0], value...)
	default:
		w.value = clone(value)
	}
	w.deleted = deleted
	b.size += len(w.value)
}

// clone copies v into a new non-nil slice (an empty value is not a
// deletion).
func clone(v []byte) []byte {
	out := make([]byte, len(v))
	copy(out, v)
	return out
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
	b.set(value, false)
	return nil
}

// SetOffset records offset off under name, e.g. the next input offset
// "in/<topic>/<partition>" or the applied changelog offset
// "changelog/<store>". It becomes durable together with the rest of the
// batch, which is what makes state and offsets agree after a crash. Read it
// back with DB.Offset.
func (b *Batch) SetOffset(name string, off int64) error {
	return b.SetMeta(name, encodeOffset(off))
}

// Changes calls fn with the last write of every key of store in the
// batch, in key order: its value, or nil for a Delete (a Set of an empty
// value gives a non-nil empty slice). key is a copy fn may keep; value is
// shared with the batch and must not be modified, but stays valid after
// the batch is committed, reset or closed (a later write to the key
// replaces it rather than overwriting it).
func (b *Batch) Changes(store string, fn func(key, value []byte)) error {
	if err := b.usable(); err != nil {
		return err
	}
	if err := validStoreName(store); err != nil {
		return err
	}
	prefix := string(appendStorePrefix(b.key[:0], store))
	var ws []*write
	for i := range b.writes {
		if strings.HasPrefix(b.writes[i].key, prefix) {
			ws = append(ws, &b.writes[i])
		}
	}
	slices.SortFunc(ws, func(x, y *write) int { return strings.Compare(x.key, y.key) })
	b.shared = true
	for _, w := range ws {
		fn([]byte(w.key[len(prefix):]), w.value)
	}
	return nil
}

// NewIter returns an iterator over store in [lower, upper) (nil = store
// start/end) that merges this batch's writes over the committed state. The
// iterator sees the batch as it was when NewIter was called, not later
// writes. It is closed forcibly when the batch is committed, reset or
// closed. lower and upper are not retained.
//
// It costs a copy of the batch's writes within the bounds into an indexed
// Pebble batch, whose iterator does the merge: iterating is rare on the
// processing path, point reads are not.
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
	view := b.db.pdb.NewIndexedBatch()
	for i := range b.writes {
		w := &b.writes[i]
		if w.key < string(lo) || w.key >= string(hi) {
			continue
		}
		var err error
		if w.deleted {
			err = view.Delete([]byte(w.key), nil)
		} else {
			err = view.Set([]byte(w.key), w.value, nil)
		}
		if err != nil {
			_ = view.Close()
			return nil, wrapErr("batch new iterator", err)
		}
	}
	pit, err := view.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		_ = view.Close()
		return nil, wrapErr("batch new iterator", err)
	}
	it := b.db.track(pit, store, b)
	it.view = view
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

// Len returns the size in bytes of the keys and values the batch will
// write (a proxy for its memory use and WAL record size). Zero if closed.
func (b *Batch) Len() int {
	if b.state == batchClosed {
		return 0
	}
	return b.size
}

// Count returns the number of keys (store keys and metadata names) the
// batch writes. Writes to the same key count once: the batch keeps only
// the last. Zero if closed.
func (b *Batch) Count() int {
	if b.state == batchClosed {
		return 0
	}
	return len(b.writes)
}

// Empty reports whether the batch holds no writes.
func (b *Batch) Empty() bool {
	return b.state == batchClosed || len(b.writes) == 0
}

// Reset discards the batch's writes (an abort if it was not committed) and
// makes it open and empty again, keeping its memory for reuse. Iters on the
// batch are closed. Reset on a closed batch does nothing.
func (b *Batch) Reset() {
	if b.state == batchClosed {
		return
	}
	b.closeIters()
	b.clear()
	b.state = batchOpen
}

// clear forgets the writes. The values are dropped, never reused: after
// a commit they belong to the DB's value cache, and Changes may have
// handed them out.
func (b *Batch) clear() {
	clear(b.idx)
	clear(b.writes)
	b.writes, b.size, b.shared = b.writes[:0], 0, false
}

// Close releases the batch, discarding any uncommitted writes, and closes
// its Iters. Further calls to Close do nothing and return nil.
func (b *Batch) Close() error {
	if b.state == batchClosed {
		return nil
	}
	b.closeIters()
	b.state = batchClosed
	b.idx, b.writes, b.size = nil, nil, 0
	return nil
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
