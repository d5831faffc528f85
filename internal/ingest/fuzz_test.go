package ingest

import (
	"errors"
	"testing"

	"github.com/factory2/factory2/avro"
)

// FuzzParse feeds arbitrary bytes to both parsers: they must never panic,
// and must return either events that pass validation and encode, or an
// error and no events.
func FuzzParse(f *testing.F) {
	f.Add([]byte(buildLine + "\n" + signLine))
	f.Add([]byte("[" + testLine + "]"))
	f.Add([]byte(`{"type":"waiver","scenario":null}`))
	f.Add([]byte(`{"topic":"buildsys.tag","msg":{"name":"a","version":"1","release":"1","tag":"t"}}`))
	f.Add([]byte(`[[{}],`))
	codec, err := avro.NewCodec()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p := testParser(t)
		p.Source, p.EventTimeNow = "fuzz", true
		for _, parse := range []func([]byte) ([]Event, error){
			p.ParseJSON,
			func(b []byte) ([]Event, error) { return p.ParseMessages(b, "buildsys.tag") },
		} {
			evs, err := parse(data)
			if err != nil {
				if evs != nil {
					t.Fatalf("events with error %v", err)
				}
				var ie *InputError
				if !errors.As(err, &ie) && !errors.Is(err, ErrNoEvents) {
					t.Fatalf("error %T %v is neither an *InputError nor ErrNoEvents", err, err)
				}
				continue
			}
			for _, ev := range evs {
				if ps := validate(ev.Record, tolerant); len(ps) > 0 {
					t.Fatalf("accepted an invalid event: %v", ps)
				}
				if _, err := codec.Encode(ev.Record); err != nil {
					t.Fatalf("accepted event does not encode: %v", err)
				}
			}
		}
	})
}
