package processors

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"slices"

	"github.com/factory2/factory2/avro"
)

// DiffEntry is one difference between re-derived and emitted outputs.
type DiffEntry struct {
	// Change is "add" (re-derived, never emitted), "remove" (emitted, not
	// re-derived) or "change" (same id, different content).
	Change string `json:"change"`
	Topic  string `json:"topic"`
	Key    string `json:"key"`
	ID     string `json:"id"`
}

// Diff compares re-derived outputs with the records already committed to
// the given topics, matching them by envelope id (decision ids are
// deterministic) and comparing their encodings. It is what Apply
// publishes by (the "add" entries); Compare is the same comparison made
// for people.
func Diff(ctx context.Context, cfg Config, outputs []Output, topics []string) ([]DiffEntry, error) {
	d, err := diffRecords(ctx, cfg, outputs, topics)
	if err != nil {
		return nil, err
	}
	var out []DiffEntry
	for _, c := range d.changed {
		out = append(out, DiffEntry{"change", c.before.topic, c.before.key, c.before.rec.Env().ID})
	}
	for _, r := range d.removed {
		out = append(out, DiffEntry{"remove", r.topic, r.key, r.rec.Env().ID})
	}
	for _, r := range d.added {
		out = append(out, DiffEntry{"add", r.topic, r.key, r.rec.Env().ID})
	}
	// Emitted records in log order (changes and removals among them),
	// then additions in re-derived order, as Diff always listed them.
	slices.SortStableFunc(out[:len(d.changed)+len(d.removed)], func(a, b DiffEntry) int {
		return cmp.Compare(d.order[a.ID], d.order[b.ID])
	})
	return out, nil
}

// diffRecord is one output of a diff: its topic, key, decoded record and
// encoding.
type diffRecord struct {
	topic, key string
	rec        avro.Record
	value      []byte
}

// recordDiff is diffRecords' answer.
type recordDiff struct {
	// changed pairs an emitted record (before) with the re-derived one of
	// the same id (after) whose encoding differs.
	changed []struct{ before, after diffRecord }
	// removed are emitted and not re-derived, in log order; added
	// re-derived and never emitted, in re-derived order.
	removed, added []diffRecord
	// identical counts the records emitted and re-derived alike.
	identical int
	// order is the position of each emitted id in the log.
	order map[string]int
}

func diffRecords(ctx context.Context, cfg Config, outputs []Output, topics []string) (*recordDiff, error) {
	cfg.setDefaults()
	want := map[string]diffRecord{}
	var order []string
	for _, o := range outputs {
		v, err := cfg.Codec.Encode(o.Record)
		if err != nil {
			return nil, err
		}
		id := o.Record.Env().ID
		if _, dup := want[id]; !dup {
			order = append(order, id)
		}
		want[id] = diffRecord{o.Topic, string(o.Key), o.Record, v}
	}
	have, err := ReadCommitted(ctx, cfg.Brokers, topics, cfg.ClientOpts...)
	if err != nil {
		return nil, err
	}
	d := &recordDiff{order: map[string]int{}}
	seen := map[string]bool{}
	for _, r := range have {
		v, err := cfg.Codec.Decode(r.Value)
		if err != nil {
			continue
		}
		id := v.Env().ID
		seen[id] = true
		d.order[id] = len(d.order)
		got := diffRecord{r.Topic, string(r.Key), v, r.Value}
		w, ok := want[id]
		switch {
		case !ok:
			d.removed = append(d.removed, got)
		case !bytes.Equal(w.value, r.Value):
			d.changed = append(d.changed, struct{ before, after diffRecord }{got, w})
		default:
			d.identical++
		}
	}
	for _, id := range order {
		if !seen[id] {
			d.added = append(d.added, want[id])
		}
	}
	return d, nil
}

// Kinds of Change.
const (
	// ChangeChanged pairs an emitted decision with the re-derived one that
	// takes its place and says something else.
	ChangeChanged = "changed"
	// ChangeNew is a re-derived decision that takes no emitted one's
	// place.
	ChangeNew = "new"
	// ChangeGone is an emitted decision no re-derived one takes the place
	// of.
	ChangeGone = "gone"
)

// Change is one difference, for people, between the decisions a
// processor emitted and those a re-derivation makes.
type Change struct {
	// Change is ChangeChanged, ChangeNew or ChangeGone.
	Change string
	Topic  string
	Key    string
	// About names what the decisions decide beyond their key: the decision
	// kind and its decision context and product version, or key id (see
	// Compare), e.g. "gating koji_build bodhi_update_push_stable fedora-42".
	About string
	// Before is the emitted decision (nil when new), After the re-derived
	// one (nil when gone).
	Before, After avro.Record
	// Gained are the requirements After has and Before lacks, Lost the
	// reverse (a changed decision's only).
	Gained, Lost []RequirementChange
}

