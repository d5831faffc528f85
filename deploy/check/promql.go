package check

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

// newParser is the PromQL parser Prometheus itself uses by default.
func newParser() parser.Parser { return parser.NewParser(parser.Options{}) }

// MetricNames returns the metric names the PromQL expression selects,
// sorted and without duplicates: the name of every vector and matrix
// selector, written as a name or as an equality matcher on __name__. A
// selector that names its metric by a regular expression is an error: its
// names cannot be checked.
func MetricNames(p parser.Parser, expr string) ([]string, error) {
	e, err := p.ParseExpr(expr)
	if err != nil {
		return nil, err
	}
	var names []string
	var problems []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		name := vs.Name
		for _, m := range vs.LabelMatchers {
			if m.Name != labels.MetricName {
				continue
			}
			if m.Type != labels.MatchEqual {
				problems = append(problems, fmt.Sprintf("selector %s matches the metric name with %s: name it exactly", vs, m.Type))
				continue
			}
			name = m.Value
		}
		if name != "" {
			names = append(names, name)
		}
		return nil
	})
	if len(problems) > 0 {
		return nil, fmt.Errorf("%s", strings.Join(problems, "; "))
	}
	slices.Sort(names)
	return slices.Compact(names), nil
}

// LabelUse is a label an expression needs on the series of one of
// Metrics: in a selector's matcher, an aggregation's by (...) or a
// binary operation's on (...).
type LabelUse struct {
	Label   string
	Metrics []string
	Where   string // set by the caller, as Use.Where
}

// targetLabels are the labels Prometheus gives every scraped series.
var targetLabels = []string{"job", "instance"}

// LabelUses returns the labels the expression needs, but for the target
// labels (job, instance): each with the metrics that must carry it, one of
// them at least.
func LabelUses(p parser.Parser, expr string) ([]LabelUse, error) {
	e, err := p.ParseExpr(expr)
	if err != nil {
		return nil, err
	}
	var uses []LabelUse
	add := func(label string, under parser.Node) {
		if slices.Contains(targetLabels, label) || label == labels.MetricName {
			return
		}
		var metrics []string
		parser.Inspect(under, func(n parser.Node, _ []parser.Node) error {
			if vs, ok := n.(*parser.VectorSelector); ok && vs.Name != "" {
				metrics = append(metrics, vs.Name)
			}
			return nil
		})
		if len(metrics) > 0 {
			slices.Sort(metrics)
			uses = append(uses, LabelUse{Label: label, Metrics: slices.Compact(metrics)})
		}
	}
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		switch n := n.(type) {
		case *parser.VectorSelector:
			for _, m := range n.LabelMatchers {
				add(m.Name, n)
			}
		case *parser.AggregateExpr:
			if !n.Without {
				for _, l := range n.Grouping {
					add(l, n.Expr)
				}
			}
		case *parser.BinaryExpr:
			if vm := n.VectorMatching; vm != nil && vm.On {
				for _, l := range vm.MatchingLabels {
					add(l, n.LHS)
					add(l, n.RHS)
				}
			}
		}
		return nil
	})
	return uses, nil
}

// Grafana's built-in interval variables, and what a query is checked with
// in their place.
var grafanaIntervals = strings.NewReplacer(
	"${__rate_interval}", "5m", "$__rate_interval", "5m",
	"${__interval}", "1m", "$__interval", "1m",
	"${__range}", "1h", "$__range", "1h",
)

// grafanaVariable is a dashboard variable reference: $name, ${name} or
// ${name:format}.
var grafanaVariable = regexp.MustCompile(`\$\{[A-Za-z0-9_]+(:[A-Za-z0-9_]+)?\}|\$[A-Za-z_][A-Za-z0-9_]*`)

// labelValues is Grafana's label_values(selector, label) template query.
var labelValues = regexp.MustCompile(`^\s*label_values\(\s*(.*?)\s*,\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)\s*$`)

// LabelValuesLabel is the label a label_values(selector, label) query
// lists, or "" for another query.
func LabelValuesLabel(query string) string {
	if m := labelValues.FindStringSubmatch(query); m != nil {
		return m[2]
	}
	return ""
}

// GrafanaPromQL turns a Grafana query into the PromQL it sends: interval
// variables become durations and other variables (which the dashboard
// uses inside label matchers' strings) the value "x". A label_values
// template query becomes its selector.
func GrafanaPromQL(query string) string {
	if m := labelValues.FindStringSubmatch(query); m != nil {
		query = m[1]
	}
	query = grafanaIntervals.Replace(query)
	return grafanaVariable.ReplaceAllString(query, "x")
}

// Exposed are the series names of a Prometheus text exposition
// (/metrics), each with the label names its series carry. A histogram
// shows as its _bucket, _sum and _count series, as queries select it.
type Exposed map[string]map[string]bool

// ParseExposed reads a text exposition.
func ParseExposed(text string) (Exposed, error) {
	ex := Exposed{}
	n := 0
	for line := range strings.Lines(text) {
		n++
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.IndexAny(line, "{ ")
		if i <= 0 {
			return nil, fmt.Errorf("line %d: %q: no metric name", n, line)
		}
		name := line[:i]
		if ex[name] == nil {
			ex[name] = map[string]bool{}
		}
		if line[i] != '{' {
			continue
		}
		names, err := labelNames(line[i+1:])
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		for _, l := range names {
			ex[name][l] = true
		}
	}
	return ex, nil
}

// labelNames reads `a="x",b="y\"z"} 1` up to the closing brace.
func labelNames(s string) ([]string, error) {
	var names []string
	for {
		s = strings.TrimLeft(s, " ,")
		if strings.HasPrefix(s, "}") {
			return names, nil
		}
		eq := strings.Index(s, "=\"")
		if eq <= 0 {
			return nil, fmt.Errorf("label set %q: want name=\"value\"", s)
		}
		names = append(names, strings.TrimSpace(s[:eq]))
		s = s[eq+2:]
		end := -1
		for j := 0; j < len(s); j++ {
			if s[j] == '\\' {
				j++
				continue
			}
			if s[j] == '"' {
				end = j
				break
			}
		}
		if end < 0 {
			return nil, fmt.Errorf("label %s: unterminated value", names[len(names)-1])
		}
		s = s[end+1:]
	}
}

// Has says whether the exposition has series named name.
func (ex Exposed) Has(name string) bool { _, ok := ex[name]; return ok }

// HasLabel says whether some series of one of metrics carries label.
func (ex Exposed) HasLabel(label string, metrics []string) bool {
	for _, m := range metrics {
		if ex[m][label] {
			return true
		}
	}
	return false
}
