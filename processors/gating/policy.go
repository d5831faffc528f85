package gating

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/factory2/factory2/internal/spell"
)

// PolicyError is a problem in a policy file: bad YAML, an unknown key, a
// value of the wrong type or a policy that fails validation. Line is
// 1-based; 0 when the YAML parser could not tell.
type PolicyError struct {
	File string
	Line int
	Msg  string
}

func (e *PolicyError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

// RuleKind is the kind of a policy rule.
type RuleKind uint8

// Rule kinds.
const (
	// RulePassingTestCase is Greenwave's !PassingTestCaseRule.
	RulePassingTestCase RuleKind = iota + 1
	// RuleRemote is Greenwave's !RemoteRule: the package's own gating.yaml.
	RuleRemote
)

func (k RuleKind) String() string {
	switch k {
	case RulePassingTestCase:
		return "PassingTestCaseRule"
	case RuleRemote:
		return "RemoteRule"
	}
	return "RuleKind(" + strconv.Itoa(int(k)) + ")"
}

// Rule is one rule of a policy.
type Rule struct {
	Kind RuleKind
	// TestCaseName, Scenario, ValidSince and ValidUntil belong to a
	// RulePassingTestCase. HasScenario tells an absent scenario (every
	// scenario counts) from an explicit one.
	TestCaseName string
	Scenario     string
	HasScenario  bool
	// ValidSince and ValidUntil, when not zero, restrict the rule to
	// builds created in [ValidSince, ValidUntil).
	ValidSince time.Time
	ValidUntil time.Time
	// Required and Sources belong to a RuleRemote. Sources are URL
	// templates; empty means the engine's default remote rule path.
	Required bool
	Sources  []string
	// Line is where the rule starts in its file.
	Line int

	k string // key(), computed at load
}

// key identifies a rule for Greenwave's per-decision de-duplication
// (RuleContext.verified_rules compares rules by their JSON form, which has
// the test case and scenario but not valid_since/valid_until).
func (r *Rule) key() string {
	switch r.Kind {
	case RulePassingTestCase:
		sc := "\x00none"
		if r.HasScenario {
			sc = r.Scenario
		}
		return "P\x00" + r.TestCaseName + "\x00" + sc
	default:
		return "R\x00" + strconv.FormatBool(r.Required) + "\x00" + strings.Join(r.Sources, "\x00")
	}
}

// Policy is one Greenwave policy document.
type Policy struct {
	// ID is required in server policies, optional in remote ones.
	ID string
	// File and Line locate the document.
	File string
	Line int
	// Remote is true for a package's own policy (gating.yaml).
	Remote bool
	// ProductVersions are fnmatch patterns ("fedora-*"). Remote policies
	// default to ["*"].
	ProductVersions []string
	// DecisionContexts is decision_context or decision_contexts.
	DecisionContexts []string
	// SubjectTypes is subject_type or subject_types, with aliases
	// resolved (brew-build is koji_build). Server policies default to
	// koji_build; remote policies to any subject type ("*").
	SubjectTypes []string
	// Packages and ExcludedPackages are fnmatch patterns on the package
	// name of NVR subjects; excluded wins. Blacklist is the old,
	// exact-name form of ExcludedPackages.
	Packages         []string
	ExcludedPackages []string
	Blacklist        []string
	// RelevanceKey and RelevanceValue are parsed and kept; Greenwave no
	// longer gives them a meaning.
	RelevanceKey   string
	RelevanceValue string
	Rules          []Rule

	pvGlobs        globs
	pkgGlobs       globs
	exclGlobs      globs
	anySubjectType bool
	// onDemand marks Greenwave's OnDemandPolicy: the rules of a decision
	// request (see OnDemandPolicy).
	onDemand bool
	// singleContext and singleSubjectType say the policy was written
	// with decision_context and subject_type (or left the subject type
	// to its default) rather than their list forms, as GET
	// /api/v1.0/policies shows it.
	singleContext, singleSubjectType bool
}

// label names the policy in messages the way Greenwave does.
func (p *Policy) label() string {
	if p.ID == "" {
		return "policy (untitled)"
	}
	return fmt.Sprintf("policy %q", p.ID)
}

func (p *Policy) hasContext(ctxs []string) bool {
	for _, c := range ctxs {
		if slices.Contains(p.DecisionContexts, c) {
			return true
		}
	}
	return false
}

func (p *Policy) matchesProductVersion(pv string) bool { return p.pvGlobs.match(pv) }

// matchesSubPolicy is Greenwave's Policy.matches_sub_policy: which
// policies of a remote rule file a RemoteRule of p takes. A server policy
// takes those sharing one of its decision contexts; an on-demand policy
// (OnDemandPolicy.matches_sub_policy) those whose product versions match
// one of its own.
func (p *Policy) matchesSubPolicy(sp *Policy) bool {
	if p.onDemand {
		for _, pv := range p.ProductVersions {
			if sp.matchesProductVersion(pv) {
				return true
			}
		}
		return false
	}
	return p.hasContext(sp.DecisionContexts)
}

func (p *Policy) matchesSubjectType(t string) bool {
	return p.anySubjectType || slices.Contains(p.SubjectTypes, t)
}

// matches is Greenwave's Policy.matches with match_any_remote_rule: the
// policy applies to the decision contexts (any of them), the product
// version and the subject type.
func (p *Policy) matches(ctxs []string, pv, subjectType string) bool {
	if len(ctxs) > 0 && !p.hasContext(ctxs) {
		return false
	}
	if pv != "" && !p.matchesProductVersion(pv) {
		return false
	}
	return p.matchesSubjectType(subjectType)
}

// PolicySet is an immutable, loaded set of server policies.
type PolicySet struct {
	policies []*Policy
	version  string
}

// Policies returns the policies in load order (file name, then document
// order). The caller must not modify them.
func (ps *PolicySet) Policies() []*Policy {
	if ps == nil {
		return nil
	}
	return ps.policies
}

// Version is a short content hash of the policy files (their base names and
// contents, in name order). Decisions record it.
func (ps *PolicySet) Version() string {
	if ps == nil {
		return emptyPolicyVersion
	}
	return ps.version
}

var emptyPolicyVersion = policyVersion(nil, nil)

func policyVersion(names []string, files map[string][]byte) string {
	h := sha256.New()
	var n [8]byte
	for _, name := range names {
		base := filepath.Base(name)
		binary.BigEndian.PutUint64(n[:], uint64(len(base)))
		h.Write(n[:])
		h.Write([]byte(base))
		binary.BigEndian.PutUint64(n[:], uint64(len(files[name])))
		h.Write(n[:])
		h.Write(files[name])
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// GreenwaveSubjectTypes are the subject types Greenwave's own
// configuration defines (conf/subject_types/*.yaml), the alias brew-build
// of koji_build included: the types a server policy may name unless
// others are declared with WithSubjectTypes.
var GreenwaveSubjectTypes = []string{SubjectBodhiUpdate, "brew-build", SubjectCompose, SubjectKojiBuild,
	SubjectContainerImage, SubjectModule}

// LoadOption configures LoadPolicies.
type LoadOption interface{ applyLoad(*loadOptions) }

type loadOptions struct {
	subjectTypes []string
}

type loadOptionFunc func(*loadOptions)

func (f loadOptionFunc) applyLoad(o *loadOptions) { f(o) }

// WithSubjectTypes declares subject types server policies may name
// besides GreenwaveSubjectTypes (an artifact type of your own, say
// "flatpak"). Types are data: declaring one is all it takes.
func WithSubjectTypes(types ...string) LoadOption {
	return loadOptionFunc(func(o *loadOptions) { o.subjectTypes = append(o.subjectTypes, types...) })
}

// LoadPolicies parses server policy files, keyed by file name. Every
// problem in every file is reported, each as a *PolicyError naming file
// and line, joined with errors.Join. A subject type that is neither one
// of GreenwaveSubjectTypes nor declared with WithSubjectTypes is an error:
// Greenwave accepts any, but a policy for a misspelt type (koji-build)
// would silently never apply.
func LoadPolicies(files map[string][]byte, opts ...LoadOption) (*PolicySet, error) {
	var o loadOptions
	for _, opt := range opts {
		opt.applyLoad(&o)
	}
	known := append(slices.Clone(GreenwaveSubjectTypes), o.subjectTypes...)
	slices.Sort(known)
	known = slices.Compact(known)
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	slices.Sort(names)
	var (
		all  []*Policy
		errs []error
	)
	for _, name := range names {
		pols, err := parsePolicies(name, files[name], false, known)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		all = append(all, pols...)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return &PolicySet{policies: all, version: policyVersion(names, files)}, nil
}

// LoadPolicyDir loads every *.yaml file of dir, like Greenwave's
// POLICIES_DIR.
func LoadPolicyDir(dir string, opts ...LoadOption) (*PolicySet, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, fmt.Errorf("gating: policy dir %s: %w", dir, err)
	}
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("gating: policy dir: %w", err)
	}
	files := make(map[string][]byte, len(paths))
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("gating: policy file: %w", err)
		}
		files[p] = b
	}
	return LoadPolicies(files, opts...)
}

