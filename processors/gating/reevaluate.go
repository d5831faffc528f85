package gating

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"github.com/factory2/factory2/avro"
	"github.com/factory2/factory2/processors"
)

// The subjects store's metadata keys. No subject identifier starts with a
// NUL byte (Process rejects such keys), so they sort before every subject.
var (
	// engineVersionKey holds the version of the engine the task's
	// decisions were last computed with, written when a re-evaluation
	// under that engine is complete.
	engineVersionKey = []byte("\x00engine-version")
	// reevaluationKey holds the cursor of the re-evaluation in progress
	// (see reevaluation), and is deleted when it is complete.
	reevaluationKey = []byte("\x00reevaluation")
)

// DefaultReevaluationChunk is the number of stored subjects one
// punctuation re-evaluates, by default, after the engine changed.
const DefaultReevaluationChunk = 1000

// Punctuate implements processors.Punctuator: when a task runs with an
// engine (policies, signing rules, options) other than the one its
// decisions were computed with, it re-evaluates every subject it holds
// and emits the decisions that changed, so that a policy change reaches
// subjects that receive no new event.
//
// A re-evaluation goes through the subjects in key order, a chunk of
// WithReevaluationChunk subjects per call, and returns more = true until
// the last chunk; its cursor (engine version, start time, last key done)
// is state, committed with each chunk's decisions, so a restart resumes
// after the last committed chunk. Every chunk's decisions are triggered by
// the same engine trigger, whose event time is the wall-clock time the
// re-evaluation started: no input event is behind them. A change of the
// engine midway restarts from the first subject under the new engine.
//
// Subjects already decided with the engine emit nothing: Gating skips a
// subject whose inputs (the engine version among them) are unchanged, so a
// subject that received an event during the re-evaluation, or a chunk
// redone after an aborted transaction, is decided exactly once.
func (p *Processor) Punctuate(c *processors.Context, now time.Time) (more bool, err error) {
	more, err = p.reevaluateChunk(c, now)
	if err != nil {
		return false, fmt.Errorf("gating: re-evaluating subjects: %w", err)
	}
	return more, nil
}

// reevaluateChunk does one chunk of the pending re-evaluation, if any.
func (p *Processor) reevaluateChunk(c *processors.Context, now time.Time) (more bool, err error) {
	r, err := p.pendingReevaluation(c, now)
	if err != nil || r == nil {
		return false, err
	}
	keys, more, err := nextSubjects(c, r.after, p.engine.reevalChunk)
	if err != nil {
		return false, err
	}
	trigger := r.trigger()
	for _, k := range keys {
		if err := p.reevaluate(c, k, trigger); err != nil {
			return false, err
		}
	}
	if more {
		r.after = keys[len(keys)-1]
		return true, c.Put(StoreSubjects, reevaluationKey, r.marshal())
	}
	if r.stored {
		if err := c.Delete(StoreSubjects, reevaluationKey); err != nil {
			return false, err
		}
	}
	return false, c.Put(StoreSubjects, engineVersionKey, []byte(r.version))
}

// pendingReevaluation returns the re-evaluation to continue: the stored
// one if it applies this engine; a new one starting at now if the task's
// decisions were computed with another engine, or a re-evaluation under
// another engine was cut short; nil if the task is up to date.
func (p *Processor) pendingReevaluation(c *processors.Context, now time.Time) (*reevaluation, error) {
	version := p.engine.Version()
	raw, inProgress, err := c.Get(StoreSubjects, reevaluationKey)
	if err != nil {
		return nil, err
	}
	if inProgress {
		var r reevaluation
		// A cursor that does not decode (a restore quarantines such
		// values; see ValidateState) is dropped: starting over is
		// always correct, only slower.
		if r.unmarshal(raw) == nil && r.version == version {
			r.stored = true
			return &r, nil
		}
	} else {
		v, ok, err := c.Get(StoreSubjects, engineVersionKey)
		if err != nil {
			return nil, err
		}
		if ok && string(v) == version {
			return nil, nil
		}
	}
	return &reevaluation{version: version, start: now.UTC().Truncate(time.Microsecond), stored: inProgress}, nil
}

