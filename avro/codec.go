package avro

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/twmb/franz-go/pkg/sr"
)

// Wire format markers.
const (
	soeMagic0       = 0xC3 // single-object encoding marker, first byte
	soeMagic1       = 0x01 // and second (format version 1)
	soeHeaderLen    = 10   // marker + 8-byte fingerprint
	confluentMagic  = 0x00
	confluentHdrLen = 5 // magic + 4-byte schema id
)

// Codec encodes and decodes factory2 records in Avro. Without a schema
// registry it writes the Avro single-object encoding; with WithRegistry the
// Confluent wire format. Decode reads both.
//
// A Codec is safe for concurrent use. Encode and Decode block only with a
// registry, and only the first time a schema (id) is seen; Prepare takes
// that off the hot path for encoding.
type Codec struct {
	cat  *catalog
	reg  *registry // nil without WithRegistry
	bufs sync.Pool // *[]byte scratch for Encode and resolution
}

// Opt configures a Codec.
type Opt interface{ apply(*codecConfig) }

type codecConfig struct {
	registry     *sr.Client
	autoRegister bool
	catalog      *catalog // tests swap in schema sets
}

type optFunc func(*codecConfig)

func (f optFunc) apply(c *codecConfig) { f(c) }

// RegistryOpt configures the schema registry use of WithRegistry.
type RegistryOpt interface{ applyRegistry(*codecConfig) }

type registryOptFunc func(*codecConfig)

func (f registryOptFunc) applyRegistry(c *codecConfig) { f(c) }

// WithRegistry makes Encode write the Confluent wire format (0x00, 4-byte
// big-endian schema id, Avro binary body) with schemas under the
// RecordNameStrategy subject (the record's full name, e.g.
// "org.factory2.BuildEvent"), and lets Decode read that format. Schema ids
// are cached for the Codec's life; registry calls run with the client's
// own HTTP timeout (sr.Client's default is 5s).
func WithRegistry(cl *sr.Client, opts ...RegistryOpt) Opt {
	return optFunc(func(c *codecConfig) {
		c.registry = cl
		for _, o := range opts {
			o.applyRegistry(c)
		}
	})
}

// AutoRegister makes the Codec register a record type's current schema
// when it first needs its id, instead of only looking it up. Registration
// is idempotent (an identical schema keeps its id) and is subject to the
// subject's compatibility setting in the registry.
func AutoRegister() RegistryOpt {
	return registryOptFunc(func(c *codecConfig) { c.autoRegister = true })
}

// NewCodec returns a Codec for every record type of the contract.
func NewCodec(opts ...Opt) (*Codec, error) {
	cfg := codecConfig{catalog: builtin}
	for _, o := range opts {
		o.apply(&cfg)
	}
	c := &Codec{cat: cfg.catalog}
	if cfg.registry != nil {
		c.reg = newRegistry(cfg.registry, cfg.autoRegister, cfg.catalog)
	} else if cfg.autoRegister {
		return nil, errors.New("avro: AutoRegister needs WithRegistry")
	}
	return c, nil
}

