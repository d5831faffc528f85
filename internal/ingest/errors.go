package ingest

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors; an [*InputError] wraps the first two.
var (
	// ErrDecision: the input holds a decision. Decisions are derived by the
	// processors from the events in the log, never accepted as input.
	ErrDecision = errors.New("ingest: decisions are not accepted as input (the processors derive them from events)")
	// ErrMissing: a required field is empty.
	ErrMissing = errors.New("missing")
	// ErrNoEvents: the input holds no event at all.
	ErrNoEvents = errors.New("ingest: no events in input")
	// ErrInvalidUTF8: the input is not valid UTF-8. JSON must be, and
	// encoding/json would silently replace the bad bytes with U+FFFD.
	ErrInvalidUTF8 = errors.New("invalid UTF-8")
)

// maxReported bounds how many problems one error lists.
const maxReported = 20

// InputError is a problem with one event of the input: malformed JSON, a
// message that does not translate, a missing or invalid field.
type InputError struct {
	// Line is the 1-based input line the event starts on; 0 for an event
	// written with flags.
	Line int
	// Element is the 1-based index of the event in a JSON array; 0 when the
	// event is not in an array.
	Element int
	// Type is the event's JSON type name ("build", ...), when known.
	Type string
	// Field is the JSON name of the field at fault, when there is one.
	Field string
	// Err is what is wrong.
	Err error
}

func (e *InputError) Error() string { return "ingest: " + e.detail() }

// detail is the message without the package prefix.
func (e *InputError) detail() string {
	var b strings.Builder
	if e.Line > 0 {
		fmt.Fprintf(&b, "line %d", e.Line)
		if e.Element > 0 {
			fmt.Fprintf(&b, " (array element %d)", e.Element)
		}
		b.WriteString(": ")
	}
	if e.Type != "" {
		b.WriteString(e.Type)
		b.WriteString(": ")
	}
	if e.Field != "" {
		if e.Line == 0 {
			// Flag input: name the flag that sets the field.
			fmt.Fprintf(&b, "--%s: ", FlagName(e.Field))
		} else {
			fmt.Fprintf(&b, "field %q: ", e.Field)
		}
	}
	b.WriteString(strings.TrimPrefix(e.Err.Error(), "ingest: "))
	return b.String()
}

func (e *InputError) Unwrap() error { return e.Err }

// BatchError reports every problem of an input with more than one (an
// input with one problem gets that *InputError alone).
type BatchError struct {
	// Problems are the first problems found, in input order.
	Problems []*InputError
	// More counts the problems found beyond those listed.
	More int
}

func (e *BatchError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "ingest: %d problems in the input, nothing was accepted:", len(e.Problems)+e.More)
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		b.WriteString(p.detail())
	}
	if e.More > 0 {
		fmt.Fprintf(&b, "\n  and %d more", e.More)
	}
	return b.String()
}

// Unwrap returns the listed problems, for errors.As and errors.Is.
func (e *BatchError) Unwrap() []error {
	errs := make([]error, len(e.Problems))
	for i, p := range e.Problems {
		errs[i] = p
	}
	return errs
}

// problems collects the InputErrors of a batch.
type problems struct {
	list []*InputError
	n    int
}

func (p *problems) add(e *InputError) {
	p.n++
	if len(p.list) < maxReported {
		p.list = append(p.list, e)
	}
}

// err returns the collected problems as an error, or nil when there are
// none.
func (p *problems) err() error {
	switch p.n {
	case 0:
		return nil
	case 1:
		return p.list[0]
	}
	return &BatchError{Problems: p.list, More: p.n - len(p.list)}
}

// TooLargeError: an event's Kafka record is larger than the producer's
// MaxEventBytes, or Kafka refused it (or the record batch holding it) as
// too large. Nothing of the batch was produced.
type TooLargeError struct {
	// Index is the 1-based position of the event in the batch.
	Index int
	// Line is the 1-based input line the event started on; 0 for an
	// event written with flags.
	Line int
	// Element is the 1-based index of the event in a JSON array; 0 when
	// the event is not in an array.
	Element int
	// Type is the event's JSON type name ("build", ...).
	Type string
	// Size is the record's key and Avro-encoded value, in bytes.
	Size int
	// Max is the producer's MaxEventBytes, or 0 when Kafka refused the
	// record (see Err).
	Max int
	// Err is Kafka's refusal (wrapping kerr.MessageTooLarge or
	// kerr.RecordListTooLarge), or nil when Size exceeds Max.
	Err error
}

func (e *TooLargeError) Error() string {
	var b strings.Builder
	b.WriteString("ingest: ")
	if e.Line > 0 {
		fmt.Fprintf(&b, "line %d", e.Line)
		if e.Element > 0 {
			fmt.Fprintf(&b, " (array element %d)", e.Element)
		}
		b.WriteString(": ")
	}
	fmt.Fprintf(&b, "event %d (%s): ", e.Index, e.Type)
	if e.Err != nil {
		fmt.Fprintf(&b, "Kafka refused its record of %d bytes, or the record batch holding it, as too large: %v", e.Size, e.Err)
	} else {
		fmt.Fprintf(&b, "its record of %d bytes exceeds the maximum event size of %d bytes", e.Size, e.Max)
	}
	return b.String()
}

func (e *TooLargeError) Unwrap() error { return e.Err }
