package debian

import (
	"bytes"
	"fmt"
	"io"
	"strings"
)

// Package is one stanza of a Packages index, reduced to the fields the
// dependency graph needs.
type Package struct {
	// Name is the binary package name (the Package field).
	Name    string
	Version string
	// Architecture is the package's architecture ("amd64", "all").
	Architecture string
	// Source is the source package name: the Source field without its
	// version, or Name when the stanza has no Source field.
	Source string
	// SourceVersion is the version in parentheses in the Source field
	// ("Source: glibc (2.36-9)"), or Version when there is none.
	SourceVersion string
	// Depends and PreDepends are the dependency fields, one Clause per
	// comma-separated element.
	Depends    []Clause
	PreDepends []Clause
	// BuiltUsing names the source packages whose code the binary embeds
	// (Built-Using), each with its exact version.
	BuiltUsing []Dep
	// Provides names the virtual packages the package provides.
	Provides []Dep
}

// Clause is one comma-separated element of a dependency field: its
// alternatives ("a | b"), any one of which satisfies it.
type Clause []Dep

// Dep is one alternative of a dependency, or one element of Provides or
// Built-Using. Architecture restrictions ("[amd64 !i386]") and build
// profiles ("<!nocheck>"), which only source packages' build dependencies
// carry, are parsed and dropped.
type Dep struct {
	// Name is the package name, without its architecture qualifier.
	Name string
	// Arch is the architecture qualifier after a colon ("any" in
	// "python3:any", "i386" in "gcc:i386"), or "".
	Arch string
	// Op is the version relation ("<<", "<=", "=", ">=", ">>", or the
	// obsolete "<" and ">" as written), or "" when there is no constraint.
	Op string
	// Version is the version the constraint compares with, or "".
	Version string
}

// The fields a Scanner keeps, by key.
const (
	fPackage = iota
	fVersion
	fArchitecture
	fSource
	fDepends
	fPreDepends
	fBuiltUsing
	fProvides
	nFields
)

var fieldNames = [nFields]string{
	fPackage:      "Package",
	fVersion:      "Version",
	fArchitecture: "Architecture",
	fSource:       "Source",
	fDepends:      "Depends",
	fPreDepends:   "Pre-Depends",
	fBuiltUsing:   "Built-Using",
	fProvides:     "Provides",
}

// packageField returns the key of a field a Scanner keeps, or -1. Field
// names are case-insensitive (deb822(5)).
func packageField(name []byte) int {
	for k, f := range fieldNames {
		if len(f) == len(name) && bytes.EqualFold(name, []byte(f)) {
			return k
		}
	}
	return -1
}

// Scanner reads the packages of a Packages index one stanza at a time, in
// the style of bufio.Scanner: call Scan until it returns false, then Err.
// A Scanner is not safe for concurrent use.
type Scanner struct {
	sr   *stanzaReader
	pkg  Package
	seen [nFields]bool
	err  error
}

// NewScanner returns a Scanner reading r, which must be uncompressed text
// (see Open).
func NewScanner(r io.Reader) *Scanner {
	return &Scanner{sr: newStanzaReader(r)}
}

// Scan parses the next package. It returns false at the end of the input
// or on the first error, which Err then returns: a malformed stanza stops
// the scan rather than being skipped, so a damaged index never looks like
// a shorter one.
func (s *Scanner) Scan() bool {
	if s.err != nil {
		return false
	}
	s.pkg, s.seen = Package{}, [nFields]bool{}
	start, err := s.sr.next(packageField, s.field)
	if err != nil {
		s.err = err
		return false
	}
	if start == 0 {
		return false
	}
	if !s.seen[fPackage] || s.pkg.Name == "" {
		s.err = &SyntaxError{Line: start, Msg: "stanza has no Package field"}
		return false
	}
	if s.pkg.Source == "" {
		s.pkg.Source = s.pkg.Name
	}
	if s.pkg.SourceVersion == "" {
		s.pkg.SourceVersion = s.pkg.Version
	}
	return true
}

// Package returns the package Scan parsed. The Package is the Scanner's
// own: the next Scan replaces it, but slices and strings taken from it stay
// valid.
func (s *Scanner) Package() *Package { return &s.pkg }

// Err returns the first error of the scan, or nil when it reached the end
// of the input.
func (s *Scanner) Err() error { return s.err }

// Line returns the number of lines read so far.
func (s *Scanner) Line() int { return s.sr.line }

func (s *Scanner) field(key int, name, value []byte, line int) error {
	if s.seen[key] {
		return &SyntaxError{Line: line, Field: string(name), Msg: "field appears twice in the stanza"}
	}
	s.seen[key] = true
	v := string(value)
	var err error
	switch key {
	case fPackage:
		s.pkg.Name = v
	case fVersion:
		s.pkg.Version = v
	case fArchitecture:
		s.pkg.Architecture = v
	case fSource:
		s.pkg.Source, s.pkg.SourceVersion, err = parseSource(v)
	case fDepends:
		s.pkg.Depends, err = ParseRelations(v)
	case fPreDepends:
		s.pkg.PreDepends, err = ParseRelations(v)
	case fBuiltUsing:
		s.pkg.BuiltUsing, err = parseList(v)
	case fProvides:
		s.pkg.Provides, err = parseList(v)
	}
	if err != nil {
		return &SyntaxError{Line: line, Field: fieldNames[key], Msg: err.Error()}
	}
	return nil
}

