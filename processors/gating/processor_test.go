package gating_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/factory2/factory2/avro"
	"github.com/factory2/factory2/internal/ingest"
	"github.com/factory2/factory2/internal/kafkatest"
	"github.com/factory2/factory2/internal/sample"
	"github.com/factory2/factory2/processors"
	"github.com/factory2/factory2/processors/gating"
	"github.com/factory2/factory2/topics"
)

var update = flag.Bool("update", false, "rewrite golden files")

// decisionLine is the part of a decision the end-to-end golden pins.
type decisionLine struct {
	Topic       string   `json:"topic"`
	Key         string   `json:"key"`
	Type        string   `json:"type"`
	What        string   `json:"what"`
	Satisfied   []string `json:"satisfied"`
	Unsatisfied []string `json:"unsatisfied"`
	DerivedFrom []string `json:"derived_from"`
}

func summarize(topic string, key []byte, r avro.Record) decisionLine {
	l := decisionLine{Topic: topic, Key: string(key), Type: avro.TypeName(r)}
	reqs := func(d *avro.Decision) {
		for _, q := range d.Satisfied {
			l.Satisfied = append(l.Satisfied, q.Type+":"+q.Testcase)
		}
		for _, q := range d.Unsatisfied {
			p := ""
			if q.Pending {
				p = "(pending)"
			}
			l.Unsatisfied = append(l.Unsatisfied, q.Type+":"+q.Testcase+p)
		}
		l.DerivedFrom = d.DerivedFrom
	}
	switch d := r.(type) {
	case *avro.GatingDecision:
		l.What = fmt.Sprintf("%s %s satisfied=%v: %s", d.DecisionContext, d.ProductVersion, d.PoliciesSatisfied, d.Summary)
		reqs(&d.Decision)
	case *avro.AutosignDecision:
		l.What = fmt.Sprintf("%s %s %s->%s unsigned=%d", d.Action, d.KeyID, d.FromTag, d.ToTag, len(d.Unsigned))
		reqs(&d.Decision)
	case *avro.SignedStatus:
		l.What = fmt.Sprintf("signed=%v %s artifacts=%d", d.Signed, d.KeyID, len(d.Artifacts))
		reqs(&d.Decision)
	case *avro.ComposeMember: // a build view
		var tags, gating []string
		for _, t := range d.Tags {
			tags = append(tags, t.Tag)
		}
		for _, g := range d.Gating {
			gating = append(gating, fmt.Sprintf("%s=%v", g.DecisionContext, g.Satisfied))
		}
		l.What = fmt.Sprintf("%s tags=%v signed=%v gating=%v", d.State, tags, d.SignedKeys, gating)
	}
	return l
}

// withoutViews drops the build views from ls.
func withoutViews(ls []decisionLine) []decisionLine {
	return slices.DeleteFunc(slices.Clone(ls), func(l decisionLine) bool { return l.Type == "compose_member" })
}

type e2e struct {
	env    *kafkatest.Env
	cat    *topics.Catalog
	codec  *avro.Codec
	spec   processors.Spec
	runner *processors.Runner
	cfg    processors.Config
}

func newE2E(t *testing.T) *e2e {
	env := kafkatest.Cluster(t)
	cat, err := topics.New(topics.Config{Prefix: kafkatest.UniqueName(t) + ".", Partitions: 3, Replication: 1, InputRetentionMS: -1, DecisionRetentionMS: -1})
	if err != nil {
		t.Fatal(err)
	}
	ps, err := gating.LoadPolicies(map[string][]byte{"sample.yaml": []byte(sample.Policy)})
	if err != nil {
		t.Fatal(err)
	}
	eng, err := gating.NewEngine(ps, sample.SigningRules)
	if err != nil {
		t.Fatal(err)
	}
	codec, err := avro.NewCodec()
	if err != nil {
		t.Fatal(err)
	}
	e := &e2e{env: env, cat: cat, codec: codec, spec: gating.Spec(cat, eng)}
	e.cfg = processors.Config{
		Brokers: env.Brokers(), InstanceID: "e2e", Catalog: cat, Codec: codec,
		Logger:   slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo})),
		StateDir: t.TempDir(), CommitInterval: 20 * time.Millisecond, SessionTimeout: 6 * time.Second,
	}
	if e.runner, err = processors.NewRunner(e.spec, e.cfg); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := cat.Ensure(ctx, kafkatest.Client(t, env)); err != nil {
		t.Fatal(err)
	}
	return e
}

