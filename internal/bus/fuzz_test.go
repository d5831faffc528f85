package bus

import (
	"testing"
)

// FuzzParseAndTranslate feeds arbitrary bytes and default topics through
// ParseMessage and Translate: neither may panic, and every record
// Translate returns must have an ID, a source and a partition key.
func FuzzParseAndTranslate(f *testing.F) {
	for _, fx := range goldenFixtures {
		f.Add(readFixture(f, fx.name), fx.topic)
	}
	for _, fx := range errorFixtures {
		f.Add(readFixture(f, fx.name), fx.topic)
	}
	f.Add([]byte(`{"topic": "buildsys.tag", "body": "{\"tag\": 1}"}`), "")
	f.Add([]byte(`{"body": {"body": {"body": {"msg": {}, "i": 1}}}}`), "buildsys.tag")
	f.Fuzz(func(t *testing.T, data []byte, topic string) {
		m, err := ParseMessage(data, topic)
		if err != nil {
			return
		}
		recs, err := Translate(m, testNow)
		if err != nil {
			return
		}
		for i, r := range recs {
			env := r.Env()
			if env.ID == "" || env.Source == "" || Key(r) == "" {
				t.Errorf("record %d of %q: ID %q, source %q, key %q", i, m.Topic, env.ID, env.Source, Key(r))
			}
		}
	})
}

func BenchmarkTranslateBuildStateChange(b *testing.B) {
	m, err := ParseMessage(readFixture(b, "koji_build_complete"), "")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Translate(m, testNow); err != nil {
			b.Fatal(err)
		}
	}
}
