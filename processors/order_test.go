package processors_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/factory2/factory2/avro"
	"github.com/factory2/factory2/internal/kafkatest"
	"github.com/factory2/factory2/processors"
	"github.com/factory2/factory2/topics"
)

// orderFixture runs the counter over two inputs (build, sign): output n of
// a key carries the id of the n-th event processed, whichever input it
// came from.
type orderFixture struct {
	*fixture
	a, b string
}

func newOrderFixture(t *testing.T) *orderFixture {
	f := newFixture(t, 1)
	kafkatest.RequireReal(t)
	return &orderFixture{fixture: f, a: f.cat.Name(topics.EventsBuild), b: f.cat.Name(topics.EventsSign)}
}

func (f *orderFixture) spec() processors.Spec {
	return processors.Spec{
		Name:    "sequencer",
		Inputs:  []string{f.a, f.b},
		Outputs: []string{f.out},
		Stores:  []string{"counts"},
		New:     func(int32) processors.Processor { return counter{out: f.out} },
	}
}

func (f *orderFixture) config(t *testing.T, opts ...kgo.Opt) processors.Config {
	return processors.Config{
		Brokers:        f.env.Brokers(),
		InstanceID:     "a",
		Catalog:        f.cat,
		Codec:          jsonCodec{},
		StateDir:       t.TempDir(),
		CommitInterval: 50 * time.Millisecond,
		SessionTimeout: 6 * time.Second,
		Logger:         testLogger(t),
		ClientOpts:     opts,
	}
}

// timedEvent is one input event and where it goes.
type timedEvent struct {
	topic string
	id    string
	at    time.Time
}

