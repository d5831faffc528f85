package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/factory2/factory2/avro"
	"github.com/factory2/factory2/processors/compose"
)

// composeServer answers the compose API for compose f42 (404 for any
// other) and the why API for anything, recording the requests.
type composeServer struct {
	*httptest.Server
	status compose.Status

	mu       sync.Mutex
	requests []string
}

// asked returns the requests so far.
func (s *composeServer) asked() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

func newComposeServer(t *testing.T) *composeServer {
	t.Helper()
	t.Setenv("FACTORY2_CONFIG", "")
	notReady := false
	at := time.Date(2026, 11, 2, 12, 0, 5, 0, time.UTC)
	s := &composeServer{status: compose.Status{
		Overview: compose.Overview{
			ComposeID: "f42", Ready: &notReady, Members: 2,
			BlockerCounts: []avro.BlockerCount{{Type: compose.ReqUnsigned, Count: 1}},
			Summary:       "not ready: 1 of 2 builds blocked (1 build-unsigned)",
			LastDecision:  compose.DecisionRef{Kind: avro.ComposeReadiness, ID: "r1", Time: at, Summary: "not ready: 1 of 2 builds blocked (1 build-unsigned)"},
		},
		Blockers: []avro.Requirement{{Type: compose.ReqUnsigned, SubjectType: "koji_build", SubjectID: "bash-5.2-1.fc42", Detail: "not signed with key key42"}},
		LastReady: &compose.ReadyView{
			DecisionRef:   compose.DecisionRef{Kind: avro.ComposeReady, ID: "c1", Time: at.Add(-time.Hour)},
			ContentDigest: "c0ffee", Members: 1, ManifestEntries: 1,
			Manifest: []avro.ManifestEntry{{NVR: "curl-8.0-1.fc42", Package: "curl", KeyID: "key42", DecisionIDs: []string{"g1"}}},
		},
	}}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.requests = append(s.requests, r.URL.RequestURI())
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.URL.Path == "/api/v1/composes/f42":
			st := s.status
			if r.URL.Query().Get("manifest") == "false" {
				lr := *st.LastReady
				lr.Manifest = nil
				st.LastReady = &lr
			}
			json.NewEncoder(w).Encode(st)
		case r.URL.Path == "/api/v1/composes":
			json.NewEncoder(w).Encode(map[string]any{"composes": []compose.Overview{s.status.Overview}})
		case strings.HasPrefix(r.URL.Path, "/api/v1/composes/"):
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"message":"compose: unknown compose"}`))
		case strings.HasPrefix(r.URL.Path, "/api/v1/why/") && strings.HasSuffix(r.URL.Path, "/signing"):
			w.Header().Set("Content-Type", "text/plain")
			w.Write([]byte("signed " + strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/api/v1/why/"), "/signing") + ": SIGNED\n"))
		case strings.HasPrefix(r.URL.Path, "/api/v1/why/"):
			w.Header().Set("Content-Type", "text/plain")
			w.Write([]byte("koji_build " + strings.TrimPrefix(r.URL.Path, "/api/v1/why/") + ": SATISFIED\n"))
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	t.Cleanup(s.Close)
	return s
}

func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	root := newRoot(strings.NewReader(""), &out, &errb)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

// TestComposeStatusAndList: the text views, without fetching the
// manifest; --json prints the API's answer as it is.
func TestComposeStatusAndList(t *testing.T) {
	srv := newComposeServer(t)
	out, err := runCLI(t, "compose", "status", "f42", "--url", srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	var want strings.Builder
	st := srv.status
	lr := *st.LastReady
	lr.Manifest = nil
	st.LastReady = &lr
	if err := st.WriteText(&want); err != nil {
		t.Fatal(err)
	}
	if out != want.String() {
		t.Fatalf("status:\n%s\nwant\n%s", out, want.String())
	}
	for _, line := range []string{"compose f42: NOT READY", "build-unsigned  bash-5.2-1.fc42  not signed with key key42", "manifest of 1 entries"} {
		if !strings.Contains(out, line) {
			t.Errorf("status lacks %q:\n%s", line, out)
		}
	}
	if req := srv.asked(); req[len(req)-1] != "/api/v1/composes/f42?manifest=false" {
		t.Errorf("text status asked %s", req[len(req)-1])
	}

	out, err = runCLI(t, "compose", "status", "f42", "--url", srv.URL, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var got compose.Status
	if err := json.Unmarshal([]byte(out), &got); err != nil || len(got.LastReady.Manifest) != 1 {
		t.Fatalf("--json: %v\n%s", err, out)
	}

	if _, err := runCLI(t, "compose", "status", "f43", "--url", srv.URL); err == nil || err.Error() != "compose: unknown compose" {
		t.Fatalf("unknown compose: %v", err)
	}

	out, err = runCLI(t, "compose", "list", "--url", srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out, "COMPOSE") || !strings.Contains(out, "f42      NOT READY  2        1 build-unsigned  -     readiness 2026-11-02T12:00:05Z") {
		t.Fatalf("list:\n%s", out)
	}
}

// TestWhyShowsACompose: why on a compose id prints the compose's status
// (and gating's decisions about the compose, when gating knows it); on
// anything else (404 from the compose API) it asks gating, then signing.
func TestWhyShowsACompose(t *testing.T) {
	srv := newComposeServer(t)
	out, err := runCLI(t, "why", "f42", "--url", srv.URL)
	if err != nil || !strings.HasPrefix(out, "compose f42: NOT READY\n") || !strings.Contains(out, "\n\nkoji_build f42: SATISFIED\n") {
		t.Fatalf("why f42: %v\n%s", err, out)
	}
	out, err = runCLI(t, "why", "bash-5.2-1.fc42", "--url", srv.URL)
	if err != nil || out != "koji_build bash-5.2-1.fc42: SATISFIED\n\nsigned bash-5.2-1.fc42: SIGNED\n" {
		t.Fatalf("why on a build: %v %q", err, out)
	}
	req := srv.asked()
	if n := len(req); n < 3 || req[n-3] != "/api/v1/composes/bash-5.2-1.fc42?manifest=false" ||
		req[n-2] != "/api/v1/why/bash-5.2-1.fc42?format=text" || req[n-1] != "/api/v1/why/bash-5.2-1.fc42/signing?format=text" {
		t.Fatalf("requests %v", req)
	}
}

// TestAPICommandsUseTheConfigsHTTPAddress: without --url, why and
// compose ask the http.addr of --config; a server listening on every
// interface is asked on the loopback one.
func TestAPICommandsUseTheConfigsHTTPAddress(t *testing.T) {
	srv := newComposeServer(t)
	port := srv.URL[strings.LastIndex(srv.URL, ":")+1:]
	path := filepath.Join(t.TempDir(), "factory2.yaml")
	if err := os.WriteFile(path, []byte("http:\n  addr: 0.0.0.0:"+port+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := runCLI(t, "--config", path, "compose", "status", "f42"); err != nil || !strings.HasPrefix(out, "compose f42:") {
		t.Fatalf("compose status with --config: %v\n%s", err, out)
	}
	if out, err := runCLI(t, "--config", path, "why", "xz-5.6-1.fc42"); err != nil || !strings.Contains(out, "SATISFIED") {
		t.Fatalf("why with --config: %v\n%s", err, out)
	}
	for listen, want := range map[string]string{
		"0.0.0.0:8080":   "127.0.0.1:8080",
		":8080":          "127.0.0.1:8080",
		"[::]:8080":      "[::1]:8080",
		"10.0.0.1:9000":  "10.0.0.1:9000",
		"localhost:8080": "localhost:8080",
	} {
		if got := dialAddr(listen); got != want {
			t.Errorf("dialAddr(%q) = %q, want %q", listen, got, want)
		}
	}
}
