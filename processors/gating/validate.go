package gating

import (
	"bytes"
	"fmt"

	"github.com/factory2/factory2/processors"
)

var _ processors.StateValidator = (*Processor)(nil)

// ValidateState implements processors.StateValidator; a restore calls it
// on every changelog value and quarantines those it refuses. A value
// under a subject key must decode as a Subject whose identifier is the
// key; a metadata key (NUL-prefixed) must be one this processor writes,
// holding what it writes there. The error wraps ErrCorruptState. It reads
// nothing but its arguments and is safe for concurrent use.
func (p *Processor) ValidateState(store string, key, value []byte) error {
	if store != StoreSubjects {
		return fmt.Errorf("%w: gating has no store %q", ErrCorruptState, store)
	}
	switch {
	case bytes.Equal(key, engineVersionKey):
		if !validEngineVersion(string(value)) {
			return fmt.Errorf("%w: engine version %q", ErrCorruptState, value)
		}
		return nil
	case bytes.Equal(key, reevaluationKey):
		var r reevaluation
		return r.unmarshal(value)
	case len(key) == 0 || key[0] == 0:
		return fmt.Errorf("%w: unknown metadata key %q", ErrCorruptState, key)
	}
	var s Subject
	if err := s.UnmarshalBinary(value); err != nil {
		return fmt.Errorf("gating: subject %s: %w", key, err)
	}
	if s.ID != string(key) {
		return fmt.Errorf("%w: subject %q stored under key %q", ErrCorruptState, s.ID, key)
	}
	return nil
}

// validEngineVersion reports whether v has the form of Engine.Version: 16
// lower-case hex digits.
func validEngineVersion(v string) bool {
	if len(v) != 16 {
		return false
	}
	for _, c := range []byte(v) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
