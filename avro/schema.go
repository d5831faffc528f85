package avro

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// This file parses Avro schema JSON into a small model used for the
// Parsing Canonical Form, fingerprints, default values and schema
// resolution. goavro parses schemas too but exposes no model to walk, and
// its canonical form differs from the Java implementation's for logical
// types (see canonicalForm).

type kind uint8

const (
	kindNull kind = iota
	kindBoolean
	kindInt
	kindLong
	kindFloat
	kindDouble
	kindBytes
	kindString
	kindRecord
	kindEnum
	kindArray
	kindMap
	kindUnion
	kindFixed
)

var kindNames = [...]string{"null", "boolean", "int", "long", "float", "double", "bytes", "string", "record", "enum", "array", "map", "union", "fixed"}

func (k kind) String() string { return kindNames[k] }

var primitiveKinds = map[string]kind{
	"null": kindNull, "boolean": kindBoolean, "int": kindInt, "long": kindLong,
	"float": kindFloat, "double": kindDouble, "bytes": kindBytes, "string": kindString,
}

// schema is one parsed Avro type. Named types (record, enum, fixed) are
// shared by pointer between their definition and every reference, so the
// graph may be cyclic for recursive records.
type schema struct {
	kind    kind
	name    string   // full name of a named type
	aliases []string // full names
	doc     string
	logical string // logicalType, informational only

	fields []*field // record

	symbols     []string // enum
	enumDefault string
	hasEnumDef  bool

	items    *schema   // array items, map values
	branches []*schema // union
	size     int       // fixed
}

type field struct {
	name    string
	aliases []string
	doc     string
	typ     *schema
	def     any // the JSON default, numbers as json.Number
	hasDef  bool
}

func (s *schema) named() bool {
	return s.kind == kindRecord || s.kind == kindEnum || s.kind == kindFixed
}

// typeName names s for error messages.
func (s *schema) typeName() string {
	if s.named() {
		return s.name
	}
	return s.kind.String()
}

func (s *schema) field(name string) *field {
	for _, f := range s.fields {
		if f.name == name {
			return f
		}
	}
	return nil
}

// parseSchema parses Avro schema JSON text.
func parseSchema(text string) (*schema, error) {
	dec := json.NewDecoder(strings.NewReader(text))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("avro: parsing schema: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("avro: parsing schema: trailing data after the schema")
	}
	p := &schemaParser{names: map[string]*schema{}}
	s, err := p.parse(v, "")
	if err != nil {
		return nil, fmt.Errorf("avro: parsing schema: %w", err)
	}
	return s, nil
}

type schemaParser struct {
	names map[string]*schema
}