// Prepare fetches (or, with AutoRegister, registers) the registry id of
// every record type's current schema, so that Encode does not block later.
// It reports every failure. Without a registry it does nothing.
func (c *Codec) Prepare(ctx context.Context) error {
	if c.reg == nil {
		return nil
	}
	var errs []error
	for _, rt := range c.cat.types {
		if _, err := c.reg.currentID(ctx, rt); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Encode returns the encoding of r with its current schema: the
// single-object encoding (0xC3 0x01, 8-byte little-endian CRC-64-AVRO
// fingerprint of the schema's Parsing Canonical Form, Avro binary body),
// or with a registry the Confluent wire format. Times are written with
// microsecond precision. The returned slice is the caller's.
func (c *Codec) Encode(r Record) ([]byte, error) {
	bp := c.scratch()
	b, err := c.AppendEncode((*bp)[:0], r)
	var out []byte
	if err == nil {
		out = make([]byte, len(b))
		copy(out, b)
	}
	c.release(bp, b)
	return out, err
}

// AppendEncode appends the encoding of r (see Encode) to dst. On error it
// returns dst unchanged in length.
func (c *Codec) AppendEncode(dst []byte, r Record) ([]byte, error) {
	rt, err := c.cat.typeOf(r)
	if err != nil {
		return dst, err
	}
	start := len(dst)
	if c.reg == nil {
		dst = append(dst, soeMagic0, soeMagic1)
		dst = binary.LittleEndian.AppendUint64(dst, rt.current.fingerprint)
	} else {
		id, err := c.reg.currentID(context.Background(), rt)
		if err != nil {
			return dst, err
		}
		dst = append(dst, confluentMagic)
		dst = binary.BigEndian.AppendUint32(dst, uint32(id))
	}
	e := encoder{b: dst}
	encodeRecord(&e, r)
	if e.err != nil {
		setRecordName(e.err, rt.name)
		return e.b[:start], e.err
	}
	return e.b, nil
}

// Decode decodes one record in the single-object encoding or (with a
// registry) the Confluent wire format. Data written with an older (or,
// through the registry, a newer) schema version is resolved into the
// current version. The record is the caller's; its strings share one
// allocation (a copy of b's body, never b itself), kept alive by any of
// them. Decode never panics on bad input; errors wrap ErrNotAvro, ErrTruncated,
// ErrInvalid, ErrNoRegistry or ErrIncompatible, or are an
// *UnknownSchemaError; data errors are a *FieldError naming the field.
func (c *Codec) Decode(b []byte) (Record, error) {
	switch {
	case len(b) >= 2 && b[0] == soeMagic0 && b[1] == soeMagic1:
		if len(b) < soeHeaderLen {
			return nil, fmt.Errorf("%w: single-object header", ErrTruncated)
		}
		fp := binary.LittleEndian.Uint64(b[2:soeHeaderLen])
		v := c.cat.byFingerprint[fp]
		if v == nil {
			return nil, &UnknownSchemaError{Fingerprint: fp}
		}
		return c.decodeBody(v.rt, v.toCurrent, v.schema.name, b[soeHeaderLen:])
	case len(b) >= 1 && b[0] == confluentMagic:
		if c.reg == nil {
			return nil, ErrNoRegistry
		}
		if len(b) < confluentHdrLen {
			return nil, fmt.Errorf("%w: Confluent header", ErrTruncated)
		}
		id := int(binary.BigEndian.Uint32(b[1:confluentHdrLen]))
		w, err := c.reg.writer(context.Background(), id)
		if err != nil {
			return nil, err
		}
		return c.decodeBody(w.rt, w.toCurrent, w.name, b[confluentHdrLen:])
	case len(b) == 1 && b[0] == soeMagic0:
		return nil, fmt.Errorf("%w: single-object header", ErrTruncated)
	default:
		return nil, ErrNotAvro
	}
}

// decodeBody decodes an Avro binary body of type rt written with a schema
// named writerName; conv converts it to the current version first unless
// nil.
func (c *Codec) decodeBody(rt *recordType, conv op, writerName string, body []byte) (Record, error) {
	if conv == nil {
		return rt.decodeCurrent(body)
	}
	bp := c.scratch()
	src := decoder{s: string(body)}
	dst := encoder{b: (*bp)[:0]}
	conv(&src, &dst)
	src.end()
	if src.err != nil {
		c.release(bp, dst.b)
		setRecordName(src.err, writerName)
		return nil, src.err
	}
	r, err := rt.decodeCurrent(dst.b)
	c.release(bp, dst.b)
	return r, err
}

// decodeCurrent decodes a body written with the current schema version.
func (rt *recordType) decodeCurrent(body []byte) (Record, error) {
	d := decoder{s: string(body)} // the one copy every decoded string shares
	r := decodeRecord(&d, rt.tag)
	if r == nil {
		return nil, fmt.Errorf("avro: no decoder for %s", rt.name)
	}
	d.end()
	if d.err != nil {
		setRecordName(d.err, rt.name)
		return nil, d.err
	}
	return r, nil
}

func setRecordName(err error, name string) {
	if fe, ok := err.(*FieldError); ok && fe.Record == "" {
		fe.Record = name
	}
}

const maxPooledBuf = 1 << 20

func (c *Codec) scratch() *[]byte {
	if bp, ok := c.bufs.Get().(*[]byte); ok {
		return bp
	}
	b := make([]byte, 0, 1024)
	return &b
}

func (c *Codec) release(bp *[]byte, b []byte) {
	if cap(b) > maxPooledBuf {
		return
	}
	*bp = b[:0]
	c.bufs.Put(bp)
}
