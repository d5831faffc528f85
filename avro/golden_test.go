package avro

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Golden files: testdata/golden/<type>.<full|zero>.hex holds the
// single-object encoding as hex (32 bytes a line), .json the JSON form.
// Run "go test ./avro -run TestGolden -update" to rewrite them after a
// deliberate change; otherwise any change of encoding fails here.

func goldenCases() map[string]Record {
	cases := map[string]Record{}
	for name, r := range fullSamples() {
		cases[name+".full"] = r
	}
	for _, name := range typeNames() {
		r, _ := NewRecord(name)
		cases[name+".zero"] = r
	}
	return cases
}

func hexLines(b []byte) string {
	var sb strings.Builder
	for len(b) > 0 {
		n := min(32, len(b))
		sb.WriteString(hex.EncodeToString(b[:n]))
		sb.WriteByte('\n')
		b = b[n:]
	}
	return sb.String()
}

func readHex(t testing.TB, path string) []byte {
	t.Helper()
	text, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b, err := hex.DecodeString(strings.Join(strings.Fields(string(text)), ""))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return b
}

func indentJSON(t testing.TB, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		t.Fatal(err)
	}
	out.WriteByte('\n')
	return out.Bytes()
}

func TestGolden(t *testing.T) {
	c := mustCodec(t)
	dir := filepath.Join("testdata", "golden")
	if *update {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, r := range goldenCases() {
		t.Run(name, func(t *testing.T) {
			enc, err := c.Encode(r)
			if err != nil {
				t.Fatal(err)
			}
			js, err := MarshalJSON(r)
			if err != nil {
				t.Fatal(err)
			}
			js = indentJSON(t, js)
			hexPath, jsonPath := filepath.Join(dir, name+".hex"), filepath.Join(dir, name+".json")
			if *update {
				if err := os.WriteFile(hexPath, []byte(hexLines(enc)), 0o644); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(jsonPath, js, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			wantEnc := readHex(t, hexPath)
			if !bytes.Equal(enc, wantEnc) {
				t.Errorf("encoding changed (run with -update if deliberate)\n got: %s\nwant: %s", hexLines(enc), hexLines(wantEnc))
			}
			wantJSON, err := os.ReadFile(jsonPath)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(js, wantJSON) {
				t.Errorf("JSON changed (run with -update if deliberate)\n got: %s\nwant: %s", js, wantJSON)
			}
			// And the stored forms decode to the record.
			got, err := c.Decode(wantEnc)
			if err != nil {
				t.Fatal(err)
			}
			mustEqual(t, "decoded golden", got, r)
			got, err = UnmarshalJSON(wantJSON)
			if err != nil {
				t.Fatal(err)
			}
			mustEqual(t, "unmarshaled golden", got, r)
		})
	}
}
