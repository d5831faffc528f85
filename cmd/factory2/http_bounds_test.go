package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/factory2/factory2/internal/config"
	"github.com/factory2/factory2/internal/httpapi"
	"github.com/factory2/factory2/internal/kafkatest"
	"github.com/factory2/factory2/topics"
)

// patience bounds how long a test waits for something that must happen;
// it only turns a hang into a failure.
const patience = 30 * time.Second

const testBuild = `{"type":"build","source":"koji/primary","event_time":"2026-01-01T00:00:00Z","kind":"state_change","nvr":"bash-5.2.26-3.fc41","state":"COMPLETE"}`

// padded is testBuild padded with spaces to n bytes.
func padded(n int) string { return testBuild + strings.Repeat(" ", n-len(testBuild)) }

// bodyWatch records, per request (by its X-Test header), whether the
// handler read its body; started receives the name of each request whose
// body the handler starts reading.
type bodyWatch struct {
	mu      sync.Mutex
	read    map[string]bool
	started chan string
}

func (bw *bodyWatch) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = &watchedBody{ReadCloser: r.Body, name: r.Header.Get("X-Test"), bw: bw}
		h.ServeHTTP(w, r)
	})
}

func (bw *bodyWatch) wasRead(name string) bool {
	bw.mu.Lock()
	defer bw.mu.Unlock()
	return bw.read[name]
}

type watchedBody struct {
	io.ReadCloser
	name string
	bw   *bodyWatch
	once sync.Once
}

func (b *watchedBody) Read(p []byte) (int, error) {
	b.once.Do(func() {
		b.bw.mu.Lock()
		b.bw.read[b.name] = true
		b.bw.mu.Unlock()
		b.bw.started <- b.name
	})
	return b.ReadCloser.Read(p)
}

// TestIngestHTTPBodyBudget: while the in-flight body budget is taken,
// further ingest requests get 503 with Retry-After and their bodies are
// not read, however many there are (so memory does not grow with them);
// once the bodies in flight are produced, the budget is free again.
func TestIngestHTTPBodyBudget(t *testing.T) {
	e, ing := newTestIngest(t)
	const size, holders, refused = 4096, 4, 24
	e.cfg.HTTP.MaxBodyBytes = size
	e.cfg.HTTP.MaxInflightBodyBytes = holders * size
	bw := &bodyWatch{read: map[string]bool{}, started: make(chan string, holders+refused+1)}
	srv := httptest.NewServer(bw.wrap(ingestHandler(e.cfg, ing)))
	defer srv.Close()

	post := func(name string, body io.Reader, length int64) (*http.Response, error) {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+"/api/v1/events", body)
		if err != nil {
			return nil, err
		}
		req.ContentLength = length
		req.Header.Set("Authorization", "Bearer "+testToken)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Test", name)
		return srv.Client().Do(req)
	}

	// The holders reserve the whole budget and stall in their bodies.
	var wg sync.WaitGroup
	defer wg.Wait() // after the pipes close, below
	pipes := make([]*io.PipeWriter, holders)
	holderStatus := make([]int, holders)
	for i := range holders {
		pr, pw := io.Pipe()
		pipes[i] = pw
		wg.Go(func() {
			resp, err := post(fmt.Sprintf("holder-%d", i), pr, size)
			if err != nil {
				t.Errorf("holder %d: %v", i, err)
				return
			}
			resp.Body.Close()
			holderStatus[i] = resp.StatusCode
		})
	}
	defer func() {
		for _, pw := range pipes {
			pw.CloseWithError(errors.New("test over"))
		}
	}()
	for range holders {
		select {
		case <-bw.started:
		case <-time.After(patience):
			t.Fatal("the holders' bodies were never read")
		}
	}

	// Everything else is refused unread, with or without a length.
	for i := range refused {
		name := fmt.Sprintf("refused-%d", i)
		body, length := io.Reader(strings.NewReader(padded(size))), int64(size)
		if i%2 == 1 {
			body, length = io.MultiReader(strings.NewReader(testBuild)), -1 // chunked
		}
		resp, err := post(name, body, length)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var r ingestResponse
		derr := json.NewDecoder(resp.Body).Decode(&r)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || derr != nil || !strings.Contains(r.Error, "max_inflight_body_bytes") {
			t.Fatalf("%s: %s, Retry-After %q, error %q (%v); want 503 with Retry-After naming http.max_inflight_body_bytes",
				name, resp.Status, resp.Header.Get("Retry-After"), r.Error, derr)
		}
		if bw.wasRead(name) {
			t.Errorf("%s: refused, but its body was read", name)
		}
	}

	// The holders finish and are produced; their budget is released.
	for i, pw := range pipes {
		if _, err := io.WriteString(pw, padded(size)); err != nil {
			t.Fatalf("holder %d: %v", i, err)
		}
		pw.Close()
	}
	wg.Wait()
	for i, st := range holderStatus {
		if st != http.StatusAccepted {
			t.Errorf("holder %d: %d, want 202", i, st)
		}
	}
	resp, err := post("after", strings.NewReader(padded(size)), size)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("after the holders: %s, want 202 (budget released)", resp.Status)
	}
}

