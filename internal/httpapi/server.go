// Package httpapi is factory2's HTTP server: health, Prometheus metrics,
// and the APIs the processors and ingestion register on it.
package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Server serves HTTP on one address. Register handlers with Handle before
// calling Run.
type Server struct {
	mux    *http.ServeMux
	ln     net.Listener
	log    *slog.Logger
	routes []string
}

// Listen binds addr ("127.0.0.1:8080"; port 0 picks one) and serves
// /healthz and /metrics (from gatherer).
func Listen(addr string, gatherer prometheus.Gatherer, log *slog.Logger) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("httpapi: cannot listen on %s (choose another with --http-addr): %w", addr, err)
	}
	s := &Server{mux: http.NewServeMux(), ln: ln, log: log}
	s.Handle("GET /healthz", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintln(w, "ok")
	}))
	s.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	return s, nil
}

// Handle registers h for pattern (net/http's ServeMux syntax, with method).
func (s *Server) Handle(pattern string, h http.Handler) {
	s.mux.Handle(pattern, h)
	s.routes = append(s.routes, pattern)
}

// Routes lists the registered patterns, in registration order.
func (s *Server) Routes() []string { return s.routes }

// URL is the server's base URL.
func (s *Server) URL() string { return "http://" + s.ln.Addr().String() }

// Run serves until ctx is done, then shuts down gracefully (5s).
func (s *Server) Run(ctx context.Context) error {
	srv := &http.Server{
		Handler:           s.mux,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
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
	err := srv.Shutdown(sctx)
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	return err
}
