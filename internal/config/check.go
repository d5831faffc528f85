package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/factory2/factory2/internal/spell"
	"github.com/factory2/factory2/processors/gating"
)

// PolicySet loads the policy files of gating.policies (a directory stands
// for its *.yaml and *.yml files) with the subject types the
// configuration declares. Every problem is reported at once: paths that
// cannot be read, and every problem of every policy file, each naming
// its file and line. No policy file at all is a nil set, not an error.
func (g Gating) PolicySet() (*gating.PolicySet, error) {
	files, errs := g.policyFiles()
	if len(files) == 0 {
		return nil, errors.Join(errs...)
	}
	ps, err := gating.LoadPolicies(files, gating.WithSubjectTypes(g.ExtraSubjectTypes...))
	return ps, errors.Join(append(errs, err)...)
}

// policyFiles reads the policy files of g.Policies, by path.
func (g Gating) policyFiles() (map[string][]byte, []error) {
	files := map[string][]byte{}
	var errs []error
	for _, path := range g.Policies {
		fi, err := os.Stat(path)
		if err != nil {
			errs = append(errs, fmt.Errorf("gating.policies: %w", err))
			continue
		}
		paths := []string{path}
		if fi.IsDir() {
			paths, _ = filepath.Glob(filepath.Join(path, "*.yaml"))
			more, _ := filepath.Glob(filepath.Join(path, "*.yml"))
			paths = append(paths, more...)
		}
		for _, p := range paths {
			b, err := os.ReadFile(p)
			if err != nil {
				errs = append(errs, fmt.Errorf("gating.policies: %w", err))
				continue
			}
			files[p] = b
		}
	}
	return files, errs
}

// GatingEngine loads the policies and builds the gating and autosign
// engine of c. A broken policy set is an error: deciding with half the
// policies would emit wrong decisions.
func (c Config) GatingEngine() (*gating.Engine, error) {
	ps, err := c.Gating.PolicySet()
	if err != nil {
		return nil, err
	}
	return gating.NewEngine(ps, c.Gating.SigningRules,
		gating.WithProductVersionRules(c.Gating.ProductVersions...),
		gating.WithMaxSubjectBytes(c.Gating.MaxSubjectBytes),
		gating.WithMaxPolicyFileBytes(c.Gating.MaxPolicyFileBytes))
}

// Check loads the configuration file at path and reports every problem it
// has, at once: unknown keys and values of the wrong type, invalid
// values, policy files that cannot be read or parsed, and what only shows
// once the policies are known: a directory of gating.policies without a
// policy file, and a decision context that a compose, a signing rule or
// the rebuild rules require but no policy has (the compose would never be
// ready, the rule never sign, nothing be rebuilt). It connects to nothing.
func Check(path string) error {
	cfg, err := Load(path)
	var pe *os.PathError
	if errors.Is(err, ErrSyntax) || errors.As(err, &pe) {
		return err // nothing more can be read
	}
	var errs []error
	if err != nil {
		errs = append(errs, errors.Unwrap(err)) // without "config: path: ", added once below
	}
	ps, perr := cfg.Gating.PolicySet()
	errs = append(errs, perr)
	for _, p := range cfg.Gating.Policies {
		if fi, err := os.Stat(p); err == nil && fi.IsDir() {
			if files, _ := (Gating{Policies: []string{p}}).policyFiles(); len(files) == 0 {
				errs = append(errs, fmt.Errorf("gating.policies: %s: a directory without a *.yaml or *.yml policy file", p))
			}
		}
	}
	errs = append(errs, cfg.Kafka.CheckFiles()...)
	errs = append(errs, cfg.HTTP.CheckFiles()...)
	if perr == nil {
		errs = append(errs, contextProblems(cfg, ps)...)
	}
	if err == nil && perr == nil {
		// The engine's own checks; they repeat Validate's, so only when
		// Validate passed.
		if _, err := cfg.GatingEngine(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("config: %s: %w", path, err)
	}
	return nil
}

// contextProblems reports the decision contexts composes, signing rules
// and rebuild rules require that no policy of ps has.
func contextProblems(cfg Config, ps *gating.PolicySet) []error {
	var known []string
	for _, p := range ps.Policies() {
		known = append(known, p.DecisionContexts...)
	}
	slices.Sort(known)
	known = slices.Compact(known)
	missing := func(ctx string) error {
		if slices.Contains(known, ctx) {
			return nil
		}
		if len(known) == 0 {
			return fmt.Errorf("decision context %q: no policy is loaded (gating.policies)", ctx)
		}
		return fmt.Errorf("decision context %q is the decision context of no policy%s (they have: %s)",
			ctx, spell.DidYouMean(ctx, known), strings.Join(known, ", "))
	}
	var errs []error
	for i, c := range cfg.Composes {
		for _, ctx := range c.DecisionContexts {
			if err := missing(ctx); err != nil {
				errs = append(errs, fmt.Errorf("composes[%d] (%s): decision_contexts: %w", i, c.ID, err))
			}
		}
	}
	for _, r := range cfg.Gating.SigningRules {
		if r.RequireContext == "" {
			continue
		}
		if err := missing(r.RequireContext); err != nil {
			errs = append(errs, fmt.Errorf("gating.signing_rules (%s): require_context: %w", r.Name, err))
		}
	}
	if ctx := cfg.Rebuild.Context; ctx != "" {
		if err := missing(ctx); err != nil {
			errs = append(errs, fmt.Errorf("rebuild.context: %w", err))
		}
	}
	return errs
}
