package overview

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/factory2/factory2/avro"
	"github.com/factory2/factory2/internal/httpapi"
	"github.com/factory2/factory2/processors/compose"
	"github.com/factory2/factory2/processors/deps"
	"github.com/factory2/factory2/topics"
)

// fakeComposes is a compose table with fixed answers.
type fakeComposes struct {
	list   []compose.Overview
	status map[string]*compose.Status
	err    error // answered by both, when set
}

func (f *fakeComposes) List() ([]compose.Overview, error) { return f.list, f.err }

func (f *fakeComposes) Status(id string, _ bool) (*compose.Status, error) {
	if f.err != nil {
		return nil, f.err
	}
	if s, ok := f.status[id]; ok {
		return s, nil
	}
	return nil, fmt.Errorf("%w %q", compose.ErrUnknownCompose, id)
}

// harness is an Overview fed by hand (apply), served by an httptest
// server.
type harness struct {
	o     *Overview
	codec *avro.Codec
	srv   *httptest.Server
	graph *deps.Graph
	cmp   *fakeComposes
}

func newHarness(t *testing.T, tweak func(*Config)) *harness {
	t.Helper()
	cat, err := topics.New(topics.Config{Prefix: "t."})
	if err != nil {
		t.Fatal(err)
	}
	codec, err := avro.NewCodec()
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{codec: codec, graph: deps.NewGraph(), cmp: &fakeComposes{status: map[string]*compose.Status{}}}
	cfg := Config{Brokers: []string{"127.0.0.1:1"}, Catalog: cat, Codec: codec, Composes: h.cmp, Graph: deps.LoadedTable(h.graph)}
	if tweak != nil {
		tweak(&cfg)
	}
	h.o, err = New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	h.o.Register(mux)
	h.srv = httptest.NewServer(mux)
	t.Cleanup(func() {
		h.o.hub.close() // ends the streams, as Run does when it stops
		h.srv.Close()
	})
	return h
}

// feed applies records as if read from Kafka at recorded.
func (h *harness) feed(t *testing.T, recorded time.Time, recs ...avro.Record) {
	t.Helper()
	for _, r := range recs {
		b, err := h.codec.Encode(r)
		if err != nil {
			t.Fatal(err)
		}
		h.o.apply(&kgo.Record{Topic: "t", Value: b, Timestamp: recorded})
	}
}

