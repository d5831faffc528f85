package state_test

import (
	"errors"
	"fmt"
	"log"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/factory2/factory2/state"
)

// Example shows one transaction's life: reads and writes in a batch, then
// an atomic commit of the state together with the consumed input offset.
func Example() {
	cache := state.NewCache(64 << 20) // one per process, shared by all tasks
	defer cache.Unref()
	db, err := state.Open(state.Options{Dir: "gating-3", FS: vfs.NewMem(), Cache: cache})
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	b := db.NewBatch()
	defer b.Close()
	if _, err := b.Get("subjects", []byte("nvr-1")); err != nil && !errors.Is(err, state.ErrNotFound) {
		log.Fatal(err)
	}
	if err := b.Set("subjects", []byte("nvr-1"), []byte("gated")); err != nil {
		log.Fatal(err)
	}
	if err := b.SetOffset("in/factory2.events.build/3", 42); err != nil {
		log.Fatal(err)
	}
	// ... the Kafka transaction commits here ...
	if err := db.Commit(b); err != nil {
		log.Fatal(err)
	}

	v, _ := db.Get("subjects", []byte("nvr-1"))
	off, ok, _ := db.Offset("in/factory2.events.build/3")
	fmt.Printf("%s %d %v\n", v, off, ok)
	// Output: gated 42 true
}

// ExampleRestorer replays a changelog tail after the stored offset.
func ExampleRestorer() {
	db, err := state.Open(state.Options{Dir: "gating-3", FS: vfs.NewMem()})
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	from, _, _ := db.Offset("changelog/subjects") // 0, false: restore everything
	r, err := db.NewRestorer("subjects")
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
	changelog := []struct{ k, v string }{{"a", "1"}, {"b", "2"}, {"a", ""}} // "" = tombstone
	for _, rec := range changelog[from:] {
		if rec.v == "" {
			err = r.Delete([]byte(rec.k))
		} else {
			err = r.Put([]byte(rec.k), []byte(rec.v))
		}
		if err != nil {
			log.Fatal(err)
		}
	}
	if err := r.Finish("changelog/subjects", int64(len(changelog))); err != nil {
		log.Fatal(err)
	}

	_ = db.Scan("subjects", nil, nil, func(k, v []byte) error {
		fmt.Printf("%s=%s\n", k, v)
		return nil
	})
	off, _, _ := db.Offset("changelog/subjects")
	fmt.Println("next changelog offset:", off)
	// Output:
	// b=2
	// next changelog offset: 3
}
