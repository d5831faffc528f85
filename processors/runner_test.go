package processors_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/factory2/factory2/avro"
	"github.com/factory2/factory2/internal/kafkatest"
	"github.com/factory2/factory2/processors"
	"github.com/factory2/factory2/topics"
)

// jsonCodec is a test codec: a marker byte and the JSON of a BuildEvent.
// The runtime's tests do not depend on the Avro codec.
type jsonCodec struct{}

func (jsonCodec) Encode(r avro.Record) ([]byte, error) {
	b, err := json.Marshal(r)
	return append([]byte{0xF2}, b...), err
}

func (jsonCodec) Decode(b []byte) (avro.Record, error) {
	if len(b) == 0 || b[0] != 0xF2 {
		return nil, errors.New("not a test record")
	}
	var e avro.BuildEvent
	return &e, json.Unmarshal(b[1:], &e)
}

// counter counts the events of every key and emits one output per event
// carrying the count: outputs of a key must be 1, 2, 3, ... with no gap
// and no repeat, whatever crashes and rebalances happened.
type counter struct{ out string }

func (c counter) Process(ctx *processors.Context, in *processors.Input) error {
	ev := in.Record.(*avro.BuildEvent)
	if ev.Kind == "poison" {
		return processors.Reject("poison event %s", ev.ID)
	}
	v, ok, err := ctx.Get("counts", in.Key)
	if err != nil {
		return err
	}
	var n uint64
	if ok {
		n = binary.BigEndian.Uint64(v)
	}
	n++
	if err := ctx.Put("counts", in.Key, binary.BigEndian.AppendUint64(nil, n)); err != nil {
		return err
	}
	out := &avro.BuildEvent{NVR: ev.NVR, Release: strconv.FormatUint(n, 10)}
	out.ID = ev.ID + "#" + strconv.FormatUint(n, 10)
	ctx.Emit(c.out, in.Key, out)
	return nil
}

type fixture struct {
	env *kafkatest.Env
	cat *topics.Catalog
	in  string
	out string
	// cached runs cachedCounter instead of counter.
	cached bool
}

func newFixture(t *testing.T, partitions int32) *fixture {
	env := kafkatest.Cluster(t)
	cat, err := topics.New(topics.Config{Prefix: kafkatest.UniqueName(t) + ".", Partitions: partitions, Replication: 1, InputRetentionMS: -1, DecisionRetentionMS: -1})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{env: env, cat: cat, in: cat.Name(topics.EventsBuild), out: cat.Name(topics.DecisionsGating)}
}

func (f *fixture) spec() processors.Spec {
	return processors.Spec{
		Name:    "counter",
		Inputs:  []string{f.in},
		Outputs: []string{f.out},
		Stores:  []string{"counts"},
		New: func(int32) processors.Processor {
			if f.cached {
				return cachedCounter{counter{out: f.out}}
			}
			return counter{out: f.out}
		},
	}
}

// cachedCounter is counter keeping its counts in the transaction cache and
// writing them in Flush, as the gating processor keeps its subjects.
type cachedCounter struct{ counter }

func (c cachedCounter) Process(ctx *processors.Context, in *processors.Input) error {
	ev := in.Record.(*avro.BuildEvent)
	if ev.Kind == "poison" {
		return processors.Reject("poison event %s", ev.ID)
	}
	cache := ctx.TxnCache()
	n, ok := cache[string(in.Key)].(uint64)
	if !ok {
		v, found, err := ctx.Get("counts", in.Key)
		if err != nil {
			return err
		}
		if found {
			n = binary.BigEndian.Uint64(v)
		}
	}
	n++
	cache[string(in.Key)] = n
	out := &avro.BuildEvent{NVR: ev.NVR, Release: strconv.FormatUint(n, 10)}
	out.ID = ev.ID + "#" + strconv.FormatUint(n, 10)
	ctx.Emit(c.out, in.Key, out)
	return nil
}

func (c cachedCounter) Flush(ctx *processors.Context) error {
	for k, v := range ctx.TxnCache() {
		if err := ctx.Put("counts", []byte(k), binary.BigEndian.AppendUint64(nil, v.(uint64))); err != nil {
			return err
		}
	}
	return nil
}

// override changes a test runner's spec or configuration before the
// runner is built (see fixture.runner).
type override func(*processors.Spec, *processors.Config)