// errChunkFull stops the scan of nextSubjects.
var errChunkFull = errors.New("gating: chunk full")

// nextSubjects returns up to n subject keys after the key after (from the
// first subject when after is nil), in key order, and whether more follow.
func nextSubjects(c *processors.Context, after []byte, n int) (keys [][]byte, more bool, err error) {
	lower := []byte{1} // after the metadata keys
	if after != nil {
		lower = append(bytes.Clone(after), 0) // the least key greater than after
	}
	err = c.Scan(StoreSubjects, lower, nil, func(k, _ []byte) error {
		if len(keys) == n {
			more = true
			return errChunkFull
		}
		keys = append(keys, bytes.Clone(k))
		return nil
	})
	if errors.Is(err, errChunkFull) {
		err = nil
	}
	return keys, more, err
}

func (p *Processor) reevaluate(c *processors.Context, key []byte, trigger *avro.Envelope) error {
	cs, err := p.subject(c, key)
	if err != nil {
		return err
	}
	if cs.s.GatingInput == p.engine.gatingInput(cs.s) {
		// Already decided with this engine (a restart, or a subject
		// that arrived since the engine changed): nothing to write, so
		// no changelog record either. Autosign depends only on state
		// gating's fingerprint covers or on tags and signatures, which
		// were decided when they arrived.
		return nil
	}
	// Decisions are not refused for size: the bound is kept by refusing
	// events (see Process).
	outs, view := p.decisions(key, cs, cs.s, trigger)
	p.emit(c, cs, outs, view)
	return nil
}

// reevaluation is the cursor of a re-evaluation in progress, stored under
// reevaluationKey.
type reevaluation struct {
	// version is the engine version being applied.
	version string
	// start is when the re-evaluation started: the event time of its
	// trigger, shared by all its chunks.
	start time.Time
	// after is the last subject key done; nil before the first chunk.
	after []byte
	// stored is true when the cursor is in the state (not marshalled).
	stored bool
}

// reevaluationFormat is the first byte of an encoded reevaluation.
const reevaluationFormat byte = 1

// trigger is the envelope the re-evaluation's decisions derive from.
func (r *reevaluation) trigger() *avro.Envelope {
	return &avro.Envelope{
		ID:         "engine/" + r.version,
		Source:     SourceGating,
		EventTime:  r.start,
		IngestTime: r.start,
	}
}

func (r *reevaluation) marshal() []byte {
	b := []byte{reevaluationFormat}
	b = appendStr(b, r.version)
	b = appendTime(b, r.start)
	return appendStr(b, string(r.after))
}

// unmarshal decodes what marshal encoded; anything else is an error
// wrapping ErrCorruptState.
func (r *reevaluation) unmarshal(data []byte) error {
	if len(data) == 0 || data[0] != reevaluationFormat {
		return fmt.Errorf("%w: re-evaluation cursor: unknown format", ErrCorruptState)
	}
	d := decoder{s: string(data), off: 1}
	n := reevaluation{version: d.str(), start: d.time()}
	if after := d.str(); after != "" {
		n.after = []byte(after)
	}
	switch {
	case d.err != nil:
		return fmt.Errorf("re-evaluation cursor: %w", d.err)
	case d.off != len(d.s):
		return fmt.Errorf("%w: re-evaluation cursor: trailing bytes", ErrCorruptState)
	case !validEngineVersion(n.version) || n.start.IsZero():
		return fmt.Errorf("%w: re-evaluation cursor without an engine version or a start time", ErrCorruptState)
	case n.after != nil && n.after[0] == 0:
		return fmt.Errorf("%w: re-evaluation cursor after a key that is not a subject", ErrCorruptState)
	}
	*r = n
	return nil
}
