package avro

import (
	"bytes"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

func TestSchemas(t *testing.T) {
	infos := Schemas()
	if len(infos) != len(contractTypes()) {
		t.Fatalf("Schemas: %d, want %d", len(infos), len(contractTypes()))
	}
	for _, si := range infos {
		if !strings.HasPrefix(si.Name, "org.factory2.") || si.TypeName == "" {
			t.Errorf("bad SchemaInfo %+v", si)
		}
		for _, name := range []string{si.Name, strings.TrimPrefix(si.Name, "org.factory2."), si.TypeName} {
			got, err := Schema(name)
			if err != nil || got.Name != si.Name || got.Current != si.Current {
				t.Errorf("Schema(%q) = %v, %v", name, got.Name, err)
			}
		}
		if si.Current != si.Versions[len(si.Versions)-1] {
			t.Errorf("%s: current is not the last version", si.Name)
		}
		for _, v := range si.Versions {
			// goavro accepts the file; its canonical form agrees with ours
			// except for its {"type":"long"} for logical types (see
			// schema.go).
			gc := goavroCodec(t, v.Text)
			if want := strings.ReplaceAll(gc.CanonicalSchema(), `{"type":"long"}`, `"long"`); v.Canonical != want {
				t.Errorf("%s v%d: canonical form\n ours: %s\ngoavro: %s", si.Name, v.Version, v.Canonical, want)
			}
			if got := goavroCodec(t, v.Canonical).Rabin; got != v.Fingerprint {
				t.Errorf("%s v%d: fingerprint %x, goavro %x", si.Name, v.Version, v.Fingerprint, got)
			}
			// goavro's own form, whose fingerprint Decode also accepts.
			s, _ := parseSchema(v.Text)
			if got := logicalObjectForm(s); got != gc.CanonicalSchema() || fingerprint(got) != gc.Rabin {
				t.Errorf("%s v%d: goavro-style canonical form\n ours: %s\ngoavro: %s", si.Name, v.Version, got, gc.CanonicalSchema())
			}
		}
	}
	if _, err := Schema("nope"); !errors.Is(err, ErrUnknownType) {
		t.Errorf("Schema(nope): %v", err)
	}
}

func TestFingerprintVectors(t *testing.T) {
	// From the Avro specification's test suite (share/test/data/schema-tests.txt).
	for _, tc := range []struct {
		canonical string
		want      uint64
	}{
		{`"null"`, 7195948357588979594},
		{`"int"`, 0x7275d51a3f395c8f},
		{`"string"`, 0x8f014872634503c7},
	} {
		if got := fingerprint(tc.canonical); got != tc.want {
			t.Errorf("fingerprint(%s) = %x, want %x", tc.canonical, got, tc.want)
		}
	}
}

// TestSchemaConventions checks the rules every .avsc follows: namespace
// org.factory2, a doc on every record and field, no enums, a default on
// every field but the envelope.
func TestSchemaConventions(t *testing.T) {
	for _, rt := range builtin.types {
		for _, v := range rt.versions {
			var raw map[string]any
			if err := json.Unmarshal([]byte(v.text), &raw); err != nil {
				t.Fatal(err)
			}
			if raw["namespace"] != "org.factory2" {
				t.Errorf("%s v%d: namespace %v", rt.name, v.number, raw["namespace"])
			}
			seen := map[*schema]bool{}
			var walk func(s *schema, path string)
			walk = func(s *schema, path string) {
				switch s.kind {
				case kindEnum:
					t.Errorf("%s v%d %s: enums are not allowed (types are data)", rt.name, v.number, path)
				case kindRecord:
					if seen[s] {
						return
					}
					seen[s] = true
					if s.doc == "" {
						t.Errorf("%s v%d: record %s has no doc", rt.name, v.number, s.name)
					}
					for _, f := range s.fields {
						fp := join(path, f.name)
						if f.doc == "" {
							t.Errorf("%s v%d: field %s has no doc", rt.name, v.number, fp)
						}
						if !f.hasDef && f.name != "envelope" {
							t.Errorf("%s v%d: field %s has no default", rt.name, v.number, fp)
						}
						walk(f.typ, fp)
					}
				case kindArray, kindMap:
					walk(s.items, path)
				case kindUnion:
					for _, b := range s.branches {
						walk(b, path)
					}
				}
			}
			walk(v.schema, "")
		}
	}
}

func roundTripSOE(t *testing.T, c *Codec, r Record) {
	t.Helper()
	b, err := c.Encode(r)
	if err != nil {
		t.Fatal(err)
	}
	if b[0] != 0xC3 || b[1] != 0x01 {
		t.Fatalf("not a single-object encoding: % x", b[:2])
	}
	got, err := c.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	mustEqual(t, TypeName(r), got, r)
}

func TestRoundTripSOE(t *testing.T) {
	c := mustCodec(t)
	for name, r := range fullSamples() {
		t.Run(name+"/full", func(t *testing.T) { roundTripSOE(t, c, r) })
	}
	for _, name := range typeNames() {
		r, _ := NewRecord(name)
		t.Run(name+"/zero", func(t *testing.T) { roundTripSOE(t, c, r) })
	}
}

// TestFastPathMatchesGoavro proves, on random records of every type, that
// the hand-written codecs agree with goavro running the .avsc: the same
// bytes on encode, the same record on decode.
func TestFastPathMatchesGoavro(t *testing.T) {
	c := mustCodec(t)
	n := 300
	if testing.Short() {
		n = 30
	}
	for _, rt := range builtin.types {
		t.Run(rt.typeName, func(t *testing.T) {
			gc := goavroCodec(t, rt.current.text)
			rng := rand.New(rand.NewPCG(1, uint64(len(rt.name))))
			for i := range n {
				r := randomRecord(rng, rt)
				b, err := c.Encode(r)
				if err != nil {
					t.Fatal(err)
				}
				body := b[soeHeaderLen:]
				if want := goavroEncode(t, rt.current.schema, gc, r); !bytes.Equal(body, want) {
					t.Fatalf("record %d: encoding differs from goavro\n ours: % x\ngoavro: % x", i, body, want)
				}
				got, err := c.Decode(b)
				if err != nil {
					t.Fatal(err)
				}
				mustEqual(t, "fast decode", got, r)
				mustEqual(t, "goavro decode", goavroDecodeInto(t, rt.current.schema, gc, rt, body), r)
			}
		})
	}
}

func TestTimes(t *testing.T) {
	c := mustCodec(t)
	loc := time.FixedZone("UTC+5:30", 5*3600+1800)
	now := time.Now()
	for _, tc := range []struct {
		name     string
		in, want time.Time
	}{
		{"zero is null", time.Time{}, time.Time{}},
		{"utc", ts("2024-05-01T12:00:00.123456Z"), ts("2024-05-01T12:00:00.123456Z")},
		{"normalized to UTC", time.Date(2024, 5, 1, 17, 30, 0, 0, loc), ts("2024-05-01T12:00:00Z")},
		{"truncated to micros", ts("2024-05-01T12:00:00.123456789Z"), ts("2024-05-01T12:00:00.123456Z")},
		{"before 1970", ts("1969-12-31T23:59:59.5Z"), ts("1969-12-31T23:59:59.5Z")},
		{"epoch", time.Unix(0, 0), ts("1970-01-01T00:00:00Z")},
		{"year 1 but not zero", ts("0001-01-01T00:00:00.000001Z"), ts("0001-01-01T00:00:00.000001Z")},
		{"far future", ts("9999-12-31T23:59:59.999999Z"), ts("9999-12-31T23:59:59.999999Z")},
		{"monotonic reading dropped", now, now.Round(0).UTC().Truncate(time.Microsecond)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := c.Encode(&TestResult{SubmitTime: tc.in, Envelope: Envelope{EventTime: tc.in}})
			if err != nil {
				t.Fatal(err)
			}
			r, err := c.Decode(b)
			if err != nil {
				t.Fatal(err)
			}
			got := r.(*TestResult)
			if got.SubmitTime != tc.want || got.EventTime != tc.want { // == : location included
				t.Fatalf("got %v / %v, want %v", got.SubmitTime, got.EventTime, tc.want)
			}
		})
	}
	_, err := c.Encode(&BuildEvent{CreationTime: time.Date(300000, 1, 1, 0, 0, 0, 0, time.UTC)})
	var fe *FieldError
	if !errors.Is(err, ErrTimeRange) || !errors.As(err, &fe) || fe.Field != "creation_time" || fe.Record != NameBuildEvent {
		t.Fatalf("out of range time: %v", err)
	}
}

