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

// TestStory: the parts the builds play. bash, python-requests and xz end
// gated and signed with both keys, each gold signature made only once the
// build passes gating in testing; xz passes only after its waiver; curl
// fails a test nobody waives, so it stays blocked, unsigned and out of
// testing.
func TestStory(t *testing.T) {
	eng := mustEngine(t)
	subjects := map[string]*gating.Subject{}
	subject := func(nvr string) *gating.Subject {
		if subjects[nvr] == nil {
			subjects[nvr] = &gating.Subject{}
		}
		return subjects[nvr]
	}
	gated := func(nvr string) *gating.Evaluation {
		return eng.Evaluate(subject(nvr), gating.Query{DecisionContexts: []string{sample.DecisionContext}, ProductVersion: "fedora-42"})
	}
	for _, r := range sample.Events(base) {
		switch e := r.(type) {
		case *avro.ComposeEvent, *avro.DependencyEdge:
			continue
		case *avro.SignEvent:
			if e.SigKey == sample.GoldRule.KeyID && (!gated(e.NVR).PoliciesSatisfied || !subject(e.NVR).Tagged(sample.GoldRule.From)) {
				t.Errorf("%s: %s signed with the gold key before it passed gating in %s", e.ID, e.NVR, sample.GoldRule.From)
			}
		case *avro.Waiver:
			if e.SubjectID != sample.Waived || gated(e.SubjectID).PoliciesSatisfied {
				t.Errorf("%s: waiver for %s; want one, for %s while it is blocked", e.ID, e.SubjectID, sample.Waived)
			}
		}
		if _, err := subject(bus.Key(r)).Apply(r); err != nil {
			t.Fatalf("%s: %v", r.Env().ID, err)
		}
		if w, ok := r.(*avro.Waiver); ok && !gated(w.SubjectID).PoliciesSatisfied {
			t.Errorf("%s: %s still blocked after its waiver", w.ID, w.SubjectID)
		}
	}

	for _, nvr := range []string{sample.Passing, "python-requests-2.32.3-4.fc42", sample.Waived} {
		s := subject(nvr)
		if ev := gated(nvr); !ev.PoliciesSatisfied {
			t.Errorf("%s: %s, want gating passed", nvr, ev.Summary)
		}
		for _, key := range []string{sample.SigningRule.KeyID, sample.GoldRule.KeyID} {
			if !signedWith(s, key) {
				t.Errorf("%s: not signed with %s", nvr, key)
			}
		}
		if !s.Tagged(sample.SigningRule.To) || s.Tagged(sample.SigningRule.From) {
			t.Errorf("%s: want moved from %s to %s", nvr, sample.SigningRule.From, sample.SigningRule.To)
		}
	}
	blocked := subject(sample.Blocked)
	ev := gated(sample.Blocked)
	failed := slices.ContainsFunc(ev.Unsatisfied(), func(q avro.Requirement) bool {
		return q.Type == "test-result-failed" && q.Testcase == sample.Tests[0]
	})
	if ev.PoliciesSatisfied || !failed {
		t.Errorf("%s: %s %+v, want blocked by its failed %s", sample.Blocked, ev.Summary, ev.Unsatisfied(), sample.Tests[0])
	}
	if len(blocked.Signatures) > 0 || blocked.Tagged(sample.SigningRule.From) || blocked.Tagged(sample.SigningRule.To) {
		t.Errorf("%s: signed or submitted: %+v", sample.Blocked, blocked)
	}
	ev = eng.Evaluate(subject(sample.PungiComposeID), gating.Query{SubjectType: "compose", DecisionContexts: []string{sample.ComposeContext}, ProductVersion: "fedora-42"})
	if ev.NoApplicablePolicies || !ev.PoliciesSatisfied {
		t.Errorf("compose %s: %s, want its gating passed", sample.PungiComposeID, ev.Summary)
	}
}

