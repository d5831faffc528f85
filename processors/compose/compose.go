package compose

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/factory2/factory2/avro"
	"github.com/factory2/factory2/processors"
	"github.com/factory2/factory2/topics"
)

// Name is the name of the compose processor (keyed by compose id).
const Name = "compose"

// StoreComposes holds the compose processor's state; see the key prefixes.
const StoreComposes = "composes"

// Key prefixes of StoreComposes. Every key but a due entry is
// prefix + compose id [+ "\x00" + NVR or package].
const (
	prefixCompose = "c\x00" // composeState
	prefixMember  = "m\x00" // member: every build the compose was sent
	prefixPackage = "p\x00" // pkg: the candidates of a package, and the one in the content
	prefixBlocker = "x\x00" // a content member with blockers (its blockers, JSON), for listing them in order
	prefixContent = "n\x00" // per package of the content: NVR NUL decision ids (comma separated), for the manifest
	prefixDue     = "q\x00" // empty: q\x00 + due time (16 hex digits, µs) + \x00 + compose id
	prefixGate    = "g\x00" // gate: a Pungi compose's status and gating decisions
)

// MaxListedBlockers bounds the blockers a readiness decision lists; it
// counts them all.
const MaxListedBlockers = 20

// maxReadyDigests is how many recent ready contents a compose remembers:
// content that was declared ready once is not declared ready again while
// it is among them.
const maxReadyDigests = 16

// Requirement types of compose decisions.
const (
	ReqNotComplete = "build-not-complete"
	ReqUnsigned    = "build-unsigned"
	ReqGatingFail  = "gating-failed"
	ReqGatingWait  = "gating-pending"
	ReqNoDecision  = "gating-no-decision"
	ReqEmpty       = "compose-empty"
	ReqLoading     = "compose-loading"
	ReqRetired     = "compose-retired"
	ReqContent     = "compose-content"
	ReqGateMissing = "compose-gating-missing"
	ReqGateFinal   = "compose-failed"
)

// Spec returns the runtime spec of the compose processor: it reads compose
// definitions and Pungi status changes (topics.EventsCompose) and what
// the compose-members processor sends (topics.ComposeMembers), both keyed
// by compose id; it emits compose-ready, readiness and compose gate
// decisions, and copies every definition to each partition of
// topics.ComposeDefinitions for the compose-members processor.
func Spec(cat *topics.Catalog) processors.Spec {
	defs, _ := cat.Lookup(topics.ComposeDefinitions)
	p := &Processor{
		decisions:  cat.Name(topics.DecisionsComposeReady),
		defs:       defs.Name,
		partitions: defs.Partitions,
	}
	return processors.Spec{
		Name:               Name,
		Inputs:             []string{cat.Name(topics.EventsCompose), cat.Name(topics.ComposeMembers)},
		Outputs:            []string{p.decisions, p.defs},
		PartitionedOutputs: []string{p.defs},
		Stores:             []string{StoreComposes},
		New:                func(int32) processors.Processor { return p },
		// Punctuation lets out compose-ready decisions that the cadence
		// held back when no event comes to do it.
		PunctuateEvery: time.Second,
	}
}

// Processor is the compose processor. It keeps nothing between records.
type Processor struct {
	decisions, defs string
	partitions      int32
}

// composeState is one compose: its definition and the running totals of
// its content, kept so that each member change is O(1).
type composeState struct {
	ID  string      `json:"id"`
	Def *definition `json:"def"`
	// Members is the content's size; Blocked the members with blockers;
	// Counts the members per blocker type.
	Members int64            `json:"members"`
	Blocked int64            `json:"blocked"`
	Counts  map[string]int64 `json:"counts,omitempty"`
	// Digest is the XOR of a hash of every (package, NVR) of the
	// content; BlockedDigest the same of every (NVR, blocker types) of
	// the blocked members. Both are updated in O(1).
	Digest        string `json:"digest"`
	BlockedDigest string `json:"blocked_digest"`
	// LastReadiness fingerprints the last readiness decision.
	LastReadiness string `json:"last_readiness,omitempty"`
	// ReadyDigests are the contents last declared ready, newest last.
	ReadyDigests []string `json:"ready_digests,omitempty"`
	LastReadyAt  int64    `json:"last_ready_at,omitempty"` // µs
	LastReadyID  string   `json:"last_ready_id,omitempty"`
	// Due, when not zero, is when the cadence lets the current content
	// out (µs); a due entry indexes it.
	Due int64 `json:"due,omitempty"`
	// Listed are the first blocked content members in NVR order (up to
	// 2×MaxListedBlockers; at least min(MaxListedBlockers, Blocked)
	// unless Refill), with their blockers: what a readiness decision
	// lists, kept so that listing costs no scan per decision. Refill
	// says the list fell short and must be read on from the index.
	Listed []listed `json:"listed,omitempty"`
	Refill bool     `json:"refill,omitempty"`
	// Loaded are the compose-members partitions that have sent every
	// build of the current definition, out of Partitions: until all
	// have, the content is not known to be complete.
	Loaded     []int32 `json:"loaded,omitempty"`
	Partitions int32   `json:"partitions"`

	dirty bool
}

