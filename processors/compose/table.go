package compose

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/factory2/factory2/avro"
	"github.com/factory2/factory2/processors"
)

// Table is every compose's latest decisions, for the compose queries: the
// latest readiness, the latest compose-ready (with its manifest) and the
// latest gate decision of each compose id, and its last decision of any
// kind.
//
// It is a table every instance holds (Kafka Streams' global table), not
// the state of the task that owns the compose: every instance reads the
// whole compose decisions topic, read_committed, from its beginning, and
// keeps following it. So any instance answers for any compose, with no
// forwarding to the owner and no 503 while the owner moves or is down.
// That is affordable because compose decisions are few and small per
// compose (a compose has one row; a compose-ready's manifest is the
// largest part); the processor's own state (every member of every
// compose) is not, and stays partitioned. An answer lags the processor
// by its commit interval plus one fetch.
//
// Within a partition, the log order is the order of decisions: every
// decision of a compose is keyed by its id, so one partition holds them
// all and the last one read is the latest. A decision that does not
// decode as a ComposeReadyDecision is skipped and counted, never
// applied; one that cannot be decoded for now (a schema registry that
// does not answer) is retried until it can.
//
// A Table is safe for concurrent use: Run applies the decisions while
// List and Status read them.
type Table struct {
	cfg TableConfig
	log *slog.Logger
	met *tableMetrics

	mu   sync.RWMutex
	rows map[string]*tableRow
	// ends are the end offsets (last stable offsets) of the topic's
	// partitions when Run started, starts their log start offsets;
	// listed says they are known. pos is the next offset to read in
	// each partition, lso the last stable offset its last fetch said.
	listed      bool
	loaded      bool
	ends        map[int32]int64
	starts      map[int32]int64
	pos         map[int32]int64
	lso         map[int32]int64
	fault       string // the Kafka fault being waited out, "" if none
	faultErr    string
	faultSince  time.Time
	loadedAfter time.Duration
}

// tableRow is one compose's latest decisions. The decisions are never
// modified once stored, so a reader may keep them after unlocking.
type tableRow struct {
	readiness, ready, gate, last *avro.ComposeReadyDecision
}

// TableConfig configures a Table.
type TableConfig struct {
	// Brokers are the Kafka seed brokers.
	Brokers []string
	// Topic is the compose decisions topic, the catalog's name of
	// topics.DecisionsComposeReady.
	Topic string
	// Codec decodes the decisions.
	Codec *avro.Codec
	// Logger receives the table's faults; nil logs nothing.
	Logger *slog.Logger
	// Registerer receives the table's metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// ClientOpts are added to the Kafka client's options.
	ClientOpts []kgo.Opt
	// RetryBackoff and MaxRetryBackoff bound the wait between retries
	// after a Kafka fault. Defaults 100ms and 10s.
	RetryBackoff, MaxRetryBackoff time.Duration
}

