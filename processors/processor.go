package processors

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/factory2/factory2/avro"
)

// Processor is the logic of one stateful stream processor, for one task
// (one partition of its co-partitioned inputs). The runtime creates one
// Processor per task with Spec.New and calls it from one goroutine.
//
// Process must be deterministic for a given state and input: it reads and
// writes state only through the Context, emits output only through the
// Context, and reads neither the wall clock nor anything outside the log
// (time comes from the input's envelope). That is what makes a replay
// reproduce the decision history, and a reprocessing after an aborted
// transaction produce the same outputs.
type Processor interface {
	// Process handles one decoded input record. A returned error wrapping
	// a *RejectError sends the input to the dead-letter topic with its
	// reason and processing continues; its state writes are kept (a
	// processor rejects before writing). Any other error is fatal: the
	// transaction aborts and the runner stops with that error.
	Process(c *Context, in *Input) error
}

// Punctuator is implemented by processors with time-based rules. The
// runtime calls Punctuate on every task every Spec.PunctuateEvery with the
// wall-clock time, inside the current transaction; what it emits and
// writes commits with the records processed around it. It never calls
// Punctuate on a task before the task's state is restored and its
// committed input offsets are known.
//
// A punctuation must do a bounded amount of work, since everything it
// writes goes into one transaction: a long job (re-evaluating every stored
// subject) does one chunk, records where it stopped in the state, and
// returns more = true; the runtime then calls it again in the next
// transaction instead of after PunctuateEvery.
type Punctuator interface {
	Punctuate(c *Context, now time.Time) (more bool, err error)
}

// StateValidator is implemented by processors that can check a stored
// value without using it. A restore calls ValidateState for every value it
// reads from a changelog; a value that fails (garbage written to the
// changelog by another client, a record of an incompatible version) is
// quarantined: the key is deleted, its deletion is written to the
// changelog in the next transaction, and the value goes to the
// dead-letter topic with the reason. See DESIGN.md, "Poison".
type StateValidator interface {
	ValidateState(store string, key, value []byte) error
}

// Flusher is implemented by processors that hold writes in
// Context.TxnCache: Flush writes them to the state (with Context.Put). The
// runtime calls it on every task before the transaction's changelog is
// produced, and replays call it before writing their state.
type Flusher interface {
	Flush(c *Context) error
}

// Input is one record from an input topic.
type Input struct {
	Topic     string
	Partition int32
	Offset    int64
	Key       []byte
	// Timestamp is the Kafka record timestamp.
	Timestamp time.Time
	// Record is the decoded value.
	Record avro.Record
}

// Spec describes a processor to the runtime.
type Spec struct {
	// Name identifies the processor: its consumer group, transactional
	// id, changelog topics and state directory derive from it. Changing
	// it orphans the processor's state.
	Name string
	// Inputs are the full names of the co-partitioned input topics.
	Inputs []string
	// Outputs are the full names of the topics the processor emits to
	// (for replay's diff and for documentation).
	Outputs []string
	// PartitionedOutputs are the outputs (among Outputs) the processor
	// writes partition by partition with Context.EmitTo instead of by
	// key: a table that every task of a downstream processor must see
	// is written once to each partition.
	PartitionedOutputs []string
	// Stores are the names of the processor's state stores; each has a
	// compacted changelog topic.
	Stores []string
	// New returns the Processor of one task.
	New func(partition int32) Processor
	// PunctuateEvery, when positive and the Processor implements
	// Punctuator, is the punctuation interval.
	PunctuateEvery time.Duration
}

// Validate reports every problem of s at once.
func (s Spec) Validate() error {
	var errs []error
	if s.Name == "" {
		errs = append(errs, errors.New("processors: spec has no name"))
	}
	if len(s.Inputs) == 0 {
		errs = append(errs, fmt.Errorf("processors: %s: no inputs", s.Name))
	}
	if s.New == nil {
		errs = append(errs, fmt.Errorf("processors: %s: no New", s.Name))
	}
	for _, t := range s.PartitionedOutputs {
		if !slices.Contains(s.Outputs, t) {
			errs = append(errs, fmt.Errorf("processors: %s: partitioned output %s is not an output", s.Name, t))
		}
	}
	return errors.Join(errs...)
}

// RejectError says why a processor refused an input record. The record
// goes to the dead-letter topic with Reason in its headers.
type RejectError struct {
	Reason string
}

func (e *RejectError) Error() string { return "processors: rejected: " + e.Reason }

// Reject returns a *RejectError with a formatted reason.
func Reject(format string, args ...any) error {
	return &RejectError{Reason: fmt.Sprintf(format, args...)}
}

// Output is one record a processor emits.
type Output struct {
	// Topic is the full topic name.
	Topic  string
	Key    []byte
	Record avro.Record
	// Partition is the partition of an output to one of the spec's
	// PartitionedOutputs (Context.EmitTo); others go to the partition of
	// their key.
	Partition int32
}

// Codec encodes and decodes records on the wire; *avro.Codec is one.
type Codec interface {
	Encode(avro.Record) ([]byte, error)
	Decode([]byte) (avro.Record, error)
}
