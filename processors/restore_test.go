package processors_test

// Restore tests against the real broker: a restore that outlasts a
// rebalance, a restore cut short, and a store offline longer than its
// changelog keeps tombstones (DESIGN.md, "Invariants").

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/factory2/factory2/avro"
	"github.com/factory2/factory2/internal/kafkatest"
	"github.com/factory2/factory2/processors"
	"github.com/factory2/factory2/state"
)

// A restore cut short resumes from its last checkpoint, not from the
// changelog's start: a restore checkpoints its progress every 2s, with a
// synced write, so a cancel (a stop, a revocation) or a crash (SIGKILL,
// an operating-system crash) in the middle of a long restore loses at
// most the last 2s of it.
func TestRestoreCutShortResumesFromItsCheckpoint(t *testing.T) {
	t.Run("canceled", func(t *testing.T) { restoreCutShort(t, false) })
	// The crash keeps only what was synced (Pebble's crash-simulating
	// filesystem drops every unsynced write).
	t.Run("crashed", func(t *testing.T) { restoreCutShort(t, true) })
}

func restoreCutShort(t *testing.T, crash bool) {
	f := newFixture(t, 1)
	changelog := f.cat.AddChangelog(f.spec().Name, "counts")
	f.ensure(t)
	const keys, rounds = 40, 100
	seedChangelog(t, f, changelog, keys, rounds)

	// The restore reads a record a millisecond, so that it runs past its
	// first checkpoint; the cut comes when that checkpoint is logged.
	slow := &slowRestore{topic: changelog, delay: time.Millisecond}
	slow.on.Store(true)
	fs := vfs.NewCrashableMem()
	var after vfs.FS = fs // the filesystem the next restore finds
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var cut int64 // the changelog offset the checkpoint recorded
	logs := &logRecorder{on: func(e logEvent) {
		if e.msg != "restoring" || cut > 0 {
			return
		}
		cut = e.num("offset")
		if crash {
			after = fs.CrashClone(vfs.CrashCloneCfg{})
		}
		cancel()
	}}
	cfg := processors.Config{
		Brokers: f.env.Brokers(), InstanceID: "a", Catalog: f.cat, Codec: jsonCodec{},
		StateDir: "/state", FS: fs, Logger: logs.logger(t), ClientOpts: slow.opts(),
	}
	if _, err := processors.Restore(ctx, f.spec(), cfg, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("the restore cut short returned %v, want context.Canceled", err)
	}
	if cut <= 0 {
		t.Fatal("the restore logged no checkpoint before it was cut")
	}
	db := filepath.Join("/state", f.spec().Name, "0")
	if at := storedOffset(t, after, db); at != cut {
		t.Fatalf("after the cut the store's changelog offset is %d, want the checkpoint's %d", at, cut)
	}

	// The next restore reads only what the checkpoint did not cover.
	cfg.FS, cfg.ClientOpts, cfg.Logger = after, nil, testLogger(t)
	rctx, rcancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer rcancel()
	st, err := processors.Restore(rctx, f.spec(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	all, tail := changelogRecords(t, f, changelog, 0, cut)
	if st.Records != tail {
		t.Errorf("the resumed restore read %d records, want the %d after the checkpoint at offset %d (of %d)", st.Records, tail, cut, all)
	}
	checkCounts(t, after, db, keys, rounds)
	t.Logf("cut at offset %d (by a %s); the resumed restore read %d of the changelog's %d records",
		cut, map[bool]string{false: "cancel", true: "crash"}[crash], st.Records, all)
}

// A restore longer than the group's rebalance timeout used to run under
// the lock the revocation needs: the member could not rejoin in time, was
// dropped from the group, and its next restore started from zero. Now the
// restore runs outside that lock: a rebalance in the middle of it
// completes at once (the restoring task is told to stop), the member keeps
// its place, and its restore resumes from the checkpoint it had reached.
// The restore here reads 5ms a record (20s a partition) until the
// rebalance is done, so it is as long as the test needs. With the restore
// holding the lock, the rebalance waits for it: a's two restores outlast
// the 30s rebalance timeout, a is dropped, and b gets both partitions.
func TestRestoreOutlastingARebalanceKeepsItsMemberAndProgress(t *testing.T) {
	kafkatest.RequireReal(t)
	f := newFixture(t, 2)
	changelog := f.cat.AddChangelog(f.spec().Name, "counts")
	f.ensure(t)
	// Member ids begin with the client id, and the range balancer orders
	// members by id: a gets partition 0 once b is in the group.
	slow := &slowRestore{topic: changelog, delay: 5 * time.Millisecond}
	slow.on.Store(true)
	logsA := &logRecorder{}
	a := f.runner(t, "a", t.TempDir(), func(_ *processors.Spec, c *processors.Config) {
		c.ClientOpts = append([]kgo.Opt{kgo.ClientID("a")}, slow.opts()...)
		c.Logger = logsA.logger(t).With("instance", "a")
	})
	// The processor has a history: its changelog (about 4,000 records a
	// partition) and its group's committed offsets.
	const keys, rounds = 80, 100
	seedChangelog(t, f, changelog, keys, rounds)
	commitInputOffsets(t, f, a.Group())
	start(t, a)
	t.Cleanup(func() { slow.on.Store(false) }) // before the runner stops
	// a restores partition 0 first; once that restore has checkpointed,
	// b joins.
	kafkatest.WaitFor(t, 30*time.Second, func() error {
		if len(logsA.find(checkpointOf("counter/0"))) == 0 {
			return errors.New("a has not checkpointed its restore of partition 0 yet")
		}
		return nil
	})
	b := f.runner(t, "b", t.TempDir(), func(_ *processors.Spec, c *processors.Config) {
		c.ClientOpts = []kgo.Opt{kgo.ClientID("b")}
		c.Logger = c.Logger.With("instance", "b")
	})
	start(t, b)
	kafkatest.WaitFor(t, 45*time.Second, func() error {
		if got := b.Assignment()[f.in]; !slices.Equal(got, []int32{1}) {
			return fmt.Errorf("b owns %v, want [1]", got)
		}
		if got := a.Assignment()[f.in]; !slices.Equal(got, []int32{0}) {
			return fmt.Errorf("a owns %v, want [0]", got)
		}
		return nil
	})
	evs := logsA.all()
	revoked := slices.IndexFunc(evs, func(e logEvent) bool {
		return e.msg == "partition revoked while restoring" && e.num("partition") == 0
	})
	if revoked < 0 {
		t.Fatalf("the rebalance did not interrupt a's restore of partition 0: it waited for the restore to end")
	}
	for _, e := range evs[:revoked] {
		if e.msg == "restored state from changelog" && e.str("task") == "counter/0" {
			t.Fatalf("a finished restoring partition 0 before the rebalance: the rebalance waited for the restore")
		}
	}
	for _, e := range evs {
		if e.msg == "partition lost" {
			t.Errorf("a lost its partitions (%v): it was dropped from the group", e.attrs)
		}
	}

	slow.on.Store(false)
	var restored logEvent
	kafkatest.WaitFor(t, 30*time.Second, func() error {
		done := logsA.find(func(e logEvent) bool {
			return e.msg == "restored state from changelog" && e.str("task") == "counter/0"
		})
		if len(done) == 0 {
			return errors.New("a has not finished restoring partition 0")
		}
		restored = done[0]
		return nil
	})
	evs = logsA.all()
	resumed := slices.IndexFunc(evs[revoked:], func(e logEvent) bool {
		return e.msg == "restoring state from changelog" && e.str("task") == "counter/0"
	})
	if resumed < 0 {
		t.Fatal("a finished restoring partition 0 without starting a restore after the rebalance")
	}
	resumed += revoked
	var checkpoint int64
	for _, e := range evs[:resumed] {
		if checkpointOf("counter/0")(e) {
			checkpoint = max(checkpoint, e.num("offset"))
		}
	}
	from := evs[resumed].num("from")
	all, tail := changelogRecords(t, f, changelog, 0, from)
	if from != checkpoint {
		t.Errorf("a's restore of partition 0 resumed from offset %d, want its last checkpoint %d", from, checkpoint)
	}
	if got := restored.num("records"); got != tail {
		t.Errorf("the resumed restore read %d records, want the %d after offset %d", got, tail, from)
	}

	// Both go on from the restored counts, once per event.
	f.produce(t, 0, 2*keys, keys)
	kafkatest.WaitFor(t, 60*time.Second, func() error {
		got, err := f.outputsAllowingRestart(t)
		if err != nil {
			return err
		}
		for i := range keys {
			k := eventKey(i, keys)
			if want := fmt.Sprintf("%d,%d", rounds+1, rounds+2); got[k] != want {
				return fmt.Errorf("key %s: outputs %q, want %q", k, got[k], want)
			}
		}
		if len(got) != keys {
			return fmt.Errorf("outputs for %d keys, want %d", len(got), keys)
		}
		return nil
	})
	t.Logf("the rebalance completed while a restored partition 0; a resumed at its checkpoint %d and read the %d records after it (of the partition's %d)",
		checkpoint, tail, all)
}

// Compaction drops a tombstone once it is older than the changelog's
// delete.retention.ms, and the log's start offset stays where it was. A
// store that was offline longer than that and restored only the tail it
// lacks would keep a key deleted meanwhile: its tombstone is gone. The
// store records when it last matched its changelog, and one older than 90%
// of delete.retention.ms is wiped and restored in full.
func TestRestoreWipesStateOfflineLongerThanTheChangelogKeepsTombstones(t *testing.T) {
	kafkatest.RequireReal(t)
	f := newFixture(t, 1)
	changelog := f.cat.AddChangelog(f.spec().Name, "counts")
	f.ensure(t)
	// Tombstones are kept a second, segments roll every 100ms, and the
	// brokers of kafka.sh look for logs to clean every 500ms.
	adm := kafkatest.Admin(t, f.env)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	set := func(v string) *string { return &v }
	resp, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{
		{Name: "delete.retention.ms", Value: set("1000")},
		{Name: "segment.ms", Value: set("100")},
		{Name: "min.cleanable.dirty.ratio", Value: set("0.01")},
	}, changelog)
	if err == nil {
		_, err = resp.On(changelog, func(r *kadm.AlterConfigsResponse) error { return r.Err })
	}
	if err != nil {
		t.Fatalf("configuring %s: %v", changelog, err)
	}
	erasing := func(s *processors.Spec, _ *processors.Config) {
		s.New = func(int32) processors.Processor { return eraser{counter{out: f.out}} }
	}
	const gone, kept = "gone-1-1", "kept-1-1"

	dirA := t.TempDir()
	stopA := start(t, f.runner(t, "a", dirA, erasing))
	f.produceEvents(t, event("g1", gone, "tag", ""), event("g2", gone, "tag", ""), event("k1", kept, "tag", ""))
	f.waitOutputs(t, 3)
	if err := stopA(); err != nil {
		t.Fatal(err)
	}
	stored := storedOffset(t, vfs.Default, filepath.Join(dirA, f.spec().Name, "0"))

	// While a is offline, b deletes gone and goes on counting kept; its
	// commits roll the changelog's segments, and compaction removes gone's
	// records, the tombstone at last.
	b := f.runner(t, "b", t.TempDir(), erasing)
	stopB := start(t, b)
	f.produceEvents(t, event("g-del", gone, "delete", ""))
	producer := kafkatest.Client(t, f.env)
	keptEvents := 1
	kafkatest.WaitFor(t, 40*time.Second, func() error {
		keptEvents++
		ev := event(fmt.Sprintf("k%d", keptEvents), kept, "tag", "")
		v, _ := jsonCodec{}.Encode(ev)
		if err := producer.ProduceSync(ctx, &kgo.Record{Topic: f.in, Key: []byte(kept), Value: v}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		recs, err := processors.ReadCommitted(ctx, f.env.Brokers(), []string{changelog})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, r := range recs {
			if string(r.Key) == gone {
				n++
			}
		}
		if n > 0 {
			return fmt.Errorf("the changelog still holds %d records of %s", n, gone)
		}
		return nil
	})
	kafkatest.WaitFor(t, 30*time.Second, func() error {
		if got := committedCount(t, b, kept); got != uint64(keptEvents) {
			return fmt.Errorf("b counted %d events of %s, want %d", got, kept, keptEvents)
		}
		return nil
	})
	if err := stopB(); err != nil {
		t.Fatal(err)
	}
	starts, err := adm.ListStartOffsets(ctx, changelog)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := starts.Lookup(changelog, 0); s.Offset > stored {
		t.Fatalf("the changelog now starts at %d, past a's stored offset %d: the test needs a log whose start compaction left alone", s.Offset, stored)
	}

	// a comes back on its old state, which still holds gone.
	logsA := &logRecorder{}
	a := f.runner(t, "a", dirA, erasing, func(_ *processors.Spec, c *processors.Config) { c.Logger = logsA.logger(t) })
	start(t, a)
	kafkatest.WaitFor(t, 30*time.Second, func() error {
		if got := committedCount(t, a, kept); got != uint64(keptEvents) {
			return fmt.Errorf("a has %s at %d, want %d", kept, got, keptEvents)
		}
		return nil
	})
	if v, ok, err := a.Get("counts", []byte(gone)); err != nil || ok {
		t.Errorf("%s, deleted while a was offline, is in a's restored state (count %x, err %v): its tombstone was compacted away and a read only the tail", gone, v, err)
	}
	if len(logsA.find(func(e logEvent) bool {
		return e.msg == "rebuilding local state from the whole changelog" && strings.Contains(e.str("why"), "delete.retention.ms")
	})) == 0 {
		t.Errorf("a did not rebuild its state for being offline past delete.retention.ms")
	}
	f.produceEvents(t, event("g3", gone, "tag", ""))
	kafkatest.WaitFor(t, 30*time.Second, func() error {
		got, err := f.outputsAllowingRestart(t)
		if err != nil {
			return err
		}
		if got[gone] != "1,2,1" {
			return fmt.Errorf("outputs of %s: %q, want 1,2 then 1 after its deletion", gone, got[gone])
		}
		return nil
	})
	t.Logf("a was offline while %s was deleted and its tombstone compacted away (changelog start still at or before a's offset %d); a rebuilt its state in full and %s starts over",
		gone, stored, gone)
}

// eraser is the counter, except that an event of kind "delete" deletes its
// key's count.
type eraser struct{ counter }

func (e eraser) Process(ctx *processors.Context, in *processors.Input) error {
	if in.Record.(*avro.BuildEvent).Kind == "delete" {
		return ctx.Delete("counts", in.Key)
	}
	return e.counter.Process(ctx, in)
}

// committedCount returns r's committed count of key (0 if none or not readable yet).
func committedCount(t *testing.T, r *processors.Runner, key string) uint64 {
	t.Helper()
	v, ok, err := r.Get("counts", []byte(key))
	if err != nil || !ok {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

// seedChangelog writes the counter's changelog as runners would have
// written it after rounds events of each of eventKey(0..keys-1): rounds
// records per key, counting 1..rounds, each in its key's partition, in
// transactions of ten rounds. Small batches make every fetch of a restore
// return a few records only (see slowRestore).
func seedChangelog(t *testing.T, f *fixture, changelog string, keys, rounds int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	adm := kafkatest.Admin(t, f.env)
	details, err := adm.ListTopics(ctx, changelog)
	if err == nil {
		err = details.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
	partitions := len(details[changelog].Partitions)
	cl := kafkatest.Client(t, f.env,
		kgo.TransactionalID(kafkatest.UniqueName(t)),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchMaxBytes(1<<10),
	)
	for r := 0; r < rounds; r += 10 {
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		var rs []*kgo.Record
		for n := r; n < min(r+10, rounds); n++ {
			for i := range keys {
				k := []byte(eventKey(i, keys))
				rs = append(rs, &kgo.Record{
					Topic: changelog, Partition: processors.PartitionFor(k, partitions),
					Key: k, Value: binary.BigEndian.AppendUint64(nil, uint64(n+1)),
				})
			}
		}
		err := cl.ProduceSync(ctx, rs...).FirstErr()
		if eerr := cl.EndTransaction(ctx, kgo.TransactionEndTry(err == nil)); err == nil {
			err = eerr
		}
		if err != nil {
			t.Fatalf("seeding %s: %v", changelog, err)
		}
	}
}

// commitInputOffsets commits, for group, the end offset of every partition
// of the fixture's input, as a processor that consumed it all would have.
// A task restores only once its committed offsets are known.
func commitInputOffsets(t *testing.T, f *fixture, group string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm := kafkatest.Admin(t, f.env)
	ends, err := adm.ListEndOffsets(ctx, f.in)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
	resp, err := adm.CommitOffsets(ctx, group, ends.Offsets())
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatalf("committing %s's offsets: %v", group, err)
	}
}

// changelogRecords returns how many committed records partition p of the
// changelog has, and how many of them are at or after offset from.
func changelogRecords(t *testing.T, f *fixture, changelog string, p int32, from int64) (all, after int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	recs, err := processors.ReadCommitted(ctx, f.env.Brokers(), []string{changelog})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r.Partition != p {
			continue
		}
		all++
		if r.Offset >= from {
			after++
		}
	}
	return all, after
}

// storedOffset returns the changelog offset a task's store recorded, from
// its DB at dir on fs (opened read-only; no runner may hold it).
func storedOffset(t *testing.T, fs vfs.FS, dir string) int64 {
	t.Helper()
	db, err := state.Open(state.Options{Dir: dir, FS: fs, ReadOnly: true})
	if err != nil {
		t.Fatalf("opening %s: %v", dir, err)
	}
	defer db.Close()
	// The runtime's name of the store's changelog offset (task.go).
	at, _, err := db.Offset("changelog/counts")
	if err != nil {
		t.Fatal(err)
	}
	return at
}

// checkCounts checks that the DB at dir on fs holds count rounds for each
// of eventKey(0..keys-1), and nothing else.
func checkCounts(t *testing.T, fs vfs.FS, dir string, keys, rounds int) {
	t.Helper()
	db, err := state.Open(state.Options{Dir: dir, FS: fs, ReadOnly: true})
	if err != nil {
		t.Fatalf("opening %s: %v", dir, err)
	}
	defer db.Close()
	got := map[string]uint64{}
	if err := db.Scan("counts", nil, nil, func(k, v []byte) error {
		got[string(k)] = binary.BigEndian.Uint64(v)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for i := range keys {
		if k := eventKey(i, keys); got[k] != uint64(rounds) {
			t.Errorf("restored %s = %d, want %d", k, got[k], rounds)
		}
	}
	if len(got) != keys {
		t.Errorf("restored %d keys, want %d", len(got), keys)
	}
}

// slowRestore slows the reading of topic (a changelog) down to delay a
// record while on, so that a restore takes as long as a big changelog's
// would. Its options also make every fetch return one record batch, so a
// restore sees progress between fetches.
type slowRestore struct {
	topic string
	delay time.Duration
	on    atomic.Bool
}

// OnFetchRecordUnbuffered runs in the goroutine that polls, for each record
// the poll returns.
func (s *slowRestore) OnFetchRecordUnbuffered(r *kgo.Record, polled bool) {
	if polled && r.Topic == s.topic && s.on.Load() {
		time.Sleep(s.delay)
	}
}

func (s *slowRestore) opts() []kgo.Opt {
	return []kgo.Opt{kgo.WithHooks(s), kgo.FetchMaxBytes(1), kgo.FetchMaxPartitionBytes(1)}
}

// checkpointOf matches the log record of a restore checkpoint of task.
func checkpointOf(task string) func(logEvent) bool {
	return func(e logEvent) bool { return e.msg == "restoring" && e.str("task") == task }
}

// logEvent is one log record: its message and attributes.
type logEvent struct {
	msg   string
	attrs map[string]any
}

func (e logEvent) str(k string) string { s, _ := e.attrs[k].(string); return s }
func (e logEvent) num(k string) int64  { n, _ := e.attrs[k].(int64); return n }

// logRecorder keeps a runner's log records for the test to read, and
// passes them on to the test log. on, when set, sees each record as it is
// logged, in the goroutine that logs it.
type logRecorder struct {
	on func(logEvent)

	mu     sync.Mutex
	events []logEvent
}

func (l *logRecorder) logger(t *testing.T) *slog.Logger {
	return slog.New(&recordingHandler{l: l, next: testLogger(t).Handler()})
}

func (l *logRecorder) all() []logEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.events)
}

func (l *logRecorder) find(match func(logEvent) bool) []logEvent {
	var out []logEvent
	for _, e := range l.all() {
		if match(e) {
			out = append(out, e)
		}
	}
	return out
}

type recordingHandler struct {
	l     *logRecorder
	attrs []slog.Attr
	next  slog.Handler
}

func (h *recordingHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

func (h *recordingHandler) Handle(ctx context.Context, r slog.Record) error {
	e := logEvent{msg: r.Message, attrs: map[string]any{}}
	for _, a := range h.attrs {
		e.attrs[a.Key] = a.Value.Resolve().Any()
	}
	r.Attrs(func(a slog.Attr) bool {
		e.attrs[a.Key] = a.Value.Resolve().Any()
		return true
	})
	h.l.mu.Lock()
	h.l.events = append(h.l.events, e)
	h.l.mu.Unlock()
	if h.l.on != nil {
		h.l.on(e)
	}
	return h.next.Handle(ctx, r)
}

func (h *recordingHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &recordingHandler{l: h.l, attrs: append(slices.Clone(h.attrs), as...), next: h.next.WithAttrs(as)}
}

func (h *recordingHandler) WithGroup(name string) slog.Handler {
	return &recordingHandler{l: h.l, attrs: h.attrs, next: h.next.WithGroup(name)}
}
