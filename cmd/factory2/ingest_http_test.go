package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/factory2/factory2/internal/httpapi"
	"github.com/factory2/factory2/internal/ingest"
	"github.com/factory2/factory2/internal/kafkatest"
)

const testToken = "s3cret"

// newTestIngest returns an env with topics and an ingestion producer.
func newTestIngest(t *testing.T) (*evEnv, *ingest.Producer) {
	t.Helper()
	e := evSetup(t, kafkatest.Cluster(t).Brokers())
	e.cfg.HTTP.Token = testToken
	e.cfg.HTTP.MaxBodyBytes = 4096
	e.cfg.Ingest.MaxEventBytes = 1000
	ing, err := newIngestProducer(e.cfg, "http-"+kafkatest.UniqueName(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ing.Close)
	return e, ing
}

type ingestResponse struct {
	Count    int               `json:"count"`
	Produced []ingest.Produced `json:"produced"`
	Error    string            `json:"error"`
	// Of a 413 for an event too large:
	Event    int `json:"event"`
	Line     int `json:"line"`
	Size     int `json:"size"`
	MaxBytes int `json:"max_bytes"`
}

func TestIngestHTTP(t *testing.T) {
	e, ing := newTestIngest(t)
	reg := prometheus.NewRegistry()
	metrics, err := ingest.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(ingestHandler(e.cfg, ing, withMetrics(metrics)))
	defer srv.Close()
	disabledCfg := e.cfg
	disabledCfg.HTTP.Token = ""
	disabled := httptest.NewServer(ingestHandler(disabledCfg, ing))
	defer disabled.Close()

	build := `{"type":"build","source":"koji/primary","event_time":"2026-01-01T00:00:00Z","kind":"state_change","nvr":"bash-5.2.26-3.fc41","state":"COMPLETE"}`
	sign := `{"type":"sign","source":"robosignatory","event_time":"2026-01-01T00:00:01Z","nvr":"bash-5.2.26-3.fc41","sigkey":"a15b79cc","outcome":"signed"}`
	waiverBody, err := os.ReadFile(filepath.Join(busFixtures, "bare_waiver_new.json"))
	if err != nil {
		t.Fatal(err)
	}
	const jsonType = "application/json"
	auth := "Bearer " + testToken
	type request struct {
		url, auth, contentType, query string
		body                          io.Reader
	}
	var accepted []string // ids of the events accepted
	// What the metrics must say: events committed by type, refusals by
	// reason (of the server with metrics).
	wantEvents, wantRejected := map[string]float64{}, map[string]float64{}
	for _, tc := range []struct {
		name   string
		req    request
		status int
		want   string // in the body
		count  int    // events accepted
	}{
		{"no token configured", request{url: disabled.URL, auth: auth, contentType: jsonType, body: strings.NewReader(build)}, 503, "ingestion disabled: set http.token", 0},
		{"no authorization", request{contentType: jsonType, body: strings.NewReader(build)}, 401, "missing bearer token", 0},
		{"not bearer", request{auth: "Basic czNjcmV0", contentType: jsonType, body: strings.NewReader(build)}, 401, "missing bearer token", 0},
		{"wrong token", request{auth: "Bearer nope", contentType: jsonType, body: strings.NewReader(build)}, 403, "wrong bearer token", 0},
		{"too large", request{auth: auth, contentType: jsonType, body: strings.NewReader(strings.Repeat(" ", 5000) + build)}, 413, "max_body_bytes", 0},
		{"too large, chunked", request{auth: auth, contentType: jsonType, body: io.MultiReader(strings.NewReader(strings.Repeat(" ", 5000)), strings.NewReader(build))}, 413, "max_body_bytes", 0},
		{"not json", request{auth: auth, contentType: "text/html", body: strings.NewReader(build)}, 415, "Content-Type", 0},
		{"bad line", request{auth: auth, contentType: jsonType, body: strings.NewReader(build + "\n" + strings.Replace(sign, `"sigkey":"a15b79cc",`, "", 1))}, 400, `line 2: sign: field \"sigkey\": missing`, 0},
		{"malformed", request{auth: auth, contentType: jsonType, body: strings.NewReader(build + "\n{")}, 400, "malformed JSON", 0},
		{"decision", request{auth: auth, contentType: jsonType, body: strings.NewReader(`{"type":"gating_decision"}`)}, 400, "decisions are not accepted", 0},
		{"bad format", request{auth: auth, contentType: jsonType, query: "format=xml", body: strings.NewReader(build)}, 400, `format \"xml\"`, 0},
		{"unknown bus topic", request{auth: auth, contentType: jsonType, query: "format=message&topic=org.fedoraproject.prod.bodhi.update.comment", body: strings.NewReader(string(waiverBody))}, 400, "unknown topic", 0},
		{"one event", request{auth: auth, contentType: "application/json; charset=utf-8", body: strings.NewReader(build)}, 202, "", 1},
		{"array", request{auth: auth, contentType: jsonType, body: strings.NewReader("[" + build + ",\n" + sign + "]")}, 202, "", 2},
		{"json lines and source", request{auth: auth, contentType: "application/x-ndjson", query: "source=hook", body: strings.NewReader(strings.Replace(sign, `"source":"robosignatory",`, "", 1) + "\n")}, 202, "", 1},
		{"bus message", request{auth: auth, contentType: jsonType, query: "format=message&topic=org.fedoraproject.prod.waiverdb.waiver.new", body: strings.NewReader(string(waiverBody))}, 202, "", 1},
		{"event too large", request{auth: auth, contentType: jsonType, body: strings.NewReader(build + "\n" + strings.Replace(sign, "robosignatory", strings.Repeat("r", 1500), 1))}, 413, "line 2: event 2 (sign)", 0},
		{"invalid UTF-8", request{auth: auth, contentType: jsonType, body: strings.NewReader(build + "\n" + strings.Replace(sign, "robosignatory", "robo\xffsignatory", 1))}, 400, fmt.Sprintf("line 2: invalid UTF-8 at byte offset %d", len(build)+1+strings.Index(sign, "robosignatory")+len("robo")), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := tc.req.url
			if url == "" {
				url = srv.URL
			}
			url += "/api/v1/events"
			if tc.req.query != "" {
				url += "?" + tc.req.query
			}
			req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, tc.req.body)
			if err != nil {
				t.Fatal(err)
			}
			if tc.req.auth != "" {
				req.Header.Set("Authorization", tc.req.auth)
			}
			req.Header.Set("Content-Type", tc.req.contentType)
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.status || !strings.Contains(string(body), tc.want) {
				t.Fatalf("%d %s, want %d with %q", resp.StatusCode, body, tc.status, tc.want)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			if tc.status == 401 && resp.Header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
			var r ingestResponse
			if err := json.Unmarshal(body, &r); err != nil {
				t.Fatalf("body %s: %v", body, err)
			}
			if tc.status != 202 {
				if tc.req.url == "" {
					wantRejected[map[int]string{400: "invalid", 401: "unauthorized", 403: "unauthorized", 413: "too_large", 415: "unsupported_media_type"}[tc.status]]++
				}
				if r.Error == "" {
					t.Errorf("no error in %s", body)
				}
				if tc.name == "event too large" && (r.Event != 2 || r.Line != 2 || r.Size <= 1500 || r.MaxBytes != 1000) {
					t.Errorf("413 names event %d, line %d, size %d, max %d; want event 2, line 2, over 1500 bytes, max 1000", r.Event, r.Line, r.Size, r.MaxBytes)
				}
				return
			}
			if r.Count != tc.count || len(r.Produced) != tc.count {
				t.Fatalf("accepted %d (%d listed), want %d", r.Count, len(r.Produced), tc.count)
			}
			for _, p := range r.Produced {
				if p.ID == "" || p.Offset < 0 || p.Topic == "" {
					t.Errorf("produced %+v", p)
				}
				accepted = append(accepted, p.ID)
				wantEvents[p.Type]++
			}
		})
	}

	for _, kind := range ingest.EventTypes {
		if got := gathered(t, reg, "factory2_ingest_events_total", "kind", kind); got != wantEvents[kind] {
			t.Errorf("factory2_ingest_events_total{kind=%q} = %v, want %v", kind, got, wantEvents[kind])
		}
	}
	for _, reason := range ingest.RejectReasons {
		if got := gathered(t, reg, "factory2_ingest_rejected_total", "reason", reason); got != wantRejected[reason] {
			t.Errorf("factory2_ingest_rejected_total{reason=%q} = %v, want %v", reason, got, wantRejected[reason])
		}
	}
	if wantEvents["build"] == 0 || wantRejected["invalid"] == 0 {
		t.Fatalf("the cases committed no build or refused nothing as invalid: %v %v", wantEvents, wantRejected)
	}

	// Exactly the accepted events are in the log: nothing of the rejected
	// requests.
	stdout, stderr, err := e.run(t, "", "watch", "events", "--from-beginning")
	if err != nil {
		t.Fatalf("watch: %v\n%s", err, stderr)
	}
	var got []string
	for _, l := range evLines[watchLine](t, stdout) {
		var env struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(l.Record, &env); err != nil {
			t.Fatal(err)
		}
		got = append(got, env.ID)
	}
	slices.Sort(got)
	slices.Sort(accepted)
	if !slices.Equal(got, accepted) {
		t.Fatalf("log holds %v, accepted %v", got, accepted)
	}
}

