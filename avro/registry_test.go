package avro

import (
	"context"
	"encoding/binary"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"
)

// fakeRegistry is franz-go's in-process Schema Registry (an httptest
// server speaking the REST API), with a count of schema-by-id fetches.
func fakeRegistry(t *testing.T) (*srfake.Registry, *sr.Client, *atomic.Int64) {
	t.Helper()
	reg := srfake.New()
	t.Cleanup(reg.Close)
	var byID atomic.Int64
	reg.Intercept(func(_ http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/schemas/ids/") {
			byID.Add(1)
		}
		return false
	})
	cl, err := sr.NewClient(sr.URLs(reg.URL()))
	if err != nil {
		t.Fatal(err)
	}
	return reg, cl, &byID
}

func confluent(id int, body []byte) []byte {
	return append(binary.BigEndian.AppendUint32([]byte{0}, uint32(id)), body...)
}

func TestRegistryRoundTrip(t *testing.T) {
	reg, cl, byID := fakeRegistry(t)
	c := mustCodec(t, WithRegistry(cl, AutoRegister()))
	if err := c.Prepare(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, rt := range builtin.types {
		if !reg.SubjectExists(rt.name) { // RecordNameStrategy
			t.Errorf("subject %s not registered", rt.name)
		}
	}
	for name, r := range goldenCases() {
		b, err := c.Encode(r)
		if err != nil {
			t.Fatal(err)
		}
		if b[0] != 0 {
			t.Fatalf("%s: not Confluent-framed: % x", name, b[:5])
		}
		got, err := c.Decode(b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		mustEqual(t, name, got, r)
	}
	if n := byID.Load(); n != 0 {
		t.Errorf("ids the codec registered itself were fetched %d times", n)
	}

	// Another codec (a consumer) fetches each writer schema once.
	consumer := mustCodec(t, WithRegistry(cl))
	b, _ := c.Encode(fullSamples()["build"])
	for range 3 {
		if _, err := consumer.Decode(b); err != nil {
			t.Fatal(err)
		}
	}
	if n := byID.Load(); n != 1 {
		t.Errorf("schema fetched %d times, want 1", n)
	}
	// It reads single-object encodings too.
	soeCodec := mustCodec(t)
	s, _ := soeCodec.Encode(fullSamples()["waiver"])
	if got, err := consumer.Decode(s); err != nil || TypeName(got) != "waiver" {
		t.Fatalf("SOE through a registry codec: %v", err)
	}
}

func TestRegistryLookupOnly(t *testing.T) {
	reg, cl, _ := fakeRegistry(t)
	c := mustCodec(t, WithRegistry(cl))
	_, err := c.Encode(&BuildEvent{})
	if err == nil || !strings.Contains(err.Error(), NameBuildEvent) {
		t.Fatalf("encode with an unregistered schema: %v", err)
	}
	if err := c.Prepare(context.Background()); err == nil {
		t.Fatal("Prepare without registered schemas succeeded")
	}
	// Registered by someone else (CI, "factory2 topics"): found.
	si, _ := Schema("build")
	id, _, err := reg.RegisterSchema(NameBuildEvent, sr.Schema{Schema: si.Current.Text, Type: sr.TypeAvro})
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Encode(&BuildEvent{NVR: "x-1-1"})
	if err != nil {
		t.Fatal(err)
	}
	if got := int(binary.BigEndian.Uint32(b[1:5])); got != id {
		t.Fatalf("schema id %d, want %d", got, id)
	}
}

// TestRegistryWriterVersions decodes Confluent data whose writer schema is
// an older version, an unknown newer version, and not ours.
func TestRegistryWriterVersions(t *testing.T) {
	reg, cl, _ := fakeRegistry(t)
	cat := syntheticCatalog(t)
	old := cat.byName[NameBuildEvent].versions[0]
	c := mustCodec(t, WithRegistry(cl), withCatalog(cat))

	// Older version, registered under the subject by an old producer.
	oldID, _, err := reg.RegisterSchema(NameBuildEvent, sr.Schema{Schema: old.text, Type: sr.TypeAvro})
	if err != nil {
		t.Fatal(err)
	}
	r := realisticBuildEvent()
	got, err := c.Decode(confluent(oldID, goavroEncode(t, old.schema, goavroCodec(t, old.text), r)))
	if err != nil {
		t.Fatal(err)
	}
	if b := got.(*BuildEvent); b.NVR != r.NVR || b.SourceCommit != "" || b.Artifacts[0].Arch != "" {
		t.Fatalf("old version: %+v", b)
	}

	// A newer version this codec has never seen: today's BuildEvent with a
	// field added, as a newer producer would register it.
	newer := strings.Replace(builtin.byName[NameBuildEvent].current.text,
		`"fields": [`, `"fields": [{"name": "future", "type": "string", "default": "", "doc": "A v2 field."},`, 1)
	newID, _, err := reg.RegisterSchema(NameBuildEvent, sr.Schema{Schema: newer, Type: sr.TypeAvro})
	if err != nil {
		t.Fatal(err)
	}
	ns, _ := parseSchema(newer)
	plain := mustCodec(t, WithRegistry(cl))
	got, err = plain.Decode(confluent(newID, goavroEncode(t, ns, goavroCodec(t, newer), r)))
	if err != nil {
		t.Fatal(err)
	}
	mustEqual(t, "newer writer", got, r)

	// Not a factory2 record.
	otherID, _, err := reg.RegisterSchema("other", sr.Schema{Schema: `{"type":"record","name":"com.example.User","fields":[]}`, Type: sr.TypeAvro})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Decode(confluent(otherID, nil))
	var use *UnknownSchemaError
	if !errors.As(err, &use) || use.ID != otherID || use.Name != "com.example.User" {
		t.Fatalf("foreign schema: %v", err)
	}
	// No such id.
	if _, err := c.Decode(confluent(999, nil)); err == nil {
		t.Fatal("unknown id decoded")
	}
	// Truncated header.
	if _, err := c.Decode([]byte{0, 0, 1}); !errors.Is(err, ErrTruncated) {
		t.Fatalf("short Confluent header: %v", err)
	}
}

func TestAutoRegisterNeedsRegistry(t *testing.T) {
	if _, err := NewCodec(optFunc(func(c *codecConfig) { c.autoRegister = true })); err == nil {
		t.Fatal("AutoRegister without a registry accepted")
	}
}
