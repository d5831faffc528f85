package state

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestCollector(t *testing.T) {
	cache := NewCache(64 << 20)
	defer cache.Unref()
	fs := vfs.NewMem()
	// No value cache: the Get below must reach Pebble's block cache.
	noValues := func(o *Options) { o.ValueCacheBytes = -1 }
	shared := func(o *Options) { o.Cache = cache; noValues(o) }
	dbA := openOn(t, fs, "a", shared)
	dbB := openOn(t, fs, "b", shared)
	dbPrivate := openOn(t, fs, "p", noValues) // private cache of DefaultCacheSize

	rng := rand.New(rand.NewPCG(1, 1))
	val := make([]byte, 100)
	for _, db := range []*DB{dbA, dbB, dbPrivate} {
		commit(t, db, func(b *Batch) {
			for i := range 1000 {
				for j := range val {
					val[j] = byte(rng.Uint32()) // incompressible
				}
				must(t, b.Set("s", fmt.Appendf(nil, "k%04d", i), val))
			}
		})
		must(t, db.pdb.Flush())
		_, err := db.Get("s", []byte("k0001")) // a block cache miss, then cached
		must(t, err)
	}

	c := NewCollector("factory2")
	c.Add("gating/0", dbA)
	c.Add("gating/1", dbB)
	c.Add("other/0", dbPrivate)
	reg := prometheus.NewPedanticRegistry()
	must(t, reg.Register(c))

	if problems, err := testutil.CollectAndLint(c); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}

	perTask := []string{
		"factory2_state_disk_usage_bytes",
		"factory2_state_memtable_size_bytes",
		"factory2_state_read_amplification",
		"factory2_state_sstables",
		"factory2_state_compaction_debt_bytes",
		"factory2_state_compactions_total",
		"factory2_state_flushes_total",
		"factory2_state_wal_written_bytes_total",
		"factory2_state_value_cache_bytes",
		"factory2_state_value_cache_hits_total",
		"factory2_state_value_cache_misses_total",
	}
	cacheWide := []string{
		"factory2_state_block_cache_size_bytes",
		"factory2_state_block_cache_capacity_bytes",
		"factory2_state_block_cache_hits_total",
		"factory2_state_block_cache_misses_total",
	}
	for _, name := range perTask {
		if n, err := testutil.GatherAndCount(reg, name); err != nil || n != 3 {
			t.Errorf("%s: %d series, %v; want one per task", name, n, err)
		}
	}
	for _, name := range cacheWide {
		if n, err := testutil.GatherAndCount(reg, name); err != nil || n != 1 {
			t.Errorf("%s: %d series, %v; want 1", name, n, err)
		}
	}

	families, err := reg.Gather()
	must(t, err)
	values := map[string]float64{} // name{task} -> value
	for _, f := range families {
		for _, m := range f.GetMetric() {
			key := f.GetName()
			for _, l := range m.GetLabel() {
				key += "{" + l.GetValue() + "}"
			}
			switch {
			case m.GetGauge() != nil:
				values[key] = m.GetGauge().GetValue()
			case m.GetCounter() != nil:
				values[key] = m.GetCounter().GetValue()
			}
		}
	}
	for _, task := range []string{"gating/0", "gating/1", "other/0"} {
		if v := values["factory2_state_disk_usage_bytes{"+task+"}"]; v < 100_000 {
			t.Errorf("disk usage of %s = %v, want >= 100000 (1000 x 100-byte values)", task, v)
		}
		if v := values["factory2_state_sstables{"+task+"}"]; v < 1 {
			t.Errorf("sstables of %s = %v, want >= 1 after a flush", task, v)
		}
		if v := values["factory2_state_flushes_total{"+task+"}"]; v < 1 {
			t.Errorf("flushes of %s = %v", task, v)
		}
	}
	// The shared cache is counted once, plus the private one.
	if got, want := values["factory2_state_block_cache_capacity_bytes"], float64(64<<20+DefaultCacheSize); got != want {
		t.Errorf("cache capacity = %v, want %v", got, want)
	}
	if v := values["factory2_state_block_cache_misses_total"]; v < 1 {
		t.Errorf("cache misses = %v, want >= 1", v)
	}

	// Removed and closed DBs disappear.
	c.Remove("gating/1")
	must(t, dbPrivate.Close())
	if n, err := testutil.GatherAndCount(reg, "factory2_state_disk_usage_bytes"); err != nil || n != 1 {
		t.Errorf("after Remove and Close: %d series, %v; want 1", n, err)
	}
	want := fmt.Sprintf(`
# HELP factory2_state_block_cache_capacity_bytes Configured capacity of the block cache(s).
# TYPE factory2_state_block_cache_capacity_bytes gauge
factory2_state_block_cache_capacity_bytes %d
`, 64<<20)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "factory2_state_block_cache_capacity_bytes"); err != nil {
		t.Error(err)
	}
}