// TestSteps: the steps are the events, cut before each build, around the
// compose definition and before each event of the Pungi compose.
func TestSteps(t *testing.T) {
	var all []string
	var firsts []string
	for _, step := range sample.Steps(base) {
		firsts = append(firsts, describeEvent(step[0]))
		for _, r := range step {
			all = append(all, r.Env().ID)
		}
	}
	var want []string
	for _, r := range sample.Events(base) {
		want = append(want, r.Env().ID)
	}
	if !slices.Equal(all, want) {
		t.Errorf("steps hold %v, want the events %v", all, want)
	}
	wantFirsts := []string{
		"dependency_edge", // the graph before the sample
		"build bash-5.2.37-1.fc42 BUILDING", "build python-requests-2.32.3-4.fc42 BUILDING", "build curl-8.11.1-3.fc42 BUILDING",
		"build xz-5.6.3-2.fc42 BUILDING", "compose " + sample.ComposeID + " ", "test xz-5.6.3-2.fc42 " + sample.Tests[0],
		"compose " + sample.PungiComposeID + " FINISHED", "test " + sample.PungiComposeID + " " + sample.ComposeTest,
	}
	if !slices.Equal(firsts, wantFirsts) {
		t.Errorf("steps start with\n%v\nwant\n%v", firsts, wantFirsts)
	}
}

func describeEvent(r avro.Record) string {
	switch e := r.(type) {
	case *avro.BuildEvent:
		return "build " + e.NVR + " " + e.State
	case *avro.TestResult:
		return "test " + e.SubjectID + " " + e.Testcase
	case *avro.ComposeEvent:
		return "compose " + e.ComposeID + " " + e.Status
	}
	return avro.TypeName(r)
}

// TestComposeBecomesReady follows the sample's compose definition the way
// compose readiness reads it, with the gating engine for gating: the
// content is the builds in the definition's source tags, and the compose
// is ready when every one of them is COMPLETE, signed with the
// definition's key and satisfies its decision contexts for its product
// version. When defined, the compose holds bash, python-requests and xz,
// and xz blocks it (its tests are queued, it lacks the gold key); xz's
// failed test keeps it blocked; after the waiver the gold key follows,
// and with xz's last RPM signed the compose is ready, and stays ready to
// the end. curl, blocked by gating, is never in it.
func TestComposeBecomesReady(t *testing.T) {
	eng := mustEngine(t)
	subjects := map[string]*gating.Subject{}
	var (
		def                         *avro.ComposeEvent
		ready                       bool
		content                     []string
		firstBlockers, lastBlockers []string
		changes                     []string // "ready at ID", "blocked at ID"
		lastGoldSign                string   // of xz
	)
	for _, r := range sample.Events(base) {
		switch e := r.(type) {
		case *avro.ComposeEvent:
			if e.Kind == avro.ComposeDefinition && e.ComposeID == sample.ComposeID {
				def = e
			}
		case *avro.DependencyEdge:
		default:
			if s, ok := r.(*avro.SignEvent); ok && s.NVR == sample.Waived && s.SigKey == sample.GoldRule.KeyID {
				lastGoldSign = s.ID
			}
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
	if !slices.Equal(def.SourceTags, []string{sample.SigningRule.To}) || def.SigningKey != sample.GoldRule.KeyID ||
		!slices.Equal(def.DecisionContexts, []string{sample.DecisionContext}) || def.ProductVersion != "fedora-42" ||
		def.Source != "factory2/config" {
		t.Errorf("definition %+v", def)
	}
	want := []string{"bash-5.2.37-1.fc42", "python-requests-2.32.3-4.fc42", "xz-5.6.3-2.fc42"}
	if !slices.Equal(content, want) || !ready {
		t.Fatalf("at the end: content %v, ready %v; want %v, ready", content, ready, want)
	}
	if lastGoldSign == "" || len(firstBlockers) == 0 || !slices.Equal(changes, []string{"ready at " + lastGoldSign}) {
		t.Fatalf("blocked by %v when defined, then %v; want blocked, then ready once, at xz's last gold signature %s", firstBlockers, changes, lastGoldSign)
	}
	for _, b := range append(slices.Clone(firstBlockers), lastBlockers...) {
		if !strings.HasPrefix(b, sample.Waived+":") {
			t.Errorf("blocker %q: want only xz to block", b)
		}
	}
	if slices.Equal(firstBlockers, lastBlockers) {
		t.Errorf("blockers %v did not change before the waiver (queued tests, then a failed one)", firstBlockers)
	}
	t.Logf("blocked when defined by %v, last by %v; %s with %v", firstBlockers, lastBlockers, changes[0], content)
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
	e, err := gating.NewEngine(ps, sample.SigningRules)
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
