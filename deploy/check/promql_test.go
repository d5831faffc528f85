package check

import (
	"slices"
	"strings"
	"testing"
)

// TestMetricNames: every selector's name is found, wherever it sits in
// the expression, once; regular expressions on __name__ are refused.
func TestMetricNames(t *testing.T) {
	p := newParser()
	for expr, want := range map[string][]string{
		`up == 0`: {"up"},
		`histogram_quantile(0.99, sum by (le) (rate(a_seconds_bucket{job="x"}[5m])))`: {"a_seconds_bucket"},
		`sum(rate(b_total[5m])) / sum(rate(c_total[5m])) > 0.1 and on (job) d > 0`:    {"b_total", "c_total", "d"},
		`time() - last_ts{job="f"} > 900`:                                             {"last_ts"},
		`{__name__="e_total", job="f"} + e_total`:                                     {"e_total"},
		`max_over_time(g[10m:1m]) unless absent(h)`:                                   {"g", "h"},
		`label_replace(i, "a", "$1", "b", "(.*)") or vector(0)`:                       {"i"},
		`deriv(sum by (p) (j)[30m:])`:                                                 {"j"},
		`count(k offset 1h) + 2`:                                                      {"k"},
		`1 + 2`:                                                                       nil,
	} {
		got, err := MetricNames(p, expr)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("MetricNames(%s) = %v, %v; want %v", expr, got, err, want)
		}
	}
	for _, bad := range []string{`{__name__=~"factory2_.*"}`, `sum(rate(x[5m]`, `{__name__!="a", job="b"}`} {
		if got, err := MetricNames(p, bad); err == nil {
			t.Errorf("MetricNames(%s) = %v, want an error", bad, got)
		}
	}
}

// TestGrafanaPromQL: dashboard variables become what Grafana would send,
// so that the query parses.
func TestGrafanaPromQL(t *testing.T) {
	for in, want := range map[string]string{
		`rate(a{job=~"$job"}[$__rate_interval])`:               `rate(a{job=~"x"}[5m])`,
		`rate(a{job=~"${job}", i=~"${i:regex}"}[$__interval])`: `rate(a{job=~"x", i=~"x"}[1m])`,
		`label_values(a{job=~"$job"}, instance)`:               `a{job=~"x"}`,
		`label_values(a, job)`:                                 `a`,
		`increase(b[$__range])`:                                `increase(b[1h])`,
	} {
		if got := GrafanaPromQL(in); got != want {
			t.Errorf("GrafanaPromQL(%s) = %s, want %s", in, got, want)
		}
	}
}

// TestParseExposed: series names of an exposition with their label
// names, histograms as their three series, comments and blank lines
// skipped, quoted values with commas, braces and escapes read whole.
func TestParseExposed(t *testing.T) {
	text := `# HELP a_seconds Time.
# TYPE a_seconds histogram
a_seconds_bucket{kind="x",le="1"} 2
a_seconds_bucket{kind="x",le="+Inf"} 3
a_seconds_sum{kind="x"} 1.5
a_seconds_count{kind="x"} 3

# TYPE up_total counter
up_total 7
b{x="y, z=\"}\" w",route="GET /a\\b"} 1
`
	ex, err := ParseExposed(text)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for name, ls := range ex {
		got[name] = keys(ls)
		if got[name] == nil {
			got[name] = []string{}
		}
	}
	want := map[string][]string{
		"a_seconds_bucket": {"kind", "le"}, "a_seconds_sum": {"kind"}, "a_seconds_count": {"kind"},
		"up_total": {}, "b": {"route", "x"},
	}
	if len(got) != len(want) {
		t.Errorf("ParseExposed = %v, want %v", got, want)
	}
	for name, w := range want {
		if !slices.Equal(got[name], w) {
			t.Errorf("%s: labels %v, want %v", name, got[name], w)
		}
	}
	if _, err := ParseExposed("a{x=\"1} 2\n"); err == nil {
		t.Errorf("unterminated label value: no error")
	}
}

// TestLabelUses: the labels of matchers, by (...) and on (...) are found
// with the metrics that must carry them; job and instance, without (...)
// and __name__ are not.
func TestLabelUses(t *testing.T) {
	p := newParser()
	uses, err := LabelUses(p, `sum by (job, processor, reason) (rate(a_total{job="f", topic="t"}[5m]))
		> on (instance, processor) group_left sum without (x) (b)
		and {__name__="c"}`)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, u := range uses {
		got = append(got, u.Label+":"+strings.Join(u.Metrics, "|"))
	}
	slices.Sort(got)
	got = slices.Compact(got) // by (processor) and on (processor) both need it on a_total
	want := []string{"processor:a_total", "processor:b", "reason:a_total", "topic:a_total"}
	if !slices.Equal(got, want) {
		t.Errorf("LabelUses = %v, want %v", got, want)
	}
	ex := Exposed{"a_total": {"processor": true, "topic": true, "kind": true}, "b": {}}
	missing := MissingLabels(append(uses, LabelUse{Label: "x", Metrics: []string{"gone"}}), ex)
	if !slices.Equal(missing, []string{"label processor on b ()", "label reason on a_total ()"}) {
		t.Errorf("MissingLabels = %q", missing)
	}
	if l := LabelValuesLabel(`label_values(a{job="x"}, processor)`); l != "processor" {
		t.Errorf("LabelValuesLabel = %q", l)
	}
}
