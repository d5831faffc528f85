package debian

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// sample is a Packages index in the shape of Debian's, trimmed, with what
// the parser must handle: a Source with a version, one without, none at
// all; alternatives; architecture qualifiers; version constraints with
// and without spaces; a folded (continued) dependency field; Pre-Depends;
// Built-Using; versioned and unversioned Provides; a field name in another
// case; a multi-line Description with its " ." paragraph marker; a comment
// line; CRLF line endings on one stanza; no blank line at the end.
const sample = `Package: libc6
Source: glibc
Version: 2.36-9+deb12u14
Architecture: amd64
Depends: libgcc-s1
Suggests: glibc-doc, debconf | debconf-2.0
Description: GNU C Library: Shared libraries
 Contains the standard libraries.
 .
 A second paragraph.

Package: crossbuild-essential-i386
Source: build-essential
Version: 12.9
Architecture: all
Depends: gcc-i686-linux-gnu (>= 4:10.2) | gcc:i386, g++-i686-linux-gnu (>=4:10.2) | g++:i386,
 dpkg-cross
# a comment line

Package: 2ping
Version: 4.5-1.1
Architecture: all
pre-depends: python3:any
Depends: python3:any, python3-pkg-resources, lsb-base (>= 3.0-6), python3:any
` + "\nPackage: dpkg-ish\r\nVersion: 1.0\r\nArchitecture: amd64\r\nPre-Depends: libc6 (>= 2.34), libzstd1 (>= 1.5.2)\r\n\r\n" + `
Package: librust-winapi-dev
Source: rust-winapi (0.3.9-1)
Version: 0.3.9-1+b1
Architecture: amd64
Provides: librust-winapi+accctrl-dev (= 0.3.9-1+b1), librust-winapi+aclapi-dev (= 0.3.9-1+b1)
Depends: librust-winapi-i686-pc-windows-gnu-0.4+default-dev

Package: exim4-daemon-light
Source: exim4
Version: 4.96-15+deb12u7
Architecture: amd64
Built-Using: gcc-12 (= 12.2.0-14), glibc (= 2.36-9)
Provides: mail-transport-agent
Depends: exim4-base (>= 4.96-15+deb12u7), libc6 (>= 2.34) [amd64] <!nocheck>, debconf (>= 0.5) | debconf-2.0`

func TestScanner(t *testing.T) {
	want := []Package{
		{Name: "libc6", Source: "glibc", Version: "2.36-9+deb12u14", SourceVersion: "2.36-9+deb12u14", Architecture: "amd64",
			Depends: []Clause{{{Name: "libgcc-s1"}}}},
		{Name: "crossbuild-essential-i386", Source: "build-essential", Version: "12.9", SourceVersion: "12.9", Architecture: "all",
			Depends: []Clause{
				{{Name: "gcc-i686-linux-gnu", Op: ">=", Version: "4:10.2"}, {Name: "gcc", Arch: "i386"}},
				{{Name: "g++-i686-linux-gnu", Op: ">=", Version: "4:10.2"}, {Name: "g++", Arch: "i386"}},
				{{Name: "dpkg-cross"}},
			}},
		{Name: "2ping", Source: "2ping", Version: "4.5-1.1", SourceVersion: "4.5-1.1", Architecture: "all",
			PreDepends: []Clause{{{Name: "python3", Arch: "any"}}},
			Depends: []Clause{
				{{Name: "python3", Arch: "any"}},
				{{Name: "python3-pkg-resources"}},
				{{Name: "lsb-base", Op: ">=", Version: "3.0-6"}},
				{{Name: "python3", Arch: "any"}},
			}},
		{Name: "dpkg-ish", Source: "dpkg-ish", Version: "1.0", SourceVersion: "1.0", Architecture: "amd64",
			PreDepends: []Clause{{{Name: "libc6", Op: ">=", Version: "2.34"}}, {{Name: "libzstd1", Op: ">=", Version: "1.5.2"}}}},
		{Name: "librust-winapi-dev", Source: "rust-winapi", Version: "0.3.9-1+b1", SourceVersion: "0.3.9-1", Architecture: "amd64",
			Provides: []Dep{
				{Name: "librust-winapi+accctrl-dev", Op: "=", Version: "0.3.9-1+b1"},
				{Name: "librust-winapi+aclapi-dev", Op: "=", Version: "0.3.9-1+b1"},
			},
			Depends: []Clause{{{Name: "librust-winapi-i686-pc-windows-gnu-0.4+default-dev"}}}},
		{Name: "exim4-daemon-light", Source: "exim4", Version: "4.96-15+deb12u7", SourceVersion: "4.96-15+deb12u7", Architecture: "amd64",
			BuiltUsing: []Dep{{Name: "gcc-12", Op: "=", Version: "12.2.0-14"}, {Name: "glibc", Op: "=", Version: "2.36-9"}},
			Provides:   []Dep{{Name: "mail-transport-agent"}},
			Depends: []Clause{
				{{Name: "exim4-base", Op: ">=", Version: "4.96-15+deb12u7"}},
				{{Name: "libc6", Op: ">=", Version: "2.34"}},
				{{Name: "debconf", Op: ">=", Version: "0.5"}, {Name: "debconf-2.0"}},
			}},
	}
	got := scanAll(t, sample)
	if len(got) != len(want) {
		t.Fatalf("got %d packages, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("package %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
}

func scanAll(t *testing.T, text string) []Package {
	t.Helper()
	sc := NewScanner(strings.NewReader(text))
	var got []Package
	for sc.Scan() {
		got = append(got, *sc.Package())
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return got
}

// TestScannerLongLine: a field longer than the reader's buffer (real
// Provides lines of Rust libraries pass 70,000 characters) is read whole.
func TestScannerLongLine(t *testing.T) {
	var provides []string
	for i := range 20000 {
		provides = append(provides, "librust-x+f"+strings.Repeat("y", i%7)+"-dev (= 1.0-1)")
	}
	text := "Package: librust-x-dev\nVersion: 1.0-1\nProvides: " + strings.Join(provides, ", ") + "\n\nPackage: next\nVersion: 2\n"
	if len(text) < 200<<10 {
		t.Fatalf("sample is only %d bytes", len(text))
	}
	got := scanAll(t, text)
	if len(got) != 2 || len(got[0].Provides) != len(provides) || got[1].Name != "next" {
		t.Fatalf("got %d packages, %d provides, want 2 and %d", len(got), len(got[0].Provides), len(provides))
	}
	if p := got[0].Provides[len(provides)-1]; p.Name+" (= "+p.Version+")" != provides[len(provides)-1] {
		t.Errorf("last provides = %+v", p)
	}
}

// TestScannerErrors: a damaged stanza stops the scan with a SyntaxError
// naming its line, after the good stanzas before it.
func TestScannerErrors(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		good, line int
		field      string
	}{
		{"no colon", "Package: a\n\nPackage: b\nnot a field\n", 1, 4, ""},
		{"continuation first", " Package: a\n", 0, 1, ""},
		{"no Package", "Package: a\n\nVersion: 1\nDepends: a\n", 1, 3, ""},
		{"empty Package", "Package:\n", 0, 1, ""},
		{"twice", "Package: a\nDepends: b\ndepends: c\n", 0, 3, "depends"},
		{"empty alternative", "Package: a\nDepends: b, , c\n", 0, 2, "Depends"},
		{"trailing bar", "Package: a\nDepends: b |\n", 0, 2, "Depends"},
		{"unclosed version", "Package: a\nDepends: b (>= 1\n", 0, 2, "Depends"},
		{"version without op", "Package: a\nDepends: b (1.0)\n", 0, 2, "Depends"},
		{"op without version", "Package: a\nPre-Depends: b (>=)\n", 0, 2, "Pre-Depends"},
		{"junk after", "Package: a\nDepends: b c\n", 0, 2, "Depends"},
		{"empty qualifier", "Package: a\nDepends: b:\n", 0, 2, "Depends"},
		{"bad op", "Package: a\nDepends: b (=> 1)\n", 0, 2, "Depends"},
		{"space in version", "Package: a\nDepends: b (>= 1 2)\n", 0, 2, "Depends"},
		{"bad name", "Package: a\nDepends: b)\n", 0, 2, "Depends"},
		{"alternatives in Provides", "Package: a\nProvides: b | c\n", 0, 2, "Provides"},
		{"bad Source", "Package: a\nSource: b 1.0\n", 0, 2, "Source"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sc := NewScanner(strings.NewReader(tc.text))
			good := 0
			for sc.Scan() {
				good++
			}
			var se *SyntaxError
			if !errors.As(sc.Err(), &se) {
				t.Fatalf("err = %v, want a *SyntaxError", sc.Err())
			}
			if good != tc.good || se.Line != tc.line || se.Field != tc.field {
				t.Errorf("%d good stanzas, error %q at line %d field %q; want %d, line %d field %q",
					good, se, se.Line, se.Field, tc.good, tc.line, tc.field)
			}
			if sc.Scan() {
				t.Error("Scan after an error returned true")
			}
		})
	}
}

func TestParseRelations(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []Clause
	}{
		{"", nil},
		{"  \n ", nil},
		{"a", []Clause{{{Name: "a"}}}},
		{"a,b", []Clause{{{Name: "a"}}, {{Name: "b"}}}},
		{"a|b", []Clause{{{Name: "a"}, {Name: "b"}}}},
		{"a:any (>= 1:2.0~rc1)", []Clause{{{Name: "a", Arch: "any", Op: ">=", Version: "1:2.0~rc1"}}}},
		{"a( << 2 )", []Clause{{{Name: "a", Op: "<<", Version: "2"}}}},
		{"a (<= 2), b (=3) | c (> 4)", []Clause{
			{{Name: "a", Op: "<=", Version: "2"}},
			{{Name: "b", Op: "=", Version: "3"}, {Name: "c", Op: ">", Version: "4"}},
		}},
		{"foo [i386 amd64] <!nocheck> <cross>, bar:native [!hurd-any] | baz",
			[]Clause{{{Name: "foo"}}, {{Name: "bar", Arch: "native"}, {Name: "baz"}}}},
		{"a,\n b\n | c", []Clause{{{Name: "a"}}, {{Name: "b"}, {Name: "c"}}}},
		{"libstdc++6 (>= 12)", []Clause{{{Name: "libstdc++6", Op: ">=", Version: "12"}}}},
	} {
		got, err := ParseRelations(tc.in)
		if err != nil {
			t.Errorf("ParseRelations(%q): %v", tc.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseRelations(%q) =\n %+v\nwant %+v", tc.in, got, tc.want)
		}
	}
}
