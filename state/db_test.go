package state

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

func TestOptionsValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
		want []string // substrings of the error; none means valid
	}{
		{"minimal", Options{Dir: "d"}, nil},
		{"all set", Options{Dir: "d", FS: vfs.NewMem(), MemTableSize: 64 << 20, ReadOnly: true}, nil},
		{"no dir", Options{}, []string{"Dir is required"}},
		{"every problem at once", Options{MemTableSize: 1, Cache: &Cache{}}, []string{"Dir is required", "MemTableSize 1 outside", "NewCache"}},
		{"memtable too big", Options{Dir: "d", MemTableSize: 2 << 30}, []string{"MemTableSize"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.EnsureDefaults()
			err := tc.opts.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate = nil, want errors %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate = %q, missing %q", err, w)
				}
			}
			if _, err := Open(tc.opts); err == nil {
				t.Error("Open accepted invalid options")
			}
		})
	}
}

func TestReopenPersists(t *testing.T) {
	dir := t.TempDir()
	db := openOn(t, nil, dir)
	commit(t, db, func(b *Batch) {
		must(t, b.Set("s", []byte("k"), []byte("v")))
		must(t, b.SetOffset("in/t/0", 5))
	})
	must(t, db.Close())
	db = openOn(t, nil, dir)
	if got := getString(t, db, "s", "k"); got != "v" {
		t.Errorf("after reopen: %q", got)
	}
	if got := offset(t, db, "in/t/0"); got != 5 {
		t.Errorf("offset after reopen: %d", got)
	}
	must(t, db.Close())

	ro := openOn(t, nil, dir, func(o *Options) { o.ReadOnly = true })
	if got := getString(t, ro, "s", "k"); got != "v" {
		t.Errorf("read-only: %q", got)
	}
	b := ro.NewBatch()
	defer b.Close()
	must(t, b.Set("s", []byte("k"), []byte("x")))
	if err := ro.Commit(b); !errors.Is(err, ErrReadOnly) {
		t.Errorf("Commit on read-only DB: %v, want ErrReadOnly", err)
	}
	if _, err := ro.NewRestorer("s"); !errors.Is(err, ErrReadOnly) {
		t.Errorf("NewRestorer on read-only DB: %v, want ErrReadOnly", err)
	}
}

func TestDestroy(t *testing.T) {
	for _, tc := range []struct {
		name string
		fs   vfs.FS
		dir  func(t *testing.T) string
	}{
		{"disk", nil, func(t *testing.T) string { return t.TempDir() + "/task" }},
		{"mem", vfs.NewMem(), func(*testing.T) string { return "tasks/gating-3" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := tc.fs
			if fs == nil {
				fs = vfs.Default
			}
			dir := tc.dir(t)
			must(t, Destroy(fs, dir)) // nothing there yet

			db := openOn(t, fs, dir)
			commit(t, db, func(b *Batch) {
				must(t, b.Set("s", []byte("k"), []byte("v")))
				must(t, b.SetOffset("changelog/s", 9))
			})
			if err := Destroy(fs, dir); err == nil {
				t.Fatal("Destroy of an open DB succeeded")
			}
			if got := getString(t, db, "s", "k"); got != "v" {
				t.Fatalf("failed Destroy damaged the DB: %q", got)
			}
			must(t, db.Close())
			must(t, Destroy(fs, dir))
			if _, err := fs.Stat(dir); err == nil {
				t.Fatal("directory still exists after Destroy")
			}

			// The leftover of an interrupted Destroy is removed on Open.
			must(t, fs.MkdirAll(trashDir(dir), 0o755))
			db = openOn(t, fs, dir)
			if got := getString(t, db, "s", "k"); got != "<none>" {
				t.Errorf("after Destroy: %q", got)
			}
			if _, ok, _ := db.Offset("changelog/s"); ok {
				t.Error("offset survived Destroy")
			}
			if _, err := fs.Stat(trashDir(dir)); err == nil {
				t.Error("Open left the Destroy leftover in place")
			}
		})
	}
}

// FuzzKeyLayout checks the isolation property of the key layout: a key of
// one store never falls within the bounds of another store, and never looks
// like metadata.
func FuzzKeyLayout(f *testing.F) {
	f.Add("a", "ab", []byte("c"))
	f.Add("ab", "a", []byte("bc"))
	f.Add("s", "s0", []byte("\xff\xff"))
	f.Add("x", "y", []byte{})
	f.Fuzz(func(t *testing.T, storeA, storeB string, key []byte) {
		if validStoreName(storeA) != nil || validStoreName(storeB) != nil {
			return
		}
		k := appendStoreKey(nil, storeA, key)
		if k[0] == metaTag {
			t.Fatalf("store key %q starts with the metadata tag", k)
		}
		lo, hi := storeBounds(storeB, nil, nil)
		inB := bytes.Compare(k, lo) >= 0 && bytes.Compare(k, hi) < 0
		if inB != (storeA == storeB) {
			t.Fatalf("key %q of store %q: in bounds [%q,%q) of store %q = %v", key, storeA, lo, hi, storeB, inB)
		}
	})
}