func validName(n string) bool {
	if n == "" {
		return false
	}
	for i, c := range n {
		switch {
		case c == '_', 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case '0' <= c && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// fullName qualifies name with namespace ns unless it is already dotted.
func fullName(name, ns string) (string, error) {
	full := name
	if !strings.Contains(name, ".") && ns != "" {
		full = ns + "." + name
	}
	for _, part := range strings.Split(full, ".") {
		if !validName(part) {
			return "", fmt.Errorf("invalid name %q", name)
		}
	}
	return full, nil
}

func namespaceOf(full string) string {
	if i := strings.LastIndexByte(full, '.'); i >= 0 {
		return full[:i]
	}
	return ""
}

func shortName(full string) string {
	return full[strings.LastIndexByte(full, '.')+1:]
}

func (p *schemaParser) parse(v any, ns string) (*schema, error) {
	switch v := v.(type) {
	case string:
		if k, ok := primitiveKinds[v]; ok {
			return &schema{kind: k}, nil
		}
		full, err := fullName(v, ns)
		if err != nil {
			return nil, err
		}
		if s, ok := p.names[full]; ok {
			return s, nil
		}
		if s, ok := p.names[v]; ok { // a name in the null namespace
			return s, nil
		}
		return nil, fmt.Errorf("unknown type %q", v)
	case []any:
		return p.parseUnion(v, ns)
	case map[string]any:
		return p.parseObject(v, ns)
	default:
		return nil, fmt.Errorf("invalid schema %v", v)
	}
}

func (p *schemaParser) parseUnion(v []any, ns string) (*schema, error) {
	u := &schema{kind: kindUnion}
	seen := map[string]bool{}
	for _, b := range v {
		s, err := p.parse(b, ns)
		if err != nil {
			return nil, err
		}
		if s.kind == kindUnion {
			return nil, fmt.Errorf("union directly inside a union")
		}
		key := s.typeName()
		if seen[key] {
			return nil, fmt.Errorf("union has two branches of type %s", key)
		}
		seen[key] = true
		u.branches = append(u.branches, s)
	}
	if len(u.branches) == 0 {
		return nil, fmt.Errorf("empty union")
	}
	return u, nil
}

func strAttr(m map[string]any, key string) (string, bool, error) {
	v, ok := m[key]
	if !ok {
		return "", false, nil
	}
	s, ok := v.(string)
	if !ok {
		return "", true, fmt.Errorf("%q must be a string", key)
	}
	return s, true, nil
}

func strList(m map[string]any, key string) ([]string, error) {
	v, ok := m[key]
	if !ok {
		return nil, nil
	}
	l, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("%q must be a list of strings", key)
	}
	out := make([]string, len(l))
	for i, x := range l {
		s, ok := x.(string)
		if !ok {
			return nil, fmt.Errorf("%q must be a list of strings", key)
		}
		out[i] = s
	}
	return out, nil
}

func (p *schemaParser) parseObject(m map[string]any, ns string) (*schema, error) {
	t, ok := m["type"]
	if !ok {
		return nil, fmt.Errorf("schema object without \"type\"")
	}
	ts, ok := t.(string)
	if !ok {
		// {"type": {...}} or {"type": [...]}: a wrapped schema.
		return p.parse(t, ns)
	}
	doc, _, err := strAttr(m, "doc")
	if err != nil {
		return nil, err
	}
	logical, _, err := strAttr(m, "logicalType")
	if err != nil {
		return nil, err
	}
	if k, ok := primitiveKinds[ts]; ok {
		return &schema{kind: k, logical: logical, doc: doc}, nil
	}
	switch ts {
	case "record", "error", "enum", "fixed":
		return p.parseNamed(m, ts, ns, doc, logical)
	case "array", "map":
		key := "items"
		s := &schema{kind: kindArray, doc: doc, logical: logical}
		if ts == "map" {
			key, s.kind = "values", kindMap
		}
		iv, ok := m[key]
		if !ok {
			return nil, fmt.Errorf("%s without %q", ts, key)
		}
		if s.items, err = p.parse(iv, ns); err != nil {
			return nil, err
		}
		return s, nil
	default:
		// A reference to a named type written as {"type": "Name"}.
		return p.parse(ts, ns)
	}
}

func (p *schemaParser) parseNamed(m map[string]any, ts, ns, doc, logical string) (*schema, error) {
	name, ok, err := strAttr(m, "name")
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%s without a name", ts)
	}
	if explicit, ok, err := strAttr(m, "namespace"); err != nil {
		return nil, err
	} else if ok && !strings.Contains(name, ".") {
		ns = explicit
	}
	full, err := fullName(name, ns)
	if err != nil {
		return nil, err
	}
	if _, ok := primitiveKinds[shortName(full)]; ok {
		return nil, fmt.Errorf("named type may not be called %q", full)
	}
	if _, dup := p.names[full]; dup {
		return nil, fmt.Errorf("type %s defined twice", full)
	}
	ns = namespaceOf(full) // the enclosing namespace of nested definitions
	s := &schema{name: full, doc: doc, logical: logical}
	aliases, err := strList(m, "aliases")
	if err != nil {
		return nil, err
	}
	for _, a := range aliases {
		fa, err := fullName(a, ns)
		if err != nil {
			return nil, err
		}
		s.aliases = append(s.aliases, fa)
	}
	p.names[full] = s // before the fields: a record may refer to itself

	switch ts {
	case "enum":
		s.kind = kindEnum
		if s.symbols, err = strList(m, "symbols"); err != nil {
			return nil, err
		}
		if len(s.symbols) == 0 {
			return nil, fmt.Errorf("enum %s without symbols", full)
		}
		for i, sym := range s.symbols {
			if !validName(sym) || slices.Contains(s.symbols[:i], sym) {
				return nil, fmt.Errorf("enum %s: invalid or duplicate symbol %q", full, sym)
			}
		}
		if s.enumDefault, s.hasEnumDef, err = strAttr(m, "default"); err != nil {
			return nil, err
		}
		if s.hasEnumDef && !slices.Contains(s.symbols, s.enumDefault) {
			return nil, fmt.Errorf("enum %s: default %q is not a symbol", full, s.enumDefault)
		}
	case "fixed":
		s.kind = kindFixed
		n, ok := m["size"].(json.Number)
		if !ok {
			return nil, fmt.Errorf("fixed %s without a numeric size", full)
		}
		size, err := strconv.Atoi(n.String())
		if err != nil || size < 0 {
			return nil, fmt.Errorf("fixed %s: invalid size %s", full, n)
		}
		s.size = size
	default:
		s.kind = kindRecord
		fl, ok := m["fields"].([]any)
		if !ok {
			return nil, fmt.Errorf("record %s without a list of fields", full)
		}
		for _, fv := range fl {
			fm, ok := fv.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("record %s: field is not an object", full)
			}
			f, err := p.parseField(fm, ns)
			if err != nil {
				return nil, fmt.Errorf("record %s: %w", full, err)
			}
			if s.field(f.name) != nil {
				return nil, fmt.Errorf("record %s: field %q defined twice", full, f.name)
			}
			s.fields = append(s.fields, f)
		}
	}
	return s, nil
}