func (h *harness) get(t *testing.T, path string) (int, http.Header, string) {
	t.Helper()
	resp, err := http.Get(h.srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

var t0 = time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)

func env(id string, at time.Time) avro.Envelope {
	return avro.Envelope{ID: id, Source: "test", EventTime: at, IngestTime: at}
}

func gating(nvr string, at time.Time, passed bool, unsat ...avro.Requirement) *avro.GatingDecision {
	d := &avro.GatingDecision{SubjectType: "koji_build", SubjectID: nvr, DecisionContext: "ctx", ProductVersion: "fedora-42",
		PoliciesSatisfied: passed, Summary: fmt.Sprintf("summary of %s", nvr)}
	d.Envelope = env("g-"+nvr+at.Format("150405"), at)
	d.Unsatisfied = unsat
	return d
}

// describe words gating decisions as watch does: waiting when only
// results are missing.
func describe(r avro.Record) Line {
	l := plainLine(r)
	if d, ok := r.(*avro.GatingDecision); ok && !d.PoliciesSatisfied {
		l.Verdict = "waiting"
		for _, q := range d.Unsatisfied {
			if q.Type != "test-result-missing" {
				l.Verdict = "blocked"
			}
		}
	}
	return l
}

func TestIndexShowsDecisionsNewestFirstAndComposes(t *testing.T) {
	h := newHarness(t, nil)
	ready := false
	h.cmp.list = []compose.Overview{{ComposeID: "fedora-42-updates", Ready: &ready, Members: 3,
		BlockerCounts: []avro.BlockerCount{{Type: "build-unsigned", Count: 2}}}}
	h.feed(t, t0.Add(time.Minute),
		gating("curl-8.11.1-3.fc42", t0, false, avro.Requirement{Type: "test-result-failed", Testcase: "tier0"}),
		&avro.AutosignDecision{Decision: avro.Decision{Envelope: env("a1", t0)}, Action: "sign", NVR: "bash-5.2.37-1.fc42", Key: "k"},
	)
	code, hdr, body := h.get(t, "/")
	if code != http.StatusOK || !strings.HasPrefix(hdr.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /: %d %s", code, hdr.Get("Content-Type"))
	}
	for _, want := range []string{
		`href="/builds/curl-8.11.1-3.fc42"`, `class="verdict bad">blocked<`,
		`href="/builds/bash-5.2.37-1.fc42"`, `class="verdict good">sign<`,
		`data-after="2"`, `href="/composes/fedora-42-updates"`, "build-unsigned × 2",
		`<script src="/static/app.js" defer>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s:\n%s", want, body)
		}
	}
	if strings.Index(body, "bash-5.2.37") > strings.Index(body, "curl-8.11.1") {
		t.Errorf("the newest decision (bash) is not first")
	}
	if strings.Contains(body, `id="no-decisions"`) {
		t.Errorf("page says there are no decisions")
	}
	if csp := hdr.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
		t.Errorf("Content-Security-Policy %q", csp)
	}

	// The same decisions as JSON, newest first.
	_, _, js := h.get(t, "/api/v1/decisions")
	var got struct{ Decisions []Decision }
	if err := json.Unmarshal([]byte(js), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Decisions) != 2 || got.Decisions[0].Seq != 2 || got.Decisions[0].Subject != "bash-5.2.37-1.fc42" ||
		got.Decisions[1].Verdict != "blocked" || !got.Decisions[1].Time.Equal(t0.Add(time.Minute)) || !got.Decisions[1].EventTime.Equal(t0) {
		t.Errorf("decisions: %+v", got.Decisions)
	}
}

// The sections the page's script refreshes render alone.
func TestParts(t *testing.T) {
	h := newHarness(t, nil)
	h.cmp.list = []compose.Overview{{ComposeID: "fedora-42-updates"}}
	h.feed(t, t0, &avro.BuildEvent{Envelope: env("b1", t0), Kind: avro.BuildStateChange, NVR: "bash-1-1", State: avro.StateComplete})
	for name, want := range map[string]string{"composes": `href="/composes/fedora-42-updates"`, "builds": `href="/builds/bash-1-1"`} {
		code, _, body := h.get(t, "/parts/"+name)
		if code != http.StatusOK || !strings.HasPrefix(body, `<section id="`+name+`">`) || !strings.Contains(body, want) || strings.Contains(body, "<html") {
			t.Errorf("/parts/%s: %d\n%s", name, code, body)
		}
	}
	if code, _, _ := h.get(t, "/parts/head"); code != http.StatusNotFound {
		t.Errorf("/parts/head: %d, want 404 (only the sections render alone)", code)
	}
}

func TestIndexWhileComposesLoadAndWithNothing(t *testing.T) {
	h := newHarness(t, nil)
	h.cmp.err = &compose.LoadingError{Read: 1, Total: 5}
	code, _, body := h.get(t, "/")
	if code != http.StatusOK || !strings.Contains(body, "loading compose table: 1 of 5 records") || !strings.Contains(body, `id="no-decisions"`) {
		t.Errorf("%d:\n%s", code, body)
	}
}

func TestEscapesWhatItShows(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Describe = describe })
	h.feed(t, t0, gating(`<script>alert(1)</script>`, t0, true))
	_, _, body := h.get(t, "/")
	if strings.Contains(body, "<script>alert") {
		t.Errorf("subject not escaped:\n%s", body)
	}
}

// The passing build's way: each stage with its time and the event time
// since the stage before.
func TestBuildJourney(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Describe = describe })
	const nvr = "bash-5.2.37-1.fc42"
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	build := func(id string, s int, kind, state, tag string) *avro.BuildEvent {
		return &avro.BuildEvent{Envelope: env(id, at(s)), Kind: kind, NVR: nvr, State: state, Tag: tag}
	}
	// Out of order across topics, as a reader of several topics sees
	// them.
	h.feed(t, at(100),
		build("b1", 0, avro.BuildStateChange, avro.StateBuilding, ""),
		build("b2", 10, avro.BuildStateChange, avro.StateComplete, ""),
		&avro.TestResult{Envelope: env("t1", at(55)), SubjectType: "koji_build", SubjectID: nvr, Testcase: "tier0", Outcome: avro.OutcomeQueued},
		build("b3", 20, avro.BuildTag, avro.StateComplete, "f42-updates-candidate"),
		&avro.SignedStatus{Decision: avro.Decision{Envelope: env("s1", at(50))}, NVR: nvr, KeyID: "105ef944", Signed: true},
		gating(nvr, at(56), false, avro.Requirement{Type: "test-result-missing"}),
		&avro.TestResult{Envelope: env("t2", at(70)), SubjectType: "koji_build", SubjectID: nvr, Testcase: "tier0", Outcome: avro.OutcomeFailed},
		gating(nvr, at(70), false, avro.Requirement{Type: "test-result-failed"}),
		&avro.Waiver{Envelope: env("w1", at(80)), SubjectType: "koji_build", SubjectID: nvr, Testcase: "tier0", Waived: true},
		gating(nvr, at(81), true),
		// A compose's test is no build's step.
		&avro.TestResult{Envelope: env("t3", at(90)), SubjectType: "compose", SubjectID: "Fedora-42-x", Testcase: "c", Outcome: avro.OutcomePassed},
	)
	code, _, js := h.get(t, "/api/v1/builds/"+nvr)
	if code != http.StatusOK {
		t.Fatalf("%d %s", code, js)
	}
	var j Journey
	if err := json.Unmarshal([]byte(js), &j); err != nil {
		t.Fatal(err)
	}
	want := []struct {
		stage   string
		at      int
		latency time.Duration
	}{
		{StageBuilt, 10, 10 * time.Second},   // from the first step, BUILDING
		{StageTagged, 20, 10 * time.Second},  // from built
		{StageSigned, 50, 30 * time.Second},  // fully signed
		{StageTested, 70, 20 * time.Second},  // the first final outcome, not QUEUED
		{StageDecided, 81, 11 * time.Second}, // the latest verdict: passed after the waiver
	}
	if len(j.Stages) != len(want) {
		t.Fatalf("stages: %+v", j.Stages)
	}
	for i, w := range want {
		s := j.Stages[i]
		if s.Stage != w.stage || !s.Reached || !s.Time.Equal(at(w.at)) || s.Latency != w.latency {
			t.Errorf("stage %d: %+v, want %s reached at +%ds after %s", i, s, w.stage, w.at, w.latency)
		}
	}
	if len(j.Steps) != 10 {
		t.Fatalf("%d steps, want 10: %+v", len(j.Steps), j.Steps)
	}
	for i := 1; i < len(j.Steps); i++ {
		if j.Steps[i].Time.Before(j.Steps[i-1].Time) || j.Steps[i].SincePrevious != j.Steps[i].Time.Sub(j.Steps[i-1].Time) {
			t.Errorf("step %d out of order or wrong delta: %+v after %+v", i, j.Steps[i], j.Steps[i-1])
		}
	}
	if !j.Steps[0].Recorded.Equal(at(100)) {
		t.Errorf("recorded %v", j.Steps[0].Recorded)
	}

	code, _, body := h.get(t, "/builds/"+nvr)
	for _, want := range []string{`data-stage="built"`, `class="stage reached"`, "&#43;30s", "f42-updates-candidate", "/trace?node=build:" + nvr + "&amp;direction=down"} {
		if !strings.Contains(body, want) {
			t.Errorf("journey page (%d) lacks %q:\n%s", code, want, body)
		}
	}

	// A build seen only as tested: the stages before are not reached.
	h.feed(t, at(200), &avro.TestResult{Envelope: env("t9", at(5)), SubjectType: "koji_build", SubjectID: "xz-1-1", Testcase: "x", Outcome: avro.OutcomePassed})
	_, _, body = h.get(t, "/builds/xz-1-1")
	if strings.Count(body, `class="stage pending"`) != 4 || !strings.Contains(body, "not yet") {
		t.Errorf("partial journey:\n%s", body)
	}

	for _, path := range []string{"/builds/nope-1-1", "/api/v1/builds/nope-1-1"} {
		if code, _, body := h.get(t, path); code != http.StatusNotFound || !strings.Contains(body, `no event or decision about`) {
			t.Errorf("%s: %d %s", path, code, body)
		}
	}
}

func TestJourneysAreBounded(t *testing.T) {
	j := newJourneys(3)
	for i := range 5 {
		j.add(fmt.Sprintf("p-%d-1", i), Step{Stage: StageBuilt, Time: t0.Add(time.Duration(i) * time.Second)})
	}
	if _, ok := j.get("p-0-1"); ok {
		t.Errorf("the least recently changed journey was kept")
	}
	if got := j.latest(10); strings.Join(got, ",") != "p-4-1,p-3-1,p-2-1" {
		t.Errorf("latest: %v", got)
	}
	// Changing a journey makes it the most recent.
	j.add("p-2-1", Step{Stage: StageTagged, Time: t0})
	j.add("p-5-1", Step{Stage: StageBuilt, Time: t0})
	if _, ok := j.get("p-2-1"); !ok {
		t.Errorf("a journey just changed was let go")
	}
	if _, ok := j.get("p-3-1"); ok {
		t.Errorf("p-3-1 kept over more recent ones")
	}

	// Steps: at most MaxSteps, the latest; the stage reached first is
	// still told.
	j.add("big-1-1", Step{Stage: StageBuilt, Time: t0, Kind: "build", Verdict: "COMPLETE", reached: true})
	for i := range MaxSteps + 5 {
		j.add("big-1-1", Step{Stage: StageTested, Time: t0.Add(time.Duration(i+1) * time.Second)})
	}
	jr, _ := j.get("big-1-1")
	if len(jr.Steps) != MaxSteps || jr.Dropped != 6 || !jr.Stages[0].Reached || !jr.Stages[0].Time.Equal(t0) {
		t.Errorf("%d steps, %d dropped, built %+v", len(jr.Steps), jr.Dropped, jr.Stages[0])
	}
}

func TestComposePage(t *testing.T) {
	h := newHarness(t, nil)
	ready := false
	h.cmp.status["fedora-42-updates"] = &compose.Status{
		Overview: compose.Overview{ComposeID: "fedora-42-updates", Ready: &ready, Members: 3, Summary: "1 of 3 builds blocked",
			BlockerCounts: []avro.BlockerCount{{Type: "build-unsigned", Count: 1}}},
		Blockers: []avro.Requirement{{Type: "build-unsigned", SubjectType: "koji_build", SubjectID: "xz-5.6.3-2.fc42", Detail: "2 of 3 artifacts unsigned"}},
	}
	code, _, body := h.get(t, "/composes/fedora-42-updates")
	for _, want := range []string{`class="verdict bad">blocked<`, "1 of 3 builds blocked", `href="/builds/xz-5.6.3-2.fc42"`, "2 of 3 artifacts unsigned", "build-unsigned × 1"} {
		if code != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("compose page (%d) lacks %q:\n%s", code, want, body)
		}
	}
	if code, _, body := h.get(t, "/composes/nope"); code != http.StatusNotFound || !strings.Contains(body, "unknown compose") {
		t.Errorf("unknown compose: %d\n%s", code, body)
	}
	h.cmp.err = &compose.LoadingError{}
	if code, hdr, _ := h.get(t, "/composes/fedora-42-updates"); code != http.StatusServiceUnavailable || hdr.Get("Retry-After") == "" {
		t.Errorf("loading: %d %v", code, hdr)
	}
}

func TestTraceGraph(t *testing.T) {
	h := newHarness(t, nil)
	h.graph.Add(deps.Edge{From: "rpm:bash-5.2.32-1.fc42.x86_64.rpm", Relation: avro.RelProducedBy, To: "build:bash-5.2.32-1.fc42"})
	h.graph.Add(deps.Edge{From: "container:toolbox-42-1", Relation: avro.RelIncludes, To: "rpm:bash-5.2.32-1.fc42.x86_64.rpm"})
	code, _, body := h.get(t, "/trace?node=container:toolbox-42-1&direction=up")
	if code != http.StatusOK {
		t.Fatalf("%d\n%s", code, body)
	}
	if n := strings.Count(body, `<g class="node `); n != 3 {
		t.Errorf("%d nodes drawn, want 3:\n%s", n, body)
	}
	if n := strings.Count(body, `marker-end="url(#arrow)"`); n != 2 {
		t.Errorf("%d edges drawn, want 2:\n%s", n, body)
	}
	for _, want := range []string{`data-key="build:bash-5.2.32-1.fc42"`, ">includes<", ">produced-by<", " start\" data-key=\"container:toolbox-42-1\"", "3 nodes from container:toolbox-42-1, up, at most 3 edges away"} {
		if !strings.Contains(body, want) {
			t.Errorf("trace page lacks %q:\n%s", want, body)
		}
	}
	// The columns are the depths: the build is two columns right.
	g := layout(&deps.Trace{Direction: deps.Up, Nodes: []deps.TraceNode{{Key: "a:1", Depth: 0}, {Key: "b:1", Depth: 1, Parent: "a:1"}, {Key: "b:2", Depth: 1, Parent: "a:1"}}})
	if g.Nodes[1].X <= g.Nodes[0].X || g.Nodes[1].X != g.Nodes[2].X || g.Nodes[2].Y <= g.Nodes[1].Y || len(g.Edges) != 2 {
		t.Errorf("layout: %+v", g)
	}

	for _, c := range []struct {
		path string
		code int
		want string
	}{
		{"/trace", http.StatusOK, `name="node"`},
		{"/trace?node=build:nope", http.StatusNotFound, "no node"},
		{"/trace?node=nocolon", http.StatusBadRequest, "want a node key"},
		{"/trace?node=container:toolbox-42-1&depth=-1", http.StatusBadRequest, "depth"},
	} {
		if code, _, body := h.get(t, c.path); code != c.code || !strings.Contains(body, c.want) {
			t.Errorf("%s: %d, want %d with %q:\n%s", c.path, code, c.code, c.want, body)
		}
	}
}

func TestFindSendsToThePage(t *testing.T) {
	h := newHarness(t, nil)
	h.cmp.status["fedora-42-updates"] = &compose.Status{}
	cl := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for q, want := range map[string]string{
		"build:bash-1-1":    "/trace?node=build%3Abash-1-1",
		"fedora-42-updates": "/composes/fedora-42-updates",
		"bash-1-1":          "/builds/bash-1-1",
		"":                  "/",
	} {
		resp, err := cl.Get(h.srv.URL + "/find?q=" + q)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != want {
			t.Errorf("find %q: %d %s, want %s", q, resp.StatusCode, resp.Header.Get("Location"), want)
		}
	}
}

func TestStaticAssetsAreEmbedded(t *testing.T) {
	h := newHarness(t, nil)
	for path, want := range map[string]string{"/static/app.js": "EventSource", "/static/style.css": "--good"} {
		code, hdr, body := h.get(t, path)
		if code != http.StatusOK || !strings.Contains(body, want) || hdr.Get("Cache-Control") == "" {
			t.Errorf("%s: %d %v", path, code, hdr)
		}
	}
	if code, _, _ := h.get(t, "/static/nope.js"); code != http.StatusNotFound {
		t.Errorf("unknown asset: %d", code)
	}
	if code, _, _ := h.get(t, "/nope"); code != http.StatusNotFound {
		t.Errorf("unknown page: %d (the overview must not answer every path)", code)
	}
}

// Every route is a GET: the server's read policy covers them all.
func TestRoutesAreGETs(t *testing.T) {
	h := newHarness(t, nil)
	var r routes
	h.o.Register(&r)
	if len(r) < 8 {
		t.Fatalf("routes: %v", r)
	}
	for _, p := range r {
		if !strings.HasPrefix(p, "GET /") {
			t.Errorf("route %q is not a GET", p)
		}
	}
}

type routes []string

func (r *routes) Handle(p string, _ http.Handler) { *r = append(*r, p) }

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := newHarness(t, func(c *Config) { c.Registerer = reg })
	h.feed(t, t0, gating("a-1-1", t0, true), gating("b-1-1", t0, true))
	h.o.apply(&kgo.Record{Topic: "t", Value: []byte("not avro")})
	_, r := openStream(t, h, "", "")
	r.next()
	want := map[string]float64{
		"factory2_overview_records_skipped_total": 1, "factory2_overview_streams": 1,
		"factory2_overview_streams_dropped_total": 0, "factory2_overview_journeys": 2,
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		m := mf.GetMetric()[0]
		v := m.GetGauge().GetValue() + m.GetCounter().GetValue()
		if w, ok := want[mf.GetName()]; !ok || v != w {
			t.Errorf("%s = %v, want %v (known: %v)", mf.GetName(), v, w, ok)
		}
		delete(want, mf.GetName())
	}
	if len(want) > 0 {
		t.Errorf("missing metrics: %v", want)
	}
}