// NewTable returns a table of the decisions on cfg.Topic; Run fills it.
func NewTable(cfg TableConfig) (*Table, error) {
	var errs []error
	if len(cfg.Brokers) == 0 {
		errs = append(errs, errors.New("compose: table: no brokers"))
	}
	if cfg.Topic == "" {
		errs = append(errs, errors.New("compose: table: no topic"))
	}
	if cfg.Codec == nil {
		errs = append(errs, errors.New("compose: table: no codec"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.RetryBackoff <= 0 {
		cfg.RetryBackoff = 100 * time.Millisecond
	}
	if cfg.MaxRetryBackoff <= 0 {
		cfg.MaxRetryBackoff = 10 * time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t := &Table{
		cfg:  cfg,
		log:  log.With("component", "compose table", "topic", cfg.Topic),
		met:  newTableMetrics(),
		rows: map[string]*tableRow{},
		pos:  map[int32]int64{},
		lso:  map[int32]int64{},
	}
	if cfg.Registerer != nil {
		if err := t.met.register(cfg.Registerer); err != nil {
			return nil, fmt.Errorf("compose: table metrics: %w", err)
		}
	}
	return t, nil
}

// Run reads the topic from its beginning and then follows it, until ctx
// is done (it then returns nil). It waits out every Kafka fault (a
// broker down, the topic not created yet), retrying with backoff, and
// never returns because of one; it returns an error only when its Kafka
// client cannot be built (bad options). Run once.
func (t *Table) Run(ctx context.Context) error {
	cl, err := processors.NewClient(t.cfg.Brokers, t.cfg.ClientOpts,
		kgo.ConsumeTopics(t.cfg.Topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// Transaction markers are returned (and skipped), so that the
		// position reaches the end offsets listed at start: a
		// transaction's commit marker is the last offset of its
		// partition.
		kgo.KeepControlRecords(),
	)
	if err != nil {
		return fmt.Errorf("compose: table: Kafka client: %w", err)
	}
	defer cl.Close()
	start := time.Now()
	bo := tableBackoff{min: t.cfg.RetryBackoff, max: t.cfg.MaxRetryBackoff}
	for !t.listEnds(ctx, kadm.NewClient(cl)) {
		if !t.pause(ctx, bo.next()) {
			return nil
		}
	}
	bo.reset()
	t.checkLoaded(start)
	for {
		// A poll is bounded so that a round without errors, records or
		// not, says that a fault the client surfaced is over.
		pctx, cancel := context.WithTimeout(ctx, tablePollWait)
		fs := cl.PollFetches(pctx)
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		if fs.IsClientClosed() {
			return errors.New("compose: table: Kafka client closed")
		}
		if !t.apply(ctx, fs) {
			if !t.pause(ctx, bo.next()) {
				return nil
			}
			continue
		}
		bo.reset()
		t.mu.Lock()
		t.recoveredLocked()
		t.mu.Unlock()
		t.checkLoaded(start)
	}
}

// tablePollWait bounds one poll of the table's consumer.
const tablePollWait = 5 * time.Second

// listEnds lists the topic's start and end offsets: the table is loaded
// once it has read up to those ends. It reports whether it succeeded.
func (t *Table) listEnds(ctx context.Context, adm *kadm.Client) bool {
	starts, err := adm.ListStartOffsets(ctx, t.cfg.Topic)
	if err == nil {
		err = starts.Error()
	}
	var ends kadm.ListedOffsets
	if err == nil {
		// Under read_committed, the end is the last stable offset.
		ends, err = adm.ListCommittedOffsets(ctx, t.cfg.Topic)
		if err == nil {
			err = ends.Error()
		}
	}
	if err == nil && len(ends[t.cfg.Topic]) == 0 {
		err = fmt.Errorf("topic %s has no partitions", t.cfg.Topic)
	}
	if err != nil {
		if ctx.Err() == nil {
			t.faulted("listing the end offsets of "+t.cfg.Topic, err)
		}
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.starts, t.ends = map[int32]int64{}, map[int32]int64{}
	starts.Each(func(o kadm.ListedOffset) { t.starts[o.Partition] = o.Offset })
	ends.Each(func(o kadm.ListedOffset) {
		t.ends[o.Partition] = o.Offset
		if _, ok := t.pos[o.Partition]; !ok {
			t.pos[o.Partition] = t.starts[o.Partition]
		}
		t.lso[o.Partition] = o.Offset
	})
	t.listed = true
	t.recoveredLocked()
	t.updateLagLocked()
	return true
}

// decoded is one fetched record, decoded (d nil: skipped).
type decoded struct {
	partition int32
	offset    int64
	key       string
	d         *avro.ComposeReadyDecision
}

// apply decodes the records of fs and applies them in log order. It
// reports false when fs carried a fault to back off from (its records
// are applied all the same: the client has moved past them).
func (t *Table) apply(ctx context.Context, fs kgo.Fetches) bool {
	ok := true
	var recs []decoded
	lso := map[int32]int64{}
	fs.EachPartition(func(p kgo.FetchTopicPartition) {
		if p.Err != nil {
			switch {
			case errors.Is(p.Err, context.Canceled), errors.Is(p.Err, context.DeadlineExceeded):
			case errors.As(p.Err, new(*kgo.ErrDataLoss)):
				// The client resets to the log start by itself.
				t.log.Warn("compose decisions lost to retention or truncation; reading on from the log start", "partition", p.Partition, "err", p.Err)
			default:
				t.faulted("fetching", fmt.Errorf("fetching %s/%d: %w", p.Topic, p.Partition, p.Err))
				ok = false
			}
		}
		if p.LastStableOffset >= 0 && p.Err == nil {
			lso[p.Partition] = p.LastStableOffset
		}
		for _, r := range p.Records {
			rec := decoded{partition: r.Partition, offset: r.Offset, key: string(r.Key)}
			if !r.Attrs.IsControl() {
				rec.d = t.decode(ctx, r)
			}
			recs = append(recs, rec)
		}
	})
	t.mu.Lock()
	defer t.mu.Unlock()
	// Applying a record again (after the client reset its position) is
	// harmless: the records that follow it are applied again too, in
	// their order, and the last one wins.
	for _, r := range recs {
		t.pos[r.partition] = r.offset + 1
		if r.d != nil {
			t.putLocked(r.key, r.d)
		}
	}
	for p, o := range lso {
		t.lso[p] = o
	}
	t.updateLagLocked()
	return ok
}

// decode decodes r as a compose decision, or returns nil (counted as
// skipped) for a record that is not one. A record that cannot be decoded
// for now (the schema registry does not answer) is retried until it
// decodes or ctx is done: skipping it would lose a decision.
func (t *Table) decode(ctx context.Context, r *kgo.Record) *avro.ComposeReadyDecision {
	bo := tableBackoff{min: t.cfg.RetryBackoff, max: t.cfg.MaxRetryBackoff}
	for {
		v, err := t.cfg.Codec.Decode(r.Value)
		if err == nil {
			t.met.read.Inc()
			if d, ok := v.(*avro.ComposeReadyDecision); ok {
				return d
			}
			t.met.skipped.Inc()
			t.log.Warn("skipping a record that is not a compose decision", "partition", r.Partition, "offset", r.Offset, "record", v.SchemaName())
			return nil
		}
		if isDataError(err) {
			t.met.read.Inc()
			t.met.skipped.Inc()
			t.log.Warn("skipping a compose decision that does not decode", "partition", r.Partition, "offset", r.Offset, "err", err)
			return nil
		}
		t.faulted("decoding", fmt.Errorf("decoding %s/%d@%d: %w", r.Topic, r.Partition, r.Offset, err))
		if !t.pause(ctx, bo.next()) {
			return nil
		}
	}
}

// isDataError reports whether err, from Codec.Decode, is about the bytes
// themselves, so that decoding them again would fail again.
func isDataError(err error) bool {
	for _, s := range []error{avro.ErrNotAvro, avro.ErrTruncated, avro.ErrInvalid, avro.ErrNoRegistry, avro.ErrIncompatible, avro.ErrUnknownType, avro.ErrTimeRange} {
		if errors.Is(err, s) {
			return true
		}
	}
	return errors.As(err, new(*avro.UnknownSchemaError)) || errors.As(err, new(*avro.FieldError))
}

// putLocked stores d as its compose's latest decision of its kind. A
// decision written with schema version 1 has no kind; it said whether
// the compose is ready, which is what a readiness decision says.
func (t *Table) putLocked(key string, d *avro.ComposeReadyDecision) {
	id := d.ComposeID
	if id == "" {
		id = key
	}
	r := t.rows[id]
	if r == nil {
		r = &tableRow{}
		t.rows[id] = r
		t.met.composes.Set(float64(len(t.rows)))
	}
	switch d.Kind {
	case avro.ComposeReadiness, "":
		r.readiness = d
	case avro.ComposeReady:
		r.ready = d
	case avro.ComposeGate:
		r.gate = d
	}
	r.last = d
}

// checkLoaded marks the table loaded once it has read every partition up
// to the end it had when Run started.
func (t *Table) checkLoaded(start time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.loaded || !t.listed {
		return
	}
	for p, end := range t.ends {
		if t.pos[p] < end {
			return
		}
	}
	t.loaded, t.loadedAfter = true, time.Since(start)
	t.met.loaded.Set(1)
	read, total := t.progressLocked()
	t.log.Info("compose table loaded", "records", read, "of", total, "composes", len(t.rows), "after", t.loadedAfter.Round(time.Millisecond))
}

// progressLocked returns how many of the records (offsets, transaction
// markers included) up to the ends listed at start have been read.
func (t *Table) progressLocked() (read, total int64) {
	for p, end := range t.ends {
		start := t.starts[p]
		total += max(end-start, 0)
		read += min(max(t.pos[p]-start, 0), max(end-start, 0))
	}
	return read, total
}

func (t *Table) updateLagLocked() {
	var lag int64
	for p, o := range t.lso {
		lag += max(o-t.pos[p], 0)
	}
	t.met.lag.Set(float64(lag))
}

// faulted records a Kafka fault being waited out, logging when its kind
// changes, not at every retry.
func (t *Table) faulted(kind string, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.faultErr = err.Error()
	if t.fault == kind {
		return
	}
	if t.fault == "" {
		t.faultSince = time.Now()
		t.met.waiting.Set(1)
	}
	t.fault = kind
	t.log.Warn("waiting out a Kafka fault; retrying with backoff", "while", kind, "err", err)
}

func (t *Table) recoveredLocked() {
	if t.fault == "" {
		return
	}
	t.log.Info("Kafka fault over; reading compose decisions again", "while", t.fault, "after", time.Since(t.faultSince).Round(time.Millisecond))
	t.fault, t.faultErr = "", ""
	t.met.waiting.Set(0)
}

// pause waits d, or until ctx is done; it reports whether ctx is still
// live.
func (t *Table) pause(ctx context.Context, d time.Duration) bool {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-tm.C:
		return true
	}
}

// LoadingError is the answer of a table that has not yet read the
// decisions that existed when it started: until then it would give
// wrong answers, so it gives none.
type LoadingError struct {
	// Read and Total count the records (offsets, transaction markers
	// included) read and to read; both are 0 until the ends are listed.
	Read, Total int64
	// Waiting is the Kafka fault being waited out, if any.
	Waiting string
}

func (e *LoadingError) Error() string {
	var b strings.Builder
	b.WriteString("loading compose table: ")
	if e.Total == 0 && e.Read == 0 {
		b.WriteString("listing the decisions to read")
	} else {
		fmt.Fprintf(&b, "%d of %d records", e.Read, e.Total)
	}
	if e.Waiting != "" {
		b.WriteString("; waiting for Kafka: " + e.Waiting)
	}
	return b.String()
}

// ErrUnknownCompose is returned for a compose of which no decision has
// been read.
var ErrUnknownCompose = errors.New("compose: unknown compose")

// loadingLocked returns a *LoadingError while the table is loading.
func (t *Table) loadingLocked() error {
	if t.loaded {
		return nil
	}
	e := &LoadingError{Waiting: t.waitingLocked()}
	if t.listed {
		e.Read, e.Total = t.progressLocked()
	}
	return e
}

func (t *Table) waitingLocked() string {
	if t.fault == "" {
		return ""
	}
	return fmt.Sprintf("%s: %s (for %s)", t.fault, t.faultErr, time.Since(t.faultSince).Round(time.Second))
}

// Health is the table's part of /healthz and /readyz: always live (it
// waits out every fault), ready once loaded and while no Kafka fault is
// being waited out.
func (t *Table) Health() processors.Health {
	t.mu.RLock()
	defer t.mu.RUnlock()
	h := processors.Health{Live: true, Ready: t.loaded && t.fault == "", Waiting: t.waitingLocked()}
	switch {
	case !t.loaded:
		h.Reason = t.loadingLocked().Error()
	case h.Waiting != "":
		h.Reason = "compose table: waiting out a Kafka fault: " + h.Waiting
	}
	return h
}

// List returns every compose's overview, by compose id; a
// *LoadingError while the table is loading.
func (t *Table) List() ([]Overview, error) {
	t.mu.RLock()
	if err := t.loadingLocked(); err != nil {
		t.mu.RUnlock()
		return nil, err
	}
	rows := make(map[string]tableRow, len(t.rows))
	for id, r := range t.rows {
		rows[id] = *r
	}
	t.mu.RUnlock()
	ids := make([]string, 0, len(rows))
	for id := range rows {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	out := make([]Overview, 0, len(ids))
	for _, id := range ids {
		r := rows[id]
		out = append(out, r.overview(id))
	}
	return out, nil
}

// Status returns one compose's status, with the manifest of its last
// compose-ready when withManifest; ErrUnknownCompose when no decision
// about it has been read, a *LoadingError while the table is loading.
func (t *Table) Status(id string, withManifest bool) (*Status, error) {
	t.mu.RLock()
	if err := t.loadingLocked(); err != nil {
		t.mu.RUnlock()
		return nil, err
	}
	r, ok := t.rows[id]
	var row tableRow
	if ok {
		row = *r
	}
	n := len(t.rows)
	t.mu.RUnlock()
	if !ok {
		known := fmt.Sprintf("%d composes are known", n)
		if n == 1 {
			known = "1 compose is known"
		}
		return nil, fmt.Errorf("%w %q: no decision about it has been seen (%s)", ErrUnknownCompose, id, known)
	}
	return row.status(id, withManifest), nil
}

// tableBackoff is a capped exponential backoff with jitter.
type tableBackoff struct {
	min, max time.Duration
	n        int
}

func (b *tableBackoff) next() time.Duration {
	d := b.min << min(b.n, 16)
	if d <= 0 || d > b.max {
		d = b.max
	}
	b.n++
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

func (b *tableBackoff) reset() { b.n = 0 }

// tableMetrics are the table's metrics; no label (never a compose id).
type tableMetrics struct {
	read, skipped                  prometheus.Counter
	lag, composes, loaded, waiting prometheus.Gauge
}

func newTableMetrics() *tableMetrics {
	const ns, sub = "factory2", "compose_table"
	return &tableMetrics{
		read: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "records_read_total",
			Help: "Compose decision records read (transaction markers not counted)."}),
		skipped: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "records_skipped_total",
			Help: "Records of the compose decisions topic skipped: not a compose decision, or not decodable."}),
		lag: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "lag_records",
			Help: "Offsets between the table's position and the last stable offsets last fetched."}),
		composes: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "composes",
			Help: "Composes in the table."}),
		loaded: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "loaded",
			Help: "1 once the table has read the decisions that existed when it started."}),
		waiting: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "waiting_for_kafka",
			Help: "1 while the table waits out a Kafka fault."}),
	}
}

func (m *tableMetrics) register(reg prometheus.Registerer) error {
	var errs []error
	for _, c := range []prometheus.Collector{m.read, m.skipped, m.lag, m.composes, m.loaded, m.waiting} {
		errs = append(errs, reg.Register(c))
	}
	return errors.Join(errs...)
}
