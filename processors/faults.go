package processors

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The failure model (DESIGN.md, "Failure model"): every error the runner
// meets is one of three classes.
type errClass int

const (
	// transient errors are waited out: the transaction aborts, the runner
	// backs off and retries, and resumes by itself when the cause goes
	// away (a broker down, a coordinator moving, a rebalance).
	transient errClass = iota
	// poison errors are tied to one input record and would recur on every
	// retry (its output or state too large for Kafka, a processor error):
	// that record goes to the dead-letter topic and the rest continue.
	poison
	// fatal errors cannot be fixed by retrying (authentication,
	// authorization, another process with this instance's transactional
	// id, a broken local disk, a split assignment): the runner stops with
	// a message that says what to do.
	fatal
)

// fatalKafka are the Kafka errors no retry fixes.
var fatalKafka = []error{
	kerr.SaslAuthenticationFailed,
	kerr.TopicAuthorizationFailed,
	kerr.GroupAuthorizationFailed,
	kerr.ClusterAuthorizationFailed,
	kerr.TransactionalIDAuthorizationFailed,
	kerr.DelegationTokenAuthorizationFailed,
	kerr.ProducerFenced,
	kerr.InvalidTransactionTimeout,
	kerr.UnsupportedForMessageFormat,
}

// poisonKafka are the produce errors that reject one record for what it
// is, so that producing it again fails again.
var poisonKafka = []error{
	kerr.MessageTooLarge,
	kerr.RecordListTooLarge,
	kerr.InvalidRecord,
	kerr.CorruptMessage,
	kerr.InvalidTimestamp,
}

// classify returns the class of err.
func classify(err error) errClass {
	var fe *fatalError
	var se *StorageError
	var pe *poisonError
	var vt *ValueTooLargeError
	switch {
	case err == nil:
		return transient
	case errors.As(err, &fe), errors.As(err, &se):
		return fatal
	case errors.As(err, &pe), errors.As(err, &vt):
		return poison
	}
	for _, f := range fatalKafka {
		if errors.Is(err, f) {
			return fatal
		}
	}
	for _, p := range poisonKafka {
		if errors.Is(err, p) {
			return poison
		}
	}
	return transient
}

// fatalError marks an error the runner must stop for.
type fatalError struct{ err error }

func (e *fatalError) Error() string { return e.err.Error() }
func (e *fatalError) Unwrap() error { return e.err }

// poisonError is a failure caused by one input record (src), or by some
// record of the transaction when src is nil.
type poisonError struct {
	src *recordRef
	err error
}

func (e *poisonError) Error() string { return e.err.Error() }
func (e *poisonError) Unwrap() error { return e.err }

// recordRef identifies an input record.
type recordRef struct {
	Topic     string
	Partition int32
	Offset    int64
}

func refOf(r *kgo.Record) recordRef {
	return recordRef{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset}
}

func (r recordRef) String() string { return fmt.Sprintf("%s/%d@%d", r.Topic, r.Partition, r.Offset) }

// StorageError is an error of the local state store (an I/O error, a
// corrupt block). It is fatal: retrying on a broken disk cannot succeed.
type StorageError struct{ Err error }

func (e *StorageError) Error() string { return "processors: state store: " + e.Err.Error() }
func (e *StorageError) Unwrap() error { return e.Err }

// ValueTooLargeError: a processor tried to store a value larger than its
// changelog can carry. Returned by Context.Put; the input that caused it
// is dead-lettered.
type ValueTooLargeError struct {
	Store string
	Key   []byte
	Size  int
	Limit int
}

func (e *ValueTooLargeError) Error() string {
	return fmt.Sprintf("processors: value of %d bytes for key %q in store %s exceeds the limit of %d bytes (Config.MaxRecordBytes)", e.Size, e.Key, e.Store, e.Limit)
}

// backoff is a capped exponential backoff with jitter.
type backoff struct {
	min, max time.Duration
	n        int
}

func (b *backoff) next() time.Duration {
	d := b.min << min(b.n, 16)
	if d <= 0 || d > b.max {
		d = b.max
	}
	b.n++
	// ±20% jitter, so instances that failed together do not retry in step.
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

func (b *backoff) reset() { b.n = 0 }

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
