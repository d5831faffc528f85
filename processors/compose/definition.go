package compose

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path"
	"slices"
	"time"

	"github.com/factory2/factory2/avro"
)

// definition is what a compose must contain, from its latest definition
// event.
type definition struct {
	ProductVersion   string   `json:"product_version,omitempty"`
	SourceTags       []string `json:"source_tags"`
	PackagesAllow    []string `json:"packages_allow,omitempty"`
	PackagesDeny     []string `json:"packages_deny,omitempty"`
	SigningKey       string   `json:"signing_key,omitempty"`
	DecisionContexts []string `json:"decision_contexts,omitempty"`
	MinInterval      int64    `json:"min_interval_ms,omitempty"`
	// Window bounds, minutes after midnight UTC; both -1 when unset.
	WindowStart int  `json:"window_start"`
	WindowEnd   int  `json:"window_end"`
	Retired     bool `json:"retired,omitempty"`
	// EventID is the definition event's envelope id; Version a hash of
	// the fields above (what decisions carry as policy_version).
	EventID string `json:"event_id"`
	Version string `json:"version"`
}

// parseDefinition checks a definition event and returns its definition.
func parseDefinition(e *avro.ComposeEvent) (*definition, error) {
	var errs []error
	d := &definition{
		ProductVersion:   e.ProductVersion,
		SourceTags:       e.SourceTags,
		PackagesAllow:    e.PackagesAllow,
		PackagesDeny:     e.PackagesDeny,
		SigningKey:       e.SigningKey,
		DecisionContexts: e.DecisionContexts,
		MinInterval:      e.Cadence.MinIntervalMS,
		WindowStart:      -1,
		WindowEnd:        -1,
		Retired:          e.Retired,
		EventID:          e.ID,
	}
	switch {
	case len(d.SourceTags) == 0 && len(e.Contents) > 0 && !d.Retired:
		errs = append(errs, errors.New("a fixed list of contents and no source tags: the content of a compose whose readiness is followed comes from source tags"))
	case len(d.SourceTags) == 0 && !d.Retired:
		errs = append(errs, errors.New("no source tags"))
	}
	for i, t := range d.SourceTags {
		if t == "" || slices.Contains(d.SourceTags[:i], t) {
			errs = append(errs, fmt.Errorf("source tag %q is empty or repeated", t))
		}
	}
	for _, g := range slices.Concat(d.PackagesAllow, d.PackagesDeny) {
		if _, err := path.Match(g, ""); err != nil {
			errs = append(errs, fmt.Errorf("package glob %q: %v", g, err))
		}
	}
	if d.MinInterval < 0 {
		errs = append(errs, fmt.Errorf("cadence min_interval_ms %d is negative", d.MinInterval))
	}
	if (e.Cadence.WindowStart == "") != (e.Cadence.WindowEnd == "") {
		errs = append(errs, errors.New("cadence window needs both window_start and window_end"))
	} else if e.Cadence.WindowStart != "" {
		var err1, err2 error
		d.WindowStart, err1 = parseClock(e.Cadence.WindowStart)
		d.WindowEnd, err2 = parseClock(e.Cadence.WindowEnd)
		errs = append(errs, err1, err2)
		if d.WindowStart == d.WindowEnd && err1 == nil && err2 == nil {
			errs = append(errs, fmt.Errorf("cadence window %s-%s is empty", e.Cadence.WindowStart, e.Cadence.WindowEnd))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	h := sha256.New()
	for _, f := range [][]string{{d.ProductVersion, d.SigningKey}, d.SourceTags, d.PackagesAllow, d.PackagesDeny, d.DecisionContexts,
		{fmt.Sprint(d.MinInterval, d.WindowStart, d.WindowEnd, d.Retired)}} {
		for _, s := range f {
			h.Write([]byte(s))
			h.Write([]byte{0})
		}
		h.Write([]byte{1})
	}
	d.Version = hex.EncodeToString(h.Sum(nil)[:8])
	return d, nil
}

// parseClock parses "HH:MM" into minutes after midnight.
func parseClock(s string) (int, error) {
	t, err := time.Parse("15:04", s)
	if err != nil {
		return -1, fmt.Errorf("cadence time %q: want HH:MM", s)
	}
	return t.Hour()*60 + t.Minute(), nil
}

// allows reports whether pkg may be in the content.
func (d *definition) allows(pkg string) bool {
	for _, g := range d.PackagesDeny {
		if ok, _ := path.Match(g, pkg); ok {
			return false
		}
	}
	if len(d.PackagesAllow) == 0 {
		return true
	}
	for _, g := range d.PackagesAllow {
		if ok, _ := path.Match(g, pkg); ok {
			return true
		}
	}
	return false
}

// tagIndex returns the priority of tag among the source tags, or -1.
func (d *definition) tagIndex(tag string) int { return slices.Index(d.SourceTags, tag) }

// sameContentRules reports whether d and o select and judge content the
// same way (cadence and retirement aside).
func (d *definition) sameContentRules(o *definition) bool {
	return d.ProductVersion == o.ProductVersion && d.SigningKey == o.SigningKey &&
		slices.Equal(d.SourceTags, o.SourceTags) && slices.Equal(d.PackagesAllow, o.PackagesAllow) &&
		slices.Equal(d.PackagesDeny, o.PackagesDeny) && slices.Equal(d.DecisionContexts, o.DecisionContexts)
}

// nextAllowed returns the earliest time at or after t when the cadence
// lets a compose-ready out, given the time of the last one (zero: none).
func (d *definition) nextAllowed(t, last time.Time) time.Time {
	if d.MinInterval > 0 && !last.IsZero() {
		if next := last.Add(time.Duration(d.MinInterval) * time.Millisecond); next.After(t) {
			t = next
		}
	}
	if d.WindowStart < 0 {
		return t
	}
	t = t.UTC()
	midnight := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	min := t.Hour()*60 + t.Minute()
	if inWindow(min, d.WindowStart, d.WindowEnd) {
		return t
	}
	start := midnight.Add(time.Duration(d.WindowStart) * time.Minute)
	if !start.After(t) {
		start = start.AddDate(0, 0, 1)
	}
	return start
}

// inWindow reports whether minute m of the day is in [start, end), a
// window that may wrap midnight.
func inWindow(m, start, end int) bool {
	if start < end {
		return m >= start && m < end
	}
	return m >= start || m < end
}