// ParseRemotePolicies parses a package's gating.yaml (Greenwave's
// RemotePolicy): id and product_versions are optional (product_versions
// defaults to any), subject_type defaults to any, and !RemoteRule is not
// allowed. An empty file has no policies and is not an error.
func ParseRemotePolicies(name string, data []byte) ([]*Policy, error) {
	return parsePolicies(name, data, true, nil)
}

// parsePolicies parses the policy documents of a file. knownTypes are the
// subject types a server policy may name (remote policies may name any,
// as in Greenwave).
func parsePolicies(name string, data []byte, remote bool, knownTypes []string) ([]*Policy, error) {
	p := &policyParser{file: name, remote: remote, knownTypes: knownTypes}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var out []*Policy
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if err == io.EOF {
			break
		}
		if err != nil {
			p.errs = append(p.errs, yamlError(name, data, err))
			break
		}
		if len(doc.Content) == 0 {
			continue
		}
		if pol := p.document(doc.Content[0]); pol != nil {
			out = append(out, pol)
		}
	}
	if len(p.errs) > 0 {
		// In the order of the file (a document's checks run key by key,
		// then over the whole document).
		line := func(err error) int {
			var pe *PolicyError
			if errors.As(err, &pe) {
				return pe.Line
			}
			return 0
		}
		slices.SortStableFunc(p.errs, func(a, b error) int { return cmpInt(line(a), line(b)) })
		return nil, errors.Join(p.errs...)
	}
	return out, nil
}

