package avro

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. Data errors returned by Decode wrap one of these (test
// with errors.Is), usually inside a *FieldError naming the field.
var (
	// ErrNotAvro: the bytes start with neither the single-object marker
	// (0xC3 0x01) nor the Confluent magic byte (0x00).
	ErrNotAvro = errors.New("avro: not an Avro single-object or Confluent-framed record")
	// ErrTruncated: the data ends before the record does.
	ErrTruncated = errors.New("avro: truncated data")
	// ErrInvalid: the data is not a valid encoding of the schema (bad
	// varint, negative length, union index out of range, trailing bytes...).
	ErrInvalid = errors.New("avro: invalid data")
	// ErrNoRegistry: a Confluent-framed record was given to a Codec built
	// without WithRegistry.
	ErrNoRegistry = errors.New("avro: Confluent-framed record but no schema registry configured")
	// ErrUnknownType: a record type (Go type, type name or schema name)
	// that is not part of the contract.
	ErrUnknownType = errors.New("avro: unknown record type")
	// ErrTimeRange: a time cannot be represented as int64 microseconds
	// since the Unix epoch.
	ErrTimeRange = errors.New("avro: time out of range for timestamp-micros")
	// ErrIncompatible: a writer schema cannot be read with the reader
	// schema under the Avro schema resolution rules.
	ErrIncompatible = errors.New("avro: incompatible schemas")
)

// UnknownSchemaError is returned by Decode when the writer schema of a
// record is not known: no stored version has the single-object
// fingerprint, or the registry schema id names a schema that is not a
// factory2 record.
type UnknownSchemaError struct {
	// Fingerprint is the CRC-64-AVRO fingerprint from a single-object
	// encoding; zero for Confluent-framed records.
	Fingerprint uint64
	// ID is the schema registry id from a Confluent-framed record; zero
	// for single-object encodings.
	ID int
	// Name is the writer schema's full name, when it is known (Confluent).
	Name string
}

func (e *UnknownSchemaError) Error() string {
	switch {
	case e.ID != 0 && e.Name != "":
		return fmt.Sprintf("avro: unknown writer schema %s (registry id %d)", e.Name, e.ID)
	case e.ID != 0:
		return fmt.Sprintf("avro: unknown writer schema (registry id %d)", e.ID)
	default:
		return fmt.Sprintf("avro: unknown writer schema (fingerprint %016x)", e.Fingerprint)
	}
}

// FieldError is a data error at one field of a record: bad or truncated
// data on decode, an unrepresentable value on encode.
type FieldError struct {
	// Record is the full schema name, e.g. "org.factory2.BuildEvent".
	Record string
	// Field is the dotted field path, e.g. "artifacts.name".
	Field string
	// Err is the cause, usually one of the sentinels.
	Err error
}

func (e *FieldError) Error() string {
	var b strings.Builder
	b.WriteString("avro: ")
	if e.Record != "" {
		b.WriteString(e.Record)
		b.WriteString(": ")
	}
	if e.Field != "" {
		b.WriteString("field ")
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(strings.TrimPrefix(e.Err.Error(), "avro: "))
	return b.String()
}

func (e *FieldError) Unwrap() error { return e.Err }
