package debian

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/factory2/factory2/avro"
)

// Node types of the Debian graph.
const (
	TypeDeb    = "deb"        // a binary package, by name
	TypeSource = "deb-source" // a source package, by name
)

// RelProvidedBy is the relation deb:V --provided-by--> deb:P: package P
// Provides the virtual package V (see the package documentation). It is
// not among avro's Rel* constants, which any other relation may join.
const RelProvidedBy = avro.RelProvidedBy

// AppendEdges appends the edges of package p of index x to dst and returns
// the extended slice: p built from its source, p requiring each
// alternative of its Pre-Depends and Depends, p embedding each source of
// its Built-Using, and each virtual package p Provides provided by p. The
// appended edges are distinct, sorted by relation, from and to, and carry
// their envelopes (see EdgeID; IngestTime is left zero). AppendEdges is a
// pure function of its arguments.
func AppendEdges(dst []avro.DependencyEdge, p *Package, x Index) []avro.DependencyEdge {
	start := len(dst)
	add := func(fromType, from, rel, toType, to string) {
		dst = append(dst, avro.DependencyEdge{FromType: fromType, FromID: from, Relation: rel, ToType: toType, ToID: to})
	}
	add(TypeDeb, p.Name, avro.RelBuiltFrom, TypeSource, p.Source)
	for _, field := range [...][]Clause{p.PreDepends, p.Depends} {
		for _, c := range field {
			for _, d := range c {
				add(TypeDeb, p.Name, avro.RelRequires, TypeDeb, d.Name)
			}
		}
	}
	for _, d := range p.BuiltUsing {
		add(TypeDeb, p.Name, avro.RelEmbeds, TypeSource, d.Name)
	}
	for _, d := range p.Provides {
		if d.Name != p.Name {
			add(TypeDeb, d.Name, RelProvidedBy, TypeDeb, p.Name)
		}
	}
	own := dst[start:]
	slices.SortFunc(own, compareEdges)
	own = slices.CompactFunc(own, func(a, b avro.DependencyEdge) bool { return compareEdges(a, b) == 0 })
	dst = dst[:start+len(own)]
	var buf []byte
	src := x.Source()
	for i := range own {
		e := &own[i]
		e.Envelope = avro.Envelope{Source: src, EventTime: x.Date}
		e.ID, buf = edgeID(buf, x.Codename, e)
	}
	return dst
}

func compareEdges(a, b avro.DependencyEdge) int {
	return cmp.Or(
		strings.Compare(a.Relation, b.Relation),
		strings.Compare(a.FromType, b.FromType),
		strings.Compare(a.FromID, b.FromID),
		strings.Compare(a.ToType, b.ToType),
		strings.Compare(a.ToID, b.ToID),
		cmp.Compare(b2i(a.Removed), b2i(b.Removed)),
	)
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// EdgeID returns the ID of edge e of the release codename: "sha256:" and
// the first 128 bits, in hex, of the SHA-256 of the codename, from type,
// from id, relation, to type and to id, each followed by a zero byte, and
// a byte 1 or 0 for Removed. The envelope's other fields are not part of
// it: the same edge read again from a newer index of the same release is
// the same event.
func EdgeID(codename string, e *avro.DependencyEdge) string {
	id, _ := edgeID(nil, codename, e)
	return id
}

// edgeID is EdgeID reusing buf, which it returns.
func edgeID(buf []byte, codename string, e *avro.DependencyEdge) (string, []byte) {
	buf = buf[:0]
	for _, s := range [...]string{codename, e.FromType, e.FromID, e.Relation, e.ToType, e.ToID} {
		buf = append(buf, s...)
		buf = append(buf, 0)
	}
	buf = append(buf, byte(b2i(e.Removed)))
	sum := sha256.Sum256(buf)
	return "sha256:" + hex.EncodeToString(sum[:16]), buf
}

// Stats counts what Load read and produced.
type Stats struct {
	// Packages is the number of stanzas parsed.
	Packages int
	// Sources is the number of distinct source packages they were built
	// from.
	Sources int
	// Edges is the number of edges produced; ByRelation splits it by
	// relation.
	Edges      int
	ByRelation map[string]int
	// Duplicates is the number of edges dropped because an earlier stanza
	// of the same package name (another version in the same index) gave
	// them already.
	Duplicates int
	// Elapsed is the time from opening the file to the last edge.
	Elapsed time.Duration
}

// LoadOptions are Load's optional knobs.
type LoadOptions struct {
	// Progress, when set, is called on Load's goroutine with the counts
	// so far, every ProgressEvery packages and once at the end. It owns
	// the Stats it receives.
	Progress func(Stats)
	// ProgressEvery defaults to 5000.
	ProgressEvery int
}

// Load reads index x and returns its edges (AppendEdges of every package,
// in file order) and counts. An edge given by two stanzas of the same
// package (two versions of it in one index) is returned once, so every
// returned edge has a distinct ID. Names are interned: the edges of a main
// index (hundreds of thousands) share one string per package name, and
// take about 260 bytes each (95 MiB for bookworm's main index on amd64).
// Load stops at the first error, including ctx's.
func Load(ctx context.Context, x Index, opts LoadOptions) ([]avro.DependencyEdge, Stats, error) {
	begin := time.Now()
	every := cmp.Or(opts.ProgressEvery, 5000)
	rc, err := Open(ctx, x.Filename)
	if err != nil {
		return nil, Stats{}, err
	}
	defer rc.Close()
	l := newLoader(x)
	report := func() {
		if opts.Progress != nil {
			opts.Progress(l.stats(begin))
		}
	}
	sc := NewScanner(rc)
	for sc.Scan() {
		if l.st.Packages%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, Stats{}, fmt.Errorf("debian: loading %s: %w", x.Filename, err)
			}
		}
		l.add(sc.Package())
		if l.st.Packages%every == 0 {
			report()
		}
	}
	if err := sc.Err(); err != nil {
		var se *SyntaxError
		if errors.As(err, &se) {
			se.Path = x.Filename
		}
		return nil, Stats{}, err // Open's errors name the file
	}
	edges := l.edges()
	report()
	return edges, l.stats(begin), nil
}