func TestNewReportsEveryMissingPart(t *testing.T) {
	_, err := New(Config{})
	for _, want := range []string{"no brokers", "no topic catalog", "no codec", "no compose table", "no dependency graph"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("New(Config{}): %v, want %q", err, want)
		}
	}
}

// sseReader reads server-sent events.
type sseReader struct {
	t  *testing.T
	sc *bufio.Scanner
}

// next returns the next event's fields (a comment as field ":").
func (r *sseReader) next() map[string]string {
	r.t.Helper()
	ev := map[string]string{}
	for r.sc.Scan() {
		line := r.sc.Text()
		if line == "" {
			if len(ev) > 0 {
				return ev
			}
			continue
		}
		k, v, _ := strings.Cut(line, ":")
		if k == "" {
			k = ":"
		}
		ev[k] = strings.TrimPrefix(v, " ")
	}
	r.t.Fatalf("stream ended: %v", r.sc.Err())
	return nil
}

func openStream(t *testing.T, h *harness, query, lastID string) (*http.Response, *sseReader) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, h.srv.URL+"/api/v1/stream"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp, &sseReader{t: t, sc: bufio.NewScanner(resp.Body)}
}

func decisionOf(t *testing.T, ev map[string]string) Decision {
	t.Helper()
	if ev["event"] != "decision" {
		t.Fatalf("event %v, want a decision", ev)
	}
	var d Decision
	if err := json.Unmarshal([]byte(ev["data"]), &d); err != nil {
		t.Fatalf("data %q: %v", ev["data"], err)
	}
	if ev["id"] != fmt.Sprint(d.Seq) {
		t.Fatalf("id %q for seq %d", ev["id"], d.Seq)
	}
	return d
}

