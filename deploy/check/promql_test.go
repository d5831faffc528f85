package check

import (
	"slices"
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

// TestExposedNames: series names of an exposition, histograms as their
// three series, comments and blank lines skipped.
func TestExposedNames(t *testing.T) {
	text := `# HELP a_seconds Time.
# TYPE a_seconds histogram
a_seconds_bucket{le="1"} 2
a_seconds_bucket{le="+Inf"} 3
a_seconds_sum 1.5
a_seconds_count 3

# TYPE up_total counter
up_total 7
b{x="y z"} 1
`
	got := ExposedNames(text)
	want := []string{"a_seconds_bucket", "a_seconds_count", "a_seconds_sum", "b", "up_total"}
	var names []string
	for n := range got {
		names = append(names, n)
	}
	slices.Sort(names)
	if !slices.Equal(names, want) {
		t.Errorf("ExposedNames = %v, want %v", names, want)
	}
}