// runner returns a runner of the fixture's counter with the tests' usual
// configuration (50ms commits, the shortest session the broker allows,
// logs to the test log), changed by overrides in order.
func (f *fixture) runner(t *testing.T, instance, stateDir string, overrides ...override) *processors.Runner {
	t.Helper()
	spec := f.spec()
	cfg := processors.Config{
		Brokers:        f.env.Brokers(),
		InstanceID:     instance,
		Catalog:        f.cat,
		Codec:          jsonCodec{},
		StateDir:       stateDir,
		CommitInterval: 50 * time.Millisecond,
		SessionTimeout: 6 * time.Second,
		Logger:         testLogger(t),
	}
	for _, o := range overrides {
		o(&spec, &cfg)
	}
	r, err := processors.NewRunner(spec, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// testLogger sends the runner's logs to the test log (shown for failed
// tests and with -v).
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

func (f *fixture) ensure(t *testing.T) {
	cl := kafkatest.Client(t, f.env)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := f.cat.Ensure(ctx, cl); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) produce(t *testing.T, from, to, keys int) {
	cl := kafkatest.Client(t, f.env)
	var rs []*kgo.Record
	for i := from; i < to; i++ {
		nvr := fmt.Sprintf("pkg%d-1.0-1.fc42", i%keys)
		ev := &avro.BuildEvent{NVR: nvr, Kind: avro.BuildTag}
		ev.ID = fmt.Sprintf("ev-%d", i)
		v, _ := jsonCodec{}.Encode(ev)
		rs = append(rs, &kgo.Record{Topic: f.in, Key: []byte(nvr), Value: v})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// outputs reads every committed output and checks that each key's counts
// are exactly 1..n; it returns the number of outputs per key.
func (f *fixture) outputs(t *testing.T) (map[string]int, error) {
	cl := kafkatest.Client(t, f.env,
		kgo.ConsumeTopics(f.out),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
	)
	seen := map[string]int{}
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		fs := cl.PollFetches(ctx)
		cancel()
		n := 0
		var err error
		fs.EachRecord(func(r *kgo.Record) {
			n++
			ev, derr := jsonCodec{}.Decode(r.Value)
			if derr != nil {
				err = derr
				return
			}
			c, _ := strconv.Atoi(ev.(*avro.BuildEvent).Release)
			k := string(r.Key)
			if c != seen[k]+1 && err == nil {
				err = fmt.Errorf("key %s: output count %d after %d (lost or duplicated decision)", k, c, seen[k])
			}
			seen[k] = c
		})
		if err != nil {
			return seen, err
		}
		if n == 0 {
			return seen, nil
		}
	}
}

// waitOutputs waits until exactly n outputs are committed, each key's
// counts 1..k (outputs fails the test on a gap or a repeat).
func (f *fixture) waitOutputs(t *testing.T, n int) {
	t.Helper()
	kafkatest.WaitFor(t, 60*time.Second, func() error {
		got, err := f.outputs(t)
		if err != nil {
			t.Fatal(err)
		}
		if total(got) != n {
			return fmt.Errorf("%d outputs, want %d", total(got), n)
		}
		return nil
	})
}

func total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func start(t *testing.T, r *processors.Runner) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	var (
		wg  sync.WaitGroup
		err error
	)
	wg.Add(1)
	go func() { defer wg.Done(); err = r.Run(ctx) }()
	var once sync.Once
	stop = func() error {
		once.Do(func() { cancel(); wg.Wait() })
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

func TestRunnerCountsExactlyOnceAcrossRestartAndLostState(t *testing.T) {
	t.Run("state", func(t *testing.T) { countsExactlyOnce(t, false) })
	// Writes held in the transaction cache reach the state and the
	// changelog through Flush, and vanish with an aborted transaction.
	t.Run("txn-cache", func(t *testing.T) { countsExactlyOnce(t, true) })
}

func countsExactlyOnce(t *testing.T, cached bool) {
	f := newFixture(t, 3)
	f.cached = cached
	dir := t.TempDir()
	r := f.runner(t, "a", dir)
	f.ensure(t)

	stop := start(t, r)
	f.produce(t, 0, 300, 7)
	f.waitOutputs(t, 300)
	if err := stop(); err != nil {
		t.Fatalf("runner: %v", err)
	}

	// A new instance whose local state is gone restores it from the
	// changelog and continues the counts where they were.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	r2 := f.runner(t, "a", filepath.Join(t.TempDir(), "fresh"))
	stop2 := start(t, r2)
	f.produce(t, 300, 450, 7)
	f.waitOutputs(t, 450)
	if err := stop2(); err != nil {
		t.Fatalf("runner: %v", err)
	}
}

func TestRunnerDeadLettersPoisonAndContinues(t *testing.T) {
	f := newFixture(t, 1)
	r := f.runner(t, "a", t.TempDir())
	f.ensure(t)
	start(t, r)

	cl := kafkatest.Client(t, f.env)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	poison := &avro.BuildEvent{Kind: "poison", NVR: "bad-1-1"}
	poison.ID = "poison-1"
	pv, _ := jsonCodec{}.Encode(poison)
	if err := cl.ProduceSync(ctx,
		&kgo.Record{Topic: f.in, Key: []byte("junk-1-1"), Value: []byte("not a record")},
		&kgo.Record{Topic: f.in, Key: []byte("bad-1-1"), Value: pv},
	).FirstErr(); err != nil {
		t.Fatal(err)
	}
	f.produce(t, 0, 10, 2)

	f.waitOutputs(t, 10)
	dl := kafkatest.Client(t, f.env,
		kgo.ConsumeTopics(f.cat.Name(topics.DeadLetters)),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
	)
	var got []*kgo.Record
	kafkatest.WaitFor(t, 30*time.Second, func() error {
		pctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		got = append(got, dl.PollFetches(pctx).Records()...)
		if len(got) < 2 {
			return fmt.Errorf("%d dead letters, want 2", len(got))
		}
		return nil
	})
	if k := hdr(got[0], "factory2.dlq.kind"); k != "decode" || string(got[0].Value) != "not a record" {
		t.Errorf("first dead letter: kind %q value %q", k, got[0].Value)
	}
	if k, why := hdr(got[1], "factory2.dlq.kind"), hdr(got[1], "factory2.dlq.reason"); k != "rejected" || why != "poison event poison-1" {
		t.Errorf("second dead letter: kind %q reason %q", k, why)
	}
	if hdr(got[1], "factory2.dlq.topic") != f.in || hdr(got[1], "factory2.dlq.offset") != "1" {
		t.Errorf("dead letter provenance headers: %v", got[1].Headers)
	}
}

// A runner started while no broker answers waits for Kafka, says why it
// is not ready, and stops cleanly when told to: a service started before
// its cluster, or across a cluster outage, must not exit.
func TestRunnerWaitsForKafkaInsteadOfExiting(t *testing.T) {
	cat, _ := topics.New(topics.Config{})
	r, err := processors.NewRunner(processors.Spec{
		Name: "x", Inputs: []string{"in"}, New: func(int32) processors.Processor { return counter{} },
	}, processors.Config{Brokers: []string{"127.0.0.1:1"}, InstanceID: "a", Catalog: cat, Codec: jsonCodec{}, StateDir: t.TempDir(),
		RetryBackoff: 10 * time.Millisecond, MaxRetryBackoff: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	kafkatest.WaitFor(t, 30*time.Second, func() error {
		h := r.Health()
		if !strings.Contains(h.Reason, "no Kafka broker answers") {
			return fmt.Errorf("health %+v does not say why it waits", h)
		}
		return nil
	})
	h := r.Health()
	if h.Ready || !h.Live {
		t.Errorf("waiting for Kafka: want live and not ready, got %+v", h)
	}
	select {
	case err := <-done:
		t.Fatalf("Run returned while Kafka was unreachable: %v", err)
	default:
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run after cancel: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func TestRederiveReproducesHistoryAndDiffFindsChanges(t *testing.T) {
	f := newFixture(t, 2)
	r := f.runner(t, "a", t.TempDir())
	f.ensure(t)
	stop := start(t, r)
	f.produce(t, 0, 100, 5)
	f.waitOutputs(t, 100)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	cfg := processors.Config{Brokers: f.env.Brokers(), InstanceID: "replay", Catalog: f.cat, Codec: jsonCodec{}, StateDir: t.TempDir()}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var progressed bool
	red, err := processors.Rederive(ctx, f.spec(), cfg, t.TempDir(), nil, func(int32, int64, int64) { progressed = true })
	if err != nil {
		t.Fatal(err)
	}
	if red.Inputs != 100 || len(red.Outputs) != 100 || !progressed {
		t.Fatalf("rederived %d inputs, %d outputs (progress %v), want 100/100", red.Inputs, len(red.Outputs), progressed)
	}
	diff, err := processors.Diff(ctx, cfg, red.Outputs, []string{f.out})
	if err != nil {
		t.Fatal(err)
	}
	if len(diff) != 0 {
		t.Fatalf("replay of an unchanged processor differs: %v", diff[:min(5, len(diff))])
	}
	// A changed processor (a "policy change") is reported before anything
	// is published.
	changed := red.Outputs[:len(red.Outputs)-1]
	last := red.Outputs[len(red.Outputs)-1]
	ev := *last.Record.(*avro.BuildEvent)
	ev.Release = "changed"
	changed = append(changed[:len(changed):len(changed)], processors.Output{Topic: last.Topic, Key: last.Key, Record: &ev})
	changed = append(changed, processors.Output{Topic: f.out, Key: []byte("k"), Record: &avro.BuildEvent{Envelope: avro.Envelope{ID: "new"}}})
	diff, err = processors.Diff(ctx, cfg, changed, []string{f.out})
	if err != nil {
		t.Fatal(err)
	}
	if len(diff) != 2 || diff[0].Change != "change" || diff[1].Change != "add" || diff[1].ID != "new" {
		t.Fatalf("diff = %+v", diff)
	}
}

func TestRestoreBuildsLocalStateFromChangelog(t *testing.T) {
	f := newFixture(t, 2)
	r := f.runner(t, "a", t.TempDir())
	f.ensure(t)
	stop := start(t, r)
	f.produce(t, 0, 50, 4)
	f.waitOutputs(t, 50)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	cfg := processors.Config{Brokers: f.env.Brokers(), InstanceID: "a", Catalog: f.cat, Codec: jsonCodec{}, StateDir: t.TempDir()}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	st, err := processors.Restore(ctx, f.spec(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	// 4 keys, one changelog record per key per transaction: at least 4.
	if st.Partitions != 2 || st.Records < 4 {
		t.Fatalf("restore stats %+v", st)
	}
	// A second restore finds nothing missing.
	st, err = processors.Restore(ctx, f.spec(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.Records != 0 {
		t.Fatalf("second restore read %d records, want 0", st.Records)
	}
}

func TestRunnerGetReadsCommittedStateOfOwnedKeys(t *testing.T) {
	f := newFixture(t, 3)
	r := f.runner(t, "a", t.TempDir())
	f.ensure(t)
	start(t, r)
	f.produce(t, 0, 30, 3) // 10 events for each of 3 keys
	kafkatest.WaitFor(t, 60*time.Second, func() error {
		for i := range 3 {
			v, ok, err := r.Get("counts", []byte(fmt.Sprintf("pkg%d-1.0-1.fc42", i)))
			if err != nil || !ok {
				return fmt.Errorf("key %d: found %v, err %v", i, ok, err)
			}
			if n := binary.BigEndian.Uint64(v); n != 10 {
				return fmt.Errorf("key %d: count %d, want 10", i, n)
			}
		}
		return nil
	})
	if _, ok, err := r.Get("counts", []byte("never-seen")); ok || err != nil {
		t.Fatalf("unknown key: found %v, err %v", ok, err)
	}
	// The partition a producer's default partitioner picked is the one
	// PartitionFor names.
	cl := kafkatest.Client(t, f.env)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, k := range []string{"a", "bash-5.2.37-1.fc42", "Fedora-42-20261125.0"} {
		res := cl.ProduceSync(ctx, &kgo.Record{Topic: f.out, Key: []byte(k), Value: []byte("x")})
		rec, err := res.First()
		if err != nil {
			t.Fatal(err)
		}
		if p := processors.PartitionFor([]byte(k), 3); p != rec.Partition {
			t.Errorf("PartitionFor(%q) = %d, producer chose %d", k, p, rec.Partition)
		}
	}
}

// Two instances of a processor with two inputs: each owns the same
// partition numbers of both inputs (co-partitioning), and together all.
func TestRunnersCoPartitionTheirInputs(t *testing.T) {
	f := newFixture(t, 6)
	spec := f.spec()
	spec.Inputs = []string{f.in, f.cat.Name(topics.EventsSign)}
	mk := func(instance string) *processors.Runner {
		r, err := processors.NewRunner(spec, processors.Config{
			Brokers: f.env.Brokers(), InstanceID: instance, Catalog: f.cat, Codec: jsonCodec{},
			StateDir: t.TempDir(), CommitInterval: 50 * time.Millisecond, SessionTimeout: 6 * time.Second,
		})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	a, b := mk("a"), mk("b")
	f.ensure(t)
	start(t, a)
	start(t, b)
	kafkatest.WaitFor(t, 60*time.Second, func() error {
		seen := map[int32]string{}
		for name, r := range map[string]*processors.Runner{"a": a, "b": b} {
			as := r.Assignment()
			build, sign := as[spec.Inputs[0]], as[spec.Inputs[1]]
			if len(build) == 0 {
				return fmt.Errorf("%s owns nothing yet", name)
			}
			if !slices.Equal(build, sign) {
				t.Fatalf("%s owns %v of one input and %v of the other", name, build, sign)
			}
			for _, p := range build {
				if other, dup := seen[p]; dup {
					return fmt.Errorf("partition %d owned by %s and %s (rebalance in progress?)", p, other, name)
				}
				seen[p] = name
			}
		}
		if len(seen) != 6 {
			return fmt.Errorf("%d of 6 partitions owned", len(seen))
		}
		return nil
	})
}

// counterV2 is counter after a "policy change": it counts by two and its
// outputs have other ids.
type counterV2 struct{ out string }

func (c counterV2) Process(ctx *processors.Context, in *processors.Input) error {
	ev := in.Record.(*avro.BuildEvent)
	v, ok, err := ctx.Get("counts", in.Key)
	if err != nil {
		return err
	}
	var n uint64
	if ok {
		n = binary.BigEndian.Uint64(v)
	}
	n += 2
	if err := ctx.Put("counts", in.Key, binary.BigEndian.AppendUint64(nil, n)); err != nil {
		return err
	}
	out := &avro.BuildEvent{NVR: ev.NVR, Release: strconv.FormatUint(n, 10)}
	out.ID = ev.ID + "#v2#" + strconv.FormatUint(n, 10)
	ctx.Emit(c.out, in.Key, out)
	return nil
}

// Applying a re-derivation publishes the new history, rewrites the state
// and moves the group's offsets in one transaction; the processor then
// continues from there, exactly once.
func TestApplyRederivationThenContinueExactlyOnce(t *testing.T) {
	f := newFixture(t, 2)
	local := t.TempDir()
	r := f.runner(t, "a", local)
	f.ensure(t)
	stop := start(t, r)
	f.produce(t, 0, 60, 4)
	f.waitOutputs(t, 60)
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	v2 := f.spec()
	v2.New = func(int32) processors.Processor { return counterV2{out: f.out} }
	cfg := processors.Config{Brokers: f.env.Brokers(), InstanceID: "a", Catalog: f.cat, Codec: jsonCodec{}, StateDir: t.TempDir(), SessionTimeout: 6 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	red, err := processors.Rederive(ctx, v2, cfg, t.TempDir(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := processors.Apply(ctx, v2, cfg, red)
	if err != nil {
		t.Fatal(err)
	}
	if st.Published != 60 || st.ChangelogRecords != 4 || st.Offsets != 2 {
		t.Fatalf("apply: %+v, want 60 published, 4 changelog records, 2 offsets", st)
	}
	// Applying again finds nothing to do.
	red2, err := processors.Rederive(ctx, v2, cfg, t.TempDir(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st, err = processors.Apply(ctx, v2, cfg, red2); err != nil || st.Published != 0 || st.ChangelogRecords != 0 {
		t.Fatalf("second apply: %+v, %v", st, err)
	}

	// The processor continues on its old local state dir: it restores the
	// rewritten changelog and resumes after the re-derived inputs.
	rv2, err := processors.NewRunner(v2, processors.Config{Brokers: f.env.Brokers(), InstanceID: "a", Catalog: f.cat, Codec: jsonCodec{},
		StateDir: local, CommitInterval: 50 * time.Millisecond, SessionTimeout: 6 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	start(t, rv2)
	f.produce(t, 60, 80, 4)
	cl := kafkatest.Client(t, f.env,
		kgo.ConsumeTopics(f.out),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
	)
	seen := map[string][]int{}
	kafkatest.WaitFor(t, 60*time.Second, func() error {
		pctx, pcancel := context.WithTimeout(context.Background(), time.Second)
		defer pcancel()
		cl.PollFetches(pctx).EachRecord(func(rec *kgo.Record) {
			ev, _ := jsonCodec{}.Decode(rec.Value)
			if b := ev.(*avro.BuildEvent); strings.Contains(b.ID, "#v2#") {
				n, _ := strconv.Atoi(b.Release)
				seen[string(rec.Key)] = append(seen[string(rec.Key)], n)
			}
		})
		total := 0
		for _, ns := range seen {
			total += len(ns)
		}
		if total < 80 {
			return fmt.Errorf("%d v2 outputs, want 80", total)
		}
		return nil
	})
	for k, ns := range seen {
		for i, n := range ns {
			if n != 2*(i+1) {
				t.Fatalf("key %s: v2 outputs %v: not exactly once across the cutover", k, ns)
			}
		}
	}
}

// hdr returns the value of r's header k ("" if none).
func hdr(r *kgo.Record, k string) string {
	for _, h := range r.Headers {
		if h.Key == k {
			return string(h.Value)
		}
	}
	return ""
}

// A task whose partitions never had a record is restored and caught up
// as soon as a fetch answer says so: a fresh deployment with more
// partitions than busy keys must become ready (it stayed "restoring",
// then "catching up", for ever).
func TestEmptyPartitionsAreReady(t *testing.T) {
	f := newFixture(t, 4)
	r := f.runner(t, "a", t.TempDir())
	f.ensure(t)
	stop := start(t, r)
	defer stop()
	f.produce(t, 0, 3, 1) // one key: one partition of four
	f.waitOutputs(t, 3)
	kafkatest.WaitFor(t, 30*time.Second, func() error {
		if h := r.Health(); !h.Ready || h.Restoring != 0 || h.CatchingUp != 0 {
			return fmt.Errorf("health %+v", h)
		}
		return nil
	})
}

// A deployment whose topics are all empty (a first start) becomes ready,
// and a table reading an empty topic loads.
func TestAllEmptyTopicsAreReady(t *testing.T) {
	f := newFixture(t, 2)
	r := f.runner(t, "a", t.TempDir())
	f.ensure(t)
	stop := start(t, r)
	defer stop()
	fol := processors.NewFollower(processors.FollowerConfig{Brokers: f.env.Brokers(), Topics: []string{f.out}, Apply: func(*kgo.Record) {}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- fol.Run(ctx) }()
	kafkatest.WaitFor(t, 30*time.Second, func() error {
		if h := r.Health(); !h.Ready || h.Restoring != 0 || h.CatchingUp != 0 {
			return fmt.Errorf("health %+v", h)
		}
		if loaded, _, behind := fol.Loaded(); !loaded {
			return fmt.Errorf("table of an empty topic not loaded (%d behind)", behind)
		}
		return nil
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestRunnerCommitsALateRecordAtTheGapsEnd: a record that comes alone
// just after a commit is committed when the least gap between two
// commits has passed, not at the commit interval's end. (Before, it
// waited out the whole interval: up to 100 ms more latency per hop
// by default.)
func TestRunnerCommitsALateRecordAtTheGapsEnd(t *testing.T) {
	const gap, interval = 3 * time.Second, time.Hour
	defer processors.SetMinCommitGap(gap)()
	f := newFixture(t, 1)
	r := f.runner(t, "a", t.TempDir(), func(_ *processors.Spec, c *processors.Config) { c.CommitInterval = interval })
	f.ensure(t)
	stop := start(t, r)
	defer stop()

	f.produce(t, 0, 1, 1)
	f.waitOutputs(t, 1) // committed at once: nothing was committed before
	f.produce(t, 1, 2, 1)
	produced := time.Now()
	kafkatest.WaitFor(t, 3*gap, func() error {
		got, err := f.outputs(t)
		if err != nil {
			t.Fatal(err)
		}
		if total(got) != 2 {
			return fmt.Errorf("%d outputs, want 2 (the second record's commit waits for the %v interval?)", total(got), interval)
		}
		return nil
	})
	t.Logf("second output visible %v after its input", time.Since(produced).Round(time.Millisecond))
}

// A commit interval under 10 ms is valid configuration; the runner must
// not hand it to franz-go as the fetch wait, which refuses it (the
// processor stopped with "max fetch wait 5ms is less than allowed 10ms").
func TestRunnerWithACommitIntervalUnder10ms(t *testing.T) {
	f := newFixture(t, 2)
	r := f.runner(t, "a", t.TempDir(), func(_ *processors.Spec, c *processors.Config) { c.CommitInterval = 5 * time.Millisecond })
	f.ensure(t)
	f.produce(t, 0, 100, 10)
	stop := start(t, r)
	f.waitOutputs(t, 100)
	if err := stop(); err != nil {
		t.Fatalf("runner: %v", err)
	}
}