func TestStreamSendsTheBacklogThenLiveDecisions(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Describe = describe; c.Heartbeat = 50 * time.Millisecond })
	h.feed(t, t0, gating("a-1-1", t0, true), gating("b-1-1", t0, true))
	resp, r := openStream(t, h, "?after=1", "")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("%d %v", resp.StatusCode, resp.Header)
	}
	if ev := r.next(); ev["retry"] != "2000" {
		t.Fatalf("first event %v, want the retry interval", ev)
	}
	if d := decisionOf(t, r.next()); d.Seq != 2 || d.Subject != "b-1-1" || d.Verdict != "passed" || d.Link != "/builds/b-1-1" {
		t.Errorf("backlog: %+v", d)
	}
	h.feed(t, t0, gating("c-1-1", t0, false, avro.Requirement{Type: "test-result-failed"}))
	if d := decisionOf(t, r.next()); d.Seq != 3 || d.Subject != "c-1-1" || d.Class != "bad" {
		t.Errorf("live: %+v", d)
	}
	// Idle: heartbeats.
	if ev := r.next(); ev[":"] != "ping" {
		t.Errorf("idle stream sent %v, want a heartbeat comment", ev)
	}

	// A reconnecting EventSource resumes after Last-Event-ID.
	_, r2 := openStream(t, h, "", "2")
	r2.next() // retry
	if d := decisionOf(t, r2.next()); d.Seq != 3 {
		t.Errorf("resumed at %+v, want seq 3", d)
	}
	if resp, _ := openStream(t, h, "?after=x", ""); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("after=x: %d", resp.StatusCode)
	}
}

