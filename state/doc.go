// Package state is the local state of factory2's stream processing tasks,
// kept in Pebble.
//
// # Model
//
// The runtime (package processors) runs one task per assigned Kafka
// partition of a processor, and each task owns one DB: one Pebble database
// in its own directory holding
//
//   - several named stores (for example "subjects" and "timers"), each an
//     ordered key/value space, and
//   - the task's metadata: the next input offset per consumed
//     topic-partition (e.g. "in/factory2.events.build/3") and, per store,
//     the changelog offset already applied (e.g. "changelog/subjects").
//
// Exactly-once processing rests on one invariant: state changes and the
// offsets they correspond to are written to Pebble in one atomic, synced
// batch. During a Kafka transaction the runtime accumulates the processor's
// writes in a Batch, which keeps the last write of each key and whose reads
// see its own writes over the committed state. When the Kafka transaction
// commits, the runtime adds the new offsets (Batch.SetOffset) and calls
// DB.Commit, which applies the whole batch (each key once) as one WAL
// record and fsyncs it; if the transaction aborts, the runtime discards the
// batch (Batch.Close or Batch.Reset) and Pebble never saw it. After a crash the DB therefore holds the state of
// some committed transaction together with exactly the offsets of that
// transaction.
//
// On assignment, the runtime reads the stored changelog offset of each store
// (DB.Offset) and replays only the changelog tail through a Restorer, which
// writes in large unsynced batches and syncs once in Restorer.Finish (see
// Restorer for why that is safe). State that must be rebuilt from scratch
// (a revoked partition, an operator wiping local state) is removed with
// Destroy.
//
// Many tasks share one block Cache whose size is configured once per
// process; Pebble's default cache (8 MiB per DB) is far too small. Each DB
// also keeps a small cache of committed values (Options.ValueCacheBytes)
// that answers point reads of hot keys without a Pebble lookup; it is
// updated by every commit and dropped by every restore, the only ways the
// committed state changes. Pebble's
// metrics are exported by a Collector that reads DB.Metrics at scrape time.
//
// # Key layout
//
// All stores and the metadata live in one Pebble keyspace:
//
//	store key:    len(store) | store | key     len(store) is one byte in [1, 64]
//	metadata key: 0x00 | name                  offsets: 8-byte big-endian int64
//
// Store names are 1..64 bytes of [A-Za-z0-9._-]. Because the name is
// length-prefixed, the prefix of store "a" (0x01 'a') is not a prefix of the
// keys of store "ab" (0x02 'a' 'b'), so stores never see each other's keys,
// and a store's keys occupy the contiguous range [prefix, prefix with its
// last byte incremented). A store prefix never starts with 0x00, so no store
// iterator can reach the metadata. Keys within a store sort bytewise, like
// Pebble's default comparer. Offsets and other metadata (Batch.SetMeta,
// DB.Meta) share the metadata namespace.
//
// # Ownership and concurrency
//
// Every slice passed in is copied or not retained. Values returned by Get
// and Meta are copies owned by the caller. Keys and values returned by an
// Iter alias Pebble's memory and are valid only until the iterator moves or
// closes. DB methods are safe for concurrent use; a Batch, Iter or Restorer
// belongs to one goroutine at a time.
//
// # Errors
//
// ErrNotFound, ErrClosed, ErrInvalidName, ErrCommitted and ErrReadOnly are
// sentinels (test with errors.Is). Damaged data yields a *CorruptionError
// (test with errors.As). Iterators never end silently on an error: a loop
// that stops must check Iter.Error or Iter.Close, and Scan returns the error.
package state
