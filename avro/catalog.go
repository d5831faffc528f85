package avro

import (
	"embed"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
)

// schemaFS holds every released schema version, schemas/<Record>/v<N>.avsc.
//
//go:embed schemas
var schemaFS embed.FS

// recordType ties a Go record type to its schema versions. Its codec for
// the current version is the hand-written one of fast.go, reached by tag.
type recordType struct {
	tag       recordTag
	name      string // full schema name, "org.factory2.BuildEvent"
	typeName  string // JSON discriminator, "build"
	newRecord func() Record

	versions []*version // oldest first
	current  *version   // the last of versions
}

// version is one stored schema version of a record type.
type version struct {
	rt          *recordType
	number      int
	text        string // the .avsc as stored
	schema      *schema
	canonical   string
	fingerprint uint64
	// toCurrent rewrites data written with this version into the current
	// version's encoding; nil for the current version.
	toCurrent op
}

func defineType[T any, P interface {
	*T
	Record
}](tag recordTag, typeName string) *recordType {
	return &recordType{
		tag:       tag,
		name:      P(new(T)).SchemaName(),
		typeName:  typeName,
		newRecord: func() Record { return P(new(T)) },
	}
}

// contractTypes lists every record type of the contract, in tag order.
func contractTypes() []*recordType {
	return []*recordType{
		defineType[BuildEvent](tagBuildEvent, "build"),
		defineType[SignEvent](tagSignEvent, "sign"),
		defineType[TestResult](tagTestResult, "test_result"),
		defineType[Waiver](tagWaiver, "waiver"),
		defineType[RemoteRuleFile](tagRemoteRuleFile, "remote_rule_file"),
		defineType[ComposeEvent](tagComposeEvent, "compose"),
		defineType[GatingDecision](tagGatingDecision, "gating_decision"),
		defineType[AutosignDecision](tagAutosignDecision, "autosign"),
		defineType[SignedStatus](tagSignedStatus, "signed_status"),
		defineType[ComposeReadyDecision](tagComposeReadyDecision, "compose_ready"),
		defineType[RebuildDecision](tagRebuildDecision, "rebuild"),
		defineType[ComposeMember](tagComposeMember, "compose_member"),
		defineType[DependencyEdge](tagDependencyEdge, "dependency_edge"),
	}
}

// catalog is the immutable set of record types and schema versions a
// Codec knows.
type catalog struct {
	types         []*recordType // in tag order
	byName        map[string]*recordType
	byTypeName    map[string]*recordType
	byFingerprint map[uint64]*version
}

// builtin is the catalog of the embedded schemas. Loading can fail only if
// the embedded .avsc files are broken, which every test of this package
// would report; like regexp.MustCompile on a constant, it panics then.
var builtin = func() *catalog {
	c, err := loadCatalog(schemaFS, contractTypes())
	if err != nil {
		panic(err)
	}
	return c
}()

// loadCatalog reads schemas/<Record>/v<N>.avsc from fsys for every type.
func loadCatalog(fsys fs.FS, types []*recordType) (*catalog, error) {
	c := &catalog{
		types:         types,
		byName:        map[string]*recordType{},
		byTypeName:    map[string]*recordType{},
		byFingerprint: map[uint64]*version{},
	}
	for i, rt := range types {
		if int(rt.tag) != i {
			return nil, fmt.Errorf("avro: record types out of tag order at %s", rt.name)
		}
		c.byName[rt.name] = rt
		c.byTypeName[rt.typeName] = rt
	}
	if len(types) != numTags {
		return nil, fmt.Errorf("avro: %d record types, want %d", len(types), numTags)
	}
	dirs, err := fs.ReadDir(fsys, "schemas")
	if err != nil {
		return nil, fmt.Errorf("avro: reading schemas: %w", err)
	}
	for _, d := range dirs {
		if _, ok := c.byName["org.factory2."+d.Name()]; !ok || !d.IsDir() {
			return nil, fmt.Errorf("avro: schemas/%s is not a record type of the contract", d.Name())
		}
	}
	for _, rt := range types {
		if err := c.loadVersions(fsys, rt); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func (c *catalog) loadVersions(fsys fs.FS, rt *recordType) error {
	dir := path.Join("schemas", shortName(rt.name))
	files, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return fmt.Errorf("avro: no schemas for %s: %w", rt.name, err)
	}
	numbers := map[int]string{}
	for _, f := range files {
		n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(f.Name(), "v"), ".avsc"))
		if err != nil || n < 1 || f.Name() != fmt.Sprintf("v%d.avsc", n) {
			return fmt.Errorf("avro: %s/%s: schema files must be named v<N>.avsc", dir, f.Name())
		}
		numbers[n] = f.Name()
	}
	if len(numbers) == 0 {
		return fmt.Errorf("avro: no schemas for %s in %s", rt.name, dir)
	}
	for n := 1; n <= len(numbers); n++ {
		file, ok := numbers[n]
		if !ok {
			return fmt.Errorf("avro: %s: versions must be v1..v%d with none missing", dir, len(numbers))
		}
		text, err := fs.ReadFile(fsys, path.Join(dir, file))
		if err != nil {
			return fmt.Errorf("avro: %w", err)
		}
		s, err := parseSchema(string(text))
		if err != nil {
			return fmt.Errorf("%s/%s: %w", dir, file, err)
		}
		if s.kind != kindRecord || s.name != rt.name {
			return fmt.Errorf("avro: %s/%s: schema must be the record %s, not %s", dir, file, rt.name, s.typeName())
		}
		v := &version{rt: rt, number: n, text: string(text), schema: s, canonical: canonicalForm(s)}
		v.fingerprint = fingerprint(v.canonical)
		// Decode also accepts the fingerprint goavro and the Python avro
		// package compute (see logicalObjectForm).
		for _, fp := range []uint64{v.fingerprint, fingerprint(logicalObjectForm(s))} {
			if other, dup := c.byFingerprint[fp]; dup && other != v {
				return fmt.Errorf("avro: %s/%s has the same canonical form as %s v%d", dir, file, other.rt.name, other.number)
			}
			c.byFingerprint[fp] = v
		}
		rt.versions = append(rt.versions, v)
	}
	rt.current = rt.versions[len(rt.versions)-1]
	for _, v := range rt.versions[:len(rt.versions)-1] {
		if v.toCurrent, err = resolution(v.schema, rt.current.schema); err != nil {
			return fmt.Errorf("avro: %s v%d cannot be read as v%d: %w", rt.name, v.number, rt.current.number, err)
		}
	}
	return nil
}

