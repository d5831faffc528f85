package state

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
)

func TestValueCacheFollowsCommits(t *testing.T) {
	db := openMem(t)
	commit(t, db, func(b *Batch) { must(t, b.Set("s", []byte("k"), []byte("v1"))) })
	v, err := db.Get("s", []byte("k"))
	must(t, err)
	v[0] = 'X' // the caller's copy, not the cache's
	if got := getString(t, db, "s", "k"); got != "v1" {
		t.Fatalf("Get = %q, want v1", got)
	}
	if st := db.ValueCacheStats(); st.Hits != 2 || st.Misses != 0 || st.Bytes == 0 || st.Capacity != DefaultValueCacheBytes {
		t.Errorf("stats after two reads of a committed key: %+v, want 2 hits, no miss", st)
	}

	// An aborted batch leaves the committed view alone.
	b := db.NewBatch()
	must(t, b.Set("s", []byte("k"), []byte("aborted")))
	must(t, b.Set("s", []byte("new"), []byte("aborted")))
	b.Reset()
	for _, r := range []reader{db, b} {
		if got := getString(t, r, "s", "k"); got != "v1" {
			t.Errorf("after abort: Get = %q, want v1", got)
		}
		if got := getString(t, r, "s", "new"); got != "<none>" {
			t.Errorf("after abort: Get(new) = %q, want none", got)
		}
	}
	must(t, b.Close())

	commit(t, db, func(b *Batch) { must(t, b.Delete("s", []byte("k"))) })
	if got := getString(t, db, "s", "k"); got != "<none>" {
		t.Errorf("after delete: Get = %q", got)
	}
	commit(t, db, func(b *Batch) { must(t, b.Set("s", []byte("k"), []byte("v2"))) })
	if got := getString(t, db, "s", "k"); got != "v2" {
		t.Errorf("after recreate: Get = %q", got)
	}
}

func TestValueCacheFollowsRestore(t *testing.T) {
	db := openMem(t)
	commit(t, db, func(b *Batch) {
		must(t, b.Set("s", []byte("a"), []byte("1")))
		must(t, b.Set("s", []byte("b"), []byte("2")))
	})
	for _, k := range []string{"a", "b", "c"} {
		getString(t, db, "s", k) // cached, c as absent
	}
	r, err := db.NewRestorer("s")
	must(t, err)
	must(t, r.Put([]byte("a"), []byte("10")))
	must(t, r.Delete([]byte("b")))
	must(t, r.Put([]byte("c"), []byte("30")))
	must(t, r.Finish("changelog/s", 3))
	for k, want := range map[string]string{"a": "10", "b": "<none>", "c": "30"} {
		if got := getString(t, db, "s", k); got != want {
			t.Errorf("after restore: %s = %q, want %q", k, got, want)
		}
	}
}

func TestValueCacheBounded(t *testing.T) {
	const max = 4096
	db := openOn(t, nil, t.TempDir(), func(o *Options) { o.ValueCacheBytes = max })
	val := make([]byte, 100)
	for round := range 3 {
		commit(t, db, func(b *Batch) {
			for i := range 500 {
				binary.BigEndian.PutUint32(val, uint32(round*1000+i))
				must(t, b.Set("s", fmt.Appendf(nil, "k%03d", i), val))
			}
		})
		for i := range 500 {
			v, err := db.Get("s", fmt.Appendf(nil, "k%03d", i))
			must(t, err)
			if got := binary.BigEndian.Uint32(v); got != uint32(round*1000+i) {
				t.Fatalf("round %d: k%03d = %d", round, i, got)
			}
		}
		db.values.mu.Lock()
		used, n := db.values.used, len(db.values.idx)
		db.values.mu.Unlock()
		if used > max || n == 0 {
			t.Errorf("round %d: cache holds %d entries, %d bytes; want some, at most %d bytes", round, n, used, max)
		}
	}
}

func TestValueCacheOff(t *testing.T) {
	db := openOn(t, nil, t.TempDir(), func(o *Options) { o.ValueCacheBytes = -1 })
	commit(t, db, func(b *Batch) { must(t, b.Set("s", []byte("k"), []byte("v"))) })
	if got := getString(t, db, "s", "k"); got != "v" {
		t.Errorf("Get = %q", got)
	}
	if len(db.values.idx) != 0 {
		t.Errorf("disabled cache holds %d entries", len(db.values.idx))
	}
}

// TestValueCacheStaleFill is the race a reader's fill can lose: it read
// the old value from Pebble, a commit then wrote a new one; its fill must
// not put the old value back.
func TestValueCacheStaleFill(t *testing.T) {
	c := newValueCache(1 << 20)
	key := []byte("\x01sk")
	_, _, hit, gen := c.get(key)
	if hit {
		t.Fatal("hit in an empty cache")
	}
	c.committed([]write{{key: string(key), value: []byte("new")}})
	c.fill(key, []byte("old"), false, gen)
	if v, _, hit, _ := c.get(key); !hit || string(v) != "new" {
		t.Errorf("after a stale fill: %q (hit %v), want new", v, hit)
	}
	// Same for a restore, which drops everything.
	_, _, _, gen = c.get([]byte("\x01sother"))
	c.reset()
	c.fill([]byte("\x01sother"), []byte("old"), false, gen)
	if _, _, hit, _ := c.get([]byte("\x01sother")); hit {
		t.Error("a fill from before a restore was cached")
	}
}

// TestValueCacheConcurrentReads checks, under -race, that readers never
// see a value older than the last commit that returned before they read.
func TestValueCacheConcurrentReads(t *testing.T) {
	db := openMem(t)
	const commits = 300
	var done atomic.Uint64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 3 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				floor := done.Load()
				v, err := db.Get("s", []byte("k"))
				if errors.Is(err, ErrNotFound) {
					if floor > 0 {
						t.Errorf("not found after commit %d", floor)
						return
					}
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				if got := binary.BigEndian.Uint64(v); got < floor {
					t.Errorf("read %d after commit %d returned", got, floor)
					return
				}
			}
		})
	}
	for i := uint64(1); i <= commits; i++ {
		commit(t, db, func(b *Batch) { must(t, b.Set("s", []byte("k"), binary.BigEndian.AppendUint64(nil, i))) })
		done.Store(i)
		if i%2 == 0 {
			db.values.reset() // as an eviction would: the next reads miss and fill
		}
	}
	close(stop)
	wg.Wait()
}