func (cs *composeState) ready() bool {
	return cs.Def != nil && !cs.Def.Retired && cs.loaded() && cs.Members > 0 && cs.Blocked == 0
}

func (cs *composeState) loaded() bool { return int32(len(cs.Loaded)) >= cs.Partitions }

func (cs *composeState) readinessFingerprint() string {
	retired := cs.Def == nil || cs.Def.Retired
	version := ""
	if cs.Def != nil {
		version = cs.Def.Version
	}
	return fmt.Sprint(cs.ready(), retired, cs.loaded(), cs.Members == 0, cs.BlockedDigest, version)
}

// listed is a blocked member of the compose's listing.
type listed struct {
	NVR      string             `json:"nvr"`
	Blockers []avro.Requirement `json:"blockers"`
}

// member is a build as a compose knows it.
type member struct {
	NVR        string              `json:"nvr"`
	Package    string              `json:"package"`
	BuildID    int64               `json:"build_id,omitempty"`
	State      string              `json:"state,omitempty"`
	Seq        int64               `json:"seq"`
	Tags       []avro.MemberTag    `json:"tags,omitempty"`
	SignedKeys []string            `json:"signed_keys,omitempty"`
	Gating     []avro.MemberGating `json:"gating,omitempty"`
	EventID    string              `json:"event_id"`
	// InContent: the build is its package's latest in the source tags.
	InContent bool `json:"in_content,omitempty"`
	// Blockers under the current definition.
	Blockers []avro.Requirement `json:"blockers,omitempty"`
}

// pkg is one package of a compose: the builds tagged in a source tag,
// and the one that is in the content.
type pkg struct {
	Candidates []candidate `json:"candidates"`
	Current    string      `json:"current,omitempty"`
}

type candidate struct {
	NVR   string `json:"nvr"`
	Tag   int    `json:"tag"`   // source tag priority: lower wins
	Order int64  `json:"order"` // tagging order: higher wins
}

// better reports whether x beats y as its package's content: the first
// source tag that has the package, then the latest tagged (Koji's
// "latest"), then the higher NVR.
func better(x, y candidate) bool {
	if x.Tag != y.Tag {
		return x.Tag < y.Tag
	}
	if x.Order != y.Order {
		return x.Order > y.Order
	}
	return x.NVR > y.NVR
}

func (p *pkg) best() string {
	var b *candidate
	for i := range p.Candidates {
		if b == nil || better(p.Candidates[i], *b) {
			b = &p.Candidates[i]
		}
	}
	if b == nil {
		return ""
	}
	return b.NVR
}

// candidate returns m's candidacy for its package under d.
func (d *definition) candidate(m *member) (candidate, bool) {
	if !d.allows(m.Package) {
		return candidate{}, false
	}
	best := candidate{NVR: m.NVR, Tag: -1}
	for _, t := range m.Tags {
		i := d.tagIndex(t.Tag)
		if i < 0 {
			continue
		}
		if best.Tag < 0 || i < best.Tag {
			best.Tag, best.Order = i, t.Order
		}
	}
	return best, best.Tag >= 0
}

// blockers returns what keeps m from being ready under d, in a fixed
// order.
func (d *definition) blockers(m *member) []avro.Requirement {
	var bs []avro.Requirement
	req := func(typ, detail string) avro.Requirement {
		return avro.Requirement{Type: typ, SubjectType: "koji_build", SubjectID: m.NVR, Detail: detail}
	}
	if m.State != avro.StateComplete {
		state := m.State
		if state == "" {
			state = "no state change seen yet"
		}
		bs = append(bs, req(ReqNotComplete, "build state: "+state))
	}
	if d.SigningKey != "" && !slices.Contains(m.SignedKeys, d.SigningKey) {
		bs = append(bs, req(ReqUnsigned, "not signed with key "+d.SigningKey))
	}
	for _, ctx := range d.DecisionContexts {
		g, ok := m.gating(ctx, d.ProductVersion)
		switch {
		case !ok:
			bs = append(bs, req(ReqNoDecision, "no gating decision in context "+ctx))
		case g.Satisfied:
		case g.Pending:
			r := req(ReqGatingWait, ctx+": "+g.Summary)
			r.Pending = true
			r.Source = g.DecisionID
			bs = append(bs, r)
		default:
			r := req(ReqGatingFail, ctx+": "+g.Summary)
			r.Source = g.DecisionID
			bs = append(bs, r)
		}
	}
	return bs
}

