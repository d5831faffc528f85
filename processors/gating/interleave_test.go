package gating_test

// The runtime-level proof of issue 9, item 2: autosign never acts on a
// state the log order has not reached, whatever order the runner's fetches
// bring the input topics in (DESIGN.md, "One order of events"). The
// engine-level tests (order_test.go) feed the engine one order; this one
// runs the gating Runner against the real broker, over events produced
// the way `factory2 dev --sample` produces them (one ingest Producer, one
// transaction spanning the topics), with fetches, polls and threads that
// hand the runner the topics in many interleavings.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/factory2/factory2/avro"
	"github.com/factory2/factory2/internal/ingest"
	"github.com/factory2/factory2/internal/kafkatest"
	"github.com/factory2/factory2/internal/sample"
	"github.com/factory2/factory2/processors"
	"github.com/factory2/factory2/processors/gating"
	"github.com/factory2/factory2/topics"
)

const (
	// nvrX is waived, unwaived, then tagged for signing: never signed.
	// nvrY is built (BUILDING and COMPLETE at one time), passes, and is
	// tagged: signed once. Their keys hash to different partitions of
	// interleavePartitions (the test checks), so that two threads process
	// them at once.
	nvrX = "interleave-x-1.0-1.fc42"
	nvrY = "interleave-y-1.0-1.fc42"

	interleavePartitions = 2

	// interleaveTimeout bounds every wait of one variant.
	interleaveTimeout = 20 * time.Second
)

// goldRule signs builds tagged into its From tag once sample.Policy's
// bodhi_update_push_stable is satisfied (a gold key, which waits for
// gating).
var goldRule = gating.SigningRule{
	Name: "f42-gold", From: "f42-signing-pending", To: "f42-updates-testing-pending",
	Key: "fedora-42", KeyID: "a15b79cc", RequireContext: "bodhi_update_push_stable", Priority: 20,
}

// interleaveEvents returns the batch, in the order it is produced: the
// builds' state changes (Koji's topic), the test results and the waivers
// (two systems, one topic), then the tags into the signing rule's From
// tag (Koji's topic again). Event times start at base, a second apart.
func interleaveEvents(base time.Time) []avro.Record {
	at := func(s int) time.Time { return base.Add(time.Duration(s) * time.Second) }
	env := func(id, source string, t time.Time) avro.Envelope {
		return avro.Envelope{ID: id, Source: source, EventTime: t, Origin: avro.Origin{Topic: "test.interleave"}}
	}
	build := func(id, nvr, state, old string, t time.Time) *avro.BuildEvent {
		name, _, _ := strings.Cut(nvr, "-1.0-")
		e := &avro.BuildEvent{Envelope: env(id, "koji/primary", t), Kind: avro.BuildStateChange,
			NVR: nvr, Name: name, Version: "1.0", Release: "1.fc42", BuildID: 42, Owner: "packager",
			State: state, OldState: old}
		if state == avro.StateComplete {
			e.Artifacts = []avro.Artifact{{Name: nvr + ".src.rpm", Type: "rpm", Arch: "src"}}
		}
		return e
	}
	tag := func(id, nvr string, t time.Time) *avro.BuildEvent {
		e := build(id, nvr, "", "", t)
		e.Kind, e.Tag, e.TagUser = avro.BuildTag, goldRule.From, "bodhi"
		return e
	}
	result := func(id, nvr, testcase, outcome string, t time.Time) *avro.TestResult {
		return &avro.TestResult{Envelope: env(id, "resultsdb", t), ResultID: id, Testcase: testcase,
			Outcome: outcome, SubjectType: gating.SubjectKojiBuild, SubjectID: nvr, SubmitTime: t}
	}
	waiver := func(id, nvr string, waived bool, t time.Time) *avro.Waiver {
		return &avro.Waiver{Envelope: env(id, "waiverdb", t), WaiverID: id, SubjectType: gating.SubjectKojiBuild,
			SubjectID: nvr, Testcase: tier0, ProductVersion: "fedora-42", Waived: waived, User: "maintainer"}
	}
	// Koji's messages carry no time of their own: Y's BUILDING and
	// COMPLETE get one time, and ids that put BUILDING last if a content
	// hash broke the tie.
	yBuilt := at(1)
	return []avro.Record{
		build("x-building", nvrX, avro.StateBuilding, "", at(0)),
		build("x-complete", nvrX, avro.StateComplete, avro.StateBuilding, at(1)),
		build("sha256:ffffffffffffffffffffffffffffffff", nvrY, avro.StateBuilding, "", yBuilt),
		build("sha256:00000000000000000000000000000000", nvrY, avro.StateComplete, avro.StateBuilding, yBuilt),
		result("1001", nvrX, tier0, avro.OutcomeFailed, at(2)),
		result("1002", nvrX, rpminspect, avro.OutcomePassed, at(2)),
		result("1003", nvrY, tier0, avro.OutcomePassed, at(2)),
		result("1004", nvrY, rpminspect, avro.OutcomePassed, at(2)),
		waiver("501", nvrX, true, at(3)),
		waiver("502", nvrX, false, at(4)),
		tag("x-tag", nvrX, at(5)),
		tag("y-tag", nvrY, at(5)),
	}
}

