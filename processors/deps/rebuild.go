package deps

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	"github.com/factory2/factory2/avro"
	"github.com/factory2/factory2/processors"
	"github.com/factory2/factory2/topics"
)

// RebuildName is the name of the rebuild processor.
const RebuildName = "rebuild"

// StoreRebuild holds which builds have triggered ("s" keys) and which
// rebuild decisions were emitted ("d" keys).
const StoreRebuild = "rebuilds"

// RebuildRules say when a new build triggers rebuilds and of what: what
// Freshmaker decides, reactively.
type RebuildRules struct {
	// Context, when set, is the gating decision context the new build
	// must satisfy; Key, when set, the key id it must be signed with.
	Context string `yaml:"context"`
	Key     string `yaml:"key"`
	// Types are the node types rebuilt (default: container, module,
	// flatpak); Relations the edges walked from an older build of the
	// same package to what ships it (default: produced-by, embeds,
	// includes, parent, contains); Buildroot adds buildroot edges (every
	// build built against the old one: a mass rebuild, so off by
	// default).
	Types     []string `yaml:"types"`
	Relations []string `yaml:"relations"`
	Buildroot bool     `yaml:"buildroot"`
	// Depth bounds the walk (default 6); Cap the decisions per new
	// build (default 1000): a dependent beyond it is counted, not
	// decided.
	Depth int `yaml:"depth"`
	Cap   int `yaml:"cap"`
}

func (r RebuildRules) withDefaults() RebuildRules {
	if len(r.Types) == 0 {
		r.Types = []string{"container", "module", "flatpak"}
	}
	if len(r.Relations) == 0 {
		r.Relations = []string{avro.RelProducedBy, avro.RelEmbeds, avro.RelIncludes, avro.RelParent, avro.RelContains}
	}
	if r.Buildroot && !slices.Contains(r.Relations, avro.RelBuildroot) {
		r.Relations = append(slices.Clone(r.Relations), avro.RelBuildroot)
	}
	if r.Depth <= 0 {
		r.Depth = 6
	}
	if r.Cap <= 0 {
		r.Cap = 1000
	}
	return r
}

// version hashes the rules, for the decisions' policy version.
func (r RebuildRules) version() string {
	h := sha256.Sum256(fmt.Appendf(nil, "%q %q %q %q %v %d %d", r.Context, r.Key, r.Types, r.Relations, r.Buildroot, r.Depth, r.Cap))
	return hex.EncodeToString(h[:8])
}

// RebuildSpec returns the runtime spec of the rebuild processor: it reads
// the gating processor's build views (keyed by NVR) and, when a build
// becomes signed and gated under the rules, emits a rebuild decision for
// every artifact that ships an older build of the same package, found in
// the graph g.
func RebuildSpec(cat *topics.Catalog, g *Graph, rules RebuildRules) processors.Spec {
	p := &Rebuild{graph: g, rules: rules.withDefaults(), out: cat.Name(topics.DecisionsRebuild)}
	p.policy = p.rules.version()
	return processors.Spec{
		Name:    RebuildName,
		Inputs:  []string{cat.Name(topics.GatingBuilds)},
		Outputs: []string{p.out},
		Stores:  []string{StoreRebuild},
		New:     func(int32) processors.Processor { return p },
	}
}

// Rebuild is the rebuild processor.
//
// It reads the graph that every instance holds, which is not part of its
// input log: a decision depends on the graph as this instance knows it
// when the trigger is processed (Kafka Streams' global table joins have
// the same property). Each decision names the edges it followed, and
// (artifact, new build) is decided once, whatever replays or re-triggers.
type Rebuild struct {
	graph  *Graph
	rules  RebuildRules
	policy string
	out    string
}

// Process implements processors.Processor.
func (p *Rebuild) Process(c *processors.Context, in *processors.Input) error {
	v, ok := in.Record.(*avro.ComposeMember)
	if !ok || v.ComposeID != "" {
		return processors.Reject("rebuild: unexpected record %s on %s", in.Record.SchemaName(), in.Topic)
	}
	if v.NVR != string(in.Key) {
		return processors.Reject("rebuild: build view key %q is not its NVR %q", in.Key, v.NVR)
	}
	ready, why := p.ready(v)
	key := []byte("s\x00" + v.NVR)
	_, was, err := c.Get(StoreRebuild, key)
	if err != nil {
		return err
	}
	switch {
	case ready && !was:
		if err := c.Put(StoreRebuild, key, nil); err != nil {
			return err
		}
		return p.decide(c, v, why)
	case !ready && was:
		return c.Delete(StoreRebuild, key) // revoked: a later return triggers again (decisions stay once each)
	}
	return nil
}

// ready reports whether the build is signed and gated under the rules.
func (p *Rebuild) ready(v *avro.ComposeMember) (bool, string) {
	if v.State != avro.StateComplete {
		return false, ""
	}
	var what []string
	if p.rules.Key != "" {
		if !slices.Contains(v.SignedKeys, p.rules.Key) {
			return false, ""
		}
		what = append(what, "signed with "+p.rules.Key)
	}
	if p.rules.Context != "" {
		if !slices.ContainsFunc(v.Gating, func(g avro.MemberGating) bool { return g.DecisionContext == p.rules.Context && g.Satisfied }) {
			return false, ""
		}
		what = append(what, "gating satisfied in "+p.rules.Context)
	}
	if len(what) == 0 {
		what = append(what, "complete")
	}
	return true, strings.Join(what, ", ")
}

// target is one artifact to rebuild.
type target struct {
	node  TraceNode
	old   string // the older build it ships
	chain string
	batch int
}

// decide emits the rebuild decisions of new build v.
func (p *Rebuild) decide(c *processors.Context, v *avro.ComposeMember, why string) error {
	pkg := v.Package
	if pkg == "" {
		pkg = avro.PackageOf(v.NVR)
	}
	var targets []target
	seen := map[string]bool{}
	for _, old := range p.graph.Builds(pkg) {
		_, oldNVR, _ := strings.Cut(old, ":")
		if oldNVR == v.NVR || compareNVR(oldNVR, v.NVR) >= 0 {
			continue // only builds older than the new one
		}
		t, err := p.graph.Trace(TraceQuery{Node: old, Direction: Down, Depth: p.rules.Depth, Relations: p.rules.Relations, MaxNodes: 1 << 20, Sorted: true})
		if err != nil {
			continue
		}
		byKey := map[string]TraceNode{}
		for _, n := range t.Nodes {
			byKey[n.Key] = n
		}
		for _, n := range t.Nodes[1:] {
			if !slices.Contains(p.rules.Types, n.Type) || seen[n.Key] {
				continue
			}
			seen[n.Key] = true
			targets = append(targets, target{node: n, old: old, chain: chain(byKey, n)})
		}
	}
	// Batches: an image after the parent it is built on, when both are
	// rebuilt.
	in := map[string]int{}
	for i, t := range targets {
		in[t.node.Key] = i
	}
	var batch func(i int, depth int) int
	batch = func(i int, depth int) int {
		if depth > len(targets) {
			return 0 // a parent cycle: the graph is wrong, do not loop
		}
		b := 0
		for _, parent := range p.graph.Out(targets[i].node.Key, avro.RelParent) {
			if j, ok := in[parent]; ok {
				b = max(b, 1+batch(j, depth+1))
			}
		}
		return b
	}
	for i := range targets {
		targets[i].batch = batch(i, 0)
	}
	slices.SortFunc(targets, func(a, b target) int {
		if a.batch != b.batch {
			return a.batch - b.batch
		}
		return strings.Compare(a.node.Key, b.node.Key)
	})
	over := max(0, len(targets)-p.rules.Cap)
	targets = targets[:min(len(targets), p.rules.Cap)]
	for _, t := range targets {
		dkey := []byte("d\x00" + t.node.Key + "\x00" + v.NVR)
		if _, done, err := c.Get(StoreRebuild, dkey); err != nil || done {
			if err != nil {
				return err
			}
			continue
		}
		if err := c.Put(StoreRebuild, dkey, nil); err != nil {
			return err
		}
		detail := fmt.Sprintf("%s is %s; %s ships the older %s", v.NVR, why, t.node.Key, t.old)
		if over > 0 {
			detail += fmt.Sprintf(" (%d more dependents over the cap of %d are not decided)", over, p.rules.Cap)
		}
		h := sha256.Sum256([]byte("rebuild\x00" + t.node.Key + "\x00" + v.NVR))
		c.Emit(p.out, []byte(t.node.ID), &avro.RebuildDecision{
			Decision: avro.Decision{
				Envelope: avro.Envelope{
					ID:         hex.EncodeToString(h[:]),
					Source:     "factory2/" + RebuildName,
					EventTime:  v.EventTime,
					IngestTime: v.IngestTime,
					Origin:     v.Origin,
				},
				PolicyVersion: p.policy,
				DerivedFrom:   []string{v.ID},
				Satisfied:     []avro.Requirement{{Type: "signed-and-gated", SubjectType: "koji_build", SubjectID: v.NVR, Detail: detail}},
			},
			SubjectType: t.node.Type,
			SubjectID:   t.node.ID,
			TriggerType: "build",
			TriggerID:   v.NVR,
			Relation:    t.node.Relation,
			Reason:      t.chain,
			Priority:    int32(t.batch),
		})
	}
	return nil
}

