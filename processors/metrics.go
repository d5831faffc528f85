package processors

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/factory2/factory2/avro"
	"github.com/factory2/factory2/topics"
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

	aborts            *prometheus.CounterVec
	consecutiveAborts prometheus.Gauge
	lastCommit        prometheus.Gauge
	restoring         prometheus.Gauge
	quarantined       prometheus.Counter
	waiting           prometheus.Gauge
	sessions          prometheus.Counter
	pauses            prometheus.Counter
	lag               *prometheus.GaugeVec
	endLookups        prometheus.Counter
	openTxnGiveUps    prometheus.Counter
	mergeWaiting      *prometheus.GaugeVec
	mergeWaitingBy    [len(mergeWaitReasons)]prometheus.Gauge // by mergeWait, nil for ""
	carried           prometheus.Counter

	rebalances       *prometheus.CounterVec
	restoreRemaining prometheus.Gauge
	decisions        *prometheus.CounterVec
	decisionLatency  *prometheus.HistogramVec
}

// Label values of the runner's bounded label sets, exported from the
// start (at 0) so that rate() and increase() see every series from a
// fresh process on.
var (
	// abortCauses are the causes of factory2_processor_transaction_aborts_total.
	abortCauses = []string{"kafka", "poison", "punctuation"}
	// deadLetterReasons are the reasons of
	// factory2_processor_records_dead_lettered_total for an input topic:
	// decode (not an Avro record of the contract), unknown_schema (a
	// writer schema this binary does not know), rejected (the processor
	// refused it: RejectError), too_large (its output or state exceeds a
	// record limit), poison (processing it failed on every try). The
	// changelog's only reason is quarantined (a restore refused a state
	// value).
	deadLetterReasons = []string{"decode", "unknown_schema", "rejected", "too_large", "poison"}
	// rebalanceEvents are the events of factory2_processor_rebalances_total.
	rebalanceEvents = []string{"assigned", "revoked", "lost"}
)

// decisionBuckets span 1ms to about 65s: a decision normally follows its
// event within a commit interval; a minute is an outage.
var decisionBuckets = prometheus.ExponentialBuckets(0.001, 2, 17)

// newMetrics returns the metrics of the runner of consumer group group.
func newMetrics(group string) *metrics {
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
			Help: "Input records sent to the dead-letter topic, by input topic alias and reason (decode, unknown_schema, rejected, too_large, poison; quarantined for topic=changelog).",
		}, []string{"topic", "reason"}),
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
			Help:    "Time a task spent processing the records one poll gave it (observed per task and poll, not per record: divide the sum by records_processed_total for the mean per record).",
			Buckets: prometheus.ExponentialBuckets(1e-5, 4, 10),
		}),
		commitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: ns, Name: "commit_seconds",
			Help:    "Time to end a transaction, from changelog produce to Pebble commit.",
			Buckets: prometheus.ExponentialBuckets(1e-3, 2, 12),
		}),
		aborts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "transaction_aborts_total",
			Help: "Aborted transactions by cause: kafka (a broker, coordinator or network fault, a rebalance), poison (an input that cannot be processed; it is dead-lettered), punctuation (a punctuation that failed; it is retried later).",
		}, []string{"cause"}),
		consecutiveAborts: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Name: "consecutive_aborts",
			Help: "Transactions aborted in a row since the last commit; the runner backs off while it grows.",
		}),
		lastCommit: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Name: "last_commit_timestamp_seconds",
			Help: "Unix time of the last committed transaction (time() minus it is the time since the last commit).",
		}),
		restoring: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Name: "tasks_restoring",
			Help: "Tasks restoring their state from a changelog now.",
		}),
		quarantined: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Name: "state_values_quarantined_total",
			Help: "Changelog values a restore refused as unusable: the key was reset and the value dead-lettered.",
		}),
		waiting: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Name: "waiting_for_kafka",
			Help: "1 while the runner waits out a Kafka fault (broker or coordinator unreachable, failed commits), else 0.",
		}),
		sessions: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Name: "sessions_total",
			Help: "Kafka sessions started (group membership and transactional producer); more than one means the runner rebuilt its session after a fault.",
		}),
		pauses: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Name: "input_pauses_total",
			Help: "Input partitions whose fetching was paused because their task's queue of them was full (the merge waiting for another input, or processing behind fetching); resumed at half.",
		}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: ns, Name: "task_lag_records",
			Help:        "Per assigned task (input partition) of the consumer group: offsets between its inputs' last stable offsets and its position, summed over its input topics (transaction markers count).",
			ConstLabels: prometheus.Labels{"group": group},
		}, []string{"partition"}),
		endLookups: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Name: "input_end_lookups_total",
			Help: "Times the merge asked the brokers for input partitions' ends, because a fetch answer did not say whether an idle input holds records older than the fetched ones (its leader is another broker).",
		}),
		openTxnGiveUps: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Name: "open_txn_waits_given_up_total",
			Help: "Times a task stopped waiting for an open transaction on an input partition after max_txn_wait and processed its other inputs' records: if that transaction commits records older than them, the live order differs from a replay's.",
		}),
		mergeWaiting: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: ns, Name: "tasks_merge_waiting",
			Help: "Tasks holding records that the merge cannot take yet, by why, as of the last drain: fetch (another input has committed records not fetched), evidence (another input's end is being asked), open_txn (another input has an open transaction at the task's position; bounded by max_txn_wait), idle (max_task_idle).",
		}, []string{"reason"}),
		carried: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Name: "records_carried_over_total",
			Help: "Records fetched but still queued by the merge when a transaction committed: the transaction commits the offset of the first of them, and the next one processes them.",
		}),
		rebalances: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "rebalances_total",
			Help: "Consumer group rebalance callbacks that moved partitions, by event (assigned, revoked, lost: taken away without a chance to commit).",
		}, []string{"event"}),
		restoreRemaining: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Name: "restore_remaining_records",
			Help: "Changelog offsets the restoring tasks still have to read (0 when none restores).",
		}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "factory2_decisions_total",
			Help: "Decisions committed (visible to read_committed consumers), by kind (the decision topic: gating, autosign, signed, compose_ready, rebuild). Aborted transactions are not counted.",
		}, []string{"kind"}),
		decisionLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "factory2_decision_latency_seconds",
			Help:    "From the Kafka timestamp of the input record that caused a decision (when its event was ingested; decisions carry their cause's timestamp downstream) to the commit that made the decision visible, by kind. Replayed old events show as large latencies.",
			Buckets: decisionBuckets,
		}, []string{"kind"}),
	}
}

