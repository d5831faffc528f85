package state

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"
)

const (
	// DefaultCacheSize is the size of the private block cache a DB gets when
	// Options.Cache is nil. Production code should share one Cache between
	// all tasks instead (Pebble's own default, 8 MiB, is far too small for a
	// stream processor).
	DefaultCacheSize int64 = 256 << 20
	// DefaultMemTableSize is the memtable size used when
	// Options.MemTableSize is zero. Pebble keeps up to two memtables per DB
	// before stalling writes, so budget 2x this per task.
	DefaultMemTableSize int64 = 16 << 20

	minMemTableSize int64 = 1 << 20
	maxMemTableSize int64 = 1 << 30
)

// Cache is a block cache that may be shared by many DBs (one per task), so
// that the memory budget is set once per process rather than per partition.
//
// Reference counting: NewCache returns a Cache holding one reference, owned
// by the caller. Every DB opened with the Cache takes its own reference and
// drops it on Close, so the caller may Unref as soon as it will open no more
// DBs with it; the memory is released when the last reference is dropped.
// Opening a DB with a Cache whose references have all been dropped panics
// (inside Pebble). A Cache is safe for concurrent use.
type Cache struct {
	c        *pebble.Cache
	capacity int64
}

// NewCache returns a block cache of the given capacity in bytes. Memory is
// allocated on demand, not up front.
func NewCache(bytes int64) *Cache {
	return &Cache{c: pebble.NewCache(bytes), capacity: bytes}
}

// Unref drops the caller's reference taken by NewCache. Call it exactly once.
func (c *Cache) Unref() { c.c.Unref() }

// Options configures Open. The zero value plus a Dir is usable; call
// EnsureDefaults and Validate to see the effective configuration (Open does
// both on its own copy).
//
// There is deliberately no knob to disable the write-ahead log: the
// exactly-once design depends on a synced Commit being durable.
type Options struct {
	// Dir is the directory of the task's Pebble database; it is created if
	// missing. Required.
	Dir string
	// FS is the filesystem; nil means vfs.Default (the OS). Tests use
	// vfs.NewMem or vfs.NewCrashableMem.
	FS vfs.FS
	// Cache is the shared block cache. nil means a private cache of
	// DefaultCacheSize, released on Close.
	Cache *Cache
	// Logger receives Pebble's log lines, background errors and data
	// corruption reports. nil discards them. Pebble's fatal errors (broken
	// invariants, a failed WAL write or sync) are logged and then panic.
	Logger *slog.Logger
	// MemTableSize is the size of one memtable in bytes; zero means
	// DefaultMemTableSize. Valid range: 1 MiB to 1 GiB.
	MemTableSize int64
	// ValueCacheBytes bounds the DB's cache of committed values, which
	// serves point reads (Get, a Batch's Get of a key it did not write)
	// before Pebble. Zero means DefaultValueCacheBytes; negative turns the
	// cache off. It is per DB, so per task: budget it times the tasks of
	// the process.
	ValueCacheBytes int64
	// ReadOnly opens the database without permitting writes: Commit and
	// Restorer return ErrReadOnly. Useful for inspection tools. Pebble still
	// replays the WAL in memory.
	ReadOnly bool
}

// EnsureDefaults fills zero fields with their defaults. It does not create a
// Cache; Open does that when Cache is nil.
func (o *Options) EnsureDefaults() {
	if o.FS == nil {
		o.FS = vfs.Default
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.MemTableSize == 0 {
		o.MemTableSize = DefaultMemTableSize
	}
	if o.ValueCacheBytes == 0 {
		o.ValueCacheBytes = DefaultValueCacheBytes
	}
}

// Validate reports every problem with o at once (errors.Join), or nil.
func (o *Options) Validate() error {
	var errs []error
	if o.Dir == "" {
		errs = append(errs, errors.New("state: options: Dir is required"))
	}
	if o.MemTableSize != 0 && (o.MemTableSize < minMemTableSize || o.MemTableSize > maxMemTableSize) {
		errs = append(errs, fmt.Errorf("state: options: MemTableSize %d outside [%d, %d]",
			o.MemTableSize, minMemTableSize, maxMemTableSize))
	}
	if o.Cache != nil && o.Cache.c == nil {
		errs = append(errs, errors.New("state: options: Cache was not created by NewCache"))
	}
	return errors.Join(errs...)
}

// pebbleOptions translates o (with defaults applied) into Pebble options
// using cache c.
func (o *Options) pebbleOptions(c *Cache) *pebble.Options {
	po := &pebble.Options{
		FS:           o.FS,
		Cache:        c.c,
		MemTableSize: uint64(o.MemTableSize),
		ReadOnly:     o.ReadOnly,
		// Pinned rather than FormatNewest so that a Pebble upgrade never
		// ratchets the on-disk format silently. This version writes WAL sync
		// chunks, which let WAL replay tell a torn (unsynced) tail from real
		// corruption, and checksums the sstable footer.
		FormatMajorVersion: pebble.FormatTableFormatV6,
		Logger:             pebbleLogger{o.Logger},
		EventListener:      eventListener(o.Logger),
	}
	// Point lookups (Get on every processed record) dominate; bloom filters
	// let them skip sstables that cannot hold the key.
	for i := range po.Levels {
		po.Levels[i].FilterPolicy = bloom.FilterPolicy(10) // ~1% false positives
	}
	return po
}
