package compose_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/factory2/factory2/avro"
	"github.com/factory2/factory2/internal/kafkatest"
	"github.com/factory2/factory2/processors/compose"
)

const tableWait = 30 * time.Second

// decisionLog produces compose decisions to a topic the way the compose
// processor does: Avro values keyed by compose id, in transactions.
type decisionLog struct {
	t     testing.TB
	env   *kafkatest.Env
	topic string
	codec *avro.Codec
	cl    *kgo.Client
	clock time.Time
	seq   int
}

func newDecisionLog(t testing.TB, env *kafkatest.Env, partitions int) *decisionLog {
	t.Helper()
	codec, err := avro.NewCodec()
	if err != nil {
		t.Fatal(err)
	}
	topic := kafkatest.Topic(t, env, partitions, nil)
	return &decisionLog{
		t: t, env: env, topic: topic, codec: codec,
		cl:    kafkatest.Client(t, env, kgo.TransactionalID(kafkatest.UniqueName(t)), kgo.DefaultProduceTopic(topic)),
		clock: time.Date(2026, 11, 2, 12, 0, 0, 0, time.UTC),
	}
}

// commit produces ds (and raw values, which are not decisions) in one
// transaction, committed; abort the same, aborted.
func (l *decisionLog) commit(ds ...*avro.ComposeReadyDecision) { l.txn(kgo.TryCommit, nil, ds...) }
func (l *decisionLog) abort(ds ...*avro.ComposeReadyDecision)  { l.txn(kgo.TryAbort, nil, ds...) }

func (l *decisionLog) txn(end kgo.TransactionEndTry, raw [][]byte, ds ...*avro.ComposeReadyDecision) {
	l.t.Helper()
	ctx, cancel := context.WithTimeout(l.t.Context(), tableWait)
	defer cancel()
	if err := l.cl.BeginTransaction(); err != nil {
		l.t.Fatal(err)
	}
	var recs []*kgo.Record
	for _, d := range ds {
		v, err := l.codec.Encode(d)
		if err != nil {
			l.t.Fatal(err)
		}
		recs = append(recs, &kgo.Record{Key: []byte(d.ComposeID), Value: v})
	}
	for _, v := range raw {
		recs = append(recs, &kgo.Record{Key: []byte("junk"), Value: v})
	}
	if err := l.cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		l.t.Fatal(err)
	}
	if err := l.cl.EndTransaction(ctx, end); err != nil {
		l.t.Fatal(err)
	}
}

func (l *decisionLog) decision(kind, id string, ready bool, summary string) *avro.ComposeReadyDecision {
	l.seq++
	l.clock = l.clock.Add(time.Second)
	return &avro.ComposeReadyDecision{
		Decision: avro.Decision{Envelope: avro.Envelope{
			ID: fmt.Sprintf("%s-%s-%d", kind, id, l.seq), Source: "factory2/compose", EventTime: l.clock, IngestTime: l.clock,
		}, PolicyVersion: "v1"},
		ComposeID: id, Ready: ready, Kind: kind, Summary: summary,
	}
}

// readiness is a readiness decision: ready, or blocked by blockers.
func (l *decisionLog) readiness(id, digest string, members int64, blockers ...avro.Requirement) *avro.ComposeReadyDecision {
	summary := fmt.Sprintf("ready: %d builds", members)
	if len(blockers) > 0 {
		summary = fmt.Sprintf("not ready: %d of %d builds blocked", len(blockers), members)
	}
	d := l.decision(avro.ComposeReadiness, id, len(blockers) == 0, summary)
	d.Unsatisfied, d.Members, d.ContentDigest = blockers, members, digest
	d.ProductVersion, d.DecisionContext = "fedora-42", "ctx"
	counts := map[string]int64{}
	for _, b := range blockers {
		counts[b.Type]++
	}
	for typ, n := range counts {
		d.BlockerCounts = append(d.BlockerCounts, avro.BlockerCount{Type: typ, Count: n})
	}
	return d
}

func (l *decisionLog) ready(id, digest string, nvrs ...string) *avro.ComposeReadyDecision {
	d := l.decision(avro.ComposeReady, id, true, fmt.Sprintf("ready: %d builds, complete", len(nvrs)))
	d.ContentDigest, d.Members = digest, int64(len(nvrs))
	for _, nvr := range nvrs {
		d.Manifest = append(d.Manifest, avro.ManifestEntry{NVR: nvr, Package: strings.Split(nvr, "-")[0], KeyID: "key42", DecisionIDs: []string{"g-" + nvr}})
	}
	return d
}

func (l *decisionLog) gate(id, status string, passed bool, unsat ...avro.Requirement) *avro.ComposeReadyDecision {
	summary := "passed: every compose gating decision is satisfied"
	if !passed {
		summary = "not passed: compose_tests: 1 of 2 required tests failed"
	}
	d := l.decision(avro.ComposeGate, id, passed, summary)
	d.Status, d.Unsatisfied, d.DecisionContext = status, unsat, "compose_tests"
	return d
}

