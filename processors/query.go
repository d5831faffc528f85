package processors

import (
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Errors of interactive queries.
var (
	// ErrNotLocal: the key's partition is assigned to another instance.
	ErrNotLocal = errors.New("processors: the key's partition is not assigned to this instance")
	// ErrNotReady: the key's partition is assigned here but its state is
	// still being restored, or the runner has not joined its group yet.
	ErrNotReady = errors.New("processors: the key's partition is still being restored")
)

// keyPartitioner is Kafka's murmur2 key partitioner, the one outputs and
// producers use, so a key's task is found without asking the broker.
var keyPartitioner = kgo.StickyKeyPartitioner(nil).ForTopic("")

// PartitionFor returns the partition of key among n partitions, as
// Kafka's default partitioner (murmur2) places it.
func PartitionFor(key []byte, n int) int32 {
	return int32(keyPartitioner.Partition(&kgo.Record{Key: key}, n))
}

// Get reads key from store in the committed local state of the task that
// owns key (an interactive query): what the last committed transaction
// left, never the open one. It returns ErrNotLocal when another instance
// owns the key and ErrNotReady while the task restores. Safe for
// concurrent use with Run.
func (r *Runner) Get(store string, key []byte) ([]byte, bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.partitions == 0 {
		return nil, false, ErrNotReady
	}
	p := PartitionFor(key, r.partitions)
	t := r.tasks[p]
	switch {
	case t == nil:
		return nil, false, fmt.Errorf("%w (partition %d of %d)", ErrNotLocal, p, r.partitions)
	case !t.restored:
		return nil, false, fmt.Errorf("%w (partition %d)", ErrNotReady, p)
	}
	v, err := t.db.Get(store, key)
	if err != nil {
		if isNotFound(err) {
			return nil, false, nil
		}
		return nil, false, err
	}
	return v, true, nil
}