func (p *schemaParser) parseField(m map[string]any, ns string) (*field, error) {
	name, _, err := strAttr(m, "name")
	if err != nil {
		return nil, err
	}
	if !validName(name) {
		return nil, fmt.Errorf("invalid field name %q", name)
	}
	f := &field{name: name}
	if f.doc, _, err = strAttr(m, "doc"); err != nil {
		return nil, err
	}
	if f.aliases, err = strList(m, "aliases"); err != nil {
		return nil, err
	}
	t, ok := m["type"]
	if !ok {
		return nil, fmt.Errorf("field %q without a type", name)
	}
	if f.typ, err = p.parse(t, ns); err != nil {
		return nil, fmt.Errorf("field %q: %w", name, err)
	}
	f.def, f.hasDef = m["default"]
	if f.hasDef {
		var e encoder
		if err := encodeDefault(&e, f.typ, f.def); err != nil {
			return nil, fmt.Errorf("field %q: invalid default: %w", name, err)
		}
	}
	return f, nil
}

// canonicalForm returns the Parsing Canonical Form of s, as the Avro
// specification defines it and the Java implementation computes it: full
// names, only the attributes name, type, fields, symbols, items, values
// and size (in that order), primitives in their simple form even when
// they carry a logicalType, each named type spelled out only where first
// used.
func canonicalForm(s *schema) string {
	var b strings.Builder
	writeCanonical(&b, s, map[*schema]bool{}, false)
	return b.String()
}

// logicalObjectForm is the canonical form as goavro and the Python avro
// package compute it, writing a primitive with a logicalType as
// {"type":"long"}; Decode accepts its fingerprint too.
func logicalObjectForm(s *schema) string {
	var b strings.Builder
	writeCanonical(&b, s, map[*schema]bool{}, true)
	return b.String()
}

func writeCanonical(b *strings.Builder, s *schema, seen map[*schema]bool, logicalObject bool) {
	if s.named() {
		if seen[s] {
			b.WriteString(strconv.Quote(s.name))
			return
		}
		seen[s] = true
	}
	switch s.kind {
	case kindRecord:
		fmt.Fprintf(b, `{"name":%q,"type":"record","fields":[`, s.name)
		for i, f := range s.fields {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(b, `{"name":%q,"type":`, f.name)
			writeCanonical(b, f.typ, seen, logicalObject)
			b.WriteByte('}')
		}
		b.WriteString("]}")
	case kindEnum:
		fmt.Fprintf(b, `{"name":%q,"type":"enum","symbols":[`, s.name)
		for i, sym := range s.symbols {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.Quote(sym))
		}
		b.WriteString("]}")
	case kindFixed:
		fmt.Fprintf(b, `{"name":%q,"type":"fixed","size":%d}`, s.name, s.size)
	case kindArray:
		b.WriteString(`{"type":"array","items":`)
		writeCanonical(b, s.items, seen, logicalObject)
		b.WriteByte('}')
	case kindMap:
		b.WriteString(`{"type":"map","values":`)
		writeCanonical(b, s.items, seen, logicalObject)
		b.WriteByte('}')
	case kindUnion:
		b.WriteByte('[')
		for i, br := range s.branches {
			if i > 0 {
				b.WriteByte(',')
			}
			writeCanonical(b, br, seen, logicalObject)
		}
		b.WriteByte(']')
	default:
		if logicalObject && s.logical != "" {
			fmt.Fprintf(b, `{"type":%q}`, s.kind.String())
			return
		}
		b.WriteString(strconv.Quote(s.kind.String()))
	}
}

