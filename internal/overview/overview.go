package overview

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/factory2/factory2/avro"
	"github.com/factory2/factory2/internal/kclient"
	"github.com/factory2/factory2/processors/compose"
	"github.com/factory2/factory2/processors/deps"
	"github.com/factory2/factory2/topics"
)

// Line is the readable form of a record: the words `factory2 watch`
// prints for it (kind, subject, verdict, reason).
type Line struct {
	Kind    string
	Subject string
	Verdict string
	Reason  string
}

// Composes is what the page reads of the compose table
// (*compose.Table).
type Composes interface {
	List() ([]compose.Overview, error)
	Status(id string, withManifest bool) (*compose.Status, error)
}

// Config configures an Overview. Brokers, Catalog, Codec, Composes and
// Graph are required; a zero bound takes its default.
type Config struct {
	Brokers []string
	// ClientOpts are the shared Kafka client options (TLS, SASL, ...),
	// applied after the Overview's own.
	ClientOpts []kgo.Opt
	Catalog    *topics.Catalog
	Codec      *avro.Codec
	Composes   Composes
	Graph      *deps.Table
	// Describe words a record as `factory2 watch` does; nil words it by
	// its type and subject only.
	Describe func(avro.Record) Line
	Logger   *slog.Logger
	// Registerer, when set, takes the page's metrics
	// (factory2_overview_*).
	Registerer prometheus.Registerer

	// Lookback is how far back (by record timestamp) the Overview starts
	// reading when it starts: 24h by default.
	Lookback time.Duration
	// RecentDecisions is how many decisions the page keeps and shows:
	// 200 by default.
	RecentDecisions int
	// MaxBuilds bounds the journeys kept (least recently changed go
	// first): 2,000 by default. Each holds at most MaxSteps steps of at
	// most maxText bytes of text, so journeys take at most about
	// MaxBuilds × MaxSteps × 700 bytes (90 MB at the defaults; a build
	// has tens of steps, not 64, so about a third of that).
	MaxBuilds int
	// MaxStreams bounds the live streams (browsers with the page open):
	// 32 by default. Each holds one of the server's in-flight requests.
	MaxStreams int
	// StreamBuffer is how many decisions may wait for a slow stream
	// before it is dropped (the browser reconnects and catches up from
	// the recent decisions): 256 by default.
	StreamBuffer int
	// Heartbeat is the interval of the comment a stream sends when idle,
	// so proxies keep it open and a dead browser is noticed: 15s by
	// default.
	Heartbeat time.Duration
}

// Default bounds.
const (
	DefaultLookback        = 24 * time.Hour
	DefaultRecentDecisions = 200
	DefaultMaxBuilds       = 2000
	DefaultMaxStreams      = 32
	DefaultStreamBuffer    = 256
	DefaultHeartbeat       = 15 * time.Second
	// MaxSteps bounds the steps of one journey; the first steps of each
	// stage are kept in the stage summary even once older steps go.
	MaxSteps = 64
	// maxText bounds the text of one step or decision.
	maxText = 400
)

func (c *Config) setDefaults() {
	if c.Lookback <= 0 {
		c.Lookback = DefaultLookback
	}
	if c.RecentDecisions <= 0 {
		c.RecentDecisions = DefaultRecentDecisions
	}
	if c.MaxBuilds <= 0 {
		c.MaxBuilds = DefaultMaxBuilds
	}
	if c.MaxStreams <= 0 {
		c.MaxStreams = DefaultMaxStreams
	}
	if c.StreamBuffer <= 0 {
		c.StreamBuffer = DefaultStreamBuffer
	}
	if c.Heartbeat <= 0 {
		c.Heartbeat = DefaultHeartbeat
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Describe == nil {
		c.Describe = plainLine
	}
}

func (c *Config) validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("overview: no brokers"))
	}
	if c.Catalog == nil {
		errs = append(errs, errors.New("overview: no topic catalog"))
	}
	if c.Codec == nil {
		errs = append(errs, errors.New("overview: no codec"))
	}
	if c.Composes == nil {
		errs = append(errs, errors.New("overview: no compose table"))
	}
	if c.Graph == nil {
		errs = append(errs, errors.New("overview: no dependency graph"))
	}
	return errors.Join(errs...)
}