// TestIngestHTTPBrokerTooLarge: an event within ingest.max_event_bytes
// that Kafka refuses as too large (its topic's max.message.bytes is
// lower) gets 413 naming it, not 503, and nothing is produced.
func TestIngestHTTPBrokerTooLarge(t *testing.T) {
	e, _ := newTestIngest(t)
	e.cfg.Ingest.MaxEventBytes = config.Default().Ingest.MaxEventBytes
	ing, err := newIngestProducer(e.cfg, "http-"+kafkatest.UniqueName(t))
	if err != nil {
		t.Fatal(err)
	}
	defer ing.Close()
	ctx, cancel := context.WithTimeout(t.Context(), evTimeout)
	defer cancel()
	cl, err := kafkaClient(ctx, e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	kafkatest.SetTopicConfig(t, cl, e.cat.Name(topics.EventsSign), "max.message.bytes", "2000")

	srv := httptest.NewServer(ingestHandler(e.cfg, ing))
	defer srv.Close()
	random := make([]byte, 2400)
	_, _ = rand.Read(random) // crypto/rand.Read never fails (Go 1.24+)
	// Incompressible, so that compression does not bring it under the limit.
	sign := `{"type":"sign","source":"` + base64.RawURLEncoding.EncodeToString(random) + `","event_time":"2026-01-01T00:00:01Z","nvr":"bash-5.2.26-3.fc41","sigkey":"a15b79cc","outcome":"signed"}`
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/api/v1/events", strings.NewReader(testBuild+"\n"+sign))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var r ingestResponse
	derr := json.NewDecoder(resp.Body).Decode(&r)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge || derr != nil || r.Event != 2 || r.Line != 2 || r.MaxBytes != 0 ||
		!strings.Contains(r.Error, "MESSAGE_TOO_LARGE") {
		t.Fatalf("%s %+v (%v), want 413 naming event 2 on line 2, refused by Kafka with MESSAGE_TOO_LARGE", resp.Status, r, derr)
	}
	stdout, stderr, err := e.run(t, "", "watch", "events", "--from-beginning")
	if err != nil || stdout != "" {
		t.Fatalf("watch after a refused batch: %v, %q\n%s", err, stdout, stderr)
	}
}

// servePipelineHTTP runs the HTTP server of a pipeline built from cfg,
// as serve does (the processors are not run), until the test ends.
func servePipelineHTTP(t *testing.T, cfg config.Config) *httpapi.Server {
	t.Helper()
	cfg.Brokers = []string{unreachable}
	cfg.InstanceID = "test"
	cfg.State.Dir = t.TempDir()
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.HTTP.Token = testToken
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	p, err := newPipeline(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.cache.Unref)
	srv, closeHTTP, err := p.listenHTTP()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		closeHTTP()
	})
	return srv
}

// stallBody opens a connection to srv, sends a POST to path with its
// headers and the first bytes of a longer body, and stalls.
func stallBody(t *testing.T, srv *httpapi.Server, path string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(srv.URL(), "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_, err = fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"decision_context\":", path, testToken)
	if err != nil {
		t.Fatal(err)
	}
	return conn
}

// TestServeHTTPReadTimeout: with http.read_timeout set, a client that
// stalls in its body is answered 408 and cut off, on the decision API
// and on ingestion alike.
func TestServeHTTPReadTimeout(t *testing.T) {
	cfg := config.Default()
	cfg.HTTP.ReadTimeout = 200 * time.Millisecond
	srv := servePipelineHTTP(t, cfg)
	for _, path := range []string{"/api/v1.0/decision", "/api/v1/events"} {
		t.Run(path, func(t *testing.T) {
			conn := stallBody(t, srv, path)
			if err := conn.SetReadDeadline(time.Now().Add(patience)); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatalf("no answer to a stalled body (no read timeout?): %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusRequestTimeout {
				t.Fatalf("stalled body: %s, want 408", resp.Status)
			}
		})
	}
}

// TestServeHTTPInflightCap: with http.max_inflight_requests requests in
// flight, the APIs answer 503 with Retry-After while /healthz and
// /metrics still answer; when they finish, the APIs serve again.
func TestServeHTTPInflightCap(t *testing.T) {
	cfg := config.Default()
	cfg.HTTP.MaxInflightRequests = 1
	srv := servePipelineHTTP(t, cfg)
	cl := &http.Client{Transport: &http.Transport{}, Timeout: patience}
	defer cl.CloseIdleConnections()
	get := func(path string) *http.Response {
		t.Helper()
		resp, err := cl.Get(srv.URL() + path)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	// waitFor polls GET /api/v1.0/policies until it answers status.
	waitFor := func(status int) *http.Response {
		t.Helper()
		deadline := time.Now().Add(patience)
		for backoff := time.Millisecond; ; backoff = min(2*backoff, 100*time.Millisecond) {
			resp := get("/api/v1.0/policies")
			if resp.StatusCode == status {
				return resp
			}
			if time.Now().After(deadline) {
				t.Fatalf("GET /api/v1.0/policies: still %s after %s, want %d", resp.Status, patience, status)
			}
			time.Sleep(backoff)
		}
	}

	// A stalled decision request holds the only slot.
	conn := stallBody(t, srv, "/api/v1.0/decision")
	resp := waitFor(http.StatusServiceUnavailable)
	if resp.Header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	for _, path := range []string{"/healthz", "/metrics"} {
		if resp := get(path); resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s at the cap: %s", path, resp.Status)
		}
	}
	conn.Close() // the handler's read fails: the slot is free
	waitFor(http.StatusOK)
}
