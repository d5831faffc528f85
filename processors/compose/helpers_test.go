package compose

import (
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/factory2/factory2/avro"
	"github.com/factory2/factory2/processors"
	"github.com/factory2/factory2/state"
	"github.com/factory2/factory2/topics"
)

// pipeline runs the two compose processors in memory the way the runtime
// chains them through the internal topics: one compose-members task per
// partition (records keyed by NVR go to the task of their key's hash), one
// compose task (every compose). Every input is one transaction of its
// task, and what it sends on is processed next, in order.
type pipeline struct {
	t        testing.TB
	cat      *topics.Catalog
	members  []*memTask
	compose  *memTask
	clock    time.Time
	seq      int
	rejected []string
	// decisions are the compose processor's decisions, in order.
	decisions []*avro.ComposeReadyDecision
	// views are the builds' views, as the gating processor keeps them.
	views map[string]*avro.ComposeMember
}

type memTask struct {
	db        *state.DB
	p         processors.Processor
	partition int32
}

func newPipeline(t testing.TB) *pipeline {
	t.Helper()
	cat, err := topics.New(topics.Config{})
	if err != nil {
		t.Fatal(err)
	}
	open := func(dir string, p processors.Processor) *memTask {
		db, err := state.Open(state.Options{Dir: dir, FS: vfs.NewMem()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = db.Close() })
		return &memTask{db: db, p: p}
	}
	return &pipeline{
		t:   t,
		cat: cat,
		members: func() []*memTask {
			spec := MembersSpec(cat)
			defs, _ := cat.Lookup(topics.ComposeDefinitions)
			var ts []*memTask
			for p := range defs.Partitions {
				k := open(fmt.Sprint("members", p), spec.New(p))
				k.partition = p
				ts = append(ts, k)
			}
			return ts
		}(),
		compose: open("compose", Spec(cat).New(0)),
		clock:   time.Date(2026, 11, 2, 12, 0, 0, 0, time.UTC),
	}
}

// tick advances the pipeline's clock (the inputs' timestamps).
func (pl *pipeline) tick(d time.Duration) { pl.clock = pl.clock.Add(d) }

type queued struct {
	topic     string
	key       string
	rec       avro.Record
	ts        time.Time
	partition int32 // of a copy of a definition
}

// send processes r (an input of either processor, by its topic) and
// everything it causes, and returns the compose decisions it caused.
func (pl *pipeline) send(topic, key string, r avro.Record) []*avro.ComposeReadyDecision {
	pl.t.Helper()
	pl.tick(time.Millisecond)
	n := len(pl.decisions)
	queue := []queued{{topic: pl.cat.Name(topic), key: key, rec: r, ts: pl.clock}}
	for len(queue) > 0 {
		q := queue[0]
		queue = queue[1:]
		var task *memTask
		switch q.topic {
		case pl.cat.Name(topics.EventsCompose), pl.cat.Name(topics.ComposeMembers):
			task = pl.compose
		case pl.cat.Name(topics.ComposeDefinitions):
			task = pl.members[q.partition]
		default:
			h := fnv.New32a()
			h.Write([]byte(q.key))
			task = pl.members[h.Sum32()%uint32(len(pl.members))]
		}
		outs := pl.txn(task, func(c *processors.Context) error {
			return task.p.Process(c, &processors.Input{Topic: q.topic, Key: []byte(q.key), Timestamp: q.ts, Record: q.rec})
		})
		queue = append(queue, pl.route(outs, q.ts)...)
	}
	return pl.decisions[n:]
}

// route records the decisions of outs and returns what goes on.
func (pl *pipeline) route(outs []processors.Output, ts time.Time) []queued {
	var next []queued
	for _, o := range outs {
		switch o.Topic {
		case pl.cat.Name(topics.DecisionsComposeReady):
			pl.decisions = append(pl.decisions, o.Record.(*avro.ComposeReadyDecision))
		case pl.cat.Name(topics.ComposeDefinitions):
			next = append(next, queued{o.Topic, string(o.Key), o.Record, ts, o.Partition})
		case pl.cat.Name(topics.ComposeMembers):
			next = append(next, queued{topic: o.Topic, key: string(o.Key), rec: o.Record, ts: ts})
		default:
			pl.t.Fatalf("output to unexpected topic %s", o.Topic)
		}
	}
	return next
}

// punctuate runs the compose processor's punctuation at now.
func (pl *pipeline) punctuate(now time.Time) []*avro.ComposeReadyDecision {
	pl.t.Helper()
	n := len(pl.decisions)
	outs := pl.txn(pl.compose, func(c *processors.Context) error {
		_, err := pl.compose.p.(processors.Punctuator).Punctuate(c, now)
		return err
	})
	if next := pl.route(outs, now); len(next) > 0 {
		pl.t.Fatalf("punctuation sent %d records on", len(next))
	}
	return pl.decisions[n:]
}

// txn runs fn in one transaction of task and commits it. A rejection is
// recorded and its outputs dropped, as the runtime does.
func (pl *pipeline) txn(task *memTask, fn func(c *processors.Context) error) []processors.Output {
	pl.t.Helper()
	b := task.db.NewBatch()
	defer b.Close()
	var outs []processors.Output
	c := processors.NewContext(task.partition, b, func(o processors.Output) { outs = append(outs, o) })
	err := fn(c)
	var rej *processors.RejectError
	if errors.As(err, &rej) {
		pl.rejected = append(pl.rejected, rej.Reason)
		return nil
	}
	if err != nil {
		pl.t.Fatalf("process: %v", err)
	}
	if f, ok := task.p.(processors.Flusher); ok {
		if err := f.Flush(c); err != nil {
			pl.t.Fatal(err)
		}
	}
	if err := task.db.Commit(b); err != nil {
		pl.t.Fatal(err)
	}
	return outs
}

