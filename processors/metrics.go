package processors

import (
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// metrics of one runner. Labels are bounded: topic aliases from the
// catalog, a fixed set of kinds and outcomes; never a key or an NVR.
type metrics struct {
	processed        *prometheus.CounterVec
	emitted          *prometheus.CounterVec
	deadLettered     *prometheus.CounterVec
	commits          *prometheus.CounterVec
	changelogRecords prometheus.Counter
	restoredRecords  prometheus.Counter
	tasks            prometheus.Gauge
	processSeconds   prometheus.Histogram
	commitSeconds    prometheus.Histogram
}

func newMetrics() *metrics {
	const ns = "factory2_processor"
	return &metrics{
		processed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "records_processed_total",
			Help: "Input records processed, by input topic alias.",
		}, []string{"topic"}),
		emitted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "records_emitted_total",
			Help: "Output records emitted (before commit), by output topic alias.",
		}, []string{"topic"}),
		deadLettered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "records_dead_lettered_total",
			Help: "Input records sent to the dead-letter topic, by input topic alias and kind (decode, rejected).",
		}, []string{"topic", "kind"}),
		commits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "transactions_total",
			Help: "Transactions ended, by outcome (committed, aborted).",
		}, []string{"outcome"}),
		changelogRecords: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Name: "changelog_records_total",
			Help: "Changelog records produced (one per changed key per transaction).",
		}),
		restoredRecords: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Name: "restored_records_total",
			Help: "Changelog records restored into local state.",
		}),
		tasks: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Name: "tasks",
			Help: "Partitions currently assigned to this instance.",
		}),
		processSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: ns, Name: "process_seconds",
			Help:    "Time to process one input record.",
			Buckets: prometheus.ExponentialBuckets(1e-6, 4, 10),
		}),
		commitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: ns, Name: "commit_seconds",
			Help:    "Time to end a transaction, from changelog produce to Pebble commit.",
			Buckets: prometheus.ExponentialBuckets(1e-3, 2, 12),
		}),
	}
}

func (m *metrics) each(fn func(prometheus.Collector)) {
	for _, c := range []prometheus.Collector{m.processed, m.emitted, m.deadLettered, m.commits, m.changelogRecords, m.restoredRecords, m.tasks, m.processSeconds, m.commitSeconds} {
		fn(c)
	}
}

// Describe implements prometheus.Collector.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	m.each(func(c prometheus.Collector) { c.Describe(ch) })
}

// Collect implements prometheus.Collector.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	m.each(func(c prometheus.Collector) { c.Collect(ch) })
}

// readCounter returns a counter's current value.
func readCounter(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return 0
	}
	return m.GetCounter().GetValue()
}