// gating returns m's gating decision in context ctx for product version
// pv (any, when pv is empty; then an unsatisfied one wins).
func (m *member) gating(ctx, pv string) (avro.MemberGating, bool) {
	var found avro.MemberGating
	ok := false
	for _, g := range m.Gating {
		if g.DecisionContext != ctx || (pv != "" && g.ProductVersion != pv) {
			continue
		}
		if !ok || (found.Satisfied && !g.Satisfied) {
			found, ok = g, true
		}
	}
	return found, ok
}

func blockerTypes(bs []avro.Requirement) []string {
	var ts []string
	for _, b := range bs {
		if !slices.Contains(ts, b.Type) {
			ts = append(ts, b.Type)
		}
	}
	return ts
}

// Process implements processors.Processor.
func (p *Processor) Process(c *processors.Context, in *processors.Input) error {
	switch r := in.Record.(type) {
	case *avro.ComposeEvent:
		if r.ComposeID != string(in.Key) {
			return processors.Reject("compose: event key %q is not its compose id %q", in.Key, r.ComposeID)
		}
		switch r.Kind {
		case avro.ComposeDefinition:
			return p.definition(c, in, r)
		case avro.ComposeStatusChange:
			return p.status(c, in, r)
		}
		return processors.Reject("compose: unknown compose event kind %q", r.Kind)
	case *avro.ComposeMember:
		if r.ComposeID != string(in.Key) {
			return processors.Reject("compose: member key %q is not its compose id %q", in.Key, r.ComposeID)
		}
		return p.member(c, in, r)
	case *avro.GatingDecision:
		if r.SubjectID != string(in.Key) || r.SubjectType != "compose" {
			return processors.Reject("compose: gating decision of %s %q under key %q", r.SubjectType, r.SubjectID, in.Key)
		}
		return p.gating(c, in, r)
	}
	return processors.Reject("compose: unexpected record %s on %s", in.Record.SchemaName(), in.Topic)
}

// definition applies a compose definition: it is copied to every
// partition of the definitions topic, and a change of what the content
// is or how it is judged re-evaluates every member (the one O(content)
// step, for a rare event).
func (p *Processor) definition(c *processors.Context, in *processors.Input, e *avro.ComposeEvent) error {
	d, err := parseDefinition(e)
	if err != nil {
		return processors.Reject("compose: definition of %s: %v", e.ComposeID, err)
	}
	cs, err := p.compose(c, e.ComposeID)
	if err != nil {
		return err
	}
	if cs.Def != nil && cs.Def.Version == d.Version {
		return nil // unchanged: a duplicate or a re-emitted definition
	}
	for part := range p.partitions {
		c.EmitTo(p.defs, part, in.Key, e)
	}
	rebuild := cs.Def == nil || !cs.Def.sameContentRules(d) || cs.Def.Retired != d.Retired
	cs.Def, cs.dirty = d, true
	cs.Loaded, cs.Partitions = nil, p.partitions
	if rebuild {
		if err := p.rebuild(c, cs); err != nil {
			return err
		}
	}
	return p.settle(c, cs, in.Timestamp, &e.Envelope)
}

// member applies a build's snapshot.
func (p *Processor) member(c *processors.Context, in *processors.Input, r *avro.ComposeMember) error {
	cs, err := p.compose(c, r.ComposeID)
	if err != nil {
		return err
	}
	if cs.Def == nil || cs.Def.Retired {
		return nil // the compose-members processor saw a definition this one has since replaced
	}
	if r.NVR == "" {
		if r.DefinitionID != cs.Def.EventID || slices.Contains(cs.Loaded, r.Partition) {
			return nil // a marker of an older definition, or a repeat
		}
		cs.Loaded, cs.dirty = append(cs.Loaded, r.Partition), true
		slices.Sort(cs.Loaded)
		return p.settle(c, cs, in.Timestamp, &r.Envelope)
	}
	old, err := loadMember(c, cs.ID, r.NVR)
	if err != nil {
		return err
	}
	if old != nil && old.Seq >= r.Seq {
		return nil // a duplicate or an older snapshot
	}
	m := &member{
		NVR: r.NVR, Package: r.Package, BuildID: r.BuildID, State: r.State, Seq: r.Seq,
		Tags: r.Tags, SignedKeys: r.SignedKeys, Gating: r.Gating, EventID: r.ID,
	}
	if m.Package == "" {
		m.Package = avro.PackageOf(m.NVR)
	}
	m.Blockers = cs.Def.blockers(m)
	if err := p.place(c, cs, old, m); err != nil {
		return err
	}
	return p.settle(c, cs, in.Timestamp, &r.Envelope)
}