func blocker(typ, nvr, detail string) avro.Requirement {
	return avro.Requirement{Type: typ, SubjectType: "koji_build", SubjectID: nvr, Detail: detail}
}

// startTable runs a table on l's topic until the test ends.
func startTable(t *testing.T, l *decisionLog, reg prometheus.Registerer) *compose.Table {
	t.Helper()
	tbl, err := compose.NewTable(compose.TableConfig{
		Brokers: l.env.Brokers(), Topic: l.topic, Codec: l.codec, Registerer: reg,
		RetryBackoff: 10 * time.Millisecond, MaxRetryBackoff: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tbl.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return tbl
}

// waitLoaded waits until tbl is loaded and lists n composes. (A table
// may be loaded before it sees a transaction whose producer has already
// committed it: Kafka writes the commit markers, which make it stable,
// a moment after EndTransaction returns.)
func waitLoaded(t *testing.T, tbl *compose.Table, n int) {
	t.Helper()
	kafkatest.WaitFor(t, tableWait, func() error {
		l, err := tbl.List()
		if err == nil && len(l) != n {
			err = fmt.Errorf("%d composes, want %d", len(l), n)
		}
		return err
	})
}

func status(t *testing.T, tbl *compose.Table, id string) *compose.Status {
	t.Helper()
	s, err := tbl.Status(id, true)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestTableKeepsTheLatestDecisionOfEachKind: the table holds, per
// compose, the latest readiness, compose-ready and gate decision, from
// committed transactions only; skips records that are not decisions;
// follows new decisions; and a second instance started later answers
// the same.
func TestTableKeepsTheLatestDecisionOfEachKind(t *testing.T) {
	env := kafkatest.Cluster(t)
	l := newDecisionLog(t, env, 3)
	l.commit(
		l.readiness("f42", "d1", 2, blocker(compose.ReqUnsigned, "bash-5.2-1.fc42", "not signed with key key42")),
		l.readiness("rawhide", "r1", 0, avro.Requirement{Type: compose.ReqLoading, Pending: true, Detail: "0 of 3 partitions have sent the builds of f44"}),
	)
	l.commit(l.readiness("f42", "d1", 2), l.ready("f42", "d1", "bash-5.2-1.fc42", "curl-8.0-1.fc42"))
	l.abort(l.readiness("f42", "d9", 7, blocker(compose.ReqGatingFail, "xz-5.6-1.fc42", "ctx: failed")))
	l.txn(kgo.TryCommit, [][]byte{[]byte("not avro")})
	l.commit(l.gate("Fedora-42-20261102.0", avro.ComposeFinished, false,
		avro.Requirement{Type: "test-result-failed", Testcase: "compose.install_default", Scenario: "x86_64"}))

	reg := prometheus.NewRegistry()
	tbl := startTable(t, l, reg)
	waitLoaded(t, tbl, 3)

	list, err := tbl.List()
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, o := range list {
		ids = append(ids, o.ComposeID)
	}
	if want := []string{"Fedora-42-20261102.0", "f42", "rawhide"}; !slices.Equal(ids, want) {
		t.Fatalf("composes %v, want %v", ids, want)
	}
	f42 := status(t, tbl, "f42")
	if f42.Ready == nil || !*f42.Ready || f42.Members != 2 || len(f42.Blockers) != 0 || len(f42.BlockerCounts) != 0 {
		t.Fatalf("f42 (the aborted readiness must not show): %+v", f42)
	}
	if f42.LastDecision.Kind != avro.ComposeReady || f42.LastReady == nil || !f42.LastReady.Current ||
		f42.LastReady.ManifestEntries != 2 || f42.LastReady.Manifest[1].NVR != "curl-8.0-1.fc42" {
		t.Fatalf("f42's compose-ready: last %+v, ready %+v", f42.LastDecision, f42.LastReady)
	}
	if f42.Gate != nil {
		t.Fatalf("f42 has no gate: %+v", f42.Gate)
	}
	gate := status(t, tbl, "Fedora-42-20261102.0")
	if gate.Ready != nil || gate.Gate == nil || gate.Gate.Passed || gate.Gate.Status != avro.ComposeFinished ||
		len(gate.Gate.Unsatisfied) != 1 || gate.LastReady != nil {
		t.Fatalf("Pungi compose: %+v, gate %+v", gate, gate.Gate)
	}
	var text strings.Builder
	if err := gate.WriteText(&text); err != nil || !strings.HasPrefix(text.String(), "compose Fedora-42-20261102.0: gate FINISHED, not passed\n") ||
		!strings.Contains(text.String(), "test-result-failed  compose.install_default [x86_64]") {
		t.Fatalf("Pungi compose as text: %v\n%s", err, text.String())
	}
	if _, err := tbl.Status("f43", true); !errors.Is(err, compose.ErrUnknownCompose) || !strings.Contains(err.Error(), `"f43"`) {
		t.Fatalf("unknown compose: %v", err)
	}
	if got := gather(t, reg, "factory2_compose_table_records_skipped_total"); got != 1 {
		t.Errorf("skipped %v records, want 1", got)
	}
	if got := gather(t, reg, "factory2_compose_table_loaded"); got != 1 {
		t.Errorf("loaded gauge %v", got)
	}

	// New decisions are followed: f42 is blocked again, its compose-ready
	// no longer current.
	l.commit(l.readiness("f42", "d2", 3, blocker(compose.ReqGatingFail, "xz-5.6-1.fc42", "ctx: 1 of 1 required tests failed")))
	kafkatest.WaitFor(t, tableWait, func() error {
		if s := status(t, tbl, "f42"); s.Ready == nil || *s.Ready {
			return fmt.Errorf("f42 still ready: %s", s.Summary)
		}
		return nil
	})
	f42 = status(t, tbl, "f42")
	if f42.Members != 3 || len(f42.Blockers) != 1 || f42.Blockers[0].SubjectID != "xz-5.6-1.fc42" ||
		!slices.Equal(f42.BlockerCounts, []avro.BlockerCount{{Type: compose.ReqGatingFail, Count: 1}}) ||
		f42.LastReady == nil || f42.LastReady.Current || f42.LastDecision.Kind != avro.ComposeReadiness {
		t.Fatalf("f42 blocked again: %+v, last ready %+v", f42, f42.LastReady)
	}
	if s, _ := tbl.Status("f42", false); s.LastReady.Manifest != nil || s.LastReady.ManifestEntries != 2 {
		t.Fatalf("without the manifest: %+v", s.LastReady)
	}

	// Any instance answers: another table reads the same.
	other := startTable(t, l, nil)
	waitLoaded(t, other, 3)
	again, _ := other.List()
	list, _ = tbl.List()
	if a, b := mustJSON(t, again), mustJSON(t, list); a != b {
		t.Fatalf("another instance lists\n%s\nwant\n%s", a, b)
	}
}

// TestTableLoadingAndBrokerFaults: until the table has read the decisions
// that existed when it started it answers with a *LoadingError that says
// how far it is, never with a partial answer; it waits out a topic that
// does not exist yet and fetches that fail, and never stops.
func TestTableLoadingAndBrokerFaults(t *testing.T) {
	t.Setenv(kafkatest.EnvBrokers, "") // fault injection needs kfake
	env := kafkatest.Cluster(t)
	fake := env.Fake()
	l := newDecisionLog(t, env, 2)
	for i := range 5 {
		l.commit(l.readiness(fmt.Sprint("c", i), "d", 1))
	}
	var blocked atomic.Bool
	blocked.Store(true)
	fake.ControlKey(int16(kmsg.Fetch), func(kmsg.Request) (kmsg.Response, error, bool) {
		if !blocked.Load() {
			return nil, nil, false // not handled: served as usual
		}
		fake.KeepControl()
		return nil, errors.New("fetch refused by the test"), true // closes the connection
	})
	tbl := startTable(t, l, nil)
	var le *compose.LoadingError
	kafkatest.WaitFor(t, tableWait, func() error {
		_, err := tbl.List()
		if !errors.As(err, &le) || le.Total == 0 {
			return fmt.Errorf("want a loading error with the ends listed, got %v", err)
		}
		return nil
	})
	// Five transactions of one record and its commit marker.
	if le.Read != 0 || le.Total != 10 || le.Error() != "loading compose table: 0 of 10 records" {
		t.Fatalf("loading: %+v %q", le, le.Error())
	}
	if _, err := tbl.Status("c1", true); !errors.As(err, &le) {
		t.Fatalf("Status while loading: %v", err)
	}
	if h := tbl.Health(); h.Ready || !h.Live || !strings.HasPrefix(h.Reason, "loading compose table: 0 of 10 records") {
		t.Fatalf("health while loading: %+v", h)
	}
	blocked.Store(false)
	waitLoaded(t, tbl, 5)
	if h := tbl.Health(); !h.Ready || h.Reason != "" {
		t.Fatalf("health when loaded: %+v", h)
	}

	// A topic that does not exist yet is waited for.
	codec := l.codec
	missing := kafkatest.UniqueName(t)
	tbl2, err := compose.NewTable(compose.TableConfig{Brokers: env.Brokers(), Topic: missing, Codec: codec,
		RetryBackoff: 10 * time.Millisecond, MaxRetryBackoff: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tbl2.Run(ctx) }()
	kafkatest.WaitFor(t, tableWait, func() error {
		_, err := tbl2.List()
		if err == nil || !strings.Contains(err.Error(), "loading compose table: listing the decisions to read; waiting for Kafka: listing the end offsets of "+missing) {
			return fmt.Errorf("want a wait for the topic, got %v", err)
		}
		return nil
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run after a wait: %v", err)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// gather returns the value of the unlabelled metric name in reg.
func gather(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		m := mf.GetMetric()[0]
		if c := m.GetCounter(); c != nil {
			return c.GetValue()
		}
		return m.GetGauge().GetValue()
	}
	t.Fatalf("no metric %s", name)
	return 0
}
