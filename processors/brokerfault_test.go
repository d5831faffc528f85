package processors_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/factory2/factory2/avro"
	"github.com/factory2/factory2/internal/kafkatest"
	"github.com/factory2/factory2/processors"
	"github.com/factory2/factory2/topics"
)

// faultRunner is a runner on brokers the test owns, which must never
// return on its own while the test breaks the brokers under it.
type faultRunner struct {
	r      *processors.Runner
	exited atomic.Bool
	err    error
	cancel context.CancelFunc
	done   chan struct{}
}

func startFaultRunner(t *testing.T, f *fixture) *faultRunner {
	t.Helper()
	// Short backoffs: the runner is back soon after the brokers are.
	r := f.runner(t, "a", t.TempDir(), func(_ *processors.Spec, c *processors.Config) {
		c.RetryBackoff, c.MaxRetryBackoff = 50*time.Millisecond, time.Second
	})
	ctx, cancel := context.WithCancel(context.Background())
	fr := &faultRunner{r: r, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(fr.done)
		fr.err = r.Run(ctx)
		fr.exited.Store(true)
	}()
	t.Cleanup(func() { cancel(); <-fr.done })
	return fr
}

// alive fails t if the runner returned.
func (fr *faultRunner) alive(t *testing.T, when string) {
	t.Helper()
	if fr.exited.Load() {
		t.Fatalf("%s: the runner exited: %v", when, fr.err)
	}
}

// faultFixture is a counter fixture on brokers the test owns.
func faultFixture(t *testing.T, b *kafkatest.Brokers, replication int16) *fixture {
	t.Helper()
	cfg := topics.Config{Prefix: kafkatest.UniqueName(t) + ".", Partitions: 2, Replication: replication, InputRetentionMS: -1, DecisionRetentionMS: -1}
	if replication > 1 {
		cfg.MinInSyncReplicas = 2
	}
	cat, err := topics.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{env: b.Env(), cat: cat, in: cat.Name(topics.EventsBuild), out: cat.Name(topics.DecisionsGating)}
}

// streamEvents produces events ev-from..ev-to-1 over keys, one batch of
// 10 every pace, with a client that rides out broker faults (franz-go
// retries; the idempotent producer keeps each event once).
func streamEvents(t *testing.T, f *fixture, from, to, keys int, pace time.Duration) (wait func()) {
	t.Helper()
	cl := kafkatest.Client(t, f.env)
	done := make(chan error, 1)
	go func() {
		for i := from; i < to; i += 10 {
			var rs []*kgo.Record
			for j := i; j < min(i+10, to); j++ {
				nvr := fmt.Sprintf("pkg%d-1.0-1.fc42", j%keys)
				ev := &avro.BuildEvent{NVR: nvr, Kind: avro.BuildTag}
				ev.ID = fmt.Sprintf("ev-%d", j)
				v, _ := jsonCodec{}.Encode(ev)
				rs = append(rs, &kgo.Record{Topic: f.in, Key: []byte(nvr), Value: v})
			}
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			err := cl.ProduceSync(ctx, rs...).FirstErr()
			cancel()
			if err != nil {
				done <- err
				return
			}
			time.Sleep(pace)
		}
		done <- nil
	}()
	return func() {
		t.Helper()
		if err := <-done; err != nil {
			t.Fatalf("producing events: %v", err)
		}
	}
}

// downFor is how long a fault test keeps a broker down: long under make
// chaos, short enough for make test otherwise.
func downFor(short, long time.Duration) time.Duration {
	if kafkatest.Chaos() {
		return long
	}
	return short
}

// The single broker stops (SIGTERM) while the processor runs and comes
// back on its data: the processor never exits, says it is not ready while
// waiting, and catches up by itself with every event processed exactly
// once.
func TestRunnerRidesOutBrokerStopAndRestart(t *testing.T) {
	b := kafkatest.StartBrokers(t, 1)
	f := faultFixture(t, b, 1)
	fr := startFaultRunner(t, f)
	f.ensure(t)
	f.produce(t, 0, 100, 10)
	f.waitOutputs(t, 100)

	down := downFor(10*time.Second, time.Minute)
	b.Stop(0)
	t.Logf("broker stopped for %s", down)
	kafkatest.WaitFor(t, down+30*time.Second, func() error {
		if h := fr.r.Health(); h.Ready {
			return fmt.Errorf("still ready with the broker down: %+v", h)
		}
		return nil
	})
	time.Sleep(down) // the fault itself, not a wait for a condition
	fr.alive(t, "broker down")
	b.Start(0)
	back := time.Now()
	f.produce(t, 100, 200, 10)
	kafkatest.WaitFor(t, 2*time.Minute, func() error {
		got, err := f.outputs(t)
		if err != nil {
			t.Fatal(err)
		}
		if total(got) <= 100 {
			return fmt.Errorf("%d outputs", total(got))
		}
		return nil
	})
	t.Logf("first new decision %s after the broker's return", time.Since(back).Round(time.Millisecond))
	f.waitOutputs(t, 200)
	kafkatest.WaitFor(t, time.Minute, func() error {
		if h := fr.r.Health(); !h.Ready {
			return fmt.Errorf("not ready again: %s", h.Reason)
		}
		return nil
	})
	fr.alive(t, "after the restart")
}

// On a three-broker cluster with events streaming in: kill -9 the group
// coordinator, then kill -9 another broker and bring both back. The
// processor never exits, and every event gets exactly one output.
func TestRunnerRidesOutCoordinatorAndBrokerKillsOnACluster(t *testing.T) {
	b := kafkatest.StartBrokers(t, 3)
	f := faultFixture(t, b, 3)
	fr := startFaultRunner(t, f)
	f.ensure(t)
	const events, keys = 2000, 20
	wait := streamEvents(t, f, 0, events, keys, 20*time.Millisecond)
	kafkatest.WaitFor(t, time.Minute, func() error {
		got, err := f.outputs(t)
		if err != nil {
			t.Fatal(err)
		}
		if total(got) < 100 {
			return fmt.Errorf("%d outputs", total(got))
		}
		return nil
	})

	coord := b.GroupCoordinatorIndex(fr.r.Group())
	b.Kill(coord)
	t.Logf("killed the group coordinator, node %d", b.NodeID(coord))
	time.Sleep(downFor(5*time.Second, 20*time.Second))
	fr.alive(t, "coordinator killed")
	other := (coord + 1) % 3
	b.Start(coord)
	b.Kill(other)
	t.Logf("killed node %d", b.NodeID(other))
	time.Sleep(downFor(10*time.Second, 60*time.Second)) // the fault itself
	fr.alive(t, "broker killed")
	b.Start(other)
	back := time.Now()
	wait()
	f.waitOutputs(t, events)
	t.Logf("all %d outputs %s after the last broker's return", events, time.Since(back).Round(time.Millisecond))
	fr.alive(t, "at the end")
}
