package ingest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
	"unicode/utf8"

	"github.com/factory2/factory2/avro"
	"github.com/factory2/factory2/internal/bus"
	"github.com/factory2/factory2/topics"
)

// Event is one event ready to produce: defaults filled, validated, routed.
type Event struct {
	// Record is the event.
	Record avro.Record
	// Topic is the full name of the input topic it goes to.
	Topic string
	// Key is its partition key (bus.Key).
	Key string
	// Line is the 1-based input line it started on; 0 for flag input.
	Line int
	// Element is its 1-based index in a JSON array; 0 when it is not in
	// an array.
	Element int
}

// MarshalJSON writes e as {"topic":...,"key":...,"event":{...}}, the event
// in the form of avro.MarshalJSON.
func (e Event) MarshalJSON() ([]byte, error) {
	ev, err := avro.MarshalJSON(e.Record)
	if err != nil {
		return nil, err
	}
	return json.Marshal(struct {
		Topic string          `json:"topic"`
		Key   string          `json:"key"`
		Event json.RawMessage `json:"event"`
	}{e.Topic, e.Key, ev})
}

// Parser turns input into events. Set Catalog; the other fields are
// optional. A Parser is safe for concurrent use once set up: its methods
// only read it.
type Parser struct {
	// Catalog names the topics events are routed to.
	Catalog *topics.Catalog
	// Source is the envelope source given to events that carry none.
	Source string
	// EventTimeNow gives events without an event time the ingest time.
	// Without it such an event is rejected (see the package comment).
	EventTimeNow bool
	// Now is the parser's clock; nil means time.Now. It gives the event
	// time of events without one (EventTimeNow, bus messages without a
	// time) and a provisional ingest time, which the Producer replaces.
	Now func() time.Time
}

func (p *Parser) now() time.Time {
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}
	// Whole milliseconds, like the ingest times a Producer gives (a Kafka
	// timestamp's precision): an event time taken from this clock is then
	// never later than its event's ingest time.
	return now().UTC().Truncate(time.Millisecond)
}

// ParseJSON parses JSON events (see the package comment): JSON values
// separated by white space (JSON lines, or one multi-line document), each
// an event object or an array of them. Any problem rejects the whole
// input: the error lists every problem found (up to 20), each an
// *InputError naming its line; after malformed JSON nothing further is
// read.
func (p *Parser) ParseJSON(data []byte) ([]Event, error) {
	vals, err := splitJSON(data)
	if err != nil {
		return nil, err
	}
	now := p.now()
	var errs problems
	events := make([]Event, 0, len(vals))
	for _, v := range vals {
		if err := notObject(v.raw); err != nil {
			errs.add(&InputError{Line: v.line, Element: v.elem, Err: err})
			continue
		}
		rec, err := avro.UnmarshalJSON(v.raw)
		if err != nil && hasKey(v.raw, "topic") && !hasKey(v.raw, "type") {
			err = fmt.Errorf("%w (it has a topic: is it a bus message? those are read by emit --message, or ?format=message)", err)
		}
		if err != nil {
			errs.add(&InputError{Line: v.line, Element: v.elem, Err: err})
			continue
		}
		if ev, ok := p.finish(rec, v.line, v.elem, now, strict, &errs); ok {
			events = append(events, ev)
		}
	}
	return p.result(events, &errs)
}

// ParseMessages parses bus messages: JSON values separated by white space
// (one message per line, or one multi-line document), or JSON arrays of
// them, each translated with internal/bus. defaultTopic is the topic of
// messages that carry none (a bare body). A message that does not parse
// or translate, including one with a topic internal/bus does not know,
// rejects the whole input, like a bad event in ParseJSON.
func (p *Parser) ParseMessages(data []byte, defaultTopic string) ([]Event, error) {
	vals, err := splitJSON(data)
	if err != nil {
		return nil, err
	}
	now := p.now()
	var errs problems
	var events []Event
	for _, v := range vals {
		if err := notObject(v.raw); err != nil {
			errs.add(&InputError{Line: v.line, Element: v.elem, Err: err})
			continue
		}
		m, err := bus.ParseMessage(v.raw, defaultTopic)
		if errors.Is(err, bus.ErrNoTopic) {
			err = errNoTopic
			if hasKey(v.raw, "type") && hasKey(v.raw, "source") {
				err = fmt.Errorf("%w (it has a type and a source: is it a factory2 event? those are read by emit --json, or ?format=json)", err)
			}
		}
		if err != nil {
			errs.add(&InputError{Line: v.line, Element: v.elem, Err: err})
			continue
		}
		recs, err := bus.Translate(m, now)
		if err != nil {
			errs.add(&InputError{Line: v.line, Element: v.elem, Err: err})
			continue
		}
		for _, rec := range recs {
			if ev, ok := p.finish(rec, v.line, v.elem, now, tolerant, &errs); ok {
				events = append(events, ev)
			}
		}
	}
	return p.result(events, &errs)
}

