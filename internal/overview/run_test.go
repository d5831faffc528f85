package overview

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/factory2/factory2/avro"
	"github.com/factory2/factory2/internal/kafkatest"
	"github.com/factory2/factory2/topics"
)

// Run reads what was committed since Lookback, and follows: a decision
// older than the lookback and one of an aborted transaction never show;
// when Run stops, the open streams end.
func TestRunReadsRecentCommittedRecords(t *testing.T) {
	kenv := kafkatest.Cluster(t)
	cat, err := topics.New(topics.Config{Prefix: kafkatest.UniqueName(t) + ".", Partitions: 2, Replication: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, err := cat.Ensure(ctx, kafkatest.Client(t, kenv)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // a real broker is shared: leave no topics behind
		dctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := kafkatest.Admin(t, kenv).DeleteTopics(dctx, topics.Names(cat.Specs())...); err != nil {
			t.Logf("deleting topics: %v", err)
		}
	})
	h := newHarness(t, func(c *Config) {
		c.Brokers, c.Catalog, c.Describe, c.Lookback = kenv.Brokers(), cat, describe, time.Hour
	})
	gatingTopic := cat.Name(topics.DecisionsGating)
	buildTopic := cat.Name(topics.EventsBuild)
	now := time.Now()
	record := func(topic string, ts time.Time, r avro.Record) *kgo.Record {
		b, err := h.codec.Encode(r)
		if err != nil {
			t.Fatal(err)
		}
		return &kgo.Record{Topic: topic, Key: []byte("k"), Value: b, Timestamp: ts}
	}
	cl := kafkatest.Client(t, kenv, kgo.TransactionalID(kafkatest.UniqueName(t)))
	produce := func(commit kgo.TransactionEndTry, recs ...*kgo.Record) {
		t.Helper()
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if err := cl.EndTransaction(ctx, commit); err != nil {
			t.Fatal(err)
		}
	}
	produce(kgo.TryCommit, record(gatingTopic, now.Add(-2*time.Hour), gating("old-1-1", t0, true)))
	produce(kgo.TryAbort, record(gatingTopic, now, gating("aborted-1-1", t0, true)))
	produce(kgo.TryCommit,
		record(gatingTopic, now, gating("recent-1-1", t0, true)),
		record(buildTopic, now, &avro.BuildEvent{Envelope: env("b1", t0), Kind: avro.BuildStateChange, NVR: "recent-1-1", State: avro.StateComplete}))

	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- h.o.Run(rctx) }()
	kafkatest.WaitFor(t, time.Minute, func() error {
		if j, ok := h.o.journeys.get("recent-1-1"); !ok || len(j.Steps) != 2 {
			return errors.New("the recent decision and build event are not read yet")
		}
		return nil
	})
	// And follows: a decision made now shows.
	produce(kgo.TryCommit, record(gatingTopic, time.Now(), gating("later-1-1", t0, false)))
	kafkatest.WaitFor(t, time.Minute, func() error {
		if d := h.o.hub.recent(); len(d) != 2 || d[0].Subject != "later-1-1" || d[1].Subject != "recent-1-1" {
			return errors.New("decisions: " + subjects(d))
		}
		return nil
	})
	if _, ok := h.o.journeys.get("old-1-1"); ok {
		t.Errorf("a decision older than the lookback was read")
	}

	_, r := openStream(t, h, "", "")
	r.next()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Run did not stop")
	}
	for r.sc.Scan() { // the stream ends: Run closed it
	}
}

func subjects(ds []Decision) string {
	s := ""
	for _, d := range ds {
		s += d.Subject + " "
	}
	return s
}
