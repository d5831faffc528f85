// Package httpapi is factory2's HTTP server: health, Prometheus metrics,
// and the APIs the processors and ingestion register on it.
//
// Every route belongs to a Class that says which bearer token it needs
// (see [Auth]): Handle registers a read route, HandleWrite a write route
// (event ingestion), HandleAdmin an admin route (/debug/pprof/). The
// server checks the token before the handler runs. /healthz and /readyz
// are always open; /metrics is a read route. When reads are protected,
// browsers log in at /login with the read token and send a cookie
// instead (reads only). SetAuth swaps the tokens while serving. With [Options.TLS] the
// server speaks HTTPS only, with a certificate reloadable while serving.
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
	"net/http/pprof"
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
	// Retry-After and is not read. /healthz, /readyz, /metrics and admin
	// routes are not counted, so probes, scrapes and an operator's
	// profiling still get through a saturated server.
	MaxInflightRequests int
	// Auth holds the tokens of the route classes. The zero value opens
	// reads and disables write and admin routes.
	Auth Auth
	// TLS, when set, makes the server speak HTTPS with its certificate.
	TLS *Certificate
	// Registerer, when set, receives the server's request metrics:
	// factory2_http_requests_total{route,code} and
	// factory2_http_request_seconds{route}, route being the registered
	// pattern, and factory2_http_logins_total{result}.
	Registerer prometheus.Registerer
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
	classes  []Class                  // of routes, by index
	requests *prometheus.CounterVec   // nil: no request metrics
	seconds  *prometheus.HistogramVec // nil: no request metrics
	logins   *prometheus.CounterVec   // nil: no request metrics
	// auth holds the tokens every guard checks, swapped by SetAuth.
	auth atomic.Pointer[keys]
}

// Listen binds addr ("127.0.0.1:8080"; port 0 picks one) and serves
// /healthz, /readyz, /metrics (from gatherer) and /debug/pprof/ (admin),
// within the bounds of opts.
func Listen(addr string, gatherer prometheus.Gatherer, log *slog.Logger, opts Options) (*Server, error) {
	if opts.Auth.ProtectReads && opts.Auth.ReadToken == "" {
		return nil, errNoReadToken
	}
	s := &Server{mux: http.NewServeMux(), log: log, opts: opts}
	s.auth.Store(opts.Auth.compile())
	if opts.Registerer != nil {
		if err := s.registerMetrics(opts.Registerer); err != nil {
			return nil, err
		}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("httpapi: cannot listen on %s (choose another with --http-addr): %w", addr, err)
	}
	s.ln = ln
	if opts.MaxInflightRequests > 0 {
		s.inflight = make(chan struct{}, opts.MaxInflightRequests)
	}
	// Probes and scrapes bypass the in-flight cap.
	s.handle("GET /healthz", open, s.probe(func(st Status) (bool, string) { return st.Live, "ok" }))
	s.handle("GET /readyz", open, s.probe(func(st Status) (bool, string) { return st.Ready, "ready" }))
	s.handle("GET /metrics", Read, promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	s.registerPprof()
	if opts.Auth.ProtectReads {
		s.registerLogin()
	}
	return s, nil
}

// SetAuth replaces the tokens of every route class at once, while
// serving: requests already past the check are not affected, the next
// ones are checked against a (SIGHUP re-reads the token files). Logins
// made with a token that a no longer holds end. Whether reads are
// protected is fixed by Listen: a with another ProtectReads is refused,
// as is a that protects reads with no read token; the tokens in use stay.
func (s *Server) SetAuth(a Auth) error {
	if a.ProtectReads != s.opts.Auth.ProtectReads {
		return errors.New("httpapi: http.protect_reads cannot change while serving: restart the process")
	}
	if a.ProtectReads && a.ReadToken == "" {
		return errNoReadToken
	}
	s.auth.Store(a.compile())
	return nil
}

// registerPprof serves net/http/pprof under /debug/pprof/ as admin
// routes: profiles show code paths and can cost CPU, so only holders of
// the admin token get them. A CPU profile or trace must fit in
// http.write_timeout (pprof refuses a longer ?seconds=).
func (s *Server) registerPprof() {
	s.HandleAdmin("GET /debug/pprof/", http.HandlerFunc(pprof.Index))
	s.HandleAdmin("GET /debug/pprof/cmdline", http.HandlerFunc(pprof.Cmdline))
	s.HandleAdmin("GET /debug/pprof/profile", http.HandlerFunc(pprof.Profile))
	s.HandleAdmin("GET /debug/pprof/symbol", http.HandlerFunc(pprof.Symbol))
	s.HandleAdmin("POST /debug/pprof/symbol", http.HandlerFunc(pprof.Symbol))
	s.HandleAdmin("GET /debug/pprof/trace", http.HandlerFunc(pprof.Trace))
}

// registerMetrics creates and registers the request metrics.
func (s *Server) registerMetrics(reg prometheus.Registerer) error {
	s.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "factory2_http_requests_total",
		Help: "HTTP requests answered, by route (the registered pattern, e.g. \"POST /api/v1/events\") and status code. Requests matching no route are not counted.",
	}, []string{"route", "code"})
	s.seconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "factory2_http_request_seconds",
		Help:    "Time to answer an HTTP request, by route; a streaming answer counts until it ends.",
		Buckets: prometheus.ExponentialBuckets(1e-4, 4, 10),
	}, []string{"route"})
	s.logins = newLoginsMetric()
	for _, c := range []prometheus.Collector{s.requests, s.seconds, s.logins} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("httpapi: registering request metrics: %w", err)
		}
	}
	return nil
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

