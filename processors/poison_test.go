package processors_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/factory2/factory2/avro"
	"github.com/factory2/factory2/internal/kafkatest"
	"github.com/factory2/factory2/processors"
	"github.com/factory2/factory2/topics"
)

// hoarder keeps, per key, a count and everything its events carried in
// Owner, in the transaction cache, written in Flush as the gating
// processor keeps its subjects: the events of one key can together make a
// state value no changelog record can carry, and only Flush finds out. An
// event of kind "bigout" emits an output of len(Owner) bytes twice over.
type hoarder struct{ out string }

var hoardMagic = []byte("H1")

type hoard struct {
	n    uint64
	data string
}

func (h hoarder) Process(ctx *processors.Context, in *processors.Input) error {
	ev := in.Record.(*avro.BuildEvent)
	cache := ctx.TxnCache()
	s, ok := cache[string(in.Key)].(*hoard)
	if !ok {
		s = &hoard{}
		v, found, err := ctx.Get("counts", in.Key)
		if err != nil {
			return err
		}
		if found {
			if err := h.ValidateState("counts", in.Key, v); err != nil {
				return err
			}
			s.n, _ = strconv.ParseUint(string(v[2:bytes.IndexByte(v, ';')]), 10, 64)
			s.data = string(v[bytes.IndexByte(v, ';')+1:])
		}
		cache[string(in.Key)] = s
	}
	s.n++
	s.data += ev.Owner
	out := &avro.BuildEvent{NVR: ev.NVR, Release: strconv.FormatUint(s.n, 10)}
	out.ID = ev.ID + "#" + strconv.FormatUint(s.n, 10)
	if ev.Kind == "bigout" {
		out.Owner = ev.Owner + ev.Owner
	}
	ctx.Emit(h.out, in.Key, out)
	return nil
}

func (h hoarder) Flush(ctx *processors.Context) error {
	for k, v := range ctx.TxnCache() {
		s := v.(*hoard)
		val := append(append(append([]byte{}, hoardMagic...), strconv.FormatUint(s.n, 10)...), ';')
		if err := ctx.Put("counts", []byte(k), append(val, s.data...)); err != nil {
			return err
		}
	}
	return nil
}

func (hoarder) ValidateState(_ string, _, v []byte) error {
	if !bytes.HasPrefix(v, hoardMagic) || bytes.IndexByte(v, ';') < 0 {
		return errors.New("not a hoard")
	}
	if _, err := strconv.ParseUint(string(v[2:bytes.IndexByte(v, ';')]), 10, 64); err != nil {
		return fmt.Errorf("not a hoard: %w", err)
	}
	return nil
}

// hoarding makes a test runner run the hoarder instead of the counter.
func (f *fixture) hoarding(s *processors.Spec, _ *processors.Config) {
	s.New = func(int32) processors.Processor { return hoarder{out: f.out} }
}

