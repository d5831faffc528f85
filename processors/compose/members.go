package compose

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"

	"github.com/factory2/factory2/avro"
	"github.com/factory2/factory2/processors"
	"github.com/factory2/factory2/topics"
)

// MembersName is the name of the processor that follows builds (keyed by
// NVR) and sends each change to the composes it concerns.
const MembersName = "compose-members"

// StoreBuilds holds the compose-members processor's state: per build its
// state, tags, signatures and gating decisions ("b" keys), the
// definitions' source tags ("d" keys) and an index of tagged builds per
// tag ("t" keys).
const StoreBuilds = "builds"

// Key prefixes of StoreBuilds.
const (
	prefixBuild    = "b\x00"
	prefixDef      = "d\x00"
	prefixTagIndex = "t\x00"
)

// MembersSpec returns the runtime spec of the compose-members processor.
// It reads the gating processor's build views (topics.GatingBuilds) and
// decisions (for the gating decisions of composes), keyed by NVR or
// compose id, and the compose definitions, of which every partition of
// topics.ComposeDefinitions holds a copy. It writes a ComposeMember for
// every (compose, build) whose build changed and is or was in one of the
// compose's source tags, and forwards the gating decisions of composes,
// all to topics.ComposeMembers keyed by compose id.
//
// It reads no raw event: every input is written by another processor's
// task of the same partition (or, for definitions, is rare), so the merge
// of its inputs is the same live and in a replay.
func MembersSpec(cat *topics.Catalog) processors.Spec {
	m := &Members{out: cat.Name(topics.ComposeMembers)}
	return processors.Spec{
		Name: MembersName,
		Inputs: []string{
			cat.Name(topics.GatingBuilds),
			cat.Name(topics.DecisionsGating),
			cat.Name(topics.ComposeDefinitions),
		},
		Outputs: []string{m.out},
		Stores:  []string{StoreBuilds},
		New:     func(int32) processors.Processor { return m },
	}
}

// Members is the compose-members processor. It keeps nothing between
// records, so one value serves every task.
type Members struct {
	out string
}

// build is the latest view of one build, and how many there were.
type build struct {
	NVR        string              `json:"nvr"`
	Package    string              `json:"package"`
	BuildID    int64               `json:"build_id,omitempty"`
	State      string              `json:"state,omitempty"`
	Seq        int64               `json:"seq"`
	Tags       []avro.MemberTag    `json:"tags,omitempty"`
	SignedKeys []string            `json:"signed_keys,omitempty"`
	Gating     []avro.MemberGating `json:"gating,omitempty"`
}

// Process implements processors.Processor.
func (m *Members) Process(c *processors.Context, in *processors.Input) error {
	switch r := in.Record.(type) {
	case *avro.ComposeEvent:
		return m.definition(c, in, r)
	case *avro.GatingDecision:
		if r.SubjectID != string(in.Key) {
			return processors.Reject("compose-members: gating decision key %q is not its subject %q", in.Key, r.SubjectID)
		}
		if r.SubjectType == "compose" {
			// Same key, same partition count: it reaches the task of
			// the compose processor that owns the compose.
			c.Emit(m.out, in.Key, r)
		}
		return nil // a build's decisions come in its view
	case *avro.ComposeMember:
		if r.NVR != string(in.Key) || r.ComposeID != "" {
			return processors.Reject("compose-members: build view key %q is not its NVR %q (compose %q)", in.Key, r.NVR, r.ComposeID)
		}
		return m.view(c, r)
	}
	return processors.Reject("compose-members: unexpected record %s on %s", in.Record.SchemaName(), in.Topic)
}

