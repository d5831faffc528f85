package koji

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/factory2/factory2/avro"
)

// fakeHub serves recorded answers (testdata files) by method, and
// records the calls it gets.
type fakeHub struct {
	*httptest.Server
	mu    sync.Mutex
	calls []string // "method(param)"
	// answer gives the answer to a call: a testdata file or an answer
	// itself (starting with "<?xml"), or an HTTP status other than 200
	// with file "".
	answer func(method, param string) (status int, file string)
}

func newFakeHub(t *testing.T, answer func(method, param string) (int, string)) *fakeHub {
	t.Helper()
	h := &fakeHub{answer: answer}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var call struct {
			Method string `xml:"methodName"`
			Params []struct {
				Value string `xml:",innerxml"`
			} `xml:"params>param>value"`
		}
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "text/xml" {
			http.Error(w, "want POST text/xml", http.StatusBadRequest)
			return
		}
		if err := xml.NewDecoder(r.Body).Decode(&call); err != nil || len(call.Params) == 0 {
			http.Error(w, "bad call", http.StatusBadRequest)
			return
		}
		var ps []string
		for _, p := range call.Params {
			ps = append(ps, p.Value)
		}
		param := strings.Join(ps, ",")
		h.mu.Lock()
		h.calls = append(h.calls, call.Method+"("+param+")")
		h.mu.Unlock()
		status, file := h.answer(call.Method, param)
		if file == "" {
			w.WriteHeader(status)
			io.WriteString(w, "hub trouble")
			return
		}
		b := []byte(file) // an answer itself
		if !strings.HasPrefix(file, "<?xml") {
			var err error
			if b, err = os.ReadFile("testdata/" + file); err != nil {
				t.Error(err)
			}
		}
		w.Header().Set("Content-Type", "text/xml")
		w.Write(b)
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *fakeHub) called() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.calls)
}

// recorded answers the recorded getBuild and listRPMs of xz, and a
// listRPMs of a buildroot (componentBuildrootID, the fourth parameter)
// with two RPMs. (The recorded RPMs name nine buildroots, one each.)
func recorded(method, param string) (int, string) {
	if method == "listRPMs" && strings.HasPrefix(param, "<nil/>,<nil/>,<nil/>,") {
		return http.StatusOK, "listRPMs-buildroot.xml"
	}
	return http.StatusOK, method + ".xml"
}