// place stores m (whose previous version is old, nil if none) and moves
// the compose's totals from the old content of m's package to the new.
func (p *Processor) place(c *processors.Context, cs *composeState, old, m *member) error {
	pk, err := loadPkg(c, cs.ID, m.Package)
	if err != nil {
		return err
	}
	pk.Candidates = slices.DeleteFunc(pk.Candidates, func(x candidate) bool { return x.NVR == m.NVR })
	if cand, ok := cs.Def.candidate(m); ok {
		pk.Candidates = append(pk.Candidates, cand)
		slices.SortFunc(pk.Candidates, func(x, y candidate) int { return strings.Compare(x.NVR, y.NVR) })
	}
	cur := pk.best()
	prev := pk.Current
	if prev != "" && (prev != cur || prev == m.NVR) {
		om := old
		if prev != m.NVR {
			if om, err = loadMember(c, cs.ID, prev); err != nil {
				return err
			}
		}
		if om != nil {
			if err := cs.remove(c, om); err != nil {
				return err
			}
			if om != old {
				om.InContent = false
				if err := storeMember(c, cs.ID, om); err != nil {
					return err
				}
			}
		}
	}
	m.InContent = cur == m.NVR
	if cur != "" && (cur != prev || cur == m.NVR) {
		nm := m
		if cur != m.NVR {
			if nm, err = loadMember(c, cs.ID, cur); err != nil {
				return err
			}
		}
		if nm != nil {
			nm.InContent = true
			if err := cs.add(c, nm, cs.Def); err != nil {
				return err
			}
			if nm != m {
				if err := storeMember(c, cs.ID, nm); err != nil {
					return err
				}
			}
		}
	}
	if pk.Current != cur || len(pk.Candidates) > 0 || prev != "" {
		pk.Current = cur
		if err := storePkg(c, cs.ID, m.Package, pk); err != nil {
			return err
		}
	}
	return storeMember(c, cs.ID, m)
}

// add counts content member m in the compose's totals and indexes.
func (cs *composeState) add(c *processors.Context, m *member, d *definition) error {
	cs.dirty = true
	cs.Members++
	cs.Digest = xorHash(cs.Digest, m.Package, m.NVR)
	if err := c.Put(StoreComposes, []byte(prefixContent+cs.ID+"\x00"+m.Package), contentEntry(m, d)); err != nil {
		return err
	}
	if len(m.Blockers) == 0 {
		return nil
	}
	cs.Blocked++
	types := blockerTypes(m.Blockers)
	cs.BlockedDigest = xorHash(cs.BlockedDigest, append([]string{m.NVR}, types...)...)
	if cs.Counts == nil {
		cs.Counts = map[string]int64{}
	}
	for _, t := range types {
		cs.Counts[t]++
	}
	// Into the listing if it belongs among the first ones.
	i, _ := slices.BinarySearchFunc(cs.Listed, m.NVR, func(l listed, nvr string) int { return strings.Compare(l.NVR, nvr) })
	if i < len(cs.Listed) || (len(cs.Listed) < 2*MaxListedBlockers && !cs.Refill && int64(len(cs.Listed)) == cs.Blocked-1) {
		cs.Listed = slices.Insert(cs.Listed, i, listed{NVR: m.NVR, Blockers: m.Blockers})
		if len(cs.Listed) > 2*MaxListedBlockers {
			cs.Listed = cs.Listed[:2*MaxListedBlockers]
		}
	}
	v, err := json.Marshal(m.Blockers)
	if err != nil {
		return err
	}
	return c.Put(StoreComposes, []byte(prefixBlocker+cs.ID+"\x00"+m.NVR), v)
}

// contentEntry is the manifest index value of content member m.
func contentEntry(m *member, d *definition) []byte {
	var ids []string
	for _, ctx := range d.DecisionContexts {
		if g, ok := m.gating(ctx, d.ProductVersion); ok {
			ids = append(ids, g.DecisionID)
		}
	}
	return []byte(m.NVR + "\x00" + strings.Join(ids, ","))
}

// remove is the inverse of add, for m as it was added.
func (cs *composeState) remove(c *processors.Context, m *member) error {
	cs.dirty = true
	cs.Members--
	cs.Digest = xorHash(cs.Digest, m.Package, m.NVR)
	if err := c.Delete(StoreComposes, []byte(prefixContent+cs.ID+"\x00"+m.Package)); err != nil {
		return err
	}
	if len(m.Blockers) == 0 {
		return nil
	}
	cs.Blocked--
	types := blockerTypes(m.Blockers)
	cs.BlockedDigest = xorHash(cs.BlockedDigest, append([]string{m.NVR}, types...)...)
	for _, t := range types {
		if cs.Counts[t]--; cs.Counts[t] <= 0 {
			delete(cs.Counts, t)
		}
	}
	if i, ok := slices.BinarySearchFunc(cs.Listed, m.NVR, func(l listed, nvr string) int { return strings.Compare(l.NVR, nvr) }); ok {
		cs.Listed = slices.Delete(cs.Listed, i, i+1)
		if int64(len(cs.Listed)) < min(MaxListedBlockers, cs.Blocked) {
			cs.Refill = true
		}
	}
	return c.Delete(StoreComposes, []byte(prefixBlocker+cs.ID+"\x00"+m.NVR))
}