// feed produces events one at a time and waits, after each, until the
// processor's group has committed past it: the decision history is then
// the one of in-order delivery, which the golden pins.
func (e *e2e) feed(t *testing.T, recs []avro.Record) {
	prod, err := ingest.NewProducer(ingest.ProducerConfig{Brokers: e.env.Brokers(), TransactionalID: kafkatest.UniqueName(t), Codec: e.codec})
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	parser := &ingest.Parser{Catalog: e.cat, Now: func() time.Time { return time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC) }}
	adm := kadm.NewClient(kafkatest.Client(t, e.env))
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	for _, r := range recs {
		evs, err := parser.Records(r)
		if err != nil {
			t.Fatal(err)
		}
		out, err := prod.Produce(ctx, evs)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(e.spec.Inputs, out[0].Topic) {
			continue // compose events are for another processor
		}
		kafkatest.WaitFor(t, 30*time.Second, func() error {
			off, err := adm.FetchOffsetsForTopics(ctx, e.runner.Group(), out[0].Topic)
			if err != nil {
				return err
			}
			if c, ok := off.Lookup(out[0].Topic, out[0].Partition); !ok || c.At <= out[0].Offset {
				return fmt.Errorf("event %s not consumed yet", r.Env().ID)
			}
			return nil
		})
	}
}

// decisions reads every committed decision, ordered by topic, key and
// offset.
func (e *e2e) decisions(t *testing.T) []decisionLine {
	// Up to the topics' ends: a poll that returns nothing within a
	// timeout says nothing on a loaded machine (a first fetch can take
	// longer), so the read is bounded by the end offsets instead.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	recs, err := processors.ReadCommitted(ctx, e.env.Brokers(), e.spec.Outputs)
	if err != nil {
		t.Fatal(err)
	}
	type rec struct {
		line   decisionLine
		offset int64
	}
	var all []rec
	for _, r := range recs {
		v, err := e.codec.Decode(r.Value)
		if err != nil {
			t.Fatalf("decision at %s/%d@%d does not decode: %v", r.Topic, r.Partition, r.Offset, err)
		}
		alias := strings.TrimPrefix(r.Topic, e.cat.Prefix())
		all = append(all, rec{summarize(alias, r.Key, v), r.Offset})
	}
	slices.SortStableFunc(all, func(a, b rec) int {
		if c := strings.Compare(a.line.Topic, b.line.Topic); c != 0 {
			return c
		}
		if c := strings.Compare(a.line.Key, b.line.Key); c != 0 {
			return c
		}
		return int(a.offset - b.offset)
	})
	out := make([]decisionLine, len(all))
	for i, r := range all {
		out[i] = r.line
	}
	return out
}

