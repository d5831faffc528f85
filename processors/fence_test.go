package processors_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/factory2/factory2/avro"
	"github.com/factory2/factory2/internal/kafkatest"
	"github.com/factory2/factory2/processors"
	"github.com/factory2/factory2/topics"
)

// A member replaced without knowing it (a zombie: paused past its session,
// or cut off from the coordinator, while another member took its
// partitions) must not commit for the partitions it lost. A transaction
// that consumed records is checked by the group coordinator when it
// commits their offsets; a punctuation consumes nothing, so the runner
// fences it with the member's generation (fenceGeneration). Here a's
// heartbeats stop counting while a is told they succeed; b takes both
// partitions; then a punctuates, writing an output and a state value for
// partitions it still believes its own. Its transactions must abort: a
// read_committed consumer never sees a's punctuation output, and the
// changelog of b's state never gets a's value.
func TestZombiePunctuationIsFenced(t *testing.T) {
	kafkatest.RequireReal(t)
	f := newFixture(t, 2)
	stamps := f.cat.Name(topics.DecisionsAutosign)
	changelog := f.cat.AddChangelog(f.spec().Name, "counts")
	f.ensure(t)

	hb := &heartbeatFaker{}
	regA := prometheus.NewRegistry()
	sa, sb := newStamper("a", stamps, f.out), newStamper("b", stamps, f.out)
	a := f.runner(t, "a", t.TempDir(), sa.stamping, func(_ *processors.Spec, c *processors.Config) {
		c.ClientOpts = []kgo.Opt{kgo.Dialer(hb.dial)}
		c.Registerer = regA
		c.Logger = c.Logger.With("instance", "a")
	})
	start(t, a)
	f.produce(t, 0, 20, 4)
	f.waitOutputs(t, 20)

	// a's heartbeats stop counting; b joins, and once a's session has
	// expired, takes both partitions.
	hb.on.Store(true)
	sb.armed.Store(true)
	b := f.runner(t, "b", t.TempDir(), sb.stamping, func(_ *processors.Spec, c *processors.Config) {
		c.Logger = c.Logger.With("instance", "b")
	})
	start(t, b)
	both := []int32{0, 1}
	kafkatest.WaitFor(t, 45*time.Second, func() error {
		if got := b.Assignment()[f.in]; !slices.Equal(got, both) {
			return fmt.Errorf("b owns %v, want %v", got, both)
		}
		if got := readStamps(t, f, stamps, kgo.ReadCommitted())["b"]; len(got) < 2 {
			return fmt.Errorf("b's punctuation stamped partitions %v, want both", got)
		}
		return nil
	})
	if got := a.Assignment()[f.in]; !slices.Equal(got, both) {
		t.Fatalf("a owns %v: it learned that it lost its partitions, so it is no zombie and the test proves nothing", got)
	}
	t.Logf("b owns %v; a, whose %d heartbeats since were refused (%v) and reported to it as successful, still believes it owns %v",
		both, hb.faked.Load(), hb.refusals(), both)

	// The zombie punctuates.
	aborts := metricValue(t, regA, "factory2_processor_transaction_aborts_total")
	sa.armed.Store(true)
	kafkatest.WaitFor(t, 30*time.Second, func() error {
		// A punctuation calls both tasks, in one transaction.
		if calls := sa.calls.Load(); calls < 6 {
			return fmt.Errorf("a punctuated its tasks %d times, want 6", calls)
		}
		return nil
	})
	sa.armed.Store(false)
	// The loop ends a punctuation's transaction before it punctuates
	// again: at least two of the three have ended.
	if aborted := metricValue(t, regA, "factory2_processor_transaction_aborts_total") - aborts; aborted < 2 {
		t.Errorf("%v of a's punctuation transactions aborted, want at least 2", aborted)
	}
	if got := readStamps(t, f, stamps, kgo.ReadCommitted())["a"]; len(got) > 0 {
		t.Errorf("a read_committed consumer sees the zombie's punctuation output for partitions %v", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	recs, err := processors.ReadCommitted(ctx, f.env.Brokers(), []string{changelog})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if string(r.Value) == "a" {
			t.Errorf("the changelog holds the zombie's value for %s at %d@%d: b's state is overwritten", r.Key, r.Partition, r.Offset)
		}
	}
	for _, p := range both {
		v, ok, err := b.Get("counts", []byte(stampKey(p)))
		if err != nil || !ok || string(v) != "b" {
			t.Errorf("b's state of %s: %q (found %v, err %v), want b", stampKey(p), v, ok, err)
		}
	}
	if _, err := f.outputs(t); err != nil {
		t.Error(err)
	}
	if !t.Failed() {
		t.Logf("a punctuated its tasks %d times for partitions it had lost (the broker holds its aborted stamps of partitions %v); "+
			"every transaction aborted, none of it is visible", sa.calls.Load(), readStamps(t, f, stamps, kgo.ReadUncommitted())["a"])
	}
}

// stamper is the counter with a punctuation: while armed, it stamps each
// of its tasks with its instance's name, an output to the stamps topic and
// a state value, as the gating processor's re-evaluation emits decisions
// and writes subjects.
type stamper struct {
	instance, stamps, out string
	armed                 atomic.Bool
	calls                 atomic.Int64
}

func newStamper(instance, stamps, out string) *stamper {
	return &stamper{instance: instance, stamps: stamps, out: out}
}

// stamping is the override that runs s, punctuating every 100ms.
func (s *stamper) stamping(spec *processors.Spec, _ *processors.Config) {
	spec.New = func(int32) processors.Processor { return stamperTask{counter{out: s.out}, s} }
	spec.PunctuateEvery = 100 * time.Millisecond
}

type stamperTask struct {
	counter
	s *stamper
}

func (st stamperTask) Punctuate(ctx *processors.Context, _ time.Time) (bool, error) {
	s := st.s
	if !s.armed.Load() {
		return false, nil
	}
	n := s.calls.Add(1)
	key := []byte(stampKey(ctx.Partition()))
	if err := ctx.Put("counts", key, []byte(s.instance)); err != nil {
		return false, err
	}
	out := &avro.BuildEvent{NVR: string(key), Owner: s.instance}
	out.ID = fmt.Sprintf("%s-stamp-%d", s.instance, n)
	ctx.Emit(s.stamps, key, out)
	return false, nil
}

// stampKey is the key a stamper writes for partition p of 2: one that
// partition p owns, so Runner.Get finds it.
func stampKey(p int32) string {
	for i := 0; ; i++ {
		if k := fmt.Sprintf("stamp-%d", i); processors.PartitionFor([]byte(k), 2) == p {
			return k
		}
	}
}

// readStamps returns, per instance, the partitions whose stamps a consumer
// at level sees, reading up to the end offsets (the last stable ones for
// read_committed) of when it was called: a punctuating instance keeps
// stamping, so waiting for a quiet poll might never end.
func readStamps(t *testing.T, f *fixture, stamps string, level kgo.IsolationLevel) map[string][]int32 {
	t.Helper()
	adm := kadm.NewClient(kafkatest.Client(t, f.env))
	lctx, lcancel := context.WithTimeout(context.Background(), 10*time.Second)
	list := adm.ListEndOffsets
	if level == kgo.ReadCommitted() {
		list = adm.ListCommittedOffsets
	}
	ends, err := list(lctx, stamps)
	lcancel()
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		t.Fatalf("listing the ends of %s: %v", stamps, err)
	}
	want := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			want[o.Partition] = o.Offset
		}
	})
	cl := kafkatest.Client(t, f.env,
		kgo.ConsumeTopics(stamps),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(level),
		kgo.KeepControlRecords(), // the last offset may be a marker
	)
	out := map[string][]int32{}
	deadline := time.Now().Add(30 * time.Second)
	for len(want) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("reading %s: still short of the end offsets %v", stamps, want)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		fs := cl.PollFetches(ctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) {
			if end, ok := want[r.Partition]; ok && r.Offset+1 >= end {
				delete(want, r.Partition)
			}
			if r.Attrs.IsControl() {
				return
			}
			v, err := jsonCodec{}.Decode(r.Value)
			if err != nil {
				t.Errorf("stamp %d@%d: %v", r.Partition, r.Offset, err)
				return
			}
			who := v.(*avro.BuildEvent).Owner
			if !slices.Contains(out[who], r.Partition) {
				out[who] = append(out[who], r.Partition)
				slices.Sort(out[who])
			}
		})
	}
	return out
}

