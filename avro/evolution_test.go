package avro

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/twmb/franz-go/pkg/sr"
)

func readSchema(t testing.TB, path string) (*schema, string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := parseSchema(string(b))
	if err != nil {
		t.Fatal(err)
	}
	return s, string(b)
}

// transcode runs a compiled resolution over body.
func transcode(conv op, body []byte) ([]byte, error) {
	src := decoder{s: string(body)}
	var dst encoder
	conv(&src, &dst)
	src.end()
	return dst.b, src.err
}

// TestResolutionEvolution reads data written with testdata/evolution/v1
// using v2, which renames a field (alias), removes one, promotes
// int→long/double and string→bytes, adds union branches, fields with
// defaults (including a record and an array), a field to a nested record,
// drops an enum symbol and moves a field.
func TestResolutionEvolution(t *testing.T) {
	v1, v1Text := readSchema(t, "testdata/evolution/v1.avsc")
	v2, v2Text := readSchema(t, "testdata/evolution/v2.avsc")
	g1, g2 := goavroCodec(t, v1Text), goavroCodec(t, v2Text)
	conv, err := resolution(v1, v2)
	if err != nil {
		t.Fatal(err)
	}
	when := ts("2024-05-01T12:00:00.000001Z")
	for _, tc := range []struct {
		name    string
		in      map[string]any
		want    map[string]any
		wantErr string
	}{{
		name: "full",
		in: map[string]any{
			"id": "w-1", "count": int32(-5), "legacy": "old", "kind": map[string]any{"string": "k"},
			"score": int32(3), "level": int32(9),
			"parts": []any{map[string]any{"n": int32(1), "label": "a"}, map[string]any{"n": int32(-2), "label": "b"}},
			"color": "GREEN", "blob": "bin\x00\xff", "attrs": map[string]any{"x": int32(1), "y": int32(-1)},
			"when": map[string]any{"long.timestamp-micros": when}, "extra": map[string]any{"string": "e"},
		},
		want: map[string]any{
			"kind": map[string]any{"string": "k"}, "ident": "w-1", "count": int64(-5), "score": float64(3),
			"level": map[string]any{"long": int64(9)},
			"parts": []any{
				map[string]any{"n": int64(1), "label": "a", "weight": float32(1.5)},
				map[string]any{"n": int64(-2), "label": "b", "weight": float32(1.5)},
			},
			"color": "OTHER", "blob": []byte("bin\x00\xff"), "attrs": map[string]any{"x": int64(1), "y": int64(-1)},
			"when": map[string]any{"long.timestamp-micros": when}, "extra": map[string]any{"string": "e"},
			"note": "n/a", "size": nil, "tags": []any{"a", "b"}, "origin": map[string]any{"topic": "t", "n": int32(7)},
		},
	}, {
		name: "empty",
		in: map[string]any{
			"id": "", "count": int32(0), "legacy": "", "kind": nil, "score": int32(-1), "level": int32(0),
			"parts": []any{}, "color": "RED", "blob": "", "attrs": map[string]any{}, "when": nil, "extra": nil,
		},
		want: map[string]any{
			"kind": nil, "ident": "", "count": int64(0), "score": float64(-1), "level": map[string]any{"long": int64(0)},
			"parts": []any{}, "color": "RED", "blob": []byte{}, "attrs": map[string]any{}, "when": nil, "extra": nil,
			"note": "n/a", "size": nil, "tags": []any{"a", "b"}, "origin": map[string]any{"topic": "t", "n": int32(7)},
		},
	}, {
		name: "union branch the reader lacks",
		in: map[string]any{
			"id": "", "count": int32(0), "legacy": "", "kind": nil, "score": int32(0), "level": int32(0),
			"parts": []any{}, "color": "BLUE", "blob": "", "attrs": map[string]any{}, "when": nil,
			"extra": map[string]any{"boolean": true},
		},
		wantErr: "field extra",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			body, err := g1.BinaryFromNative(nil, tc.in)
			if err != nil {
				t.Fatal(err)
			}
			out, err := transcode(conv, body)
			if tc.wantErr != "" {
				if !errors.Is(err, ErrIncompatible) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v, want an ErrIncompatible naming %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, rest, err := g2.NativeFromBinary(out)
			if err != nil || len(rest) > 0 {
				t.Fatalf("v2 data does not decode: %v (%d left)", err, len(rest))
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("\n got: %#v\nwant: %#v", got, tc.want)
			}
		})
	}

	// The other way round fails: v1 has no default for id, and v2 has
	// no field it would alias.
	if _, err := resolution(v2, v1); !errors.Is(err, ErrIncompatible) {
		t.Fatalf("v2 read as v1: %v", err)
	}
}

