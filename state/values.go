package state

import "sync"

// DefaultValueCacheBytes is the size of a DB's committed-value cache when
// Options.ValueCacheBytes is zero: a few thousand typical subjects of a
// task, a small fraction of the block cache shared by all tasks.
const DefaultValueCacheBytes int64 = 8 << 20

// valueEntryOverhead approximates what an entry costs besides its key and
// value (slot, index entry, headers), so that a cache of tiny values stays
// bounded too.
const valueEntryOverhead = 80

// valueCache keeps recently read or written committed values of one DB,
// keyed by their full Pebble key, so that a point read of a hot key does
// not go through Pebble's memtables and sstables. It is bounded in bytes
// and evicts with CLOCK (second chance), which costs a bit set on a hit
// where LRU would move a list element.
//
// It caches absence too (a read that found nothing, a committed Delete).
//
// Consistency: Pebble's committed state changes only in DB.commit and in
// a Restorer's commits, and both update the cache after Pebble applied
// the batch (commit: the written keys; a restore: everything is dropped),
// bumping gen. A reader that missed fills the cache with what it read from
// Pebble only if gen did not move since its miss, so a value read before a
// concurrent commit can never overwrite the commit's newer one.
//
// Values in the cache are never modified: readers copy them out, and the
// writes a commit hands over belong to the cache from then on.
type valueCache struct {
	mu   sync.Mutex
	max  int64 // bytes; 0: the cache is off
	used int64
	idx  map[string]int32 // key -> slot in ents
	ents []valueEntry
	free []int32
	hand int
	gen  uint64
	// hits and misses count gets, for ValueCacheStats.
	hits, misses int64
}

type valueEntry struct {
	key    string
	value  []byte
	absent bool
	ref    bool // read or written since the clock hand last passed
	live   bool
}

func newValueCache(max int64) *valueCache {
	return &valueCache{max: max, idx: map[string]int32{}}
}

// entryCost is what an entry holds: a value that a batch overwrote in
// place may have spare capacity, which the cache keeps alive too.
func entryCost(key string, value []byte) int64 {
	return int64(len(key) + cap(value) + valueEntryOverhead)
}

// get returns the cached value of key: value (nil if absent), whether key
// is known to be absent, and hit. On a miss it returns the generation to
// pass to fill. value must not be modified.
func (c *valueCache) get(key []byte) (value []byte, absent, hit bool, gen uint64) {
	if c.max <= 0 {
		return nil, false, false, 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if i, ok := c.idx[string(key)]; ok {
		e := &c.ents[i]
		e.ref = true
		c.hits++
		return e.value, e.absent, true, 0
	}
	c.misses++
	return nil, false, false, c.gen
}

// ValueCacheStats describes a DB's cache of committed values.
type ValueCacheStats struct {
	// Bytes is the cache's estimated size, Capacity its bound.
	Bytes, Capacity int64
	// Hits and Misses count the point reads of committed state it
	// answered and those that went to Pebble.
	Hits, Misses int64
}

func (c *valueCache) stats() ValueCacheStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return ValueCacheStats{Bytes: c.used, Capacity: c.max, Hits: c.hits, Misses: c.misses}
}

// fill caches what a reader that missed at generation gen read from
// Pebble: a copy of value, or absence. It does nothing if the committed
// state may have changed since (gen moved) or key was cached meanwhile.
func (c *valueCache) fill(key []byte, value []byte, absent bool, gen uint64) {
	if c.max <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	if _, ok := c.idx[string(key)]; ok {
		return
	}
	if !absent {
		value = clone(value)
	}
	c.insert(string(key), value, absent)
}

// committed records the writes of a batch Pebble just applied: the new
// value of every written store key, or its absence (deleted). The cache
// takes ownership of the values.
func (c *valueCache) committed(ws []write) {
	if c.max <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for i := range ws {
		w := &ws[i]
		if w.key[0] == metaTag {
			continue // metadata is read through DB.Meta, uncached
		}
		if j, ok := c.idx[w.key]; ok {
			c.remove(j)
		}
		c.insert(w.key, w.value, w.deleted)
	}
}

// reset drops everything: the committed state changed in a way the cache
// does not follow key by key (a restore).
func (c *valueCache) reset() {
	if c.max <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	clear(c.idx)
	clear(c.ents)
	c.ents, c.free, c.hand, c.used = c.ents[:0], c.free[:0], 0, 0
}

// insert adds key, evicting until it fits. A value too large for a
// quarter of the cache is not cached: it would evict too much. Requires
// c.mu.
func (c *valueCache) insert(key string, value []byte, absent bool) {
	cost := entryCost(key, value)
	if cost > c.max/4 {
		return
	}
	for c.used+cost > c.max && len(c.idx) > 0 {
		c.evictOne()
	}
	e := valueEntry{key: key, value: value, absent: absent, ref: true, live: true}
	var i int32
	if n := len(c.free); n > 0 {
		i = c.free[n-1]
		c.free = c.free[:n-1]
		c.ents[i] = e
	} else {
		i = int32(len(c.ents))
		c.ents = append(c.ents, e)
	}
	c.idx[key] = i
	c.used += cost
}

// evictOne advances the clock hand to the first live entry not referenced
// since the hand last passed, clearing reference bits on the way, and
// evicts it. Requires c.mu and at least one live entry.
func (c *valueCache) evictOne() {
	for {
		if c.hand >= len(c.ents) {
			c.hand = 0
		}
		e := &c.ents[c.hand]
		i := int32(c.hand)
		c.hand++
		switch {
		case !e.live:
		case e.ref:
			e.ref = false
		default:
			c.remove(i)
			return
		}
	}
}

// remove frees slot i. Requires c.mu.
func (c *valueCache) remove(i int32) {
	e := &c.ents[i]
	delete(c.idx, e.key)
	c.used -= entryCost(e.key, e.value)
	*e = valueEntry{}
	c.free = append(c.free, i)
}