// produceEvents produces events (key = NVR) in one transaction-less batch;
// big producers need a larger batch limit than franz-go's default.
func (f *fixture) produceEvents(t *testing.T, evs ...*avro.BuildEvent) {
	t.Helper()
	cl := kafkatest.Client(t, f.env, kgo.ProducerBatchMaxBytes(2<<20))
	var rs []*kgo.Record
	for _, ev := range evs {
		v, _ := jsonCodec{}.Encode(ev)
		rs = append(rs, &kgo.Record{Topic: f.in, Key: []byte(ev.NVR), Value: v})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func event(id, nvr, kind, owner string) *avro.BuildEvent {
	ev := &avro.BuildEvent{NVR: nvr, Kind: kind, Owner: owner}
	ev.ID = id
	return ev
}

// deadLetters reads the committed dead letters.
func (f *fixture) deadLetters(t *testing.T) []*kgo.Record {
	t.Helper()
	cl := kafkatest.Client(t, f.env,
		kgo.ConsumeTopics(f.cat.Name(topics.DeadLetters)),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxBytes(8<<20),
	)
	var out []*kgo.Record
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		fs := cl.PollFetches(ctx)
		cancel()
		if fs.NumRecords() == 0 {
			return out
		}
		out = append(out, fs.Records()...)
	}
}

func waitDeadLetters(t *testing.T, f *fixture, n int) []*kgo.Record {
	t.Helper()
	var got []*kgo.Record
	kafkatest.WaitFor(t, 60*time.Second, func() error {
		got = f.deadLetters(t)
		if len(got) < n {
			return fmt.Errorf("%d dead letters, want %d", len(got), n)
		}
		return nil
	})
	return got
}

// Two 600 KB events for one key make its state 1.2 MB, which no changelog
// record can carry. The runner used to abort and retry that transaction
// forever, so no other key got an output. Now the event that would make
// the state too large is dead-lettered with the reason, the key keeps the
// state of the first, and every other key is processed exactly once.
func TestRunnerIsolatesStateTooLargeForItsChangelog(t *testing.T) {
	f := newFixture(t, 1)
	kafkatest.RequireReal(t)
	r := f.runner(t, "a", t.TempDir(), f.hoarding)
	f.ensure(t)
	start(t, r)

	big := strings.Repeat("x", 600_000)
	evs := []*avro.BuildEvent{event("e0", "ok-1-1", "tag", "a")}
	evs = append(evs, event("big1", "big-1-1", "tag", big), event("big2", "big-1-1", "tag", big))
	for i := 1; i < 20; i++ {
		evs = append(evs, event(fmt.Sprintf("e%d", i), fmt.Sprintf("ok-%d-1", i%4), "tag", "a"))
	}
	f.produceEvents(t, evs...)

	// 20 small events and the first big one give outputs; the second
	// big one is dead-lettered.
	f.waitOutputs(t, 21)
	dls := waitDeadLetters(t, f, 1)
	if len(dls) != 1 {
		t.Fatalf("%d dead letters, want 1", len(dls))
	}
	dl := dls[0]
	if hdr(dl, "factory2.dlq.kind") != "poison" || !strings.Contains(hdr(dl, "factory2.dlq.reason"), "exceeds the limit") {
		t.Errorf("dead letter kind %q reason %q", hdr(dl, "factory2.dlq.kind"), hdr(dl, "factory2.dlq.reason"))
	}
	if string(dl.Key) != "big-1-1" || hdr(dl, "factory2.dlq.offset") != "2" {
		t.Errorf("dead-lettered %s@%s, want the second big event (offset 2)", dl.Key, hdr(dl, "factory2.dlq.offset"))
	}
	if hdr(dl, "factory2.dlq.truncated") != "true" || len(dl.Value) > 64<<10 || hdr(dl, "factory2.dlq.size") == "" || len(hdr(dl, "factory2.dlq.sha256")) != 64 {
		t.Errorf("dead letter of a 600 KB record: %d bytes, truncated %q, size %q, sha256 %q",
			len(dl.Value), hdr(dl, "factory2.dlq.truncated"), hdr(dl, "factory2.dlq.size"), hdr(dl, "factory2.dlq.sha256"))
	}
	got, err := f.outputs(t)
	if err != nil {
		t.Fatal(err)
	}
	if got["big-1-1"] != 1 {
		t.Errorf("big-1-1 has %d outputs, want 1 (the first big event)", got["big-1-1"])
	}
	// More events keep flowing.
	f.produceEvents(t, event("after", "ok-1-1", "tag", "a"), event("after-big", "big-1-1", "tag", "b"))
	f.waitOutputs(t, 23)
}

// An output too large to produce is the fault of the input that made it:
// that input is dead-lettered, the others go on.
func TestRunnerDeadLettersInputWhoseOutputIsTooLarge(t *testing.T) {
	f := newFixture(t, 1)
	kafkatest.RequireReal(t)
	r := f.runner(t, "a", t.TempDir(), f.hoarding)
	f.ensure(t)
	start(t, r)
	f.produceEvents(t,
		event("a1", "a-1-1", "tag", "a"),
		event("huge", "b-1-1", "bigout", strings.Repeat("y", 300_000)), // output 600 KB: fine
		event("a2", "a-1-1", "tag", "a"),
		event("huger", "c-1-1", "bigout", strings.Repeat("z", 600_000)), // output 1.2 MB: too large
		event("a3", "a-1-1", "tag", "a"),
	)
	f.waitOutputs(t, 4)
	dls := waitDeadLetters(t, f, 1)
	if len(dls) != 1 || string(dls[0].Key) != "c-1-1" || !strings.Contains(hdr(dls[0], "factory2.dlq.reason"), "record limit") {
		t.Fatalf("dead letters: %d, first key %q reason %q", len(dls), dls[0].Key, hdr(dls[0], "factory2.dlq.reason"))
	}
}

// A record on an input topic just under the broker's limit that does not
// decode: its dead-letter copy used to exceed the producer's record limit,
// which stopped everything. It is truncated now, with size and hash.
func TestRunnerDeadLettersRecordNearTheBrokerLimit(t *testing.T) {
	f := newFixture(t, 1)
	kafkatest.RequireReal(t)
	r := f.runner(t, "a", t.TempDir(), f.hoarding)
	f.ensure(t)
	start(t, r)
	cl := kafkatest.Client(t, f.env, kgo.ProducerBatchMaxBytes(2<<20))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	garbage := bytes.Repeat([]byte{0xAB}, 1_040_000)
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: f.in, Key: []byte("junk"), Value: garbage}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	f.produceEvents(t, event("a1", "a-1-1", "tag", "a"), event("a2", "b-1-1", "tag", "a"))
	f.waitOutputs(t, 2)
	dls := waitDeadLetters(t, f, 1)
	if hdr(dls[0], "factory2.dlq.kind") != "decode" || hdr(dls[0], "factory2.dlq.size") != "1040000" || hdr(dls[0], "factory2.dlq.truncated") != "true" {
		t.Errorf("dead letter: kind %q size %q truncated %q", hdr(dls[0], "factory2.dlq.kind"), hdr(dls[0], "factory2.dlq.size"), hdr(dls[0], "factory2.dlq.truncated"))
	}
}