func TestWaiverScenarioNilVersusEmpty(t *testing.T) {
	c := mustCodec(t)
	for _, sc := range []*string{nil, strp(""), strp("fedora.x86_64")} {
		b, err := c.Encode(&Waiver{Scenario: sc})
		if err != nil {
			t.Fatal(err)
		}
		r, err := c.Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		got := r.(*Waiver).Scenario
		if (got == nil) != (sc == nil) || (got != nil && *got != *sc) {
			t.Fatalf("scenario %v decoded as %v", sc, got)
		}
	}
}

type foreignRecord struct{ Envelope }

func (*foreignRecord) SchemaName() string { return NameBuildEvent }

func TestEncodeErrors(t *testing.T) {
	c := mustCodec(t)
	for _, r := range []Record{nil, (*BuildEvent)(nil), &foreignRecord{}} {
		if _, err := c.Encode(r); !errors.Is(err, ErrUnknownType) {
			t.Errorf("Encode(%T): %v", r, err)
		}
	}
	dst := []byte("prefix")
	out, err := c.AppendEncode(dst, &BuildEvent{CompletionTime: time.Date(-300000, 1, 1, 0, 0, 0, 0, time.UTC)})
	if err == nil || string(out) != "prefix" {
		t.Fatalf("AppendEncode on error: %q, %v", out, err)
	}
}

