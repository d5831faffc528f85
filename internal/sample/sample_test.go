package sample_test

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/factory2/factory2/avro"
	"github.com/factory2/factory2/internal/ingest"
	"github.com/factory2/factory2/internal/kafkatest"
	"github.com/factory2/factory2/internal/sample"
	"github.com/factory2/factory2/processors/gating"
	"github.com/factory2/factory2/topics"
)

var base = time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)

// TestEventsInOrder: ids are unique and fixed, event times strictly
// increase in the sample's order, and each build is tagged for signing
// before any of its RPMs is signed (so the sample shows an autosign
// decision).
func TestEventsInOrder(t *testing.T) {
	evs := sample.Events(base)
	again := sample.Events(base)
	seen := map[string]bool{}
	tagged := map[string]bool{}
	for i, r := range evs {
		env := r.Env()
		if seen[env.ID] || env.ID != again[i].Env().ID {
			t.Errorf("event %d: id %q repeated or not fixed", i, env.ID)
		}
		seen[env.ID] = true
		if i > 0 && !env.EventTime.After(evs[i-1].Env().EventTime) {
			t.Errorf("event %d (%s): event time %v not after %v", i, env.ID, env.EventTime, evs[i-1].Env().EventTime)
		}
		if !env.IngestTime.IsZero() {
			t.Errorf("event %d: ingest time set; the ingest Producer sets it", i)
		}
		switch e := r.(type) {
		case *avro.BuildEvent:
			if e.Kind == avro.BuildTag && e.Tag == sample.SigningRule.From {
				tagged[e.NVR] = true
			}
		case *avro.SignEvent:
			if !tagged[e.NVR] {
				t.Errorf("%s signed (%s) before it is tagged into %s", e.NVR, env.ID, sample.SigningRule.From)
			}
		}
	}
}

// TestMergeReproducesOrder produces the sample the way `factory2 dev
// --sample` does (one batch through an ingest Producer) and merges each
// partition of the gating processor's inputs the way the runtime does
// (record timestamp, then input topic order, then offset): every
// partition gives its events in the sample's order.
func TestMergeReproducesOrder(t *testing.T) {
	env := kafkatest.Cluster(t)
	cat, err := topics.New(topics.Config{Prefix: kafkatest.UniqueName(t) + ".", Partitions: 3, Replication: 1, InputRetentionMS: -1, DecisionRetentionMS: -1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cl := kafkatest.Client(t, env)
	if _, err := cat.Ensure(ctx, cl); err != nil {
		t.Fatal(err)
	}
	codec, err := avro.NewCodec()
	if err != nil {
		t.Fatal(err)
	}
	parser := &ingest.Parser{Catalog: cat}
	events, err := parser.Records(sample.Events(base)...)
	if err != nil {
		t.Fatal(err)
	}
	prod, err := ingest.NewProducer(ingest.ProducerConfig{Brokers: env.Brokers(), TransactionalID: kafkatest.UniqueName(t), Codec: codec})
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	produced, err := prod.Produce(ctx, events)
	if err != nil {
		t.Fatal(err)
	}

	spec := gating.Spec(cat, mustEngine(t))
	want := map[int32][]string{} // per partition, the sample's order
	for _, p := range produced {
		if slices.Contains(spec.Inputs, p.Topic) {
			want[p.Partition] = append(want[p.Partition], p.ID)
		}
	}
	recs := readInputs(ctx, t, env, spec.Inputs)
	slices.SortFunc(recs, func(a, b *kgo.Record) int {
		return cmp.Or(cmp.Compare(a.Partition, b.Partition), a.Timestamp.Compare(b.Timestamp),
			cmp.Compare(slices.Index(spec.Inputs, a.Topic), slices.Index(spec.Inputs, b.Topic)),
			cmp.Compare(a.Offset, b.Offset))
	})
	got := map[int32][]string{}
	for _, r := range recs {
		v, err := codec.Decode(r.Value)
		if err != nil {
			t.Fatal(err)
		}
		got[r.Partition] = append(got[r.Partition], v.Env().ID)
	}
	for p, ids := range want {
		if !slices.Equal(got[p], ids) {
			t.Errorf("partition %d: merged\n%v\nsample order\n%v", p, got[p], ids)
		}
	}
}

func mustEngine(t *testing.T) *gating.Engine {
	ps, err := gating.LoadPolicies(map[string][]byte{"sample.yaml": []byte(sample.Policy)})
	if err != nil {
		t.Fatal(err)
	}
	e, err := gating.NewEngine(ps, []gating.SigningRule{sample.SigningRule})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// readInputs reads every committed record of names up to their current
// ends.
func readInputs(ctx context.Context, t *testing.T, env *kafkatest.Env, names []string) []*kgo.Record {
	t.Helper()
	ends, err := kafkatest.Admin(t, env).ListCommittedOffsets(ctx, names...)
	if err != nil {
		t.Fatal(err)
	}
	pending := 0
	parts := map[string]map[int32]kgo.Offset{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			if parts[o.Topic] == nil {
				parts[o.Topic] = map[int32]kgo.Offset{}
			}
			parts[o.Topic][o.Partition] = kgo.NewOffset().AtStart()
			pending++
		}
	})
	// The last offset of a partition is a transaction marker: keep those
	// to see the end.
	cl := kafkatest.Client(t, env, kgo.ConsumePartitions(parts), kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())
	var out []*kgo.Record
	done := map[string]bool{}
	for len(done) < pending {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading: %v", ctx.Err())
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s[%d]: %v", topic, p, err) })
		for _, r := range fs.Records() {
			if !r.Attrs.IsControl() {
				out = append(out, r)
			}
			if end, ok := ends.Lookup(r.Topic, r.Partition); ok && r.Offset+1 >= end.Offset {
				done[fmt.Sprint(r.Topic, "/", r.Partition)] = true
			}
		}
	}
	return out
}