// rabinEmpty is CRC-64-AVRO's initial value (the fingerprint of nothing).
const rabinEmpty uint64 = 0xc15d213aa4d7a795

var rabinTable = func() (t [256]uint64) {
	for i := range t {
		fp := uint64(i)
		for range 8 {
			fp = (fp >> 1) ^ (rabinEmpty & -(fp & 1))
		}
		t[i] = fp
	}
	return t
}()

// fingerprint is the CRC-64-AVRO (Rabin) fingerprint of the specification,
// computed over a Parsing Canonical Form.
func fingerprint(canonical string) uint64 {
	fp := rabinEmpty
	for i := 0; i < len(canonical); i++ {
		fp = (fp >> 8) ^ rabinTable[byte(fp)^canonical[i]]
	}
	return fp
}

// encodeDefault appends the binary encoding of the JSON default value v
// for schema s. A union's default is a value of its first branch.
func encodeDefault(e *encoder, s *schema, v any) error {
	bad := func() error { return fmt.Errorf("default %v is not a %s", v, s.typeName()) }
	switch s.kind {
	case kindNull:
		if v != nil {
			return bad()
		}
	case kindBoolean:
		b, ok := v.(bool)
		if !ok {
			return bad()
		}
		e.boolean(b)
	case kindInt, kindLong:
		n, ok := v.(json.Number)
		if !ok {
			return bad()
		}
		i, err := n.Int64()
		if err != nil || (s.kind == kindInt && int64(int32(i)) != i) {
			return bad()
		}
		e.long(i)
	case kindFloat, kindDouble:
		n, ok := v.(json.Number)
		if !ok {
			return bad()
		}
		f, err := n.Float64()
		if err != nil {
			return bad()
		}
		if s.kind == kindFloat {
			e.float(float32(f))
		} else {
			e.double(f)
		}
	case kindString:
		str, ok := v.(string)
		if !ok {
			return bad()
		}
		e.str(str)
	case kindBytes, kindFixed:
		str, ok := v.(string)
		if !ok {
			return bad()
		}
		// Bytes defaults are strings whose code points 0-255 are the bytes.
		var raw []byte
		for _, r := range str {
			if r > 255 {
				return bad()
			}
			raw = append(raw, byte(r))
		}
		if s.kind == kindFixed {
			if len(raw) != s.size {
				return bad()
			}
			e.b = append(e.b, raw...)
		} else {
			e.long(int64(len(raw)))
			e.b = append(e.b, raw...)
		}
	case kindEnum:
		str, ok := v.(string)
		i := slices.Index(s.symbols, str)
		if !ok || i < 0 {
			return bad()
		}
		e.long(int64(i))
	case kindArray:
		l, ok := v.([]any)
		if !ok {
			return bad()
		}
		if len(l) > 0 {
			e.long(int64(len(l)))
			for _, x := range l {
				if err := encodeDefault(e, s.items, x); err != nil {
					return err
				}
			}
		}
		e.long(0)
	case kindMap:
		m, ok := v.(map[string]any)
		if !ok {
			return bad()
		}
		if len(m) > 0 {
			keys := make([]string, 0, len(m))
			for k := range m {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			e.long(int64(len(keys)))
			for _, k := range keys {
				e.str(k)
				if err := encodeDefault(e, s.items, m[k]); err != nil {
					return err
				}
			}
		}
		e.long(0)
	case kindRecord:
		m, ok := v.(map[string]any)
		if !ok {
			return bad()
		}
		for _, f := range s.fields {
			fv, ok := m[f.name]
			if !ok {
				if !f.hasDef {
					return fmt.Errorf("default for %s lacks field %q", s.name, f.name)
				}
				fv = f.def
			}
			if err := encodeDefault(e, f.typ, fv); err != nil {
				return fmt.Errorf("field %q: %w", f.name, err)
			}
		}
	case kindUnion:
		e.long(0)
		return encodeDefault(e, s.branches[0], v)
	}
	return nil
}

// defaultBytes is encodeDefault into a fresh slice.
func defaultBytes(s *schema, v any) ([]byte, error) {
	var e encoder
	if err := encodeDefault(&e, s, v); err != nil {
		return nil, err
	}
	return bytes.Clone(e.b), nil
}
