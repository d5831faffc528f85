package ingest

import (
	"github.com/prometheus/client_golang/prometheus"
)

// EventTypes are the JSON type names of the events ingestion accepts: the
// kind label of factory2_ingest_events_total. Decisions are never input.
var EventTypes = []string{"build", "sign", "test_result", "waiver", "remote_rule_file", "compose", "dependency_edge"}

// RejectReasons are the reason labels of factory2_ingest_rejected_total:
// unauthorized (no or a wrong token; counted by the HTTP server's
// guard only in factory2_http_requests_total, since it answers before
// ingestion sees the request), unsupported_media_type, too_large (the
// body or one event), invalid (not parseable, not an event, bad
// fields), timeout (the body came too slowly), busy (the in-flight body
// budget is full), unavailable (ingestion disabled, or producing to
// Kafka failed).
var RejectReasons = []string{"unauthorized", "unsupported_media_type", "too_large", "invalid", "timeout", "busy", "unavailable"}

// Metrics counts what ingestion accepted and refused. Safe for concurrent
// use; every series exists (at 0) from the start.
type Metrics struct {
	events   map[string]prometheus.Counter // by event type, read-only after NewMetrics
	rejected map[string]prometheus.Counter // by reason, read-only after NewMetrics
	other    prometheus.Counter
}

// NewMetrics registers factory2_ingest_events_total{kind} and
// factory2_ingest_rejected_total{reason} with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	events := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "factory2_ingest_events_total",
		Help: "Events committed by ingestion over HTTP (POST /api/v1/events, Koji enrichments included), by kind (the event type).",
	}, []string{"kind"})
	rejected := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "factory2_ingest_rejected_total",
		Help: "POST /api/v1/events requests refused, nothing committed, by reason (unsupported_media_type, too_large, invalid, timeout, busy, unavailable; unauthorized ones are in factory2_http_requests_total).",
	}, []string{"reason"})
	for _, c := range []prometheus.Collector{events, rejected} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	m := &Metrics{events: map[string]prometheus.Counter{}, rejected: map[string]prometheus.Counter{}}
	for _, k := range EventTypes {
		m.events[k] = events.WithLabelValues(k)
	}
	m.other = events.WithLabelValues("other")
	for _, r := range RejectReasons {
		m.rejected[r] = rejected.WithLabelValues(r)
	}
	return m, nil
}

// Committed counts the events of produced, which Kafka committed.
func (m *Metrics) Committed(produced []Produced) {
	if m == nil {
		return
	}
	for _, p := range produced {
		c, ok := m.events[p.Type]
		if !ok {
			c = m.other // a type added without updating EventTypes; bounded still
		}
		c.Inc()
	}
}

// Rejected counts a request refused for reason, one of RejectReasons.
func (m *Metrics) Rejected(reason string) {
	if m == nil {
		return
	}
	if c, ok := m.rejected[reason]; ok {
		c.Inc()
	}
}
