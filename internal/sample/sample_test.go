package sample_test

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/factory2/factory2/avro"
	"github.com/factory2/factory2/internal/bus"
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
	artifacts, signed := map[string]int{}, map[string]int{}
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
			if e.State == avro.StateComplete && len(e.Artifacts) > 0 {
				artifacts[e.NVR] = len(e.Artifacts)
			}
			if e.Kind == avro.BuildTag && e.Tag == sample.SigningRule.To && signed[e.NVR] != artifacts[e.NVR] {
				t.Errorf("%s moved to %s (%s) with %d of %d artifacts signed", e.NVR, e.Tag, env.ID, signed[e.NVR], artifacts[e.NVR])
			}
		case *avro.SignEvent:
			if !tagged[e.NVR] {
				t.Errorf("%s signed (%s) before it is tagged into %s", e.NVR, env.ID, sample.SigningRule.From)
			}
			signed[e.NVR] += len(e.Artifacts)
		}
	}
}

// TestComposeBecomesReady follows the sample's compose definition the way
// compose readiness reads it, with the gating engine for gating: the
// content is the builds in the definition's source tags, and the compose
// is ready when every one of them is COMPLETE, signed with the
// definition's key and satisfies its decision contexts for its product
// version. When defined, the compose holds the three builds and xz blocks
// it (its tests are queued); xz's failed test keeps it blocked; the
// waiver makes it ready, and it stays ready to the end.
func TestComposeBecomesReady(t *testing.T) {
	eng := mustEngine(t)
	subjects := map[string]*gating.Subject{}
	var (
		def                         *avro.ComposeEvent
		ready                       bool
		content                     []string
		firstBlockers, lastBlockers []string
		changes                     []string // "ready at ID", "blocked at ID"
	)
	for _, r := range sample.Events(base) {
		switch e := r.(type) {
		case *avro.ComposeEvent:
			if e.Kind == avro.ComposeDefinition && e.ComposeID == sample.ComposeID {
				def = e
			}
		default:
			key := bus.Key(r)
			if subjects[key] == nil {
				subjects[key] = &gating.Subject{}
			}
			if _, err := subjects[key].Apply(r); err != nil {
				t.Fatalf("%s: %v", r.Env().ID, err)
			}
		}
		if def == nil {
			continue
		}
		var blockers []string
		content, blockers = readiness(eng, def, subjects)
		now := len(content) > 0 && len(blockers) == 0
		switch {
		case r == avro.Record(def):
			firstBlockers = blockers
		case now && !ready:
			changes = append(changes, "ready at "+r.Env().ID)
		case !now && ready:
			changes = append(changes, "blocked at "+r.Env().ID)
		}
		if !now {
			lastBlockers = blockers
		}
		ready = now
	}

	if def == nil {
		t.Fatalf("no definition of %s", sample.ComposeID)
	}
	if !slices.Equal(def.SourceTags, []string{sample.SigningRule.To}) || def.SigningKey != sample.SigningRule.KeyID ||
		!slices.Equal(def.DecisionContexts, []string{sample.DecisionContext}) || def.ProductVersion != "fedora-42" ||
		def.Source != "factory2/config" {
		t.Errorf("definition %+v", def)
	}
	want := []string{"bash-5.2.37-1.fc42", "python-requests-2.32.3-4.fc42", "xz-5.6.3-2.fc42"}
	if !slices.Equal(content, want) || !ready {
		t.Fatalf("at the end: content %v, ready %v; want %v, ready", content, ready, want)
	}
	if len(firstBlockers) == 0 || !slices.Equal(changes, []string{"ready at sample-033"}) {
		t.Fatalf("blocked by %v when defined, then %v; want blocked, then ready once, at the waiver sample-033", firstBlockers, changes)
	}
	for _, b := range append(slices.Clone(firstBlockers), lastBlockers...) {
		if !strings.HasPrefix(b, "xz-") {
			t.Errorf("blocker %q: want only xz to block", b)
		}
	}
	if slices.Equal(firstBlockers, lastBlockers) {
		t.Errorf("blockers %v did not change before the waiver (queued tests, then a failed one)", firstBlockers)
	}
	t.Logf("blocked when defined by %v, before the waiver by %v; %s with %v", firstBlockers, lastBlockers, changes[0], content)
}

// readiness returns the content of the compose def (the NVRs in its
// source tags, sorted) and what blocks it.
func readiness(eng *gating.Engine, def *avro.ComposeEvent, subjects map[string]*gating.Subject) (content, blockers []string) {
	for nvr, s := range subjects {
		if !slices.ContainsFunc(def.SourceTags, s.Tagged) {
			continue
		}
		content = append(content, nvr)
		if s.Build.State != avro.StateComplete {
			blockers = append(blockers, nvr+": not complete")
		}
		if def.SigningKey != "" && !signedWith(s, def.SigningKey) {
			blockers = append(blockers, nvr+": not signed with "+def.SigningKey)
		}
		for _, dc := range def.DecisionContexts {
			ev := eng.Evaluate(s, gating.Query{DecisionContexts: []string{dc}, ProductVersion: def.ProductVersion})
			if ev.NoApplicablePolicies || !ev.PoliciesSatisfied {
				blockers = append(blockers, nvr+": "+dc+": "+ev.Summary)
			}
		}
	}
	slices.Sort(content)
	slices.Sort(blockers)
	return content, blockers
}

// signedWith reports whether every artifact of s's build is signed with
// key.
func signedWith(s *gating.Subject, key string) bool {
	for _, sig := range s.Signatures {
		if sig.KeyID != key {
			continue
		}
		for _, a := range s.Build.Artifacts {
			if !slices.Contains(sig.Signed, a.Name) {
				return false
			}
		}
		return len(s.Build.Artifacts) > 0
	}
	return false
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
