// Package httpapi is factory2's HTTP server: health, Prometheus metrics,
// and the APIs the processors and ingestion register on it.
//
// The server bounds what clients can hold: each request must arrive
// within a read timeout and be answered within a write timeout, idle
// keep-alive connections are closed, and at most a fixed number of
// requests to the registered APIs are served at once (see [Options]).
// Health and metrics are outside that cap, so probes and scrapes keep
// answering when the APIs are saturated.
package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// readHeaderTimeout bounds reading a request's headers.
const readHeaderTimeout = 10 * time.Second

// RetryAfter is the Retry-After, in seconds, of the 503 a saturated
// server (or handler) answers with.
const RetryAfter = "1"

// Options bounds the server. A zero field means no bound (net/http's
// default); DefaultOptions gives the bounds factory2 runs with.
type Options struct {
	// ReadTimeout bounds reading a whole request, body included, from
	// when the server starts reading it: a client that sends its body too slowly is cut off (a
	// handler reading the body gets a timeout error). Headers alone are
	// bounded by 10s, or by ReadTimeout when it is shorter.
	ReadTimeout time.Duration
	// WriteTimeout bounds writing the response, from the end of the
	// request headers (a handler may move its own deadline with
	// http.ResponseController).
	WriteTimeout time.Duration
	// IdleTimeout closes keep-alive connections idle for this long.
	IdleTimeout time.Duration
	// MaxInflightRequests caps the requests to handlers registered with
	// Handle that are served at once; a request beyond it gets 503 with
	// Retry-After and is not read. /healthz and /metrics are not counted.
	MaxInflightRequests int
}

// DefaultOptions returns the bounds of a factory2 server: 30s to read a
// request, 30s to answer it, 120s idle, 512 requests in flight.
func DefaultOptions() Options {
	return Options{
		ReadTimeout:         30 * time.Second,
		WriteTimeout:        30 * time.Second,
		IdleTimeout:         120 * time.Second,
		MaxInflightRequests: 512,
	}
}

// Server serves HTTP on one address. Register handlers with Handle before
// calling Run.
type Server struct {
	mux      *http.ServeMux
	check    atomic.Pointer[Check]
	ln       net.Listener
	log      *slog.Logger
	opts     Options
	inflight chan struct{} // one token per request in flight; nil: no cap
	routes   []string
}

// Listen binds addr ("127.0.0.1:8080"; port 0 picks one) and serves
// /healthz and /metrics (from gatherer), within the bounds of opts.
func Listen(addr string, gatherer prometheus.Gatherer, log *slog.Logger, opts Options) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("httpapi: cannot listen on %s (choose another with --http-addr): %w", addr, err)
	}
	s := &Server{mux: http.NewServeMux(), ln: ln, log: log, opts: opts}
	if opts.MaxInflightRequests > 0 {
		s.inflight = make(chan struct{}, opts.MaxInflightRequests)
	}
	// Probes and scrapes bypass the in-flight cap.
	s.handle("GET /healthz", s.probe(func(st Status) (bool, string) { return st.Live, "ok" }))
	s.handle("GET /readyz", s.probe(func(st Status) (bool, string) { return st.Ready, "ready" }))
	s.handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	return s, nil
}

// Status is what /healthz and /readyz report.
type Status struct {
	// Live: the process makes progress (or waits out a fault it will
	// recover from by itself); a supervisor restarts it otherwise.
	Live bool
	// Ready: it serves fresh results (state restored, caught up, commits
	// succeeding); a load balancer sends it traffic only then.
	Ready bool
	// Reason says, for people, why it is not live or not ready.
	Reason string
}

// Check reports the process's Status. It must not block.
type Check func() Status

// SetCheck makes /healthz and /readyz answer from c. Without one, both
// answer 200. Safe to call while serving.
func (s *Server) SetCheck(c Check) { s.check.Store(&c) }

// probe answers 200 with okBody when ok(status), else 503 with the reason.
func (s *Server) probe(ok func(Status) (bool, string)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		st := Status{Live: true, Ready: true}
		if c := s.check.Load(); c != nil {
			st = (*c)()
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		good, body := ok(st)
		if !good {
			w.WriteHeader(http.StatusServiceUnavailable)
			body = st.Reason
		} else if st.Reason != "" && body == "ok" {
			body = "ok (not ready: " + st.Reason + ")"
		}
		fmt.Fprintln(w, body)
	})
}

// Handle registers h for pattern (net/http's ServeMux syntax, with
// method). Requests to h count against Options.MaxInflightRequests.
func (s *Server) Handle(pattern string, h http.Handler) {
	s.handle(pattern, s.capped(h))
}

func (s *Server) handle(pattern string, h http.Handler) {
	s.mux.Handle(pattern, h)
	s.routes = append(s.routes, pattern)
}

// capped serves h only while fewer than MaxInflightRequests requests are
// in flight; otherwise it answers 503 at once, without reading the body.
func (s *Server) capped(h http.Handler) http.Handler {
	if s.inflight == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case s.inflight <- struct{}{}:
			defer func() { <-s.inflight }()
			h.ServeHTTP(w, r)
		default:
			Unavailable(w, fmt.Sprintf("server busy: %d requests in flight; retry later", cap(s.inflight)))
		}
	})
}

// Unavailable answers 503 with Retry-After and {"error": msg}: the
// answer of a server or handler that is saturated for now.
func Unavailable(w http.ResponseWriter, msg string) {
	w.Header().Set("Retry-After", RetryAfter)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusServiceUnavailable)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg}) // the client went away; nothing to do
}

// Routes lists the registered patterns, in registration order.
func (s *Server) Routes() []string { return s.routes }

// URL is the server's base URL.
func (s *Server) URL() string { return "http://" + s.ln.Addr().String() }

// Run serves until ctx is done, then shuts down gracefully (5s).
func (s *Server) Run(ctx context.Context) error {
	hdr := readHeaderTimeout
	if s.opts.ReadTimeout > 0 {
		hdr = min(hdr, s.opts.ReadTimeout)
	}
	srv := &http.Server{
		Handler:           s.mux,
		ReadHeaderTimeout: hdr,
		ReadTimeout:       s.opts.ReadTimeout,
		WriteTimeout:      s.opts.WriteTimeout,
		IdleTimeout:       s.opts.IdleTimeout,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	var fresh sync.Map // connections that have sent no request yet
	srv.ConnState = func(c net.Conn, st http.ConnState) {
		if st == http.StateNew {
			fresh.Store(c, struct{}{})
		} else {
			fresh.Delete(c)
		}
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(s.ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("httpapi: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// Browsers open connections ahead of need; one that has sent no
	// request holds nothing to finish, but Shutdown counts it as busy
	// for its first 5s (net/http), the whole grace period. Close those.
	fresh.Range(func(c, _ any) bool {
		c.(net.Conn).Close()
		return true
	})
	err := srv.Shutdown(sctx)
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	return err
}
