package state

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// DB is the Pebble database of one task: its named stores plus its metadata
// (consumed offsets, changelog offsets). See the package documentation for
// the model.
//
// All DB methods are safe for concurrent use, including Close: an operation
// that races with Close either completes first or returns ErrClosed. (Slices
// an Iter handed out, including those passed to a Scan callback, alias
// Pebble memory that Close releases, so a DB must not be closed while
// another goroutine still reads them; the runtime closes a task's DB after
// stopping the task.) Batches, Iters and Restorers are not safe for
// concurrent use; each belongs to one goroutine at a time.
type DB struct {
	pdb      *pebble.DB
	cache    *Cache // identity used by Collector to report a shared cache once
	dir      string
	logger   *slog.Logger
	readOnly bool

	// mu is read-locked by every operation that calls into pdb (or into a
	// Pebble iterator or indexed batch derived from it) and write-locked
	// only by Close. Pebble panics when a closed DB is used; this lock turns
	// that into ErrClosed. closed is set under mu and may be read without
	// it by operations that do not touch Pebble (a Batch reading its own
	// writes or the value cache).
	mu     sync.RWMutex
	closed atomic.Bool

	// values caches committed values for point reads (see valueCache).
	values *valueCache

	// itersMu guards iters, the open iterators (of the DB and of its
	// batches), which Close closes before closing Pebble: Pebble may not be
	// closed with iterators open, and their memory (pinned cache blocks) is
	// released with it.
	itersMu sync.Mutex
	iters   map[*Iter]struct{}
}

// Open opens (creating if needed) the task database described by opts. The
// caller owns the DB and must Close it. opts is copied; defaults are applied
// to the copy.
func Open(opts Options) (*DB, error) {
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	dir := filepath.Clean(opts.Dir)
	// A crash in the middle of Destroy can leave the renamed directory
	// behind; it is garbage (the state it held was being thrown away).
	if !opts.ReadOnly {
		if err := removeIfExists(opts.FS, trashDir(dir)); err != nil {
			return nil, fmt.Errorf("state: open %s: remove leftover of an interrupted Destroy: %w", dir, err)
		}
	}
	c := opts.Cache
	if c == nil {
		// Pebble takes its own reference for the lifetime of the DB (via a
		// cache handle), so the private cache lives exactly as long as the DB.
		c = NewCache(DefaultCacheSize)
		defer c.Unref()
	}
	pdb, err := pebble.Open(dir, opts.pebbleOptions(c))
	if err != nil {
		return nil, wrapErr("open "+dir, err)
	}
	return &DB{
		pdb:      pdb,
		cache:    c,
		dir:      dir,
		logger:   opts.Logger,
		readOnly: opts.ReadOnly,
		values:   newValueCache(max(opts.ValueCacheBytes, 0)),
		iters:    make(map[*Iter]struct{}),
	}, nil
}

// Close closes the DB. Iters still open are closed first (their further use
// returns ErrClosed, which the owner sees from Iter.Error or Iter.Close) and
// a warning is logged, since leaking them is a bug. Open Batches and
// Restorers are not committed; their further use returns ErrClosed, and they
// should still be closed by their owners. Nothing written since the last
// Commit or Restorer.Finish is lost, because those synced the WAL. A second
// Close returns ErrClosed.
func (db *DB) Close() error {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.closed.Load() {
		return ErrClosed
	}
	db.closed.Store(true)

	db.itersMu.Lock()
	n := len(db.iters)
	for it := range db.iters {
		it.forceClose()
	}
	db.iters = nil
	db.itersMu.Unlock()
	if n > 0 {
		db.logger.Warn("state: DB closed with open iterators", "dir", db.dir, "iterators", n)
	}
	return wrapErr("close "+db.dir, db.pdb.Close())
}

