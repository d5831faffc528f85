package debian

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/factory2/factory2/avro"
)

// The tests in this file read this machine's own Debian package index, the
// one apt uses, and check the graph against apt's answers for the same
// file. They need apt's lists: deploy/deps.sh runs apt-get update when
// there are none.

// mainIndex returns the largest "main" binary Packages index apt has (the
// release itself, not its -updates or -security companions), failing the
// test when there is none.
func mainIndex(t testing.TB) Index {
	t.Helper()
	all, err := Indexes(context.Background())
	switch {
	case errors.Is(err, ErrNoIndexes):
		t.Fatalf("%v: these tests read the machine's own Packages index (deploy/deps.sh runs apt-get update when there is none)", err)
	case errors.Is(err, exec.ErrNotFound):
		t.Fatalf("%v: these tests need a Debian machine with apt", err)
	case err != nil:
		t.Fatal(err)
	}
	var best Index
	var bestSize int64 = -1
	for _, x := range all {
		st, err := os.Stat(x.Filename)
		if err != nil {
			t.Fatal(err)
		}
		if x.Component == "main" && st.Size() > bestSize {
			best, bestSize = x, st.Size()
		}
	}
	if bestSize < 0 {
		t.Fatalf("apt has %d Packages indexes but none of a main component", len(all))
	}
	return best
}

// graph indexes a list of edges for the questions the tests ask.
type graph struct {
	edges    []avro.DependencyEdge
	stanzas  map[string]bool                             // package names with a stanza
	rdeps    map[string]map[string]bool                  // to -> froms of requires edges
	provided map[string]map[string]bool                  // virtual -> providers
	out      map[string]map[string][]avro.DependencyEdge // from -> relation -> edges
}

func newGraph(edges []avro.DependencyEdge) *graph {
	g := &graph{edges: edges, stanzas: map[string]bool{}, rdeps: map[string]map[string]bool{},
		provided: map[string]map[string]bool{}, out: map[string]map[string][]avro.DependencyEdge{}}
	add := func(m map[string]map[string]bool, k, v string) {
		if m[k] == nil {
			m[k] = map[string]bool{}
		}
		m[k][v] = true
	}
	for _, e := range edges {
		switch e.Relation {
		case avro.RelBuiltFrom:
			g.stanzas[e.FromID] = true
		case avro.RelRequires:
			add(g.rdeps, e.ToID, e.FromID)
		case RelProvidedBy:
			add(g.provided, e.FromID, e.ToID)
		}
		if g.out[e.FromID] == nil {
			g.out[e.FromID] = map[string][]avro.DependencyEdge{}
		}
		g.out[e.FromID][e.Relation] = append(g.out[e.FromID][e.Relation], e)
	}
	return g
}

func TestRealIndex(t *testing.T) {
	x := mainIndex(t)
	edges, st, err := Load(context.Background(), x, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s %s %s: %d packages from %d sources, %d edges %v, %d duplicate edges dropped, parsed in %v",
		x.Codename, x.MetaKey, x.Date.Format("2006-01-02"), st.Packages, st.Sources, st.Edges, st.ByRelation, st.Duplicates, st.Elapsed)
	g := newGraph(edges)
	apt := newAptCache(t, x)

	t.Run("counts", func(t *testing.T) { testCounts(t, x, g, st) })
	t.Run("rdepends", func(t *testing.T) { testRdepends(t, x, g, apt) })
	t.Run("provides", func(t *testing.T) { testProvides(t, g, apt) })
	t.Run("sources", func(t *testing.T) { testSources(t, g, apt) })
}