// A non-transactional garbage record in a changelog used to stop the
// instance on restore ("corrupt state"), and again at every later event of
// its key. Now the restore quarantines it: the key is reset, the value
// dead-lettered with the reason, a tombstone written to the changelog, and
// the key's later events are processed.
func TestRestoreQuarantinesGarbageInTheChangelog(t *testing.T) {
	f := newFixture(t, 1)
	kafkatest.RequireReal(t)
	r := f.runner(t, "a", t.TempDir(), f.hoarding)
	f.ensure(t)
	stop := start(t, r)
	f.produceEvents(t, event("a1", "a-1-1", "tag", "a"), event("b1", "b-1-1", "tag", "b"))
	f.waitOutputs(t, 2)
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	changelog := f.cat.AddChangelog(f.spec().Name, "counts")
	cl := kafkatest.Client(t, f.env)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: changelog, Partition: 0, Key: []byte("b-1-1"), Value: []byte("garbage")}).FirstErr(); err != nil {
		t.Fatal(err)
	}

	// A new instance on empty state restores the whole changelog.
	r2 := f.runner(t, "b", t.TempDir(), f.hoarding)
	start(t, r2)
	f.produceEvents(t, event("a2", "a-1-1", "tag", "a"), event("b2", "b-1-1", "tag", "b"))
	dls := waitDeadLetters(t, f, 1)
	if hdr(dls[0], "factory2.dlq.kind") != "quarantined" || string(dls[0].Value) != "garbage" || hdr(dls[0], "factory2.dlq.topic") != changelog {
		t.Errorf("dead letter: kind %q topic %q value %q", hdr(dls[0], "factory2.dlq.kind"), hdr(dls[0], "factory2.dlq.topic"), dls[0].Value)
	}
	// a-1-1 continues at 2; b-1-1 starts over at 1 (its state was reset).
	kafkatest.WaitFor(t, 60*time.Second, func() error {
		got, _ := f.outputsAllowingRestart(t)
		if got["a-1-1"] != "1,2" || got["b-1-1"] != "1,1" {
			return fmt.Errorf("outputs %v", got)
		}
		return nil
	})
	// The tombstone reached the changelog: its last record for b-1-1 is
	// the new valid state, preceded by a tombstone after the garbage.
	recs, err := processors.ReadCommitted(ctx, f.env.Brokers(), []string{changelog})
	if err != nil {
		t.Fatal(err)
	}
	var seq []string
	for _, rec := range recs {
		if string(rec.Key) != "b-1-1" {
			continue
		}
		switch {
		case rec.Value == nil:
			seq = append(seq, "tombstone")
		case string(rec.Value) == "garbage":
			seq = append(seq, "garbage")
		default:
			seq = append(seq, "state")
		}
	}
	// The key's next committed value supersedes the garbage (a tombstone
	// and the new state in one transaction leave only the latter).
	if j := strings.Join(seq, ","); j != "state,garbage,state" && j != "state,garbage,tombstone,state" {
		t.Errorf("changelog records of b-1-1: %v", seq)
	}
}

// outputsAllowingRestart returns each key's output counts in order.
func (f *fixture) outputsAllowingRestart(t *testing.T) (map[string]string, error) {
	cl := kafkatest.Client(t, f.env,
		kgo.ConsumeTopics(f.out),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
	)
	seen := map[string]string{}
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		fs := cl.PollFetches(ctx)
		cancel()
		if fs.NumRecords() == 0 {
			return seen, nil
		}
		fs.EachRecord(func(r *kgo.Record) {
			ev, err := jsonCodec{}.Decode(r.Value)
			if err != nil {
				return
			}
			k := string(r.Key)
			if seen[k] != "" {
				seen[k] += ","
			}
			seen[k] += ev.(*avro.BuildEvent).Release
		})
	}
}