// refill reads the listing on from the index after its last entry, up to
// 2×MaxListedBlockers: one seek past the entries already listed (and
// past the deleted ones before them), once per MaxListedBlockers
// removals at worst.
func (cs *composeState) refill(c *processors.Context) error {
	if !cs.Refill {
		return nil
	}
	cs.Refill, cs.dirty = false, true
	lower := []byte(prefixBlocker + cs.ID + "\x00")
	from := lower
	if n := len(cs.Listed); n > 0 {
		from = append([]byte(prefixBlocker+cs.ID+"\x00"+cs.Listed[n-1].NVR), 0)
	}
	return c.Scan(StoreComposes, from, prefixEnd(lower), func(k, v []byte) error {
		if len(cs.Listed) >= 2*MaxListedBlockers {
			return errStop
		}
		l := listed{NVR: string(k[len(lower):])}
		if err := json.Unmarshal(v, &l.Blockers); err != nil {
			return fmt.Errorf("compose: blocker entry %q: %w", k, err)
		}
		cs.Listed = append(cs.Listed, l)
		return nil
	})
}

// rebuild recomputes the content and totals of cs from its members,
// after its definition changed.
func (p *Processor) rebuild(c *processors.Context, cs *composeState) error {
	cs.Members, cs.Blocked, cs.Counts, cs.Digest, cs.BlockedDigest = 0, 0, nil, "", ""
	cs.Listed, cs.Refill = nil, false
	for _, prefix := range []string{prefixPackage, prefixBlocker, prefixContent} {
		if err := deleteRange(c, prefix+cs.ID+"\x00"); err != nil {
			return err
		}
	}
	if cs.Def.Retired {
		return nil
	}
	var members []*member
	lower := []byte(prefixMember + cs.ID + "\x00")
	err := c.Scan(StoreComposes, lower, prefixEnd(lower), func(k, v []byte) error {
		m := &member{}
		if err := json.Unmarshal(v, m); err != nil {
			return fmt.Errorf("compose: member %q: %w", k, err)
		}
		members = append(members, m)
		return nil
	})
	if err != nil {
		return err
	}
	pkgs := map[string]*pkg{}
	for _, m := range members {
		m.Blockers, m.InContent = cs.Def.blockers(m), false
		if cand, ok := cs.Def.candidate(m); ok {
			pk := pkgs[m.Package]
			if pk == nil {
				pk = &pkg{}
				pkgs[m.Package] = pk
			}
			pk.Candidates = append(pk.Candidates, cand) // members are in NVR order
		}
	}
	byNVR := map[string]*member{}
	for _, m := range members {
		byNVR[m.NVR] = m
	}
	for name, pk := range pkgs {
		pk.Current = pk.best()
		byNVR[pk.Current].InContent = true
		if err := storePkg(c, cs.ID, name, pk); err != nil {
			return err
		}
	}
	for _, m := range members {
		if m.InContent {
			if err := cs.add(c, m, cs.Def); err != nil {
				return err
			}
		}
		if err := storeMember(c, cs.ID, m); err != nil {
			return err
		}
	}
	return nil
}

// settle emits what the compose's change calls for: a readiness decision
// when its blockers changed, and compose-ready when it is ready with
// content not declared ready before, if the cadence lets it out at the
// trigger's time at; otherwise it becomes due.
func (p *Processor) settle(c *processors.Context, cs *composeState, at time.Time, trigger *avro.Envelope) error {
	if fp := cs.readinessFingerprint(); fp != cs.LastReadiness {
		if err := p.emitReadiness(c, cs, trigger); err != nil {
			return err
		}
		cs.LastReadiness, cs.dirty = fp, true
	}
	if !cs.ready() || slices.Contains(cs.ReadyDigests, cs.Digest) {
		return cs.setDue(c, 0)
	}
	next := cs.Def.nextAllowed(at, microTime(cs.LastReadyAt))
	if next.After(at) {
		return cs.setDue(c, next.UnixMicro())
	}
	return p.emitReady(c, cs, at, trigger)
}

