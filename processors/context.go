package processors

import (
	"errors"

	"github.com/factory2/factory2/avro"
	"github.com/factory2/factory2/state"
)

// View is the state a Context reads and writes: a task's pending
// *state.Batch in the runtime, the same in replays and tests.
type View interface {
	Get(store string, key []byte) ([]byte, error)
	// Read calls fn with the value without copying it (valid only during
	// fn), or returns state.ErrNotFound.
	Read(store string, key []byte, fn func(v []byte)) error
	Set(store string, key, value []byte) error
	Delete(store string, key []byte) error
	Scan(store string, lower, upper []byte, fn func(k, v []byte) error) error
}

var _ View = (*state.Batch)(nil)

// Context is what a Processor sees of its task: its state and its output.
// It is valid only during the Process or Punctuate call it is passed to.
//
// The view is the open transaction: in the runtime a *state.Batch, which
// keeps the last write of each key (what the changelog and Pebble receive
// at commit) and serves reads from those writes, then from the DB's cache
// of committed values, then from Pebble.
type Context struct {
	partition int32
	view      View
	emit      func(Output)
	// cache is the processor's per-transaction scratch (TxnCache).
	cache map[string]any
	// maxValue bounds a stored key and value (0: no bound): a changelog
	// record must fit in a Kafka record.
	maxValue int
}

// NewContext returns a Context over view that passes emitted records to
// emit. The runtime builds its own; replays and tests use this.
func NewContext(partition int32, view View, emit func(Output)) *Context {
	return &Context{partition: partition, view: view, emit: emit, cache: map[string]any{}}
}

// TxnCache is scratch space that lives as long as the open transaction:
// the runtime empties it when the transaction commits or aborts, after
// calling Flush (for processors that implement Flusher). A processor may
// keep decoded state in it to read and write a hot key once per
// transaction instead of once per record; it must then write what it
// changed to the state in Flush. Never keep anything in it that is not
// derived from the transaction's own reads and writes.
func (c *Context) TxnCache() map[string]any { return c.cache }

// Partition is the task's partition.
func (c *Context) Partition() int32 { return c.partition }

// Get returns a copy of key's value in store, or (nil, false, nil) when it
// has none. Writes made earlier in the same transaction are visible.
func (c *Context) Get(store string, key []byte) ([]byte, bool, error) {
	v, err := c.view.Get(store, key)
	if isNotFound(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, &StorageError{err}
	}
	return v, true, nil
}

// GetString is Get returning the value as a string, made with one copy
// where Get and a conversion make two: for processors that decode their
// state from a string (strings are immutable, so the decoded state may
// share it).
func (c *Context) GetString(store string, key []byte) (string, bool, error) {
	var s string
	err := c.view.Read(store, key, func(v []byte) { s = string(v) })
	if isNotFound(err) {
		return "", false, nil
	}
	if err != nil {
		return "", false, &StorageError{err}
	}
	return s, true, nil
}

// Put sets key to value in store. The value is copied. A value its
// changelog could not carry returns a *ValueTooLargeError, and the input
// being processed is dead-lettered.
func (c *Context) Put(store string, key, value []byte) error {
	if c.maxValue > 0 && len(key)+len(value) > c.maxValue {
		return &ValueTooLargeError{Store: store, Key: key, Size: len(key) + len(value), Limit: c.maxValue}
	}
	if err := c.view.Set(store, key, value); err != nil {
		return &StorageError{err}
	}
	return nil
}

// Delete removes key from store.
func (c *Context) Delete(store string, key []byte) error {
	if err := c.view.Delete(store, key); err != nil {
		return &StorageError{err}
	}
	return nil
}

// Scan calls fn for every key in [lower, upper) of store in key order; nil
// bounds are open. fn must not keep k or v.
func (c *Context) Scan(store string, lower, upper []byte, fn func(k, v []byte) error) error {
	return c.view.Scan(store, lower, upper, fn)
}

// Emit sends r to topic with key, inside the task's transaction: it
// becomes visible to read_committed consumers when the transaction commits,
// together with the state writes and input offsets of the same transaction.
func (c *Context) Emit(topic string, key []byte, r avro.Record) {
	c.emit(Output{Topic: topic, Key: key, Record: r})
}

// EmitTo is Emit to one partition of topic, which must be one of the
// spec's PartitionedOutputs.
func (c *Context) EmitTo(topic string, partition int32, key []byte, r avro.Record) {
	c.emit(Output{Topic: topic, Key: key, Record: r, Partition: partition})
}

func isNotFound(err error) bool { return errors.Is(err, state.ErrNotFound) }