// RequirementChange is a requirement a decision gained or lost, satisfied
// or not.
type RequirementChange struct {
	Satisfied bool `json:"satisfied"`
	avro.Requirement
}

// MarshalJSON writes c as {"change","topic","key","about","before",
// "after","gained","lost"}, the records in the form of avro.MarshalJSON.
func (c Change) MarshalJSON() ([]byte, error) {
	rec := func(r avro.Record) (json.RawMessage, error) {
		if r == nil {
			return json.RawMessage("null"), nil
		}
		return avro.MarshalJSON(r)
	}
	before, err := rec(c.Before)
	if err != nil {
		return nil, err
	}
	after, err := rec(c.After)
	if err != nil {
		return nil, err
	}
	return json.Marshal(struct {
		Change string              `json:"change"`
		Topic  string              `json:"topic"`
		Key    string              `json:"key"`
		About  string              `json:"about"`
		Before json.RawMessage     `json:"before"`
		After  json.RawMessage     `json:"after"`
		Gained []RequirementChange `json:"gained,omitempty"`
		Lost   []RequirementChange `json:"lost,omitempty"`
	}{c.Change, c.Topic, c.Key, c.About, before, after, c.Gained, c.Lost})
}

// Comparison is Compare's answer.
type Comparison struct {
	// Changes are sorted by key (subject), event time, topic and About:
	// each subject's history in order.
	Changes []Change
	// Reidentified counts the pairs that differ only in identity: ids,
	// policy version, provenance, times. A policy change re-identifies
	// every decision of the processor, since the policy version is part
	// of a decision's id.
	Reidentified int
	// Identical counts the decisions emitted and re-derived alike.
	Identical int
}

// Compare compares re-derived outputs with the records already committed
// to the given topics, as Diff does, and pairs what Diff lists apart: an
// emitted decision (removed) and a re-derived one (added) about the same
// thing — same topic, key and About: the decision's kind and its decision
// context and product version (gating), key id (autosign, signed), kind,
// decision context and product version (compose decisions), or trigger
// and relation (rebuild) — are one change, before → after. Within one
// such group, decisions made at the same event time are paired first,
// then the rest in order; what is left is new or gone. A pair that
// differs only in identity is counted, not listed.
func Compare(ctx context.Context, cfg Config, outputs []Output, topics []string) (*Comparison, error) {
	d, err := diffRecords(ctx, cfg, outputs, topics)
	if err != nil {
		return nil, err
	}
	return pairChanges(d), nil
}

// pairChanges is Compare once the records are read.
func pairChanges(d *recordDiff) *Comparison {
	res := &Comparison{Identical: d.identical}
	pair := func(before, after diffRecord) {
		if sameMeaning(before.rec, after.rec) {
			res.Reidentified++
			return
		}
		c := Change{Change: ChangeChanged, Topic: after.topic, Key: after.key, About: about(after.rec), Before: before.rec, After: after.rec}
		c.Gained, c.Lost = requirementChanges(before.rec, after.rec)
		res.Changes = append(res.Changes, c)
	}
	for _, c := range d.changed {
		pair(c.before, c.after)
	}

	type group struct{ removed, added []diffRecord }
	groups := map[[3]string]*group{}
	var keys [][3]string
	at := func(r diffRecord) *group {
		k := [3]string{r.topic, r.key, about(r.rec)}
		if groups[k] == nil {
			groups[k] = &group{}
			keys = append(keys, k)
		}
		return groups[k]
	}
	for _, r := range d.removed {
		g := at(r)
		g.removed = append(g.removed, r)
	}
	for _, r := range d.added {
		g := at(r)
		g.added = append(g.added, r)
	}
	for _, k := range keys {
		g := groups[k]
		// Same event time first: the decisions the same event made.
		for i := 0; i < len(g.removed); i++ {
			t := g.removed[i].rec.Env().EventTime
			j := slices.IndexFunc(g.added, func(a diffRecord) bool { return a.rec.Env().EventTime.Equal(t) })
			if j < 0 {
				continue
			}
			pair(g.removed[i], g.added[j])
			g.removed = slices.Delete(g.removed, i, i+1)
			g.added = slices.Delete(g.added, j, j+1)
			i--
		}
		n := min(len(g.removed), len(g.added))
		for i := range n {
			pair(g.removed[i], g.added[i])
		}
		for _, r := range g.removed[n:] {
			res.Changes = append(res.Changes, Change{Change: ChangeGone, Topic: r.topic, Key: r.key, About: k[2], Before: r.rec})
		}
		for _, r := range g.added[n:] {
			res.Changes = append(res.Changes, Change{Change: ChangeNew, Topic: r.topic, Key: r.key, About: k[2], After: r.rec})
		}
	}
	slices.SortStableFunc(res.Changes, compareChanges)
	return res
}

