package debian

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// Index is one binary Packages index that apt keeps on this machine.
type Index struct {
	// MetaKey is the index's path in its repository's Release file,
	// "<component>/binary-<arch>/Packages" ("Packages" in a flat
	// repository).
	MetaKey string
	// Filename is the local file, compressed as apt keeps it (see Open).
	Filename string
	// Codename is the release's codename ("bookworm",
	// "bookworm-security"); the suite when the repository has none.
	Codename string
	// Suite is the release's suite ("stable", "oldstable-updates").
	Suite        string
	Component    string
	Architecture string
	// Origin and Label are the repository's ("Debian").
	Origin string
	Label  string
	// ReleaseFile is the repository's InRelease or Release file that lists
	// this index, or "" when apt has neither.
	ReleaseFile string
	// Date is the Date field of ReleaseFile: when the archive published
	// the index. When there is no release file or it has no Date, it is
	// the index file's modification time.
	Date time.Time
}

// Source is the events' source for this index, "debian/<codename>".
func (x Index) Source() string { return "debian/" + x.Codename }

// metaKeyRE matches the MetaKey of a binary Packages index,
// "<component>/binary-<arch>/Packages", or "Packages" in a flat
// repository. apt-get indextargets also lists Translation, Contents,
// DEP-11 and Sources targets.
var metaKeyRE = regexp.MustCompile(`^(?:(?:(.+)/)?binary-([^/]+)/)?Packages$`)

// Indexes runs `apt-get indextargets` and returns the binary Packages
// indexes whose files exist on this machine, in apt's order. It returns
// ErrNoIndexes when there are none, which is the case until the first
// `apt-get update`.
func Indexes(ctx context.Context) ([]Index, error) {
	cmd := exec.CommandContext(ctx, "apt-get", "indextargets")
	var stderr cappedBuffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			return nil, fmt.Errorf("debian: apt-get indextargets: %w: %s", err, msg)
		}
		return nil, fmt.Errorf("debian: apt-get indextargets: %w", err)
	}
	targets, err := parseIndexTargets(bytes.NewReader(out))
	if err != nil {
		return nil, fmt.Errorf("debian: apt-get indextargets: %w", err)
	}
	var idx []Index
	for _, x := range targets {
		if _, err := os.Stat(x.Filename); err != nil {
			continue // listed by sources.list but not downloaded (yet)
		}
		x.ReleaseFile = releaseFile(x)
		x.Date, err = indexDate(x)
		if err != nil {
			return nil, err
		}
		idx = append(idx, x)
	}
	if len(idx) == 0 {
		return nil, ErrNoIndexes
	}
	return idx, nil
}

// parseIndexTargets reads apt-get indextargets output (deb822 stanzas, one
// per target) and returns the binary Packages targets, without looking at
// the files.
func parseIndexTargets(r io.Reader) ([]Index, error) {
	sr := newStanzaReader(r)
	var out []Index
	for {
		var x Index
		start, err := sr.next(func([]byte) int { return 0 }, func(_ int, name, value []byte, _ int) error {
			v := string(value)
			switch string(name) {
			case "MetaKey":
				x.MetaKey = v
			case "Filename":
				x.Filename = v
			case "Codename":
				x.Codename = v
			case "Suite":
				x.Suite = v
			case "Component":
				x.Component = v
			case "Architecture":
				x.Architecture = v
			case "Origin":
				x.Origin = v
			case "Label":
				x.Label = v
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		if start == 0 {
			return out, nil
		}
		m := metaKeyRE.FindStringSubmatch(x.MetaKey)
		if m == nil || x.Filename == "" {
			continue
		}
		if x.Component == "" {
			x.Component = m[1]
		}
		if x.Architecture == "" {
			x.Architecture = m[2]
		}
		if x.Codename == "" {
			x.Codename = x.Suite
		}
		out = append(out, x)
	}
}

// releaseFile finds the InRelease or Release file of x's repository. apt
// names each list file after its URI with '/' turned into '_', so an
// index's file name is its release's directory followed by the MetaKey
// with '_' for '/' (and a compression extension): replacing that MetaKey
// part with "InRelease" or "Release" names the release file.
func releaseFile(x Index) string {
	base := filepath.Base(x.Filename)
	key := strings.ReplaceAll(x.MetaKey, "/", "_")
	i := strings.LastIndex(base, key)
	if i < 0 {
		return ""
	}
	for _, name := range []string{"InRelease", "Release"} {
		f := filepath.Join(filepath.Dir(x.Filename), base[:i]+name)
		if _, err := os.Stat(f); err == nil {
			return f
		}
	}
	return ""
}

// indexDate returns the Date of x's release file, or its index file's
// modification time when there is none.
func indexDate(x Index) (time.Time, error) {
	if x.ReleaseFile != "" {
		f, err := os.Open(x.ReleaseFile)
		if err != nil {
			return time.Time{}, fmt.Errorf("debian: %w", err)
		}
		defer f.Close()
		d, err := releaseDate(f)
		if err != nil {
			return time.Time{}, fmt.Errorf("debian: %s: %w", x.ReleaseFile, err)
		}
		if !d.IsZero() {
			return d, nil
		}
	}
	st, err := os.Stat(x.Filename)
	if err != nil {
		return time.Time{}, fmt.Errorf("debian: %w", err)
	}
	return st.ModTime().UTC(), nil
}

// releaseDate returns the Date field of a Release or InRelease file (the
// latter is the former inside an OpenPGP clear-signed message), or the zero
// time when it has none. The Date is in the first stanza, before the
// checksum lists, so it stops reading there.
func releaseDate(r io.Reader) (time.Time, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, " ") { // the first checksum list: no Date above
			break
		}
		v, ok := strings.CutPrefix(line, "Date:")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		for _, layout := range []string{time.RFC1123, time.RFC1123Z, "Mon, 2 Jan 2006 15:04:05 MST", "Mon, 2 Jan 2006 15:04:05 -0700"} {
			if t, err := time.Parse(layout, v); err == nil {
				return t.UTC(), nil
			}
		}
		return time.Time{}, fmt.Errorf("release Date %q is not an RFC 1123 date", v)
	}
	return time.Time{}, sc.Err()
}
