package check

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
)

// Deploy is the deploy/ directory, from this package's directory.
const Deploy = ".."

// Use is one metric name an artifact uses, and where.
type Use struct {
	Name  string
	Where string // e.g. `alert Factory2LagHigh`, `panel "Lag" query A`
}

// LoadRules parses a rule file as Prometheus does (unknown fields are
// errors, every expression and template must parse) and returns the
// groups.
func LoadRules(path string) (*rulefmt.RuleGroups, error) {
	log := slog.New(slog.DiscardHandler)
	groups, errs := rulefmt.ParseFile(path, false, model.UTF8Validation, newParser(), log)
	if len(errs) > 0 {
		var msgs []string
		for _, e := range errs {
			msgs = append(msgs, e.Error())
		}
		return nil, fmt.Errorf("%s", strings.Join(msgs, "\n"))
	}
	return groups, nil
}

// RuleUses returns the metric names and the labels of every rule's
// expression.
func RuleUses(groups *rulefmt.RuleGroups) ([]Use, []LabelUse, error) {
	var uses []Use
	var lus []LabelUse
	p := newParser()
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			where := "alert " + r.Alert
			if r.Record != "" {
				where = "record " + r.Record
			}
			names, err := MetricNames(p, r.Expr)
			if err != nil {
				return nil, nil, fmt.Errorf("group %s, %s: %w", g.Name, where, err)
			}
			for _, n := range names {
				uses = append(uses, Use{Name: n, Where: where})
			}
			ls, err := LabelUses(p, r.Expr)
			if err != nil {
				return nil, nil, err
			}
			for _, l := range ls {
				l.Where = where
				lus = append(lus, l)
			}
		}
	}
	return uses, lus, nil
}

// Dashboard is what the checks read of a Grafana dashboard.
type Dashboard struct {
	UID        string  `json:"uid"`
	Title      string  `json:"title"`
	Panels     []Panel `json:"panels"`
	Templating struct {
		List []Variable `json:"list"`
	} `json:"templating"`
}

// Panel is a dashboard panel; a row holds its collapsed panels.
type Panel struct {
	ID         int             `json:"id"`
	Type       string          `json:"type"`
	Title      string          `json:"title"`
	Datasource *DatasourceRef  `json:"datasource"`
	Targets    []Target        `json:"targets"`
	Panels     []Panel         `json:"panels"`
	GridPos    *map[string]int `json:"gridPos"`
}

// Target is one query of a panel.
type Target struct {
	RefID      string         `json:"refId"`
	Expr       string         `json:"expr"`
	Datasource *DatasourceRef `json:"datasource"`
}

// DatasourceRef names a data source.
type DatasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// Variable is a template variable; Query is a string, or an object with a
// "query" string.
type Variable struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Query      json.RawMessage `json:"query"`
	Datasource *DatasourceRef  `json:"datasource"`
}

// QueryString is the variable's query, in either form.
func (v Variable) QueryString() string {
	var s string
	if json.Unmarshal(v.Query, &s) == nil {
		return s
	}
	var o struct {
		Query string `json:"query"`
	}
	_ = json.Unmarshal(v.Query, &o)
	return o.Query
}

// LoadDashboard reads a dashboard JSON file.
func LoadDashboard(path string) (*Dashboard, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var d Dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &d, nil
}

// AllPanels are the dashboard's panels, those inside rows included.
func (d *Dashboard) AllPanels() []Panel {
	var out []Panel
	var walk func([]Panel)
	walk = func(ps []Panel) {
		for _, p := range ps {
			out = append(out, p)
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return out
}

// DashboardUses returns the metric names and the labels of every panel
// query and every query variable.
func DashboardUses(d *Dashboard) ([]Use, []LabelUse, error) {
	var uses []Use
	var lus []LabelUse
	p := newParser()
	add := func(where, query string) error {
		promql := GrafanaPromQL(query)
		names, err := MetricNames(p, promql)
		if err != nil {
			return fmt.Errorf("%s: %s: %w", where, query, err)
		}
		for _, n := range names {
			uses = append(uses, Use{Name: n, Where: where})
		}
		ls, err := LabelUses(p, promql)
		if err != nil {
			return err
		}
		if l := LabelValuesLabel(query); l != "" && !slices.Contains(targetLabels, l) {
			ls = append(ls, LabelUse{Label: l, Metrics: names})
		}
		for _, l := range ls {
			l.Where = where
			lus = append(lus, l)
		}
		return nil
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		if err := add(fmt.Sprintf("variable $%s", v.Name), v.QueryString()); err != nil {
			return nil, nil, err
		}
	}
	for _, pn := range d.AllPanels() {
		for _, t := range pn.Targets {
			if err := add(fmt.Sprintf("panel %q query %s", pn.Title, t.RefID), t.Expr); err != nil {
				return nil, nil, err
			}
		}
	}
	return uses, lus, nil
}

// Missing lists the uses whose name is not in exposed, as lines "name
// (where, where)", sorted. synthesized are names Prometheus makes itself
// rather than scraping (up).
func Missing(uses []Use, exposed Exposed, synthesized ...string) []string {
	where := map[string][]string{}
	for _, u := range uses {
		if exposed.Has(u.Name) || slices.Contains(synthesized, u.Name) {
			continue
		}
		if !slices.Contains(where[u.Name], u.Where) {
			where[u.Name] = append(where[u.Name], u.Where)
		}
	}
	var out []string
	for n, ws := range where {
		out = append(out, fmt.Sprintf("%s (%s)", n, strings.Join(ws, ", ")))
	}
	slices.Sort(out)
	return out
}

// MissingLabels lists the label uses no exposed series of their metrics
// carries, as lines "label L on metrics (where, where)", sorted. A use none
// of whose metrics is exposed is left to Missing.
func MissingLabels(uses []LabelUse, exposed Exposed) []string {
	where := map[string][]string{}
	for _, u := range uses {
		if !slices.ContainsFunc(u.Metrics, exposed.Has) || exposed.HasLabel(u.Label, u.Metrics) {
			continue
		}
		k := fmt.Sprintf("label %s on %s", u.Label, strings.Join(u.Metrics, " or "))
		if !slices.Contains(where[k], u.Where) {
			where[k] = append(where[k], u.Where)
		}
	}
	var out []string
	for k, ws := range where {
		out = append(out, fmt.Sprintf("%s (%s)", k, strings.Join(ws, ", ")))
	}
	slices.Sort(out)
	return out
}

// deployPath is a file under deploy/.
func deployPath(parts ...string) string {
	return filepath.Join(append([]string{Deploy}, parts...)...)
}
