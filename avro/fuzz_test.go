package avro

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzDecode feeds arbitrary bytes to Decode, seeded with the golden
// encodings and older-version encodings (through the resolver). Decode
// must never panic, and whatever it accepts must survive a re-encode.
func FuzzDecode(f *testing.F) {
	hexFiles, _ := filepath.Glob(filepath.Join("testdata", "golden", "*.hex"))
	for _, p := range hexFiles {
		f.Add(readHex(f, p))
	}
	samples := fullSamples()
	for _, rt := range builtin.types {
		for _, v := range rt.versions[:len(rt.versions)-1] {
			f.Add(soe(v.fingerprint, goavroEncode(f, v.schema, goavroCodec(f, v.text), samples[rt.typeName])))
		}
	}
	cat := syntheticCatalog(f)
	old := cat.byName[NameBuildEvent].versions[0]
	f.Add(soe(old.fingerprint, goavroEncode(f, old.schema, goavroCodec(f, old.text), realisticBuildEvent())))
	f.Add([]byte{0, 0, 0, 0, 1})
	f.Add([]byte{0xC3, 0x01})

	current := mustCodec(f)
	withOld := mustCodec(f, withCatalog(cat))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, c := range []*Codec{current, withOld} {
			r, err := c.Decode(b)
			if err != nil {
				if r != nil {
					t.Fatalf("record and error: %v", err)
				}
				if !strings.HasPrefix(err.Error(), "avro: ") {
					t.Fatalf("error without the package prefix: %v", err)
				}
				continue
			}
			enc, err := current.Encode(r)
			if err != nil {
				t.Fatalf("decoded %T does not encode: %v", r, err)
			}
			again, err := current.Decode(enc)
			if err != nil {
				t.Fatalf("re-encoded %T does not decode: %v", r, err)
			}
			mustEqual(t, "re-decoded", again, r)
		}
	})
}

// FuzzUnmarshalJSON feeds arbitrary bytes to UnmarshalJSON, seeded with
// the golden JSON. It must never panic; what it accepts must marshal back
// to a fixed point and encode in Avro.
func FuzzUnmarshalJSON(f *testing.F) {
	jsonFiles, _ := filepath.Glob(filepath.Join("testdata", "golden", "*.json"))
	for _, p := range jsonFiles {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"type":"waiver","scenario":null}`))
	f.Add([]byte(`{"type":"build","unknown":1}`))
	c := mustCodec(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := UnmarshalJSON(b)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "avro: ") {
				t.Fatalf("error without the package prefix: %v", err)
			}
			return
		}
		out, err := MarshalJSON(r)
		if err != nil {
			t.Fatal(err)
		}
		r2, err := UnmarshalJSON(out)
		if err != nil {
			t.Fatalf("own output %s: %v", out, err)
		}
		out2, err := MarshalJSON(r2)
		if err != nil || !bytes.Equal(out, out2) {
			t.Fatalf("not a fixed point:\n%s\n%s", out, out2)
		}
		if _, err := c.Encode(r); err != nil {
			t.Fatalf("accepted JSON does not encode: %v", err)
		}
	})
}