var (
	yamlLineRE   = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)
	yamlAnchorRE = regexp.MustCompile(`^unknown anchor '(.*)' referenced$`)
)

// yamlError turns a YAML parser error into a PolicyError with the line
// it is at. Errors the parser reports without a line (a control
// character, an unknown anchor) get the line of what they name in data.
func yamlError(file string, data []byte, err error) *PolicyError {
	msg := err.Error()
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		// go.yaml.in/yaml/v3 reports parser errors ("did not find
		// expected ...") with a 0-based line, scanner errors 1-based.
		if strings.HasPrefix(m[2], "did not find expected") {
			line++
		}
		return &PolicyError{File: file, Line: line, Msg: "YAML parser error: " + m[2]}
	}
	msg = strings.TrimPrefix(msg, "yaml: ")
	at := -1
	switch m := yamlAnchorRE.FindStringSubmatch(msg); {
	case m != nil:
		at = bytes.Index(data, []byte("*"+m[1]))
	case strings.Contains(msg, "control characters"):
		at = bytes.IndexFunc(data, func(r rune) bool {
			return r != '\t' && r != '\n' && r != '\r' && (r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0 && r != 0x85))
		})
	}
	line := 0
	if at >= 0 {
		line = 1 + bytes.Count(data[:at], []byte{'\n'})
	}
	return &PolicyError{File: file, Line: line, Msg: "YAML parser error: " + msg}
}