// Overview follows the pipeline's recent events and decisions for the
// page, and serves it (Register). Run reads; the handlers may be called
// concurrently with it.
type Overview struct {
	cfg      Config
	log      *slog.Logger
	hub      *hub
	journeys *journeys
	topics   []string
	skipped  prometheus.Counter
	// rescan is how often Run looks for topics and partitions to read.
	rescan time.Duration
}

// register adds the page's metrics to reg.
func (o *Overview) register(reg prometheus.Registerer) error {
	const ns, sub = "factory2", "overview"
	return errors.Join(
		reg.Register(o.skipped),
		reg.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "streams",
			Help: "Live decision streams (browsers with the page open)."},
			func() float64 { return float64(o.hub.streamCount()) })),
		reg.Register(prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "streams_dropped_total",
			Help: "Decision streams dropped for falling behind (the browser reconnects and catches up)."},
			func() float64 { return float64(o.hub.droppedCount()) })),
		reg.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "journeys",
			Help: "Build journeys kept (at most the configured bound)."},
			func() float64 { return float64(o.journeys.count()) })),
	)
}

// New returns the Overview of cfg.
func New(cfg Config) (*Overview, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	o := &Overview{
		cfg:      cfg,
		log:      cfg.Logger.With("component", "overview"),
		hub:      newHub(cfg.RecentDecisions, cfg.MaxStreams, cfg.StreamBuffer),
		journeys: newJourneys(cfg.MaxBuilds),
		rescan:   30 * time.Second,
		skipped: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "factory2", Subsystem: "overview", Name: "records_skipped_total",
			Help: "Records the overview page could not decode and left out."}),
	}
	if cfg.Registerer != nil {
		if err := o.register(cfg.Registerer); err != nil {
			return nil, fmt.Errorf("overview: metrics: %w", err)
		}
	}
	for _, alias := range []string{
		topics.EventsBuild, topics.EventsSign, topics.EventsTest,
		topics.DecisionsGating, topics.DecisionsAutosign, topics.DecisionsSigned,
		topics.DecisionsComposeReady, topics.DecisionsRebuild,
	} {
		o.topics = append(o.topics, cfg.Catalog.Name(alias))
	}
	return o, nil
}

// Run reads the topics from Lookback ago and follows them until ctx
// ends; then it ends the live streams. Kafka faults are logged once per
// change and waited out. Topics created and partitions added while it
// runs are read from their first record within rescan.
func (o *Overview) Run(ctx context.Context) error {
	defer o.hub.close()
	since := time.Now().Add(-o.cfg.Lookback).UnixMilli()
	cl, err := kclient.NewClient(o.cfg.Brokers, o.cfg.ClientOpts,
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// Where an offset the page reads from turns out of range.
		kgo.ConsumeResetOffset(kgo.NewOffset().AfterMilli(since)),
	)
	if err != nil {
		return fmt.Errorf("overview: Kafka client: %w", err)
	}
	defer cl.Close()
	var (
		adm     = kadm.NewClient(cl)
		reading = map[string]map[int32]bool{}
		fault   string
		pause   = 100 * time.Millisecond
		next    time.Time // the next look for partitions to read
	)
	for {
		var ferr error
		if !time.Now().Before(next) {
			all, err := o.follow(ctx, adm, cl, since, reading)
			switch {
			case err != nil:
				ferr = err
			case !all:
				next = time.Now().Add(time.Second)
			default:
				next = time.Now().Add(o.rescan)
			}
		}
		if ferr == nil {
			pctx, cancel := context.WithDeadline(ctx, next)
			fs := cl.PollFetches(pctx)
			cancel()
			if ctx.Err() != nil {
				return nil
			}
			if fs.IsClientClosed() {
				return errors.New("overview: Kafka client closed")
			}
			ferr = o.read(fs)
		}
		switch {
		case ferr != nil:
			if msg := ferr.Error(); msg != fault {
				o.log.Warn("waiting out a Kafka fault; the page shows what it has", "err", ferr)
				fault = msg
			}
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(pause):
			}
			pause = min(2*pause, 5*time.Second)
		case fault != "":
			o.log.Info("reading again after a Kafka fault", "fault", fault)
			fault, pause = "", 100*time.Millisecond
		}
	}
}

