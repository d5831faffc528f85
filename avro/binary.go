package avro

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"
)

// This file holds the Avro binary encoding primitives shared by the
// hand-written record codecs (fast.go) and the schema resolver
// (resolve.go). Both encoder and decoder keep the first error and turn
// every later call into a no-op, so record code reads straight through
// and checks once at the end.

// encoder appends the Avro binary encoding of values to b.
type encoder struct {
	b   []byte
	err error // first error, a *FieldError
}

func (e *encoder) fail(field string, err error) {
	if e.err == nil {
		e.err = &FieldError{Field: field, Err: err}
	}
}

// long writes a zig-zag varint. encoding/binary's varint is Avro's: "ux :=
// uint64(x) << 1; if x < 0 { ux = ^ux }", then base-128 little-endian.
func (e *encoder) long(v int64) {
	if uint64(v)+64 < 128 { // -64 <= v < 64: one byte
		e.b = append(e.b, byte(v<<1^v>>63))
		return
	}
	e.b = binary.AppendVarint(e.b, v)
}

func (e *encoder) int(v int32) { e.long(int64(v)) }

func (e *encoder) boolean(v bool) {
	if v {
		e.b = append(e.b, 1)
	} else {
		e.b = append(e.b, 0)
	}
}

func (e *encoder) str(s string) {
	e.long(int64(len(s)))
	e.b = append(e.b, s...)
}

// optStr writes a ["null","string"] union: nil is null.
func (e *encoder) optStr(p *string) {
	if p == nil {
		e.b = append(e.b, 0)
		return
	}
	e.b = append(e.b, 2) // branch 1, zig-zag
	e.str(*p)
}

var (
	minMicroTime = time.UnixMicro(math.MinInt64)
	maxMicroTime = time.UnixMicro(math.MaxInt64)
)

// time writes a ["null", timestamp-micros] union: the zero time is null,
// any other time its microseconds since the Unix epoch (sub-microsecond
// precision is truncated, as time.UnixMicro does).
func (e *encoder) time(field string, t time.Time) {
	if t.IsZero() {
		e.b = append(e.b, 0)
		return
	}
	if t.Before(minMicroTime) || t.After(maxMicroTime) {
		e.fail(field, ErrTimeRange)
		return
	}
	e.b = append(e.b, 2)
	e.long(t.UnixMicro())
}

func (e *encoder) float(v float32) {
	e.b = binary.LittleEndian.AppendUint32(e.b, math.Float32bits(v))
}

func (e *encoder) double(v float64) {
	e.b = binary.LittleEndian.AppendUint64(e.b, math.Float64bits(v))
}

// decoder reads Avro binary data from s. It works on a string so that the
// fast path copies a record's bytes once (string(body)) and every decoded
// string is a zero-copy substring of that copy.
type decoder struct {
	s   string
	i   int
	err error // first error, a *FieldError
}

func (d *decoder) fail(field string, err error) {
	if d.err == nil {
		d.err = &FieldError{Field: field, Err: err}
	}
}

// nested prefixes the field path of an error raised inside a nested value.
// Callers use it as "ok := d.err == nil; ...; if ok { d.nested(name) }" so
// only an error that started inside gets the prefix.
func (d *decoder) nested(name string) {
	if fe, ok := d.err.(*FieldError); ok {
		if fe.Field == "" {
			fe.Field = name
		} else {
			fe.Field = name + "." + fe.Field
		}
	}
}

func (d *decoder) remaining() int { return len(d.s) - d.i }

// long reads a zig-zag varint of at most 10 bytes.
func (d *decoder) long(field string) int64 {
	if d.err != nil {
		return 0
	}
	if d.i < len(d.s) {
		if c := d.s[d.i]; c < 0x80 {
			d.i++
			return int64(c>>1) ^ -int64(c&1)
		}
	}
	var u uint64
	for j := 0; j < binary.MaxVarintLen64; j++ {
		if d.i+j >= len(d.s) {
			d.fail(field, ErrTruncated)
			return 0
		}
		c := d.s[d.i+j]
		if c < 0x80 {
			if j == binary.MaxVarintLen64-1 && c > 1 {
				break // overflows 64 bits
			}
			d.i += j + 1
			u |= uint64(c) << (7 * j)
			return int64(u>>1) ^ -int64(u&1)
		}
		u |= uint64(c&0x7f) << (7 * j)
	}
	d.fail(field, fmt.Errorf("%w: varint overflows 64 bits", ErrInvalid))
	return 0
}

