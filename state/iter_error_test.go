package state

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
)

const errTestKeys = 2000

// writeFlushed writes errTestKeys incompressible 1 KiB values to store "s"
// of a DB in dir on fs, flushes them into sstables and closes the DB, so a
// reopened DB (with a fresh block cache) must read every value from disk.
func writeFlushed(t *testing.T, fs vfs.FS) {
	t.Helper()
	db, err := Open(Options{Dir: "db", FS: fs})
	must(t, err)
	rng := rand.New(rand.NewPCG(1, 2))
	val := make([]byte, 1024)
	commit(t, db, func(b *Batch) {
		for i := range errTestKeys {
			for j := range val {
				val[j] = byte(rng.Uint32())
			}
			must(t, b.Set("s", fmt.Appendf(nil, "k%05d", i), val))
		}
	})
	must(t, db.pdb.Flush())
	must(t, db.Close())
}

// checkReadsFail asserts that a failing read is reported by every read
// path, and never mistaken for the end of the data or a missing key.
func checkReadsFail(t *testing.T, db *DB, check func(error) bool) {
	t.Helper()
	visited := 0
	err := db.Scan("s", nil, nil, func(k, v []byte) error { visited++; return nil })
	if !check(err) {
		t.Errorf("Scan visited %d of %d keys and returned %v; want the read error", visited, errTestKeys, err)
	}

	it, err := db.NewIter("s", nil, nil)
	must(t, err)
	n := 0
	for ok := it.First(); ok; ok = it.Next() {
		n++
	}
	if n == errTestKeys || !check(it.Error()) {
		t.Errorf("Iter stopped after %d keys with Error() = %v; want the read error", n, it.Error())
	}
	if err := it.Close(); !check(err) {
		t.Errorf("Iter.Close = %v; want the read error", err)
	}

	_, err = db.Get("s", []byte("k00000"))
	if errors.Is(err, ErrNotFound) || !check(err) {
		t.Errorf("Get = %v; want the read error, not ErrNotFound", err)
	}
}

func TestIterSurfacesReadErrors(t *testing.T) {
	mem := vfs.NewMem()
	writeFlushed(t, mem)

	var inject atomic.Bool
	fs := errorfs.Wrap(mem, errorfs.InjectorFunc(func(op errorfs.Op) error {
		if inject.Load() && op.Kind == errorfs.OpFileReadAt && strings.HasSuffix(op.Path, ".sst") {
			return errorfs.ErrInjected
		}
		return nil
	}))
	db := openOn(t, fs, "db")
	// Sanity: without injection everything is readable.
	if got := dump(t, db, "s", []byte("k00000"), []byte("k00001")); !strings.HasPrefix(got, "k00000=") {
		t.Fatalf("before injection: %.20q", got)
	}
	must(t, db.Close())

	db = openOn(t, fs, "db") // fresh private cache: nothing cached
	inject.Store(true)
	checkReadsFail(t, db, func(err error) bool { return errors.Is(err, errorfs.ErrInjected) })
}

// syncBuffer is a bytes.Buffer safe for Pebble's background goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestIterSurfacesCorruption(t *testing.T) {
	fs := vfs.NewMem()
	writeFlushed(t, fs)

	// Flip bytes inside the first data block of every sstable.
	names, err := fs.List("db")
	must(t, err)
	corrupted := 0
	for _, name := range names {
		if !strings.HasSuffix(name, ".sst") {
			continue
		}
		f, err := fs.OpenReadWrite(fs.PathJoin("db", name), vfs.WriteCategoryUnspecified)
		must(t, err)
		buf := make([]byte, 16)
		_, err = f.ReadAt(buf, 100)
		must(t, err)
		for i := range buf {
			buf[i] ^= 0xff
		}
		_, err = f.WriteAt(buf, 100)
		must(t, err)
		must(t, f.Close())
		corrupted++
	}
	if corrupted == 0 {
		t.Fatal("no sstable to corrupt")
	}

	var logs syncBuffer
	db := openOn(t, fs, "db", func(o *Options) {
		o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	checkReadsFail(t, db, func(err error) bool {
		var ce *CorruptionError
		return errors.As(err, &ce)
	})
	// Pebble's default would have called Logger.Fatalf; ours logs instead.
	if !strings.Contains(logs.String(), "pebble data corruption") {
		t.Errorf("corruption not logged; logs:\n%s", logs.String())
	}
}