// heartbeatFaker makes a client a zombie once on: its group heartbeats
// reach the coordinator under a member id that is not the client's, so
// they keep no session alive and the group drops the member when its
// session times out; and each is answered to the client as a success, so
// the client never learns it (as a process paused past its session, whose
// heartbeat thread has not run yet, does not). Every other request passes
// unchanged.
type heartbeatFaker struct {
	on    atomic.Bool
	faked atomic.Int64

	mu      sync.Mutex
	refused map[string]int // the coordinator's answers, by error
}

func (h *heartbeatFaker) dial(ctx context.Context, network, host string) (net.Conn, error) {
	c, err := (&net.Dialer{}).DialContext(ctx, network, host)
	if err != nil {
		return nil, err
	}
	return &fakingConn{Conn: c, h: h, heartbeats: map[int32]int16{}}, nil
}

func (h *heartbeatFaker) refusals() map[string]int {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[string]int{}
	for k, v := range h.refused {
		out[k] = v
	}
	return out
}

// fakingConn is one connection of a heartbeatFaker's client. kgo writes
// each request with one Write call; responses are read frame by frame so
// that a heartbeat's can be rewritten.
type fakingConn struct {
	net.Conn
	h *heartbeatFaker

	mu         sync.Mutex
	heartbeats map[int32]int16 // correlation id -> version of rewritten heartbeats
	pending    []byte          // the rest of the response frame being read
}

