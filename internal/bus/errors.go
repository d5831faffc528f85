package bus

import (
	"errors"
	"fmt"
)

// ErrUnknownTopic is returned, wrapped with the topic, by Translate for a
// message whose topic this package does not translate. Callers that read
// a firehose typically count and skip such messages.
var ErrUnknownTopic = errors.New("bus: unknown topic")

// ErrMalformed is returned, wrapped with details, for input that is not a
// message at all: invalid JSON, JSON that is not an object, a message
// without a topic, a body that is not a JSON object.
var ErrMalformed = errors.New("bus: malformed message")

// ErrNoTopic is wrapped, with ErrMalformed, by the error for a message
// that names no topic when no default topic was given: a bare body, whose
// caller must say which topic it came from.
var ErrNoTopic = errors.New("no topic")

// FieldError reports a message whose body lacks a field Translate needs,
// or has it with a type or value that cannot be used.
type FieldError struct {
	// Topic is the message's topic with environment prefixes removed,
	// e.g. "buildsys.tag" or "brew.build.complete".
	Topic string
	// Field is the field's path in the body, e.g. "build_id" or
	// "build.nvr" or "data.item".
	Field string
	// Reason says what is wrong, e.g. "missing" or "not a string".
	Reason string
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("bus: %s: field %q: %s", e.Topic, e.Field, e.Reason)
}