func (d *decoder) int(field string) int32 {
	v := d.long(field)
	if v < math.MinInt32 || v > math.MaxInt32 {
		d.fail(field, fmt.Errorf("%w: int %d out of range", ErrInvalid, v))
		return 0
	}
	return int32(v)
}

func (d *decoder) boolean(field string) bool {
	if d.err != nil {
		return false
	}
	if d.i >= len(d.s) {
		d.fail(field, ErrTruncated)
		return false
	}
	c := d.s[d.i]
	d.i++
	if c > 1 {
		d.fail(field, fmt.Errorf("%w: boolean byte %#x", ErrInvalid, c))
		return false
	}
	return c == 1
}

// fixed reads n raw bytes.
func (d *decoder) fixed(field string, n int) string {
	if d.err != nil {
		return ""
	}
	if n > d.remaining() {
		d.fail(field, ErrTruncated)
		return ""
	}
	s := d.s[d.i : d.i+n]
	d.i += n
	return s
}

// str reads a length-prefixed string (or bytes).
func (d *decoder) str(field string) string {
	n := d.long(field)
	if d.err != nil {
		return ""
	}
	if n < 0 {
		d.fail(field, fmt.Errorf("%w: negative length %d", ErrInvalid, n))
		return ""
	}
	if n > int64(d.remaining()) {
		d.fail(field, ErrTruncated)
		return ""
	}
	s := d.s[d.i : d.i+int(n)]
	d.i += int(n)
	return s
}

// unionIndex reads a union branch index and checks it against n branches.
func (d *decoder) unionIndex(field string, n int) int {
	v := d.long(field)
	if d.err != nil {
		return 0
	}
	if v < 0 || v >= int64(n) {
		d.fail(field, fmt.Errorf("%w: union branch %d of %d", ErrInvalid, v, n))
		return 0
	}
	return int(v)
}

func (d *decoder) optStr(field string) *string {
	if d.unionIndex(field, 2) == 0 || d.err != nil {
		return nil
	}
	s := d.str(field)
	if d.err != nil {
		return nil
	}
	return &s
}

// time reads a ["null", timestamp-micros] union: null is the zero time;
// a time is returned in UTC.
func (d *decoder) time(field string) time.Time {
	if d.unionIndex(field, 2) == 0 || d.err != nil {
		return time.Time{}
	}
	v := d.long(field)
	if d.err != nil {
		return time.Time{}
	}
	return time.UnixMicro(v).UTC()
}

func (d *decoder) float(field string) float32 {
	s := d.fixed(field, 4)
	if d.err != nil {
		return 0
	}
	return math.Float32frombits(uint32(s[0]) | uint32(s[1])<<8 | uint32(s[2])<<16 | uint32(s[3])<<24)
}

func (d *decoder) double(field string) float64 {
	s := d.fixed(field, 8)
	if d.err != nil {
		return 0
	}
	var u uint64
	for k := 7; k >= 0; k-- {
		u = u<<8 | uint64(s[k])
	}
	return math.Float64frombits(u)
}

// maxZeroSizeItems bounds an array or map block whose items may encode to
// zero bytes (nulls, empty records), which the remaining length cannot
// bound.
const maxZeroSizeItems = 1 << 20

// blockLen reads the item count of the next array or map block; 0 ends
// the array. A negative count is followed by the block's byte size, which
// is read and ignored. minSize is the fewest bytes one item can take; the
// count is checked against the remaining data so garbage cannot make the
// caller allocate or loop without bound.
func (d *decoder) blockLen(field string, minSize int) int {
	n := d.long(field)
	if d.err != nil || n == 0 {
		return 0
	}
	if n < 0 {
		if n == math.MinInt64 {
			d.fail(field, fmt.Errorf("%w: block count %d", ErrInvalid, n))
			return 0
		}
		n = -n
		if size := d.long(field); d.err == nil && size < 0 {
			d.fail(field, fmt.Errorf("%w: negative block size %d", ErrInvalid, size))
		}
		if d.err != nil {
			return 0
		}
	}
	if minSize > 0 {
		if n > int64(d.remaining()/minSize) {
			d.fail(field, ErrTruncated)
			return 0
		}
	} else if n > maxZeroSizeItems {
		d.fail(field, fmt.Errorf("%w: block of %d zero-size items", ErrInvalid, n))
		return 0
	}
	return int(n)
}

// end checks that the whole input was consumed.
func (d *decoder) end() {
	if d.err == nil && d.i != len(d.s) {
		d.fail("", fmt.Errorf("%w: %d trailing bytes", ErrInvalid, len(d.s)-d.i))
	}
}