// Destroy removes the task database in dir on fs (nil means vfs.Default), for
// example when a revoked partition's state must be rebuilt from its
// changelog or an operator wipes local state. It returns nil if dir does not
// exist. The DB must be closed: Destroy takes Pebble's directory lock and
// fails if any process (this one included) holds it.
//
// The directory is first renamed to a hidden sibling and then deleted, so a
// crash part-way leaves either the intact database or no database at dir,
// never a half-deleted one that Pebble would refuse to open (or worse, open
// without some files). The next Destroy or Open of dir removes the leftover.
func Destroy(fs vfs.FS, dir string) error {
	if fs == nil {
		fs = vfs.Default
	}
	if dir == "" {
		return errors.New("state: destroy: empty directory name")
	}
	dir = filepath.Clean(dir)
	trash := trashDir(dir)
	if err := removeIfExists(fs, trash); err != nil {
		return fmt.Errorf("state: destroy %s: %w", dir, err)
	}
	if _, err := fs.Stat(dir); err != nil {
		if errors.Is(err, iofs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("state: destroy %s: %w", dir, err)
	}
	// Pebble's lock file (see pebble.Open); FS.Lock also excludes other
	// holders within this process.
	lock, err := fs.Lock(fs.PathJoin(dir, "LOCK"))
	if err != nil {
		return fmt.Errorf("state: destroy %s: database is in use: %w", dir, err)
	}
	err = fs.Rename(dir, trash)
	err = errors.Join(err, lock.Close())
	if err != nil {
		return fmt.Errorf("state: destroy %s: %w", dir, err)
	}
	if err := syncDir(fs, fs.PathDir(dir)); err != nil {
		return fmt.Errorf("state: destroy %s: %w", dir, err)
	}
	if err := fs.RemoveAll(trash); err != nil {
		return fmt.Errorf("state: destroy %s: %w", dir, err)
	}
	return nil
}

// trashDir is where Destroy moves dir before deleting it.
func trashDir(dir string) string {
	return filepath.Join(filepath.Dir(dir), "."+filepath.Base(dir)+".destroy")
}

func removeIfExists(fs vfs.FS, path string) error {
	if _, err := fs.Stat(path); err != nil {
		if errors.Is(err, iofs.ErrNotExist) {
			return nil
		}
		return err
	}
	return fs.RemoveAll(path)
}

func syncDir(fs vfs.FS, dir string) error {
	d, err := fs.OpenDir(dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}

// rlock read-locks db.mu and reports ErrClosed if the DB is closed, in
// which case the lock is already released. On nil the caller must
// db.mu.RUnlock.
func (db *DB) rlock() error {
	db.mu.RLock()
	if db.closed.Load() {
		db.mu.RUnlock()
		return ErrClosed
	}
	return nil
}

// Get returns a copy of the value of key in store, or ErrNotFound. The copy
// belongs to the caller. (Pebble's Get returns a slice that is only valid
// until the returned io.Closer is closed, and that aliases the block cache
// or memtable; copying is what makes the result safe to keep and to
// modify.) key is not retained.
func (db *DB) Get(store string, key []byte) ([]byte, error) {
	if err := validStoreName(store); err != nil {
		return nil, err
	}
	if db.closed.Load() {
		return nil, ErrClosed
	}
	k := appendStoreKey(make([]byte, 0, 1+len(store)+len(key)), store, key)
	var out []byte
	if err := db.readCommitted("get", k, func(v []byte) { out = clone(v) }); err != nil {
		return nil, err
	}
	return out, nil
}

// readCommitted calls fn with the committed value of the Pebble key k,
// from the value cache, else from Pebble (then caching a copy), or
// returns ErrNotFound. v is valid only during fn, which must not modify
// it nor call into db.
func (db *DB) readCommitted(op string, k []byte, fn func(v []byte)) error {
	v, absent, hit, gen := db.values.get(k)
	if hit {
		if absent {
			return ErrNotFound
		}
		fn(v)
		return nil
	}
	if err := db.rlock(); err != nil {
		return err
	}
	defer db.mu.RUnlock()
	v, closer, err := db.pdb.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		db.values.fill(k, nil, true, gen)
		return ErrNotFound
	}
	if err != nil {
		return wrapErr(op, err)
	}
	// v aliases Pebble's memtable or block cache until closer.Close.
	fn(v)
	db.values.fill(k, v, false, gen)
	return wrapErr(op, closer.Close())
}

// Meta returns a copy of the metadata value name, or ErrNotFound.
func (db *DB) Meta(name string) ([]byte, error) {
	if err := validMetaName(name); err != nil {
		return nil, err
	}
	k := appendMetaKey(make([]byte, 0, 1+len(name)), name)
	if err := db.rlock(); err != nil {
		return nil, err
	}
	defer db.mu.RUnlock()
	return getCopy("meta "+name, db.pdb.Get, k)
}

// Offset returns the offset stored under name by Batch.SetOffset or
// Restorer.Finish. ok is false (and err nil) if none is stored. Offsets and
// Meta values share one namespace; a value under name that is not an
// offset yields a *CorruptionError.
func (db *DB) Offset(name string) (off int64, ok bool, err error) {
	v, err := db.Meta(name)
	if errors.Is(err, ErrNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	off, err = decodeOffset(name, v)
	if err != nil {
		return 0, false, err
	}
	return off, true, nil
}

// getCopy runs a Pebble point read and returns a copy of its value.
func getCopy(op string, get func([]byte) ([]byte, io.Closer, error), k []byte) ([]byte, error) {
	v, closer, err := get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, wrapErr(op, err)
	}
	out := bytes.Clone(v)
	if out == nil {
		out = []byte{}
	}
	if err := closer.Close(); err != nil {
		return nil, wrapErr(op, err)
	}
	return out, nil
}

// NewIter returns an iterator over the user keys of store in [lower, upper),
// reading a consistent snapshot of the committed state as of the call. A nil
// bound means the start (lower) or end (upper) of the store; if lower >=
// upper the range is empty. lower and upper are not retained. The caller
// must Close the Iter.
func (db *DB) NewIter(store string, lower, upper []byte) (*Iter, error) {
	if err := validStoreName(store); err != nil {
		return nil, err
	}
	lo, hi := iterBounds(store, lower, upper)
	if err := db.rlock(); err != nil {
		return nil, err
	}
	defer db.mu.RUnlock()
	pit, err := db.pdb.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return nil, wrapErr("new iterator", err)
	}
	return db.track(pit, store, nil), nil
}

