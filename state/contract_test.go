package state

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestContract(t *testing.T) {
	for _, tc := range []struct {
		name string
		open func(t *testing.T) *DB
	}{
		{"disk", openDisk},
		{"mem", openMem},
	} {
		t.Run(tc.name, func(t *testing.T) { runContract(t, tc.open) })
	}
}

// runContract is the behaviour every DB must have, whatever its filesystem.
func runContract(t *testing.T, open func(t *testing.T) *DB) {
	t.Run("GetSetDelete", func(t *testing.T) {
		db := open(t)
		if _, err := db.Get("s", []byte("k")); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Get missing: err = %v, want ErrNotFound", err)
		}
		commit(t, db, func(b *Batch) {
			must(t, b.Set("s", []byte("k"), []byte("v1")))
			must(t, b.Set("s", []byte("empty"), nil))
		})
		if got := getString(t, db, "s", "k"); got != "v1" {
			t.Fatalf("Get = %q, want v1", got)
		}
		v, err := db.Get("s", []byte("empty"))
		if err != nil || v == nil || len(v) != 0 {
			t.Fatalf("Get(empty) = %q (nil=%v), %v; want empty non-nil value", v, v == nil, err)
		}
		commit(t, db, func(b *Batch) {
			must(t, b.Set("s", []byte("k"), []byte("v2")))
		})
		if got := getString(t, db, "s", "k"); got != "v2" {
			t.Fatalf("Get after overwrite = %q, want v2", got)
		}
		commit(t, db, func(b *Batch) {
			must(t, b.Delete("s", []byte("k")))
			must(t, b.Delete("s", []byte("never-existed")))
		})
		if _, err := db.Get("s", []byte("k")); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Get deleted: err = %v, want ErrNotFound", err)
		}
	})

	t.Run("CopiesAreIndependent", func(t *testing.T) {
		db := open(t)
		key, val := []byte("k"), []byte("value")
		commit(t, db, func(b *Batch) {
			must(t, b.Set("s", key, val))
			// The batch copied its inputs: scribbling on them now must not
			// change what gets committed.
			key[0], val[0] = 'X', 'X'
		})
		got, err := db.Get("s", []byte("k"))
		if err != nil || string(got) != "value" {
			t.Fatalf("Get = %q, %v; want value (inputs must be copied)", got, err)
		}
		got[0] = 'Z' // the returned copy is ours
		if again := getString(t, db, "s", "k"); again != "value" {
			t.Fatalf("Get after mutating returned slice = %q", again)
		}
		commit(t, db, func(b *Batch) { must(t, b.Set("s", []byte("k"), []byte("newer"))) })
		if string(got) != "Zalue" {
			t.Fatalf("earlier Get result changed to %q by a later write", got)
		}

		b := db.NewBatch()
		defer b.Close()
		must(t, b.Set("s", []byte("k"), []byte("in-batch")))
		bv, err := b.Get("s", []byte("k"))
		must(t, err)
		must(t, b.Set("s", []byte("k"), []byte("overwritten")))
		if string(bv) != "in-batch" {
			t.Fatalf("Batch.Get result changed to %q by a later batch write", bv)
		}
	})

	t.Run("StoreIsolation", func(t *testing.T) {
		db := open(t)
		commit(t, db, func(b *Batch) {
			// Same Pebble bytes if stores were just concatenated: "a"+"bc" == "ab"+"c".
			must(t, b.Set("a", []byte("bc"), []byte("from-a")))
			must(t, b.Set("ab", []byte("c"), []byte("from-ab")))
			must(t, b.Set("a", []byte("\xff\xff"), []byte("a-max")))
			must(t, b.Set("a", nil, []byte("a-empty-key")))
			must(t, b.Set("b", []byte("\x00"), []byte("b-zero")))
			must(t, b.SetOffset("in/t/0", 7))
			must(t, b.SetMeta("a", []byte("meta-named-like-a-store")))
		})
		if got := getString(t, db, "a", "bc"); got != "from-a" {
			t.Errorf("a/bc = %q", got)
		}
		if got := getString(t, db, "ab", "c"); got != "from-ab" {
			t.Errorf("ab/c = %q", got)
		}
		for store, want := range map[string]string{
			"a":  "=a-empty-key bc=from-a \xff\xff=a-max",
			"ab": "c=from-ab",
			"b":  "\x00=b-zero",
			"z":  "",
		} {
			if got := dump(t, db, store, nil, nil); got != want {
				t.Errorf("Scan(%s) = %q, want %q (metadata or other stores leaked?)", store, got, want)
			}
		}
		if got := offset(t, db, "in/t/0"); got != 7 {
			t.Errorf("offset = %d", got)
		}
	})

	t.Run("InvalidNames", func(t *testing.T) {
		db := open(t)
		b := db.NewBatch()
		defer b.Close()
		for _, store := range []string{"", "has space", "slash/y", "nul\x00", "é", string(bytes.Repeat([]byte("x"), MaxStoreNameLen+1))} {
			errs := map[string]error{"Get": func() error { _, err := db.Get(store, nil); return err }(),
				"NewIter":     func() error { _, err := db.NewIter(store, nil, nil); return err }(),
				"Batch.Set":   b.Set(store, []byte("k"), nil),
				"Batch.Get":   func() error { _, err := b.Get(store, nil); return err }(),
				"NewRestorer": func() error { _, err := db.NewRestorer(store); return err }(),
			}
			for op, err := range errs {
				if !errors.Is(err, ErrInvalidName) {
					t.Errorf("%s(%q): err = %v, want ErrInvalidName", op, store, err)
				}
			}
		}
		for _, name := range []string{"", string(bytes.Repeat([]byte("m"), MaxMetaNameLen+1))} {
			if err := b.SetOffset(name, 1); !errors.Is(err, ErrInvalidName) {
				t.Errorf("SetOffset(%q): err = %v", name, err)
			}
			if _, _, err := db.Offset(name); !errors.Is(err, ErrInvalidName) {
				t.Errorf("Offset(%q): err = %v", name, err)
			}
		}
		for _, ok := range []string{"subjects", "a", "A-b_c.9", string(bytes.Repeat([]byte("x"), MaxStoreNameLen))} {
			if err := b.Set(ok, []byte("k"), nil); err != nil {
				t.Errorf("Set on valid store %q: %v", ok, err)
			}
		}
	})

	t.Run("IterBoundsAndSeek", func(t *testing.T) {
		db := open(t)
		commit(t, db, func(b *Batch) {
			for _, k := range []string{"a", "b", "c", "d"} {
				must(t, b.Set("s", []byte(k), []byte("v"+k)))
			}
			must(t, b.Set("s0", []byte("a"), []byte("other")))
		})
		for _, tc := range []struct {
			lower, upper []byte
			want         string
		}{
			{nil, nil, "a=va b=vb c=vc d=vd"},
			{[]byte("b"), nil, "b=vb c=vc d=vd"},
			{nil, []byte("c"), "a=va b=vb"},
			{[]byte("b"), []byte("d"), "b=vb c=vc"},
			{[]byte("bb"), []byte("bc"), ""},
			{[]byte("d"), []byte("a"), ""}, // inverted bounds are empty
		} {
			if got := dump(t, db, "s", tc.lower, tc.upper); got != tc.want {
				t.Errorf("Scan[%q,%q) = %q, want %q", tc.lower, tc.upper, got, tc.want)
			}
		}
		it, err := db.NewIter("s", []byte("b"), nil)
		must(t, err)
		if it.Valid() {
			t.Error("new iterator is Valid before positioning")
		}
		if !it.SeekGE([]byte("bz")) || string(it.Key()) != "c" || string(it.Value()) != "vc" || !it.Valid() {
			t.Errorf("SeekGE(bz) -> %q=%q", it.Key(), it.Value())
		}
		if !it.SeekGE([]byte("a")) || string(it.Key()) != "b" {
			t.Errorf("SeekGE below lower bound -> %q, want b", it.Key())
		}
		if it.SeekGE([]byte("e")) || it.Valid() || it.Key() != nil {
			t.Errorf("SeekGE past end -> valid, key %q", it.Key())
		}
		if err := it.Error(); err != nil {
			t.Errorf("Error at clean end = %v", err)
		}
		must(t, it.Close())
		if err := it.Close(); err != nil {
			t.Errorf("second Close = %v, want nil", err)
		}
		if it.First() || !errors.Is(it.Error(), ErrClosed) {
			t.Errorf("use after Close: First true or Error = %v", it.Error())
		}
	})

	t.Run("BatchReadYourWrites", func(t *testing.T) {
		db := open(t)
		commit(t, db, func(b *Batch) {
			for _, k := range []string{"k1", "k2", "k3"} {
				must(t, b.Set("s", []byte(k), []byte("old-"+k)))
			}
		})
		b := db.NewBatch()
		defer b.Close()
		must(t, b.Set("s", []byte("k2"), []byte("new-k2")))
		must(t, b.Delete("s", []byte("k3")))
		must(t, b.Set("s", []byte("k4"), []byte("new-k4")))
		must(t, b.Set("other", []byte("k1"), []byte("x")))

		for key, want := range map[string]string{"k1": "old-k1", "k2": "new-k2", "k3": "<none>", "k4": "new-k4"} {
			if got := getString(t, b, "s", key); got != want {
				t.Errorf("Batch.Get(%s) = %q, want %q", key, got, want)
			}
		}
		if got, want := dump(t, b, "s", nil, nil), "k1=old-k1 k2=new-k2 k4=new-k4"; got != want {
			t.Errorf("batch Scan = %q, want %q", got, want)
		}
		if got, want := dump(t, db, "s", nil, nil), "k1=old-k1 k2=old-k2 k3=old-k3"; got != want {
			t.Errorf("DB Scan during batch = %q, want %q (uncommitted writes leaked)", got, want)
		}
		// A batch iterator sees the batch as of its creation.
		it, err := b.NewIter("s", nil, nil)
		must(t, err)
		must(t, b.Set("s", []byte("k0"), []byte("later")))
		if !it.First() || string(it.Key()) != "k1" {
			t.Errorf("batch iterator First = %q, want k1 (writes after NewIter are not visible)", it.Key())
		}
		must(t, it.Close())
		if got, want := dump(t, b, "s", nil, nil), "k0=later k1=old-k1 k2=new-k2 k4=new-k4"; got != want {
			t.Errorf("new batch Scan = %q, want %q", got, want)
		}
	})

	t.Run("BatchRead", func(t *testing.T) {
		db := open(t)
		commit(t, db, func(b *Batch) {
			must(t, b.Set("s", []byte("committed"), []byte("c")))
			must(t, b.Set("s", []byte("overwritten"), []byte("old")))
		})
		b := db.NewBatch()
		defer b.Close()
		must(t, b.Set("s", []byte("overwritten"), []byte("new")))
		must(t, b.Set("s", []byte("written"), []byte("w")))
		must(t, b.Delete("s", []byte("committed")))
		read := func(key string) string {
			got := "<not called>"
			err := b.Read("s", []byte(key), func(v []byte) { got = string(v) })
			if errors.Is(err, ErrNotFound) {
				if got != "<not called>" {
					t.Errorf("Read(%s) called fn and returned ErrNotFound", key)
				}
				return "<none>"
			}
			must(t, err)
			return got
		}
		for key, want := range map[string]string{"committed": "<none>", "overwritten": "new", "written": "w", "absent": "<none>"} {
			if got := read(key); got != want {
				t.Errorf("Read(%s) = %q, want %q", key, got, want)
			}
		}
		b.Reset()
		db.values.reset()
		for range 2 { // from Pebble, then from the value cache
			if got := read("committed"); got != "c" {
				t.Errorf("Read(committed) after Reset = %q, want c", got)
			}
		}
	})

	t.Run("BatchKeepsLastWrite", func(t *testing.T) {
		db := open(t)
		commit(t, db, func(b *Batch) { must(t, b.Set("s", []byte("gone"), []byte("old"))) })
		b := db.NewBatch()
		defer b.Close()
		for i := range 3 {
			must(t, b.Set("s", []byte("k"), fmt.Appendf(nil, "v%d", i)))
		}
		must(t, b.Set("s", []byte("gone"), []byte("x")))
		must(t, b.Delete("s", []byte("gone")))
		must(t, b.Delete("s", []byte("back")))
		must(t, b.Set("s", []byte("back"), []byte("again")))
		must(t, b.Set("s", []byte("empty"), nil))
		must(t, b.Set("other", []byte("k"), []byte("elsewhere")))
		if b.Count() != 5 {
			t.Errorf("Count = %d, want 5 (one per key written)", b.Count())
		}
		var got []string
		var kept []byte
		must(t, b.Changes("s", func(k, v []byte) {
			switch {
			case v == nil:
				got = append(got, string(k)+"=<deleted>")
			default:
				got = append(got, fmt.Sprintf("%s=%q", k, v))
			}
			if string(k) == "k" {
				kept = v
			}
		}))
		if want := `back="again" empty="" gone=<deleted> k="v2"`; fmt.Sprint(got) != "["+want+"]" {
			t.Errorf("Changes = %v, want [%s]", got, want)
		}
		// A value Changes handed out is never overwritten.
		must(t, b.Set("s", []byte("k"), []byte("v3")))
		if string(kept) != "v2" {
			t.Errorf("value from Changes became %q after a later Set", kept)
		}
		must(t, db.Commit(b))
		if got, want := dump(t, db, "s", nil, nil), "back=again empty= k=v3"; got != want {
			t.Errorf("after commit: %q, want %q", got, want)
		}
		if string(kept) != "v2" {
			t.Errorf("value from Changes became %q after Commit", kept)
		}
	})

	t.Run("AbortLeavesDBUnchanged", func(t *testing.T) {
		db := open(t)
		commit(t, db, func(b *Batch) {
			must(t, b.Set("s", []byte("k"), []byte("committed")))
			must(t, b.SetOffset("in/t/0", 10))
		})
		b := db.NewBatch()
		must(t, b.Set("s", []byte("k"), []byte("aborted")))
		must(t, b.Set("s", []byte("k2"), []byte("aborted")))
		must(t, b.SetOffset("in/t/0", 20))
		must(t, b.Close()) // abort
		if got := dump(t, db, "s", nil, nil); got != "k=committed" {
			t.Errorf("after Close without Commit: %q", got)
		}
		if got := offset(t, db, "in/t/0"); got != 10 {
			t.Errorf("offset after abort = %d, want 10", got)
		}

		// Reset is also an abort, and leaves the batch reusable.
		b = db.NewBatch()
		defer b.Close()
		must(t, b.Set("s", []byte("k"), []byte("aborted")))
		b.Reset()
		if !b.Empty() || b.Count() != 0 {
			t.Errorf("after Reset: Empty=%v Count=%d", b.Empty(), b.Count())
		}
		must(t, b.Set("s", []byte("k3"), []byte("after-reset")))
		must(t, db.Commit(b))
		if got := dump(t, db, "s", nil, nil); got != "k=committed k3=after-reset" {
			t.Errorf("after Reset+Commit: %q", got)
		}
	})

	t.Run("CommitAtomicVisibility", func(t *testing.T) {
		db := open(t)
		snap, err := db.NewIter("s", nil, nil) // snapshot before the commit
		must(t, err)
		defer snap.Close()
		const n = 500
		commit(t, db, func(b *Batch) {
			for i := range n {
				must(t, b.Set("s", fmt.Appendf(nil, "k%04d", i), []byte("v")))
			}
			must(t, b.SetOffset("in/t/0", n))
			must(t, b.SetOffset("changelog/s", 3*n))
		})
		count := 0
		must(t, db.Scan("s", nil, nil, func(k, v []byte) error { count++; return nil }))
		if count != n || offset(t, db, "in/t/0") != n || offset(t, db, "changelog/s") != 3*n {
			t.Errorf("after commit: %d keys, offsets %d/%d", count, offset(t, db, "in/t/0"), offset(t, db, "changelog/s"))
		}
		if snap.First() {
			t.Errorf("iterator opened before commit sees %q", snap.Key())
		}
		must(t, snap.Error())
	})

	t.Run("BatchLifecycle", func(t *testing.T) {
		db := open(t)
		b := db.NewBatch()
		must(t, b.Set("s", []byte("k"), []byte("v")))
		if b.Empty() || b.Count() != 1 || b.Len() == 0 {
			t.Errorf("Empty=%v Count=%d Len=%d after one Set", b.Empty(), b.Count(), b.Len())
		}
		it, err := b.NewIter("s", nil, nil)
		must(t, err)
		must(t, db.Commit(b))
		if it.First() || !errors.Is(it.Error(), ErrClosed) || !errors.Is(it.Close(), ErrClosed) {
			t.Errorf("batch iterator survived Commit: Error=%v", it.Error())
		}
		if err := b.Set("s", []byte("k2"), nil); !errors.Is(err, ErrCommitted) {
			t.Errorf("Set after Commit: %v, want ErrCommitted", err)
		}
		if _, err := b.Get("s", []byte("k")); !errors.Is(err, ErrCommitted) {
			t.Errorf("Get after Commit: %v, want ErrCommitted", err)
		}
		if err := db.Commit(b); !errors.Is(err, ErrCommitted) {
			t.Errorf("second Commit: %v, want ErrCommitted", err)
		}
		b.Reset()
		must(t, b.Set("s", []byte("k2"), []byte("v2")))
		must(t, db.Commit(b))
		must(t, b.Close())
		must(t, b.Close()) // idempotent
		if err := b.Set("s", []byte("k3"), nil); !errors.Is(err, ErrClosed) {
			t.Errorf("Set after Close: %v, want ErrClosed", err)
		}
		if err := db.Commit(b); !errors.Is(err, ErrClosed) {
			t.Errorf("Commit after Close: %v, want ErrClosed", err)
		}
		b.Reset() // no-op on a closed batch
		if got := dump(t, db, "s", nil, nil); got != "k=v k2=v2" {
			t.Errorf("state = %q", got)
		}
		other := open(t)
		ob := other.NewBatch()
		defer ob.Close()
		if err := db.Commit(ob); err == nil {
			t.Error("Commit of another DB's batch succeeded")
		}
	})

	t.Run("Offsets", func(t *testing.T) {
		db := open(t)
		if off, ok, err := db.Offset("in/x/0"); ok || err != nil || off != 0 {
			t.Fatalf("missing offset = %d, %v, %v", off, ok, err)
		}
		if _, err := db.Meta("m"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("missing meta err = %v", err)
		}
		names := map[string]int64{
			"in/factory2.events.build/3": 0,
			"in/factory2.events.build/4": 1 << 40,
			"changelog/subjects":         math.MaxInt64,
			"negative":                   -1,
			"with\x00nul and ünïcode":    42,
		}
		commit(t, db, func(b *Batch) {
			for name, off := range names {
				must(t, b.SetOffset(name, off))
			}
			must(t, b.SetMeta("blob", []byte{0, 1, 2}))
		})
		for name, want := range names {
			if got := offset(t, db, name); got != want {
				t.Errorf("Offset(%q) = %d, want %d", name, got, want)
			}
		}
		if v, err := db.Meta("blob"); err != nil || !bytes.Equal(v, []byte{0, 1, 2}) {
			t.Errorf("Meta(blob) = %v, %v", v, err)
		}
		var ce *CorruptionError
		if _, _, err := db.Offset("blob"); !errors.As(err, &ce) {
			t.Errorf("Offset of a 3-byte meta value: err = %v, want *CorruptionError", err)
		}
		commit(t, db, func(b *Batch) { must(t, b.SetOffset("changelog/subjects", 5)) })
		if got := offset(t, db, "changelog/subjects"); got != 5 {
			t.Errorf("overwritten offset = %d", got)
		}
	})

	t.Run("ScanErrorPropagates", func(t *testing.T) {
		db := open(t)
		commit(t, db, func(b *Batch) {
			for _, k := range []string{"a", "b", "c"} {
				must(t, b.Set("s", []byte(k), nil))
			}
		})
		stop := errors.New("stop here")
		for name, r := range map[string]reader{"db": db, "batch": db.NewBatch()} {
			calls := 0
			err := r.Scan("s", nil, nil, func(k, v []byte) error {
				calls++
				if string(k) == "b" {
					return fmt.Errorf("at %s: %w", k, stop)
				}
				return nil
			})
			if !errors.Is(err, stop) || calls != 2 {
				t.Errorf("%s: Scan = %v after %d calls; want the callback's error after 2", name, err, calls)
			}
			if b, ok := r.(*Batch); ok {
				must(t, b.Close())
			}
		}
		db.itersMu.Lock()
		open := len(db.iters)
		db.itersMu.Unlock()
		if open != 0 {
			t.Errorf("%d iterators left open by Scan", open)
		}
	})

	t.Run("Closed", func(t *testing.T) {
		db := open(t)
		commit(t, db, func(b *Batch) { must(t, b.Set("s", []byte("k"), []byte("v"))) })
		it, err := db.NewIter("s", nil, nil)
		must(t, err)
		if !it.First() {
			t.Fatal("First = false")
		}
		b := db.NewBatch()
		must(t, b.Set("s", []byte("k2"), nil))
		bit, err := b.NewIter("s", nil, nil)
		must(t, err)
		r, err := db.NewRestorer("s")
		must(t, err)

		must(t, db.Close())

		if err := db.Close(); !errors.Is(err, ErrClosed) {
			t.Errorf("second Close: %v", err)
		}
		checks := map[string]error{
			"Get":        func() error { _, err := db.Get("s", []byte("k")); return err }(),
			"Meta":       func() error { _, err := db.Meta("m"); return err }(),
			"Offset":     func() error { _, _, err := db.Offset("m"); return err }(),
			"NewIter":    func() error { _, err := db.NewIter("s", nil, nil); return err }(),
			"Scan":       db.Scan("s", nil, nil, func(k, v []byte) error { return nil }),
			"Commit":     db.Commit(b),
			"Batch.Get":  func() error { _, err := b.Get("s", []byte("k")); return err }(),
			"NewBatch":   db.NewBatch().Set("s", []byte("k"), nil),
			"Restorer":   r.Finish("changelog/s", 1),
			"NewRestore": func() error { _, err := db.NewRestorer("s"); return err }(),
			"Iter.Next":  func() error { it.Next(); return it.Error() }(),
			"Iter.Close": it.Close(),
			"BatchIter":  func() error { bit.First(); return bit.Close() }(),
		}
		for op, err := range checks {
			if !errors.Is(err, ErrClosed) {
				t.Errorf("%s on closed DB: err = %v, want ErrClosed", op, err)
			}
		}
		if it.Valid() {
			t.Error("iterator Valid after DB Close")
		}
		if db.Metrics() != nil {
			t.Error("Metrics of closed DB != nil")
		}
		must(t, b.Close())
		must(t, r.Close())
	})

	t.Run("Restorer", func(t *testing.T) {
		db := open(t)
		commit(t, db, func(b *Batch) {
			must(t, b.Set("s", []byte("a"), []byte("1")))
			must(t, b.Set("s", []byte("b"), []byte("2")))
			must(t, b.Set("s", []byte("c"), []byte("3")))
			must(t, b.Set("t", []byte("a"), []byte("other store")))
			must(t, b.SetOffset("changelog/s", 100))
		})
		r, err := db.NewRestorer("s")
		must(t, err)
		defer r.Close()
		must(t, r.Put([]byte("a"), []byte("10")))
		must(t, r.Delete([]byte("b")))
		must(t, r.Put([]byte("d"), []byte("4")))
		// Enough bulk to force several intermediate (unsynced) commits.
		val := bytes.Repeat([]byte("x"), 300)
		const bulk = 3 * restoreBatchBytes / 300
		for i := range bulk {
			must(t, r.Put(fmt.Appendf(nil, "z%06d", i), val))
		}
		must(t, r.Delete([]byte("z000000"))) // tombstone for a key restored earlier
		must(t, r.Put([]byte("c"), []byte("30")))
		if r.Records() != bulk+5 {
			t.Errorf("Records = %d, want %d", r.Records(), bulk+5)
		}
		must(t, r.Finish("changelog/s", 250))

		for key, want := range map[string]string{"a": "10", "b": "<none>", "c": "30", "d": "4", "z000000": "<none>", "z000001": string(val)} {
			if got := getString(t, db, "s", key); got != want {
				t.Errorf("after restore %s = %.10q, want %.10q", key, got, want)
			}
		}
		if got := getString(t, db, "t", "a"); got != "other store" {
			t.Errorf("restore touched another store: %q", got)
		}
		if got := offset(t, db, "changelog/s"); got != 250 {
			t.Errorf("changelog offset = %d, want 250", got)
		}
		count := 0
		must(t, db.Scan("s", []byte("z"), nil, func(k, v []byte) error { count++; return nil }))
		if count != bulk-1 {
			t.Errorf("restored %d bulk keys, want %d", count, bulk-1)
		}
		if err := r.Put([]byte("late"), nil); !errors.Is(err, ErrClosed) {
			t.Errorf("Put after Finish: %v, want ErrClosed", err)
		}
		must(t, r.Close())

		// A Restorer closed without Finish writes no offset.
		r2, err := db.NewRestorer("s")
		must(t, err)
		must(t, r2.Put([]byte("e"), []byte("5")))
		must(t, r2.Close())
		if got := getString(t, db, "s", "e"); got != "<none>" {
			t.Errorf("unflushed restore record visible after Close: %q", got)
		}
		if got := offset(t, db, "changelog/s"); got != 250 {
			t.Errorf("offset after abandoned restore = %d", got)
		}
	})

	t.Run("ConcurrentReadersWritersAndClose", func(t *testing.T) {
		db := open(t)
		var wg sync.WaitGroup
		var commits atomic.Int64
		for w := range 4 {
			wg.Go(func() {
				for i := 0; ; i++ {
					b := db.NewBatch()
					err := b.Set("s", fmt.Appendf(nil, "w%d-%d", w, i%50), []byte("v"))
					if err == nil {
						err = db.Commit(b)
					}
					_ = b.Close()
					if err != nil {
						if !errors.Is(err, ErrClosed) {
							t.Errorf("writer: %v", err)
						}
						return
					}
					commits.Add(1)
				}
			})
			wg.Go(func() {
				for {
					err := db.Scan("s", nil, nil, func(k, v []byte) error { return nil })
					if err == nil {
						_, err = db.Get("s", []byte("w0-1"))
						if errors.Is(err, ErrNotFound) {
							err = nil
						}
					}
					if err != nil {
						if !errors.Is(err, ErrClosed) {
							t.Errorf("reader: %v", err)
						}
						return
					}
				}
			})
		}
		// Let them run a little, then close underneath them.
		waitFor(t, 10*time.Second, func() bool { return commits.Load() >= 100 })
		must(t, db.Close())
		wg.Wait()
	})
}