func TestDecodeErrors(t *testing.T) {
	c := mustCodec(t)
	good, err := c.Encode(fullSamples()["build"])
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrNotAvro},
		{"json", []byte(`{"type":"build"}`), ErrNotAvro},
		{"marker only", []byte{0xC3}, ErrTruncated},
		{"short fingerprint", []byte{0xC3, 0x01, 1, 2, 3}, ErrTruncated},
		{"confluent without registry", []byte{0, 0, 0, 0, 1, 2}, ErrNoRegistry},
		{"trailing bytes", append(bytes.Clone(good), 0), ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := c.Decode(tc.in); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}

	unknown := soe(0x1234, []byte{0})
	var use *UnknownSchemaError
	if _, err := c.Decode(unknown); !errors.As(err, &use) || use.Fingerprint != 0x1234 {
		t.Fatalf("unknown fingerprint: %v", err)
	}

	// Every proper prefix of a valid encoding is an error, never a panic.
	for name, r := range fullSamples() {
		full, err := c.Encode(r)
		if err != nil {
			t.Fatal(err)
		}
		for n := range len(full) {
			if _, err := c.Decode(full[:n]); err == nil {
				t.Fatalf("%s: prefix of %d bytes decoded", name, n)
			} else if n > soeHeaderLen && !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrInvalid) {
				t.Fatalf("%s: prefix of %d bytes: %v", name, n, err)
			}
		}
	}

	// A bad length names the field.
	b, _ := c.Encode(&BuildEvent{Envelope: Envelope{ID: "x"}, Kind: "tag"})
	// envelope: id(2) source(1) event_time(1) ingest_time(1) topic(1) message_id(1); kind is next.
	kind := soeHeaderLen + 7
	b[kind] = 0x7e // length 63, past the end
	_, err = c.Decode(b)
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "kind" || fe.Record != NameBuildEvent || !errors.Is(err, ErrTruncated) {
		t.Fatalf("bad kind length: %v", err)
	}
	if want := "avro: org.factory2.BuildEvent: field kind: truncated data"; err.Error() != want {
		t.Fatalf("message %q, want %q", err.Error(), want)
	}

	// A bad union index inside an array of records names the path.
	g, _ := c.Encode(&GatingDecision{Previous: &PreviousGating{Satisfied: []Requirement{{Type: "x"}}}})
	g[len(g)-2-12+9] = 4 // pending: boolean byte 4
	_, err = c.Decode(g)
	if !errors.As(err, &fe) || fe.Field != "previous.satisfied.pending" || !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad pending: %v", err)
	}

	// Errors inside the nested records of the compose types name the path
	// too. Each case sets the byte at len-back to bad.
	for _, tc := range []struct {
		r     Record
		back  int
		bad   byte
		field string
		want  error
	}{
		// cadence{min_interval_ms, window_start, window_end}, retired
		{&ComposeEvent{}, 3, 0x7e, "cadence.window_start", ErrTruncated},
		// manifest: 1 item {nvr, package, key_id, decision_ids: 1 item "x", end}, end
		{&ComposeReadyDecision{Manifest: []ManifestEntry{{DecisionIDs: []string{"x"}}}}, 4, 0x7e, "manifest.decision_ids", ErrTruncated},
		// gating: 1 item {decision_context, product_version, satisfied, pending, decision_id, summary}, end, definition_id, partition
		{&ComposeMember{Gating: []MemberGating{{}}}, 6, 4, "gating.pending", ErrInvalid},
	} {
		b, err := c.Encode(tc.r)
		if err != nil {
			t.Fatal(err)
		}
		b[len(b)-tc.back] = tc.bad
		_, err = c.Decode(b)
		if !errors.As(err, &fe) || fe.Field != tc.field || fe.Record != tc.r.SchemaName() || !errors.Is(err, tc.want) {
			t.Errorf("%T: got %v, want %v in %s", tc.r, err, tc.want, tc.field)
		}
	}
}

