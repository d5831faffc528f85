package config

import (
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/factory2/factory2/avro"
	"github.com/factory2/factory2/internal/ingest"
)

// Compose is one compose definition (composes[]): the builds a compose
// is made of and what each must have for the compose to be ready. It
// becomes an avro.ComposeEvent of kind definition (see Event).
type Compose struct {
	// ID is the compose id, the definition's key (required, unique).
	ID string `yaml:"id"`
	// ProductVersion is the compose's product version, e.g.
	// fedora-rawhide.
	ProductVersion string `yaml:"product_version"`
	// SourceTags are the Koji tags whose latest build of each package
	// makes the content, in priority order: a package in several tags
	// comes from the first. At least one unless Retired.
	SourceTags []string `yaml:"source_tags"`
	// PackagesAllow, when not empty, keeps only the packages whose name
	// matches one of these globs (path.Match syntax); PackagesDeny drops
	// those matching one.
	PackagesAllow []string `yaml:"packages_allow"`
	PackagesDeny  []string `yaml:"packages_deny"`
	// SigningKey is the key id (hexadecimal, as sign events name it)
	// every build must be signed with; empty: no signature required.
	SigningKey string `yaml:"signing_key"`
	// DecisionContexts are the gating decision contexts every build must
	// satisfy.
	DecisionContexts []string `yaml:"decision_contexts"`
	// Cadence limits how often and when the compose is said ready.
	Cadence Cadence `yaml:"cadence"`
	// Retired definitions produce no more decisions; they are still
	// emitted (retired: true) so that the compose processor learns it.
	Retired bool `yaml:"retired"`
}

// Cadence is a compose's cadence; the zero value means as soon as ready.
type Cadence struct {
	// MinInterval, when positive, is the least time between two
	// compose-ready decisions (a Go duration such as 6h; whole
	// milliseconds).
	MinInterval time.Duration `yaml:"min_interval"`
	// WindowStart and WindowEnd ("HH:MM", UTC), both or neither, are the
	// daily window outside which compose-ready waits; the window may wrap
	// midnight ("22:00" to "04:00").
	WindowStart string `yaml:"window_start"`
	WindowEnd   string `yaml:"window_end"`
}

// DefinitionSource is the envelope source of the definition events made
// from the configuration.
const DefinitionSource = "factory2/config"

// Event returns the definition event of c: kind definition, keyed by
// c.ID, source DefinitionSource, and an id that is a hash of its content
// (ingest.ContentID of the event without event time), so emitting an
// unchanged definition again gives the same id. The event time is left
// empty for the emitter to set (a definition is an operator's act: now).
func (c Compose) Event() (*avro.ComposeEvent, error) {
	ev := c.definition()
	ev.Source = DefinitionSource
	id, err := ingest.ContentID(ev)
	if err != nil {
		return nil, fmt.Errorf("config: compose %s: %w", c.ID, err)
	}
	ev.ID = id
	return ev, nil
}

// definition is the event of c without envelope.
func (c Compose) definition() *avro.ComposeEvent {
	return &avro.ComposeEvent{
		Kind:             avro.ComposeDefinition,
		ComposeID:        c.ID,
		ProductVersion:   c.ProductVersion,
		SourceTags:       c.SourceTags,
		PackagesAllow:    c.PackagesAllow,
		PackagesDeny:     c.PackagesDeny,
		SigningKey:       c.SigningKey,
		DecisionContexts: c.DecisionContexts,
		Cadence: avro.ComposeCadence{
			MinIntervalMS: c.Cadence.MinInterval.Milliseconds(),
			WindowStart:   c.Cadence.WindowStart,
			WindowEnd:     c.Cadence.WindowEnd,
		},
		Retired: c.Retired,
	}
}

// validateComposes reports the problems of the composes section, each
// naming its entry: ingest's rules for definition events
// (ingest.DefinitionProblems), plus an id that is present and unique and
// a min_interval that is not negative and in whole milliseconds.
func validateComposes(cs []Compose) []error {
	var errs []error
	seen := map[string]int{}
	for i, c := range cs {
		entry := fmt.Sprintf("composes[%d]", i)
		if c.ID != "" {
			entry += " (" + c.ID + ")"
		}
		bad := func(format string, args ...any) {
			errs = append(errs, fmt.Errorf("%s: %s", entry, fmt.Sprintf(format, args...)))
		}
		switch first, dup := seen[c.ID]; {
		case strings.TrimSpace(c.ID) == "":
			bad("id: required")
		case strings.ContainsFunc(c.ID, unicode.IsSpace):
			bad("id %q: must not contain white space", c.ID)
		case dup:
			bad("id: also the id of composes[%d]", first)
		default:
			seen[c.ID] = i
		}
		switch d := c.Cadence.MinInterval; {
		case d < 0:
			bad("cadence.min_interval %s: must not be negative", d)
		case d%time.Millisecond != 0:
			bad("cadence.min_interval %s: must be whole milliseconds", d)
		}
		for _, p := range ingest.DefinitionProblems(c.definition()) {
			if p.Field == "cadence.min_interval_ms" {
				continue // checked above, as the duration it was given as
			}
			bad("%s: %v", p.Field, p.Err)
		}
	}
	return errs
}
