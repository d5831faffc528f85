package avro

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestJSONRoundTrip(t *testing.T) {
	for name, r := range goldenCases() {
		b, err := MarshalJSON(r)
		if err != nil {
			t.Fatal(err)
		}
		if want := `{"type":"` + TypeName(r) + `"`; !bytes.HasPrefix(b, []byte(want)) {
			t.Fatalf("%s: %s does not start with %s", name, b, want)
		}
		got, err := UnmarshalJSON(b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		mustEqual(t, name, got, r)
	}
	// Random records too (times are UTC, so they compare equal).
	rng := rand.New(rand.NewPCG(7, 7))
	for _, rt := range builtin.types {
		for range 50 {
			r := randomRecord(rng, rt)
			b, err := MarshalJSON(r)
			if err != nil {
				t.Fatal(err)
			}
			got, err := UnmarshalJSON(b)
			if err != nil {
				t.Fatal(err)
			}
			mustEqual(t, rt.typeName, got, r)
		}
	}
}

func TestJSONErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"type":"nope"}`, `unknown record type "nope"`},
		{`{"nvr":"x"}`, `no "type"`},
		{`{"type":3}`, `"type" must be a string`},
		{`{"type":"build","nvr":"x","color":"red"}`, `unknown field "color"`},
		{`{"type":"waiver","envelope":{}}`, `unknown field "envelope"`},
		{`{"type":"build","build_id":"x"}`, `build_id`},
		{`[1]`, `JSON record`},
		{`{"type":"build"} x`, `JSON record`},
	} {
		_, err := UnmarshalJSON([]byte(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "avro: ") {
			t.Errorf("UnmarshalJSON(%s) = %v, want an error containing %q", tc.in, err, tc.want)
		}
	}
	if _, err := MarshalJSON(&foreignRecord{}); !errors.Is(err, ErrUnknownType) {
		t.Errorf("MarshalJSON(foreign): %v", err)
	}
}

func TestTypeNames(t *testing.T) {
	want := []string{"build", "sign", "test_result", "waiver", "remote_rule_file", "compose",
		"gating_decision", "autosign", "signed_status", "compose_ready", "rebuild", "compose_member", "dependency_edge"}
	for _, name := range want {
		r, err := NewRecord(name)
		if err != nil {
			t.Fatal(err)
		}
		if got := TypeName(r); got != name {
			t.Errorf("TypeName(NewRecord(%q)) = %q", name, got)
		}
		if si, err := Schema(name); err != nil || si.Name != r.SchemaName() {
			t.Errorf("Schema(%q) = %v, %v", name, si.Name, err)
		}
	}
	if len(want) != len(builtin.types) {
		t.Errorf("%d type names, %d types", len(want), len(builtin.types))
	}
	if _, err := NewRecord("BuildEvent"); !errors.Is(err, ErrUnknownType) {
		t.Errorf("NewRecord(BuildEvent): %v", err)
	}
	if TypeName(&foreignRecord{}) != "" || TypeName(nil) != "" {
		t.Error("TypeName of a foreign record")
	}
}
