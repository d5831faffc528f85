package gating

import (
	"errors"
	"fmt"

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
	if len(in.Key) == 0 {
		return processors.Reject("gating: record has no key (want the subject identifier)")
	}
	s, err := LoadSubject(c, in.Key)
	if err != nil {
		return err
	}
	changed, err := s.Apply(in.Record)
	switch {
	case errors.Is(err, ErrUnsupportedRecord), errors.Is(err, ErrInvalidRecord), errors.Is(err, ErrSubjectMismatch):
		return processors.Reject("%v", err)
	case err != nil:
		return err
	case !changed:
		return nil // a duplicate, or an older fact than the state holds
	}
	env := in.Record.Env()
	for _, d := range p.engine.Gating(s, env) {
		c.Emit(p.gating, in.Key, d)
	}
	for _, r := range p.engine.Autosign(s, env) {
		switch r.(type) {
		case *avro.SignedStatus:
			c.Emit(p.signed, in.Key, r)
		default:
			c.Emit(p.autosign, in.Key, r)
		}
	}
	b, err := s.MarshalBinary()
	if err != nil {
		return fmt.Errorf("gating: encoding subject %s: %w", in.Key, err)
	}
	return c.Put(StoreSubjects, in.Key, b)
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