// setDue sets the time the current content is due (0: none).
func (cs *composeState) setDue(c *processors.Context, due int64) error {
	if cs.Due == due {
		return nil
	}
	if cs.Due != 0 {
		if err := c.Delete(StoreComposes, dueKey(cs.Due, cs.ID)); err != nil {
			return err
		}
	}
	cs.Due, cs.dirty = due, true
	if due != 0 {
		return c.Put(StoreComposes, dueKey(due, cs.ID), nil)
	}
	return nil
}

func dueKey(due int64, id string) []byte {
	return fmt.Appendf(nil, "%s%016x\x00%s", prefixDue, due, id)
}

// Punctuate implements processors.Punctuator: it lets out the compose-ready
// decisions that are due by now, at most 100 per call.
func (p *Processor) Punctuate(c *processors.Context, now time.Time) (bool, error) {
	lower := []byte(prefixDue)
	upper := fmt.Appendf(nil, "%s%016x", prefixDue, now.UnixMicro()+1)
	var ids []string
	var dues []int64
	err := c.Scan(StoreComposes, lower, upper, func(k, _ []byte) error {
		if len(ids) == 100 {
			return errStop
		}
		var due int64
		if _, err := fmt.Sscanf(string(k[len(lower):len(lower)+16]), "%016x", &due); err != nil {
			return fmt.Errorf("compose: due key %q: %w", k, err)
		}
		ids = append(ids, string(k[len(lower)+17:]))
		dues = append(dues, due)
		return nil
	})
	if err != nil && err != errStop {
		return false, err
	}
	for i, id := range ids {
		cs, err := p.compose(c, id)
		if err != nil {
			return false, err
		}
		if cs.Due != dues[i] {
			if err := c.Delete(StoreComposes, dueKey(dues[i], id)); err != nil {
				return false, err
			}
			continue
		}
		if err := cs.setDue(c, 0); err != nil {
			return false, err
		}
		if cs.ready() && !slices.Contains(cs.ReadyDigests, cs.Digest) {
			if err := p.emitReady(c, cs, microTime(dues[i]), nil); err != nil {
				return false, err
			}
		}
	}
	return len(ids) == 100, nil
}

var errStop = fmt.Errorf("stop")

// emitReady emits compose-ready for the current content of cs at time
// at; trigger is the event that completed it (nil: the cadence let it
// out).
func (p *Processor) emitReady(c *processors.Context, cs *composeState, at time.Time, trigger *avro.Envelope) error {
	// The content index, one small value per package in package order:
	// no member is decoded.
	manifest := make([]avro.ManifestEntry, 0, cs.Members)
	lower := []byte(prefixContent + cs.ID + "\x00")
	err := c.Scan(StoreComposes, lower, prefixEnd(lower), func(k, v []byte) error {
		nvr, ids, ok := strings.Cut(string(v), "\x00")
		if !ok {
			return fmt.Errorf("compose: content entry %q: %q", k, v)
		}
		e := avro.ManifestEntry{NVR: nvr, Package: string(k[len(lower):]), KeyID: cs.Def.SigningKey}
		if ids != "" {
			e.DecisionIDs = strings.Split(ids, ",")
		}
		manifest = append(manifest, e)
		return nil
	})
	if err != nil {
		return err
	}
	slices.SortFunc(manifest, func(x, y avro.ManifestEntry) int {
		if c := strings.Compare(x.Package, y.Package); c != 0 {
			return c
		}
		return strings.Compare(x.NVR, y.NVR)
	})
	env := avro.Envelope{Source: "factory2/" + Name, EventTime: at, IngestTime: at}
	derived := []string{cs.Def.EventID}
	if trigger != nil {
		env.ID = envelopeID("ready", cs.ID, cs.Digest, trigger.ID)
		env.EventTime, env.IngestTime, env.Origin = trigger.EventTime, trigger.IngestTime, trigger.Origin
		derived = append(derived, trigger.ID)
	} else {
		env.ID = envelopeID("ready", cs.ID, cs.Digest, fmt.Sprint(at.UnixMicro()))
	}
	what := fmt.Sprintf("%d builds, complete", cs.Members)
	if cs.Def.SigningKey != "" {
		what += ", signed with " + cs.Def.SigningKey
	}
	if len(cs.Def.DecisionContexts) > 0 {
		what += ", gating satisfied in " + strings.Join(cs.Def.DecisionContexts, ", ")
	}
	d := &avro.ComposeReadyDecision{
		Decision: avro.Decision{
			Envelope:      env,
			PolicyVersion: cs.Def.Version,
			DerivedFrom:   derived,
			Satisfied:     []avro.Requirement{{Type: ReqContent, Source: cs.Def.EventID, Detail: what}},
		},
		ComposeID:       cs.ID,
		Ready:           true,
		DecisionContext: strings.Join(cs.Def.DecisionContexts, ","),
		ProductVersion:  cs.Def.ProductVersion,
		Summary:         "ready: " + what,
		Kind:            avro.ComposeReady,
		ContentDigest:   cs.Digest,
		Members:         cs.Members,
		Manifest:        manifest,
	}
	c.Emit(p.decisions, []byte(cs.ID), d)
	cs.ReadyDigests = append(cs.ReadyDigests, cs.Digest)
	if n := len(cs.ReadyDigests); n > maxReadyDigests {
		cs.ReadyDigests = slices.Delete(cs.ReadyDigests, 0, n-maxReadyDigests)
	}
	cs.LastReadyAt, cs.LastReadyID, cs.dirty = at.UnixMicro(), env.ID, true
	return cs.setDue(c, 0)
}

