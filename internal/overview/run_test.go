package overview

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/factory2/factory2/avro"
	"github.com/factory2/factory2/internal/kafkatest"
	"github.com/factory2/factory2/topics"
)

// runFixture is an Overview over a fresh catalog's topics on a real
// broker, with a transactional producer.
type runFixture struct {
	t    *testing.T
	h    *harness
	cat  *topics.Catalog
	adm  *kadm.Client
	cl   *kgo.Client
	done chan struct{} // closed when Run returns, with err
	err  error
	stop context.CancelFunc
}

// newRunFixture creates the topics the Overview reads, but for those of
// the aliases in without.
func newRunFixture(t *testing.T, tweak func(*Overview), without ...string) *runFixture {
	kenv := kafkatest.Cluster(t)
	cat, err := topics.New(topics.Config{Prefix: kafkatest.UniqueName(t) + ".", Partitions: 2, Replication: 1})
	if err != nil {
		t.Fatal(err)
	}
	f := &runFixture{t: t, cat: cat, adm: kafkatest.Admin(t, kenv),
		cl: kafkatest.Client(t, kenv, kgo.TransactionalID(kafkatest.UniqueName(t)), kgo.RecordPartitioner(kgo.ManualPartitioner()))}
	f.h = newHarness(t, func(c *Config) {
		c.Brokers, c.Catalog, c.Describe, c.Lookback = kenv.Brokers(), cat, describe, time.Hour
		c.Logger = slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	if tweak != nil {
		tweak(f.h.o)
	}
	var names []string
	for _, n := range f.h.o.topics {
		if !slices.ContainsFunc(without, func(alias string) bool { return cat.Name(alias) == n }) {
			names = append(names, n)
		}
	}
	t.Cleanup(func() { // a real broker is shared: leave no topics behind
		dctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := f.adm.DeleteTopics(dctx, f.h.o.topics...); err != nil {
			t.Logf("deleting topics: %v", err)
		}
	})
	f.create(names...)
	return f
}

// create creates topics of two partitions and waits until the producer
// sees them.
func (f *runFixture) create(names ...string) {
	f.t.Helper()
	ctx := f.t.Context()
	rs, err := f.adm.CreateTopics(ctx, 2, 1, nil, names...)
	if err == nil {
		err = rs.Error()
	}
	if err != nil {
		f.t.Fatal(err)
	}
	kafkatest.WaitFor(f.t, 30*time.Second, func() error {
		tds, err := f.adm.ListTopics(ctx, names...)
		if err == nil {
			err = tds.Error()
		}
		return err
	})
}

// run starts Run; stopped stops it and checks it ended well.
func (f *runFixture) run() {
	ctx, cancel := context.WithCancel(f.t.Context())
	f.done, f.stop = make(chan struct{}), cancel
	go func() { f.err = f.h.o.Run(ctx); close(f.done) }()
	f.t.Cleanup(func() { // it logs to the test: wait for it
		cancel()
		select {
		case <-f.done:
		case <-time.After(time.Minute):
		}
	})
}

func (f *runFixture) stopped() {
	f.t.Helper()
	f.stop()
	select {
	case <-f.done:
		if f.err != nil {
			f.t.Errorf("Run: %v", f.err)
		}
	case <-time.After(time.Minute):
		f.t.Fatal("Run did not stop")
	}
}

// record is r for partition 0 of the catalog's topic alias, stamped ts.
func (f *runFixture) record(alias string, ts time.Time, r avro.Record) *kgo.Record {
	f.t.Helper()
	b, err := f.h.codec.Encode(r)
	if err != nil {
		f.t.Fatal(err)
	}
	return &kgo.Record{Topic: f.cat.Name(alias), Key: []byte("k"), Value: b, Timestamp: ts}
}

// produce writes recs in one transaction and ends it with end.
func (f *runFixture) produce(end kgo.TransactionEndTry, recs ...*kgo.Record) {
	f.t.Helper()
	ctx := f.t.Context()
	if err := f.cl.BeginTransaction(); err != nil {
		f.t.Fatal(err)
	}
	if err := f.cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		f.t.Fatal(err)
	}
	if err := f.cl.EndTransaction(ctx, end); err != nil {
		f.t.Fatal(err)
	}
}

// waitSteps waits until nvr's journey has steps of the stages want, in
// any order.
func (f *runFixture) waitSteps(nvr string, want ...string) {
	f.t.Helper()
	kafkatest.WaitFor(f.t, time.Minute, func() error {
		j, ok := f.h.o.journeys.get(nvr)
		if !ok {
			return fmt.Errorf("nothing of %s read yet", nvr)
		}
		if got := stages(j); !slices.Equal(got, slices.Sorted(slices.Values(want))) {
			return fmt.Errorf("%s: steps %v read, want %v", nvr, got, want)
		}
		return nil
	})
}

// Run reads what was committed since Lookback, and follows: a decision
// older than the lookback and one of an aborted transaction never show;
// when Run stops, the open streams end. The records are committed just
// before Run starts, so a by-time listing may meet the last transaction's
// commit markers on their way: they must be read all the same.
func TestRunReadsRecentCommittedRecords(t *testing.T) {
	f := newRunFixture(t, nil)
	now := time.Now()
	f.produce(kgo.TryCommit, f.record(topics.DecisionsGating, now.Add(-2*time.Hour), gating("old-1-1", t0, true)))
	f.produce(kgo.TryAbort, f.record(topics.DecisionsGating, now, gating("aborted-1-1", t0, true)))
	f.produce(kgo.TryCommit,
		f.record(topics.DecisionsGating, now, gating("recent-1-1", t0, true)),
		f.record(topics.EventsBuild, now, &avro.BuildEvent{Envelope: env("b1", t0), Kind: avro.BuildStateChange, NVR: "recent-1-1", State: avro.StateComplete}))
	f.run()
	f.waitSteps("recent-1-1", StageBuilt, StageDecided)
	// And follows: a decision made now shows.
	f.produce(kgo.TryCommit, f.record(topics.DecisionsGating, time.Now(), gating("later-1-1", t0, false)))
	kafkatest.WaitFor(t, time.Minute, func() error {
		if d := f.h.o.hub.recent(); len(d) != 2 || d[0].Subject != "later-1-1" || d[1].Subject != "recent-1-1" {
			return errors.New("decisions: " + subjects(d))
		}
		return nil
	})
	if _, ok := f.h.o.journeys.get("old-1-1"); ok {
		t.Errorf("a decision older than the lookback was read")
	}

	_, r := openStream(t, f.h, "", "")
	r.next()
	f.stopped()
	for r.sc.Scan() { // the stream ends: Run closed it
	}
}

// A topic created and a partition added while Run runs are read from
// their first record; a transaction open when Run lists a partition is
// read once it commits.
func TestRunReadsTopicsAndPartitionsAddedLater(t *testing.T) {
	f := newRunFixture(t, func(o *Overview) { o.rescan = 200 * time.Millisecond }, topics.EventsBuild)
	ctx := t.Context()
	// Open before Run starts, committed after it listed the partition.
	if err := f.cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := f.cl.ProduceSync(ctx, f.record(topics.DecisionsGating, time.Now(), gating("open-1-1", t0, true))).FirstErr(); err != nil {
		t.Fatal(err)
	}
	f.run()
	time.Sleep(300 * time.Millisecond) // past the first listing; nothing to wait on but the clock
	if err := f.cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	f.waitSteps("open-1-1", StageDecided)

	// The topic, created now.
	f.create(f.cat.Name(topics.EventsBuild))
	f.produce(kgo.TryCommit, f.record(topics.EventsBuild, time.Now(), &avro.BuildEvent{Envelope: env("b1", t0), Kind: avro.BuildStateChange, NVR: "open-1-1", State: avro.StateComplete}))
	f.waitSteps("open-1-1", StageBuilt, StageDecided)

	// A third partition of the gating decisions.
	gatingTopic := f.cat.Name(topics.DecisionsGating)
	if _, err := f.adm.CreatePartitions(ctx, 1, gatingTopic); err != nil {
		t.Fatal(err)
	}
	rec := f.record(topics.DecisionsGating, time.Now(), gating("added-1-1", t0, true))
	rec.Partition = 2
	kafkatest.WaitFor(t, 30*time.Second, func() error { // until the producer knows the partition
		f.cl.ForceMetadataRefresh()
		if err := f.cl.BeginTransaction(); err != nil {
			return err
		}
		err := f.cl.ProduceSync(ctx, rec).FirstErr()
		end := kgo.TryCommit
		if err != nil {
			end = kgo.TryAbort
		}
		return errors.Join(err, f.cl.EndTransaction(ctx, end))
	})
	f.waitSteps("added-1-1", StageDecided)
	f.stopped()
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

func stages(j *Journey) []string {
	var out []string
	for _, s := range j.Steps {
		out = append(out, s.Stage)
	}
	slices.Sort(out)
	return out
}

func subjects(ds []Decision) string {
	s := ""
	for _, d := range ds {
		s += d.Subject + " "
	}
	return s
}