// Scan calls fn for each key/value of store in [lower, upper) in key order,
// as NewIter would iterate them. k and v are only valid during the call. An
// error from fn stops the scan and is returned unchanged; an iterator error
// (I/O, corruption) is returned wrapped, never mistaken for the end.
func (db *DB) Scan(store string, lower, upper []byte, fn func(k, v []byte) error) error {
	it, err := db.NewIter(store, lower, upper)
	if err != nil {
		return err
	}
	return scan(it, fn)
}

func scan(it *Iter, fn func(k, v []byte) error) error {
	for ok := it.First(); ok; ok = it.Next() {
		if err := fn(it.Key(), it.Value()); err != nil {
			_ = it.Close() // fn's error takes precedence
			return err
		}
	}
	// Close returns the iteration error, if any.
	return it.Close()
}

func iterBounds(store string, lower, upper []byte) (lo, hi []byte) {
	if lower != nil && upper != nil && bytes.Compare(lower, upper) > 0 {
		upper = lower
	}
	return storeBounds(store, lower, upper)
}

// track wraps and registers a Pebble iterator. Requires db.mu read-locked.
func (db *DB) track(pit *pebble.Iterator, store string, b *Batch) *Iter {
	it := &Iter{db: db, batch: b, it: pit, prefixLen: 1 + len(store), store: store}
	db.itersMu.Lock()
	db.iters[it] = struct{}{}
	db.itersMu.Unlock()
	return it
}

