package main

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/factory2/factory2/internal/ingest"
	"github.com/factory2/factory2/internal/kafkatest"
	"github.com/factory2/factory2/internal/koji"
)

// kojiFixtures are the hub answers internal/koji is tested with (read
// only): getBuild and listRPMs of xz-5.6.3-2.fc42, build 2601003.
var kojiFixtures = filepath.Join("..", "..", "internal", "koji", "testdata")

// xzComplete is Koji's fedora-messaging message that xz-5.6.3-2.fc42
// became COMPLETE (the form of internal/bus/testdata/koji_build_complete.json).
const xzComplete = `{"topic": "org.fedoraproject.prod.buildsys.build.state.change",
 "id": "5c1e0a52-7f3e-4c1f-9d40-2b1e5a0c0003",
 "headers": {"fedora_messaging_schema": "koji_fedoramessaging.build.BuildStateChangeV1", "sent-at": "2026-11-02T11:58:42+00:00"},
 "body": {"attribute": "state", "build_id": 2601003, "name": "xz", "version": "5.6.3", "release": "2.fc42",
  "epoch": null, "instance": "primary", "new": 1, "old": 0, "owner": "packager", "task_id": 126700003,
  "completion_time": "2026-11-02T11:58:41.220087+00:00", "creation_time": "2026-11-02T11:20:04.391201+00:00",
  "request": ["git+https://src.fedoraproject.org/rpms/xz.git#0123456789abcdef0123456789abcdef01234567", "rawhide", {}]}}`

const xzMessageID = "5c1e0a52-7f3e-4c1f-9d40-2b1e5a0c0003"

// kojiHub is a fake hub that answers the recorded getBuild and listRPMs,
// or, when down, 503 to everything. It counts the calls.
type kojiHub struct {
	*httptest.Server
	down  atomic.Bool
	calls atomic.Int32
}

func newKojiHub(t *testing.T) *kojiHub {
	t.Helper()
	method := regexp.MustCompile(`<methodName>(\w+)</methodName>`)
	h := &kojiHub{}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.calls.Add(1)
		if h.down.Load() {
			http.Error(w, "hub down", http.StatusServiceUnavailable)
			return
		}
		body, _ := io.ReadAll(r.Body)
		m := method.FindSubmatch(body)
		if m == nil {
			http.Error(w, "no method", http.StatusBadRequest)
			return
		}
		file := string(m[1]) + ".xml"
		if file == "listRPMs.xml" && bytes.Contains(body, []byte("<nil/>")) {
			file = "listRPMs-buildroot.xml" // listRPMs(None, None, None, buildroot id)
		}
		answer, err := os.ReadFile(filepath.Join(kojiFixtures, file))
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "text/xml")
		w.Write(answer)
	}))
	t.Cleanup(h.Close)
	return h
}

type enrichedResponse struct {
	Count       int               `json:"count"`
	Produced    []ingest.Produced `json:"produced"`
	Enriched    []ingest.Produced `json:"enriched"`
	EnrichError string            `json:"enrich_error"`
}