// view records a build's new view and sends it to every compose whose
// source tags hold the build now or held it before.
func (m *Members) view(c *processors.Context, v *avro.ComposeMember) error {
	b, err := loadBuild(c, v.NVR)
	if err != nil {
		return err
	}
	before := b.Tags
	*b = build{NVR: v.NVR, Package: v.Package, BuildID: v.BuildID, State: v.State, Seq: b.Seq + 1,
		Tags: v.Tags, SignedKeys: v.SignedKeys, Gating: v.Gating}
	if b.Package == "" {
		b.Package = avro.PackageOf(b.NVR)
	}
	if err := storeBuild(c, b); err != nil {
		return err
	}
	if err := indexTags(c, b.NVR, before, b.Tags); err != nil {
		return err
	}
	defs, err := loadDefTags(c)
	if err != nil {
		return err
	}
	for _, id := range defs.order {
		tags := defs.tags[id]
		if hasAnyTag(b.Tags, tags) || hasAnyTag(before, tags) {
			m.emit(c, id, b, &v.Envelope)
		}
	}
	return nil
}

func hasAnyTag(have []avro.MemberTag, want []string) bool {
	for _, t := range have {
		if slices.Contains(want, t.Tag) {
			return true
		}
	}
	return false
}

// emit sends the snapshot of b to compose id. Its envelope derives from
// the trigger, so a replay sends the same record.
func (m *Members) emit(c *processors.Context, id string, b *build, trigger *avro.Envelope) {
	rec := &avro.ComposeMember{
		Envelope: avro.Envelope{
			ID:         envelopeID("member", id, b.NVR, strconv.FormatInt(b.Seq, 10), trigger.ID),
			Source:     "factory2/" + MembersName,
			EventTime:  trigger.EventTime,
			IngestTime: trigger.IngestTime,
			Origin:     trigger.Origin,
		},
		ComposeID:  id,
		NVR:        b.NVR,
		Package:    b.Package,
		BuildID:    b.BuildID,
		State:      b.State,
		Seq:        b.Seq,
		Tags:       b.Tags,
		SignedKeys: b.SignedKeys,
		Gating:     b.Gating,
	}
	c.Emit(m.out, []byte(id), rec)
}

// definition records a compose's source tags and sends the compose every
// build of a tag it did not cover before (a new compose gets them all).
func (m *Members) definition(c *processors.Context, in *processors.Input, e *avro.ComposeEvent) error {
	if e.Kind != avro.ComposeDefinition || e.ComposeID == "" {
		return processors.Reject("compose-members: %s event for %q on the definitions topic", e.Kind, e.ComposeID)
	}
	defs, err := loadDefTags(c)
	if err != nil {
		return err
	}
	old := defs.tags[e.ComposeID]
	key := []byte(prefixDef + e.ComposeID)
	if e.Retired {
		// A retired compose decides nothing: no marker.
		delete(defs.tags, e.ComposeID)
		defs.order = slices.DeleteFunc(defs.order, func(id string) bool { return id == e.ComposeID })
		return c.Delete(StoreBuilds, key)
	}
	v, _ := json.Marshal(e.SourceTags)
	if err := c.Put(StoreBuilds, key, v); err != nil {
		return err
	}
	if _, ok := defs.tags[e.ComposeID]; !ok {
		i, _ := slices.BinarySearch(defs.order, e.ComposeID)
		defs.order = slices.Insert(defs.order, i, e.ComposeID)
	}
	defs.tags[e.ComposeID] = slices.Clone(e.SourceTags)
	sent := map[string]bool{}
	for _, tag := range e.SourceTags {
		if slices.Contains(old, tag) {
			continue
		}
		var nvrs []string
		lower := []byte(prefixTagIndex + tag + "\x00")
		upper := []byte(prefixTagIndex + tag + "\x01")
		if err := c.Scan(StoreBuilds, lower, upper, func(k, _ []byte) error {
			nvrs = append(nvrs, string(k[len(lower):]))
			return nil
		}); err != nil {
			return &processors.StorageError{Err: err}
		}
		for _, nvr := range nvrs {
			if sent[nvr] {
				continue
			}
			sent[nvr] = true
			b, err := loadBuild(c, nvr)
			if err != nil {
				return err
			}
			m.emit(c, e.ComposeID, b, &e.Envelope)
		}
	}
	// The marker follows the builds in the same partition of the
	// members topic: once the compose has every partition's marker, it
	// has every build the definition selects.
	c.Emit(m.out, in.Key, &avro.ComposeMember{
		Envelope: avro.Envelope{
			ID:         envelopeID("loaded", e.ComposeID, e.ID, strconv.Itoa(int(c.Partition()))),
			Source:     "factory2/" + MembersName,
			EventTime:  e.EventTime,
			IngestTime: e.IngestTime,
			Origin:     e.Origin,
		},
		ComposeID:    e.ComposeID,
		DefinitionID: e.ID,
		Partition:    c.Partition(),
	})
	return nil
}