func (pl *pipeline) env(source string) avro.Envelope {
	pl.seq++
	return avro.Envelope{ID: fmt.Sprintf("%s-%d", source, pl.seq), Source: source, EventTime: pl.clock, IngestTime: pl.clock}
}

// Event helpers.

func (pl *pipeline) define(id string, tags []string, mod ...func(*avro.ComposeEvent)) []*avro.ComposeReadyDecision {
	e := &avro.ComposeEvent{Envelope: pl.env("factory2/config"), Kind: avro.ComposeDefinition, ComposeID: id,
		SourceTags: tags, SigningKey: "key42", DecisionContexts: []string{"ctx"}}
	for _, f := range mod {
		f(e)
	}
	return pl.send(topics.EventsCompose, id, e)
}

// The build helpers change a build's view as the gating processor keeps
// it and send the view, as the gating processor does on every change.

func (pl *pipeline) sendView(nvr string, change func(v *avro.ComposeMember)) []*avro.ComposeReadyDecision {
	if pl.views == nil {
		pl.views = map[string]*avro.ComposeMember{}
	}
	v := pl.views[nvr]
	if v == nil {
		v = &avro.ComposeMember{NVR: nvr, Package: avro.PackageOf(nvr)}
		pl.views[nvr] = v
	}
	change(v)
	out := *v
	out.Envelope = pl.env("factory2/gating")
	out.Tags, out.SignedKeys, out.Gating = slices.Clone(v.Tags), slices.Clone(v.SignedKeys), slices.Clone(v.Gating)
	return pl.send(topics.GatingBuilds, nvr, &out)
}

func (pl *pipeline) state(nvr, state string) []*avro.ComposeReadyDecision {
	return pl.sendView(nvr, func(v *avro.ComposeMember) { v.State = state })
}

func (pl *pipeline) tag(nvr, tag string) []*avro.ComposeReadyDecision {
	order := pl.clock.Add(time.Millisecond).UnixMicro() // the time of the event send stamps
	return pl.sendView(nvr, func(v *avro.ComposeMember) {
		v.Tags = slices.DeleteFunc(v.Tags, func(t avro.MemberTag) bool { return t.Tag == tag })
		v.Tags = append(v.Tags, avro.MemberTag{Tag: tag, Order: order, EventID: fmt.Sprint("tag-", order)})
		slices.SortFunc(v.Tags, func(x, y avro.MemberTag) int { return strings.Compare(x.Tag, y.Tag) })
	})
}

func (pl *pipeline) untag(nvr, tag string) []*avro.ComposeReadyDecision {
	return pl.sendView(nvr, func(v *avro.ComposeMember) {
		v.Tags = slices.DeleteFunc(v.Tags, func(t avro.MemberTag) bool { return t.Tag == tag })
	})
}

func (pl *pipeline) signed(nvr, key string, signed bool) []*avro.ComposeReadyDecision {
	return pl.sendView(nvr, func(v *avro.ComposeMember) {
		v.SignedKeys = slices.DeleteFunc(v.SignedKeys, func(k string) bool { return k == key })
		if signed {
			v.SignedKeys = append(v.SignedKeys, key)
			slices.Sort(v.SignedKeys)
		}
	})
}

// gated records a gating decision for nvr in context ctx: satisfied, or
// failed (pending false) or waiting for a test (pending true).
func (pl *pipeline) gated(nvr, ctx string, satisfied, pending bool) []*avro.ComposeReadyDecision {
	pl.seq++
	g := avro.MemberGating{DecisionContext: ctx, ProductVersion: "fedora-42", Satisfied: satisfied,
		Pending: !satisfied && pending, DecisionID: fmt.Sprint("decision-", pl.seq)}
	switch {
	case satisfied:
		g.Summary = "All required tests passed"
	case pending:
		g.Summary = "1 of 1 required test results missing"
	default:
		g.Summary = "1 of 1 required tests failed"
	}
	return pl.sendView(nvr, func(v *avro.ComposeMember) {
		v.Gating = slices.DeleteFunc(v.Gating, func(x avro.MemberGating) bool { return x.DecisionContext == ctx })
		v.Gating = append(v.Gating, g)
	})
}

// good makes nvr complete, tagged in tag, signed with key42 and gated in
// ctx, and returns the decisions of the last step.
func (pl *pipeline) good(nvr, tag string) []*avro.ComposeReadyDecision {
	pl.state(nvr, avro.StateComplete)
	pl.tag(nvr, tag)
	pl.signed(nvr, "key42", true)
	return pl.gated(nvr, "ctx", true, false)
}

// kinds returns the kinds of ds, with "+"/"-" for ready or not.
func kinds(ds []*avro.ComposeReadyDecision) []string {
	var out []string
	for _, d := range ds {
		s := d.Kind
		if d.Ready {
			s += "+"
		} else {
			s += "-"
		}
		out = append(out, s)
	}
	return out
}

func manifestNVRs(d *avro.ComposeReadyDecision) []string {
	var out []string
	for _, e := range d.Manifest {
		out = append(out, e.NVR)
	}
	return out
}