func compareChanges(a, b Change) int {
	when := func(c Change) int64 {
		r := c.After
		if r == nil {
			r = c.Before
		}
		return r.Env().EventTime.UnixNano()
	}
	return cmp.Or(cmp.Compare(a.Key, b.Key), cmp.Compare(when(a), when(b)), cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.About, b.About))
}

// about names what a decision decides beyond its key (see Compare).
func about(r avro.Record) string {
	join := func(parts ...string) string {
		var b []byte
		for _, p := range parts {
			if p == "" {
				continue
			}
			if len(b) > 0 {
				b = append(b, ' ')
			}
			b = append(b, p...)
		}
		return string(b)
	}
	switch d := r.(type) {
	case *avro.GatingDecision:
		return join("gating", d.SubjectType, d.DecisionContext, d.ProductVersion)
	case *avro.AutosignDecision:
		return join("autosign", d.KeyID)
	case *avro.SignedStatus:
		return join("signed", d.KeyID)
	case *avro.ComposeReadyDecision:
		return join("compose", d.Kind, d.DecisionContext, d.ProductVersion)
	case *avro.RebuildDecision:
		return join("rebuild", d.TriggerType, d.TriggerID, d.Relation)
	}
	if n := avro.TypeName(r); n != "" {
		return n
	}
	return r.SchemaName()
}

// decisionOf returns the part every decision carries, or nil for a
// record that is no decision.
func decisionOf(r avro.Record) *avro.Decision {
	switch d := r.(type) {
	case *avro.GatingDecision:
		return &d.Decision
	case *avro.AutosignDecision:
		return &d.Decision
	case *avro.SignedStatus:
		return &d.Decision
	case *avro.ComposeReadyDecision:
		return &d.Decision
	case *avro.RebuildDecision:
		return &d.Decision
	}
	return nil
}

// requirementChanges returns the requirements after has and before lacks
// (gained), and the reverse (lost), satisfied ones first.
func requirementChanges(before, after avro.Record) (gained, lost []RequirementChange) {
	b, a := decisionOf(before), decisionOf(after)
	if b == nil || a == nil {
		return nil, nil
	}
	missing := func(from, in []avro.Requirement, satisfied bool) []RequirementChange {
		var out []RequirementChange
		for _, q := range from {
			if !slices.Contains(in, q) {
				out = append(out, RequirementChange{satisfied, q})
			}
		}
		return out
	}
	gained = append(missing(a.Satisfied, b.Satisfied, true), missing(a.Unsatisfied, b.Unsatisfied, false)...)
	lost = append(missing(b.Satisfied, a.Satisfied, true), missing(b.Unsatisfied, a.Unsatisfied, false)...)
	return gained, lost
}

// identityFields are the JSON fields of a record that identify it or say
// where it came from, not what it says: its envelope, policy version and
// provenance, and the ids of the decisions it refers to.
var identityFields = map[string]bool{
	"id": true, "source": true, "event_time": true, "ingest_time": true, "origin": true,
	"policy_version": true, "derived_from": true,
}

// sameMeaning reports whether a and b say the same thing: equal once the
// identity fields are dropped (at the top, and the decision ids nested
// anywhere), an empty list and a missing one alike.
func sameMeaning(a, b avro.Record) bool {
	ma, okA := meaning(a)
	mb, okB := meaning(b)
	return okA && okB && bytes.Equal(ma, mb)
}

func meaning(r avro.Record) ([]byte, bool) {
	js, err := avro.MarshalJSON(r)
	if err != nil {
		return nil, false
	}
	var m map[string]any
	if err := json.Unmarshal(js, &m); err != nil {
		return nil, false
	}
	for f := range identityFields {
		delete(m, f)
	}
	// An empty list decodes as null: both say nothing.
	empty := func(v any) bool {
		switch v := v.(type) {
		case nil:
			return true
		case []any:
			return len(v) == 0
		case map[string]any:
			return len(v) == 0
		}
		return false
	}
	var strip func(v any)
	strip = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			delete(v, "decision_id")
			delete(v, "decision_ids")
			for k, x := range v {
				if empty(x) {
					delete(v, k)
					continue
				}
				strip(x)
			}
		case []any:
			for _, x := range v {
				strip(x)
			}
		}
	}
	strip(m)
	out, err := json.Marshal(m) // map keys sorted: canonical
	return out, err == nil
}
