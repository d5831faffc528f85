package gating

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/factory2/factory2/avro"
)

// Sources of the records the engine emits.
const (
	SourceGating   = "factory2/gating"
	SourceAutosign = "factory2/autosign"
)

// DefaultRemoteRulePath is the remote rule file a RemoteRule without
// sources reads (RemoteRuleFile.Path).
const DefaultRemoteRulePath = "gating.yaml"

// Engine computes gating and autosign decisions from Subject state. It is
// immutable after NewEngine and safe for concurrent use; a Subject is not.
// Every method is a deterministic function of its arguments: no clock, no
// I/O.
type Engine struct {
	policies      *PolicySet
	rules         []SigningRule // by priority, highest first, then name
	keyIDs        []string      // the distinct key ids of rules, sorted
	pvRules       []compiledPVRule
	nvrTypes      map[string]bool
	ignoreMissing map[string]bool
	remotePath    string
	version       string
	remote        *remoteCache
	// reevalChunk is the number of subjects a punctuation re-evaluates.
	reevalChunk int
	// maxSubjectBytes and maxPolicyFileBytes are the bounds of
	// WithMaxSubjectBytes and WithMaxPolicyFileBytes.
	maxSubjectBytes, maxPolicyFileBytes int
}

// Option configures an Engine.
type Option interface{ apply(*options) }

type options struct {
	pvRules         []ProductVersionRule
	nvrTypes        []string
	remotePath      string
	remoteCacheSize int
	reevalChunk     int

	maxSubjectBytes, maxPolicyFileBytes int
}

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

// WithProductVersionRules sets the product version overrides, tried in
// order before the built-in inference (NVR dist tag, compose id). For
// example, to gate EPEL builds (dist tag el9) as epel-9:
//
//	{Match: `.*\.el(\d+)(_\d+)?$`, ProductVersion: `epel-\1`, SubjectType: "koji_build"}
func WithProductVersionRules(rules ...ProductVersionRule) Option {
	return optionFunc(func(o *options) { o.pvRules = append(o.pvRules, rules...) })
}

// WithNVRSubjectTypes sets the subject types whose identifiers are NVRs
// (Greenwave's is_nvr): package filters apply to them and their product
// version comes from the dist tag. Default: koji_build (and its alias
// brew-build) and redhat-container-image.
func WithNVRSubjectTypes(types ...string) Option {
	return optionFunc(func(o *options) { o.nvrTypes = types })
}

// WithRemoteRulePath sets the path a RemoteRule without sources reads;
// default DefaultRemoteRulePath.
func WithRemoteRulePath(path string) Option {
	return optionFunc(func(o *options) { o.remotePath = path })
}

// WithRemotePolicyCacheSize bounds the cache of parsed remote rule files
// (default 4096 distinct files).
func WithRemotePolicyCacheSize(n int) Option {
	return optionFunc(func(o *options) { o.remoteCacheSize = n })
}

// WithReevaluationChunk sets how many stored subjects one punctuation
// re-evaluates after the engine changed (default
// DefaultReevaluationChunk); the others follow in the next transactions,
// so that one transaction stays well within the transaction timeout
// whatever the number of subjects. It changes no decision, so it is not
// part of the engine version.
func WithReevaluationChunk(n int) Option {
	return optionFunc(func(o *options) { o.reevalChunk = n })
}

