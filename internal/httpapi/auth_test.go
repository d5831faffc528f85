package httpapi

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

const (
	eventsToken = "events-s3cret"
	adminToken  = "admin-s3cret"
	readToken   = "read-s3cret"
)

// authRoutes registers one route of each class.
func authRoutes(s *Server) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	s.Handle("GET /api/v1/thing", ok)
	s.Handle("POST /api/v1/query", ok) // a read that is a POST, like Greenwave's decision API
	s.HandleWrite("POST /api/v1/events", ok)
	s.HandleAdmin("POST /admin/act", ok)
}

// do sends method path with the bearer token tok ("" for none) and
// returns the status and, for a 401, the WWW-Authenticate header.
func do(t *testing.T, cl *http.Client, srv *Server, method, path, tok string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, srv.URL()+path, strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("WWW-Authenticate")
}

type authCase struct {
	method, path, tok string
	want              int
}

func checkAuth(t *testing.T, cl *http.Client, srv *Server, cases []authCase) {
	t.Helper()
	for _, c := range cases {
		got, challenge := do(t, cl, srv, c.method, c.path, c.tok)
		if got != c.want {
			t.Errorf("%s %s with token %q: %d, want %d", c.method, c.path, c.tok, got, c.want)
		}
		if got == http.StatusUnauthorized && !strings.HasPrefix(challenge, "Bearer ") {
			t.Errorf("%s %s: 401 without a Bearer WWW-Authenticate challenge (%q)", c.method, c.path, challenge)
		}
	}
}

// TestRouteClassesReadsOpen: by default reads (and /metrics, probes) are
// open, writes need the events token, admin routes the admin token.
func TestRouteClassesReadsOpen(t *testing.T) {
	srv := start(t, Options{Auth: Auth{EventsToken: eventsToken, AdminToken: adminToken}}, authRoutes)
	checkAuth(t, client(t), srv, []authCase{
		{"GET", "/api/v1/thing", "", 200},
		{"POST", "/api/v1/query", "", 200},
		{"GET", "/metrics", "", 200},
		{"GET", "/healthz", "", 200},
		{"GET", "/readyz", "", 200},
		{"POST", "/api/v1/events", "", 401},
		{"POST", "/api/v1/events", "nope", 403},
		{"POST", "/api/v1/events", adminToken, 403},
		{"POST", "/api/v1/events", eventsToken, 200},
		{"POST", "/admin/act", "", 401},
		{"POST", "/admin/act", eventsToken, 403},
		{"POST", "/admin/act", adminToken, 200},
		{"GET", "/debug/pprof/", "", 401},
		{"GET", "/debug/pprof/", eventsToken, 403},
		{"GET", "/debug/pprof/", adminToken, 200},
		{"GET", "/debug/pprof/cmdline", adminToken, 200},
		{"GET", "/debug/pprof/goroutine?debug=1", "", 401},
	})
}

// TestRouteClassesReadsProtected: with ProtectReads, reads and /metrics
// need a token (the read token, or a write or admin one); probes stay
// open.
func TestRouteClassesReadsProtected(t *testing.T) {
	srv := start(t, Options{Auth: Auth{EventsToken: eventsToken, AdminToken: adminToken, ReadToken: readToken, ProtectReads: true}}, authRoutes)
	checkAuth(t, client(t), srv, []authCase{
		{"GET", "/api/v1/thing", "", 401},
		{"GET", "/api/v1/thing", "nope", 403},
		{"GET", "/api/v1/thing", readToken, 200},
		{"GET", "/api/v1/thing", eventsToken, 200},
		{"GET", "/api/v1/thing", adminToken, 200},
		{"POST", "/api/v1/query", "", 401},
		{"POST", "/api/v1/query", readToken, 200},
		{"GET", "/metrics", "", 401},
		{"GET", "/metrics", "nope", 403},
		{"GET", "/metrics", readToken, 200},
		{"GET", "/healthz", "", 200},
		{"GET", "/readyz", "", 200},
		{"POST", "/api/v1/events", readToken, 403},
		{"POST", "/api/v1/events", eventsToken, 200},
		{"POST", "/admin/act", readToken, 403},
		{"GET", "/debug/pprof/", readToken, 403},
		{"GET", "/debug/pprof/", adminToken, 200},
	})
}

