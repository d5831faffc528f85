package debian

import (
	"compress/gzip"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/factory2/factory2/avro"
)

// edgeString writes an edge as "from relation to".
func edgeString(e avro.DependencyEdge) string {
	return avro.NodeKey(e.FromType, e.FromID) + " " + e.Relation + " " + avro.NodeKey(e.ToType, e.ToID)
}

func edgeStrings(edges []avro.DependencyEdge) []string {
	out := make([]string, len(edges))
	for i, e := range edges {
		out[i] = edgeString(e)
	}
	return out
}

// sampleEdges are the edges of sample, package by package, each package's
// sorted by relation, from and to.
var sampleEdges = []string{
	"deb:libc6 built-from deb-source:glibc",
	"deb:libc6 requires deb:libgcc-s1", // Suggests are not edges

	"deb:crossbuild-essential-i386 built-from deb-source:build-essential",
	"deb:crossbuild-essential-i386 requires deb:dpkg-cross", // every alternative, qualifier dropped
	"deb:crossbuild-essential-i386 requires deb:g++",
	"deb:crossbuild-essential-i386 requires deb:g++-i686-linux-gnu",
	"deb:crossbuild-essential-i386 requires deb:gcc",
	"deb:crossbuild-essential-i386 requires deb:gcc-i686-linux-gnu",

	"deb:2ping built-from deb-source:2ping", // no Source: its own name
	"deb:2ping requires deb:lsb-base",
	"deb:2ping requires deb:python3", // Pre-Depends and twice in Depends: one edge
	"deb:2ping requires deb:python3-pkg-resources",

	"deb:dpkg-ish built-from deb-source:dpkg-ish",
	"deb:dpkg-ish requires deb:libc6",
	"deb:dpkg-ish requires deb:libzstd1",

	"deb:librust-winapi-dev built-from deb-source:rust-winapi",
	"deb:librust-winapi+accctrl-dev provided-by deb:librust-winapi-dev",
	"deb:librust-winapi+aclapi-dev provided-by deb:librust-winapi-dev",
	"deb:librust-winapi-dev requires deb:librust-winapi-i686-pc-windows-gnu-0.4+default-dev",

	"deb:exim4-daemon-light built-from deb-source:exim4",
	"deb:exim4-daemon-light embeds deb-source:gcc-12",
	"deb:exim4-daemon-light embeds deb-source:glibc",
	"deb:mail-transport-agent provided-by deb:exim4-daemon-light",
	"deb:exim4-daemon-light requires deb:debconf",
	"deb:exim4-daemon-light requires deb:debconf-2.0",
	"deb:exim4-daemon-light requires deb:exim4-base",
	"deb:exim4-daemon-light requires deb:libc6",
}

var sampleIndex = Index{Codename: "bookworm", Date: time.Date(2026, 7, 11, 10, 16, 37, 0, time.UTC)}

