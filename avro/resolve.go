package avro

import (
	"fmt"
	"slices"
)

// Schema resolution (Avro specification, "Schema Resolution"), which
// goavro does not implement. Rather than decoding into generic values,
// resolution is compiled into an op that reads data written with the
// writer schema and appends the encoding of the same datum under the
// reader schema; the reader's hand-written fast decoder then reads that.
// So there is one mapping from Avro to Go structs (fast.go), and the
// resolver only ever deals in Avro.
//
// Rules implemented:
//   - records match by full name, unqualified name or a reader alias;
//     fields match by name or a reader field alias; reader fields the
//     writer lacks take their default (no default: the schemas are
//     incompatible); writer fields the reader lacks are skipped; field
//     order may differ.
//   - promotions int→long→float→double (and int→float/double,
//     long→double), string⇄bytes.
//   - a writer union is resolved per branch, when the branch is met in
//     the data; a non-union writer against a reader union picks the first
//     reader branch of the same type, else the first it can be promoted
//     to.
//   - enums map symbols by name, an unknown one to the reader's default;
//     fixed must agree on name and size; arrays and maps resolve their
//     items and values.

// op reads one datum from src and appends its reader encoding to dst.
// Errors stick in src.err.
type op func(src *decoder, dst *encoder)

type resolveKey struct{ w, r *schema }

type resolver struct {
	ops   map[resolveKey]*op              // records compiled or being compiled
	skips map[*schema]*func(src *decoder) // records' skippers
	sizes map[*schema]int
}

// resolution compiles the conversion of data written with w into the
// encoding of reader schema r.
func resolution(w, r *schema) (op, error) {
	c := &resolver{ops: map[resolveKey]*op{}, skips: map[*schema]*func(*decoder){}, sizes: map[*schema]int{}}
	return c.compile(w, r, "")
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func namesMatch(w, r *schema) bool {
	if w.name == r.name || shortName(w.name) == shortName(r.name) {
		return true
	}
	for _, a := range r.aliases {
		if a == w.name || shortName(a) == shortName(w.name) {
			return true
		}
	}
	return false
}

func incompatible(path, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if path != "" {
		msg = "field " + path + ": " + msg
	}
	return fmt.Errorf("%w: %s", ErrIncompatible, msg)
}

func (c *resolver) compile(w, r *schema, path string) (op, error) {
	if w.kind == kindUnion {
		return c.writerUnion(w, r, path)
	}
	if r.kind == kindUnion {
		return c.readerUnion(w, r, path)
	}
	if w.kind == r.kind {
		switch w.kind {
		case kindNull:
			return func(*decoder, *encoder) {}, nil
		case kindBoolean:
			return func(s *decoder, d *encoder) { d.boolean(s.boolean(path)) }, nil
		case kindInt:
			return func(s *decoder, d *encoder) { d.long(int64(s.int(path))) }, nil
		case kindLong:
			return func(s *decoder, d *encoder) { d.long(s.long(path)) }, nil
		case kindFloat:
			return func(s *decoder, d *encoder) { d.b = append(d.b, s.fixed(path, 4)...) }, nil
		case kindDouble:
			return func(s *decoder, d *encoder) { d.b = append(d.b, s.fixed(path, 8)...) }, nil
		case kindBytes, kindString:
			return func(s *decoder, d *encoder) { d.str(s.str(path)) }, nil
		case kindRecord:
			if !namesMatch(w, r) {
				return nil, incompatible(path, "record %s cannot be read as record %s", w.name, r.name)
			}
			return c.record(w, r, path)
		case kindEnum:
			return c.enum(w, r, path)
		case kindFixed:
			if !namesMatch(w, r) || w.size != r.size {
				return nil, incompatible(path, "fixed %s(%d) cannot be read as fixed %s(%d)", w.name, w.size, r.name, r.size)
			}
			n := w.size
			return func(s *decoder, d *encoder) { d.b = append(d.b, s.fixed(path, n)...) }, nil
		case kindArray, kindMap:
			return c.container(w, r, path)
		}
	}
	switch {
	case w.kind == kindInt && r.kind == kindLong:
		return func(s *decoder, d *encoder) { d.long(int64(s.int(path))) }, nil
	case w.kind == kindInt && r.kind == kindFloat:
		return func(s *decoder, d *encoder) { d.float(float32(s.int(path))) }, nil
	case w.kind == kindInt && r.kind == kindDouble:
		return func(s *decoder, d *encoder) { d.double(float64(s.int(path))) }, nil
	case w.kind == kindLong && r.kind == kindFloat:
		return func(s *decoder, d *encoder) { d.float(float32(s.long(path))) }, nil
	case w.kind == kindLong && r.kind == kindDouble:
		return func(s *decoder, d *encoder) { d.double(float64(s.long(path))) }, nil
	case w.kind == kindFloat && r.kind == kindDouble:
		return func(s *decoder, d *encoder) { d.double(float64(s.float(path))) }, nil
	case (w.kind == kindString && r.kind == kindBytes) || (w.kind == kindBytes && r.kind == kindString):
		return func(s *decoder, d *encoder) { d.str(s.str(path)) }, nil
	}
	return nil, incompatible(path, "%s cannot be read as %s", w.typeName(), r.typeName())
}

// writerUnion resolves each writer branch on its own; a branch that does
// not resolve is an error only if the data uses it.
func (c *resolver) writerUnion(w, r *schema, path string) (op, error) {
	ops := make([]op, len(w.branches))
	var firstErr error
	resolved := 0
	for i, wb := range w.branches {
		o, err := c.compile(wb, r, path)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			o = func(s *decoder, _ *encoder) { s.fail(path, err) }
		} else {
			resolved++
		}
		ops[i] = o
	}
	if resolved == 0 {
		return nil, firstErr
	}
	n := len(ops)
	return func(s *decoder, d *encoder) {
		i := s.unionIndex(path, n)
		if s.err == nil {
			ops[i](s, d)
		}
	}, nil
}