// parseSource splits a Source field, "name" or "name (version)".
func parseSource(v string) (name, version string, err error) {
	name, rest, _ := strings.Cut(v, " ")
	rest = strings.TrimSpace(rest)
	if rest == "" {
		return name, "", nil
	}
	if !strings.HasPrefix(rest, "(") || !strings.HasSuffix(rest, ")") {
		return "", "", fmt.Errorf("want %q or %q, got %q", "name", "name (version)", v)
	}
	return name, strings.TrimSpace(rest[1 : len(rest)-1]), nil
}

// parseList parses a field that is a list without alternatives (Provides,
// Built-Using).
func parseList(v string) ([]Dep, error) {
	clauses, err := ParseRelations(v)
	if err != nil {
		return nil, err
	}
	deps := make([]Dep, len(clauses))
	for i, c := range clauses {
		if len(c) != 1 {
			return nil, fmt.Errorf("element %d has alternatives (|), which this field does not allow", i+1)
		}
		deps[i] = c[0]
	}
	return deps, nil
}

// ParseRelations parses the value of a relationship field (Depends,
// Pre-Depends, Recommends, Provides, Built-Using, Build-Depends, ...):
// comma-separated clauses of alternatives separated by '|', each
// "name[:arch] [(op version)] [[arch ...]] [<profile ...>]...". Line breaks
// count as spaces. An empty value has no clauses; an empty clause or
// alternative is an error.
func ParseRelations(v string) ([]Clause, error) {
	if trimSpace(v) == "" {
		return nil, nil
	}
	clauses := make([]Clause, 0, strings.Count(v, ",")+1)
	for elem := range strings.SplitSeq(v, ",") {
		c := make(Clause, 0, strings.Count(elem, "|")+1)
		for alt := range strings.SplitSeq(elem, "|") {
			d, err := parseDep(alt)
			if err != nil {
				return nil, fmt.Errorf("element %d: %w", len(clauses)+1, err)
			}
			c = append(c, d)
		}
		clauses = append(clauses, c)
	}
	return clauses, nil
}

// parseDep parses one alternative: name[:arch] [(op version)] [[...]] [<...>]...
func parseDep(alt string) (Dep, error) {
	s := trimSpace(alt)
	var d Dep
	d.Name, s = cutToken(s, " \t\n\r([<:")
	if !isWord(d.Name) {
		return Dep{}, fmt.Errorf("%q: bad package name %q", alt, d.Name)
	}
	if strings.HasPrefix(s, ":") {
		d.Arch, s = cutToken(s[1:], " \t\n\r([<")
		if !isWord(d.Arch) {
			return Dep{}, fmt.Errorf("%q: bad architecture qualifier %q", alt, d.Arch)
		}
	}
	s = trimSpace(s)
	if strings.HasPrefix(s, "(") {
		inner, after, ok := strings.Cut(s[1:], ")")
		if !ok {
			return Dep{}, fmt.Errorf("%q: unclosed (", alt)
		}
		inner = trimSpace(inner)
		op := len(inner) - len(strings.TrimLeft(inner, "<>="))
		d.Op, d.Version = inner[:op], trimSpace(inner[op:])
		if !validOps[d.Op] || !isWord(d.Version) {
			return Dep{}, fmt.Errorf("%q: want (op version) with op one of << <= = >= >> (or the obsolete < >)", alt)
		}
		s = trimSpace(after)
	}
	for _, pair := range [...]string{"[]", "<>"} { // restrictions, then profiles
		for strings.HasPrefix(s, pair[:1]) {
			_, after, ok := strings.Cut(s[1:], pair[1:])
			if !ok {
				return Dep{}, fmt.Errorf("%q: unclosed %s", alt, pair[:1])
			}
			s = trimSpace(after)
		}
	}
	if s != "" {
		return Dep{}, fmt.Errorf("%q: unexpected %q", alt, s)
	}
	return d, nil
}

// validOps are the version relations of deb-control(5); "<" and ">" are
// obsolete forms of "<=" and ">=" that dpkg still reads.
var validOps = map[string]bool{"<<": true, "<=": true, "=": true, ">=": true, ">>": true, "<": true, ">": true}

// isWord reports whether s is a non-empty run of printable ASCII without
// the characters that delimit the parts of a relationship. It is looser
// than Debian policy's package name and version syntax, which the graph
// does not depend on.
func isWord(s string) bool {
	if s == "" {
		return false
	}
	for i := range len(s) {
		if c := s[i]; c <= ' ' || c >= 0x7f || strings.IndexByte("()[]<>,|", c) >= 0 {
			return false
		}
	}
	return true
}

// cutToken splits s before the first byte of stops.
func cutToken(s, stops string) (token, rest string) {
	if i := strings.IndexAny(s, stops); i >= 0 {
		return s[:i], s[i:]
	}
	return s, ""
}

// trimSpace trims the whitespace of a relationship field (a line break is
// a folded line).
func trimSpace(s string) string { return strings.Trim(s, " \t\n\r") }
