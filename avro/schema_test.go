package avro

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// TestResolutionPrimitives checks every same-type pair and every promotion
// against goavro: write with the writer schema, resolve, read with the
// reader schema.
func TestResolutionPrimitives(t *testing.T) {
	for _, tc := range []struct {
		w, r    string
		in, out any
	}{
		{`"null"`, `"null"`, nil, nil},
		{`"boolean"`, `"boolean"`, true, true},
		{`"int"`, `"int"`, int32(-7), int32(-7)},
		{`"int"`, `"long"`, int32(-7), int64(-7)},
		{`"int"`, `"float"`, int32(3), float32(3)},
		{`"int"`, `"double"`, int32(3), float64(3)},
		{`"long"`, `"long"`, int64(1) << 40, int64(1) << 40},
		{`"long"`, `"float"`, int64(5), float32(5)},
		{`"long"`, `"double"`, int64(1) << 40, float64(1 << 40)},
		{`"float"`, `"float"`, float32(1.25), float32(1.25)},
		{`"float"`, `"double"`, float32(1.25), float64(1.25)},
		{`"double"`, `"double"`, 2.5, 2.5},
		{`"string"`, `"string"`, "héllo", "héllo"},
		{`"string"`, `"bytes"`, "hi", []byte("hi")},
		{`"bytes"`, `"string"`, []byte("hi"), "hi"},
		{`"bytes"`, `"bytes"`, []byte{0, 255}, []byte{0, 255}},
		{`{"type":"fixed","name":"F","size":3}`, `{"type":"fixed","name":"F","size":3}`, []byte{1, 2, 3}, []byte{1, 2, 3}},
		{`{"type":"fixed","name":"a.F","size":2}`, `{"type":"fixed","name":"b.G","aliases":["F"],"size":2}`, []byte{1, 2}, []byte{1, 2}},
		{`{"type":"map","values":"float"}`, `{"type":"map","values":"double"}`, map[string]any{"k": float32(2)}, map[string]any{"k": float64(2)}},
		{`"int"`, `["null","string","double"]`, int32(4), map[string]any{"double": float64(4)}},
		{`["int","string"]`, `"double"`, map[string]any{"int": int32(4)}, float64(4)},
		{`{"type":"enum","name":"E","symbols":["A","B"]}`, `{"type":"enum","name":"E","symbols":["B","A"]}`, "A", "A"},
	} {
		t.Run(tc.w+"→"+tc.r, func(t *testing.T) {
			ws, err := parseSchema(tc.w)
			if err != nil {
				t.Fatal(err)
			}
			rs, err := parseSchema(tc.r)
			if err != nil {
				t.Fatal(err)
			}
			conv, err := resolution(ws, rs)
			if err != nil {
				t.Fatal(err)
			}
			body, err := goavroCodec(t, tc.w).BinaryFromNative(nil, tc.in)
			if err != nil {
				t.Fatal(err)
			}
			out, err := transcode(conv, body)
			if err != nil {
				t.Fatal(err)
			}
			got, rest, err := goavroCodec(t, tc.r).NativeFromBinary(out)
			if err != nil || len(rest) > 0 {
				t.Fatalf("reader data: %v, %d left", err, len(rest))
			}
			if !reflect.DeepEqual(got, tc.out) {
				t.Fatalf("got %#v, want %#v", got, tc.out)
			}
		})
	}
}

func TestResolutionIncompatible(t *testing.T) {
	for _, tc := range []struct{ w, r string }{
		{`"long"`, `"int"`},
		{`"double"`, `"float"`},
		{`"string"`, `"int"`},
		{`{"type":"fixed","name":"F","size":3}`, `{"type":"fixed","name":"F","size":4}`},
		{`{"type":"record","name":"A","fields":[]}`, `{"type":"record","name":"B","fields":[]}`},
		{`{"type":"enum","name":"A","symbols":["X"]}`, `{"type":"enum","name":"B","symbols":["X"]}`},
		{`"int"`, `["null","string"]`},
		{`["boolean","null"]`, `"string"`},
		{`{"type":"array","items":"long"}`, `{"type":"array","items":"int"}`},
		{`{"type":"record","name":"A","fields":[{"name":"a","type":"int"},{"name":"b","type":"int"}]}`,
			`{"type":"record","name":"A","fields":[{"name":"c","aliases":["a","b"],"type":"int"}]}`},
	} {
		ws, err := parseSchema(tc.w)
		if err != nil {
			t.Fatal(err)
		}
		rs, err := parseSchema(tc.r)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := resolution(ws, rs); !errors.Is(err, ErrIncompatible) {
			t.Errorf("%s → %s: %v", tc.w, tc.r, err)
		}
	}

	// Data errors found only at run time.
	w, _ := parseSchema(`{"type":"enum","name":"E","symbols":["A","B"]}`)
	r, _ := parseSchema(`{"type":"enum","name":"E","symbols":["A"]}`)
	conv, err := resolution(w, r)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := transcode(conv, []byte{2}); !errors.Is(err, ErrIncompatible) { // symbol B
		t.Errorf("unknown enum symbol: %v", err)
	}
	if _, err := transcode(conv, []byte{8}); !errors.Is(err, ErrInvalid) { // index 4
		t.Errorf("bad enum index: %v", err)
	}
	wi, _ := parseSchema(`"int"`)
	ri, _ := parseSchema(`"long"`)
	conv, _ = resolution(wi, ri)
	if _, err := transcode(conv, []byte{0xfe, 0xff, 0xff, 0xff, 0x1f}); !errors.Is(err, ErrInvalid) { // > int32
		t.Errorf("int out of range: %v", err)
	}
}