func TestStreamsAreBounded(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxStreams = 1 })
	resp, r := openStream(t, h, "", "")
	r.next()
	if resp2, _ := openStream(t, h, "", ""); resp2.StatusCode != http.StatusServiceUnavailable || resp2.Header.Get("Retry-After") == "" {
		t.Errorf("a stream beyond MaxStreams: %d", resp2.StatusCode)
	}
	resp.Body.Close()
	// The slot comes back when the browser goes.
	deadline := time.Now().Add(10 * time.Second)
	for h.o.hub.streamCount() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("a closed stream still counts")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if resp3, _ := openStream(t, h, "", ""); resp3.StatusCode != http.StatusOK {
		t.Errorf("a stream after one went: %d", resp3.StatusCode)
	}
}

// A stream that does not keep up is dropped, never waited for: the
// others and the reader go on.
func TestSlowStreamIsDroppedNotWaitedFor(t *testing.T) {
	hb := newHub(10, 5, 2)
	slow, _, err := hb.subscribe(0)
	if err != nil {
		t.Fatal(err)
	}
	fast, _, _ := hb.subscribe(0)
	got := 0
	for i := range 5 {
		hb.publish(Decision{Subject: fmt.Sprint(i)}) // must not block
		<-fast.ch
		got++
	}
	select {
	case <-slow.gone:
	default:
		t.Fatal("a stream 3 decisions behind with a buffer of 2 was kept")
	}
	select {
	case <-fast.gone:
		t.Fatal("the stream that kept up was dropped")
	default:
	}
	if hb.streamCount() != 1 || got != 5 || hb.droppedCount() != 1 {
		t.Errorf("%d streams, %d read", hb.streamCount(), got)
	}
	// The ring keeps the latest 10, newest first.
	for i := 5; i < 15; i++ {
		hb.publish(Decision{Subject: fmt.Sprint(i)})
	}
	rec := hb.recent()
	if len(rec) != 10 || rec[0].Seq != 15 || rec[9].Seq != 6 {
		t.Errorf("ring: %d, first %d, last %d", len(rec), rec[0].Seq, rec[len(rec)-1].Seq)
	}
	// Stopping ends every stream and refuses new ones.
	hb.close()
	<-fast.gone
	if _, _, err := hb.subscribe(0); !errors.Is(err, errClosed) {
		t.Errorf("subscribe after close: %v", err)
	}
}

