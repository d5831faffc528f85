package koji

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/factory2/factory2/avro"
)

// ArtifactsIDSuffix ends the id of the event an Enricher derives from a
// COMPLETE build event: the event's id + ArtifactsIDSuffix.
const ArtifactsIDSuffix = "#rpms"

// BuildrootIDSuffix, then an RPM's file name, follows the COMPLETE
// message's id in the id of a buildroot edge.
const BuildrootIDSuffix = "#buildroot/"

// DefaultAttempts is how many times an Enricher makes a call that fails
// transiently before it gives up on the build.
const DefaultAttempts = 3

// ErrMismatch: the hub's build is not the one the message named (another
// NVR under the build id: a message of another hub).
var ErrMismatch = errors.New("koji: the hub's build is not the message's")

// EnricherConfig configures an Enricher. Client is required.
type EnricherConfig struct {
	Client *Client
	// Instance is the Koji instance the hub is (a build event's
	// Instance); default "primary". Builds of other instances (another
	// hub) are not enriched.
	Instance string
	// Attempts bounds the calls made for one hub method and build when
	// they fail transiently (see Transient); default DefaultAttempts.
	Attempts int
	// Backoff is the wait before the second attempt, doubled before each
	// next one; default 1s.
	Backoff time.Duration
	// Logger logs each failed attempt that is retried; default discards.
	Logger *slog.Logger
	// Registerer registers the metrics; nil registers none.
	Registerer prometheus.Registerer
}

// Enricher learns, from the hub, what Koji's bus messages do not carry:
// a build's RPM list. When a build becomes COMPLETE, it asks the hub
// once (getBuild, then listRPMs, as robosignatory does before signing)
// and returns a build event that lists the RPMs, to be produced next to
// the COMPLETE event. The answer is recorded as an event so that the
// processors, and a replay, never call Koji: they read the log.
//
// The derived event's id is the COMPLETE event's id + ArtifactsIDSuffix,
// and its content depends only on the build (RPMs sorted by name), so
// re-sending the same message yields the same event again, which the
// processors take as a duplicate. An Enricher is safe for concurrent use.
type Enricher struct {
	cfg     EnricherConfig
	log     *slog.Logger
	metrics *metrics
}

type metrics struct {
	builds  *prometheus.CounterVec
	calls   *prometheus.CounterVec
	retries prometheus.Counter
}

// Outcomes counted by factory2_koji_enrichments_total.
const (
	OutcomeEnriched = "enriched" // a build event lists the RPMs
	OutcomeSkipped  = "skipped"  // nothing to record: no RPMs, or no longer COMPLETE
	OutcomeFailed   = "failed"   // the hub did not tell
)

// NewEnricher checks cfg and returns an Enricher.
func NewEnricher(cfg EnricherConfig) (*Enricher, error) {
	if cfg.Client == nil {
		return nil, errors.New("koji: enricher: no client")
	}
	if cfg.Instance == "" {
		cfg.Instance = "primary"
	}
	if cfg.Attempts == 0 {
		cfg.Attempts = DefaultAttempts
	}
	if cfg.Attempts < 1 {
		return nil, fmt.Errorf("koji: enricher: attempts %d: at least 1", cfg.Attempts)
	}
	if cfg.Backoff == 0 {
		cfg.Backoff = time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &metrics{
		builds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "factory2_koji_enrichments_total",
			Help: "COMPLETE builds whose RPM list was asked of the Koji hub, by outcome (enriched, skipped, failed).",
		}, []string{"outcome"}),
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "factory2_koji_calls_total",
			Help: "Koji hub XML-RPC calls, by method and outcome (ok, error).",
		}, []string{"method", "outcome"}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "factory2_koji_call_retries_total",
			Help: "Koji hub calls made again after a transient failure.",
		}),
	}
	for _, o := range []string{OutcomeEnriched, OutcomeSkipped, OutcomeFailed} {
		m.builds.WithLabelValues(o)
	}
	if cfg.Registerer != nil {
		for _, c := range []prometheus.Collector{m.builds, m.calls, m.retries} {
			if err := cfg.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("koji: enricher metrics: %w", err)
			}
		}
	}
	return &Enricher{cfg: cfg, log: log, metrics: m}, nil
}