func TestParseSchemaErrors(t *testing.T) {
	for _, text := range []string{
		``, `{`, `"nope"`, `3`, `[]`, `["int","int"]`, `["int",["null"]]`, `{}`,
		`{"type":"record","fields":[]}`,
		`{"type":"record","name":"1x","fields":[]}`,
		`{"type":"record","name":"A"}`,
		`{"type":"record","name":"A","fields":[{"name":"a"}]}`,
		`{"type":"record","name":"A","fields":[{"name":"a","type":"int"},{"name":"a","type":"int"}]}`,
		`{"type":"record","name":"A","fields":[{"name":"a","type":"int","default":"x"}]}`,
		`{"type":"record","name":"A","fields":[{"name":"a","type":["null","int"],"default":1}]}`,
		`{"type":"record","name":"A","fields":[{"name":"a","type":{"type":"record","name":"A","fields":[]}}]}`,
		`{"type":"enum","name":"E","symbols":[]}`,
		`{"type":"enum","name":"E","symbols":["A","A"]}`,
		`{"type":"enum","name":"E","symbols":["A"],"default":"B"}`,
		`{"type":"fixed","name":"F"}`,
		`{"type":"array"}`,
		`{"type":"record","name":"int","fields":[]}`,
		`"int" "long"`,
	} {
		if _, err := parseSchema(text); err == nil || !strings.HasPrefix(err.Error(), "avro: ") {
			t.Errorf("parseSchema(%s): %v", text, err)
		}
	}
}

func TestDefaults(t *testing.T) {
	s, err := parseSchema(`{"type":"record","name":"D","namespace":"x","fields":[
		{"name":"b","type":"boolean","default":true},
		{"name":"i","type":"int","default":-1},
		{"name":"f","type":"float","default":1.5},
		{"name":"d","type":"double","default":-0.25},
		{"name":"s","type":"string","default":"é"},
		{"name":"y","type":"bytes","default":"\u00ff\u0000"},
		{"name":"x","type":{"type":"fixed","name":"X","size":2},"default":"ab"},
		{"name":"e","type":{"type":"enum","name":"E","symbols":["P","Q"]},"default":"Q"},
		{"name":"a","type":{"type":"array","items":"long"},"default":[1,2]},
		{"name":"m","type":{"type":"map","values":"int"},"default":{"k":3,"j":4}},
		{"name":"u","type":["string","null"],"default":"z"},
		{"name":"r","type":{"type":"record","name":"R","fields":[{"name":"q","type":"int","default":9}]},"default":{}}
	]}`)
	if err != nil {
		t.Fatal(err)
	}
	empty, _ := parseSchema(`{"type":"record","name":"D","namespace":"x","fields":[]}`)
	conv, err := resolution(empty, s)
	if err != nil {
		t.Fatal(err)
	}
	out, err := transcode(conv, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := goavroCodec(t, `{"type":"record","name":"D","namespace":"x","fields":[
		{"name":"b","type":"boolean"},{"name":"i","type":"int"},{"name":"f","type":"float"},{"name":"d","type":"double"},
		{"name":"s","type":"string"},{"name":"y","type":"bytes"},{"name":"x","type":{"type":"fixed","name":"X","size":2}},
		{"name":"e","type":{"type":"enum","name":"E","symbols":["P","Q"]}},{"name":"a","type":{"type":"array","items":"long"}},
		{"name":"m","type":{"type":"map","values":"int"}},{"name":"u","type":["string","null"]},
		{"name":"r","type":{"type":"record","name":"R","fields":[{"name":"q","type":"int"}]}}]}`).NativeFromBinary(out)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"b": true, "i": int32(-1), "f": float32(1.5), "d": -0.25, "s": "é", "y": []byte{255, 0}, "x": []byte("ab"),
		"e": "Q", "a": []any{int64(1), int64(2)}, "m": map[string]any{"k": int32(3), "j": int32(4)},
		"u": map[string]any{"string": "z"}, "r": map[string]any{"q": int32(9)},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("\n got: %#v\nwant: %#v", got, want)
	}
}