func TestAppendEncodeReusesBuffer(t *testing.T) {
	c := mustCodec(t)
	r := fullSamples()["build"]
	want, _ := c.Encode(r)
	buf := make([]byte, 0, 4096)
	for range 3 {
		var err error
		buf, err = c.AppendEncode(buf[:0], r)
		if err != nil || !bytes.Equal(buf, want) {
			t.Fatalf("AppendEncode: %v", err)
		}
	}
	if n := testing.AllocsPerRun(100, func() { buf, _ = c.AppendEncode(buf[:0], r) }); n != 0 {
		t.Errorf("AppendEncode into a big enough buffer allocates %v times", n)
	}
}

func TestConcurrentUse(t *testing.T) {
	c := mustCodec(t)
	samples := fullSamples()
	done := make(chan error)
	for range 4 {
		go func() {
			for range 50 {
				for _, r := range samples {
					b, err := c.Encode(r)
					if err == nil {
						_, err = c.Decode(b)
					}
					if err != nil {
						done <- err
						return
					}
				}
			}
			done <- nil
		}()
	}
	for range 4 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

// TestDecodeGoavroSingleObject reads goavro's single-object encoding, whose
// fingerprint is of goavro's variant of the canonical form.
func TestDecodeGoavroSingleObject(t *testing.T) {
	c := mustCodec(t)
	for name, r := range fullSamples() {
		rt := builtin.byTypeName[name]
		gc := goavroCodec(t, rt.current.text)
		native, err := toNative(rt.current.schema, jsonObject(t, r))
		if err != nil {
			t.Fatal(err)
		}
		b, err := gc.SingleFromNative(nil, native)
		if err != nil {
			t.Fatal(err)
		}
		got, err := c.Decode(b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		mustEqual(t, name, got, r)
	}
}
