package topics

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Role says what a topic is for.
type Role string

const (
	// Input topics carry events from infrastructure hooks.
	Input Role = "input"
	// Decision topics carry decisions for subscribing services.
	Decision Role = "decision"
	// DeadLetter is where records that cannot be processed go, with the
	// reason in their headers.
	DeadLetter Role = "dead-letter"
	// Changelog topics are compacted copies of processor state stores.
	Changelog Role = "changelog"
	// Repartition topics re-key a stream between processors.
	Repartition Role = "repartition"
)

// Aliases of the topics every deployment has.
const (
	EventsBuild   = "events.build"
	EventsSign    = "events.sign"
	EventsTest    = "events.test"
	EventsPolicy  = "events.policy"
	EventsCompose = "events.compose"
	EventsDeps    = "events.deps"

	DecisionsGating       = "decisions.gating"
	DecisionsAutosign     = "decisions.autosign"
	DecisionsSigned       = "decisions.signed"
	DecisionsComposeReady = "decisions.compose-ready"
	DecisionsRebuild      = "decisions.rebuild"

	DeadLetters = "deadletter"

	// Internal topics: the gating processor's build views, for the
	// compose-members processor, and the topics between the two compose
	// processors.
	GatingBuilds       = "gating.builds"
	ComposeDefinitions = "compose.definitions"
	ComposeMembers     = "compose.members"
)

// DefaultPrefix is prepended to every alias unless configured otherwise.
const DefaultPrefix = "factory2."

// Spec is one topic of the catalog.
type Spec struct {
	// Alias is the name without the prefix, e.g. "events.build".
	Alias string
	// Name is the full topic name: prefix + alias.
	Name string
	Role Role
	// Partitions and Replication are the topic's partition count and
	// replication factor.
	Partitions  int32
	Replication int16
	// Configs are the topic-level configs Ensure sets and checks.
	Configs map[string]string
	// Key says what the records are keyed by, for people.
	Key string
	// Records names the Avro record types the topic carries.
	Records []string
	// Doc is a one-line description.
	Doc string
	// MaxRecordBytes, when positive, is the largest record processors
	// may write to the topic, above their default (its max.message.bytes
	// config allows it).
	MaxRecordBytes int
}

// ComposeReadyMaxBytes is the record limit of the compose decisions: a
// compose-ready carries its whole manifest, about 120 bytes per package
// (2.4 MB for a Fedora-sized compose of 20,000 packages).
const ComposeReadyMaxBytes = 16 << 20

// Config chooses the shape of a deployment's topics.
type Config struct {
	// Prefix is prepended to every alias. Empty means DefaultPrefix; use
	// NoPrefix for none.
	Prefix string
	// NoPrefix disables the prefix.
	NoPrefix bool
	// Partitions of every keyed topic (inputs, decisions, changelogs).
	// Co-partitioned topics must agree, so there is one number.
	Partitions int32
	// Replication factor of every topic.
	Replication int16
	// InputRetention is retention.ms for input topics; -1 keeps events
	// forever, which replay from the beginning needs.
	InputRetentionMS int64
	// DecisionRetentionMS is retention.ms for decision topics.
	DecisionRetentionMS int64
	// MinInSyncReplicas, when > 0, sets min.insync.replicas.
	MinInSyncReplicas int
}

// DefaultConfig is a single-broker deployment with 6 partitions.
func DefaultConfig() Config {
	return Config{
		Prefix:              DefaultPrefix,
		Partitions:          6,
		Replication:         1,
		InputRetentionMS:    -1,
		DecisionRetentionMS: -1,
	}
}

// Validate reports every problem of c at once.
func (c Config) Validate() error {
	var errs []error
	if c.Partitions < 1 {
		errs = append(errs, fmt.Errorf("topics: partitions %d: must be at least 1", c.Partitions))
	}
	if c.Replication < 1 {
		errs = append(errs, fmt.Errorf("topics: replication %d: must be at least 1", c.Replication))
	}
	if c.MinInSyncReplicas > int(c.Replication) {
		errs = append(errs, fmt.Errorf("topics: min.insync.replicas %d exceeds replication %d", c.MinInSyncReplicas, c.Replication))
	}
	if strings.ContainsAny(c.Prefix, " /\\") {
		errs = append(errs, fmt.Errorf("topics: prefix %q: must not contain spaces or slashes", c.Prefix))
	}
	return errors.Join(errs...)
}

