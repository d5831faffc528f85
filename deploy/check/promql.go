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
var labelValues = regexp.MustCompile(`^\s*label_values\(\s*(.*?)\s*,\s*[A-Za-z_][A-Za-z0-9_]*\s*\)\s*$`)

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

// ExposedNames returns the names of the series of a Prometheus text
// exposition (/metrics): a histogram shows as its _bucket, _sum and _count
// series, as queries select it.
func ExposedNames(text string) map[string]bool {
	names := map[string]bool{}
	for line := range strings.Lines(text) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if i := strings.IndexAny(line, "{ "); i > 0 {
			names[line[:i]] = true
		}
	}
	return names
}