// Wants reports whether rec is an event the Enricher completes: a build
// state change to COMPLETE of its instance that lists no artifacts and
// was translated from a bus message (its origin names a topic).
func (e *Enricher) Wants(rec avro.Record) bool {
	b, ok := rec.(*avro.BuildEvent)
	if !ok || b.Kind != avro.BuildStateChange || !strings.EqualFold(b.State, avro.StateComplete) ||
		len(b.Artifacts) > 0 || b.Origin.Topic == "" {
		return false
	}
	inst := b.Instance
	if inst == "" {
		inst = "primary"
	}
	return inst == e.cfg.Instance
}

// BuildError is the failure to enrich one build.
type BuildError struct {
	NVR     string
	EventID string
	// Tried is false when the build was not asked about: an earlier
	// build of the same batch found the hub unreachable.
	Tried bool
	Err   error
}

func (e *BuildError) Error() string {
	if !e.Tried {
		return fmt.Sprintf("koji: RPM list of %s (event %s) not asked: %v", e.NVR, e.EventID, e.Err)
	}
	return fmt.Sprintf("koji: RPM list of %s (event %s): %v", e.NVR, e.EventID, e.Err)
}

func (e *BuildError) Unwrap() error { return e.Err }

// EnrichAll enriches the records of recs that Wants, one build after the
// other, and returns the derived events in the order of recs. The error
// joins a *BuildError per build that could not be enriched (each event
// of the others is returned). Once a build fails transiently after every
// attempt (the hub is down), the builds after it are not asked about:
// each gets a *BuildError that says so, rather than waiting out every
// attempt again.
func (e *Enricher) EnrichAll(ctx context.Context, recs []avro.Record) ([]avro.Record, error) {
	var (
		out  []avro.Record
		errs []error
		down error
	)
	for _, r := range recs {
		if !e.Wants(r) {
			continue
		}
		b := r.(*avro.BuildEvent)
		if down != nil {
			e.metrics.builds.WithLabelValues(OutcomeFailed).Inc()
			errs = append(errs, &BuildError{NVR: b.NVR, EventID: b.ID, Err: down})
			continue
		}
		ev, edges, err := e.enrich(ctx, b)
		switch {
		case err != nil:
			errs = append(errs, err)
			if Transient(err) || ctx.Err() != nil {
				down = fmt.Errorf("the hub was unreachable for %s: %w", b.NVR, err)
			}
		case ev != nil:
			out = append(out, ev)
			out = append(out, edges...)
		}
	}
	return out, errors.Join(errs...)
}

// Enrich asks the hub about the COMPLETE build of b and returns the build
// event that lists its RPMs, or nil when there is nothing to record (the
// build has no RPMs, or is no longer COMPLETE). A failure is a
// *BuildError.
func (e *Enricher) Enrich(ctx context.Context, b *avro.BuildEvent) (*avro.BuildEvent, error) {
	ev, _, err := e.enrich(ctx, b)
	return ev, err
}

// enrich is Enrich, also returning the build's buildroot edges (see
// buildrootEdges).
func (e *Enricher) enrich(ctx context.Context, b *avro.BuildEvent) (*avro.BuildEvent, []avro.Record, error) {
	fail := func(err error) (*avro.BuildEvent, []avro.Record, error) {
		e.metrics.builds.WithLabelValues(OutcomeFailed).Inc()
		return nil, nil, &BuildError{NVR: b.NVR, EventID: b.ID, Tried: true, Err: err}
	}
	var buildInfo any = b.NVR
	if b.BuildID != 0 {
		buildInfo = b.BuildID
	}
	var build *Build
	err := e.retry(ctx, "getBuild", b.NVR, func() (err error) {
		build, err = e.cfg.Client.GetBuild(ctx, buildInfo)
		return err
	})
	if err != nil {
		return fail(err)
	}
	if build.NVR != b.NVR {
		return fail(fmt.Errorf("%w: build %v is %s in %s", ErrMismatch, buildInfo, build.NVR, e.cfg.Client.HubURL()))
	}
	if build.State != StateComplete {
		e.metrics.builds.WithLabelValues(OutcomeSkipped).Inc()
		e.log.Info("koji: build no longer COMPLETE, its RPM list is not recorded", "nvr", b.NVR, "state", build.State)
		return nil, nil, nil
	}
	var rpms []RPM
	err = e.retry(ctx, "listRPMs", b.NVR, func() (err error) {
		rpms, err = e.cfg.Client.ListRPMs(ctx, build.ID)
		return err
	})
	if err != nil {
		return fail(err)
	}
	if len(rpms) == 0 {
		e.metrics.builds.WithLabelValues(OutcomeSkipped).Inc()
		e.log.Info("koji: build has no RPMs, nothing to record", "nvr", b.NVR)
		return nil, nil, nil
	}
	edges, err := e.buildrootEdges(ctx, b, rpms)
	if err != nil {
		return fail(err)
	}
	e.metrics.builds.WithLabelValues(OutcomeEnriched).Inc()
	return artifactsEvent(b, build, rpms), edges, nil
}