// untrack removes it from the open set. Requires db.mu read-locked.
func (db *DB) untrack(it *Iter) {
	db.itersMu.Lock()
	delete(db.iters, it)
	db.itersMu.Unlock()
}

// NewBatch returns an empty indexed Batch on db. Its writes are invisible to
// everyone else until db.Commit(b); its own reads (Batch.Get, Batch.NewIter)
// see them over the committed state. The caller owns the Batch and must
// Close it (Close without Commit discards the writes, which is how a
// transaction abort is implemented). If db is closed, every operation on
// the returned Batch returns ErrClosed.
func (db *DB) NewBatch() *Batch {
	if db.closed.Load() {
		return &Batch{db: db, state: batchClosed}
	}
	return &Batch{db: db, idx: map[string]int32{}, iters: map[*Iter]struct{}{}}
}

// Commit atomically and durably applies b (its store writes and offsets)
// to db: when Commit returns nil, the WAL holding the whole batch has been
// fsynced (pebble.Sync), so after a crash either all of b is present or,
// had Commit not returned, none of it (Pebble applies a batch as one WAL
// record). Iters open on b are closed first. After a successful Commit, b
// rejects further use with ErrCommitted until Reset; after a failed one it
// should be closed. Committing an empty batch is allowed.
//
// An I/O error while writing or syncing the WAL is not returned: Pebble
// treats it as fatal (a failed fsync leaves the page cache in an unknown
// state) and calls its Logger's Fatalf, which panics (see Options.Logger).
func (db *DB) Commit(b *Batch) error { return db.commit(b, pebble.Sync) }

// CommitNoSync is Commit without the fsync: the batch is applied
// atomically and survives a process crash (it is in the OS's page cache),
// but an operating-system crash may lose it, and the batches after it,
// never part of one. Use it where the DB is a cache of a durable log that
// can replay what was lost, as a task's state is of its changelog.
func (db *DB) CommitNoSync(b *Batch) error { return db.commit(b, pebble.NoSync) }

func (db *DB) commit(b *Batch, opts *pebble.WriteOptions) error {
	if b.db != db {
		return errors.New("state: commit: batch belongs to another DB")
	}
	if err := b.usable(); err != nil {
		return err
	}
	if err := db.rlock(); err != nil {
		return err
	}
	defer db.mu.RUnlock()
	b.closeItersLocked()
	if db.readOnly {
		return fmt.Errorf("%w: commit", ErrReadOnly)
	}
	// One Pebble batch of the last value of every key written.
	pb := db.pdb.NewBatchWithSize(b.size + len(b.writes)*batchEntryOverhead)
	defer pb.Close()
	for i := range b.writes {
		w := &b.writes[i]
		b.key = append(b.key[:0], w.key...)
		var err error
		if w.deleted {
			err = pb.Delete(b.key, nil)
		} else {
			err = pb.Set(b.key, w.value, nil)
		}
		if err != nil {
			return wrapErr("commit", err)
		}
	}
	if err := db.pdb.Apply(pb, opts); err != nil {
		return wrapErr("commit", err)
	}
	db.values.committed(b.writes)
	b.state = batchCommitted
	return nil
}

// batchEntryOverhead is what an entry of a Pebble batch takes besides its
// key and value: a kind byte and two varint lengths.
const batchEntryOverhead = 1 + 2*binary.MaxVarintLen32

// ValueCacheStats returns the figures of db's cache of committed values
// (see Options.ValueCacheBytes).
func (db *DB) ValueCacheStats() ValueCacheStats { return db.values.stats() }

// Metrics returns Pebble's metrics for db, or nil if db is closed. The
// block cache figures (BlockCache) cover the whole cache, which may be
// shared with other DBs.
func (db *DB) Metrics() *pebble.Metrics {
	if err := db.rlock(); err != nil {
		return nil
	}
	defer db.mu.RUnlock()
	return db.pdb.Metrics()
}