func TestClientCalls(t *testing.T) {
	hub := newFakeHub(t, recorded)
	c, err := NewClient(hub.URL+"/kojihub", 5*time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	b, err := c.GetBuild(ctx, int64(2601003))
	if err != nil || *b != (Build{ID: 2601003, Name: "xz", Version: "5.6.3", Release: "2.fc42", NVR: "xz-5.6.3-2.fc42",
		State: StateComplete, TaskID: 126700003, OwnerName: "packager"}) {
		t.Fatalf("getBuild: %v %+v", err, b)
	}
	rpms, err := c.ListRPMs(ctx, b.ID)
	if err != nil || len(rpms) != 9 || rpms[0].FileName() != "xz-5.6.3-2.fc42.src.rpm" || rpms[0].ID != 40100001 || rpms[0].BuildID != b.ID {
		t.Fatalf("listRPMs: %v %+v", err, rpms)
	}
	if got := hub.called(); !slices.Equal(got, []string{"getBuild(<int>2601003</int>)", "listRPMs(<int>2601003</int>)"}) {
		t.Errorf("calls %v", got)
	}
	in, err := c.ListBuildrootRPMs(ctx, rpms[0].BuildrootID)
	if err != nil || len(in) != 2 || in[0].FileName() != "glibc-devel-2.41-1.fc42.x86_64.rpm" || rpms[0].BuildrootID != 57000000 {
		t.Fatalf("listRPMs of a buildroot: %v %+v", err, in)
	}
	if got := hub.called(); got[2] != "listRPMs(<nil/>,<nil/>,<nil/>,<int>57000000</int>)" {
		t.Errorf("buildroot call %v", got)
	}
	if _, err := NewClient("koji.example.org/kojihub", time.Second, nil); err == nil {
		t.Error("a hub URL without a scheme was taken")
	}
}

func TestClientErrors(t *testing.T) {
	for _, tc := range []struct {
		name      string
		answer    func(method, param string) (int, string)
		transient bool
		is        error
	}{
		{"unknown build", func(string, string) (int, string) { return 200, "getBuild-none.xml" }, false, ErrNoBuild},
		{"fault", func(string, string) (int, string) { return 200, "fault-generic.xml" }, false, nil},
		{"offline", func(string, string) (int, string) { return 200, "fault-offline.xml" }, true, nil},
		{"http 503", func(string, string) (int, string) { return 503, "" }, true, nil},
		{"http 404", func(string, string) (int, string) { return 404, "" }, false, nil},
		{"malformed", func(string, string) (int, string) { return 200, "../enrich_test.go" }, false, ErrMalformed},
		{"timeout", func(string, string) (int, string) { time.Sleep(time.Second); return 200, "getBuild.xml" }, true, context.DeadlineExceeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hub := newFakeHub(t, tc.answer)
			c, err := NewClient(hub.URL, 200*time.Millisecond, nil)
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.GetBuild(context.Background(), int64(1))
			if err == nil || Transient(err) != tc.transient || (tc.is != nil && !errors.Is(err, tc.is)) {
				t.Fatalf("err %v (transient %t), want transient %t, is %v", err, Transient(err), tc.transient, tc.is)
			}
		})
	}
	// A hub nobody listens at.
	hub := newFakeHub(t, recorded)
	hub.Close()
	c, _ := NewClient(hub.URL, time.Second, nil)
	if _, err := c.ListRPMs(context.Background(), 1); err == nil || !Transient(err) {
		t.Fatalf("hub down: %v", err)
	}
}

// complete is the build event of a Koji COMPLETE message for xz.
func complete(id string) *avro.BuildEvent {
	return &avro.BuildEvent{
		Envelope: avro.Envelope{ID: id, Source: "koji/primary", EventTime: time.Date(2026, 11, 2, 11, 58, 41, 0, time.UTC),
			Origin: avro.Origin{Topic: "org.fedoraproject.prod.buildsys.build.state.change", MessageID: id}},
		Kind: avro.BuildStateChange, NVR: "xz-5.6.3-2.fc42", Name: "xz", Version: "5.6.3", Release: "2.fc42",
		BuildID: 2601003, Instance: "primary", State: avro.StateComplete, OldState: avro.StateBuilding,
	}
}

