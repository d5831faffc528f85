package processors

import (
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestZeroLabels: a runner's dead-letter and abort counters are exported at
// zero, for every input alias and kind and every cause, before anything is
// dead-lettered or aborted, so rate() sees the first increment.
func TestZeroLabels(t *testing.T) {
	m := newMetrics()
	m.zeroLabels([]string{"build", "test"})
	reg := prometheus.NewRegistry()
	reg.MustRegister(m)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	series := map[string][]string{}
	for _, mf := range mfs {
		for _, s := range mf.GetMetric() {
			if v := s.GetCounter().GetValue(); v != 0 {
				t.Errorf("%s %v = %v, want 0", mf.GetName(), s.GetLabel(), v)
			}
			var ls []string
			for _, l := range s.GetLabel() {
				ls = append(ls, l.GetName()+"="+l.GetValue())
			}
			series[mf.GetName()] = append(series[mf.GetName()], strings.Join(ls, ","))
		}
	}
	want := map[string][]string{
		"factory2_processor_records_dead_lettered_total": {
			"kind=decode,topic=build", "kind=decode,topic=test",
			"kind=poison,topic=build", "kind=poison,topic=test",
			"kind=rejected,topic=build", "kind=rejected,topic=test"},
		"factory2_processor_transaction_aborts_total": {"cause=kafka", "cause=poison", "cause=punctuation"},
	}
	for name, w := range want {
		slices.Sort(series[name])
		if !slices.Equal(series[name], w) {
			t.Errorf("%s: label values %v, want %v", name, series[name], w)
		}
	}
}