// buildrootEdges asks the hub what the build was built against: the RPMs
// installed in each buildroot its RPMs were built in (one listRPMs per
// buildroot, one per architecture's task), as dependency edges
// build:NVR --buildroot--> rpm:<file name>, sorted, with ids derived
// from the COMPLETE event's, so a re-sent message gives the same events.
// An RPM's own build is then reached through the produced-by edge that
// its build's enrichment records.
func (e *Enricher) buildrootEdges(ctx context.Context, b *avro.BuildEvent, rpms []RPM) ([]avro.Record, error) {
	var roots []int64
	for _, r := range rpms {
		if r.BuildrootID != 0 && !slices.Contains(roots, r.BuildrootID) {
			roots = append(roots, r.BuildrootID)
		}
	}
	slices.Sort(roots)
	var names []string
	for _, id := range roots {
		var in []RPM
		err := e.retry(ctx, "listRPMs", b.NVR, func() (err error) {
			in, err = e.cfg.Client.ListBuildrootRPMs(ctx, id)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("buildroot %d: %w", id, err)
		}
		for _, r := range in {
			names = append(names, r.FileName())
		}
	}
	slices.Sort(names)
	names = slices.Compact(names)
	out := make([]avro.Record, len(names))
	for i, n := range names {
		out[i] = &avro.DependencyEdge{
			Envelope: avro.Envelope{ID: b.ID + BuildrootIDSuffix + n, Source: b.Source, EventTime: b.EventTime, Origin: b.Origin},
			FromType: "build", FromID: b.NVR, Relation: avro.RelBuildroot, ToType: "rpm", ToID: n,
		}
	}
	return out, nil
}

// artifactsEvent is the build event recording the RPMs of the COMPLETE
// build b: a state change to COMPLETE (what Koji says the build is)
// with its artifacts, sorted by name.
func artifactsEvent(b *avro.BuildEvent, build *Build, rpms []RPM) *avro.BuildEvent {
	arts := make([]avro.Artifact, len(rpms))
	for i, r := range rpms {
		arts[i] = avro.Artifact{ID: strconv.FormatInt(r.ID, 10), Name: r.FileName(), Type: "rpm", Arch: r.Arch}
	}
	slices.SortFunc(arts, func(x, y avro.Artifact) int { return strings.Compare(x.Name, y.Name) })
	return &avro.BuildEvent{
		Envelope: avro.Envelope{
			ID:        b.ID + ArtifactsIDSuffix,
			Source:    b.Source,
			EventTime: b.EventTime,
			Origin:    b.Origin,
		},
		Kind:      avro.BuildStateChange,
		NVR:       b.NVR,
		Name:      build.Name,
		Version:   build.Version,
		Release:   build.Release,
		Epoch:     build.Epoch,
		BuildID:   build.ID,
		Instance:  b.Instance,
		State:     avro.StateComplete,
		Artifacts: arts,
	}
}

// retry calls f until it succeeds, fails other than transiently, or
// has been called Attempts times, waiting Backoff, then twice as long,
// between attempts.
func (e *Enricher) retry(ctx context.Context, method, nvr string, f func() error) error {
	wait := e.cfg.Backoff
	for attempt := 1; ; attempt++ {
		err := f()
		if err == nil {
			e.metrics.calls.WithLabelValues(method, "ok").Inc()
			return nil
		}
		e.metrics.calls.WithLabelValues(method, "error").Inc()
		if !Transient(err) || attempt == e.cfg.Attempts || ctx.Err() != nil {
			if attempt > 1 {
				return fmt.Errorf("%w (after %d attempts)", err, attempt)
			}
			return err
		}
		e.log.Warn("koji: call failed, retrying", "method", method, "nvr", nvr,
			"attempt", attempt, "of", e.cfg.Attempts, "in", wait, "err", err)
		e.metrics.retries.Inc()
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (gave up waiting to retry: %v)", err, ctx.Err())
		case <-t.C:
		}
		wait *= 2
	}
}