func newEnricher(t *testing.T, hub *fakeHub, reg prometheus.Registerer) *Enricher {
	t.Helper()
	c, err := NewClient(hub.URL, 2*time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	e, err := NewEnricher(EnricherConfig{Client: c, Backoff: time.Millisecond, Registerer: reg,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestEnricherWants(t *testing.T) {
	e := newEnricher(t, newFakeHub(t, recorded), nil)
	for _, tc := range []struct {
		name string
		edit func(*avro.BuildEvent)
		want bool
	}{
		{"COMPLETE from the bus", func(*avro.BuildEvent) {}, true},
		{"no instance is primary", func(b *avro.BuildEvent) { b.Instance = "" }, true},
		{"another hub", func(b *avro.BuildEvent) { b.Instance = "s390" }, false},
		{"BUILDING", func(b *avro.BuildEvent) { b.State = avro.StateBuilding }, false},
		{"a tag", func(b *avro.BuildEvent) { b.Kind, b.Tag = avro.BuildTag, "f42" }, false},
		{"artifacts listed", func(b *avro.BuildEvent) { b.Artifacts = []avro.Artifact{{Name: "x.rpm"}} }, false},
		{"not from a bus message", func(b *avro.BuildEvent) { b.Origin = avro.Origin{} }, false},
	} {
		b := complete("m1")
		tc.edit(b)
		if got := e.Wants(b); got != tc.want {
			t.Errorf("%s: Wants %t", tc.name, got)
		}
	}
	if e.Wants(&avro.SignEvent{}) {
		t.Error("wants a sign event")
	}
}

// TestEnrichRecordsTheRPMList: the event derived from a COMPLETE message
// and the hub's recorded answers lists every RPM, sorted, named as sign
// messages name them; its id derives from the message's; asking again
// gives the same event.
func TestEnrichRecordsTheRPMList(t *testing.T) {
	hub := newFakeHub(t, recorded)
	reg := prometheus.NewRegistry()
	e := newEnricher(t, hub, reg)
	out, err := e.EnrichAll(context.Background(), []avro.Record{complete("m1"), &avro.SignEvent{}})
	if err != nil || len(out) != 3 {
		t.Fatalf("%v %d events, want the RPM list and two buildroot edges", err, len(out))
	}
	// What the build was built against: the RPMs of its buildroots, once
	// each, sorted.
	for i, want := range []string{"gcc-15.0.1-0.9.fc42.x86_64.rpm", "glibc-devel-2.41-1.fc42.x86_64.rpm"} {
		d, ok := out[1+i].(*avro.DependencyEdge)
		if !ok || d.FromType != "build" || d.FromID != "xz-5.6.3-2.fc42" || d.Relation != avro.RelBuildroot ||
			d.ToType != "rpm" || d.ToID != want || d.ID != "m1"+BuildrootIDSuffix+want || d.Source != "koji/primary" {
			t.Errorf("edge %d: %+v", i, out[1+i])
		}
	}
	ev := out[0].(*avro.BuildEvent)
	got, err := avro.MarshalJSON(ev)
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "testdata/xz-rpms.golden.json", indent(t, got))
	if ev.ID != "m1"+ArtifactsIDSuffix || len(ev.Artifacts) != 9 || ev.Artifacts[0].Name != "xz-5.6.3-2.fc42.aarch64.rpm" ||
		!slices.IsSortedFunc(ev.Artifacts, func(a, b avro.Artifact) int { return strings.Compare(a.Name, b.Name) }) {
		t.Errorf("event %s", got)
	}
	again, err := e.EnrichAll(context.Background(), []avro.Record{complete("m1")})
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := avro.MarshalJSON(again[0]); string(b) != string(got) {
		t.Errorf("asked again:\n%s\nfirst:\n%s", b, got)
	}
	if n := testutil.ToFloat64(e.metrics.builds.WithLabelValues(OutcomeEnriched)); n != 2 {
		t.Errorf("enriched %v", n)
	}
	if n, err := testutil.GatherAndCount(reg, "factory2_koji_calls_total"); err != nil || n != 2 {
		t.Errorf("call series %d, %v", n, err)
	}
}

// TestEnrichWhenKojiIsDown: every call fails: each is made Attempts
// times, the build fails with an error that names it, the next build of
// the batch is not asked about, and the metrics count it.
func TestEnrichWhenKojiIsDown(t *testing.T) {
	hub := newFakeHub(t, func(string, string) (int, string) { return http.StatusServiceUnavailable, "" })
	e := newEnricher(t, hub, prometheus.NewRegistry())
	second := complete("m2")
	second.NVR, second.BuildID = "bash-5.2.37-1.fc42", 2601001
	out, err := e.EnrichAll(context.Background(), []avro.Record{complete("m1"), second})
	if len(out) != 0 || err == nil {
		t.Fatalf("%d events, %v", len(out), err)
	}
	var be *BuildError
	if !errors.As(err, &be) || be.NVR != "xz-5.6.3-2.fc42" || !be.Tried || !Transient(be) ||
		!strings.Contains(err.Error(), "HTTP 503") || !strings.Contains(err.Error(), "after 3 attempts") ||
		!strings.Contains(err.Error(), "RPM list of bash-5.2.37-1.fc42 (event m2) not asked: the hub was unreachable for xz-5.6.3-2.fc42") {
		t.Fatalf("error: %v", err)
	}
	if calls := hub.called(); len(calls) != DefaultAttempts {
		t.Errorf("calls %v", calls)
	}
	if n := testutil.ToFloat64(e.metrics.builds.WithLabelValues(OutcomeFailed)); n != 2 {
		t.Errorf("failed %v", n)
	}
	if n := testutil.ToFloat64(e.metrics.retries); n != DefaultAttempts-1 {
		t.Errorf("retries %v", n)
	}
}

// TestEnrichOutcomes: answers that record nothing, or that are not
// retried.
func TestEnrichOutcomes(t *testing.T) {
	const noRPMs = "<?xml version='1.0'?>\n<methodResponse>\n<params>\n<param>\n<value><array><data>\n</data></array></value>\n</param>\n</params>\n</methodResponse>\n"
	recordedBuild, err := os.ReadFile("testdata/getBuild.xml")
	if err != nil {
		t.Fatal(err)
	}
	deleted := strings.Replace(string(recordedBuild), "<name>state</name>\n<value><int>1</int>", "<name>state</name>\n<value><int>2</int>", 1)
	if deleted == string(recordedBuild) {
		t.Fatal("no state in getBuild.xml")
	}
	for _, tc := range []struct {
		name    string
		answer  func(method, param string) (int, string)
		edit    func(*avro.BuildEvent)
		calls   int
		outcome string
		err     error
	}{
		{"another build under the id", recorded, func(b *avro.BuildEvent) { b.NVR = "xz-5.6.3-1.fc42" }, 1, OutcomeFailed, ErrMismatch},
		{"unknown to the hub", func(string, string) (int, string) { return 200, "getBuild-none.xml" }, nil, 1, OutcomeFailed, ErrNoBuild},
		{"a fault is not retried", func(string, string) (int, string) { return 200, "fault-generic.xml" }, nil, 1, OutcomeFailed, nil},
		{"by NVR without a build id", recorded, func(b *avro.BuildEvent) { b.BuildID = 0 }, 2 + 9, OutcomeEnriched, nil},
		{"no RPMs (an image build)", func(m, _ string) (int, string) {
			if m == "listRPMs" {
				return 200, noRPMs
			}
			return 200, "getBuild.xml"
		}, nil, 2, OutcomeSkipped, nil},
		{"deleted since", func(string, string) (int, string) { return 200, deleted }, nil, 1, OutcomeSkipped, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hub := newFakeHub(t, tc.answer)
			e := newEnricher(t, hub, nil)
			b := complete("m1")
			if tc.edit != nil {
				tc.edit(b)
			}
			ev, err := e.Enrich(context.Background(), b)
			switch tc.outcome {
			case OutcomeEnriched:
				if err != nil || ev == nil {
					t.Fatalf("%v %v", ev, err)
				}
			case OutcomeSkipped:
				if err != nil || ev != nil {
					t.Fatalf("%v %v", ev, err)
				}
			default:
				if err == nil || (tc.err != nil && !errors.Is(err, tc.err)) {
					t.Fatalf("err %v, want %v", err, tc.err)
				}
			}
			if calls := hub.called(); len(calls) != tc.calls {
				t.Errorf("calls %v", calls)
			}
			if n := testutil.ToFloat64(e.metrics.builds.WithLabelValues(tc.outcome)); n != 1 {
				t.Errorf("%s: %v", tc.outcome, n)
			}
			if tc.name == "by NVR without a build id" && hub.called()[0] != "getBuild(<string>xz-5.6.3-2.fc42</string>)" {
				t.Errorf("calls %v", hub.called())
			}
		})
	}
}

var update = flag.Bool("update", false, "rewrite golden files")

// checkGolden compares got with the file at path; -update rewrites it.
func checkGolden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(want) != got {
		t.Fatalf("differs from %s (run with -update after checking it):\n%s", path, got)
	}
}

func indent(t *testing.T, b []byte) string {
	t.Helper()
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		t.Fatal(err)
	}
	return out.String() + "\n"
}