type policyParser struct {
	file       string
	remote     bool
	knownTypes []string
	errs       []error
}

func (p *policyParser) errorf(n *yaml.Node, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	p.errs = append(p.errs, &PolicyError{File: p.file, Line: line, Msg: fmt.Sprintf(format, args...)})
}

func resolveAlias(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 16; i++ {
		n = n.Alias
	}
	return n
}

const policyTag = "!Policy"

func (p *policyParser) document(root *yaml.Node) *Policy {
	root = resolveAlias(root)
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return nil // empty document (e.g. a trailing "---")
	}
	if root.Tag != policyTag && root.Tag != "!!map" {
		p.errorf(root, "unexpected tag %s: a policy document is a mapping tagged %s%s", root.Tag, policyTag,
			spell.DidYouMean(root.Tag, []string{policyTag}))
		return nil
	}
	if root.Kind != yaml.MappingNode {
		p.errorf(root, "expected mapping for %s tagged object", policyTag)
		return nil
	}
	pol := &Policy{File: p.file, Line: root.Line, Remote: p.remote}
	// The id first, so that every message can name the policy.
	for i := 0; i+1 < len(root.Content); i += 2 {
		if k := root.Content[i]; k.Kind == yaml.ScalarNode && k.Value == "id" {
			if v := resolveAlias(root.Content[i+1]); v.Kind == yaml.ScalarNode {
				pol.ID = v.Value
			}
		}
	}
	label := pol.label()
	nerr := len(p.errs)
	seen := map[string]bool{}
	var dc, st string
	var hasDC, hasDCs, hasST, hasSTs, hasPV, hasRules, hasID bool
	var stNodes []*yaml.Node // where each subject type was written
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], resolveAlias(root.Content[i+1])
		if k.Kind != yaml.ScalarNode {
			p.errorf(k, "%s: keys must be strings", label)
			continue
		}
		key := k.Value
		if seen[key] {
			p.errorf(k, "%s: duplicate key %q", label, key)
			continue
		}
		seen[key] = true
		what := fmt.Sprintf("%s: attribute %q", label, key)
		switch key {
		case "id":
			hasID = true
			if s, ok := p.str(v, what); ok && s == "" && !p.remote {
				p.errorf(v, "%s: must not be empty", what)
			}
		case "product_versions":
			hasPV = true
			pol.ProductVersions, _ = p.strList(v, what)
		case "decision_context":
			dc, hasDC = p.str(v, what)
			hasDC = hasDC && dc != ""
		case "decision_contexts":
			pol.DecisionContexts, _ = p.strList(v, what)
			hasDCs = len(pol.DecisionContexts) > 0
		case "subject_type":
			st, hasST = p.str(v, what)
			if hasST && st == "" {
				p.errorf(v, "%s: must not be empty", what)
			}
			stNodes = []*yaml.Node{v}
		case "subject_types":
			pol.SubjectTypes, _ = p.strList(v, what)
			hasSTs = len(pol.SubjectTypes) > 0
			stNodes = v.Content
		case "rules":
			hasRules = true
			pol.Rules = p.rules(v, what)
			for i := range pol.Rules {
				pol.Rules[i].k = pol.Rules[i].key()
			}
		case "packages":
			pol.Packages, _ = p.strList(v, what)
		case "excluded_packages":
			pol.ExcludedPackages, _ = p.strList(v, what)
		case "blacklist":
			pol.Blacklist, _ = p.strList(v, what)
		case "relevance_key", "relevance_value":
			if p.remote {
				continue // not a remote policy attribute: ignored, as any unknown key
			}
			s, _ := p.str(v, what)
			if key == "relevance_key" {
				pol.RelevanceKey = s
			} else {
				pol.RelevanceValue = s
			}
		default:
			p.unknownKey(k, label, key, policyKeys)
		}
	}

	if !p.remote && !hasID {
		p.errorf(root, "%s: attribute %q is required", label, "id")
	}
	if !hasPV {
		if !p.remote {
			p.errorf(root, "%s: attribute %q is required", label, "product_versions")
		} else {
			pol.ProductVersions = []string{"*"}
		}
	}
	if !hasRules {
		p.errorf(root, "%s: attribute %q is required", label, "rules")
	}
	switch {
	case hasDC && hasDCs:
		p.errorf(root, `%s: both properties "decision_contexts" and "decision_context" were set`, label)
	case hasDC:
		pol.DecisionContexts = []string{dc}
		pol.singleContext = true
	case !hasDCs:
		p.errorf(root, "%s: no decision contexts provided", label)
	}
	switch {
	case hasST && hasSTs:
		p.errorf(root, `%s: both properties "subject_types" and "subject_type" were set`, label)
	case hasST:
		pol.SubjectTypes = []string{st}
		pol.singleSubjectType = true
	case !hasSTs && p.remote:
		pol.SubjectTypes = []string{"*"}
		pol.singleSubjectType = true
	case !hasSTs:
		pol.SubjectTypes = []string{SubjectKojiBuild}
		pol.singleSubjectType = true
	}
	for i, t := range pol.SubjectTypes {
		if !p.remote && t != "" && !slices.Contains(p.knownTypes, t) {
			at := root
			if len(stNodes) == len(pol.SubjectTypes) {
				at = stNodes[i]
			}
			p.errorf(at, "%s: unknown subject type %q: the known ones are %s%s (declare one of your own in gating.extra_subject_types)",
				label, t, strings.Join(p.knownTypes, ", "), spell.DidYouMean(t, p.knownTypes))
		}
		pol.SubjectTypes[i] = NormalizeSubjectType(t)
		if p.remote && t == "*" {
			pol.anySubjectType = true
		}
	}
	if p.remote {
		for _, r := range pol.Rules {
			if r.Kind == RuleRemote {
				p.errorf(root, "%s: RemoteRule is not allowed in remote policies", label)
				break
			}
		}
	}
	pol.pvGlobs = p.globs(root, label, pol.ProductVersions)
	pol.pkgGlobs = p.globs(root, label, pol.Packages)
	pol.exclGlobs = p.globs(root, label, pol.ExcludedPackages)
	if len(p.errs) > nerr {
		return nil
	}
	return pol
}

