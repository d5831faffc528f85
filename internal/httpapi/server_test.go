package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// patience bounds how long a test waits for something that must happen;
// it only turns a hang into a failure.
const patience = 30 * time.Second

// start listens on a free port of 127.0.0.1 with opts, lets register add
// routes, and runs the server until the test ends.
func start(t *testing.T, opts Options, register func(*Server)) *Server {
	t.Helper()
	srv, err := Listen("127.0.0.1:0", prometheus.NewRegistry(), slog.New(slog.DiscardHandler), opts)
	if err != nil {
		t.Fatal(err)
	}
	register(srv)
	run(t, srv)
	return srv
}

// run runs srv until the test ends.
func run(t *testing.T, srv *Server) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

// client returns an HTTP client of its own, closed when the test ends.
func client(t *testing.T) *http.Client {
	t.Helper()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: patience}
}

// TestReadTimeoutCutsOffSlowBody: a client that sends its headers and
// part of a body, then stalls, is cut off by the read timeout instead of
// holding a handler and a connection for good.
func TestReadTimeoutCutsOffSlowBody(t *testing.T) {
	read := make(chan error, 1)
	srv := start(t, Options{ReadTimeout: 200 * time.Millisecond}, func(s *Server) {
		s.Handle("POST /slow", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, err := io.ReadAll(r.Body)
			read <- err
			if err != nil {
				w.WriteHeader(http.StatusRequestTimeout)
			}
		}))
	})

	conn, err := net.Dial("tcp", strings.TrimPrefix(srv.URL(), "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := fmt.Fprintf(conn, "POST /slow HTTP/1.1\r\nHost: test\r\nContent-Length: 100\r\n\r\n0123456789"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-read:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("reading the stalled body: %v, want a timeout", err)
		}
	case <-time.After(patience):
		t.Fatalf("the handler still reads a body stalled for %s: no read timeout", patience)
	}
	// The server answers (or just closes) and drops the connection.
	if err := conn.SetReadDeadline(time.Now().Add(patience)); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(conn)
	if err != nil {
		t.Fatalf("the connection stays open after the read timeout: %v (read %q)", err, rest)
	}
	if len(rest) > 0 && !strings.HasPrefix(string(rest), "HTTP/1.1 408") {
		t.Errorf("answer %q, want 408 or nothing", rest)
	}
}

// TestInflightCap: beyond MaxInflightRequests the API answers 503 with
// Retry-After without entering the handler, while /healthz and /metrics
// still answer; once requests finish, the API serves again.
func TestInflightCap(t *testing.T) {
	const limit = 2
	entered := make(chan struct{}, 2*limit)
	release := make(chan struct{})
	srv := start(t, Options{MaxInflightRequests: limit}, func(s *Server) {
		s.Handle("POST /block", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			entered <- struct{}{}
			<-release
			w.WriteHeader(http.StatusNoContent)
		}))
	})
	cl := client(t)
	post := func() (*http.Response, error) {
		return cl.Post(srv.URL()+"/block", "application/json", strings.NewReader("{}"))
	}

	var wg sync.WaitGroup
	statuses := make(chan int, limit)
	for range limit {
		wg.Go(func() {
			resp, err := post()
			if err != nil {
				t.Errorf("blocked request: %v", err)
				return
			}
			resp.Body.Close()
			statuses <- resp.StatusCode
		})
	}
	for range limit {
		select {
		case <-entered:
		case <-time.After(patience):
			close(release)
			t.Fatal("the first requests never reached the handler")
		}
	}

	resp, err := post()
	if err != nil {
		t.Fatal(err)
	}
	var body struct{ Error string }
	derr := json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || derr != nil || body.Error == "" {
		t.Errorf("over the cap: %s, Retry-After %q, error %q (%v); want 503 with Retry-After and an error",
			resp.Status, resp.Header.Get("Retry-After"), body.Error, derr)
	}
	for _, path := range []string{"/healthz", "/metrics"} {
		resp, err := cl.Get(srv.URL() + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s at the cap: %s", path, resp.Status)
		}
	}

	close(release)
	wg.Wait()
	close(statuses)
	for s := range statuses {
		if s != http.StatusNoContent {
			t.Errorf("request within the cap: %d", s)
		}
	}
	if n := len(entered); n != 0 {
		t.Errorf("%d requests over the cap reached the handler", n)
	}
	resp, err = post()
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Errorf("after the cap cleared: %s", resp.Status)
	}
}

// TestShutdownClosesConnectionsThatSentNothing: browsers open connections
// ahead of need. One that has sent no request must not hold up a
// graceful shutdown (net/http counts it busy for its first 5s, the whole
// grace period, and Run would report a timeout).
func TestShutdownClosesConnectionsThatSentNothing(t *testing.T) {
	srv, err := Listen("127.0.0.1:0", prometheus.NewRegistry(), slog.New(slog.DiscardHandler), DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	// A request first, so the server is serving when the idle
	// connection opens.
	resp, err := client(t).Get(srv.URL() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	conn, err := net.Dial("tcp", strings.TrimPrefix(srv.URL(), "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Wait until the server has accepted it: a read that times out
	// means it is open and silent.
	_ = conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if _, err := conn.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("fresh connection: %v", err)
	}
	start := time.Now()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run with a connection that sent nothing: %v", err)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("shutdown took %s", d)
		}
	case <-time.After(patience):
		t.Fatal("Run did not return")
	}
}
