package state

import (
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"testing"
)

const (
	benchKeys     = 100_000
	benchValueLen = 256
)

// benchKey writes the key of record i into dst: 8 hashed bytes, so
// consecutive records land all over the keyspace as changelog and input
// records do.
func benchKey(dst []byte, i uint64) []byte {
	return binary.BigEndian.AppendUint64(append(dst[:0], "nvr-"...), i*0x9E3779B97F4A7C15)
}

func openBench(b *testing.B) *DB {
	cache := NewCache(256 << 20)
	b.Cleanup(cache.Unref)
	return openOn(b, nil, b.TempDir(), func(o *Options) {
		o.Cache = cache
		o.MemTableSize = DefaultMemTableSize
	})
}

// BenchmarkBatchSetGet is the processing loop: for each record, read the
// subject's state through the transaction's batch and write it back;
// commit (synced, with the input offset) every 1000 records.
func BenchmarkBatchSetGet(b *testing.B) {
	db := openBench(b)
	rng := rand.New(rand.NewPCG(1, 2))
	val := make([]byte, benchValueLen)
	var key []byte
	batch := db.NewBatch()
	defer batch.Close()
	n := 0
	for b.Loop() {
		key = benchKey(key, rng.Uint64N(benchKeys))
		if _, err := batch.Get("subjects", key); err != nil && !errors.Is(err, ErrNotFound) {
			b.Fatal(err)
		}
		if err := batch.Set("subjects", key, val); err != nil {
			b.Fatal(err)
		}
		n++
		if n%1000 == 0 {
			if err := batch.SetOffset("in/factory2.events.build/3", int64(n)); err != nil {
				b.Fatal(err)
			}
			if err := db.Commit(batch); err != nil {
				b.Fatal(err)
			}
			batch.Reset()
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkRestore restores b.N changelog records (256-byte values) into a
// store, including the final synced Finish. Target: >= 300k records/s.
func BenchmarkRestore(b *testing.B) {
	db := openBench(b)
	val := make([]byte, benchValueLen)
	var key []byte
	b.SetBytes(int64(len(val) + 12))
	b.ResetTimer()
	r, err := db.NewRestorer("subjects")
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	for i := range b.N {
		key = benchKey(key, uint64(i))
		if err := r.Put(key, val); err != nil {
			b.Fatal(err)
		}
	}
	if err := r.Finish("changelog/subjects", int64(b.N)); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkGet reads random existing keys of a store held in sstables
// (the block cache is large enough to hold them after warm-up).
func BenchmarkGet(b *testing.B) {
	db := openBench(b)
	r, err := db.NewRestorer("subjects")
	if err != nil {
		b.Fatal(err)
	}
	val := make([]byte, benchValueLen)
	var key []byte
	for i := range uint64(benchKeys) {
		key = benchKey(key, i)
		if err := r.Put(key, val); err != nil {
			b.Fatal(err)
		}
	}
	if err := r.Finish("changelog/subjects", benchKeys); err != nil {
		b.Fatal(err)
	}
	if err := db.pdb.Flush(); err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for b.Loop() {
		key = benchKey(key, rng.Uint64N(benchKeys))
		if _, err := db.Get("subjects", key); err != nil {
			b.Fatal(err)
		}
	}
}