func TestResolutionBlocks(t *testing.T) {
	w, _ := parseSchema(`{"type":"array","items":"int"}`)
	r, _ := parseSchema(`{"type":"array","items":"long"}`)
	conv, err := resolution(w, r)
	if err != nil {
		t.Fatal(err)
	}
	// Two blocks, the first with a negative count and its byte size.
	in := []byte{3, 4, 2, 0xfe, 0x01, 2, 6, 0}
	out, err := transcode(conv, in)
	if err != nil {
		t.Fatal(err)
	}
	if want := []byte{4, 2, 0xfe, 0x01, 2, 6, 0}; !bytes.Equal(out, want) {
		t.Fatalf("got % x, want % x", out, want)
	}
	// Garbage counts are errors, not allocations or long loops.
	for _, bad := range [][]byte{{0x80}, {0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, {3}, {1, 2}} {
		if _, err := transcode(conv, bad); err == nil {
			t.Errorf("% x: no error", bad)
		}
	}
}

func TestResolutionRecursive(t *testing.T) {
	text := `{"type":"record","name":"Node","fields":[{"name":"v","type":"int"},{"name":"next","type":["null","Node"]}]}`
	w, err := parseSchema(text)
	if err != nil {
		t.Fatal(err)
	}
	r, err := parseSchema(`{"type":"record","name":"Node","fields":[{"name":"next","type":["null","Node"]},{"name":"v","type":"long"},{"name":"x","type":"string","default":"d"}]}`)
	if err != nil {
		t.Fatal(err)
	}
	conv, err := resolution(w, r)
	if err != nil {
		t.Fatal(err)
	}
	// v=1 -> v=2 -> null
	out, err := transcode(conv, []byte{2, 2, 4, 0})
	if err != nil {
		t.Fatal(err)
	}
	// next first, then v, then x="d"
	want := []byte{2, 0, 4, 2, 'd', 2, 2, 'd'}
	if !bytes.Equal(out, want) {
		t.Fatalf("got % x, want % x", out, want)
	}
}

// --- backward compatibility of stored versions ---

// backwardProblems lists why cur is not old with only fields added (with
// defaults): removed fields, fields added without a default, changed field
// types (including promotions and new union branches, which old readers
// could not read).
func backwardProblems(old, cur *schema) []string {
	var problems []string
	var records func(o, c *schema, path string)
	var types func(o, c *schema, path string)
	types = func(o, c *schema, path string) {
		switch {
		case o.kind != c.kind || o.logical != c.logical || (o.named() && o.name != c.name):
			problems = append(problems, fmt.Sprintf("%s: type changed from %s to %s", path, canonicalForm(o), canonicalForm(c)))
		case o.kind == kindRecord:
			records(o, c, path)
		case o.kind == kindArray || o.kind == kindMap:
			types(o.items, c.items, path)
		case o.kind == kindUnion:
			if len(o.branches) != len(c.branches) {
				problems = append(problems, fmt.Sprintf("%s: union changed from %s to %s", path, canonicalForm(o), canonicalForm(c)))
				return
			}
			for i := range o.branches {
				types(o.branches[i], c.branches[i], path)
			}
		case o.kind == kindEnum && !slices.Equal(o.symbols, c.symbols),
			o.kind == kindFixed && o.size != c.size:
			problems = append(problems, fmt.Sprintf("%s: %s changed", path, o.name))
		}
	}
	seen := map[*schema]bool{}
	records = func(o, c *schema, path string) {
		if seen[o] {
			return
		}
		seen[o] = true
		for _, of := range o.fields {
			cf := c.field(of.name)
			if cf == nil {
				problems = append(problems, fmt.Sprintf("%s: removed", join(path, of.name)))
				continue
			}
			types(of.typ, cf.typ, join(path, of.name))
		}
		for _, cf := range c.fields {
			if o.field(cf.name) == nil && !cf.hasDef {
				problems = append(problems, fmt.Sprintf("%s: added without a default", join(path, cf.name)))
			}
		}
	}
	records(old, cur, "")
	if _, err := resolution(old, cur); err != nil {
		problems = append(problems, err.Error())
	}
	return problems
}

// TestCurrentIsBackwardCompatible checks that every stored version only
// adds fields with defaults to the one before it.
func TestCurrentIsBackwardCompatible(t *testing.T) {
	check := func(cat *catalog) {
		for _, rt := range cat.types {
			for i := 1; i < len(rt.versions); i++ {
				old, cur := rt.versions[i-1], rt.versions[i]
				if p := backwardProblems(old.schema, cur.schema); len(p) > 0 {
					t.Errorf("%s v%d → v%d:\n  %s", rt.name, old.number, cur.number, strings.Join(p, "\n  "))
				}
			}
		}
	}
	check(builtin)
	check(syntheticCatalog(t)) // a real two-version catalog, so the check above is not vacuous

	// The checker does catch the evolution pair's changes.
	v1, _ := readSchema(t, "testdata/evolution/v1.avsc")
	v2, _ := readSchema(t, "testdata/evolution/v2.avsc")
	got := strings.Join(backwardProblems(v1, v2), "\n")
	for _, want := range []string{"id: removed", "legacy: removed", "count: type changed", "kind: union changed",
		"parts.n: type changed", "org.factory2.test.Color changed", "blob: type changed"} {
		if !strings.Contains(got, want) {
			t.Errorf("backwardProblems(v1, v2) misses %q in:\n%s", want, got)
		}
	}
}

// --- a catalog with a real older version, through the Codec ---

// syntheticCatalog is the builtin schemas plus an older BuildEvent: v1 is
// today's BuildEvent less source_commit, buildroot and Artifact.arch, and
// v2 is today's.
func syntheticCatalog(t testing.TB) *catalog {
	t.Helper()
	fsys := fstest.MapFS{}
	err := fs.WalkDir(schemaFS, "schemas", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := schemaFS.ReadFile(p)
		fsys[p] = &fstest.MapFile{Data: b}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	cur := fsys["schemas/BuildEvent/v1.avsc"].Data
	fsys["schemas/BuildEvent/v1.avsc"] = &fstest.MapFile{Data: []byte(syntheticOldBuildEvent(t, cur))}
	fsys["schemas/BuildEvent/v2.avsc"] = &fstest.MapFile{Data: cur}
	cat, err := loadCatalog(fsys, contractTypes())
	if err != nil {
		t.Fatal(err)
	}
	return cat
}

func syntheticOldBuildEvent(t testing.TB, cur []byte) string {
	t.Helper()
	var s map[string]any
	if err := json.Unmarshal(cur, &s); err != nil {
		t.Fatal(err)
	}
	drop := func(rec map[string]any, names ...string) {
		var kept []any
		for _, f := range rec["fields"].([]any) {
			if !slices.Contains(names, f.(map[string]any)["name"].(string)) {
				kept = append(kept, f)
			}
		}
		rec["fields"] = kept
	}
	drop(s, "source_commit", "buildroot")
	for _, f := range s["fields"].([]any) {
		if f := f.(map[string]any); f["name"] == "artifacts" {
			drop(f["type"].(map[string]any)["items"].(map[string]any), "arch")
		}
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func withCatalog(c *catalog) Opt { return optFunc(func(cfg *codecConfig) { cfg.catalog = c }) }

func TestOldVersionThroughCodec(t *testing.T) {
	cat := syntheticCatalog(t)
	c := mustCodec(t, withCatalog(cat))
	rt := cat.byName[NameBuildEvent]
	old := rt.versions[0]
	if old.toCurrent == nil || rt.current.number != 2 || rt.current.fingerprint != builtin.byName[NameBuildEvent].current.fingerprint {
		t.Fatal("synthetic catalog is not what the test expects")
	}
	r := realisticBuildEvent()
	body := goavroEncode(t, old.schema, goavroCodec(t, old.text), r)
	got, err := c.Decode(soe(old.fingerprint, body))
	if err != nil {
		t.Fatal(err)
	}
	want := realisticBuildEvent()
	want.SourceCommit, want.Buildroot = "", nil
	for i := range want.Artifacts {
		want.Artifacts[i].Arch = ""
	}
	mustEqual(t, "v1 read as v2", got, want)

	// The current version still takes the fast path.
	b, err := c.Encode(r)
	if err != nil {
		t.Fatal(err)
	}
	got, err = c.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	mustEqual(t, "v2", got, r)

	// Truncated old-version data is an error naming the field.
	_, err = c.Decode(soe(old.fingerprint, body[:len(body)-3]))
	var fe *FieldError
	if !errors.As(err, &fe) || !errors.Is(err, ErrTruncated) || fe.Record != NameBuildEvent || !strings.HasPrefix(fe.Field, "artifacts") {
		t.Fatalf("truncated v1: %v", err)
	}
}

// olderLacks clears, in a record of the current version, the fields an
// older released version (key "<type name>/v<N>") does not have, giving
// what reading the record's data written with that version must yield.
var olderLacks = map[string]func(Record){
	"compose/v1": func(r Record) {
		c := r.(*ComposeEvent)
		c.ProductVersion, c.SigningKey, c.Retired = "", "", false
		c.SourceTags, c.PackagesAllow, c.PackagesDeny, c.DecisionContexts = nil, nil, nil, nil
		c.Cadence = ComposeCadence{}
	},
	"compose_ready/v1": func(r Record) {
		c := r.(*ComposeReadyDecision)
		c.Kind, c.Status, c.ContentDigest, c.Members = "", "", "", 0
		c.BlockerCounts, c.Manifest = nil, nil
	},
}

// TestReleasedVersionsThroughCodec writes the full sample of every record
// type with each of its older released versions (goavro, from the .avsc)
// and reads it with the Codec, framed as a single-object encoding and in
// the Confluent format: the fields the version has come through, the ones
// it lacks get their defaults.
func TestReleasedVersionsThroughCodec(t *testing.T) {
	reg, cl, _ := fakeRegistry(t)
	c := mustCodec(t, WithRegistry(cl))
	samples := fullSamples()
	for _, rt := range builtin.types {
		for _, v := range rt.versions[:len(rt.versions)-1] {
			key := fmt.Sprintf("%s/v%d", rt.typeName, v.number)
			t.Run(key, func(t *testing.T) {
				lacks, ok := olderLacks[key]
				if !ok {
					t.Fatalf("say in olderLacks which fields %s lacks", key)
				}
				body := goavroEncode(t, v.schema, goavroCodec(t, v.text), samples[rt.typeName])
				want := fullSamples()[rt.typeName]
				lacks(want)
				got, err := c.Decode(soe(v.fingerprint, body))
				if err != nil {
					t.Fatal(err)
				}
				mustEqual(t, "single-object", got, want)

				id, _, err := reg.RegisterSchema(rt.name, sr.Schema{Schema: v.text, Type: sr.TypeAvro})
				if err != nil {
					t.Fatal(err)
				}
				got, err = c.Decode(confluent(id, body))
				if err != nil {
					t.Fatal(err)
				}
				mustEqual(t, "Confluent", got, want)
			})
		}
	}
}

// TestEveryVersionReadable decodes, for every record type, a stored sample
// of every schema version (testdata/versions/<Record>/v<N>.json, in Avro's
// JSON encoding) with the Codec, and checks every field the version shares
// with the current one. A new version needs its sample: "-update" writes
// the current version's from the full sample record; older samples are
// frozen.
func TestEveryVersionReadable(t *testing.T) {
	c := mustCodec(t)
	samples := fullSamples()
	for _, rt := range builtin.types {
		for _, v := range rt.versions {
			t.Run(fmt.Sprintf("%s/v%d", rt.typeName, v.number), func(t *testing.T) {
				gc := goavroCodec(t, v.text)
				path := filepath.Join("testdata", "versions", shortName(rt.name), fmt.Sprintf("v%d.json", v.number))
				if _, err := os.Stat(path); os.IsNotExist(err) && *update && v == rt.current {
					body := goavroEncode(t, v.schema, gc, samples[rt.typeName])
					native, _, err := gc.NativeFromBinary(body)
					if err != nil {
						t.Fatal(err)
					}
					text, err := gc.TextualFromNative(nil, native)
					if err != nil {
						t.Fatal(err)
					}
					if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(path, indentJSON(t, text), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				text, err := os.ReadFile(path)
				if err != nil {
					t.Fatalf("every schema version needs a sample (run with -update for the current one): %v", err)
				}
				native, _, err := gc.NativeFromTextual(text)
				if err != nil {
					t.Fatal(err)
				}
				body, err := gc.BinaryFromNative(nil, native)
				if err != nil {
					t.Fatal(err)
				}
				r, err := c.Decode(soe(v.fingerprint, body))
				if err != nil {
					t.Fatal(err)
				}
				old, err := fromNative(v.schema, native)
				if err != nil {
					t.Fatal(err)
				}
				if diff := subsetDiff(normalizeJSON(t, old), normalizeJSON(t, jsonObject(t, r)), ""); diff != "" {
					t.Fatalf("v%d sample read as v%d: %s", v.number, rt.current.number, diff)
				}
			})
		}
	}
}

func normalizeJSON(t testing.TB, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// subsetDiff reports where old (a stored version's value) disagrees with
// cur (the value read as the current version); keys cur lacks count as
// zero values (omitempty), and nested objects may have gained keys.
func subsetDiff(old, cur any, path string) string {
	switch o := old.(type) {
	case map[string]any:
		c, _ := cur.(map[string]any)
		for k, ov := range o {
			cv, ok := c[k]
			if !ok {
				if ov == nil || ov == "" || ov == false || ov == 0.0 || reflect.DeepEqual(ov, []any{}) {
					continue
				}
			}
			if d := subsetDiff(ov, cv, join(path, k)); d != "" {
				return d
			}
		}
		return ""
	case []any:
		c, _ := cur.([]any)
		if len(o) != len(c) {
			return fmt.Sprintf("%s: %d items, read %d", path, len(o), len(c))
		}
		for i := range o {
			if d := subsetDiff(o[i], c[i], fmt.Sprintf("%s[%d]", path, i)); d != "" {
				return d
			}
		}
		return ""
	default:
		if !reflect.DeepEqual(old, cur) {
			return fmt.Sprintf("%s: stored %v, read %v", path, old, cur)
		}
		return ""
	}
}