// testCounts: the package count agrees with a plain count of "Package:"
// lines, every package has exactly one source, the sizes are those of a
// distribution, and the dependents are as skewed as a real one's.
func testCounts(t *testing.T, x Index, g *graph, st Stats) {
	lines := countPackageLines(t, x.Filename)
	if st.Packages != lines {
		t.Errorf("parsed %d packages, the file has %d Package: lines", st.Packages, lines)
	}
	if len(g.stanzas) != st.ByRelation[avro.RelBuiltFrom] {
		t.Errorf("%d packages but %d built-from edges: each must have exactly one source", len(g.stanzas), st.ByRelation[avro.RelBuiltFrom])
	}
	ids := make(map[string]bool, len(g.edges))
	for _, e := range g.edges {
		if ids[e.ID] {
			t.Fatalf("edge %s: duplicate id %s", edgeString(e), e.ID)
		}
		ids[e.ID] = true
	}
	// A Debian release's main component has tens of thousands of binary
	// packages (bookworm: 63,440 on amd64) and several edges each.
	if st.Packages < 30000 || st.Edges < 4*st.Packages || st.ByRelation[avro.RelRequires] < 2*st.Packages {
		t.Errorf("%d packages and %d edges %v: not the size of a distribution's main index", st.Packages, st.Edges, st.ByRelation)
	}

	type node struct {
		name string
		n    int
	}
	var nodes []node
	for to, froms := range g.rdeps {
		nodes = append(nodes, node{to, len(froms)})
	}
	slices.SortFunc(nodes, func(a, b node) int { return cmp.Or(b.n-a.n, strings.Compare(a.name, b.name)) })
	var top []string
	for _, n := range nodes[:min(10, len(nodes))] {
		top = append(top, fmt.Sprintf("%s %d", n.name, n.n))
	}
	median := nodes[len(nodes)/2].n
	withNone := len(g.stanzas)
	for _, n := range nodes {
		if g.stanzas[n.name] {
			withNone--
		}
	}
	t.Logf("most direct dependents: %s; median over the %d required names: %d; %d of %d packages have no dependents",
		strings.Join(top, ", "), len(nodes), median, withNone, len(g.stanzas))
	if nodes[0].n < 100*max(median, 1) {
		t.Errorf("the most required package has %d dependents, the median %d: no popularity skew", nodes[0].n, median)
	}
}

