package gating

import (
	"errors"
	"testing"

	"github.com/factory2/factory2/avro"
)

// ValidateState accepts what the processor stores and refuses anything
// else a changelog could hold.
func TestValidateState(t *testing.T) {
	e := mustEngine(t, f41Policies)
	p := &Processor{engine: e}
	h := newHarness(t, f41Policies, nil)
	h.apply(build(avro.StateComplete, 0, subj(f41NVR)), result("dist.rpmdeplint", "PASSED", 1, subj(f41NVR)))
	subject := h.stored
	cursor := (&reevaluation{version: e.Version(), start: at(5), after: []byte(f41NVR)}).marshal()
	first := (&reevaluation{version: e.Version(), start: at(5)}).marshal()

	for _, tc := range []struct {
		name       string
		store, key string
		value      []byte
		ok         bool
	}{
		{"subject", StoreSubjects, f41NVR, subject, true},
		{"engine version", StoreSubjects, string(engineVersionKey), []byte(e.Version()), true},
		{"cursor", StoreSubjects, string(reevaluationKey), cursor, true},
		{"cursor before the first chunk", StoreSubjects, string(reevaluationKey), first, true},

		{"garbage", StoreSubjects, f41NVR, []byte("\x01\xff\xff\xff garbage"), false},
		{"empty", StoreSubjects, f41NVR, nil, false},
		{"unknown format", StoreSubjects, f41NVR, append([]byte{9}, subject[1:]...), false},
		{"truncated", StoreSubjects, f41NVR, subject[:len(subject)-3], false},
		{"trailing bytes", StoreSubjects, f41NVR, append(subject[:len(subject):len(subject)], 0), false},
		{"subject under another key", StoreSubjects, "other-1.0-1.fc41", subject, false},
		{"another store", "counts", f41NVR, subject, false},
		{"unknown metadata key", StoreSubjects, "\x00other", []byte(e.Version()), false},
		{"empty key", StoreSubjects, "", subject, false},
		{"engine version garbage", StoreSubjects, string(engineVersionKey), []byte("not a version"), false},
		{"engine version empty", StoreSubjects, string(engineVersionKey), nil, false},
		{"subject under the engine version key", StoreSubjects, string(engineVersionKey), subject, false},
		{"cursor truncated", StoreSubjects, string(reevaluationKey), cursor[:len(cursor)-2], false},
		{"cursor garbage", StoreSubjects, string(reevaluationKey), []byte("\x01garbage"), false},
		{"cursor without start", StoreSubjects, string(reevaluationKey), (&reevaluation{version: e.Version()}).marshal(), false},
		{"cursor after a metadata key", StoreSubjects, string(reevaluationKey),
			(&reevaluation{version: e.Version(), start: at(5), after: engineVersionKey}).marshal(), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := p.ValidateState(tc.store, []byte(tc.key), tc.value)
			if tc.ok != (err == nil) {
				t.Fatalf("ValidateState: %v, want ok %v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrCorruptState) {
				t.Fatalf("error %v does not wrap ErrCorruptState", err)
			}
		})
	}
}