// Records fills defaults into, validates and routes records built from
// flags ([Kind.Build]). Errors name the flags (--nvr) rather than lines.
func (p *Parser) Records(recs ...avro.Record) ([]Event, error) {
	now := p.now()
	var errs problems
	var events []Event
	for _, rec := range recs {
		if ev, ok := p.finish(rec, 0, 0, now, strict, &errs); ok {
			events = append(events, ev)
		}
	}
	return p.result(events, &errs)
}

func (p *Parser) result(events []Event, errs *problems) ([]Event, error) {
	if err := errs.err(); err != nil {
		return nil, err
	}
	if len(events) == 0 {
		return nil, ErrNoEvents
	}
	return events, nil
}

// finish fills rec's envelope defaults, validates (as strictly as how
// says) and routes it. Problems go to errs.
func (p *Parser) finish(rec avro.Record, line, elem int, now time.Time, how strictness, errs *problems) (Event, bool) {
	typ := avro.TypeName(rec)
	alias, err := Alias(rec)
	if err != nil {
		errs.add(&InputError{Line: line, Element: elem, Type: typ, Err: err})
		return Event{}, false
	}
	env := rec.Env()
	if env.Source == "" {
		env.Source = p.Source
	}
	if env.EventTime.IsZero() && p.EventTimeNow {
		env.EventTime = now
	}
	fillFromNVR(rec)
	env.IngestTime = time.Time{}
	if env.ID == "" {
		id, err := ContentID(rec)
		if err != nil {
			errs.add(&InputError{Line: line, Element: elem, Type: typ, Err: err})
			return Event{}, false
		}
		env.ID = id
	}
	env.IngestTime = now
	fillFromID(rec)
	bad := false
	for _, pr := range validate(rec, how) {
		errs.add(&InputError{Line: line, Element: elem, Type: typ, Field: pr.field, Err: pr.err})
		bad = true
	}
	if bad {
		return Event{}, false
	}
	return Event{Record: rec, Topic: p.Catalog.Name(alias), Key: bus.Key(rec), Line: line, Element: elem}, true
}

// ContentID is the id ingest gives an event that has none: "sha256:" and
// the first 128 bits, in hex, of the SHA-256 of its canonical JSON
// (avro.MarshalJSON), in the form internal/bus gives messages without an
// id. The parser computes it with the event's id and ingest time empty;
// a caller that leaves other fields empty too (the event time of a
// compose definition) gets an id of the rest alone.
func ContentID(rec avro.Record) (string, error) {
	canon, err := avro.MarshalJSON(rec)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(canon)
	return "sha256:" + hex.EncodeToString(sum[:16]), nil
}

// Alias returns the alias of the input topic rec goes to; the error wraps
// ErrDecision for a decision and avro.ErrUnknownType for anything else
// that is not an event.
func Alias(rec avro.Record) (string, error) {
	switch rec.(type) {
	case *avro.BuildEvent:
		return topics.EventsBuild, nil
	case *avro.SignEvent:
		return topics.EventsSign, nil
	case *avro.TestResult, *avro.Waiver:
		return topics.EventsTest, nil
	case *avro.RemoteRuleFile:
		return topics.EventsPolicy, nil
	case *avro.ComposeEvent:
		return topics.EventsCompose, nil
	case *avro.DependencyEdge:
		return topics.EventsDeps, nil
	case *avro.GatingDecision, *avro.AutosignDecision, *avro.SignedStatus,
		*avro.ComposeReadyDecision, *avro.RebuildDecision:
		return "", ErrDecision
	}
	return "", fmt.Errorf("%w %T", avro.ErrUnknownType, rec)
}

// jsonValue is one top-level JSON value of the input, or one element of a
// top-level array.
type jsonValue struct {
	raw  json.RawMessage
	line int
	elem int
}

// splitJSON splits data into its top-level JSON values, expanding arrays
// into their elements, with the line each starts on. data must be valid
// UTF-8.
func splitJSON(data []byte) ([]jsonValue, error) {
	if off := invalidUTF8(data); off >= 0 {
		return nil, &InputError{Line: lineAt(data, off), Err: fmt.Errorf("%w at byte offset %d (0x%02x)", ErrInvalidUTF8, off, data[off])}
	}
	var out []jsonValue
	dec := json.NewDecoder(bytes.NewReader(data))
	for {
		start := skipSpace(data, int(dec.InputOffset()), false)
		var raw json.RawMessage
		err := dec.Decode(&raw)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, malformed(data, start, 0, err)
		}
		line := lineAt(data, start)
		if raw[0] != '[' {
			out = append(out, jsonValue{raw: raw, line: line})
			continue
		}
		elems, err := splitArray(raw)
		if err != nil { // cannot happen: Decode validated raw
			return nil, malformed(data, start, 0, err)
		}
		for i, e := range elems {
			out = append(out, jsonValue{raw: e.raw, line: lineAt(data, start+e.off), elem: i + 1})
		}
	}
}