// countPackageLines counts the lines that start with "Package:", the
// simplest independent count of the stanzas.
func countPackageLines(t *testing.T, path string) int {
	rc, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	br := bufio.NewReaderSize(rc, 1<<20)
	n := 0
	for {
		line, err := br.ReadSlice('\n')
		if strings.HasPrefix(string(line[:min(len(line), 8)]), "Package:") {
			n++
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			for errors.Is(err, bufio.ErrBufferFull) { // the rest of a long line
				_, err = br.ReadSlice('\n')
			}
		}
		if errors.Is(err, io.EOF) {
			return n
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// popular are libraries and tools most of Debian depends on, across
// releases (the t64 names are trixie's after the 64-bit time_t
// transition). The test uses those with a stanza in the index.
var popular = []string{
	"libc6", "libgcc-s1", "libstdc++6", "zlib1g", "libssl3", "libssl3t64",
	"libglib2.0-0", "libglib2.0-0t64", "debconf", "python3", "perl",
}

// testRdepends: for each popular package, the packages with a requires
// edge to it are the reverse Depends and Pre-Depends apt-cache rdepends
// reports for the same index, except those that depend on it only through
// an architecture qualifier ("python3:any"): apt files such a dependency
// under another name ("python3:any", an implicit provide of the
// Multi-Arch: allowed python3), which `apt-cache rdepends python3` does not
// list, while the graph, which drops qualifiers, counts it as a dependency
// on python3. The test computes those from the index and checks that they
// are exactly the difference.
//
// What else differs in apt-cache's output and is handled here: it lists a
// package once per dependency naming the target (twice for a package that
// names it in two clauses, or in Depends and Pre-Depends), so the
// comparison is of sets; it prefixes an alternative that is not the last of
// its clause with '|' (every alternative is an edge, so these count); and
// under each reverse dependency it lists, indented by four spaces, the
// other packages that would satisfy that dependency (providers of the
// target), which are not reverse dependencies of the target and are not
// counted.
func testRdepends(t *testing.T, x Index, g *graph, apt *aptCache) {
	var libs []string
	for _, p := range popular {
		if g.stanzas[p] {
			libs = append(libs, p)
		}
	}
	if len(libs) < 4 {
		t.Fatalf("only %v of %v in the index", libs, popular)
	}
	qualified := qualifiedOnly(t, x.Filename, libs)
	for _, lib := range libs {
		out := apt.run(t, "rdepends", "--no-recommends", "--no-suggests", "--no-conflicts",
			"--no-breaks", "--no-replaces", "--no-enhances", lib)
		aptSet, solutions, err := parseRdepends(out, lib)
		if err != nil {
			t.Errorf("%s: %v", lib, err)
			continue
		}
		want := maps.Clone(aptSet)
		for p := range qualified[lib] {
			want[p] = true
		}
		if only, extra := diff(g.rdeps[lib], want); len(only)+len(extra) > 0 {
			t.Errorf("%s: reverse dependencies differ from apt-cache rdepends: only in the graph %v, only in apt %v", lib, only, extra)
		}
		t.Logf("%s: %d direct dependents in the graph = %d from apt-cache rdepends + %d through an architecture qualifier only; apt also listed %d other satisfiers",
			lib, len(g.rdeps[lib]), len(aptSet), len(qualified[lib]), len(solutions))
	}
}

// qualifiedOnly reads the index and returns, for each of libs, the
// packages whose every Depends and Pre-Depends alternative naming it has
// an architecture qualifier.
func qualifiedOnly(t *testing.T, path string, libs []string) map[string]map[string]bool {
	rc, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	want := map[string]bool{}
	for _, l := range libs {
		want[l] = true
	}
	out := map[string]map[string]bool{}
	sc := NewScanner(rc)
	for sc.Scan() {
		p := sc.Package()
		plain, qualified := map[string]bool{}, map[string]bool{}
		for _, c := range slices.Concat(p.PreDepends, p.Depends) {
			for _, d := range c {
				if !want[d.Name] {
					continue
				}
				if d.Arch == "" {
					plain[d.Name] = true
				} else {
					qualified[d.Name] = true
				}
			}
		}
		for l := range qualified {
			if !plain[l] {
				if out[l] == nil {
					out[l] = map[string]bool{}
				}
				out[l][p.Name] = true
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// parseRdepends reads `apt-cache rdepends pkg`: the package's name, a
// "Reverse Depends:" line, then a line per reverse dependency ("  name",
// or " |name" for an alternative that is not its clause's last), each
// followed by lines indented by four spaces naming the other packages that
// satisfy that dependency. A package apt knows no version of is written
// "<name>".
func parseRdepends(out, pkg string) (rdeps, solutions map[string]bool, err error) {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) < 2 || lines[0] != pkg || lines[1] != "Reverse Depends:" {
		return nil, nil, fmt.Errorf("apt-cache rdepends output does not start with %q and \"Reverse Depends:\": %.200q", pkg, out)
	}
	rdeps, solutions = map[string]bool{}, map[string]bool{}
	for _, l := range lines[2:] {
		switch {
		case strings.HasPrefix(l, "    "):
			solutions[strings.Trim(strings.TrimSpace(l), "<>")] = true
		case strings.HasPrefix(l, "  "), strings.HasPrefix(l, " |"):
			rdeps[strings.Trim(strings.TrimSpace(l[2:]), "<>")] = true
		default:
			return nil, nil, fmt.Errorf("unexpected line %q", l)
		}
	}
	return rdeps, solutions, nil
}

// testProvides: the providers of virtual packages are those apt-cache
// showpkg lists as Reverse Provides, for the most required purely virtual
// names (and a few well-known ones when present).
func testProvides(t *testing.T, g *graph, apt *aptCache) {
	var virtual []string
	for v := range g.provided {
		if !g.stanzas[v] && len(g.rdeps[v]) > 0 {
			virtual = append(virtual, v)
		}
	}
	slices.SortFunc(virtual, func(a, b string) int {
		return cmp.Or(len(g.rdeps[b])-len(g.rdeps[a]), strings.Compare(a, b))
	})
	virtual = virtual[:min(6, len(virtual))]
	for _, v := range []string{"mail-transport-agent", "debconf-2.0", "awk", "c-compiler"} {
		if g.provided[v] != nil && !slices.Contains(virtual, v) {
			virtual = append(virtual, v)
		}
	}
	if len(virtual) < 3 {
		t.Fatalf("only %d virtual packages with providers and dependents", len(virtual))
	}
	for _, v := range virtual {
		out := apt.run(t, "showpkg", v)
		_, rest, ok := strings.Cut(out, "\nReverse Provides: \n")
		if !ok {
			t.Errorf("%s: no Reverse Provides in apt-cache showpkg: %.300q", v, out)
			continue
		}
		want := map[string]bool{}
		for l := range strings.Lines(rest) {
			if name, _, _ := strings.Cut(strings.TrimSpace(l), " "); name != "" {
				want[name] = true
			}
		}
		if only, extra := diff(g.provided[v], want); len(only)+len(extra) > 0 {
			t.Errorf("%s: providers differ from apt-cache showpkg: only in the graph %v, only in apt %v", v, only, extra)
		}
		t.Logf("%s: %d providers, %d direct dependents", v, len(g.provided[v]), len(g.rdeps[v]))
	}
}

// testSources: the built-from edge of each popular package names the
// Source apt-cache show reports.
func testSources(t *testing.T, g *graph, apt *aptCache) {
	for _, p := range popular {
		if !g.stanzas[p] {
			continue
		}
		out := apt.run(t, "show", "--no-all-versions", p)
		want := p
		for l := range strings.Lines(out) {
			if v, ok := strings.CutPrefix(l, "Source: "); ok {
				want, _, _ = strings.Cut(strings.TrimSpace(v), " ")
			}
		}
		got := g.out[p][avro.RelBuiltFrom]
		if len(got) != 1 || got[0].ToID != want || got[0].ToType != TypeSource {
			t.Errorf("%s: built-from edges %v, want one to deb-source:%s", p, edgeStrings(got), want)
		}
	}
}

// diff returns the sorted members of a not in b and of b not in a.
func diff(a, b map[string]bool) (onlyA, onlyB []string) {
	for k := range a {
		if !b[k] {
			onlyA = append(onlyA, k)
		}
	}
	for k := range b {
		if !a[k] {
			onlyB = append(onlyB, k)
		}
	}
	slices.Sort(onlyA)
	slices.Sort(onlyB)
	return onlyA, onlyB
}

// aptCache runs apt-cache on one index alone: a lists directory holding
// only that index and its release file, an empty dpkg status (so installed
// packages add nothing), the index's architecture only, and a package
// cache of its own.
type aptCache struct{ opts []string }

func newAptCache(t *testing.T, x Index) *aptCache {
	t.Helper()
	dir := t.TempDir()
	lists := filepath.Join(dir, "lists")
	if err := os.MkdirAll(filepath.Join(lists, "partial"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{x.Filename, x.ReleaseFile} {
		if f == "" {
			continue
		}
		// apt finds a list by its file name, derived from the source's URI.
		if err := os.Symlink(f, filepath.Join(lists, filepath.Base(f))); err != nil {
			t.Fatal(err)
		}
	}
	status := filepath.Join(dir, "status")
	if err := os.WriteFile(status, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	a := &aptCache{opts: []string{
		"-o", "Dir::State::Lists=" + lists,
		"-o", "Dir::State::status=" + status,
		"-o", "Dir::Cache::pkgcache=" + filepath.Join(dir, "pkgcache.bin"),
		"-o", "Dir::Cache::srcpkgcache=" + filepath.Join(dir, "srcpkgcache.bin"),
		"-o", "APT::Architecture=" + x.Architecture,
		"-o", "APT::Architectures=" + x.Architecture,
	}}
	// The same index and nothing else: one Packages file besides the status.
	out := a.run(t, "policy")
	if n := strings.Count(out, " Packages\n"); n != 1 {
		t.Fatalf("apt-cache policy with only the index in its lists shows %d Packages files, want 1:\n%s", n, out)
	}
	return a
}

func (a *aptCache) run(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command("apt-cache", append(slices.Clone(a.opts), args...)...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("apt-cache %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// BenchmarkLoad: the whole index, from the compressed file to edges.
func BenchmarkLoad(b *testing.B) {
	x := mainIndex(b)
	var st Stats
	for b.Loop() {
		var err error
		if _, st, err = Load(context.Background(), x, LoadOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(st.Packages)*float64(b.N)/b.Elapsed().Seconds(), "packages/s")
	b.ReportMetric(float64(st.Edges)*float64(b.N)/b.Elapsed().Seconds(), "edges/s")
}
