package state

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Collector is a prometheus.Collector exporting Pebble metrics of a set of
// DBs, read from DB.Metrics at scrape time (nothing is computed between
// scrapes). Register it with the injected prometheus.Registerer; Add a DB
// when its task starts and Remove it when the task stops.
//
// Per-DB series carry one label, "task", whose values are the labels given
// to Add. Use a task identity such as "gating/3" (processor/partition):
// cardinality is then bounded by the partitions assigned to the process.
// Never use keys or other unbounded values.
//
// Block cache series have no label: the cache is usually shared by all
// tasks, so it is reported once, summed over the distinct caches of the
// registered DBs. (With private caches, removing a DB lowers the sums,
// which Prometheus sees as a counter reset.)
//
// A Collector is safe for concurrent use.
type Collector struct {
	mu  sync.Mutex
	dbs map[string]*DB

	diskUsage     *prometheus.Desc
	memTableSize  *prometheus.Desc
	readAmp       *prometheus.Desc
	sstables      *prometheus.Desc
	compactDebt   *prometheus.Desc
	compactions   *prometheus.Desc
	flushes       *prometheus.Desc
	walBytes      *prometheus.Desc
	cacheSize     *prometheus.Desc
	cacheCapacity *prometheus.Desc
	cacheHits     *prometheus.Desc
	cacheMisses   *prometheus.Desc
	valueBytes    *prometheus.Desc
	valueHits     *prometheus.Desc
	valueMisses   *prometheus.Desc
}

var _ prometheus.Collector = (*Collector)(nil)

// NewCollector returns a Collector whose metric names start with
// namespace + "_state_".
func NewCollector(namespace string) *Collector {
	task := []string{"task"}
	d := func(name, help string, labels []string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(namespace, "state", name), help, labels, nil)
	}
	return &Collector{
		dbs:           make(map[string]*DB),
		diskUsage:     d("disk_usage_bytes", "Disk space used by the task's Pebble database (live and obsolete sstables, WAL, manifest).", task),
		memTableSize:  d("memtable_size_bytes", "Bytes allocated by the task's memtables.", task),
		readAmp:       d("read_amplification", "Pebble read amplification: L0 sublevels plus non-empty lower levels.", task),
		sstables:      d("sstables", "Number of sstables, summed over all levels.", task),
		compactDebt:   d("compaction_debt_bytes", "Estimated bytes Pebble must compact to reach a stable LSM shape.", task),
		compactions:   d("compactions_total", "Compactions completed since the database was opened.", task),
		flushes:       d("flushes_total", "Memtable flushes completed since the database was opened.", task),
		walBytes:      d("wal_written_bytes_total", "Bytes written to the write-ahead log since the database was opened.", task),
		cacheSize:     d("block_cache_size_bytes", "Bytes in use by the block cache(s).", nil),
		cacheCapacity: d("block_cache_capacity_bytes", "Configured capacity of the block cache(s).", nil),
		cacheHits:     d("block_cache_hits_total", "Block cache hits.", nil),
		cacheMisses:   d("block_cache_misses_total", "Block cache misses.", nil),
		valueBytes:    d("value_cache_bytes", "Estimated bytes held by the task's cache of committed values.", task),
		valueHits:     d("value_cache_hits_total", "Point reads of committed state answered by the task's value cache.", task),
		valueMisses:   d("value_cache_misses_total", "Point reads of committed state that went to Pebble.", task),
	}
}

// Add starts exporting db's metrics under task label; a DB already under
// that label is replaced. db is read at scrape time; a closed DB is skipped,
// but Remove it anyway.
func (c *Collector) Add(label string, db *DB) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dbs[label] = db
}

// Remove stops exporting the DB under label. Unknown labels are ignored.
func (c *Collector) Remove(label string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.dbs, label)
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		c.diskUsage, c.memTableSize, c.readAmp, c.sstables, c.compactDebt,
		c.compactions, c.flushes, c.walBytes,
		c.cacheSize, c.cacheCapacity, c.cacheHits, c.cacheMisses,
		c.valueBytes, c.valueHits, c.valueMisses,
	} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	dbs := make(map[string]*DB, len(c.dbs))
	for label, db := range c.dbs {
		dbs[label] = db
	}
	c.mu.Unlock()

	type cacheStats struct{ size, capacity, hits, misses float64 }
	caches := make(map[*Cache]cacheStats)
	for label, db := range dbs {
		m := db.Metrics()
		if m == nil {
			continue // closed
		}
		var tables int64
		for i := range m.Levels {
			tables += m.Levels[i].TablesCount
		}
		gauge := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, label)
		}
		counter := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, label)
		}
		gauge(c.diskUsage, float64(m.DiskSpaceUsage()))
		gauge(c.memTableSize, float64(m.MemTable.Size))
		gauge(c.readAmp, float64(m.ReadAmp()))
		gauge(c.sstables, float64(tables))
		gauge(c.compactDebt, float64(m.Compact.EstimatedDebt))
		counter(c.compactions, float64(m.Compact.Count))
		counter(c.flushes, float64(m.Flush.Count))
		counter(c.walBytes, float64(m.WAL.BytesWritten))
		vs := db.ValueCacheStats()
		gauge(c.valueBytes, float64(vs.Bytes))
		counter(c.valueHits, float64(vs.Hits))
		counter(c.valueMisses, float64(vs.Misses))

		// m.BlockCache describes the whole cache, not this DB's share of
		// it, so take one snapshot per distinct cache.
		if _, seen := caches[db.cache]; !seen {
			caches[db.cache] = cacheStats{
				size:     float64(m.BlockCache.Size),
				capacity: float64(db.cache.capacity),
				hits:     float64(m.BlockCache.Hits),
				misses:   float64(m.BlockCache.Misses),
			}
		}
	}
	var total cacheStats
	for _, s := range caches {
		total.size += s.size
		total.capacity += s.capacity
		total.hits += s.hits
		total.misses += s.misses
	}
	ch <- prometheus.MustNewConstMetric(c.cacheSize, prometheus.GaugeValue, total.size)
	ch <- prometheus.MustNewConstMetric(c.cacheCapacity, prometheus.GaugeValue, total.capacity)
	ch <- prometheus.MustNewConstMetric(c.cacheHits, prometheus.CounterValue, total.hits)
	ch <- prometheus.MustNewConstMetric(c.cacheMisses, prometheus.CounterValue, total.misses)
}
