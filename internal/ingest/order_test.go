package ingest

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/factory2/factory2/avro"
	"github.com/factory2/factory2/internal/kafkatest"
	"github.com/factory2/factory2/topics"
)

// A build's story on three topics, every event at one event time (Koji's
// messages carry no time of their own), in the order it happened.
var storyLines = []string{
	`{"type":"build","source":"koji/primary","event_time":"2026-01-01T00:00:00Z","kind":"state_change","nvr":"bash-5.2.26-3.fc41","state":"BUILDING"}`,
	`{"type":"build","source":"koji/primary","event_time":"2026-01-01T00:00:00Z","kind":"state_change","nvr":"bash-5.2.26-3.fc41","state":"COMPLETE","old_state":"BUILDING"}`,
	`{"type":"test_result","source":"resultsdb","event_time":"2026-01-01T00:00:00Z","subject_type":"koji_build","subject_id":"bash-5.2.26-3.fc41","testcase":"t1","outcome":"FAILED"}`,
	`{"type":"waiver","source":"waiverdb","event_time":"2026-01-01T00:00:00Z","subject_type":"koji_build","subject_id":"bash-5.2.26-3.fc41","testcase":"t1","product_version":"fedora-41","waived":true}`,
	`{"type":"waiver","source":"waiverdb","event_time":"2026-01-01T00:00:00Z","subject_type":"koji_build","subject_id":"bash-5.2.26-3.fc41","testcase":"t1","product_version":"fedora-41","waived":false}`,
	`{"type":"build","source":"koji/primary","event_time":"2026-01-01T00:00:00Z","kind":"tag","nvr":"bash-5.2.26-3.fc41","tag":"f41-signing-pending"}`,
	`{"type":"sign","source":"robosignatory","event_time":"2026-01-01T00:00:00Z","nvr":"bash-5.2.26-3.fc41","sigkey":"a15b79cc","outcome":"signed","artifacts":[{"name":"bash.rpm","type":"rpm"}]}`,
	`{"type":"build","source":"koji/primary","event_time":"2026-01-01T00:00:00Z","kind":"untag","nvr":"bash-5.2.26-3.fc41","tag":"f41-signing-pending"}`,
}

// frozenClock returns a clock that reads *now, which the test moves.
func frozenClock(now *time.Time) func() time.Time { return func() time.Time { return *now } }

// TestStampOrdersTopics: within a batch and across batches, the ingest
// time never goes back, and moves on by a millisecond where the topic
// changes; it is in whole milliseconds.
func TestStampOrdersTopics(t *testing.T) {
	cat, err := topics.New(topics.Config{Prefix: "t."})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 123456789, time.UTC)
	p := &Producer{cfg: ProducerConfig{Now: frozenClock(&now)}}
	evs := parseBatch(t, cat, strings.Join(storyLines, "\n"))
	p.stamp(evs)
	ms := func(ev Event) int64 {
		return ev.Record.Env().IngestTime.Sub(now.Truncate(time.Millisecond)).Milliseconds()
	}
	// build build | test test test | build | sign | build
	want := []int64{0, 0, 1, 1, 1, 2, 3, 4}
	for i, ev := range evs {
		if got := ms(ev); got != want[i] {
			t.Errorf("event %d (%s): +%d ms, want +%d", i+1, ev.Topic, got, want[i])
		}
		if it := ev.Record.Env().IngestTime; it.Nanosecond()%int(time.Millisecond) != 0 {
			t.Errorf("event %d: ingest time %v is not in whole milliseconds", i+1, it)
		}
	}

	// The clock went back a second: the next batch still follows; a
	// first record on the last record's topic shares its time.
	now = now.Add(-time.Second)
	next := parseBatch(t, cat, storyLines[7]+"\n"+storyLines[2])
	p.stamp(next)
	last := evs[len(evs)-1].Record.Env().IngestTime
	if got := next[0].Record.Env().IngestTime; !got.Equal(last) {
		t.Errorf("same topic after a clock step back: %v, want %v", got, last)
	}
	if got := next[1].Record.Env().IngestTime; !got.Equal(last.Add(time.Millisecond)) {
		t.Errorf("another topic after a clock step back: %v, want %v", got, last.Add(time.Millisecond))
	}
	// The clock moved on: its time is taken.
	now = now.Add(time.Hour)
	again := parseBatch(t, cat, storyLines[0])
	p.stamp(again)
	if got := again[0].Record.Env().IngestTime; !got.Equal(now.Truncate(time.Millisecond)) {
		t.Errorf("after the clock moved on: %v, want %v", got, now.Truncate(time.Millisecond))
	}
}

// TestProducedOrderSurvivesMerge produces a build's story over three
// topics, with one event time and a clock that stands still, in two
// batches (the clock steps back between them), then merges what was
// produced the way the processors do (record timestamp, then topic
// order, then offset): the merge gives back the produce order, and each
// record's timestamp is its event's ingest time.
func TestProducedOrderSurvivesMerge(t *testing.T) {
	env := kafkatest.Cluster(t)
	cat := catalogOn(t, env)
	now := time.Now().UTC()
	p := newTestProducerConfig(t, ProducerConfig{Brokers: env.Brokers(), Now: frozenClock(&now)})
	ctx, cancel := context.WithTimeout(t.Context(), ioTimeout)
	defer cancel()
	var ids []string
	for _, batch := range [][]string{storyLines[:6], storyLines[6:]} {
		evs := parseBatch(t, cat, strings.Join(batch, "\n"))
		if _, err := p.Produce(ctx, evs); err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs {
			ids = append(ids, ev.Record.Env().ID)
		}
		now = now.Add(-time.Second)
	}

	codec, _ := avro.NewCodec()
	recs := readCommitted(t, env, cat)
	// The processors' input order (the gating processor's).
	inputs := []string{cat.Name(topics.EventsBuild), cat.Name(topics.EventsSign), cat.Name(topics.EventsTest), cat.Name(topics.EventsPolicy)}
	slices.SortFunc(recs, func(a, b *kgo.Record) int {
		return cmp.Or(a.Timestamp.Compare(b.Timestamp),
			cmp.Compare(slices.Index(inputs, a.Topic), slices.Index(inputs, b.Topic)),
			cmp.Compare(a.Offset, b.Offset))
	})
	var merged []string
	for _, r := range recs {
		ev, err := codec.Decode(r.Value)
		if err != nil {
			t.Fatal(err)
		}
		if it := ev.Env().IngestTime; !it.Equal(r.Timestamp) {
			t.Errorf("%s: record timestamp %v, ingest time %v", ev.Env().ID, r.Timestamp, it)
		}
		merged = append(merged, ev.Env().ID)
	}
	if !slices.Equal(merged, ids) {
		t.Fatalf("merged order\n%v\nproduced order\n%v", merged, ids)
	}
}
