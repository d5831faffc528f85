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
		builds:   cat.Name(topics.GatingBuilds),
	}
	return processors.Spec{
		Name: Name,
		Inputs: []string{
			cat.Name(topics.EventsBuild),
			cat.Name(topics.EventsSign),
			cat.Name(topics.EventsTest),
			cat.Name(topics.EventsPolicy),
		},
		Outputs: []string{p.gating, p.autosign, p.signed, p.builds},
		Stores:  []string{StoreSubjects},
		New:     func(int32) processors.Processor { return p },
		// Punctuation re-evaluates the stored subjects, in chunks, after
		// the policies or signing rules changed; otherwise it is two Gets.
		PunctuateEvery: time.Second,
	}
}

// Processor applies each event to its subject's state and emits the
// decisions that changed. It keeps nothing between records (the state is
// in the store), so one value serves every task, on several processing
// threads at once: it must hold no mutable state, scratch buffers
// included (TestProcessorServesConcurrentTasks).
type Processor struct {
	engine                           *Engine
	gating, autosign, signed, builds string
}

// Process implements processors.Processor. Records gating has no use for,
// records that lack what gating needs, records whose key is not their
// subject (which would break co-partitioning), gating.yaml files over
// WithMaxPolicyFileBytes and records that would grow their subject's
// state over WithMaxSubjectBytes are rejected to the dead-letter topic; a
// stored state that does not decode is fatal.
//
// The size of a subject is checked cheaply: the cached subject carries an
// estimate from above of its encoding, and only an estimate near the
// maximum makes Process apply the record to a copy and measure it.
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
	if f, ok := in.Record.(*avro.RemoteRuleFile); ok && len(f.Content) > p.engine.maxPolicyFileBytes {
		return processors.Reject("gating: remote rule file %s of %s is %d bytes, over the limit of %d bytes for a policy file",
			f.Path, f.SubjectID, len(f.Content), p.engine.maxPolicyFileBytes)
	}
	cs, err := p.subject(c, in.Key)
	if err != nil {
		return err
	}
	grow := applyBound(in.Record)
	if cs.size+grow > p.engine.subjectCheckBytes() {
		return p.applyChecked(c, in, cs)
	}
	// Apply validates a record before it changes anything, so a rejected
	// record leaves the cached subject as it was.
	changed, err := cs.s.Apply(in.Record)
	if err != nil || !changed {
		return applyError(err) // !changed: a duplicate, or an older fact than the state holds
	}
	cs.size += grow
	outs, view := p.decisions(in.Key, cs, cs.s, in.Record.Env())
	p.emit(c, cs, outs, view)
	return nil
}

// applyError turns an error of Subject.Apply about the record into a
// rejection.
func applyError(err error) error {
	if errors.Is(err, ErrUnsupportedRecord) || errors.Is(err, ErrInvalidRecord) || errors.Is(err, ErrSubjectMismatch) {
		return processors.Reject("%v", err)
	}
	return err
}