// The testcases sample.Policy requires.
const (
	tier0      = "fedora-ci.koji-build.tier0.functional"
	rpminspect = "fedora-ci.koji-build.rpminspect.static-analysis"
)

// interleaving is one way of feeding the runner its inputs.
type interleaving struct {
	name string
	// fetchBytes bounds a fetch (kgo.FetchMaxBytes and
	// FetchMaxPartitionBytes); 1 makes every fetch answer carry one
	// record batch of one partition. 0: franz-go's default.
	fetchBytes int32
	pollMax    int // Config.MaxPollRecords; 0: the default
	threads    int // Config.Threads
}

// TestAutosignFollowsLogOrderWhateverTheFetches: X (a failed required
// test waived, unwaived, then the build tagged for signing) never gets an
// autosign decision, and Y (BUILDING and COMPLETE at one time, tests
// passed, tagged) gets exactly one, at its tag, however the runner's
// fetches, polls and threads interleave the topics; and the whole decision
// history, every output partition in offset order, is byte for byte the
// same in every variant and the same as processors.Rederive re-derives
// from the same inputs.
func TestAutosignFollowsLogOrderWhateverTheFetches(t *testing.T) {
	env := kafkatest.RequireReal(t)
	// One ingest clock for every variant: the same records with the same
	// timestamps, so the same decisions, byte for byte.
	now := time.Now().UTC().Truncate(time.Millisecond)
	base := now.Add(-time.Hour)
	var (
		ref      map[string][]string // the first variant's history
		refName  string
		reversed int // records fetched ahead of the merge order, all variants
	)
	for _, v := range []interleaving{
		{"fetch=1B,poll=1,threads=1", 1, 1, 1},
		{"fetch=1B,poll=1,threads=2", 1, 1, 2},
		{"fetch=1B,poll=7,threads=1", 1, 7, 1},
		{"fetch=1B,poll=7,threads=2", 1, 7, 2},
		{"fetch=1B,poll=default,threads=2", 1, 0, 2},
		{"fetch=default,poll=7,threads=1", 0, 7, 1},
		{"fetch=default,poll=default,threads=2", 0, 0, 2},
	} {
		t.Run(v.name, func(t *testing.T) {
			f := newInterleaveFixture(t, env)
			f.produce(t, interleaveEvents(base), now)
			live, ahead := f.runLive(t, v)
			reversed += ahead
			t.Logf("%d input records fetched ahead of a record that the merge takes before them", ahead)

			checkAutosign(t, live, base)
			if d := diffHistories(live.history, f.rederive(t).history); d != "" {
				t.Errorf("the live history differs from processors.Rederive's (got: live, want: re-derived):%s", d)
			}
			if ref == nil {
				ref, refName = live.history, v.name
			} else if d := diffHistories(live.history, ref); d != "" {
				t.Errorf("the history differs from variant %s's (got: this variant, want: %s):%s", refName, refName, d)
			}
		})
	}
	if ref != nil {
		t.Logf("the history of every variant:%s", historyText(ref))
	}
	if reversed == 0 && !t.Failed() {
		t.Error("no variant fetched a record ahead of one the merge takes first: the fetches did not interleave the topics, and the test proved nothing")
	}
}

