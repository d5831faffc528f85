package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/factory2/factory2/internal/config"
	"github.com/factory2/factory2/internal/httpapi"
)

// writePair writes a self-signed certificate and its key to dir.
func writePair(t *testing.T, dir string, serial int64) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), DNSNames: []string{"test"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// TestReloadOnHangup: SIGHUP makes the serving process reload its TLS
// certificate.
func TestReloadOnHangup(t *testing.T) {
	// Catch SIGHUP in the test too: until reloadOnHangup has registered,
	// and after it has stopped, a SIGHUP must not end the test binary.
	// The guard is never stopped: the loop below ends on a reload that an
	// earlier SIGHUP caused, so the last one sent can still be on its way
	// (it killed the binary under make test once). A full guard drops
	// signals, which is all it is for.
	guard := make(chan os.Signal, 16)
	signal.Notify(guard, syscall.SIGHUP)

	dir := t.TempDir()
	certFile, keyFile := writePair(t, dir, 1)
	reg := prometheus.NewRegistry()
	cert, err := httpapi.NewCertificate(certFile, keyFile, slog.New(slog.DiscardHandler), reg)
	if err != nil {
		t.Fatal(err)
	}
	writePair(t, dir, 2)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); reloadOnHangup(ctx, func() { _ = cert.Reload() }) }()
	defer func() { cancel(); <-done }()

	deadline := time.Now().Add(30 * time.Second)
	for {
		if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		if n, err := testutil.GatherAndCount(reg, "factory2_http_tls_reloads_total"); err != nil || n == 0 {
			t.Fatalf("reload metric: %d series, %v", n, err)
		}
		got, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		if reloadsOK(got) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("SIGHUP never reloaded the certificate")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if s, _ := cert.GetCertificate(nil); s.Leaf.SerialNumber.Int64() != 2 {
		t.Fatalf("serves certificate %d after SIGHUP, want 2", s.Leaf.SerialNumber.Int64())
	}
}