// emitReadiness emits the compose's readiness: ready or not, its blockers
// counted by type, the first MaxListedBlockers of them in NVR order.
func (p *Processor) emitReadiness(c *processors.Context, cs *composeState, trigger *avro.Envelope) error {
	var unsat []avro.Requirement
	switch {
	case cs.Def.Retired:
		unsat = append(unsat, avro.Requirement{Type: ReqRetired, Source: cs.Def.EventID, Detail: "the compose definition is retired"})
	case !cs.loaded():
		unsat = append(unsat, avro.Requirement{Type: ReqLoading, Source: cs.Def.EventID, Pending: true,
			Detail: fmt.Sprintf("%d of %d partitions have sent the builds of %s", len(cs.Loaded), cs.Partitions, strings.Join(cs.Def.SourceTags, ", "))})
	case cs.Members == 0:
		unsat = append(unsat, avro.Requirement{Type: ReqEmpty, Source: cs.Def.EventID,
			Detail: "no build is tagged in " + strings.Join(cs.Def.SourceTags, ", ")})
	}
	if cs.Blocked > 0 && !cs.Def.Retired {
		if err := cs.refill(c); err != nil && err != errStop {
			return err
		}
		for _, l := range cs.Listed {
			if len(unsat) >= MaxListedBlockers {
				break
			}
			unsat = append(unsat, l.Blockers...)
		}
	}
	if len(unsat) > MaxListedBlockers {
		unsat = unsat[:MaxListedBlockers]
	}
	var counts []avro.BlockerCount
	for t, n := range cs.Counts {
		counts = append(counts, avro.BlockerCount{Type: t, Count: n})
	}
	slices.SortFunc(counts, func(x, y avro.BlockerCount) int { return strings.Compare(x.Type, y.Type) })
	ready := cs.ready()
	summary := fmt.Sprintf("ready: %d builds", cs.Members)
	if !ready {
		var parts []string
		for _, n := range counts {
			parts = append(parts, fmt.Sprintf("%d %s", n.Count, n.Type))
		}
		switch {
		case cs.Def.Retired:
			summary = "not ready: retired"
		case !cs.loaded():
			summary = fmt.Sprintf("not ready: loading the content (%d of %d partitions)", len(cs.Loaded), cs.Partitions)
		case cs.Members == 0:
			summary = "not ready: no content"
		default:
			summary = fmt.Sprintf("not ready: %d of %d builds blocked (%s)", cs.Blocked, cs.Members, strings.Join(parts, ", "))
		}
	}
	d := &avro.ComposeReadyDecision{
		Decision: avro.Decision{
			Envelope: avro.Envelope{
				ID:         envelopeID("readiness", cs.ID, cs.readinessFingerprint(), trigger.ID),
				Source:     "factory2/" + Name,
				EventTime:  trigger.EventTime,
				IngestTime: trigger.IngestTime,
				Origin:     trigger.Origin,
			},
			PolicyVersion: cs.Def.Version,
			DerivedFrom:   []string{cs.Def.EventID, trigger.ID},
			Unsatisfied:   unsat,
		},
		ComposeID:       cs.ID,
		Ready:           ready,
		DecisionContext: strings.Join(cs.Def.DecisionContexts, ","),
		ProductVersion:  cs.Def.ProductVersion,
		Summary:         summary,
		Kind:            avro.ComposeReadiness,
		ContentDigest:   cs.Digest,
		Members:         cs.Members,
		BlockerCounts:   counts,
	}
	if d.DerivedFrom[0] == trigger.ID {
		d.DerivedFrom = d.DerivedFrom[:1]
	}
	c.Emit(p.decisions, []byte(cs.ID), d)
	return nil
}

