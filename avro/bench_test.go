package avro

import (
	"testing"
)

func reportOps(b *testing.B) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}

// BenchmarkEncode encodes the full sample of every type (for build, a
// realistic BuildEvent: every envelope field, 8 artifacts, 5 buildroot
// entries). goavro_generic_build is goavro's map-based encoding of the
// same BuildEvent from its native form, as a same-run baseline.
func BenchmarkEncode(b *testing.B) {
	c := mustCodec(b)
	samples := fullSamples()
	for _, name := range typeNames() {
		r := samples[name]
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				if _, err := c.Encode(r); err != nil {
					b.Fatal(err)
				}
			}
			reportOps(b)
		})
	}
	b.Run("build_append", func(b *testing.B) {
		r := samples["build"]
		buf := make([]byte, 0, 4096)
		b.ReportAllocs()
		for range b.N {
			var err error
			if buf, err = c.AppendEncode(buf[:0], r); err != nil {
				b.Fatal(err)
			}
		}
		reportOps(b)
	})
	b.Run("goavro_generic_build", func(b *testing.B) {
		rt := builtin.byName[NameBuildEvent]
		gc := goavroCodec(b, rt.current.text)
		native, err := toNative(rt.current.schema, jsonObject(b, samples["build"]))
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			if _, err := gc.BinaryFromNative(nil, native); err != nil {
				b.Fatal(err)
			}
		}
		reportOps(b)
	})
}

// BenchmarkDecode decodes the encodings of BenchmarkEncode.
// goavro_generic_build is goavro decoding the same BuildEvent body into
// its generic native form (maps), as a same-run baseline.
func BenchmarkDecode(b *testing.B) {
	c := mustCodec(b)
	samples := fullSamples()
	for _, name := range typeNames() {
		enc, err := c.Encode(samples[name])
		if err != nil {
			b.Fatal(err)
		}
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(enc)))
			b.ReportAllocs()
			for range b.N {
				if _, err := c.Decode(enc); err != nil {
					b.Fatal(err)
				}
			}
			reportOps(b)
		})
	}
	b.Run("build_old_version", func(b *testing.B) {
		cat := syntheticCatalog(b)
		old := cat.byName[NameBuildEvent].versions[0]
		oc := mustCodec(b, withCatalog(cat))
		enc := soe(old.fingerprint, goavroEncode(b, old.schema, goavroCodec(b, old.text), samples["build"]))
		b.SetBytes(int64(len(enc)))
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			if _, err := oc.Decode(enc); err != nil {
				b.Fatal(err)
			}
		}
		reportOps(b)
	})
	b.Run("goavro_generic_build", func(b *testing.B) {
		rt := builtin.byName[NameBuildEvent]
		gc := goavroCodec(b, rt.current.text)
		enc, err := c.Encode(samples["build"])
		if err != nil {
			b.Fatal(err)
		}
		body := enc[soeHeaderLen:]
		b.SetBytes(int64(len(enc)))
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			if _, _, err := gc.NativeFromBinary(body); err != nil {
				b.Fatal(err)
			}
		}
		reportOps(b)
	})
}