// reloadsOK reads factory2_http_tls_reloads_total{result="ok"}.
func reloadsOK(mfs []*dto.MetricFamily) float64 {
	for _, mf := range mfs {
		if mf.GetName() != "factory2_http_tls_reloads_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" && strings.EqualFold(l.GetValue(), "ok") {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// TestServeHTTPSecurity: the server serve builds from the configuration
// speaks HTTPS with the configured pair, checks each route class's token,
// and registers every processor query API as a read route.
func TestServeHTTPSecurity(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := writePair(t, dir, 7)
	cfg := config.Default()
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.State.Dir = t.TempDir()
	cfg.HTTP.TLSCertFile, cfg.HTTP.TLSKeyFile = certFile, keyFile
	cfg.HTTP.Token, cfg.HTTP.AdminToken, cfg.HTTP.ReadToken, cfg.HTTP.ProtectReads = "w-token", "a-token", "r-token", true
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	p, err := newPipeline(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv, closeHTTP, err := p.listenHTTP()
	if err != nil {
		t.Fatal(err)
	}
	defer closeHTTP()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	defer func() { cancel(); <-done }()

	if !strings.HasPrefix(srv.URL(), "https://") {
		t.Fatalf("URL %s, want https", srv.URL())
	}
	for route, class := range srv.RouteClasses() {
		want := "read"
		switch {
		case route == "POST /api/v1/events":
			want = "write"
		case strings.Contains(route, "/debug/pprof/"):
			want = "admin"
		case route == "GET /healthz" || route == "GET /readyz":
			continue
		case route == "GET /login" || route == "POST /login" || route == "POST /logout":
			want = "open" // the browser login: how a browser gets a credential
		}
		if class.String() != want {
			t.Errorf("%s is a %s route, want %s", route, class, want)
		}
	}

	cert, _ := p.cert.GetCertificate(nil)
	pool := x509.NewCertPool()
	pool.AddCert(cert.Leaf)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "test"}}
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	for _, c := range []struct {
		method, path, tok string
		want              int
	}{
		{"GET", "/healthz", "", 200},
		{"GET", "/metrics", "", 401},
		{"GET", "/metrics", "r-token", 200},
		{"GET", "/api/v1/composes", "", 401},
		{"GET", "/api/v1/composes", "nope", 403},
		{"GET", "/debug/pprof/", "r-token", 403},
		{"GET", "/debug/pprof/", "a-token", 200},
		{"POST", "/api/v1/events", "r-token", 403},
		{"POST", "/api/v1/events", "", 401},
	} {
		req, err := http.NewRequestWithContext(t.Context(), c.method, srv.URL()+c.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if c.tok != "" {
			req.Header.Set("Authorization", "Bearer "+c.tok)
		}
		resp, err := cl.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", c.method, c.path, err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("%s %s with %q: %s, want %d", c.method, c.path, c.tok, resp.Status, c.want)
		}
	}

	// A browser's login over HTTPS gets a Secure cookie.
	resp, err := cl.PostForm(srv.URL()+"/login", url.Values{"token": {"r-token"}, "next": {"/"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if cs := resp.Request.Response; cs == nil || len(cs.Cookies()) != 1 || !cs.Cookies()[0].Secure || !cs.Cookies()[0].HttpOnly {
		t.Errorf("login over HTTPS: want one Secure, HttpOnly cookie, got %v", resp.Request.Response)
	}
}

// TestReloadTokens: what SIGHUP runs re-reads the token files into the
// serving server; a file that cannot be used keeps the previous tokens.
func TestReloadTokens(t *testing.T) {
	dir := t.TempDir()
	readFile := filepath.Join(dir, "read")
	if err := os.WriteFile(readFile, []byte("read-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	p := &pipeline{log: slog.New(slog.NewTextHandler(&logs, nil))}
	p.cfg.HTTP = config.HTTP{ReadTokenFile: readFile, ProtectReads: true}
	opts, err := p.cfg.HTTP.ServerOptions()
	if err != nil {
		t.Fatal(err)
	}
	srv, err := httpapi.Listen("127.0.0.1:0", prometheus.NewRegistry(), slog.New(slog.DiscardHandler), opts)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(p.reloaders(srv)); n != 1 {
		t.Fatalf("%d reloaders, want the tokens'", n)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	defer func() { cancel(); <-done }()
	status := func(tok string) int {
		req, _ := http.NewRequestWithContext(t.Context(), "GET", srv.URL()+"/metrics", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if status("read-1") != 200 {
		t.Fatal("the token of the file is refused")
	}
	if err := os.WriteFile(readFile, []byte("read-2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p.reloadTokens(srv)
	if a, b := status("read-1"), status("read-2"); a != 403 || b != 200 {
		t.Errorf("after the reload: old token %d, new %d; want 403, 200", a, b)
	}
	if err := os.WriteFile(readFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	p.reloadTokens(srv)
	if status("read-2") != 200 {
		t.Errorf("an empty token file replaced the token")
	}
	if !strings.Contains(logs.String(), "previous tokens stay") || strings.Contains(logs.String(), "read-2") {
		t.Errorf("log:\n%s", logs.String())
	}
}

// TestQueryCommandsUseTheServersTLSAndToken: with the configuration of a
// server that speaks HTTPS and protects reads, `compose list` reaches it
// (trusting the server's own certificate, though its names do not
// include 127.0.0.1) and sends the read token; a server with another
// certificate is refused.
func TestQueryCommandsUseTheServersTLSAndToken(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := writePair(t, dir, 11)
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	var gotAuth string
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotAuth = r.Header.Get("Authorization")
		if gotAuth != "Bearer r-token" {
			http.Error(w, `{"error":"wrong token"}`, http.StatusForbidden)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"composes":[]}`))
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pair}}
	srv.StartTLS()
	defer srv.Close()

	writeConfig := func(name, cert, key string) string {
		t.Helper()
		f := filepath.Join(dir, name)
		y := "http:\n  addr: " + srv.Listener.Addr().String() + "\n  tls_cert_file: " + cert + "\n  tls_key_file: " + key +
			"\n  read_token: r-token\n  protect_reads: true\n"
		if err := os.WriteFile(f, []byte(y), 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}
	if _, err := runCLI(t, "--config", writeConfig("good.yml", certFile, keyFile), "compose", "list"); err != nil {
		t.Fatalf("compose list with the server's configuration: %v", err)
	}
	if gotAuth != "Bearer r-token" {
		t.Fatalf("sent Authorization %q, want the read token", gotAuth)
	}

	other := filepath.Join(dir, "other")
	if err := os.Mkdir(other, 0o700); err != nil {
		t.Fatal(err)
	}
	otherCert, otherKey := writePair(t, other, 12)
	gotAuth = ""
	_, err = runCLI(t, "--config", writeConfig("other.yml", otherCert, otherKey), "compose", "list")
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("compose list against a server with another certificate: %v, want a certificate error", err)
	}
	if gotAuth != "" {
		t.Fatalf("the token was sent to a server that is not ours")
	}
}

// TestServedIngestTakesItsTokenFromTheServer: with the events token in
// http.token_file (not in the configuration itself), the server's event
// ingestion accepts it, and after a reload only the new one: the
// handler leaves the check to the server's write route, whose tokens are
// the ones read from the file and reloaded.
func TestServedIngestTakesItsTokenFromTheServer(t *testing.T) {
	tokenFile := filepath.Join(t.TempDir(), "events-token")
	if err := os.WriteFile(tokenFile, []byte("w-one\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.State.Dir = t.TempDir()
	cfg.HTTP.TokenFile = tokenFile
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	p, err := newPipeline(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv, closeHTTP, err := p.listenHTTP()
	if err != nil {
		t.Fatal(err)
	}
	defer closeHTTP()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	defer func() { cancel(); <-done }()

	// A body of the wrong type: past the token, the handler refuses it
	// with 415 before producing anything.
	post := func(tok string) int {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL()+"/api/v1/events", strings.NewReader("x"))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "text/plain")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := post("w-one"); got != http.StatusUnsupportedMediaType {
		t.Fatalf("the file's token: %d, want 415 (admitted, then refused for its Content-Type)", got)
	}
	if err := os.WriteFile(tokenFile, []byte("w-two\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p.reloadTokens(srv)
	if got := post("w-two"); got != http.StatusUnsupportedMediaType {
		t.Fatalf("the reloaded token: %d, want 415", got)
	}
	if got := post("w-one"); got != http.StatusForbidden {
		t.Fatalf("the old token after the reload: %d, want 403", got)
	}
}