// checkAutosign checks the autosign decisions: none for X; for Y one sign
// with the rule's key, triggered by Y's tag (the last event, at base+5s),
// not by an event the log order puts before the tag.
func checkAutosign(t *testing.T, d *decisions, base time.Time) {
	t.Helper()
	if got := d.autosign[nvrX]; len(got) != 0 {
		t.Errorf("%s (waived, unwaived, then tagged) got %d autosign decisions, want none:\n%s", nvrX, len(got), d.autosignLines(nvrX))
	}
	got := d.autosign[nvrY]
	if len(got) != 1 || got[0].Action != avro.AutosignSign || got[0].KeyID != goldRule.KeyID ||
		!got[0].EventTime.Equal(base.Add(5*time.Second)) {
		t.Errorf("%s (BUILDING and COMPLETE at one time, passed, tagged) got %d autosign decisions, want one sign with key %s at its tag:\n%s",
			nvrY, len(got), goldRule.KeyID, d.autosignLines(nvrY))
	}
}

// interleaveFixture is one variant's topics (a unique prefix), engine and
// inputs.
type interleaveFixture struct {
	env      *kafkatest.Env
	cat      *topics.Catalog
	codec    *avro.Codec
	spec     processors.Spec
	adm      *kadm.Client
	group    string
	produced []ingest.Produced
}

// newInterleaveFixture creates the topics of a fresh catalog; they and the
// processor's group are deleted when t ends.
func newInterleaveFixture(t *testing.T, env *kafkatest.Env) *interleaveFixture {
	t.Helper()
	cat, err := topics.New(topics.Config{Prefix: kafkatest.UniqueName(t) + ".", Partitions: interleavePartitions,
		Replication: 1, InputRetentionMS: -1, DecisionRetentionMS: -1})
	if err != nil {
		t.Fatal(err)
	}
	ps, err := gating.LoadPolicies(map[string][]byte{"sample.yaml": []byte(sample.Policy)})
	if err != nil {
		t.Fatal(err)
	}
	eng, err := gating.NewEngine(ps, []gating.SigningRule{goldRule})
	if err != nil {
		t.Fatal(err)
	}
	codec, err := avro.NewCodec()
	if err != nil {
		t.Fatal(err)
	}
	f := &interleaveFixture{env: env, cat: cat, codec: codec, spec: gating.Spec(cat, eng), adm: kafkatest.Admin(t, env)}
	cat.AddChangelog(f.spec.Name, gating.StoreSubjects) // as NewRunner does, so that Ensure creates it
	// Registered after Admin's client closes, so it runs before that.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), interleaveTimeout)
		defer cancel()
		if f.group != "" {
			if _, err := f.adm.DeleteGroup(ctx, f.group); err != nil {
				t.Logf("deleting the group: %v", err)
			}
		}
		if _, err := f.adm.DeleteTopics(ctx, topics.Names(cat.Specs())...); err != nil {
			t.Logf("deleting the topics: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), interleaveTimeout)
	defer cancel()
	if _, err := cat.Ensure(ctx, kafkatest.Client(t, env)); err != nil {
		t.Fatal(err)
	}
	return f
}

// produce produces recs as `factory2 dev --sample` does: parsed by an
// ingest Parser, produced by an ingest Producer in one batch, one
// transaction spanning the topics. Both clocks read now, so every variant
// gets the same records with the same timestamps.
func (f *interleaveFixture) produce(t *testing.T, recs []avro.Record, now time.Time) {
	t.Helper()
	clock := func() time.Time { return now }
	evs, err := (&ingest.Parser{Catalog: f.cat, Now: clock}).Records(recs...)
	if err != nil {
		t.Fatal(err)
	}
	prod, err := ingest.NewProducer(ingest.ProducerConfig{Brokers: f.env.Brokers(),
		TransactionalID: kafkatest.UniqueName(t), Codec: f.codec, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	ctx, cancel := context.WithTimeout(context.Background(), interleaveTimeout)
	defer cancel()
	if f.produced, err = prod.Produce(ctx, evs); err != nil {
		t.Fatal(err)
	}
	part := map[string]int32{}
	for _, p := range f.produced {
		part[p.Key] = p.Partition
	}
	if part[nvrX] == part[nvrY] {
		t.Fatalf("%s and %s share partition %d: pick names that hash apart, so that two threads run both tasks", nvrX, nvrY, part[nvrX])
	}
}

// config returns the runner's configuration for v, its session client
// hooked by hooks.
func (f *interleaveFixture) config(t *testing.T, v interleaving, hooks ...kgo.Hook) processors.Config {
	var opts []kgo.Opt
	if v.fetchBytes > 0 {
		opts = append(opts, kgo.FetchMaxBytes(v.fetchBytes), kgo.FetchMaxPartitionBytes(v.fetchBytes))
	}
	return processors.Config{
		Brokers: f.env.Brokers(), InstanceID: "interleave", Catalog: f.cat, Codec: f.codec,
		StateDir: t.TempDir(), SessionTimeout: 6 * time.Second,
		MaxPollRecords: v.pollMax, Threads: v.threads,
		Logger:     slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo})),
		ClientOpts: opts, SessionHooks: hooks,
	}
}

// runLive runs the gating runner configured by v until its group has
// committed past every produced record, stops it, and returns the
// committed decisions and how many input records its fetches brought
// ahead of a record the merge takes before them.
func (f *interleaveFixture) runLive(t *testing.T, v interleaving) (*decisions, int) {
	t.Helper()
	probe := &fetchProbe{seen: map[recordPlace]bool{}}
	r, err := processors.NewRunner(f.spec, f.config(t, v, probe))
	if err != nil {
		t.Fatal(err)
	}
	f.group = r.Group()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- r.Run(ctx) }()
	stop := sync.OnceValue(func() error { cancel(); return <-errc })
	t.Cleanup(func() { _ = stop() })

	f.waitConsumed(t)
	if err := stop(); err != nil {
		t.Fatalf("runner: %v", err)
	}
	return f.liveDecisions(t), probe.aheadOfMerge(f.spec.Inputs)
}