func TestAppendEdges(t *testing.T) {
	var edges []avro.DependencyEdge
	for _, p := range scanAll(t, sample) {
		edges = AppendEdges(edges, &p, sampleIndex)
	}
	if got := edgeStrings(edges); !reflect.DeepEqual(got, sampleEdges) {
		t.Fatalf("edges:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(sampleEdges, "\n"))
	}
	ids := map[string]bool{}
	for _, e := range edges {
		if e.Source != "debian/bookworm" || !e.EventTime.Equal(sampleIndex.Date) || !e.IngestTime.IsZero() || e.Removed {
			t.Errorf("%s: envelope %+v", edgeString(e), e.Envelope)
		}
		if e.ID != EdgeID("bookworm", &e) || len(e.ID) != len("sha256:")+32 || ids[e.ID] {
			t.Errorf("%s: id %q is not EdgeID or not unique", edgeString(e), e.ID)
		}
		ids[e.ID] = true
	}
}

// TestEdgeID: the ID depends on the codename and the edge, nothing else.
func TestEdgeID(t *testing.T) {
	e := avro.DependencyEdge{FromType: "deb", FromID: "a", Relation: avro.RelRequires, ToType: "deb", ToID: "b"}
	// Pinned: IDs are idempotency keys, so changing how they are made
	// makes a reload of the same index a new set of events. The value is
	// printf 'bookworm\0deb\0a\0requires\0deb\0b\0\0' | sha256sum, cut to 32.
	id := EdgeID("bookworm", &e)
	if want := "sha256:f804c2579e156b69861dd0667a8b3e85"; id != want {
		t.Fatalf("id %q, want %q", id, want)
	}
	e.Envelope = avro.Envelope{Source: "x", EventTime: time.Now(), ID: "y"}
	if EdgeID("bookworm", &e) != id {
		t.Error("the envelope changed the id")
	}
	for name, change := range map[string]func(*avro.DependencyEdge){
		"from type": func(e *avro.DependencyEdge) { e.FromType = "rpm" },
		"from":      func(e *avro.DependencyEdge) { e.FromID = "a2" },
		"relation":  func(e *avro.DependencyEdge) { e.Relation = avro.RelEmbeds },
		"to type":   func(e *avro.DependencyEdge) { e.ToType = "deb-source" },
		"to":        func(e *avro.DependencyEdge) { e.ToID = "b2" },
		"removed":   func(e *avro.DependencyEdge) { e.Removed = true },
		"boundary":  func(e *avro.DependencyEdge) { e.FromID, e.FromType = "", "deb\x00a" },
	} {
		c := e
		change(&c)
		if EdgeID("bookworm", &c) == id {
			t.Errorf("changing %s kept the id", name)
		}
	}
	if EdgeID("trixie", &e) == id {
		t.Error("another codename kept the id")
	}
}

// writeIndex writes text to dir/name, compressed as the extension says.
func writeIndex(t *testing.T, dir, name, text string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	plain := strings.TrimSuffix(path, filepath.Ext(path))
	switch filepath.Ext(name) {
	case ".gz":
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		z := gzip.NewWriter(f)
		if _, err := z.Write([]byte(text)); err != nil {
			t.Fatal(err)
		}
		if err := z.Close(); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		return path
	case ".lz4", ".xz":
		if err := os.WriteFile(plain, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("xz", "-z", "-q", "-k", "-f", plain) // writes plain.xz
		if filepath.Ext(name) == ".lz4" {
			cmd = exec.Command("lz4", "-z", "-q", "-f", plain, path)
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v: %s (deploy/deps.sh installs it)", cmd, err, out)
		}
		return path
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestLoad: every compression gives the same edges; a second stanza of a
// package adds only its new edges; progress is reported.
func TestLoad(t *testing.T) {
	dir := t.TempDir()
	text := sample + "\n\nPackage: libc6\nSource: glibc\nVersion: 2.37-1\nDepends: libgcc-s1, libnew\n"
	want := append(append([]string(nil), sampleEdges...), "deb:libc6 requires deb:libnew")
	for _, name := range []string{"Packages", "Packages.gz", "Packages.lz4", "Packages.xz"} {
		t.Run(name, func(t *testing.T) {
			x := sampleIndex
			x.Filename = writeIndex(t, dir, name, text)
			var progress []Stats
			edges, st, err := Load(context.Background(), x, LoadOptions{Progress: func(s Stats) { progress = append(progress, s) }, ProgressEvery: 3})
			if err != nil {
				t.Fatal(err)
			}
			if got := edgeStrings(edges); !reflect.DeepEqual(got, want) {
				t.Fatalf("edges:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			wantStats := Stats{Packages: 7, Sources: 6, Edges: len(want), Duplicates: 2, ByRelation: map[string]int{
				avro.RelBuiltFrom: 6, avro.RelRequires: 17, avro.RelEmbeds: 2, RelProvidedBy: 3,
			}}
			st.Elapsed = 0
			if !reflect.DeepEqual(st, wantStats) {
				t.Errorf("stats %+v, want %+v", st, wantStats)
			}
			if len(progress) != 3 || progress[0].Packages != 3 || progress[1].Packages != 6 || progress[2].Packages != 7 {
				t.Errorf("progress %+v, want at 3, 6 and 7 packages", progress)
			}
		})
	}
}

// TestLoadDamaged: a truncated lz4 file and a cancelled context are
// errors, never a shorter graph.
func TestLoadDamaged(t *testing.T) {
	dir := t.TempDir()
	var big strings.Builder
	for range 2000 {
		big.WriteString(sample + "\n\n")
	}
	full := writeIndex(t, dir, "Packages.lz4", big.String())
	b, err := os.ReadFile(full)
	if err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(dir, "cut.lz4")
	if err := os.WriteFile(cut, b[:len(b)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Load(context.Background(), Index{Filename: cut, Codename: "x"}, LoadOptions{}); err == nil {
		t.Error("a truncated lz4 file loaded without error")
	} else {
		t.Logf("truncated: %v", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	_, _, err = Load(ctx, Index{Filename: full, Codename: "x"}, LoadOptions{ProgressEvery: 100, Progress: func(Stats) { cancel() }})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled load: err = %v, want context.Canceled", err)
	}

	if _, _, err := Load(context.Background(), Index{Filename: filepath.Join(dir, "missing.lz4")}, LoadOptions{}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: err = %v, want os.ErrNotExist", err)
	}
}

// TestOpenClose: closing before the end stops the decompressor.
func TestOpenClose(t *testing.T) {
	path := writeIndex(t, t.TempDir(), "Packages.lz4", strings.Repeat(sample+"\n\n", 5000))
	rc, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rc.Read(make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	if err := rc.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := rc.Read(make([]byte, 100)); err == nil {
		t.Error("Read after Close succeeded")
	}
}
