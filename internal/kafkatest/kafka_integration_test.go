package kafkatest_test

// Integration tests against the real Apache Kafka broker. Each calls RequireReal, so
// it skips without FACTORY2_KAFKA_BROKERS and fails under FACTORY2_REQUIRE_KAFKA=1
// (make test); each logs what it proved, which make test's output shows.

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/factory2/factory2/internal/kafkatest"
)

// ioTimeout bounds each produce or consume step against the real broker.
const ioTimeout = 30 * time.Second

func TestRealBrokerProduceConsume(t *testing.T) {
	env := kafkatest.RequireReal(t)
	topic := kafkatest.Topic(t, env, 1, nil)
	ctx, cancel := context.WithTimeout(t.Context(), ioTimeout)
	defer cancel()

	const n = 500
	p := kafkatest.Client(t, env, kgo.DefaultProduceTopic(topic))
	rs := make([]*kgo.Record, n)
	for i := range rs {
		rs[i] = &kgo.Record{Key: []byte(strconv.Itoa(i % 7)), Value: []byte(strconv.Itoa(i))}
	}
	if err := p.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}

	c := kafkatest.Client(t, env, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	got := consume(ctx, t, c, func(got []*kgo.Record) bool { return len(got) >= n })
	if len(got) != n {
		t.Fatalf("consumed %d records, want %d", len(got), n)
	}
	for i, r := range got {
		if string(r.Value) != strconv.Itoa(i) || r.Offset != int64(i) {
			t.Fatalf("record %d: value %q at offset %d, want %q at offset %d", i, r.Value, r.Offset, strconv.Itoa(i), i)
		}
	}
	t.Logf("proved: %d records produced to %s on %v are consumed back in order at offsets 0..%d",
		n, topic, env.Brokers(), n-1)
}

func TestRealBrokerTransactionCommitAbort(t *testing.T) {
	env := kafkatest.RequireReal(t)
	topic := kafkatest.Topic(t, env, 1, nil)
	ctx, cancel := context.WithTimeout(t.Context(), ioTimeout)
	defer cancel()

	p := kafkatest.Client(t, env,
		kgo.DefaultProduceTopic(topic),
		kgo.TransactionalID(kafkatest.UniqueName(t)),
		kgo.TransactionTimeout(20*time.Second),
	)
	transact := func(commit kgo.TransactionEndTry, values ...string) {
		t.Helper()
		if err := p.BeginTransaction(); err != nil {
			t.Fatalf("begin transaction: %v", err)
		}
		rs := make([]*kgo.Record, len(values))
		for i, v := range values {
			rs[i] = &kgo.Record{Value: []byte(v)}
		}
		if err := p.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			t.Fatalf("produce %v: %v", values, err)
		}
		if err := p.EndTransaction(ctx, commit); err != nil {
			t.Fatalf("end transaction (commit %v) of %v: %v", commit, values, err)
		}
	}
	transact(kgo.TryCommit, "c1", "c2", "c3")
	transact(kgo.TryAbort, "a1", "a2", "a3")
	// A last committed record marks the end for both readers: the aborted records lie
	// before it, so a reader that reaches it has passed them.
	transact(kgo.TryCommit, "end")

	read := func(level kgo.IsolationLevel) []string {
		t.Helper()
		c := kafkatest.Client(t, env,
			kgo.ConsumeTopics(topic),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.FetchIsolationLevel(level),
		)
		var values []string
		for _, r := range consume(ctx, t, c, func(got []*kgo.Record) bool {
			return len(got) > 0 && string(got[len(got)-1].Value) == "end"
		}) {
			values = append(values, string(r.Value))
		}
		return values
	}
	committed := read(kgo.ReadCommitted())
	if want := []string{"c1", "c2", "c3", "end"}; !slices.Equal(committed, want) {
		t.Fatalf("read_committed consumer saw %q, want %q", committed, want)
	}
	uncommitted := read(kgo.ReadUncommitted())
	if want := []string{"c1", "c2", "c3", "a1", "a2", "a3", "end"}; !slices.Equal(uncommitted, want) {
		t.Fatalf("read_uncommitted consumer saw %q, want %q", uncommitted, want)
	}
	t.Logf("proved: a read_committed consumer sees only the committed %q; a read_uncommitted one "+
		"also sees the aborted batch (%q), so the abort was real", committed, uncommitted)
}