// waitConsumed waits until the group's committed offsets are past every
// produced record: the transactions that processed them are committed.
func (f *interleaveFixture) waitConsumed(t *testing.T) {
	t.Helper()
	kafkatest.WaitFor(t, interleaveTimeout, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		offs, err := f.adm.FetchOffsets(ctx, f.group)
		if err != nil {
			return err
		}
		for _, p := range f.produced {
			if c, ok := offs.Lookup(p.Topic, p.Partition); !ok || c.Err != nil || c.At <= p.Offset {
				return fmt.Errorf("event %s (%s/%d@%d) not consumed yet", p.ID, p.Topic, p.Partition, p.Offset)
			}
		}
		return nil
	})
}

// liveDecisions reads every committed decision, read_committed, once the
// stopped runner's last transaction markers are written (every output
// partition's last stable offset is its end).
func (f *interleaveFixture) liveDecisions(t *testing.T) *decisions {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), interleaveTimeout)
	defer cancel()
	kafkatest.WaitFor(t, interleaveTimeout, func() error {
		stable, err := f.adm.ListCommittedOffsets(ctx, f.spec.Outputs...)
		if err != nil {
			return err
		}
		ends, err := f.adm.ListEndOffsets(ctx, f.spec.Outputs...)
		if err != nil {
			return err
		}
		var err2 error
		ends.Each(func(e kadm.ListedOffset) {
			if s, ok := stable.Lookup(e.Topic, e.Partition); !ok || s.Offset != e.Offset {
				err2 = fmt.Errorf("%s/%d: a transaction is still open", e.Topic, e.Partition)
			}
		})
		return err2
	})
	recs, err := processors.ReadCommitted(ctx, f.env.Brokers(), f.spec.Outputs)
	if err != nil {
		t.Fatal(err)
	}
	d := newDecisions()
	for _, r := range recs {
		v, err := f.codec.Decode(r.Value)
		if err != nil {
			t.Fatalf("decision at %s/%d@%d does not decode: %v", r.Topic, r.Partition, r.Offset, err)
		}
		d.add(f.cat, r.Topic, r.Partition, r.Key, v, r.Value)
	}
	return d
}