// readerUnion picks the reader branch for a non-union writer.
func (c *resolver) readerUnion(w, r *schema, path string) (op, error) {
	pick := func(i int, o op) op {
		idx := int64(i)
		return func(s *decoder, d *encoder) {
			d.long(idx)
			o(s, d)
		}
	}
	for i, rb := range r.branches { // the same type first
		if rb.kind == w.kind && (!w.named() || namesMatch(w, rb)) {
			o, err := c.compile(w, rb, path)
			if err != nil {
				return nil, err
			}
			return pick(i, o), nil
		}
	}
	for i, rb := range r.branches { // then a promotion
		if o, err := c.compile(w, rb, path); err == nil {
			return pick(i, o), nil
		}
	}
	return nil, incompatible(path, "%s matches no branch of the reader's union", w.typeName())
}

func (c *resolver) record(w, r *schema, path string) (op, error) {
	key := resolveKey{w, r}
	if p, ok := c.ops[key]; ok { // recursive record: call through the pointer
		return trampoline(p, path), nil
	}
	p := new(op)
	c.ops[key] = p
	fail := func(err error) (op, error) {
		delete(c.ops, key) // a later attempt (another union branch) starts afresh
		return nil, err
	}

	type writerField struct {
		target int // reader field index, -1 to skip
		conv   op
		skip   func(*decoder)
	}
	wfs := make([]writerField, len(w.fields))
	source := make([]int, len(r.fields)) // writer field index per reader field, -1 for default
	for j := range source {
		source[j] = -1
	}
	for i, wf := range w.fields {
		j := readerField(r, wf.name)
		wfs[i] = writerField{target: j, skip: c.skipper(wf.typ, join(path, wf.name))}
		if j < 0 {
			continue
		}
		if source[j] >= 0 {
			return fail(incompatible(path, "writer fields %q and %q both match reader field %q", w.fields[source[j]].name, wf.name, r.fields[j].name))
		}
		source[j] = i
		conv, err := c.compile(wf.typ, r.fields[j].typ, join(path, r.fields[j].name))
		if err != nil {
			return fail(err)
		}
		wfs[i].conv = conv
	}
	defaults := make([][]byte, len(r.fields))
	for j, rf := range r.fields {
		if source[j] >= 0 {
			continue
		}
		if !rf.hasDef {
			return fail(incompatible(join(path, rf.name), "the writer has no such field and the reader's has no default"))
		}
		var err error
		if defaults[j], err = defaultBytes(rf.typ, rf.def); err != nil {
			return fail(incompatible(join(path, rf.name), "%v", err))
		}
	}

	monotonic, last := true, -1
	for _, wf := range wfs {
		if wf.target >= 0 {
			monotonic = monotonic && wf.target > last
			last = wf.target
		}
	}
	if monotonic {
		// Writer fields in reader order (the usual evolution: fields
		// added and removed, none moved): stream, inserting defaults.
		*p = func(s *decoder, d *encoder) {
			next := 0
			for i := range wfs {
				wf := &wfs[i]
				if wf.target < 0 {
					wf.skip(s)
					continue
				}
				for ; next < wf.target; next++ {
					d.b = append(d.b, defaults[next]...)
				}
				wf.conv(s, d)
				next = wf.target + 1
				if s.err != nil {
					return
				}
			}
			for ; next < len(defaults); next++ {
				d.b = append(d.b, defaults[next]...)
			}
		}
	} else {
		// Fields moved: find every writer field's bytes first, then write
		// in reader order.
		*p = func(s *decoder, d *encoder) {
			spans := make([]int, 2*len(wfs))
			for i := range wfs {
				spans[2*i] = s.i
				wfs[i].skip(s)
				spans[2*i+1] = s.i
			}
			if s.err != nil {
				return
			}
			for j, i := range source {
				if i < 0 {
					d.b = append(d.b, defaults[j]...)
					continue
				}
				sub := decoder{s: s.s[:spans[2*i+1]], i: spans[2*i]}
				wfs[i].conv(&sub, d)
				if sub.err != nil {
					s.err = sub.err
					return
				}
			}
		}
	}
	return trampoline(p, path), nil
}