func TestRealBrokerCompactedTopic(t *testing.T) {
	env := kafkatest.RequireReal(t)
	topic := kafkatest.Topic(t, env, 1, map[string]*string{
		"cleanup.policy":            new("compact"),
		"segment.ms":                new("100"),
		"segment.bytes":             new("1048576"), // the least Kafka 4 allows
		"min.cleanable.dirty.ratio": new("0.01"),
		"min.compaction.lag.ms":     new("0"),
		"delete.retention.ms":       new("100"),
	})
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	p := kafkatest.Client(t, env, kgo.DefaultProduceTopic(topic))

	// A segment rolls when a record's timestamp is segment.ms past the segment's first
	// one; records stamped a second apart put each round in its own segment without
	// sleeping. The clock only moves forward from here.
	stamp := time.Now()
	var lastOffset int64
	produce := func(rs ...*kgo.Record) {
		t.Helper()
		stamp = stamp.Add(time.Second)
		for _, r := range rs {
			r.Timestamp = stamp
		}
		res := p.ProduceSync(ctx, rs...)
		if err := res.FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
		lastOffset = res[len(res)-1].Record.Offset
	}
	const keys, rounds = 5, 3
	written := 0
	for round := 1; round <= rounds; round++ {
		var rs []*kgo.Record
		for k := range keys {
			rs = append(rs, &kgo.Record{Key: fmt.Appendf(nil, "k%d", k), Value: fmt.Appendf(nil, "v%d", round)})
		}
		switch round {
		case 1:
			rs = append(rs, &kgo.Record{Key: []byte("gone"), Value: []byte("here")})
		case 2:
			rs = append(rs, &kgo.Record{Key: []byte("gone")}) // nil Value: a tombstone
		}
		produce(rs...)
		written += len(rs)
	}

	// Each poll appends a "tick" in a new segment: it rolls the last data segment out
	// of the active one (which is never cleaned) and keeps the log dirty enough for
	// the cleaner to pass again, which the tombstone's removal needs.
	var latest map[string]string
	var seen int
	kafkatest.WaitFor(t, 60*time.Second, func() error {
		produce(&kgo.Record{Key: []byte("tick")})
		rs := readAll(ctx, t, env, topic, lastOffset)
		latest, seen = map[string]string{}, 0
		count := map[string]int{}
		for _, r := range rs {
			if string(r.Key) == "tick" {
				continue
			}
			seen++
			count[string(r.Key)]++
			latest[string(r.Key)] = string(r.Value)
		}
		for k, c := range count {
			if c > 1 {
				return fmt.Errorf("key %s still has %d records", k, c)
			}
		}
		if _, ok := count["gone"]; ok {
			return fmt.Errorf("tombstoned key still present (value %q)", latest["gone"])
		}
		return nil
	})
	want := map[string]string{}
	for k := range keys {
		want[fmt.Sprintf("k%d", k)] = fmt.Sprintf("v%d", rounds)
	}
	if fmt.Sprint(latest) != fmt.Sprint(want) {
		t.Fatalf("after compaction the topic holds %v, want %v", latest, want)
	}
	t.Logf("proved: compaction kept only the latest of %d values for each of %d keys and "+
		"removed the tombstoned key: %d of %d data records remain", rounds, keys, seen, written)
}

// consume polls c until done(records so far) holds, failing t on a fetch error or
// when ctx ends first.
func consume(ctx context.Context, t *testing.T, c *kgo.Client, done func([]*kgo.Record) bool) []*kgo.Record {
	t.Helper()
	var got []*kgo.Record
	for !done(got) {
		fs := c.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d records before %v", len(got), err)
		}
		fs.EachError(func(topic string, p int32, err error) {
			t.Fatalf("fetch %s/%d: %v", topic, p, err)
		})
		got = append(got, fs.Records()...)
	}
	return got
}

// readAll reads topic's only partition from its start through offset last.
func readAll(ctx context.Context, t *testing.T, env *kafkatest.Env, topic string, last int64) []*kgo.Record {
	t.Helper()
	c, err := kgo.NewClient(
		kgo.SeedBrokers(env.Brokers()...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return consume(ctx, t, c, func(got []*kgo.Record) bool {
		return len(got) > 0 && got[len(got)-1].Offset >= last
	})
}