func (p *policyParser) globs(n *yaml.Node, label string, patterns []string) globs {
	var gs globs
	for _, pat := range patterns {
		g, err := compileGlob(pat)
		if err != nil {
			p.errorf(n, "%s: %v", label, err)
			continue
		}
		gs = append(gs, g)
	}
	return gs
}

// str reads a scalar as a string, as Greenwave's SafeYAMLString does (any
// scalar; its text).
func (p *policyParser) str(n *yaml.Node, what string) (string, bool) {
	if n.Kind != yaml.ScalarNode || !strings.HasPrefix(n.Tag, "!!") {
		p.errorf(n, "%s: expected a string", what)
		return "", false
	}
	if n.Tag == "!!null" {
		p.errorf(n, "%s: expected a string, got null", what)
		return "", false
	}
	return n.Value, true
}

// strList reads a sequence of strings (Greenwave's SafeYAMLList(str): the
// items must be strings, so "- 26" is an error; quote it).
func (p *policyParser) strList(n *yaml.Node, what string) ([]string, bool) {
	if n.Kind != yaml.SequenceNode {
		p.errorf(n, "%s: expected a list of strings", what)
		return nil, false
	}
	out := make([]string, 0, len(n.Content))
	ok := true
	for _, it := range n.Content {
		it = resolveAlias(it)
		if it.Kind != yaml.ScalarNode || it.Tag != "!!str" {
			p.errorf(it, "%s: expected a list of strings, got %s", what, describeNode(it))
			ok = false
			continue
		}
		out = append(out, it.Value)
	}
	return out, ok
}