// typeOf returns the record type of r, or an error if r is not a
// (non-nil) contract record.
func (c *catalog) typeOf(r Record) (*recordType, error) {
	tag, ok := tagOf(r)
	if !ok {
		if r == nil {
			return nil, fmt.Errorf("%w: nil record", ErrUnknownType)
		}
		return nil, fmt.Errorf("%w: %T", ErrUnknownType, r)
	}
	return c.types[tag], nil
}

// writerFor resolves a writer schema text (from a schema registry) to the
// record type it is a version of, its full name, and the conversion of its
// data to the current version (nil when it is the current version).
func (c *catalog) writerFor(text string) (*recordType, string, op, error) {
	s, err := parseSchema(text)
	if err != nil {
		return nil, "", nil, err
	}
	if v := c.byFingerprint[fingerprint(canonicalForm(s))]; v != nil {
		return v.rt, s.name, v.toCurrent, nil
	}
	if s.kind != kindRecord {
		return nil, "", nil, &UnknownSchemaError{Name: s.typeName()}
	}
	// An unknown version (say, a newer one from a newer producer) of a
	// known record: resolve it by name against the current version.
	for _, rt := range c.types {
		if namesMatch(s, rt.current.schema) {
			conv, err := resolution(s, rt.current.schema)
			if err != nil {
				return nil, "", nil, fmt.Errorf("avro: %s: %w", s.name, err)
			}
			return rt, s.name, conv, nil
		}
	}
	return nil, "", nil, &UnknownSchemaError{Name: s.name}
}

// SchemaInfo describes the schema of one record type: its current version
// and every released version. The schema registry subject of a record
// type is its Name (RecordNameStrategy).
type SchemaInfo struct {
	// Name is the schema's full name, e.g. "org.factory2.BuildEvent".
	Name string
	// TypeName is the JSON discriminator, e.g. "build".
	TypeName string
	// Current is the version Encode writes.
	Current SchemaVersion
	// Versions lists every released version, oldest first; the last is
	// Current.
	Versions []SchemaVersion
}

// SchemaVersion is one released version of a schema.
type SchemaVersion struct {
	// Version counts from 1.
	Version int
	// Text is the .avsc file as stored.
	Text string
	// Canonical is the schema's Parsing Canonical Form.
	Canonical string
	// Fingerprint is the CRC-64-AVRO fingerprint of Canonical, the one a
	// single-object encoding carries.
	Fingerprint uint64
}

func (rt *recordType) info() SchemaInfo {
	si := SchemaInfo{Name: rt.name, TypeName: rt.typeName}
	for _, v := range rt.versions {
		si.Versions = append(si.Versions, SchemaVersion{
			Version: v.number, Text: v.text, Canonical: v.canonical, Fingerprint: v.fingerprint,
		})
	}
	si.Current = si.Versions[len(si.Versions)-1]
	return si
}

// Schemas describes the schema of every record type, sorted by name.
func Schemas() []SchemaInfo {
	out := make([]SchemaInfo, 0, len(builtin.types))
	for _, rt := range builtin.types {
		out = append(out, rt.info())
	}
	slices.SortFunc(out, func(a, b SchemaInfo) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Schema describes the schema of one record type, named by its full name
// ("org.factory2.BuildEvent"), its short name ("BuildEvent") or its type
// name ("build").
func Schema(name string) (SchemaInfo, error) {
	rt := builtin.byName[name]
	if rt == nil {
		rt = builtin.byName["org.factory2."+name]
	}
	if rt == nil {
		rt = builtin.byTypeName[name]
	}
	if rt == nil {
		return SchemaInfo{}, fmt.Errorf("%w %q", ErrUnknownType, name)
	}
	return rt.info(), nil
}