// compose returns the compose with id, from the transaction's cache, the
// store, or new; Flush stores it.
func (p *Processor) compose(c *processors.Context, id string) (*composeState, error) {
	key := prefixCompose + id
	if cs, ok := c.TxnCache()[key].(*composeState); ok {
		return cs, nil
	}
	cs := &composeState{ID: id}
	v, ok, err := c.Get(StoreComposes, []byte(key))
	if err != nil {
		return nil, err
	}
	if ok {
		if err := json.Unmarshal(v, cs); err != nil {
			return nil, fmt.Errorf("compose: compose %s: %w", id, err)
		}
	}
	c.TxnCache()[key] = cs
	return cs, nil
}

// Flush implements processors.Flusher.
func (p *Processor) Flush(c *processors.Context) error {
	for key, v := range c.TxnCache() {
		var dirty *bool
		switch s := v.(type) {
		case *composeState:
			dirty = &s.dirty
		case *gate:
			dirty = &s.dirty
		default:
			continue
		}
		if !*dirty {
			continue
		}
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		if err := c.Put(StoreComposes, []byte(key), b); err != nil {
			return err
		}
		*dirty = false
	}
	return nil
}

// ValidateState implements processors.StateValidator.
func (p *Processor) ValidateState(store string, key, value []byte) error {
	var v any
	switch {
	case bytes.HasPrefix(key, []byte(prefixCompose)):
		v = &composeState{}
	case bytes.HasPrefix(key, []byte(prefixMember)):
		v = &member{}
	case bytes.HasPrefix(key, []byte(prefixPackage)):
		v = &pkg{}
	case bytes.HasPrefix(key, []byte(prefixGate)):
		v = &gate{}
	case bytes.HasPrefix(key, []byte(prefixBlocker)):
		var bs []avro.Requirement
		return json.Unmarshal(value, &bs)
	case bytes.HasPrefix(key, []byte(prefixContent)):
		if !bytes.Contains(value, []byte{0}) {
			return fmt.Errorf("content entry %q is not NVR NUL decision ids", key)
		}
		return nil
	case bytes.HasPrefix(key, []byte(prefixDue)):
		if len(value) != 0 {
			return fmt.Errorf("index entry %q has a value", key)
		}
		return nil
	default:
		return fmt.Errorf("unknown key %q", key)
	}
	return json.Unmarshal(value, v)
}

func loadMember(c *processors.Context, id, nvr string) (*member, error) {
	v, ok, err := c.Get(StoreComposes, []byte(prefixMember+id+"\x00"+nvr))
	if err != nil || !ok {
		return nil, err
	}
	m := &member{}
	if err := json.Unmarshal(v, m); err != nil {
		return nil, fmt.Errorf("compose: member %s of %s: %w", nvr, id, err)
	}
	return m, nil
}

func storeMember(c *processors.Context, id string, m *member) error {
	v, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return c.Put(StoreComposes, []byte(prefixMember+id+"\x00"+m.NVR), v)
}

func loadPkg(c *processors.Context, id, name string) (*pkg, error) {
	v, ok, err := c.Get(StoreComposes, []byte(prefixPackage+id+"\x00"+name))
	if err != nil || !ok {
		return &pkg{}, err
	}
	pk := &pkg{}
	if err := json.Unmarshal(v, pk); err != nil {
		return nil, fmt.Errorf("compose: package %s of %s: %w", name, id, err)
	}
	return pk, nil
}

func storePkg(c *processors.Context, id, name string, pk *pkg) error {
	key := []byte(prefixPackage + id + "\x00" + name)
	if len(pk.Candidates) == 0 {
		return c.Delete(StoreComposes, key)
	}
	v, err := json.Marshal(pk)
	if err != nil {
		return err
	}
	return c.Put(StoreComposes, key, v)
}

func deleteRange(c *processors.Context, prefix string) error {
	var keys [][]byte
	lower := []byte(prefix)
	if err := c.Scan(StoreComposes, lower, prefixEnd(lower), func(k, _ []byte) error {
		keys = append(keys, bytes.Clone(k))
		return nil
	}); err != nil {
		return err
	}
	for _, k := range keys {
		if err := c.Delete(StoreComposes, k); err != nil {
			return err
		}
	}
	return nil
}

// prefixEnd returns the least key after every key with prefix p (p ends
// in a byte below 0xff).
func prefixEnd(p []byte) []byte {
	e := bytes.Clone(p)
	e[len(e)-1]++
	return e
}

// xorHash returns the hex digest d XOR the SHA-256 of parts.
func xorHash(d string, parts ...string) string {
	var acc [sha256.Size]byte
	if d != "" {
		hex.Decode(acc[:], []byte(d))
	}
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	sum := h.Sum(nil)
	zero := true
	for i := range acc {
		acc[i] ^= sum[i]
		zero = zero && acc[i] == 0
	}
	if zero {
		return ""
	}
	return hex.EncodeToString(acc[:])
}

func microTime(us int64) time.Time {
	if us == 0 {
		return time.Time{}
	}
	return time.UnixMicro(us).UTC()
}
