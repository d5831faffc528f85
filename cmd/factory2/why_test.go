package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/factory2/factory2/avro"
	"github.com/factory2/factory2/internal/bus"
	"github.com/factory2/factory2/processors/compose"
	"github.com/factory2/factory2/processors/gating"
)

func TestWhyPrintsAnswerAndFailsOnError(t *testing.T) {
	var gotQuery string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotQuery = r.URL.RawQuery
		switch r.URL.Path {
		case "/api/v1/why/bash-1-1.fc42":
			w.Write([]byte("koji_build bash-1-1.fc42: SATISFIED\n"))
		default:
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"message":"no event about x has been seen"}`))
		}
	}))
	defer srv.Close()

	var out, errb bytes.Buffer
	root := newRoot(strings.NewReader(""), &out, &errb)
	root.SetArgs([]string{"why", "bash-1-1.fc42", "--url", srv.URL, "--context", "c1", "--product-version", "fedora-42"})
	if err := root.ExecuteContext(context.Background()); err != nil {
		t.Fatal(err)
	}
	if out.String() != "koji_build bash-1-1.fc42: SATISFIED\n" {
		t.Fatalf("stdout %q", out.String())
	}
	if gotQuery != "context=c1&format=text&product_version=fedora-42" {
		t.Fatalf("query %q", gotQuery)
	}
	root = newRoot(strings.NewReader(""), &out, &errb)
	root.SetArgs([]string{"why", "x", "--url", srv.URL})
	err := root.ExecuteContext(context.Background())
	if err == nil || err.Error() != "no event about x has been seen" {
		t.Fatalf("err = %v", err)
	}
}

// whyState is the state a gating processor would hold after events: a
// gating.Getter over the encoded subjects, fed like the processor feeds
// them (apply, gating, autosign).
type whyState map[string][]byte

func (m whyState) Get(_ string, key []byte) ([]byte, bool, error) {
	v, ok := m[string(key)]
	return v, ok, nil
}

func (m whyState) feed(t *testing.T, e *gating.Engine, events ...avro.Record) {
	t.Helper()
	for _, ev := range events {
		key := bus.Key(ev)
		s, err := gating.LoadSubject(m, []byte(key))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Apply(ev); err != nil {
			t.Fatal(err)
		}
		e.Gating(s, ev.Env())
		e.Autosign(s, ev.Env())
		b, err := s.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		m[key] = b
	}
}

// TestWhyExplainsEveryWait: for a build, why prints gating, then autosign
// per signing rule, then the signed status per key, from the real API
// over a state fed like the processor feeds it; --json gives one
// document with the same parts.
func TestWhyExplainsEveryWait(t *testing.T) {
	t.Setenv("FACTORY2_CONFIG", "")
	ps, err := gating.LoadPolicies(map[string][]byte{"p.yaml": []byte(`--- !Policy
id: stable
product_versions: [fedora-*]
decision_context: bodhi_update_push_stable
subject_type: koji_build
rules:
  - !PassingTestCaseRule {test_case_name: tier0}
`)})
	if err != nil {
		t.Fatal(err)
	}
	eng, err := gating.NewEngine(ps, []gating.SigningRule{
		{Name: "f42-build-key", From: "f42-updates-candidate", To: "f42-updates-candidate", Key: "fedora-42-build", KeyID: "e99d6ad1", Priority: 10},
		{Name: "f42-gold", From: "f42-signing-pending", To: "f42-updates-testing-pending", Key: "fedora-42", KeyID: "105ef944",
			RequireContext: "bodhi_update_push_stable", Priority: 20},
	})
	if err != nil {
		t.Fatal(err)
	}
	const nvr = "xz-5.6.3-2.fc42"
	at := time.Date(2026, 11, 2, 12, 0, 0, 0, time.UTC)
	env := func(id string, min int) avro.Envelope {
		return avro.Envelope{ID: id, Source: "koji/primary", EventTime: at.Add(time.Duration(min) * time.Minute)}
	}
	arts := []avro.Artifact{{Name: "xz-5.6.3-2.fc42.src.rpm", Type: "rpm", Arch: "src"}, {Name: "xz-5.6.3-2.fc42.x86_64.rpm", Type: "rpm", Arch: "x86_64"}}
	state := whyState{}
	state.feed(t, eng,
		&avro.BuildEvent{Envelope: env("e1", 1), Kind: avro.BuildStateChange, NVR: nvr, Name: "xz", Version: "5.6.3", Release: "2.fc42", State: avro.StateComplete},
		&avro.BuildEvent{Envelope: env("e1#rpms", 1), Kind: avro.BuildStateChange, NVR: nvr, Name: "xz", Version: "5.6.3", Release: "2.fc42", State: avro.StateComplete, Artifacts: arts},
		&avro.BuildEvent{Envelope: env("e2", 2), Kind: avro.BuildTag, NVR: nvr, Tag: "f42-updates-candidate"},
		&avro.BuildEvent{Envelope: env("e3", 3), Kind: avro.BuildTag, NVR: nvr, Tag: "f42-signing-pending"},
		&avro.SignEvent{Envelope: env("e4", 4), NVR: nvr, SigKey: "e99d6ad1", Artifacts: arts[:1], Outcome: avro.SignSigned},
		&avro.TestResult{Envelope: env("e5", 5), ResultID: "5", SubjectType: "koji_build", SubjectID: nvr, Testcase: "tier0", Outcome: avro.OutcomeFailed},
	)
	mux := http.NewServeMux()
	api := gating.NewAPI(eng, state)
	api.Register(mux)
	api.RegisterSigning(mux)
	srv := httptest.NewServer(mux) // the compose API answers 404
	defer srv.Close()

	out, err := runCLI(t, "why", nvr, "--url", srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"koji_build xz-5.6.3-2.fc42: bodhi_update_push_stable @ fedora-42",
		"  NOT SATISFIED: Of 1 required test, 1 test failed\n",
		"\n\nautosign xz-5.6.3-2.fc42: rule f42-gold (key fedora-42 105ef944; f42-signing-pending → f42-updates-testing-pending; after bodhi_update_push_stable)\n" +
			"  WAITING for: context-satisfied bodhi_update_push_stable\n",
		"autosign xz-5.6.3-2.fc42: rule f42-build-key (key fedora-42-build e99d6ad1; f42-updates-candidate, no move)\n" +
			"  SIGN REQUESTED: decision ",
		"  · unsigned with e99d6ad1: 1 of 2 artifacts: xz-5.6.3-2.fc42.x86_64.rpm\n",
		"signed xz-5.6.3-2.fc42: key 105ef944 (rules f42-gold)\n  NOT SIGNED: 2 of 2 artifacts lack the key\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("why lacks %q:\n%s", want, out)
		}
	}

	out, err = runCLI(t, "why", nvr, "--url", srv.URL, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Subject   string                `json:"subject"`
		Compose   json.RawMessage       `json:"compose"`
		Decisions []map[string]any      `json:"decisions"`
		Signing   *gating.SigningReport `json:"signing"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("--json: %v\n%s", err, out)
	}
	if doc.Subject != nvr || doc.Compose != nil || len(doc.Decisions) != 1 || doc.Signing == nil ||
		len(doc.Signing.Rules) != 2 || doc.Signing.Rules[0].Status != gating.RuleWaiting ||
		doc.Signing.Rules[1].Status != gating.RuleRequested || !doc.Signing.ArtifactList {
		t.Fatalf("--json:\n%s", out)
	}
}

// TestWhyComposeWhileGatingRestores: a compose the compose table knows is
// shown even when gating cannot answer now (its partition restoring);
// stderr says why gating is missing.
func TestWhyComposeWhileGatingRestores(t *testing.T) {
	t.Setenv("FACTORY2_CONFIG", "")
	ready := true
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/api/v1/composes/f42":
			json.NewEncoder(w).Encode(compose.Status{Overview: compose.Overview{ComposeID: "f42", Ready: &ready, Members: 1}})
		default:
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte(`{"message":"processors: the key's partition is still being restored (partition 1)"}`))
		}
	}))
	defer srv.Close()
	var out, errb bytes.Buffer
	root := newRoot(strings.NewReader(""), &out, &errb)
	root.SetArgs([]string{"why", "f42", "--url", srv.URL})
	if err := root.ExecuteContext(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "compose f42: READY\n") ||
		errb.String() != "why: gating cannot answer about f42 now: processors: the key's partition is still being restored (partition 1)\n" {
		t.Fatalf("stdout %q\nstderr %q", out.String(), errb.String())
	}
}