func (c *fakingConn) Write(b []byte) (int, error) {
	// int32 size, int16 key, int16 version, int32 correlation id, ...
	if !c.h.on.Load() || len(b) < 12 || int16(binary.BigEndian.Uint16(b[4:6])) != kmsg.Heartbeat.Int16() {
		return c.Conn.Write(b)
	}
	version, corr := int16(binary.BigEndian.Uint16(b[6:8])), int32(binary.BigEndian.Uint32(b[8:12]))
	req := kmsg.NewPtrHeartbeatRequest()
	req.SetVersion(version)
	head, body, err := splitRequest(b, req.IsFlexible())
	if err != nil {
		return 0, err
	}
	if err := req.ReadFrom(body); err != nil {
		return 0, fmt.Errorf("heartbeat faker: %w", err)
	}
	req.MemberID = "zombie-" + req.MemberID
	frame := req.AppendTo(head)
	binary.BigEndian.PutUint32(frame, uint32(len(frame)-4))
	c.mu.Lock()
	c.heartbeats[corr] = version
	c.mu.Unlock()
	if _, err := c.Conn.Write(frame); err != nil {
		return 0, err
	}
	return len(b), nil
}

// splitRequest splits a request frame after its header (size, key,
// version, correlation id, client id, and for flexible versions empty
// tagged fields); the header keeps its room for the size.
func splitRequest(b []byte, flexible bool) (head, body []byte, err error) {
	n := 12
	if len(b) < n+2 {
		return nil, nil, errors.New("heartbeat faker: short request")
	}
	if l := int16(binary.BigEndian.Uint16(b[n:])); l > 0 {
		n += int(l)
	}
	n += 2
	if flexible {
		if len(b) <= n || b[n] != 0 {
			return nil, nil, errors.New("heartbeat faker: request header with tagged fields")
		}
		n++
	}
	return append([]byte(nil), b[:n]...), b[n:], nil
}

func (c *fakingConn) Read(p []byte) (int, error) {
	if len(c.pending) == 0 {
		var size [4]byte
		if _, err := io.ReadFull(c.Conn, size[:]); err != nil {
			return 0, err
		}
		frame := make([]byte, 4+binary.BigEndian.Uint32(size[:]))
		copy(frame, size[:])
		if _, err := io.ReadFull(c.Conn, frame[4:]); err != nil {
			return 0, err
		}
		var err error
		if c.pending, err = c.answer(frame); err != nil {
			return 0, err
		}
	}
	n := copy(p, c.pending)
	c.pending = c.pending[n:]
	return n, nil
}

// answer returns frame, or, for a rewritten heartbeat, its success.
func (c *fakingConn) answer(frame []byte) ([]byte, error) {
	if len(frame) < 8 {
		return frame, nil
	}
	corr := int32(binary.BigEndian.Uint32(frame[4:8]))
	c.mu.Lock()
	version, ok := c.heartbeats[corr]
	delete(c.heartbeats, corr)
	c.mu.Unlock()
	if !ok {
		return frame, nil
	}
	resp := kmsg.NewPtrHeartbeatResponse()
	resp.SetVersion(version)
	n := 8 // size, correlation id
	if resp.IsFlexible() {
		if len(frame) <= n || frame[n] != 0 {
			return nil, errors.New("heartbeat faker: response header with tagged fields")
		}
		n++
	}
	if err := resp.ReadFrom(frame[n:]); err != nil {
		return nil, fmt.Errorf("heartbeat faker: %w", err)
	}
	c.h.mu.Lock()
	if c.h.refused == nil {
		c.h.refused = map[string]int{}
	}
	c.h.refused[fmt.Sprint(kerr.ErrorForCode(resp.ErrorCode))]++
	c.h.mu.Unlock()
	c.h.faked.Add(1)
	resp.ErrorCode = 0
	out := resp.AppendTo(append([]byte(nil), frame[:n]...))
	binary.BigEndian.PutUint32(out, uint32(len(out)-4))
	return out, nil
}