// preinit creates the series of the runner's known label values, so they
// export 0 before anything happens. inputs are the input topic aliases;
// kinds the decision kinds; changelog whether the runner has stores.
func (m *metrics) preinit(inputs, kinds []string, changelog bool) {
	for _, c := range abortCauses {
		m.aborts.WithLabelValues(c)
	}
	for _, t := range inputs {
		for _, r := range deadLetterReasons {
			m.deadLettered.WithLabelValues(t, r)
		}
	}
	if changelog {
		m.deadLettered.WithLabelValues("changelog", "quarantined")
	}
	for _, e := range rebalanceEvents {
		m.rebalances.WithLabelValues(e)
	}
	for _, k := range kinds {
		m.decisions.WithLabelValues(k)
		m.decisionLatency.WithLabelValues(k)
	}
	m.commits.WithLabelValues("committed")
	m.commits.WithLabelValues("aborted")
	for w, reason := range mergeWaitReasons {
		if reason != "" {
			m.mergeWaitingBy[w] = m.mergeWaiting.WithLabelValues(reason)
		}
	}
}

func (m *metrics) each(fn func(prometheus.Collector)) {
	for _, c := range []prometheus.Collector{m.processed, m.emitted, m.deadLettered, m.commits, m.changelogRecords, m.restoredRecords, m.tasks, m.processSeconds, m.commitSeconds,
		m.aborts, m.consecutiveAborts, m.lastCommit, m.restoring, m.quarantined, m.waiting, m.sessions, m.pauses, m.lag, m.endLookups, m.openTxnGiveUps, m.mergeWaiting, m.carried,
		m.rebalances, m.restoreRemaining, m.decisions, m.decisionLatency} {
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

// decisionKinds are the metrics of one decision kind.
type decisionKinds struct {
	kind    string
	count   prometheus.Counter
	latency prometheus.Observer
}

// decisionOut is an output of the runner that is a decision topic: the
// kinds of decision it carries are slots kinds[first:first+n] of the
// runner's decisionKinds.
type decisionOut struct {
	topic string // full name, as Output.Topic gives it
	first int
	// composeKinds: the topic carries ComposeReadyDecision, whose Kind
	// tells three decisions apart (ready, readiness, gate).
	composeKinds bool
}

// slot returns the decisionKinds index of a decision rec on d.
func (d *decisionOut) slot(rec avro.Record) int {
	if d.composeKinds {
		if c, ok := rec.(*avro.ComposeReadyDecision); ok {
			switch c.Kind {
			case avro.ComposeReadiness:
				return d.first + 1
			case avro.ComposeGate:
				return d.first + 2
			}
		}
	}
	return d.first
}

// initDecisionOuts finds the decision topics among the spec's outputs
// and resolves the metrics of their kinds once.
func (r *Runner) initDecisionOuts() {
	for _, o := range r.spec.Outputs {
		s, ok := r.cfg.Catalog.Lookup(o)
		if !ok || s.Role != topics.Decision {
			continue
		}
		d := decisionOut{topic: o, first: len(r.decisionKinds)}
		kinds := []string{decisionKind(s.Alias)}
		if s.Alias == topics.DecisionsComposeReady {
			// The compose processor's three decisions, told apart by
			// ComposeReadyDecision.Kind ("" in version 1: ready).
			d.composeKinds = true
			kinds = []string{"compose_ready", "compose_readiness", "compose_gate"}
		}
		for _, k := range kinds {
			r.decisionKinds = append(r.decisionKinds, decisionKinds{
				kind:    k,
				count:   r.metrics.decisions.WithLabelValues(k),
				latency: r.metrics.decisionLatency.WithLabelValues(k),
			})
		}
		r.decisionOuts = append(r.decisionOuts, d)
	}
}

// decisionKind is the kind label of decision topic alias:
// "decisions.compose-ready" is compose_ready.
func decisionKind(alias string) string {
	return strings.ReplaceAll(strings.TrimPrefix(alias, "decisions."), "-", "_")
}
