package state

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// These tests use Pebble's crash-simulating filesystem: CrashClone returns
// the filesystem as it could be after a power failure right now, i.e. all
// synced data plus a random share (UnsyncedDataPercent) of unsynced writes.
// The DB on the original filesystem is left open, as a crashed process
// would; the clone is opened as the restarted process would open it.

func crashClone(fs *vfs.MemFS, pct int, seed uint64) *vfs.MemFS {
	return fs.CrashClone(vfs.CrashCloneCfg{
		UnsyncedDataPercent: pct,
		RNG:                 rand.New(rand.NewPCG(seed, 0x5eed)),
	})
}

func TestCrashAfterCommit(t *testing.T) {
	for _, pct := range []int{0, 50, 100} {
		t.Run(fmt.Sprintf("unsynced%d%%", pct), func(t *testing.T) {
			fs := vfs.NewCrashableMem()
			db := openOn(t, fs, "db")
			commit(t, db, func(b *Batch) {
				for i := range 100 {
					must(t, b.Set("s", fmt.Appendf(nil, "k%03d", i), []byte("committed")))
				}
				must(t, b.SetOffset("in/t/0", 100))
				must(t, b.SetOffset("changelog/s", 7))
			})
			pending := db.NewBatch() // an open transaction at the time of the crash
			defer pending.Close()
			must(t, pending.Set("s", []byte("uncommitted"), []byte("x")))
			must(t, pending.Set("s", []byte("k000"), []byte("overwrite")))
			must(t, pending.SetOffset("in/t/0", 999))

			re := openOn(t, crashClone(fs, pct, uint64(pct)), "db")
			count := 0
			must(t, re.Scan("s", nil, nil, func(k, v []byte) error {
				if string(v) != "committed" {
					t.Errorf("%s = %q after crash", k, v)
				}
				count++
				return nil
			}))
			if count != 100 {
				t.Errorf("%d of 100 committed keys survived the crash", count)
			}
			if got := offset(t, re, "in/t/0"); got != 100 {
				t.Errorf("input offset after crash = %d, want 100", got)
			}
			if got := offset(t, re, "changelog/s"); got != 7 {
				t.Errorf("changelog offset after crash = %d, want 7", got)
			}
		})
	}
}

// TestCrashCommitAllOrNothing crashes at arbitrary moments while commits
// are in flight: every commit overwrites all keys with its sequence number
// and sets the offset to it, so in any recovered state the offset and every
// key must carry the same number.
func TestCrashCommitAllOrNothing(t *testing.T) {
	// Synced commits must all survive; unsynced ones (CommitNoSync, for
	// task state that its changelog can replay) may be lost from the tail,
	// but each survives whole or not at all, offsets with their data.
	t.Run("sync", func(t *testing.T) { crashCommitAllOrNothing(t, (*DB).Commit, true) })
	t.Run("nosync", func(t *testing.T) { crashCommitAllOrNothing(t, (*DB).CommitNoSync, false) })
}

func crashCommitAllOrNothing(t *testing.T, commit func(*DB, *Batch) error, durable bool) {
	const (
		keys    = 40
		commits = 300
	)
	fs := vfs.NewCrashableMem()
	// Small memtables so that flushes (sstables, manifest edits) happen
	// during the run too.
	db := openOn(t, fs, "db")
	pad := bytes.Repeat([]byte("p"), 500)

	var done atomic.Bool
	errc := make(chan error, 1)
	go func() {
		defer done.Store(true)
		for i := 1; i <= commits; i++ {
			b := db.NewBatch()
			for k := range keys {
				if err := b.Set("s", fmt.Appendf(nil, "k%02d", k), fmt.Appendf(nil, "%06d%s", i, pad)); err != nil {
					errc <- err
					return
				}
			}
			if err := b.SetOffset("in/t/0", int64(i)); err != nil {
				errc <- err
				return
			}
			if err := commit(db, b); err != nil {
				errc <- err
				return
			}
			_ = b.Close()
		}
		errc <- nil
	}()

	seen := map[int64]bool{}
	for n := uint64(0); ; n++ {
		finished := done.Load()
		clone := crashClone(fs, 50, n)
		seen[verifyAllOrNothing(t, clone, keys)] = true
		if finished {
			break
		}
	}
	must(t, <-errc)
	if durable && !seen[commits] {
		t.Errorf("final clone did not recover the last commit")
	}
	t.Logf("verified %d distinct recovered states", len(seen))
}