// trampoline calls the op p points to, which may still be being compiled
// (recursive records) or, after a failed compilation, never be.
func trampoline(p *op, path string) op {
	return func(s *decoder, d *encoder) {
		if f := *p; f != nil {
			f(s, d)
		} else {
			s.fail(path, incompatible("", "unresolvable recursive record"))
		}
	}
}

// readerField returns the index of the reader field matching a writer
// field name, by name and then by alias, or -1.
func readerField(r *schema, name string) int {
	for j, f := range r.fields {
		if f.name == name {
			return j
		}
	}
	for j, f := range r.fields {
		if slices.Contains(f.aliases, name) {
			return j
		}
	}
	return -1
}

func (c *resolver) enum(w, r *schema, path string) (op, error) {
	if !namesMatch(w, r) {
		return nil, incompatible(path, "enum %s cannot be read as enum %s", w.name, r.name)
	}
	mapping := make([]int64, len(w.symbols))
	for i, sym := range w.symbols {
		j := slices.Index(r.symbols, sym)
		if j < 0 && r.hasEnumDef {
			j = slices.Index(r.symbols, r.enumDefault)
		}
		mapping[i] = int64(j)
	}
	return func(s *decoder, d *encoder) {
		i := s.long(path)
		if s.err != nil {
			return
		}
		if i < 0 || i >= int64(len(mapping)) {
			s.fail(path, fmt.Errorf("%w: enum index %d of %d", ErrInvalid, i, len(mapping)))
			return
		}
		if mapping[i] < 0 {
			s.fail(path, incompatible("", "enum symbol %q is unknown to the reader, which has no default", w.symbols[i]))
			return
		}
		d.long(mapping[i])
	}, nil
}

// container resolves arrays and maps, re-blocking with positive counts.
func (c *resolver) container(w, r *schema, path string) (op, error) {
	items, err := c.compile(w.items, r.items, path)
	if err != nil {
		return nil, err
	}
	isMap := w.kind == kindMap
	minSize := c.minSize(w.items)
	if isMap {
		minSize++ // the key's length
	}
	return func(s *decoder, d *encoder) {
		for {
			n := s.blockLen(path, minSize)
			if s.err != nil || n == 0 {
				d.long(0)
				return
			}
			d.long(int64(n))
			for range n {
				if isMap {
					d.str(s.str(path))
				}
				items(s, d)
				if s.err != nil {
					return
				}
			}
		}
	}, nil
}

// skipper returns a function that reads past one datum of w.
func (c *resolver) skipper(w *schema, path string) func(*decoder) {
	switch w.kind {
	case kindNull:
		return func(*decoder) {}
	case kindBoolean:
		return func(s *decoder) { s.boolean(path) }
	case kindInt:
		return func(s *decoder) { s.int(path) }
	case kindLong:
		return func(s *decoder) { s.long(path) }
	case kindFloat:
		return func(s *decoder) { s.fixed(path, 4) }
	case kindDouble:
		return func(s *decoder) { s.fixed(path, 8) }
	case kindBytes, kindString:
		return func(s *decoder) { s.str(path) }
	case kindFixed:
		n := w.size
		return func(s *decoder) { s.fixed(path, n) }
	case kindEnum:
		n := len(w.symbols)
		return func(s *decoder) { s.unionIndex(path, n) }
	case kindUnion:
		skips := make([]func(*decoder), len(w.branches))
		for i, b := range w.branches {
			skips[i] = c.skipper(b, path)
		}
		return func(s *decoder) {
			i := s.unionIndex(path, len(skips))
			if s.err == nil {
				skips[i](s)
			}
		}
	case kindArray, kindMap:
		item := c.skipper(w.items, path)
		isMap := w.kind == kindMap
		minSize := c.minSize(w.items)
		if isMap {
			minSize++
		}
		return func(s *decoder) {
			for n := s.blockLen(path, minSize); n > 0 && s.err == nil; n = s.blockLen(path, minSize) {
				for range n {
					if isMap {
						s.str(path)
					}
					item(s)
				}
			}
		}
	default: // record
		if p, ok := c.skips[w]; ok {
			return func(s *decoder) { (*p)(s) }
		}
		p := new(func(*decoder))
		c.skips[w] = p
		fields := make([]func(*decoder), len(w.fields))
		for i, f := range w.fields {
			fields[i] = c.skipper(f.typ, join(path, f.name))
		}
		*p = func(s *decoder) {
			for _, f := range fields {
				f(s)
			}
		}
		return func(s *decoder) { (*p)(s) }
	}
}

// minSize is the fewest bytes a datum of s can encode to.
func (c *resolver) minSize(s *schema) int {
	switch s.kind {
	case kindNull:
		return 0
	case kindFloat:
		return 4
	case kindDouble:
		return 8
	case kindFixed:
		return s.size
	case kindRecord:
		if n, ok := c.sizes[s]; ok {
			return n
		}
		c.sizes[s] = 1 // a record can only recur through a union or container, each at least a byte
		n := 0
		for _, f := range s.fields {
			n += c.minSize(f.typ)
		}
		c.sizes[s] = n
		return n
	default: // every varint-led encoding
		return 1
	}
}