func TestEndToEndSampleDecisionsAndReplay(t *testing.T) {
	e := newE2E(t)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- e.runner.Run(ctx) }()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			if err := <-errc; err != nil {
				t.Errorf("runner: %v", err)
			}
		}
	}
	defer stop()

	events := sample.Events(time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC))
	e.feed(t, events)
	got := e.decisions(t)

	golden := filepath.Join("testdata", "e2e-sample.golden.json")
	b, _ := json.MarshalIndent(got, "", "  ")
	if *update {
		if err := os.WriteFile(golden, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(want)) != strings.TrimSpace(string(b)) {
		t.Fatalf("decisions differ from %s (run with -update after checking them):\n%s", golden, b)
	}

	// Sending the whole sample again changes nothing: every event is a
	// duplicate of one the state already holds.
	e.feed(t, events)
	if again := e.decisions(t); len(again) != len(got) {
		t.Fatalf("re-sent sample: %d decisions, want still %d", len(again), len(got))
	}

	// The query API answers from the materialized state.
	srv := httptest.NewServer(muxFor(e))
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/api/v1.0/decision", "application/json", strings.NewReader(
		`{"decision_context":"bodhi_update_push_stable","product_version":"fedora-42","subject_type":"koji_build","subject_identifier":"xz-5.6.3-2.fc42","verbose":true}`))
	if err != nil {
		t.Fatal(err)
	}
	var gw map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&gw)
	resp.Body.Close()
	if resp.StatusCode != 200 || gw["policies_satisfied"] != true || gw["summary"] != "All required tests (2 total) have passed or been waived" {
		t.Fatalf("decision API: %d %v", resp.StatusCode, gw)
	}
	resp, err = http.Get(srv.URL + "/api/v1/why/xz-5.6.3-2.fc42?format=text")
	if err != nil {
		t.Fatal(err)
	}
	var why strings.Builder
	_, _ = fmt.Fprint(&why, readAll(t, resp))
	if resp.StatusCode != 200 || !strings.Contains(why.String(), "waived") {
		t.Fatalf("why: %d %s", resp.StatusCode, why.String())
	}
	stop()

	// Re-deriving from the log reproduces the decision history exactly.
	rctx, rcancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer rcancel()
	red, err := processors.Rederive(rctx, e.spec, e.cfg, t.TempDir(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(red.Outputs) != len(got) || red.DeadLetters != 0 {
		t.Fatalf("rederived %d decisions (%d dead letters), live run emitted %d", len(red.Outputs), red.DeadLetters, len(got))
	}
	diff, err := processors.Diff(rctx, e.cfg, red.Outputs, e.spec.Outputs)
	if err != nil {
		t.Fatal(err)
	}
	if len(diff) != 0 {
		t.Fatalf("replay differs from the live history: %+v", diff)
	}
}

type mux struct{ *http.ServeMux }

func (m mux) Handle(p string, h http.Handler) { m.ServeMux.Handle(p, h) }

func muxFor(e *e2e) http.Handler {
	m := mux{http.NewServeMux()}
	ps, _ := gating.LoadPolicies(map[string][]byte{"sample.yaml": []byte(sample.Policy)})
	eng, _ := gating.NewEngine(ps, sample.SigningRules)
	gating.NewAPI(eng, e.runner).Register(m)
	return m
}

func readAll(t *testing.T, resp *http.Response) string {
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			return b.String()
		}
	}
}

// After a policy change, the processor re-evaluates the subjects it holds
// and emits the decisions that changed, without waiting for new events;
// a restart with the same policies emits nothing more.
func TestPolicyChangeReevaluatesStoredSubjects(t *testing.T) {
	e := newE2E(t)
	run := func(r *processors.Runner) (stop func()) {
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() { errc <- r.Run(ctx) }()
		return func() {
			cancel()
			if err := <-errc; err != nil {
				t.Errorf("runner: %v", err)
			}
		}
	}
	stop := run(e.runner)
	e.feed(t, sample.Events(time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)))
	stop()
	before := len(withoutViews(e.decisions(t)))

	stricter := sample.Policy + "  - !PassingTestCaseRule {test_case_name: fedora-ci.koji-build.installability.functional}\n"
	ps, err := gating.LoadPolicies(map[string][]byte{"sample.yaml": []byte(stricter)})
	if err != nil {
		t.Fatal(err)
	}
	eng, err := gating.NewEngine(ps, sample.SigningRules)
	if err != nil {
		t.Fatal(err)
	}
	spec := gating.Spec(e.cat, eng)
	newRunner := func() *processors.Runner {
		r, err := processors.NewRunner(spec, e.cfg)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	stop = run(newRunner())
	var after []decisionLine
	kafkatest.WaitFor(t, 60*time.Second, func() error {
		after = withoutViews(e.decisions(t))
		// Every build is re-evaluated: the three that passed flip, and
		// curl, blocked already, misses one more result.
		if len(after) != before+4 {
			return fmt.Errorf("%d decisions, want %d + 4 re-evaluations", len(after), before)
		}
		return nil
	})
	stop()
	flipped := 0
	for _, d := range after {
		if d.Type == "gating_decision" && strings.HasSuffix(d.What, "satisfied=false: Of 3 required tests, 1 result missing") {
			flipped++
		}
	}
	if flipped != 3 {
		t.Fatalf("%d subjects flipped to unsatisfied under the stricter policy, want 3:\n%+v", flipped, after)
	}

	// Same engine again: nothing to re-evaluate.
	stop = run(newRunner())
	time.Sleep(3 * time.Second) // two punctuation intervals; asserting an absence
	stop()
	if again := withoutViews(e.decisions(t)); len(again) != len(after) {
		t.Fatalf("restart with the same policies emitted %d more decisions", len(again)-len(after))
	}
}

// testWriter sends the runner's logs to the test log (shown for failed
// tests and with -v).
type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}