func verifyAllOrNothing(t *testing.T, fs vfs.FS, keys int) int64 {
	t.Helper()
	db, err := Open(Options{Dir: "db", FS: fs, MemTableSize: 1 << 20})
	if err != nil {
		t.Fatalf("reopen after crash: %v", err)
	}
	defer db.Close()
	off, ok, err := db.Offset("in/t/0")
	must(t, err)
	want := "none"
	if ok {
		want = fmt.Sprintf("%06d", off)
	}
	for k := range keys {
		v, err := db.Get("s", fmt.Appendf(nil, "k%02d", k))
		got := "none"
		switch {
		case errors.Is(err, ErrNotFound):
		case err != nil:
			t.Fatalf("Get after crash: %v", err)
		default:
			got = string(v[:6])
		}
		if got != want {
			t.Fatalf("after crash: offset says commit %s but key k%02d is from commit %s", want, k, got)
		}
	}
	return off
}

// TestCrashDuringRestore crashes a restore before Finish: the recovered DB
// must still carry the changelog offset from before the restore, with a
// prefix of the restored records (the WAL is replayed in order), so that
// the next restore from that offset re-applies what may be missing. After
// Finish, everything including the new offset must survive.
func TestCrashDuringRestore(t *testing.T) {
	for _, tc := range []struct {
		name     string
		memtable int64
	}{
		// 4 MiB restore batches exceed half a 1 MiB memtable, so they take
		// Pebble's large-batch path (each becomes its own flushable).
		{"large-batches", 1 << 20},
		{"memtable-batches", DefaultMemTableSize},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const records = 25_000
			fs := vfs.NewCrashableMem()
			db := openOn(t, fs, "db", func(o *Options) { o.MemTableSize = tc.memtable })
			commit(t, db, func(b *Batch) {
				must(t, b.Set("s", []byte("base"), []byte("before restore")))
				must(t, b.SetOffset("changelog/s", 100))
			})
			r, err := db.NewRestorer("s")
			must(t, err)
			defer r.Close()
			val := bytes.Repeat([]byte("v"), 500)
			var clones []*vfs.MemFS
			for i := range records {
				must(t, r.Put(fmt.Appendf(nil, "r%07d", i), val))
				if i%(records/4) == records/8 {
					clones = append(clones, crashClone(fs, 50, uint64(i)), crashClone(fs, 0, uint64(i)))
				}
			}
			for i, clone := range clones {
				re := openOn(t, clone, "db", func(o *Options) { o.MemTableSize = tc.memtable })
				if got := offset(t, re, "changelog/s"); got != 100 {
					t.Errorf("clone %d: changelog offset = %d, want the pre-restore 100", i, got)
				}
				if got := getString(t, re, "s", "base"); got != "before restore" {
					t.Errorf("clone %d: base = %q", i, got)
				}
				n := 0
				must(t, re.Scan("s", []byte("r"), nil, func(k, v []byte) error {
					if want := fmt.Sprintf("r%07d", n); string(k) != want {
						return fmt.Errorf("clone %d: restored keys are not a prefix: found %s where %s was expected", i, k, want)
					}
					n++
					return nil
				}))
				t.Logf("clone %d: %d of %d restored records recovered", i, n, records)
				must(t, re.Close())
			}

			must(t, r.Finish("changelog/s", 200))
			re := openOn(t, crashClone(fs, 0, 1), "db", func(o *Options) { o.MemTableSize = tc.memtable })
			if got := offset(t, re, "changelog/s"); got != 200 {
				t.Errorf("after Finish and crash: offset = %d, want 200", got)
			}
			n := 0
			must(t, re.Scan("s", []byte("r"), nil, func(k, v []byte) error { n++; return nil }))
			if n != records {
				t.Errorf("after Finish and crash: %d of %d records", n, records)
			}
		})
	}
}