// TestIngestHTTPAsksKoji: on the real broker, a Koji COMPLETE message
// posted to the ingestion endpoint is produced, then the build's RPM
// list, asked of the hub, as a build event with the message's id +
// "#rpms". With the hub down, the message's event is still produced; the
// answer and the log say which build lacks its list, the metric counts
// it, and the hub was asked 3 times, no more.
func TestIngestHTTPAsksKoji(t *testing.T) {
	e, ing := newTestIngest(t)
	e.cfg.HTTP.MaxBodyBytes = 64 << 10
	e.cfg.Ingest.MaxEventBytes = 64 << 10
	hub := newKojiHub(t)
	c, err := koji.NewClient(hub.URL+"/kojihub", 2*time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	en, err := koji.NewEnricher(koji.EnricherConfig{Client: c, Backoff: time.Millisecond, Logger: log, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(ingestHandler(e.cfg, ing, withEnricher(en, log)))
	defer srv.Close()
	post := func(query, body string) enrichedResponse {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+"/api/v1/events?"+query, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+testToken)
		req.Header.Set("Content-Type", "application/json")
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var r enrichedResponse
		if resp.StatusCode != http.StatusAccepted || json.Unmarshal(b, &r) != nil {
			t.Fatalf("%s %s", resp.Status, b)
		}
		return r
	}

	r := post("format=message", xzComplete)
	// The RPM list, then what the build was built against: two RPMs.
	if r.Count != 1 || r.Produced[0].ID != xzMessageID || len(r.Enriched) != 3 ||
		r.Enriched[0].ID != xzMessageID+koji.ArtifactsIDSuffix || r.Enriched[0].Key != "xz-5.6.3-2.fc42" || r.EnrichError != "" ||
		r.Enriched[1].ID != xzMessageID+koji.BuildrootIDSuffix+"gcc-15.0.1-0.9.fc42.x86_64.rpm" ||
		!strings.HasSuffix(r.Enriched[2].Topic, ".events.deps") || r.Enriched[2].Key != "xz-5.6.3-2.fc42" {
		t.Fatalf("answer %+v", r)
	}
	// Our own JSON events are not enriched, even a COMPLETE one.
	calls := hub.calls.Load()
	if r := post("", `{"type":"build","source":"koji/primary","event_time":"2026-01-01T00:00:00Z","kind":"state_change","nvr":"bash-5.2.26-3.fc41","state":"COMPLETE"}`); len(r.Enriched) != 0 || hub.calls.Load() != calls {
		t.Fatalf("a JSON event was enriched: %+v", r)
	}

	hub.down.Store(true)
	calls = hub.calls.Load()
	r = post("format=message", strings.Replace(xzComplete, "0003", "0004", 1))
	if r.Count != 1 || len(r.Enriched) != 0 || !strings.Contains(r.EnrichError, "RPM list of xz-5.6.3-2.fc42") ||
		!strings.Contains(r.EnrichError, "HTTP 503") || !strings.Contains(r.EnrichError, "after 3 attempts") {
		t.Fatalf("hub down: %+v", r)
	}
	if n := hub.calls.Load() - calls; n != koji.DefaultAttempts {
		t.Errorf("the hub was asked %d times", n)
	}
	if n := counterValue(t, reg, "factory2_koji_enrichments_total", "failed"); n != 1 {
		t.Errorf("failed enrichments %v", n)
	}
	if !strings.Contains(logs.String(), "RPM list is not recorded") || !strings.Contains(logs.String(), "xz-5.6.3-2.fc42") {
		t.Errorf("log:\n%s", logs.String())
	}

	// The log holds the three events and the one RPM list.
	stdout, stderr, err := e.run(t, "", "watch", "events", "--from-beginning")
	if err != nil {
		t.Fatalf("watch: %v\n%s", err, stderr)
	}
	var ids []string
	for _, l := range evLines[watchLine](t, stdout) {
		var ev struct {
			ID        string            `json:"id"`
			Artifacts []json.RawMessage `json:"artifacts"`
		}
		if err := json.Unmarshal(l.Record, &ev); err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(ev.ID, koji.ArtifactsIDSuffix) && len(ev.Artifacts) != 9 {
			t.Errorf("%s lists %d artifacts", ev.ID, len(ev.Artifacts))
		}
		ids = append(ids, ev.ID)
	}
	slices.Sort(ids)
	if want := []string{"5c1e0a52-7f3e-4c1f-9d40-2b1e5a0c0003",
		"5c1e0a52-7f3e-4c1f-9d40-2b1e5a0c0003#buildroot/gcc-15.0.1-0.9.fc42.x86_64.rpm",
		"5c1e0a52-7f3e-4c1f-9d40-2b1e5a0c0003#buildroot/glibc-devel-2.41-1.fc42.x86_64.rpm",
		"5c1e0a52-7f3e-4c1f-9d40-2b1e5a0c0003#rpms",
		"5c1e0a52-7f3e-4c1f-9d40-2b1e5a0c0004"}; len(ids) != 6 || !slices.Equal(slices.DeleteFunc(ids, func(id string) bool {
		return strings.HasPrefix(id, "sha256:")
	}), want) {
		t.Fatalf("log holds %v", ids)
	}
}

// counterValue returns the value of the counter name whose one label
// has value label in reg.
func counterValue(t *testing.T, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if mf.GetName() == name && len(m.GetLabel()) == 1 && m.GetLabel()[0].GetValue() == label {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no %s{%s}", name, label)
	return 0
}

// TestEmitMessageAsksKoji: emit --message with ingest.koji_hub_url
// produces the message's event, then the RPM list; with the hub down it
// still produces the message's event, and exits 1 saying to send again.
func TestEmitMessageAsksKoji(t *testing.T) {
	e := evSetup(t, kafkatest.Cluster(t).Brokers())
	hub := newKojiHub(t)
	cfg, err := os.ReadFile(e.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg = append(cfg, []byte("ingest: {koji_hub_url: \""+hub.URL+"/kojihub\", koji_timeout: 2s}\n")...)
	if err := os.WriteFile(e.cfgPath, cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	msg := filepath.Join(t.TempDir(), "complete.json")
	if err := os.WriteFile(msg, []byte(xzComplete), 0o644); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, err := e.run(t, "", "emit", "--message", msg)
	lines := evLines[ingest.Produced](t, stdout)
	if err != nil || len(lines) != 4 || lines[1].ID != xzMessageID+koji.ArtifactsIDSuffix || lines[3].Type != "dependency_edge" ||
		!strings.Contains(stderr, "produced the RPM lists of 1 build and 2 buildroot edges from "+hub.URL) {
		t.Fatalf("emit: %v\n%s\n%s", err, stdout, stderr)
	}

	hub.down.Store(true)
	stdout, stderr, err = e.run(t, "", "emit", "--message", msg)
	lines = evLines[ingest.Produced](t, stdout)
	if err == nil || len(lines) != 1 || lines[0].ID != xzMessageID ||
		!strings.Contains(err.Error(), "the events were produced, but asking Koji failed") ||
		!strings.Contains(err.Error(), "send the messages again to retry") || !strings.Contains(stderr, "koji: call failed, retrying") {
		t.Fatalf("hub down: %v\n%s\n%s", err, stdout, stderr)
	}
}