// Handle registers h as a read route for pattern (net/http's ServeMux
// syntax, with method): open, or behind the read token when
// Auth.ProtectReads is set. A route that changes state must use
// HandleWrite or HandleAdmin instead. Requests to h count against
// Options.MaxInflightRequests.
func (s *Server) Handle(pattern string, h http.Handler) {
	s.handle(pattern, Read, s.capped(h))
}

// HandleWrite registers h as a write route for pattern: it needs the
// events token (Auth.EventsToken). Requests count against
// Options.MaxInflightRequests.
func (s *Server) HandleWrite(pattern string, h http.Handler) {
	s.handle(pattern, Write, s.capped(h))
}

// HandleAdmin registers h as an admin route for pattern: it needs the
// admin token (Auth.AdminToken), and is disabled (403) without one.
// Admin requests are not capped, so an operator can look into a
// saturated server.
func (s *Server) HandleAdmin(pattern string, h http.Handler) {
	s.handle(pattern, Admin, h)
}

// handle registers h for pattern behind the token check of class c,
// counted in the request metrics under the route pattern.
func (s *Server) handle(pattern string, c Class, h http.Handler) {
	h = s.guard(c, h)
	if s.requests != nil {
		route := prometheus.Labels{"route": pattern}
		h = promhttp.InstrumentHandlerCounter(s.requests.MustCurryWith(route),
			promhttp.InstrumentHandlerDuration(s.seconds.MustCurryWith(route), h))
	}
	s.mux.Handle(pattern, h)
	s.routes = append(s.routes, pattern)
	s.classes = append(s.classes, c)
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

// RouteClasses returns the class of each registered pattern.
func (s *Server) RouteClasses() map[string]Class {
	m := make(map[string]Class, len(s.routes))
	for i, r := range s.routes {
		m[r] = s.classes[i]
	}
	return m
}

// URL is the server's base URL: https when it serves TLS.
func (s *Server) URL() string {
	if s.opts.TLS != nil {
		return "https://" + s.ln.Addr().String()
	}
	return "http://" + s.ln.Addr().String()
}

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
	if s.opts.TLS != nil {
		srv.TLSConfig = s.opts.TLS.tlsConfig()
		go func() { errc <- srv.ServeTLS(s.ln, "", "") }()
	} else {
		go func() { errc <- srv.Serve(s.ln) }()
	}
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