func TestDurationForPeople(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0s", 1500 * time.Microsecond: "2ms", 3210 * time.Millisecond: "3.2s",
		250 * time.Second: "4m10s", 2*time.Hour + 5*time.Minute: "2h5m", -3 * time.Second: "-3s",
	} {
		if got := duration(d); got != want {
			t.Errorf("duration(%s) = %q, want %q", d, got, want)
		}
	}
}

// A stream outlives the server's read and write timeouts: on httpapi's
// server with timeouts of 300ms, a decision made a second after the
// stream opened still arrives on it.
func TestStreamOutlivesServerTimeouts(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Heartbeat = time.Hour })
	srv, err := httpapi.Listen("127.0.0.1:0", prometheus.NewRegistry(), slog.New(slog.DiscardHandler),
		httpapi.Options{ReadTimeout: 300 * time.Millisecond, WriteTimeout: 300 * time.Millisecond, MaxInflightRequests: 4})
	if err != nil {
		t.Fatal(err)
	}
	h.o.Register(srv)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	h.srv.URL = srv.URL()
	_, r := openStream(t, h, "", "")
	r.next()                // retry
	time.Sleep(time.Second) // past both timeouts; nothing to wait on but the clock
	h.feed(t, t0, gating("late-1-1", t0, true))
	if d := decisionOf(t, r.next()); d.Subject != "late-1-1" {
		t.Errorf("got %+v", d)
	}
}
