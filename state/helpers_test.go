package state

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// openOn opens a DB in dir on fs and closes it at test end (tolerating a
// DB the test closed itself).
func openOn(t testing.TB, fs vfs.FS, dir string, mutate ...func(*Options)) *DB {
	t.Helper()
	opts := Options{Dir: dir, FS: fs, MemTableSize: 1 << 20}
	for _, m := range mutate {
		m(&opts)
	}
	db, err := Open(opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil && !errors.Is(err, ErrClosed) {
			t.Errorf("Close: %v", err)
		}
	})
	return db
}

func openDisk(t *testing.T) *DB { return openOn(t, nil, t.TempDir()) }

func openMem(t *testing.T) *DB { return openOn(t, vfs.NewMem(), "db") }

// commit applies the writes done by fill in one batch.
func commit(t testing.TB, db *DB, fill func(b *Batch)) {
	t.Helper()
	b := db.NewBatch()
	defer b.Close()
	fill(b)
	if err := db.Commit(b); err != nil {
		t.Fatalf("Commit: %v", err)
	}
}

// must fails the test on a non-nil error.
func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// reader is what DB and Batch have in common for reading.
type reader interface {
	Get(store string, key []byte) ([]byte, error)
	Scan(store string, lower, upper []byte, fn func(k, v []byte) error) error
}

// dump renders store as "k=v k=v" via Scan.
func dump(t testing.TB, r reader, store string, lower, upper []byte) string {
	t.Helper()
	var parts []string
	err := r.Scan(store, lower, upper, func(k, v []byte) error {
		parts = append(parts, fmt.Sprintf("%s=%s", k, v))
		return nil
	})
	if err != nil {
		t.Fatalf("Scan(%s): %v", store, err)
	}
	return strings.Join(parts, " ")
}

// getString returns the value of key, or "<none>" for ErrNotFound.
func getString(t testing.TB, r reader, store, key string) string {
	t.Helper()
	v, err := r.Get(store, []byte(key))
	if errors.Is(err, ErrNotFound) {
		return "<none>"
	}
	if err != nil {
		t.Fatalf("Get(%s, %s): %v", store, key, err)
	}
	return string(v)
}

// offset returns the offset under name, or -999 if none.
func offset(t testing.TB, db *DB, name string) int64 {
	t.Helper()
	off, ok, err := db.Offset(name)
	if err != nil {
		t.Fatalf("Offset(%s): %v", name, err)
	}
	if !ok {
		return -999
	}
	return off
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t testing.TB, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", timeout)
		}
		time.Sleep(time.Millisecond)
	}
}