// loader accumulates the edges of an index, package by package.
type loader struct {
	x  Index
	st Stats
	// chunks hold the edges; a package's edges are contiguous in one
	// chunk. Appending to one slice instead would copy the edges about
	// four times over as it grows (Go grows large slices by a quarter).
	chunks  [][]avro.DependencyEdge
	names   map[string]string   // interned names
	sources map[string]struct{} // distinct sources
	spans   map[string][]span   // each package's edges, by stanza
}

// span locates a stanza's edges: chunks[chunk][start:end].
type span struct{ chunk, start, end int }

const chunkSize = 1 << 16

func newLoader(x Index) *loader {
	return &loader{x: x, st: Stats{ByRelation: map[string]int{}}, names: map[string]string{},
		sources: map[string]struct{}{}, spans: map[string][]span{}}
}

// add appends p's edges, less those an earlier stanza of p gave.
func (l *loader) add(p *Package) {
	if len(l.chunks) == 0 || cap(l.chunks[len(l.chunks)-1])-len(l.chunks[len(l.chunks)-1]) < chunkSize/16 {
		l.chunks = append(l.chunks, make([]avro.DependencyEdge, 0, chunkSize))
	}
	ci := len(l.chunks) - 1
	chunk := l.chunks[ci]
	start := len(chunk)
	chunk = AppendEdges(chunk, p, l.x)
	if prev := l.spans[p.Name]; prev != nil {
		n := len(chunk)
		chunk = l.dropSeen(chunk, start, prev)
		l.st.Duplicates += n - len(chunk)
	}
	l.chunks[ci] = chunk
	name := l.intern(p.Name)
	l.spans[name] = append(l.spans[name], span{ci, start, len(chunk)})
	l.sources[l.intern(p.Source)] = struct{}{}
	for i := start; i < len(chunk); i++ {
		e := &chunk[i]
		e.FromID, e.ToID, e.Source = l.intern(e.FromID), l.intern(e.ToID), l.intern(e.Source)
		l.st.ByRelation[e.Relation]++
	}
	l.st.Packages++
	l.st.Edges += len(chunk) - start
}

// dropSeen removes from chunk[start:] the edges whose IDs appear in the
// spans prev, and returns the shortened chunk.
func (l *loader) dropSeen(chunk []avro.DependencyEdge, start int, prev []span) []avro.DependencyEdge {
	seen := map[string]struct{}{}
	for _, s := range prev {
		c := l.chunks[s.chunk]
		if s.chunk == len(l.chunks)-1 {
			c = chunk // the current chunk, perhaps grown by AppendEdges
		}
		for _, e := range c[s.start:s.end] {
			seen[e.ID] = struct{}{}
		}
	}
	tail := slices.DeleteFunc(chunk[start:], func(e avro.DependencyEdge) bool {
		_, dup := seen[e.ID]
		return dup
	})
	return chunk[:start+len(tail)]
}

func (l *loader) intern(s string) string {
	if v, ok := l.names[s]; ok {
		return v
	}
	s = strings.Clone(s) // not a substring pinning a whole field
	l.names[s] = s
	return s
}

// edges returns all the edges in one slice, releasing the chunks.
func (l *loader) edges() []avro.DependencyEdge {
	out := make([]avro.DependencyEdge, 0, l.st.Edges)
	for i, c := range l.chunks {
		out = append(out, c...)
		l.chunks[i] = nil
	}
	return out
}

// stats returns a copy of the counts so far.
func (l *loader) stats(begin time.Time) Stats {
	st := l.st
	st.Sources = len(l.sources)
	st.ByRelation = maps.Clone(l.st.ByRelation)
	st.Elapsed = time.Since(begin)
	return st
}
