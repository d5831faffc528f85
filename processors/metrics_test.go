package processors_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/factory2/factory2/avro"
	"github.com/factory2/factory2/internal/kafkatest"
	"github.com/factory2/factory2/processors"
)

// failing is the counter, except that an event of kind "fail" fails with
// an error that is not a RejectError: the transaction holding it aborts,
// and the record is dead-lettered as poison when it comes round again.
type failing struct{ counter }

func (f failing) Process(ctx *processors.Context, in *processors.Input) error {
	if in.Record.(*avro.BuildEvent).Kind == "fail" {
		return errors.New("cannot process this")
	}
	return f.counter.Process(ctx, in)
}

// series finds the value of metric name with labels (a subset) in reg:
// a counter's value, a gauge's, or a histogram's sample count.
func series(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for k, v := range labels {
				if !hasLabel(m, k, v) {
					continue metrics
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue(), true
			case m.Gauge != nil:
				return m.Gauge.GetValue(), true
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount()), true
			}
		}
	}
	return 0, false
}

func hasLabel(m *dto.Metric, k, v string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == k && l.GetValue() == v {
			return true
		}
	}
	return false
}

// TestRunnerMetrics: a fresh runner exports its known series at 0; then
// decisions are counted once committed (not the ones of an aborted
// transaction) with a latency each, dead letters by reason, rebalances
// and lag by group.
func TestRunnerMetrics(t *testing.T) {
	f := newFixture(t, 1)
	reg := prometheus.NewRegistry()
	r := f.runner(t, "a", t.TempDir(), func(s *processors.Spec, c *processors.Config) {
		c.Registerer = reg
		s.New = func(int32) processors.Processor { return failing{counter{out: f.out}} }
	})
	proc := map[string]string{"processor": "counter"}
	with := func(kv ...string) map[string]string {
		m := map[string]string{"processor": "counter"}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	for _, s := range []struct {
		name   string
		labels map[string]string
	}{
		{"factory2_decisions_total", with("kind", "gating")},
		{"factory2_decision_latency_seconds", with("kind", "gating")},
		{"factory2_processor_records_dead_lettered_total", with("topic", "events.build", "reason", "decode")},
		{"factory2_processor_records_dead_lettered_total", with("topic", "events.build", "reason", "unknown_schema")},
		{"factory2_processor_records_dead_lettered_total", with("topic", "events.build", "reason", "rejected")},
		{"factory2_processor_records_dead_lettered_total", with("topic", "events.build", "reason", "too_large")},
		{"factory2_processor_records_dead_lettered_total", with("topic", "events.build", "reason", "poison")},
		{"factory2_processor_records_dead_lettered_total", with("topic", "changelog", "reason", "quarantined")},
		{"factory2_processor_transaction_aborts_total", with("cause", "kafka")},
		{"factory2_processor_transaction_aborts_total", with("cause", "poison")},
		{"factory2_processor_transaction_aborts_total", with("cause", "punctuation")},
		{"factory2_processor_rebalances_total", with("event", "assigned")},
		{"factory2_processor_rebalances_total", with("event", "revoked")},
		{"factory2_processor_rebalances_total", with("event", "lost")},
		{"factory2_processor_restore_remaining_records", proc},
	} {
		if v, ok := series(t, reg, s.name, s.labels); !ok || v != 0 {
			t.Errorf("fresh runner: %s%v = %v (exported: %v), want 0", s.name, s.labels, v, ok)
		}
	}

	// One batch, so the failing event shares its transaction with
	// decisions that are aborted with it and made again.
	cl := kafkatest.Client(t, f.env)
	var recs []*kgo.Record
	for i := range 10 {
		ev := event(fmt.Sprintf("ev-%d", i), fmt.Sprintf("pkg%d-1-1", i%3), "tag", "")
		if i == 5 {
			ev.Kind = "fail"
		}
		if i == 7 {
			ev.Kind = "poison"
		}
		v, _ := jsonCodec{}.Encode(ev)
		recs = append(recs, &kgo.Record{Topic: f.in, Key: []byte(ev.NVR), Value: v})
	}
	recs = append(recs, &kgo.Record{Topic: f.in, Key: []byte("junk"), Value: []byte("not a record")})
	f.ensure(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	start(t, r)
	f.waitOutputs(t, 8)

	kafkatest.WaitFor(t, 30*time.Second, func() error {
		for _, w := range []struct {
			name   string
			labels map[string]string
			want   float64
		}{
			{"factory2_decisions_total", with("kind", "gating"), 8},
			{"factory2_decision_latency_seconds", with("kind", "gating"), 8},
			{"factory2_processor_records_dead_lettered_total", with("topic", "events.build", "reason", "decode"), 1},
			{"factory2_processor_records_dead_lettered_total", with("topic", "events.build", "reason", "rejected"), 1},
			{"factory2_processor_records_dead_lettered_total", with("topic", "events.build", "reason", "poison"), 1},
			{"factory2_processor_transaction_aborts_total", with("cause", "poison"), 1},
			{"factory2_processor_rebalances_total", with("event", "assigned"), 1},
			{"factory2_processor_task_lag_records", with("group", r.Group(), "partition", "0"), 0},
		} {
			if got, _ := series(t, reg, w.name, w.labels); got != w.want {
				return fmt.Errorf("%s%v = %v, want %v", w.name, w.labels, got, w.want)
			}
		}
		return nil
	})
	// Every latency is at most the time since the events were in Kafka.
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "factory2_decision_latency_seconds" {
			h := mf.GetMetric()[0].GetHistogram()
			if sum, bound := h.GetSampleSum(), 8*time.Since(begin.Add(-time.Second)).Seconds(); sum <= 0 || sum > bound {
				t.Errorf("latency sum %vs, want in (0, %v]", sum, bound)
			}
		}
	}
}

// gatedRestore is the counter, with a StateValidator that holds the
// restore at its first changelog record until gate is closed, having
// closed entered.
type gatedRestore struct {
	counter
	once    *sync.Once
	entered chan struct{}
	gate    chan struct{}
}

func (g gatedRestore) ValidateState(string, []byte, []byte) error {
	g.once.Do(func() { close(g.entered) })
	<-g.gate
	return nil
}

// TestRestoreRemainingRecords: while a runner restores its state from
// the changelog, restore_remaining_records says how much is left; it is
// back at 0 once the restore is done.
func TestRestoreRemainingRecords(t *testing.T) {
	f := newFixture(t, 1)
	first := f.runner(t, "a", t.TempDir())
	f.ensure(t)
	stop := start(t, first)
	f.produce(t, 0, 20, 20)
	f.waitOutputs(t, 20)
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	reg := prometheus.NewRegistry()
	g := gatedRestore{counter: counter{out: f.out}, once: new(sync.Once), entered: make(chan struct{}), gate: make(chan struct{})}
	second := f.runner(t, "a", t.TempDir(), func(s *processors.Spec, c *processors.Config) {
		c.Registerer = reg
		s.New = func(int32) processors.Processor { return g }
	})
	start(t, second)
	select {
	case <-g.entered:
	case <-time.After(60 * time.Second):
		close(g.gate)
		t.Fatal("the restore never started")
	}
	remaining, _ := series(t, reg, "factory2_processor_restore_remaining_records", nil)
	restoring, _ := series(t, reg, "factory2_processor_tasks_restoring", nil)
	close(g.gate)
	// 20 records in 20 transactions at most, each with its commit marker.
	if remaining < 20 || remaining > 40 || restoring != 1 {
		t.Errorf("during the restore: %v records remaining (want 20 to 40), %v tasks restoring (want 1)", remaining, restoring)
	}
	f.produce(t, 20, 21, 20)
	f.waitOutputs(t, 21)
	kafkatest.WaitFor(t, 30*time.Second, func() error {
		restored, _ := series(t, reg, "factory2_processor_restored_records_total", nil)
		remaining, ok := series(t, reg, "factory2_processor_restore_remaining_records", nil)
		if restored < 20 || !ok || remaining != 0 {
			return fmt.Errorf("restored %v records (want 20), remaining %v (exported: %v, want 0)", restored, remaining, ok)
		}
		return nil
	})
}