// defTags is the compose definitions' source tags, read once per
// transaction.
type defTags struct {
	tags  map[string][]string
	order []string // compose ids, sorted: the order snapshots are sent in
}

const txnDefs = "\x00compose-defs"

func loadDefTags(c *processors.Context) (*defTags, error) {
	if d, ok := c.TxnCache()[txnDefs].(*defTags); ok {
		return d, nil
	}
	d := &defTags{tags: map[string][]string{}}
	lower, upper := []byte(prefixDef), []byte("d\x01")
	err := c.Scan(StoreBuilds, lower, upper, func(k, v []byte) error {
		var tags []string
		if err := json.Unmarshal(v, &tags); err != nil {
			return fmt.Errorf("compose-members: definition %q: %w", k[len(lower):], err)
		}
		id := string(k[len(lower):])
		d.tags[id] = tags
		d.order = append(d.order, id)
		return nil
	})
	if err != nil {
		return nil, err
	}
	c.TxnCache()[txnDefs] = d
	return d, nil
}

func loadBuild(c *processors.Context, nvr string) (*build, error) {
	v, ok, err := c.Get(StoreBuilds, []byte(prefixBuild+nvr))
	if err != nil {
		return nil, err
	}
	b := &build{NVR: nvr, Package: avro.PackageOf(nvr)}
	if ok {
		if err := json.Unmarshal(v, b); err != nil {
			return nil, fmt.Errorf("compose-members: build %s: %w", nvr, err)
		}
	}
	return b, nil
}

func storeBuild(c *processors.Context, b *build) error {
	v, err := json.Marshal(b)
	if err != nil {
		return err
	}
	return c.Put(StoreBuilds, []byte(prefixBuild+b.NVR), v)
}

// indexTags updates the tag index of nvr from tags before to after.
func indexTags(c *processors.Context, nvr string, before, after []avro.MemberTag) error {
	for _, t := range before {
		if !slices.ContainsFunc(after, func(a avro.MemberTag) bool { return a.Tag == t.Tag }) {
			if err := c.Delete(StoreBuilds, []byte(prefixTagIndex+t.Tag+"\x00"+nvr)); err != nil {
				return err
			}
		}
	}
	for _, t := range after {
		if !slices.ContainsFunc(before, func(b avro.MemberTag) bool { return b.Tag == t.Tag }) {
			if err := c.Put(StoreBuilds, []byte(prefixTagIndex+t.Tag+"\x00"+nvr), nil); err != nil {
				return err
			}
		}
	}
	return nil
}

// ValidateState implements processors.StateValidator.
func (m *Members) ValidateState(store string, key, value []byte) error {
	switch {
	case bytes.HasPrefix(key, []byte(prefixBuild)):
		var b build
		if err := json.Unmarshal(value, &b); err != nil {
			return err
		}
		if b.NVR != string(key[len(prefixBuild):]) {
			return fmt.Errorf("build %q stored under %q", b.NVR, key)
		}
	case bytes.HasPrefix(key, []byte(prefixDef)):
		var tags []string
		return json.Unmarshal(value, &tags)
	case bytes.HasPrefix(key, []byte(prefixTagIndex)):
		if len(value) != 0 {
			return fmt.Errorf("tag index entry %q has a value", key)
		}
	default:
		return fmt.Errorf("unknown key %q", key)
	}
	return nil
}

// envelopeID is the id of a derived record: a hash of its parts.
func envelopeID(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}