// read applies the records of fs and returns its first fault.
func (o *Overview) read(fs kgo.Fetches) error {
	var ferr error
	fs.EachError(func(t string, p int32, err error) {
		switch {
		case errors.Is(err, context.DeadlineExceeded):
			// The poll ended for the next look for partitions.
		case errors.As(err, new(*kgo.ErrDataLoss)):
			// Records gone to retention: the client reads on from the
			// log start, which is all the page needs.
			o.log.Info("records lost to retention or truncation; reading on", "topic", t, "partition", p, "err", err)
		case ferr == nil:
			ferr = fmt.Errorf("%s/%d: %w", t, p, err)
		}
	})
	fs.EachRecord(o.apply)
	return ferr
}

// follow starts reading the partitions of the page's topics that it does
// not read yet, each at its first record stamped at or after since, and
// marks them in reading. It reports whether every topic exists.
//
// The end offsets are listed before the offsets by time, both without
// isolation. kgo's by-time reset (AfterMilli) lists by time in
// read_committed, where the broker looks only below the last stable
// offset, and falls back to an end listed in a second request: a
// transaction whose commit markers were written between the two was
// skipped whole (TestRunReadsRecentCommittedRecords caught it under
// load). Here every record at or past the end listed first is read, and
// the records before it that the by-time listing passes over are older
// than since.
func (o *Overview) follow(ctx context.Context, adm *kadm.Client, cl *kgo.Client, since int64, reading map[string]map[int32]bool) (all bool, err error) {
	tds, err := adm.ListTopics(ctx, o.topics...)
	if err != nil {
		return false, err
	}
	all = true
	var grown []string
	for _, t := range o.topics {
		td, ok := tds[t]
		if !ok || td.Err != nil {
			all = false // not created yet
			continue
		}
		if len(td.Partitions) > len(reading[t]) {
			grown = append(grown, t)
		}
	}
	if len(grown) == 0 {
		return all, nil
	}
	// A partition that fails to list (its topic being created or
	// deleted, its leader moving) is left for the next look; the others
	// are read meanwhile.
	ends, eerr := adm.ListEndOffsets(ctx, grown...)
	byTime, terr := adm.ListOffsetsAfterMilli(ctx, since, grown...)
	errs := []error{eerr, terr}
	add := map[string]map[int32]kgo.Offset{}
	ends.Each(func(e kadm.ListedOffset) {
		if reading[e.Topic][e.Partition] {
			return
		}
		b, ok := byTime.Lookup(e.Topic, e.Partition)
		switch {
		case e.Err != nil:
			errs = append(errs, fmt.Errorf("%s/%d: listing the end offset: %w", e.Topic, e.Partition, e.Err))
			return
		case !ok:
			return // the error is in terr
		case b.Err != nil:
			errs = append(errs, fmt.Errorf("%s/%d: listing offsets by time: %w", e.Topic, e.Partition, b.Err))
			return
		}
		at := e.Offset
		if b.Offset >= 0 {
			at = min(at, b.Offset)
		}
		if add[e.Topic] == nil {
			add[e.Topic] = map[int32]kgo.Offset{}
		}
		add[e.Topic][e.Partition] = kgo.NewOffset().At(at)
		o.log.Debug("reading a partition", "topic", e.Topic, "partition", e.Partition, "from", at, "end", e.Offset, "by_time", b.Offset)
		if reading[e.Topic] == nil {
			reading[e.Topic] = map[int32]bool{}
		}
		reading[e.Topic][e.Partition] = true
	})
	cl.AddConsumePartitions(add)
	return all, errors.Join(errs...)
}