// chain writes how n reaches the start of its trace: "a -includes-> b
// -produced-by-> build:x".
func chain(byKey map[string]TraceNode, n TraceNode) string {
	var b strings.Builder
	b.WriteString(n.Key)
	for n.Parent != "" {
		fmt.Fprintf(&b, " -%s-> %s", n.Relation, n.Parent)
		n = byKey[n.Parent]
	}
	return b.String()
}

// Out returns the nodes node depends on by relation rel, sorted.
func (g *Graph) Out(node, rel string) []string {
	g.mu.RLock()
	defer g.mu.RUnlock()
	i, ok := g.ids[node]
	r, okr := g.relID[rel]
	if !ok || !okr {
		return nil
	}
	var out []string
	for _, h := range g.out[i] {
		if h.rel == r {
			out = append(out, g.keys[h.node])
		}
	}
	slices.Sort(out)
	return out
}

// compareNVR orders two NVRs of one package by version, then release,
// as RPM does (rpmvercmp); an epoch is not part of an NVR.
func compareNVR(a, b string) int {
	av, ar := versionRelease(a)
	bv, br := versionRelease(b)
	if c := rpmvercmp(av, bv); c != 0 {
		return c
	}
	return rpmvercmp(ar, br)
}

func versionRelease(nvr string) (v, r string) {
	if _, v, r, ok := avro.SplitNVR(nvr); ok {
		return v, r
	}
	return nvr, ""
}

// rpmvercmp compares version strings as RPM does: alternating runs of
// digits (compared as numbers) and letters (compared as strings), other
// characters separate; "~" sorts before anything, even the end; a digit
// run is newer than a letter run.
func rpmvercmp(a, b string) int {
	for {
		a = strings.TrimLeftFunc(a, func(r rune) bool { return !isAlnum(r) && r != '~' && r != '^' })
		b = strings.TrimLeftFunc(b, func(r rune) bool { return !isAlnum(r) && r != '~' && r != '^' })
		if strings.HasPrefix(a, "~") || strings.HasPrefix(b, "~") {
			switch {
			case !strings.HasPrefix(a, "~"):
				return 1
			case !strings.HasPrefix(b, "~"):
				return -1
			}
			a, b = a[1:], b[1:]
			continue
		}
		if strings.HasPrefix(a, "^") || strings.HasPrefix(b, "^") {
			switch {
			case a == "":
				return -1
			case b == "":
				return 1
			case !strings.HasPrefix(a, "^"):
				return 1
			case !strings.HasPrefix(b, "^"):
				return -1
			}
			a, b = a[1:], b[1:]
			continue
		}
		if a == "" || b == "" {
			switch {
			case a == b:
				return 0
			case a == "":
				return -1
			}
			return 1
		}
		digit := a[0] >= '0' && a[0] <= '9'
		ra, restA := run(a, digit)
		rb, restB := run(b, digit)
		if rb == "" {
			if digit {
				return 1 // a number is newer than letters
			}
			return -1
		}
		if digit {
			ra, rb = strings.TrimLeft(ra, "0"), strings.TrimLeft(rb, "0")
			if len(ra) != len(rb) {
				return cmp.Compare(len(ra), len(rb))
			}
		}
		if c := strings.Compare(ra, rb); c != 0 {
			return c
		}
		a, b = restA, restB
	}
}

func run(s string, digit bool) (string, string) {
	i := 0
	for i < len(s) && isAlnum(rune(s[i])) && (s[i] >= '0' && s[i] <= '9') == digit {
		i++
	}
	return s[:i], s[i:]
}

func isAlnum(r rune) bool {
	return r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'
}
