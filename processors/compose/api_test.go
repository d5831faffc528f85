package compose_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/factory2/factory2/avro"
	"github.com/factory2/factory2/internal/kafkatest"
	"github.com/factory2/factory2/processors/compose"
)

// get asks srv for path and decodes the JSON answer into v; it returns
// the status and the answer's message (on errors).
func get(t *testing.T, srv *httptest.Server, path string, v any) (int, http.Header, string) {
	t.Helper()
	resp, err := srv.Client().Get(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s: Content-Type %q", path, ct)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct{ Message string }
		if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, resp.Header, e.Message
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, ""
}

func serve(tbl *compose.Table) *httptest.Server {
	mux := http.NewServeMux()
	compose.NewAPI(tbl).Register(mux)
	return httptest.NewServer(mux)
}

// TestAPIAnswersFromTheTable: the list and the single compose, the
// manifest left out on request, 404 for an unknown compose, 400 for a
// bad parameter.
func TestAPIAnswersFromTheTable(t *testing.T) {
	env := kafkatest.Cluster(t)
	l := newDecisionLog(t, env, 2)
	l.commit(
		l.readiness("f42", "d1", 2),
		l.ready("f42", "d1", "bash-5.2-1.fc42", "curl-8.0-1.fc42"),
		l.readiness("f43", "e1", 3,
			blocker(compose.ReqUnsigned, "bash-5.3-1.fc43", "not signed with key key43"),
			blocker(compose.ReqGatingWait, "curl-8.1-1.fc43", "ctx: 1 of 1 required test results missing")),
		l.gate("Fedora-43-20261102.0", avro.ComposeFinishedIncomplete, true),
	)
	tbl := startTable(t, l, nil)
	waitLoaded(t, tbl, 3)
	srv := serve(tbl)
	defer srv.Close()

	var list struct{ Composes []compose.Overview }
	if code, _, msg := get(t, srv, "/api/v1/composes", &list); code != http.StatusOK {
		t.Fatalf("list: %d %s", code, msg)
	}
	if len(list.Composes) != 3 {
		t.Fatalf("list: %+v", list)
	}
	f43 := list.Composes[2]
	if f43.ComposeID != "f43" || f43.Ready == nil || *f43.Ready || f43.Members != 3 ||
		len(f43.BlockerCounts) != 2 || f43.BlockerCounts[0].Type != compose.ReqUnsigned ||
		f43.LastDecision.Kind != avro.ComposeReadiness || f43.LastDecision.ID == "" || f43.LastDecision.Time.IsZero() {
		t.Fatalf("f43 in the list: %+v", f43)
	}
	if g := list.Composes[0].Gate; g == nil || !g.Passed || g.Status != avro.ComposeFinishedIncomplete {
		t.Fatalf("the Pungi compose's gate: %+v", list.Composes[0])
	}

	var s compose.Status
	if code, _, msg := get(t, srv, "/api/v1/composes/f43", &s); code != http.StatusOK {
		t.Fatalf("f43: %d %s", code, msg)
	}
	if len(s.Blockers) != 2 || s.Blockers[0].SubjectID != "bash-5.3-1.fc43" || s.Blockers[0].Detail == "" ||
		s.ProductVersion != "fedora-42" || s.DecisionContext != "ctx" || s.LastReady != nil {
		t.Fatalf("f43: %+v", s)
	}
	s = compose.Status{}
	if code, _, msg := get(t, srv, "/api/v1/composes/f42", &s); code != http.StatusOK {
		t.Fatalf("f42: %d %s", code, msg)
	}
	if s.LastReady == nil || !s.LastReady.Current || len(s.LastReady.Manifest) != 2 || s.LastReady.Manifest[0].KeyID != "key42" {
		t.Fatalf("f42's compose-ready: %+v", s.LastReady)
	}
	s = compose.Status{}
	get(t, srv, "/api/v1/composes/f42?manifest=false", &s)
	if s.LastReady == nil || s.LastReady.Manifest != nil || s.LastReady.ManifestEntries != 2 {
		t.Fatalf("f42 without the manifest: %+v", s.LastReady)
	}

	if code, _, msg := get(t, srv, "/api/v1/composes/f44", nil); code != http.StatusNotFound ||
		msg != `compose: unknown compose "f44": no decision about it has been seen (3 composes are known)` {
		t.Fatalf("unknown compose: %d %q", code, msg)
	}
	if code, _, msg := get(t, srv, "/api/v1/composes/f42?manifest=some", nil); code != http.StatusBadRequest || !strings.Contains(msg, "manifest") {
		t.Fatalf("bad parameter: %d %q", code, msg)
	}
}

// TestAPIWhileLoading: 503 with Retry-After and the progress, never a
// partial answer.
func TestAPIWhileLoading(t *testing.T) {
	t.Setenv(kafkatest.EnvBrokers, "") // fault injection needs kfake
	env := kafkatest.Cluster(t)
	fake := env.Fake()
	l := newDecisionLog(t, env, 1)
	l.commit(l.readiness("f42", "d1", 2), l.readiness("f43", "e1", 1))
	var blocked atomic.Bool
	blocked.Store(true)
	fake.ControlKey(int16(kmsg.Fetch), func(kmsg.Request) (kmsg.Response, error, bool) {
		if !blocked.Load() {
			return nil, nil, false
		}
		fake.KeepControl()
		return nil, errors.New("fetch refused by the test"), true
	})
	tbl := startTable(t, l, nil)
	srv := serve(tbl)
	defer srv.Close()
	want := "loading compose table: 0 of 3 records"
	for _, path := range []string{"/api/v1/composes", "/api/v1/composes/f42"} {
		kafkatest.WaitFor(t, tableWait, func() error {
			code, hdr, msg := get(t, srv, path, nil)
			if code != http.StatusServiceUnavailable || hdr.Get("Retry-After") == "" || msg != want {
				return fmt.Errorf("%s: %d %q (Retry-After %q), want 503 %q", path, code, msg, hdr.Get("Retry-After"), want)
			}
			return nil
		})
	}
	blocked.Store(false)
	kafkatest.WaitFor(t, tableWait, func() error {
		var list struct{ Composes []compose.Overview }
		if code, _, msg := get(t, srv, "/api/v1/composes", &list); code != http.StatusOK {
			return fmt.Errorf("%d %s", code, msg)
		}
		if len(list.Composes) != 2 {
			return fmt.Errorf("%d composes", len(list.Composes))
		}
		return nil
	})
}

func exampleStatus() *compose.Status {
	notReady := false
	at := time.Date(2026, 11, 2, 12, 0, 5, 0, time.UTC)
	return &compose.Status{
		Overview: compose.Overview{
			ComposeID: "f42", Ready: &notReady, Members: 120,
			BlockerCounts: []avro.BlockerCount{{Type: compose.ReqUnsigned, Count: 1}, {Type: compose.ReqGatingFail, Count: 1}},
			Summary:       "not ready: 2 of 120 builds blocked (1 build-unsigned, 1 gating-failed)",
			LastDecision:  compose.DecisionRef{Kind: avro.ComposeReadiness, ID: "4f1c", Time: at, Summary: "not ready: 2 of 120 builds blocked (1 build-unsigned, 1 gating-failed)"},
		},
		ProductVersion: "fedora-42", DecisionContext: "bodhi_update_push_stable",
		Blockers: []avro.Requirement{
			{Type: compose.ReqUnsigned, SubjectType: "koji_build", SubjectID: "bash-5.2.37-1.fc42", Detail: "not signed with key fedora-42"},
			{Type: compose.ReqGatingFail, SubjectType: "koji_build", SubjectID: "xz-5.6.3-2.fc42", Detail: "bodhi_update_push_stable: 1 of 1 required tests failed"},
		},
		LastReady: &compose.ReadyView{
			DecisionRef:   compose.DecisionRef{Kind: avro.ComposeReady, ID: "9a0b", Time: at.Add(-time.Hour)},
			ContentDigest: "c0ffee", Members: 119, ManifestEntries: 119,
		},
	}
}

func ExampleStatus_WriteText() {
	_ = exampleStatus().WriteText(os.Stdout)
	// Output:
	// compose f42: NOT READY
	//   summary:             not ready: 2 of 120 builds blocked (1 build-unsigned, 1 gating-failed)
	//   members:             120
	//   blockers:            1 build-unsigned, 1 gating-failed
	//   requires:            product version fedora-42; gating in bodhi_update_push_stable
	//   last decision:       readiness at 2026-11-02T12:00:05Z: not ready: 2 of 120 builds blocked (1 build-unsigned, 1 gating-failed) (id 4f1c)
	//   last compose-ready:  2026-11-02T11:00:05Z: 119 builds, manifest of 119 entries, the content has changed since (id 9a0b)
	//   blocked by (listed by the latest readiness decision):
	//     build-unsigned  bash-5.2.37-1.fc42  not signed with key fedora-42
	//     gating-failed   xz-5.6.3-2.fc42     bodhi_update_push_stable: 1 of 1 required tests failed
}

func ExampleWriteOverviewText() {
	ready := true
	s := exampleStatus()
	_ = compose.WriteOverviewText(os.Stdout, []compose.Overview{
		{ComposeID: "Fedora-42-20261102.0", LastDecision: compose.DecisionRef{Kind: avro.ComposeGate, Time: s.LastDecision.Time},
			Gate: &compose.GateView{Status: avro.ComposeFinished, Passed: true}},
		s.Overview,
		{ComposeID: "f43", Ready: &ready, Members: 80, LastDecision: compose.DecisionRef{Kind: avro.ComposeReady, Time: s.LastDecision.Time}},
	})
	// Output:
	// COMPOSE               READINESS  MEMBERS  BLOCKERS                           GATE             LAST DECISION
	// Fedora-42-20261102.0  -          -        none                               FINISHED passed  gate 2026-11-02T12:00:05Z
	// f42                   NOT READY  120      1 build-unsigned, 1 gating-failed  -                readiness 2026-11-02T12:00:05Z
	// f43                   READY      80       none                               -                ready 2026-11-02T12:00:05Z
}