// sequence reads the outputs of key k and returns the event ids in the
// order they were processed (by their sequence numbers).
func (f *orderFixture) sequence(t *testing.T, n int) []string {
	t.Helper()
	var ids []string
	kafkatest.WaitFor(t, 60*time.Second, func() error {
		cl := kafkatest.Client(t, f.env, kgo.ConsumeTopics(f.out), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
		defer cl.Close()
		byN := map[int]string{}
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			fs := cl.PollFetches(ctx)
			cancel()
			if fs.NumRecords() == 0 {
				break
			}
			var err error
			fs.EachRecord(func(r *kgo.Record) {
				v, derr := jsonCodec{}.Decode(r.Value)
				if derr != nil {
					err = derr
					return
				}
				ev := v.(*avro.BuildEvent)
				i, _ := strconv.Atoi(ev.Release)
				id, _, _ := strings.Cut(ev.ID, "#") // counter's output id: <input id>#<n>
				if prev, dup := byN[i]; dup {
					err = fmt.Errorf("output %d twice (%s, %s)", i, prev, id)
				}
				byN[i] = id
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		if len(byN) < n {
			return fmt.Errorf("%d of %d outputs", len(byN), n)
		}
		ids = make([]string, n)
		for i := range n {
			ids[i] = byN[i+1]
		}
		return nil
	})
	return ids
}

// produce writes evs in small batches (each its own produce request, so
// each a record batch of its own that a small fetch returns alone).
func (f *orderFixture) produce(t *testing.T, evs []timedEvent, batch int) {
	t.Helper()
	cl := kafkatest.Client(t, f.env, kgo.ProducerLinger(0))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i := 0; i < len(evs); i += batch {
		var rs []*kgo.Record
		for _, e := range evs[i:min(i+batch, len(evs))] {
			v, _ := jsonCodec{}.Encode(&avro.BuildEvent{NVR: "k-1-1", Envelope: avro.Envelope{ID: e.id}})
			rs = append(rs, &kgo.Record{Topic: e.topic, Key: []byte("k-1-1"), Value: v, Timestamp: e.at})
		}
		if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
}

// mergeOrder is the order DESIGN.md defines: smallest timestamp, then
// input order (a before b), then offset; each topic's events are given in
// offset order.
func mergeOrder(evs []timedEvent, inputs []string) []string {
	sorted := slices.Clone(evs)
	slices.SortStableFunc(sorted, func(x, y timedEvent) int {
		if c := x.at.Compare(y.at); c != 0 {
			return c
		}
		return slices.Index(inputs, x.topic) - slices.Index(inputs, y.topic)
	})
	ids := make([]string, len(sorted))
	for i, e := range sorted {
		ids[i] = e.id
	}
	return ids
}

// The records of two inputs are processed in timestamp order (ties: input
// order, then offset), whatever order the fetches bring them in, and a
// replay reproduces the same history output for output. All of input a
// is produced before any of b, in many small batches, and the runner reads
// them through small fetches and polls, so fetch order is nearly the
// opposite of time order for half of the records.
func TestRunnerMergesInputsInTimestampOrder(t *testing.T) {
	for _, tc := range []struct {
		name       string
		fetchBytes int32
		pollMax    int
	}{
		{"one batch per fetch", 1, 1},
		{"small fetches", 512, 7},
		{"default fetches", 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newOrderFixture(t)
			rng := rand.New(rand.NewPCG(1, uint64(len(tc.name))))
			base := time.UnixMilli(1_700_000_000_000)
			var evs []timedEvent
			at := base
			for i := range 240 {
				if rng.IntN(3) > 0 { // ties are common: a third of the steps keep the time
					at = at.Add(time.Duration(rng.IntN(5)+1) * time.Millisecond)
				}
				topic := f.a
				if rng.IntN(2) == 0 {
					topic = f.b
				}
				evs = append(evs, timedEvent{topic: topic, id: fmt.Sprintf("e%03d", i), at: at})
			}
			var fetchOrder []timedEvent // all of a, then all of b
			for _, topic := range []string{f.a, f.b} {
				for _, e := range evs {
					if e.topic == topic {
						fetchOrder = append(fetchOrder, e)
					}
				}
			}
			var opts []kgo.Opt
			if tc.fetchBytes > 0 {
				opts = append(opts, kgo.FetchMaxPartitionBytes(tc.fetchBytes), kgo.FetchMaxBytes(tc.fetchBytes))
			}
			cfg := f.config(t, opts...)
			cfg.MaxPollRecords = tc.pollMax
			cfg.CommitInterval = 10 * time.Millisecond
			r, err := processors.NewRunner(f.spec(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			f.ensure(t)
			f.produce(t, fetchOrder, 4)
			// Stopped part way and started again: records the merge
			// still held queued at a commit are not lost (the commit
			// took the offset of the first of them) nor repeated.
			stop := start(t, r)
			f.sequence(t, 60)
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			r, err = processors.NewRunner(f.spec(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			start(t, r)
			want := mergeOrder(evs, f.spec().Inputs)
			got := f.sequence(t, len(evs))
			if !slices.Equal(got, want) {
				t.Fatalf("processed in another order:\n got %v\nwant %v", got, want)
			}

			red, err := processors.Rederive(context.Background(), f.spec(), f.config(t), t.TempDir(), nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			var replayed []string
			for _, o := range red.Outputs {
				id, _, _ := strings.Cut(o.Record.(*avro.BuildEvent).ID, "#")
				replayed = append(replayed, id)
			}
			if !slices.Equal(replayed, want) {
				t.Fatalf("replay took another order:\n got %v\nwant %v", replayed, want)
			}
		})
	}
}

// Live: events arrive one by one, each acknowledged before the next is
// produced, alternating between the inputs at random. The runner, polling
// all the while, processes them in that order: an input with nothing
// fetched is known to hold nothing older (the fetch answer that brought
// the other input's record says so), and one with a committed record not
// yet fetched is waited for.
func TestRunnerKeepsLiveArrivalOrderAcrossInputs(t *testing.T) {
	f := newOrderFixture(t)
	r, err := processors.NewRunner(f.spec(), f.config(t))
	if err != nil {
		t.Fatal(err)
	}
	f.ensure(t)
	start(t, r)
	rng := rand.New(rand.NewPCG(7, 7))
	var evs []timedEvent
	for i := range 120 {
		topic := f.a
		if rng.IntN(2) == 0 {
			topic = f.b
		}
		e := timedEvent{topic: topic, id: fmt.Sprintf("e%03d", i), at: time.Now()}
		evs = append(evs, e)
		f.produce(t, []timedEvent{e}, 1)
		if rng.IntN(4) == 0 {
			time.Sleep(time.Duration(rng.IntN(20)) * time.Millisecond)
		}
	}
	want := mergeOrder(evs, f.spec().Inputs)
	got := f.sequence(t, len(evs))
	if !slices.Equal(got, want) {
		t.Fatalf("processed in another order:\n got %v\nwant %v", got, want)
	}
}

// A record the merge holds back (here: waiting out MaxTaskIdle for the
// other input) stays queued across commits: each commit takes the offset
// of the first queued record, not the consumer's position past it. So a
// runner stopped while holding it leaves it to the next one, which
// processes it once.
func TestRunnerCarriesQueuedRecordsOverCommits(t *testing.T) {
	f := newOrderFixture(t)
	cfg := f.config(t)
	cfg.MaxTaskIdle = time.Hour // a2 waits for b for good
	r, err := processors.NewRunner(f.spec(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.ensure(t)
	base := time.UnixMilli(1_700_000_000_000)
	evs := []timedEvent{
		{topic: f.a, id: "a1", at: base},
		{topic: f.a, id: "a2", at: base.Add(2 * time.Millisecond)},
		{topic: f.b, id: "b1", at: base.Add(time.Millisecond)},
	}
	f.produce(t, evs, 1)
	stop := start(t, r)
	f.sequence(t, 2)                    // a1, b1
	time.Sleep(10 * cfg.CommitInterval) // commits while a2 is queued
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	cfg.MaxTaskIdle = -1
	r, err = processors.NewRunner(f.spec(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	start(t, r)
	if got, want := f.sequence(t, 3), []string{"a1", "b1", "a2"}; !slices.Equal(got, want) {
		t.Fatalf("processed %v, want %v", got, want)
	}
}

// While a task's merge waits for one input (here: MaxTaskIdle for an
// empty one), the runner keeps polling the others; the fetching of an
// input partition whose queue is full is paused (backpressure), so the
// queue stays near 2*MaxPollRecords instead of holding the whole backlog.
// Nothing is lost to the pauses: a runner started after it, with no idle
// wait, processes every record once, in order.
func TestRunnerBoundsQueuesWhileTheMergeWaits(t *testing.T) {
	f := newOrderFixture(t)
	const n, maxPoll = 3000, 50
	cfg := f.config(t, kgo.FetchMaxPartitionBytes(4096)) // a few dozen records per fetch
	cfg.MaxTaskIdle = time.Hour                          // a's records wait for b for good
	cfg.MaxPollRecords = maxPoll
	r, err := processors.NewRunner(f.spec(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.ensure(t)
	base := time.UnixMilli(1_700_000_000_000)
	evs := make([]timedEvent, n)
	for i := range evs {
		evs[i] = timedEvent{topic: f.a, id: fmt.Sprintf("a%d", i), at: base.Add(time.Duration(i) * time.Millisecond)}
	}
	f.produce(t, evs, 100)
	stop := start(t, r)
	// The queue fills to the pause and stays there.
	bound := 2*maxPoll + 200 // the pause, plus what a fetch in flight brings
	kafkatest.WaitFor(t, 30*time.Second, func() error {
		if q := processors.QueuedRecords(r); q < 2*maxPoll {
			return fmt.Errorf("%d records queued, waiting for %d", q, 2*maxPoll)
		}
		return nil
	})
	most := 0
	for range 20 {
		time.Sleep(2 * cfg.CommitInterval)
		most = max(most, processors.QueuedRecords(r))
	}
	if most > bound {
		t.Fatalf("%d of %d records queued while the merge waits; want at most %d (backpressure)", most, n, bound)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	cfg.MaxTaskIdle = -1
	r, err = processors.NewRunner(f.spec(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	start(t, r)
	if got, want := f.sequence(t, n), mergeOrder(evs, []string{f.a, f.b}); !slices.Equal(got, want) {
		t.Fatalf("processed %d records out of order or not once each; first: %v", len(got), got[:min(10, len(got))])
	}
}

// txnProbe records, in order, the partitions of topic that each
// transaction produced to: a produced record is acknowledged before its
// transaction's EndTxn is written.
type txnProbe struct {
	topic string
	mu    sync.Mutex
	cur   map[int32]bool
	txns  []map[int32]bool
}

func (p *txnProbe) OnProduceRecordUnbuffered(r *kgo.Record, err error) {
	if err != nil || r.Topic != p.topic {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur == nil {
		p.cur = map[int32]bool{}
	}
	p.cur[r.Partition] = true
}

func (p *txnProbe) OnBrokerWrite(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, _ error) {
	if key != int16(kmsg.EndTxn) {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.cur) > 0 {
		p.txns = append(p.txns, p.cur)
	}
	p.cur = nil
}

// Catching up on a backlog with one processing thread, a transaction runs
// one task at a time (takeTurns): with a commit after every drain, nearly
// every transaction writes to one partition, where running every ready
// task in each drain writes to all six. Every record still gives exactly
// one output.
func TestRunnerCatchesUpTaskByTaskPerTransaction(t *testing.T) {
	f := newFixture(t, 6)
	kafkatest.RequireReal(t) // kfake answers whole partitions: a few transactions, each of several tasks
	const n = 6000
	probe := &txnProbe{topic: f.out}
	r := f.runner(t, "a", t.TempDir(), func(_ *processors.Spec, c *processors.Config) {
		c.Threads = 1
		c.MaxPollRecords = 50
		c.CommitInterval = 10 * time.Millisecond // the least: FetchMaxWait takes it
		c.SessionHooks = []kgo.Hook{probe}
	})
	f.ensure(t) // the changelog too, which NewRunner added
	f.produce(t, 0, n, 600)
	start(t, r)
	f.waitOutputs(t, n)
	probe.mu.Lock()
	defer probe.mu.Unlock()
	one := 0
	for _, ps := range probe.txns {
		if len(ps) == 1 {
			one++
		}
	}
	t.Logf("%d transactions with outputs, %d of them to one partition", len(probe.txns), one)
	if len(probe.txns) < 20 || one*10 < len(probe.txns)*7 {
		t.Fatalf("%d of %d transactions wrote to one partition; want at least 70%%", one, len(probe.txns))
	}
}

// A transaction's record on one input comes before a later record of
// another input even when the later one commits first. Live, the runner
// has read input a to its last stable offset and sees b's record
// committed while a's transaction is open; a replay would take a's record
// first, and so must the runner: it waits for the open transaction
// (MaxTxnWait). A transaction left open past MaxTxnWait does not stop the
// task: it goes on without it.
func TestRunnerWaitsForAnOpenTransactionOnAnInput(t *testing.T) {
	f := newOrderFixture(t)
	cfg := f.config(t)
	cfg.MaxTxnWait = 2 * time.Second
	reg := prometheus.NewRegistry()
	cfg.Registerer = reg
	r, err := processors.NewRunner(f.spec(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.ensure(t)
	start(t, r)
	base := time.UnixMilli(1_700_000_000_000)
	f.produce(t, []timedEvent{{topic: f.a, id: "a0", at: base}}, 1)
	f.sequence(t, 1) // assigned, and a read to its end

	txn := kafkatest.Client(t, f.env, kgo.TransactionalID(kafkatest.UniqueName(t)), kgo.ProducerLinger(0))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	open := func(id string, at time.Time) {
		t.Helper()
		if err := txn.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		v, _ := jsonCodec{}.Encode(&avro.BuildEvent{NVR: "k-1-1", Envelope: avro.Envelope{ID: id}})
		if err := txn.ProduceSync(ctx, &kgo.Record{Topic: f.a, Key: []byte("k-1-1"), Value: v, Timestamp: at}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	commit := func() {
		t.Helper()
		if err := txn.EndTransaction(ctx, kgo.TryCommit); err != nil {
			t.Fatal(err)
		}
	}

	open("a1", base.Add(time.Millisecond))
	f.produce(t, []timedEvent{{topic: f.b, id: "b1", at: base.Add(2 * time.Millisecond)}}, 1)
	// The task has b1 and waits: taking it now would be out of order.
	kafkatest.WaitFor(t, cfg.MaxTxnWait/2, func() error {
		if n, _ := series(t, reg, "factory2_processor_tasks_merge_waiting", map[string]string{"reason": "open_txn"}); n != 1 {
			return fmt.Errorf("%v tasks waiting for an open transaction, want 1", n)
		}
		return nil
	})
	commit()
	if got, want := f.sequence(t, 3), []string{"a0", "a1", "b1"}; !slices.Equal(got, want) {
		t.Fatalf("processed %v, want %v", got, want)
	}

	open("a2", base.Add(3*time.Millisecond))
	f.produce(t, []timedEvent{{topic: f.b, id: "b2", at: base.Add(4 * time.Millisecond)}}, 1)
	if got := f.sequence(t, 4); got[3] != "b2" { // while a2's transaction is open
		t.Fatalf("processed %v, want b2 fourth", got)
	}
	if n := metricValue(t, reg, "factory2_processor_open_txn_waits_given_up_total"); n != 1 {
		t.Errorf("%v open-transaction waits given up, want 1", n)
	}
	commit()
	if got, want := f.sequence(t, 5), []string{"a0", "a1", "b1", "b2", "a2"}; !slices.Equal(got, want) {
		t.Fatalf("processed %v, want %v", got, want)
	}
}
