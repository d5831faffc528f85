package avro

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// The JSON form of records, for people and the CLI (emit --json, watch):
// the record struct's encoding/json form with a leading "type"
// discriminator, e.g. {"type":"build","id":"...","nvr":"..."}. It is not
// Avro's JSON encoding and not a wire format between services.

// TypeName returns the JSON type name of r ("build", "gating_decision",
// ...), or "" if r is not a record type of the contract.
func TypeName(r Record) string {
	rt, err := builtin.typeOf(r)
	if err != nil {
		return ""
	}
	return rt.typeName
}

// NewRecord returns a new zero record of the type with JSON type name
// typeName.
func NewRecord(typeName string) (Record, error) {
	rt := builtin.byTypeName[typeName]
	if rt == nil {
		return nil, fmt.Errorf("%w %q", ErrUnknownType, typeName)
	}
	return rt.newRecord(), nil
}

// MarshalJSON returns the JSON form of r.
func MarshalJSON(r Record) ([]byte, error) {
	rt, err := builtin.typeOf(r)
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("avro: JSON of %s: %w", rt.typeName, err)
	}
	out := make([]byte, 0, len(body)+len(rt.typeName)+12)
	out = append(out, `{"type":`...)
	out = append(out, '"')
	out = append(out, rt.typeName...) // a fixed identifier: nothing to escape
	out = append(out, '"')
	if len(body) > 2 { // not "{}"
		out = append(out, ',')
	}
	return append(out, body[1:]...), nil
}

// UnmarshalJSON parses the JSON form of a record. A missing or unknown
// "type" or a field the type does not have is an error naming it.
func UnmarshalJSON(b []byte) (Record, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil {
		return nil, fmt.Errorf("avro: JSON record: %w", err)
	}
	raw, ok := fields["type"]
	if !ok {
		return nil, fmt.Errorf("avro: JSON record has no \"type\"")
	}
	var typeName string
	if err := json.Unmarshal(raw, &typeName); err != nil {
		return nil, fmt.Errorf("avro: JSON record \"type\" must be a string, not %s", raw)
	}
	r, err := NewRecord(typeName)
	if err != nil {
		return nil, err
	}
	delete(fields, "type")
	rest, err := json.Marshal(fields)
	if err != nil {
		return nil, fmt.Errorf("avro: JSON %s record: %w", typeName, err)
	}
	dec := json.NewDecoder(bytes.NewReader(rest))
	dec.DisallowUnknownFields()
	if err := dec.Decode(r); err != nil {
		return nil, fmt.Errorf("avro: JSON %s record: %w", typeName, err)
	}
	return r, nil
}