// NewEngine returns an engine for a policy set (nil: no policies) and
// signing rules. It reports every invalid rule and option at once.
func NewEngine(policies *PolicySet, rules []SigningRule, opts ...Option) (*Engine, error) {
	o := options{
		nvrTypes:        []string{SubjectKojiBuild, SubjectContainerImage},
		remotePath:      DefaultRemoteRulePath,
		remoteCacheSize: 4096,
		reevalChunk:     DefaultReevaluationChunk,

		maxSubjectBytes:    DefaultMaxSubjectBytes,
		maxPolicyFileBytes: DefaultMaxPolicyFileBytes,
	}
	for _, opt := range opts {
		opt.apply(&o)
	}
	var errs []error
	if err := ValidateSigningRules(rules); err != nil {
		errs = append(errs, err)
	}
	pvRules, err := compilePVRules(o.pvRules)
	if err != nil {
		errs = append(errs, err)
	}
	if o.remotePath == "" {
		errs = append(errs, errors.New("gating: empty remote rule path"))
	}
	if o.remoteCacheSize <= 0 {
		errs = append(errs, errors.New("gating: remote policy cache size must be positive"))
	}
	if o.reevalChunk <= 0 {
		errs = append(errs, errors.New("gating: re-evaluation chunk must be positive"))
	}
	if err := validateBounds(o.maxSubjectBytes, o.maxPolicyFileBytes); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if policies == nil {
		policies = &PolicySet{version: emptyPolicyVersion}
	}
	e := &Engine{
		policies:      policies,
		pvRules:       pvRules,
		nvrTypes:      map[string]bool{},
		ignoreMissing: map[string]bool{SubjectBodhiUpdate: true},
		remotePath:    o.remotePath,
		remote:        &remoteCache{max: o.remoteCacheSize, m: map[remoteKey]remoteParsed{}},
		reevalChunk:   o.reevalChunk,

		maxSubjectBytes:    o.maxSubjectBytes,
		maxPolicyFileBytes: o.maxPolicyFileBytes,
	}
	for _, t := range o.nvrTypes {
		e.nvrTypes[NormalizeSubjectType(t)] = true
	}
	for _, r := range rules {
		r.KeyID = strings.ToLower(r.KeyID)
		e.rules = append(e.rules, r)
		if !slices.Contains(e.keyIDs, r.KeyID) {
			e.keyIDs = append(e.keyIDs, r.KeyID)
		}
	}
	slices.SortStableFunc(e.rules, func(a, b SigningRule) int {
		if a.Priority != b.Priority {
			return cmpInt(int(b.Priority), int(a.Priority))
		}
		return strings.Compare(a.Name, b.Name)
	})
	slices.Sort(e.keyIDs)

	// The engine version covers everything that can change a decision.
	h := sha256.New()
	cfg, _ := json.Marshal(struct {
		Policies   string
		Rules      []SigningRule
		PV         []ProductVersionRule
		NVRTypes   []string
		RemotePath string
	}{policies.Version(), e.rules, o.pvRules, sortedKeys(e.nvrTypes), o.remotePath})
	h.Write(cfg)
	e.version = hex.EncodeToString(h.Sum(nil))[:16]
	return e, nil
}

// Version is a short hash of the policies, signing rules and options:
// autosign decisions record it (gating decisions record the policy set's
// version).
func (e *Engine) Version() string { return e.version }

// Policies returns the engine's policy set.
func (e *Engine) Policies() *PolicySet { return e.policies }

// ProductVersions returns the product versions a subject is gated for as
// subjectType: the first matching override, else the built-in inference
// (the dist tag of NVR subjects, the compose id of composes), else the
// product versions its waivers name (Greenwave's WaiverDB listener decides
// for the waiver's product version; this is how a Bodhi update gets one).
func (e *Engine) ProductVersions(s *Subject, subjectType string) []string {
	t := NormalizeSubjectType(subjectType)
	for i := range e.pvRules {
		if pv, ok := e.pvRules[i].apply(t, s.ID); ok {
			return []string{pv}
		}
	}
	switch {
	case e.nvrTypes[t]:
		if pv, ok := ProductVersionFromNVR(s.ID); ok {
			return []string{pv}
		}
	case t == SubjectCompose:
		if pv, ok := ProductVersionFromComposeID(s.ID); ok {
			return []string{pv}
		}
	}
	var pvs []string
	for i := range s.Waivers {
		if w := &s.Waivers[i]; w.SubjectType == t {
			insertString(&pvs, w.ProductVersion)
		}
	}
	return pvs
}