type arrayElem struct {
	raw json.RawMessage
	off int // offset in the array's bytes
}

func splitArray(raw json.RawMessage) ([]arrayElem, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if _, err := dec.Token(); err != nil { // '['
		return nil, err
	}
	var out []arrayElem
	for dec.More() {
		off := skipSpace(raw, int(dec.InputOffset()), true)
		var e json.RawMessage
		if err := dec.Decode(&e); err != nil {
			return nil, err
		}
		out = append(out, arrayElem{raw: e, off: off})
	}
	return out, nil
}

// notObject says what raw, a valid JSON value, is when it is not an
// object: every event and every message is one.
func notObject(raw json.RawMessage) error {
	var what string
	switch raw[0] {
	case '{':
		return nil
	case '[':
		what = "an array inside an array"
	case '"':
		what = "a string"
	case 't', 'f':
		what = "a boolean"
	case 'n':
		what = "null"
	default:
		what = "a number"
	}
	return fmt.Errorf("%s (%s) where a JSON object is expected: each event or message is an object", excerpt(raw), what)
}

// hasKey reports whether the JSON object raw has the key.
func hasKey(raw json.RawMessage, key string) bool {
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return false
	}
	_, ok := m[key]
	return ok
}

// errNoTopic explains a bus message that names no topic when no default
// topic was given. It is still bus.ErrMalformed and bus.ErrNoTopic.
var errNoTopic error = noTopicError{}

type noTopicError struct{}

func (noTopicError) Error() string {
	return "no topic: a message without one (a bare body) needs the topic it was published on, " +
		"given with --topic (factory2 emit) or &topic= (POST /api/v1/events), e.g. --topic org.fedoraproject.prod.resultsdb.result.new"
}

func (noTopicError) Unwrap() []error { return []error{bus.ErrMalformed, bus.ErrNoTopic} }

// malformed reports input that is not JSON at all (a value that does not
// start as an object or an array would: text, a log line), or a JSON
// syntax error, at the line (and column) where it occurred.
func malformed(data []byte, start, elem int, err error) error {
	if start < len(data) && data[start] != '{' && data[start] != '[' {
		return &InputError{Line: lineAt(data, start), Element: elem, Err: fmt.Errorf(
			"not JSON: the line starts with %q; the input must be JSON objects (one per line, one document, or an array of them)",
			excerpt(data[start:]))}
	}
	at := start
	var se *json.SyntaxError
	if errors.As(err, &se) {
		at = int(se.Offset)
		if at > 0 {
			at-- // Offset is just past the bad byte
		}
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		err = errors.New("unexpected end of input (a { or [ is not closed)")
	}
	at = min(at, len(data))
	col := at - bytes.LastIndexByte(data[:at], '\n')
	return &InputError{Line: lineAt(data, at), Element: elem, Err: fmt.Errorf("malformed JSON at column %d: %w", col, err)}
}

// excerpt is the start of b's first line, at most 40 bytes (cut at a
// character boundary).
func excerpt(b []byte) string {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[:i]
	}
	b = bytes.TrimRight(b, "\r")
	if len(b) <= 40 {
		return string(b)
	}
	n := 40
	for n > 0 && !utf8.RuneStart(b[n]) {
		n--
	}
	return string(b[:n]) + "…"
}

// skipSpace returns the offset of the first byte at or after off that is
// not JSON white space (nor, with comma, an array separator).
func skipSpace(data []byte, off int, comma bool) int {
	for ; off < len(data); off++ {
		switch c := data[off]; {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
		case c == ',' && comma:
		default:
			return off
		}
	}
	return off
}

// lineAt is the 1-based line of data's byte at off.
func lineAt(data []byte, off int) int {
	off = min(off, len(data))
	return 1 + bytes.Count(data[:off], []byte{'\n'})
}

// invalidUTF8 returns the offset of the first byte of data that is not
// part of valid UTF-8, or -1 when data is valid.
func invalidUTF8(data []byte) int {
	if utf8.Valid(data) {
		return -1
	}
	for off := 0; off < len(data); {
		r, n := utf8.DecodeRune(data[off:])
		if r == utf8.RuneError && n == 1 {
			return off
		}
		off += n
	}
	return -1 // unreachable: utf8.Valid said otherwise
}