// TestRouteClassesDisabled: without an events or admin token, those
// routes answer 403 whatever is sent, saying which key to set.
func TestRouteClassesDisabled(t *testing.T) {
	srv := start(t, Options{}, authRoutes)
	cl := client(t)
	checkAuth(t, cl, srv, []authCase{
		{"GET", "/api/v1/thing", "", 200},
		{"POST", "/api/v1/events", "", 403},
		{"POST", "/api/v1/events", "anything", 403},
		{"POST", "/admin/act", "", 403},
		{"GET", "/debug/pprof/", "", 403},
		{"GET", "/debug/pprof/", "anything", 403},
	})
	resp, err := cl.Get(srv.URL() + "/debug/pprof/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "http.admin_token") {
		t.Errorf("disabled admin route says %q, want it to name http.admin_token", body)
	}
}

// TestProtectReadsNeedsToken: protecting reads without a read token is
// refused at Listen, not discovered as a server nobody can read.
func TestProtectReadsNeedsToken(t *testing.T) {
	_, err := Listen("127.0.0.1:0", prometheus.NewRegistry(), slog.New(slog.DiscardHandler), Options{Auth: Auth{ProtectReads: true}})
	if err == nil || !strings.Contains(err.Error(), "http.read_token") {
		t.Fatalf("Listen: %v, want an error naming http.read_token", err)
	}
}

// TestTokensNotLogged: requests with wrong and right tokens leave no
// token in the server's log.
func TestTokensNotLogged(t *testing.T) {
	var logs bytes.Buffer
	srv, err := Listen("127.0.0.1:0", prometheus.NewRegistry(), slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Options{Auth: Auth{EventsToken: eventsToken, AdminToken: adminToken, ReadToken: readToken, ProtectReads: true}})
	if err != nil {
		t.Fatal(err)
	}
	authRoutes(srv)
	run(t, srv)
	cl := client(t)
	for _, tok := range []string{"", "wrong-token-xyz", eventsToken, adminToken, readToken} {
		for _, p := range []string{"/api/v1/thing", "/api/v1/events", "/admin/act"} {
			do(t, cl, srv, "POST", p, tok)
		}
	}
	for _, tok := range []string{"wrong-token-xyz", eventsToken, adminToken, readToken} {
		if strings.Contains(logs.String(), tok) {
			t.Errorf("the log holds token %q:\n%s", tok, logs.String())
		}
	}
}

// TestRequestMetrics: requests are counted by route pattern and status,
// refused ones included.
func TestRequestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	srv, err := Listen("127.0.0.1:0", reg, slog.New(slog.DiscardHandler), Options{Registerer: reg, Auth: Auth{EventsToken: eventsToken}})
	if err != nil {
		t.Fatal(err)
	}
	authRoutes(srv)
	run(t, srv)
	cl := client(t)
	do(t, cl, srv, "GET", "/api/v1/thing", "")
	do(t, cl, srv, "GET", "/api/v1/thing", "")
	do(t, cl, srv, "POST", "/api/v1/events", "")
	do(t, cl, srv, "POST", "/api/v1/events", eventsToken)
	for _, c := range []struct {
		route, code string
		want        float64
	}{
		{"GET /api/v1/thing", "200", 2},
		{"POST /api/v1/events", "401", 1},
		{"POST /api/v1/events", "200", 1},
	} {
		if got := testutil.ToFloat64(srv.requests.WithLabelValues(c.route, c.code)); got != c.want {
			t.Errorf("factory2_http_requests_total{route=%q,code=%q} = %v, want %v", c.route, c.code, got, c.want)
		}
	}
	if n := testutil.CollectAndCount(srv.seconds, "factory2_http_request_seconds"); n < 2 {
		t.Errorf("factory2_http_request_seconds has %d series, want one per route requested", n)
	}
}