// apply takes one record: a decision goes to the recent decisions (and
// the live streams), and, like an event, into its build's journey.
func (o *Overview) apply(r *kgo.Record) {
	rec, err := o.cfg.Codec.Decode(r.Value)
	if err != nil {
		o.skipped.Inc()
		o.log.Debug("skipping a record that does not decode", "topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "err", err)
		return
	}
	l := o.cfg.Describe(rec)
	if l.Subject == "" {
		l.Subject = string(r.Key)
	}
	l.Reason = clip(l.Reason)
	env := rec.Env()
	if isDecision(rec) {
		o.hub.publish(Decision{
			Time: r.Timestamp.UTC(), EventTime: env.EventTime.UTC(), Kind: l.Kind, Subject: l.Subject,
			Verdict: l.Verdict, Reason: l.Reason, Link: link(rec, l.Subject), Class: verdictClass(l.Verdict),
		})
	}
	if nvr, stage := journeyOf(rec); nvr != "" {
		o.journeys.add(nvr, Step{
			Stage: stage, Time: env.EventTime.UTC(), Recorded: r.Timestamp.UTC(), Ingested: env.IngestTime.UTC(),
			Kind: l.Kind, Verdict: l.Verdict, Reason: l.Reason, Class: verdictClass(l.Verdict),
			reached: reaches(rec, l.Verdict),
		})
	}
}

func isDecision(r avro.Record) bool {
	switch r.(type) {
	case *avro.GatingDecision, *avro.AutosignDecision, *avro.SignedStatus, *avro.ComposeReadyDecision, *avro.RebuildDecision:
		return true
	}
	return false
}

// link is the page that tells more about a decision's subject.
func link(r avro.Record, subject string) string {
	switch d := r.(type) {
	case *avro.ComposeReadyDecision:
		return "/composes/" + pathEscape(d.ComposeID)
	case *avro.GatingDecision:
		if d.SubjectType == "compose" {
			return "/composes/" + pathEscape(d.SubjectID)
		}
	}
	if subject == "" {
		return ""
	}
	return "/builds/" + pathEscape(subject)
}

// verdictClass is the CSS class of a verdict: good, bad, wait or info.
func verdictClass(v string) string {
	switch strings.ToLower(v) {
	case "passed", "ready", "signed", "sign", "complete", "tagged", avro.OutcomePassed, "waived", "defined", "finished":
		return "good"
	case "blocked", "unsigned", "revoke", "failed", "error", "errored", "untagged", "deleted", "canceled", "doomed", "needs_inspection":
		return "bad"
	case "waiting", "queued", "running", "building", "started":
		return "wait"
	}
	return "info"
}

// plainLine is the default Describe: the record's type and subject.
func plainLine(r avro.Record) Line {
	l := Line{Kind: avro.TypeName(r)}
	switch d := r.(type) {
	case *avro.GatingDecision:
		l.Subject = d.SubjectID
		l.Verdict = "blocked"
		if d.PoliciesSatisfied {
			l.Verdict = "passed"
		}
		l.Reason = d.Summary
	case *avro.AutosignDecision:
		l.Subject, l.Verdict = d.NVR, d.Action
	case *avro.SignedStatus:
		l.Subject, l.Verdict = d.NVR, "unsigned"
		if d.Signed {
			l.Verdict = "signed"
		}
	case *avro.ComposeReadyDecision:
		l.Subject, l.Reason = d.ComposeID, d.Summary
	case *avro.RebuildDecision:
		l.Subject, l.Verdict, l.Reason = d.SubjectID, "rebuild", d.Reason
	case *avro.BuildEvent:
		l.Subject, l.Verdict = d.NVR, d.State
		if d.Kind == avro.BuildTag || d.Kind == avro.BuildUntag {
			l.Verdict, l.Reason = d.Kind, d.Tag
		}
	case *avro.SignEvent:
		l.Subject, l.Verdict, l.Reason = d.NVR, d.Outcome, d.SigKey
	case *avro.TestResult:
		l.Subject, l.Verdict, l.Reason = d.SubjectID, d.Outcome, d.Testcase
	case *avro.Waiver:
		l.Subject, l.Verdict, l.Reason = d.SubjectID, "waived", d.Testcase
	}
	return l
}

// clip bounds a text to maxText bytes, at a rune boundary.
func clip(s string) string {
	if len(s) <= maxText {
		return s
	}
	i := maxText
	for i > 0 && !utf8RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }
