package debian

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// indexTargets is apt-get indextargets output in apt's shape (fields
// trimmed), for a repository at a made-up address: a Packages target, a
// DEP-11 target of the same release, a Packages target of a flat
// repository without codename, and a Sources target.
const indexTargets = `MetaKey: main/binary-amd64/Packages
ShortDesc: Packages
Description: http://archive.example.org/debian bookworm/main amd64 Packages
URI: http://archive.example.org/debian/dists/bookworm/main/binary-amd64/Packages
Filename: /lists/archive.example.org_debian_dists_bookworm_main_binary-amd64_Packages.lz4
Optional: no
KeepCompressed: yes
Codename: bookworm
Label: Debian
Origin: Debian
Suite: oldstable
Architecture: amd64
Component: main
Created-By: Packages

MetaKey: main/dep11/Components-amd64.yml
Filename: /lists/archive.example.org_debian_dists_bookworm_main_dep11_Components-amd64.yml.gz
Codename: bookworm
Architecture: amd64
Component: main
Created-By: DEP-11

MetaKey: Packages
Filename: /lists/repo.example.org_flat_Packages
Suite: ./
Architecture: arm64
Created-By: Packages

MetaKey: main/source/Sources
Filename: /lists/archive.example.org_debian_dists_bookworm_main_source_Sources.xz
Codename: bookworm
Component: main
Created-By: Sources
`

func TestParseIndexTargets(t *testing.T) {
	got, err := parseIndexTargets(strings.NewReader(indexTargets))
	if err != nil {
		t.Fatal(err)
	}
	want := []Index{
		{MetaKey: "main/binary-amd64/Packages", Filename: "/lists/archive.example.org_debian_dists_bookworm_main_binary-amd64_Packages.lz4",
			Codename: "bookworm", Suite: "oldstable", Component: "main", Architecture: "amd64", Origin: "Debian", Label: "Debian"},
		{MetaKey: "Packages", Filename: "/lists/repo.example.org_flat_Packages",
			Codename: "./", Suite: "./", Architecture: "arm64"}, // a flat repository
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}

func TestReleaseFileAndDate(t *testing.T) {
	dir := t.TempDir()
	x := Index{MetaKey: "main/binary-amd64/Packages", Filename: filepath.Join(dir, "host_debian_dists_bookworm_main_binary-amd64_Packages.lz4")}
	write := func(name, text string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Base(x.Filename), "")
	mtime := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := os.Chtimes(x.Filename, mtime, mtime); err != nil {
		t.Fatal(err)
	}

	// No release file: the index's mtime.
	if f := releaseFile(x); f != "" {
		t.Errorf("releaseFile = %q with none there", f)
	}
	if d, err := indexDate(x); err != nil || !d.Equal(mtime) {
		t.Errorf("indexDate = %v, %v; want the mtime %v", d, err, mtime)
	}

	// A Release file.
	write("host_debian_dists_bookworm_Release", "Origin: Debian\nCodename: bookworm\nDate: Sat, 11 Jul 2026 10:16:37 UTC\nMD5Sum:\n 0123 42 main/binary-amd64/Packages\n")
	x.ReleaseFile = releaseFile(x)
	if x.ReleaseFile != filepath.Join(dir, "host_debian_dists_bookworm_Release") {
		t.Errorf("releaseFile = %q", x.ReleaseFile)
	}
	if d, err := indexDate(x); err != nil || !d.Equal(time.Date(2026, 7, 11, 10, 16, 37, 0, time.UTC)) {
		t.Errorf("indexDate = %v, %v", d, err)
	}

	// InRelease wins over Release; it is clear-signed.
	write("host_debian_dists_bookworm_InRelease", "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nOrigin: Debian\nDate: Fri, 28 Nov 2026 02:15:35 +0000\nSHA256:\n 0123 42 main/binary-amd64/Packages\n-----BEGIN PGP SIGNATURE-----\n")
	x.ReleaseFile = releaseFile(x)
	if filepath.Base(x.ReleaseFile) != "host_debian_dists_bookworm_InRelease" {
		t.Errorf("releaseFile = %q", x.ReleaseFile)
	}
	if d, err := indexDate(x); err != nil || !d.Equal(time.Date(2026, 11, 28, 2, 15, 35, 0, time.UTC)) {
		t.Errorf("indexDate = %v, %v", d, err)
	}

	// A Date that is not a date is an error, not the mtime.
	write("host_debian_dists_bookworm_InRelease", "Date: yesterday\n")
	if _, err := indexDate(x); err == nil {
		t.Error("a bad Date gave no error")
	}
}