// DecisionKey identifies one gating decision of a subject.
type DecisionKey struct {
	SubjectType     string
	DecisionContext string
	ProductVersion  string
}

func (k DecisionKey) compare(o DecisionKey) int {
	return cmpStrings(k.SubjectType, o.SubjectType, k.DecisionContext, o.DecisionContext,
		k.ProductVersion, o.ProductVersion)
}

// DecisionKeys returns, sorted, the decisions a subject gets: for each of
// its subject types and product versions, every decision context of every
// policy whose subject types and product versions match. A subject whose
// product version cannot be told gets none (query it with Evaluate).
func (e *Engine) DecisionKeys(s *Subject) []DecisionKey {
	var keys []DecisionKey
	for _, t := range s.Types {
		pvs := e.ProductVersions(s, t)
		if len(pvs) == 0 {
			continue
		}
		for _, p := range e.policies.Policies() {
			if !p.matchesSubjectType(t) {
				continue
			}
			for _, pv := range pvs {
				if !p.matchesProductVersion(pv) {
					continue
				}
				for _, c := range p.DecisionContexts {
					keys = append(keys, DecisionKey{SubjectType: t, DecisionContext: c, ProductVersion: pv})
				}
			}
		}
	}
	slices.SortFunc(keys, DecisionKey.compare)
	return slices.Compact(keys)
}

// remoteCache memoizes parsed remote rule files. Parsing is a pure
// function of the file, so the cache never changes a result.
type remoteCache struct {
	mu  sync.Mutex
	max int
	m   map[remoteKey]remoteParsed
}

type remoteKey struct{ name, content string }

type remoteParsed struct {
	policies []*Policy
	err      error
}

func (e *Engine) parseRemote(f *RemoteFile) ([]*Policy, error) {
	name := f.locator()
	key := remoteKey{name, f.Content}
	c := e.remote
	c.mu.Lock()
	r, ok := c.m[key]
	c.mu.Unlock()
	if ok {
		return r.policies, r.err
	}
	pols, err := ParseRemotePolicies(name, []byte(f.Content))
	c.mu.Lock()
	if len(c.m) >= c.max {
		clear(c.m)
	}
	c.m[key] = remoteParsed{pols, err}
	c.mu.Unlock()
	return pols, err
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// deriveEnvelope builds the envelope of an emitted record from its trigger
// so that a replay reproduces it byte for byte: the ID hashes the engine
// version, the source, the parts that identify the record and the
// trigger's ID; the times and origin are the trigger's (never the clock).
func (e *Engine) deriveEnvelope(source string, trigger *avro.Envelope, parts ...string) avro.Envelope {
	// The engine version is part of the identity: the same trigger under
	// other policies or signing rules may give another decision, and a
	// consumer deduplicating by id must not drop it as a repeat. Hashed
	// in one piece from a pooled buffer: a sha256.New and its writes
	// allocated four times per decision.
	bp := scratchPool.Get().(*[]byte)
	b := append((*bp)[:0], e.version...)
	b = append(b, 0)
	b = append(b, source...)
	for _, p := range parts {
		b = append(b, 0)
		b = append(b, p...)
	}
	b = append(b, 0)
	b = append(b, trigger.ID...)
	sum := sha256.Sum256(b)
	putScratch(bp, b)
	var id [2 * sha256.Size]byte
	hex.Encode(id[:], sum[:])
	return avro.Envelope{
		ID:         string(id[:]),
		Source:     source,
		EventTime:  trigger.EventTime,
		IngestTime: trigger.IngestTime,
		Origin:     trigger.Origin,
	}
}

func (e *Engine) String() string {
	return fmt.Sprintf("gating.Engine(%d policies, %d signing rules, version %s)",
		len(e.policies.Policies()), len(e.rules), e.version)
}
