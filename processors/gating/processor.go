package gating

import (
	"errors"
	"fmt"
	"time"

	"github.com/factory2/factory2/avro"
	"github.com/factory2/factory2/processors"
	"github.com/factory2/factory2/topics"
)

// Name is the processor's name: its consumer group, transactional id,
// changelog and state directory derive from it.
const Name = "gating"

// StoreSubjects holds one Subject per subject identifier.
const StoreSubjects = "subjects"

// Spec returns the runtime spec of the gating and autosign processor: it
// consumes everything about subjects (builds, signatures, results,
// waivers, gating.yaml files), keyed by subject identifier, and emits
// gating decision updates, autosign decisions and signed statuses.
func Spec(cat *topics.Catalog, e *Engine) processors.Spec {
	p := &Processor{
		engine:   e,
		gating:   cat.Name(topics.DecisionsGating),
		autosign: cat.Name(topics.DecisionsAutosign),
		signed:   cat.Name(topics.DecisionsSigned),
	}
	return processors.Spec{
		Name: Name,
		Inputs: []string{
			cat.Name(topics.EventsBuild),
			cat.Name(topics.EventsSign),
			cat.Name(topics.EventsTest),
			cat.Name(topics.EventsPolicy),
		},
		Outputs: []string{p.gating, p.autosign, p.signed},
		Stores:  []string{StoreSubjects},
		New:     func(int32) processors.Processor { return p },
		// Punctuation re-evaluates the stored subjects, in chunks, after
		// the policies or signing rules changed; otherwise it is two Gets.
		PunctuateEvery: time.Second,
	}
}

// Processor applies each event to its subject's state and emits the
// decisions that changed. It keeps nothing between records (the state is
// in the store), so one value serves every task.
type Processor struct {
	engine                   *Engine
	gating, autosign, signed string
}

// Process implements processors.Processor. Records gating has no use for,
// records that lack what gating needs, and records whose key is not their
// subject (which would break co-partitioning) are rejected to the
// dead-letter topic; a stored state that does not decode is fatal.
func (p *Processor) Process(c *processors.Context, in *processors.Input) error {
	if len(in.Key) == 0 || in.Key[0] == 0 {
		return processors.Reject("gating: record key %q is not a subject identifier", in.Key)
	}
	// Checked before the state is read: a record stored under another
	// key than its subject would sit in the wrong partition's state, out
	// of reach of the subject's other events and of queries.
	if id, ok := subjectOf(in.Record); ok && id != "" && id != string(in.Key) {
		return processors.Reject("gating: record key %q is not the record's subject %q", in.Key, id)
	}
	s, err := p.subject(c, in.Key)
	if err != nil {
		return err
	}
	// Apply validates a record before it changes anything, so a rejected
	// record leaves the cached subject as it was.
	changed, err := s.Apply(in.Record)
	switch {
	case errors.Is(err, ErrUnsupportedRecord), errors.Is(err, ErrInvalidRecord), errors.Is(err, ErrSubjectMismatch):
		return processors.Reject("%v", err)
	case err != nil:
		return err
	case !changed:
		return nil // a duplicate, or an older fact than the state holds
	}
	return p.decide(c, in.Key, s, in.Record.Env())
}

// subjectOf returns the subject identifier a gating input is about; ok is
// false for records that are not gating inputs (Apply rejects those).
func subjectOf(r avro.Record) (id string, ok bool) {
	switch e := r.(type) {
	case *avro.BuildEvent:
		return e.NVR, true
	case *avro.SignEvent:
		return e.NVR, true
	case *avro.TestResult:
		return e.SubjectID, true
	case *avro.Waiver:
		return e.SubjectID, true
	case *avro.RemoteRuleFile:
		return e.SubjectID, true
	}
	return "", false
}

// decide emits the decisions of s that changed after trigger, and marks s
// to be stored when the transaction commits (Flush).
func (p *Processor) decide(c *processors.Context, key []byte, s *Subject, trigger *avro.Envelope) error {
	for _, d := range p.engine.Gating(s, trigger) {
		c.Emit(p.gating, key, d)
	}
	for _, r := range p.engine.Autosign(s, trigger) {
		switch r.(type) {
		case *avro.SignedStatus:
			c.Emit(p.signed, key, r)
		default:
			c.Emit(p.autosign, key, r)
		}
	}
	c.TxnCache()[string(key)].(*cachedSubject).dirty = true
	return nil
}

// cachedSubject is a subject decoded once per transaction.
type cachedSubject struct {
	s     *Subject
	dirty bool
}

// subject returns the subject of key, decoded from the state on first use
// in the transaction and kept in its cache after: a build's events mostly
// arrive together, so one decode and one encode serve them all.
func (p *Processor) subject(c *processors.Context, key []byte) (*Subject, error) {
	cache := c.TxnCache()
	if cs, ok := cache[string(key)].(*cachedSubject); ok {
		return cs.s, nil
	}
	s, err := LoadSubject(c, key)
	if err != nil {
		return nil, err
	}
	cache[string(key)] = &cachedSubject{s: s}
	return s, nil
}

// Flush implements processors.Flusher: it stores the subjects the
// transaction changed.
func (p *Processor) Flush(c *processors.Context) error {
	for key, v := range c.TxnCache() {
		cs, ok := v.(*cachedSubject)
		if !ok || !cs.dirty {
			continue
		}
		b, err := cs.s.MarshalBinary()
		if err != nil {
			return fmt.Errorf("gating: encoding subject %s: %w", key, err)
		}
		if err := c.Put(StoreSubjects, []byte(key), b); err != nil {
			return err
		}
		cs.dirty = false
	}
	return nil
}

// Getter reads a stored value; *processors.Context and a Runner (through
// a closure) are getters.
type Getter interface {
	Get(store string, key []byte) ([]byte, bool, error)
}

// LoadSubject reads the subject stored under key, or a new one.
func LoadSubject(g Getter, key []byte) (*Subject, error) {
	s := &Subject{}
	v, ok, err := g.Get(StoreSubjects, key)
	if err != nil {
		return nil, err
	}
	if ok {
		if err := s.UnmarshalBinary(v); err != nil {
			return nil, fmt.Errorf("gating: subject %s: %w", key, err)
		}
	}
	return s, nil
}