// applyChecked applies in to a copy of the cached subject and keeps the
// copy only if its encoding, decisions included, stays within the
// engine's maximum (or does not grow): the exact check that Process makes
// when the estimate of the subject's size nears the maximum. A rejected
// record leaves the subject as it was and emits nothing.
func (p *Processor) applyChecked(c *processors.Context, in *processors.Input, cs *cachedSubject) error {
	before, err := cs.s.MarshalBinary()
	if err != nil {
		return fmt.Errorf("gating: encoding subject %s: %w", in.Key, err)
	}
	cs.size = len(before)
	s := &Subject{}
	if err := s.UnmarshalBinary(before); err != nil {
		return fmt.Errorf("gating: copying subject %s: %w", in.Key, err)
	}
	changed, err := s.Apply(in.Record)
	if err != nil || !changed {
		return applyError(err)
	}
	outs, view := p.decisions(in.Key, cs, s, in.Record.Env())
	after, err := s.MarshalBinary()
	if err != nil {
		return fmt.Errorf("gating: encoding subject %s: %w", in.Key, err)
	}
	if max := p.engine.maxSubjectBytes; len(after) > max && len(after) > len(before) {
		return processors.Reject("gating: subject %s would take %d bytes with this record, over the limit of %d bytes per subject; it keeps its %d bytes",
			in.Key, len(after), max, len(before))
	}
	cs.s, cs.size = s, len(after)
	p.emit(c, cs, outs, view)
	return nil
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

// decisions returns the decisions of s (the subject of key, cs or the copy
// of it that will replace it) that changed after trigger, and the build
// view when it changed; it records them in s. view is s's build view
// fingerprint, for emit.
func (p *Processor) decisions(key []byte, cs *cachedSubject, s *Subject, trigger *avro.Envelope) (outs []processors.Output, view uint64) {
	for _, d := range p.engine.Gating(s, trigger) {
		outs = append(outs, processors.Output{Topic: p.gating, Key: key, Record: d})
	}
	for _, r := range p.engine.Autosign(s, trigger) {
		topic := p.autosign
		if _, ok := r.(*avro.SignedStatus); ok {
			topic = p.signed
		}
		outs = append(outs, processors.Output{Topic: topic, Key: key, Record: r})
	}
	view = viewFingerprint(s)
	if view != cs.view {
		if v := p.engine.buildView(s, trigger); v != nil {
			outs = append(outs, processors.Output{Topic: p.builds, Key: key, Record: v})
		}
	}
	return outs, view
}

// emit emits outs, decisions of the cached subject cs whose build view
// fingerprints to view, and marks cs to be stored when the transaction
// commits (Flush).
func (p *Processor) emit(c *processors.Context, cs *cachedSubject, outs []processors.Output, view uint64) {
	for _, o := range outs {
		c.Emit(o.Topic, o.Key, o.Record)
		if o.Topic != p.builds {
			cs.size += recordBound(o.Record)
		}
	}
	cs.view, cs.dirty = view, true
}

// cachedSubject is a subject decoded once per transaction.
type cachedSubject struct {
	s     *Subject
	dirty bool
	// size estimates the length of s's encoding from above: exact when
	// s was decoded or encoded, then grown by a bound of what each
	// applied record and emitted decision adds (see applyBound).
	size int
	// view fingerprints the build view last emitted (viewFingerprint):
	// the stored state's, as every change of it is emitted.
	view uint64
}

// subject returns the subject of key, decoded from the state on first use
// in the transaction and kept in its cache after: a build's events mostly
// arrive together, so one decode and one encode serve them all.
func (p *Processor) subject(c *processors.Context, key []byte) (*cachedSubject, error) {
	cache := c.TxnCache()
	if cs, ok := cache[string(key)].(*cachedSubject); ok {
		return cs, nil
	}
	s, err := LoadSubject(c, key)
	if err != nil {
		return nil, err
	}
	cs := &cachedSubject{s: s, size: s.encodedSize, view: viewFingerprint(s)}
	cache[string(key)] = cs
	return cs, nil
}

// Flush implements processors.Flusher: it stores the subjects the
// transaction changed.
func (p *Processor) Flush(c *processors.Context) error {
	var k, b []byte // reused: Put copies
	for key, v := range c.TxnCache() {
		cs, ok := v.(*cachedSubject)
		if !ok || !cs.dirty {
			continue
		}
		var err error
		b, err = cs.s.AppendBinary(b[:0])
		if err != nil {
			return fmt.Errorf("gating: encoding subject %s: %w", key, err)
		}
		k = append(k[:0], key...)
		if err := c.Put(StoreSubjects, k, b); err != nil {
			return err
		}
		cs.dirty, cs.size = false, len(b)
	}
	return nil
}

// Getter reads a stored value; *processors.Context and a Runner (through
// a closure) are getters.
type Getter interface {
	Get(store string, key []byte) ([]byte, bool, error)
}

// stringGetter reads a stored value as a string (*processors.Context):
// the decoded subject shares it, where a []byte must be copied first.
type stringGetter interface {
	GetString(store string, key []byte) (string, bool, error)
}

// LoadSubject reads the subject stored under key, or a new one.
func LoadSubject(g Getter, key []byte) (*Subject, error) {
	s := &Subject{}
	if sg, ok := g.(stringGetter); ok {
		v, ok, err := sg.GetString(StoreSubjects, key)
		if err != nil {
			return nil, err
		}
		if ok {
			if err := s.unmarshal(v); err != nil {
				return nil, fmt.Errorf("gating: subject %s: %w", key, err)
			}
		}
		return s, nil
	}
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