// TestRegisterIngest: the endpoint is served by httpapi.Server, POST only.
func TestRegisterIngest(t *testing.T) {
	e, ing := newTestIngest(t)
	opts, err := e.cfg.HTTP.ServerOptions()
	if err != nil {
		t.Fatal(err)
	}
	srv, err := httpapi.Listen("127.0.0.1:0", prometheus.NewRegistry(), slog.New(slog.DiscardHandler), opts)
	if err != nil {
		t.Fatal(err)
	}
	registerIngest(srv, e.cfg, ing)
	if !slices.Contains(srv.Routes(), "POST /api/v1/events") {
		t.Fatalf("routes %v", srv.Routes())
	}
	if c := srv.RouteClasses()["POST /api/v1/events"]; c != httpapi.Write {
		t.Fatalf("POST /api/v1/events is a %s route, want write (the events token)", c)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("Run: %v", err)
		}
	}()

	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL()+"/api/v1/events",
		strings.NewReader(`{"type":"build","source":"koji/primary","event_time":"2026-01-01T00:00:00Z","kind":"tag","nvr":"bash-5.2.26-3.fc41","tag":"f41"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST: %s", resp.Status)
	}
	resp, err = http.Get(srv.URL() + "/api/v1/events")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET: %s", resp.Status)
	}
}

// gathered returns the value of the counter name{label=value} in reg.
func gathered(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no series %s{%s=%q}", name, label, value)
	return 0
}