func describeNode(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%s %q", strings.TrimPrefix(n.Tag, "!!"), n.Value)
	}
	return "a node"
}

// yamlBools are the YAML 1.1 booleans PyYAML's SafeLoader accepts.
var yamlBools = map[string]bool{
	"true": true, "True": true, "TRUE": true,
	"yes": true, "Yes": true, "YES": true,
	"on": true, "On": true, "ON": true,
	"false": false, "False": false, "FALSE": false,
	"no": false, "No": false, "NO": false,
	"off": false, "Off": false, "OFF": false,
}

func (p *policyParser) boolean(n *yaml.Node, what string) bool {
	if n.Kind == yaml.ScalarNode && strings.HasPrefix(n.Tag, "!!") {
		if b, ok := yamlBools[n.Value]; ok {
			return b
		}
	}
	p.errorf(n, "%s: expected a boolean value, got: %s", what, n.Value)
	return false
}

// timeLayouts are the date/time forms accepted for valid_since and
// valid_until (Greenwave uses dateutil, which is more lenient still).
// Times without a zone are UTC.
var timeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999Z0700",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999Z0700",
	"2006-01-02 15:04:05.999999999 Z07:00",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04",
	"2006-01-02 15:04",
	"2006-01-02",
}

func parseTime(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return normTime(t), true
		}
	}
	return time.Time{}, false
}

func (p *policyParser) datetime(n *yaml.Node, what string) time.Time {
	if n.Kind == yaml.ScalarNode && strings.HasPrefix(n.Tag, "!!") {
		if t, ok := parseTime(n.Value); ok {
			return t
		}
	}
	p.errorf(n, "%s: could not parse string as date/time, got: %s", what, n.Value)
	return time.Time{}
}

const (
	tagPassingTestCaseRule = "!PassingTestCaseRule"
	tagRemoteRule          = "!RemoteRule"
)

func (p *policyParser) rules(n *yaml.Node, what string) []Rule {
	if n.Kind != yaml.SequenceNode {
		p.errorf(n, "%s: expected list of Rule objects", what)
		return nil
	}
	out := make([]Rule, 0, len(n.Content))
	for i, it := range n.Content {
		it = resolveAlias(it)
		rwhat := fmt.Sprintf("%s: rules[%d]", strings.TrimSuffix(what, `: attribute "rules"`), i)
		switch it.Tag {
		case tagPassingTestCaseRule:
			if r, ok := p.passingTestCaseRule(it, rwhat); ok {
				out = append(out, r)
			}
		case tagRemoteRule:
			if r, ok := p.remoteRule(it, rwhat); ok {
				out = append(out, r)
			}
		case "!PackageSpecificBuild", "!FedoraAtomicCi":
			p.errorf(it, `%s: %s is obsolete. Please use the "packages" allowlist instead.`, rwhat, it.Tag)
		default:
			p.badRule(it, rwhat)
		}
	}
	return out
}

// ruleTags are the tags of the rules a policy may have.
var ruleTags = []string{tagPassingTestCaseRule, tagRemoteRule}

// badRule reports a rule that is not tagged as one: an unknown tag is
// named, with the tag probably meant; an untagged one is told to be.
func (p *policyParser) badRule(n *yaml.Node, what string) {
	if strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.Tag, "!!") {
		p.errorf(n, "%s: unknown rule tag %s%s (a rule is tagged %s or %s)",
			what, n.Tag, spell.DidYouMean(n.Tag, ruleTags), tagPassingTestCaseRule, tagRemoteRule)
		return
	}
	p.errorf(n, "%s: expected list of Rule objects (tagged %s or %s), got %s",
		what, tagPassingTestCaseRule, tagRemoteRule, describeNode(n))
}