// Catalog is the set of topics of one deployment. It is immutable after
// construction except through AddChangelog and AddRepartition, which
// processors call while being built (before any goroutine reads it).
type Catalog struct {
	cfg    Config
	prefix string
	specs  []Spec
}

// New returns the catalog of cfg with the standard topics.
func New(cfg Config) (*Catalog, error) {
	if cfg.Partitions == 0 && cfg.Replication == 0 {
		d := DefaultConfig()
		d.Prefix, d.NoPrefix = cfg.Prefix, cfg.NoPrefix
		cfg = d
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := &Catalog{cfg: cfg, prefix: cfg.Prefix}
	if c.prefix == "" && !cfg.NoPrefix {
		c.prefix = DefaultPrefix
	}
	inputCfg := c.baseConfigs(map[string]string{
		"cleanup.policy": "delete",
		"retention.ms":   fmt.Sprint(cfg.InputRetentionMS),
	})
	decisionCfg := c.baseConfigs(map[string]string{
		"cleanup.policy": "delete",
		"retention.ms":   fmt.Sprint(cfg.DecisionRetentionMS),
	})
	const subject = "subject identifier (NVR for builds)"
	for _, s := range []Spec{
		{Alias: EventsBuild, Role: Input, Key: subject, Records: []string{"BuildEvent"}, Doc: "build state changes, tags and untags"},
		{Alias: EventsSign, Role: Input, Key: subject, Records: []string{"SignEvent"}, Doc: "artifacts signed with a key"},
		{Alias: EventsTest, Role: Input, Key: subject, Records: []string{"TestResult", "Waiver"}, Doc: "test results and waivers"},
		{Alias: EventsPolicy, Role: Input, Key: subject, Records: []string{"RemoteRuleFile"}, Doc: "a package's gating.yaml at a build's commit"},
		{Alias: EventsCompose, Role: Input, Key: "compose id", Records: []string{"ComposeEvent"}, Doc: "compose definitions and status changes"},
		{Alias: EventsDeps, Role: Input, Key: "the depending node's id (an NVR for a build)", Records: []string{"DependencyEdge"}, Doc: "dependency edges the build events do not carry"},
	} {
		s.Configs = inputCfg
		c.add(s)
	}
	for _, s := range []Spec{
		{Alias: DecisionsGating, Key: subject, Records: []string{"GatingDecision"}, Doc: "gating decision updates"},
		{Alias: DecisionsAutosign, Key: subject, Records: []string{"AutosignDecision"}, Doc: "sign this build with this key now (or revoke)"},
		{Alias: DecisionsSigned, Key: subject, Records: []string{"SignedStatus"}, Doc: "a build is (no longer) fully signed with a key"},
		{Alias: DecisionsComposeReady, Key: "compose id", Records: []string{"ComposeReadyDecision"}, Doc: "a compose's content is complete, signed and gated",
			MaxRecordBytes: ComposeReadyMaxBytes},
		{Alias: DecisionsRebuild, Key: "subject to rebuild", Records: []string{"RebuildDecision"}, Doc: "rebuild decisions from the dependency graph"},
	} {
		s.Role = Decision
		s.Configs = decisionCfg
		n := s.MaxRecordBytes
		s.MaxRecordBytes = 0
		c.add(s)
		if n > 0 {
			c.RaiseRecordLimit(c.prefix+s.Alias, n)
		}
	}
	// Kept like inputs: a replay of the compose processors reads them.
	for _, s := range []Spec{
		{Alias: GatingBuilds, Key: subject, Records: []string{"ComposeMember"},
			Doc: "what the compose processors need of each build (state, tags, signed keys, gating), on every change"},
		{Alias: ComposeDefinitions, Key: "compose id", Records: []string{"ComposeEvent"},
			Doc: "compose definitions, each copied to every partition for the compose-members processor"},
		{Alias: ComposeMembers, Key: "compose id", Records: []string{"ComposeMember", "GatingDecision"},
			Doc: "builds of composes' source tags, and compose gating decisions, re-keyed by compose id"},
	} {
		s.Role = Repartition
		s.Configs = inputCfg
		c.add(s)
	}
	c.add(Spec{
		Alias: DeadLetters, Role: DeadLetter, Key: "the original key",
		Configs: decisionCfg,
		Doc:     "records that could not be processed, with the reason in headers",
	})
	return c, nil
}

func (c *Catalog) baseConfigs(m map[string]string) map[string]string {
	if c.cfg.MinInSyncReplicas > 0 {
		m["min.insync.replicas"] = fmt.Sprint(c.cfg.MinInSyncReplicas)
	}
	return m
}

func (c *Catalog) add(s Spec) {
	s.Name = c.prefix + s.Alias
	if s.Partitions == 0 {
		s.Partitions = c.cfg.Partitions
	}
	if s.Replication == 0 {
		s.Replication = c.cfg.Replication
	}
	c.specs = append(c.specs, s)
}

// AddChangelog adds the compacted changelog topic of a processor's state
// store and returns its name. Changelogs are co-partitioned with the
// processor's inputs: partition p holds task p's state.
func (c *Catalog) AddChangelog(processor, store string) string {
	alias := fmt.Sprintf("%s.%s.changelog", processor, store)
	if s, ok := c.Lookup(alias); ok {
		return s.Name
	}
	c.add(Spec{
		Alias: alias, Role: Changelog, Key: "state store key",
		Configs: c.baseConfigs(map[string]string{
			"cleanup.policy": "compact",
			// Keep tombstones a week, so an instance away for less than
			// that restores deletions from the changelog tail. One away
			// longer wipes its local state and restores in full.
			"delete.retention.ms":       "604800000",
			"min.compaction.lag.ms":     "0",
			"min.cleanable.dirty.ratio": "0.5",
			"segment.ms":                "3600000",
		}),
		Doc: fmt.Sprintf("changelog of store %q of processor %q", store, processor),
	})
	return c.prefix + alias
}

// RaiseRecordLimit lets the topic name take records of n bytes: its
// max.message.bytes allows them. A processor that writes one large
// record (a compose's manifest) batches everything it writes up to that
// size, so it raises the limit of each topic it writes to. Called while
// processors are built, before Ensure.
func (c *Catalog) RaiseRecordLimit(name string, n int) {
	for i := range c.specs {
		s := &c.specs[i]
		if s.Name != name || s.MaxRecordBytes >= n {
			continue
		}
		s.MaxRecordBytes = n
		s.Configs = maps.Clone(s.Configs)
		s.Configs["max.message.bytes"] = fmt.Sprint(n + 64<<10)
	}
}

// Prefix returns the prefix of every topic name.
func (c *Catalog) Prefix() string { return c.prefix }

// Name returns the full name of the topic with alias. It panics on an
// unknown alias: aliases are constants of the program, so a miss is a bug.
func (c *Catalog) Name(alias string) string {
	s, ok := c.Lookup(alias)
	if !ok {
		panic(fmt.Sprintf("topics: unknown alias %q", alias))
	}
	return s.Name
}

// Lookup finds a topic by alias or by full name.
func (c *Catalog) Lookup(aliasOrName string) (Spec, bool) {
	for _, s := range c.specs {
		if s.Alias == aliasOrName || s.Name == aliasOrName {
			return s, true
		}
	}
	return Spec{}, false
}

// Specs returns every topic of the catalog, in catalog order.
func (c *Catalog) Specs() []Spec { return slices.Clone(c.specs) }

// ByRole returns the topics with role r.
func (c *Catalog) ByRole(r Role) []Spec {
	var out []Spec
	for _, s := range c.specs {
		if s.Role == r {
			out = append(out, s)
		}
	}
	return out
}

// Names returns the full names of specs.
func Names(specs []Spec) []string {
	out := make([]string, len(specs))
	for i, s := range specs {
		out[i] = s.Name
	}
	return out
}
