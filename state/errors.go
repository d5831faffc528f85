package state

import (
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

var (
	// ErrNotFound is returned by Get and the metadata readers when the key or
	// name has no value. Test with errors.Is.
	ErrNotFound = errors.New("state: not found")
	// ErrClosed is returned by every operation on a closed DB, and by
	// operations on a Batch, Iter or Restorer that was closed (by its owner,
	// or forcibly because its DB or Batch was closed, committed or reset).
	ErrClosed = errors.New("state: closed")
	// ErrInvalidName wraps the reason a store or metadata name was rejected.
	ErrInvalidName = errors.New("state: invalid name")
	// ErrCommitted is returned when a committed Batch is written to, read
	// from or committed again without a Reset in between.
	ErrCommitted = errors.New("state: batch already committed")
	// ErrReadOnly is returned by writes to a DB opened with Options.ReadOnly.
	ErrReadOnly = errors.New("state: read-only")
)

// CorruptionError reports that stored data is not in the expected format: a
// Pebble block or file failed its checksum or could not be decoded, or a
// metadata value has the wrong encoding. The task's local state can no
// longer be trusted; the usual remedy is Destroy and a restore from the
// changelog. Test with errors.As.
type CorruptionError struct {
	// Op names what was being done, e.g. "get", "iterate", "offset in/t/0".
	Op string
	// Err is the underlying error (for Pebble corruption, one for which
	// pebble.IsCorruptionError is true).
	Err error
}

// Error implements error.
func (e *CorruptionError) Error() string {
	return fmt.Sprintf("state: corruption during %s: %v", e.Op, e.Err)
}

// Unwrap returns the underlying error.
func (e *CorruptionError) Unwrap() error { return e.Err }

// wrapErr converts an error returned by Pebble into this package's error
// vocabulary. Pebble marks corruption with cockroachdb/errors.Mark, which the
// standard library's errors.Is does not see, so corruption is detected with
// pebble.IsCorruptionError and turned into a *CorruptionError that errors.As
// finds. Other errors are wrapped with op as context.
func wrapErr(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case pebble.IsCorruptionError(err):
		return &CorruptionError{Op: op, Err: err}
	case errors.Is(err, pebble.ErrReadOnly):
		return fmt.Errorf("%w: %s: %w", ErrReadOnly, op, err)
	default:
		return fmt.Errorf("state: %s: %w", op, err)
	}
}