// ruleFields returns the key/value pairs of a rule node, which is a
// mapping or an empty scalar ("- !RemoteRule").
func (p *policyParser) ruleFields(n *yaml.Node, what string) ([][2]*yaml.Node, bool) {
	if n.Kind == yaml.ScalarNode && n.Value == "" {
		return nil, true
	}
	if n.Kind != yaml.MappingNode {
		p.errorf(n, "%s: expected a mapping", what)
		return nil, false
	}
	seen := map[string]bool{}
	var out [][2]*yaml.Node
	ok := true
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		if k.Kind != yaml.ScalarNode {
			p.errorf(k, "%s: keys must be strings", what)
			ok = false
			continue
		}
		if seen[k.Value] {
			p.errorf(k, "%s: duplicate key %q", what, k.Value)
			ok = false
			continue
		}
		seen[k.Value] = true
		out = append(out, [2]*yaml.Node{k, resolveAlias(n.Content[i+1])})
	}
	return out, ok
}

func (p *policyParser) passingTestCaseRule(n *yaml.Node, what string) (Rule, bool) {
	what += ": " + tagPassingTestCaseRule
	r := Rule{Kind: RulePassingTestCase, Line: n.Line}
	nerr := len(p.errs)
	fields, _ := p.ruleFields(n, what)
	hasName := false
	for _, kv := range fields {
		k, v := kv[0], kv[1]
		fwhat := fmt.Sprintf("%s: attribute %q", what, k.Value)
		switch k.Value {
		case "test_case_name":
			hasName = true
			if name, ok := p.str(v, fwhat); ok {
				if name == "" {
					p.errorf(v, "%s: must not be empty", fwhat)
				}
				r.TestCaseName = name
			}
		case "scenario":
			if v.Tag == "!!null" {
				continue // scenario: null is no scenario
			}
			r.Scenario, r.HasScenario = p.str(v, fwhat)
		case "valid_since":
			r.ValidSince = p.datetime(v, fwhat)
		case "valid_until":
			r.ValidUntil = p.datetime(v, fwhat)
		default:
			p.unknownKey(k, what, k.Value, testCaseRuleKeys)
		}
	}
	if !hasName {
		p.errorf(n, "%s: attribute %q is required", what, "test_case_name")
	}
	return r, len(p.errs) == nerr
}

// unknownKey reports a key the policy format does not have. In server
// policies (ours) it is an error, so a typo stops the service at start
// instead of silently changing what is gated. A package's gating.yaml is
// read as Greenwave reads it, which ignores unknown keys: rejecting what
// Greenwave accepts would block packagers' builds on files they cannot fix
// in time.
func (p *policyParser) unknownKey(k *yaml.Node, what, key string, known []string) {
	if p.remote {
		return
	}
	p.errorf(k, "%s: unknown key %q%s", what, key, spell.DidYouMean(key, known))
}

// The keys of a policy and of its rules, for suggestions.
var (
	policyKeys = []string{"id", "product_versions", "decision_context", "decision_contexts", "subject_type",
		"subject_types", "rules", "packages", "excluded_packages", "blacklist", "relevance_key", "relevance_value"}
	testCaseRuleKeys = []string{"test_case_name", "scenario", "valid_since", "valid_until"}
	remoteRuleKeys   = []string{"required", "sources"}
)

func (p *policyParser) remoteRule(n *yaml.Node, what string) (Rule, bool) {
	what += ": " + tagRemoteRule
	r := Rule{Kind: RuleRemote, Line: n.Line}
	nerr := len(p.errs)
	fields, _ := p.ruleFields(n, what)
	for _, kv := range fields {
		k, v := kv[0], kv[1]
		fwhat := fmt.Sprintf("%s: attribute %q", what, k.Value)
		switch k.Value {
		case "required":
			r.Required = p.boolean(v, fwhat)
		case "sources":
			r.Sources, _ = p.strList(v, fwhat)
		default:
			p.unknownKey(k, what, k.Value, remoteRuleKeys)
		}
	}
	return r, len(p.errs) == nerr
}