// rederive re-derives the decisions from the inputs with
// processors.Rederive, placing each in the partition the runner's
// producer would (murmur2 of its key, as processors' partitioner does).
func (f *interleaveFixture) rederive(t *testing.T) *decisions {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), interleaveTimeout)
	defer cancel()
	cfg := f.config(t, interleaving{})
	red, err := processors.Rederive(ctx, f.spec, cfg, t.TempDir(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if red.DeadLetters != 0 {
		t.Errorf("re-deriving dead-lettered %d inputs", red.DeadLetters)
	}
	byKey := kgo.StickyKeyPartitioner(nil)
	d := newDecisions()
	for _, o := range red.Outputs {
		v, err := f.codec.Encode(o.Record)
		if err != nil {
			t.Fatal(err)
		}
		p := byKey.ForTopic(o.Topic).Partition(&kgo.Record{Topic: o.Topic, Key: o.Key}, interleavePartitions)
		d.add(f.cat, o.Topic, int32(p), o.Key, o.Record, v)
	}
	return d
}

// decisions is a decision history.
type decisions struct {
	// history holds, per output partition ("alias/partition"), one line
	// per decision in offset order: its summary and a hash of its
	// encoding.
	history map[string][]string
	// autosign holds the autosign decisions by NVR.
	autosign map[string][]*avro.AutosignDecision
}

func newDecisions() *decisions {
	return &decisions{history: map[string][]string{}, autosign: map[string][]*avro.AutosignDecision{}}
}

func (d *decisions) add(cat *topics.Catalog, topic string, partition int32, key []byte, r avro.Record, encoded []byte) {
	alias := strings.TrimPrefix(topic, cat.Prefix())
	l := summarize(alias, key, r)
	sum := sha256.Sum256(encoded)
	place := fmt.Sprintf("%s/%d", alias, partition)
	d.history[place] = append(d.history[place], fmt.Sprintf("%s %s %s [%s]", l.Key, l.Type, l.What, hex.EncodeToString(sum[:6])))
	if a, ok := r.(*avro.AutosignDecision); ok {
		d.autosign[a.NVR] = append(d.autosign[a.NVR], a)
	}
}

// autosignLines describes nvr's autosign decisions.
func (d *decisions) autosignLines(nvr string) string {
	var b strings.Builder
	for _, a := range d.autosign[nvr] {
		fmt.Fprintf(&b, "  %s %s at %s unsatisfied=%d\n", a.Action, a.KeyID, a.EventTime.Format(time.RFC3339), len(a.Unsatisfied))
	}
	return b.String()
}

// diffHistories describes the output partitions whose histories differ;
// "" when none does.
func diffHistories(got, want map[string][]string) string {
	places := slices.Sorted(maps.Keys(got))
	for p := range want {
		if _, ok := got[p]; !ok {
			places = append(places, p)
		}
	}
	var b strings.Builder
	for _, p := range places {
		if !slices.Equal(got[p], want[p]) {
			fmt.Fprintf(&b, "\n%s:\n got:\n   %s\n want:\n   %s", p, strings.Join(got[p], "\n   "), strings.Join(want[p], "\n   "))
		}
	}
	return b.String()
}

// historyText lists a history, output partitions in name order.
func historyText(h map[string][]string) string {
	var b strings.Builder
	for _, p := range slices.Sorted(maps.Keys(h)) {
		fmt.Fprintf(&b, "\n%s:\n   %s", p, strings.Join(h[p], "\n   "))
	}
	return b.String()
}

// recordPlace is where a record is: topic, partition and offset.
type recordPlace struct {
	topic     string
	partition int32
	offset    int64
}

// fetchProbe records, by hooking the runner's session client, the order
// in which input records were first fetched.
type fetchProbe struct {
	mu      sync.Mutex
	seen    map[recordPlace]bool
	fetched []*kgo.Record // first fetches, in order
}

// OnFetchRecordBuffered implements kgo.HookFetchRecordBuffered.
func (p *fetchProbe) OnFetchRecordBuffered(r *kgo.Record) {
	if r.Attrs.IsControl() {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	at := recordPlace{r.Topic, r.Partition, r.Offset}
	if !p.seen[at] { // records queued at a commit are fetched again
		p.seen[at] = true
		p.fetched = append(p.fetched, r)
	}
}

// aheadOfMerge counts the input records fetched before a record of the
// same task that the merge takes first (smaller timestamp, then earlier
// input, then smaller offset): the records the merge had to hold back.
func (p *fetchProbe) aheadOfMerge(inputs []string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	mergeBefore := func(a, b *kgo.Record) bool {
		if c := a.Timestamp.Compare(b.Timestamp); c != 0 {
			return c < 0
		}
		if ai, bi := slices.Index(inputs, a.Topic), slices.Index(inputs, b.Topic); ai != bi {
			return ai < bi
		}
		return a.Offset < b.Offset
	}
	n := 0
	for i, r := range p.fetched {
		for _, later := range p.fetched[i+1:] {
			if later.Partition == r.Partition && slices.Contains(inputs, later.Topic) && mergeBefore(later, r) {
				n++
				break
			}
		}
	}
	return n
}
