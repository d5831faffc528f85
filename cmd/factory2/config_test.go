package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/factory2/factory2/internal/config"
	"github.com/factory2/factory2/internal/kafkatest"
	"github.com/factory2/factory2/topics"
)

var exampleConfig = filepath.Join("..", "..", "deploy", "factory2.example.yml")

// TestConfigCheckCommand: config check says a good file has no problems,
// and lists every problem of a bad one, exiting non-zero.
func TestConfigCheckCommand(t *testing.T) {
	_, stderr, err := evCLI(t, "", "config", "check", exampleConfig)
	if err != nil || !strings.Contains(stderr, "factory2.example.yml: no problems: 3 policies, 2 signing rules, 2 composes") {
		t.Errorf("example: %v\n%s", err, stderr)
	}

	bad := filepath.Join("..", "..", "internal", "config", "testdata", "check.bad.yml")
	_, stderr, err = evCLI(t, "", "config", "check", bad)
	if !errors.Is(err, errSilent) {
		t.Errorf("bad file: %v, want errSilent (exit 1, already told)", err)
	}
	for _, w := range []string{
		"check.bad.yml: 9 problems:\n",
		"\n  line 4: unknown key \"partitionz\"; did you mean partitions?\n",
		"\n  line 8: \"many\" is not an integer\n",
		"policies-bad/p.yaml:5: policy \"stable\": unknown subject type \"koji-build\"",
	} {
		if !strings.Contains(stderr, w) {
			t.Errorf("stderr does not have %q:\n%s", w, stderr)
		}
	}

	// --config names the file too; without either, the command says so.
	if _, stderr, err := evCLI(t, "", "config", "check", "--config", exampleConfig); err != nil {
		t.Errorf("--config: %v\n%s", err, stderr)
	}
	if _, _, err := evCLI(t, "", "config", "check"); err == nil || !strings.Contains(err.Error(), "name the file") {
		t.Errorf("no file: %v", err)
	}
}

// TestConfigReferenceCommand: config reference prints the reference of
// the configuration's definition.
func TestConfigReferenceCommand(t *testing.T) {
	stdout, _, err := evCLI(t, "", "config", "reference")
	if err != nil || stdout != config.Reference() {
		t.Errorf("config reference: %v\n%s", err, stdout)
	}
}

// TestExampleConfigServes: the example configuration, as it is but for
// the test's own brokers, topic prefix, state directory and HTTP port,
// runs the processors of serve against the test broker (make kafka-up's
// single broker under make test): its topics are created with its
// replication and partitions, its policies load, and a build whose
// required tests pass gets a satisfied decision for fedora-45.
func TestExampleConfigServes(t *testing.T) {
	env := kafkatest.Cluster(t)
	prefix := kafkatest.UniqueName(t) + "."
	policies, err := filepath.Abs(filepath.Join("..", "..", "deploy", "policies"))
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(exampleConfig)
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	for _, r := range [][2]string{
		{"brokers: [127.0.0.1:29092]", "brokers: [" + strings.Join(env.Brokers(), ", ") + "]"},
		{"prefix: factory2.", "prefix: " + prefix},
		{"dir: data/serve-state", "dir: " + t.TempDir()},
		{"addr: 127.0.0.1:8080", "addr: 127.0.0.1:0"},
		{"policies: [policies]", "policies: [" + policies + "]"},
	} {
		if !strings.Contains(text, r[0]) {
			t.Fatalf("the example no longer has %q", r[0])
		}
		text = strings.Replace(text, r[0], r[1], 1)
	}
	path := filepath.Join(t.TempDir(), "factory2.yml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	p, err := newPipeline(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteTopics(t, cfg.Brokers, topics.Names(p.cat.Specs())) })
	ctx, cancel := context.WithTimeout(t.Context(), evTimeout)
	defer cancel()
	if err := p.ensureTopics(ctx); err != nil {
		t.Fatalf("topics of the example: %v", err)
	}
	srv, closeHTTP, err := p.listenHTTP()
	if err != nil {
		t.Fatal(err)
	}
	defer closeHTTP()
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- p.run(runCtx, srv) }()
	defer func() {
		stop()
		if err := <-done; err != nil && runCtx.Err() == nil {
			t.Errorf("run: %v", err)
		}
	}()

	const nvr = "bash-5.2.37-1.fc45"
	events := `{"type":"build","source":"koji/primary","event_time":"2026-01-02T15:00:00Z","kind":"state_change","nvr":"` + nvr + `","state":"COMPLETE","build_id":1}
{"type":"test_result","source":"resultsdb","event_time":"2026-01-02T15:10:00Z","subject_id":"` + nvr + `","subject_type":"koji_build","testcase":"fedora-ci.koji-build.tier0.functional","outcome":"PASSED"}
{"type":"test_result","source":"resultsdb","event_time":"2026-01-02T15:11:00Z","subject_id":"` + nvr + `","subject_type":"koji_build","testcase":"fedora-ci.koji-build.rpminspect.static-analysis","outcome":"PASSED"}
`
	if _, stderr, err := evCLI(t, events, "emit", "--json", "--config", path); err != nil {
		t.Fatalf("emit: %v\n%s", err, stderr)
	}
	body := `{"decision_context": "bodhi_update_push_stable", "product_version": "fedora-45",
	  "subject_type": "koji_build", "subject_identifier": "` + nvr + `"}`
	var last string
	for backoff := 10 * time.Millisecond; ; backoff = min(2*backoff, 500*time.Millisecond) {
		resp, err := http.Post(srv.URL()+"/api/v1.0/decision", "application/json", strings.NewReader(body))
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			last = fmt.Sprintf("%s %s", resp.Status, b)
			var d struct {
				Satisfied bool     `json:"policies_satisfied"`
				Policies  []string `json:"applicable_policies"`
			}
			if resp.StatusCode == http.StatusOK && json.Unmarshal(b, &d) == nil && d.Satisfied {
				if len(d.Policies) != 1 || d.Policies[0] != "fedora_updates_stable" {
					t.Errorf("applicable policies %v", d.Policies)
				}
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no satisfied decision after %s; last answer: %s", evTimeout, last)
		case <-time.After(backoff):
		}
	}
}

// deleteTopics deletes a test's topics, best effort.
func deleteTopics(t *testing.T, brokers, names []string) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := kadm.NewClient(cl).DeleteTopics(ctx, names...); err != nil {
		t.Logf("deleting topics: %v", err)
	}
}

// TestServeInstanceID: serve's --instance-id, else FACTORY2_INSTANCE_ID,
// overrides the file's instance_id (what a StatefulSet sets from the pod
// name), and is validated like it.
func TestServeInstanceID(t *testing.T) {
	load := func(args ...string) (config.Config, error) {
		t.Helper()
		a := &app{configPath: exampleConfig}
		if err := a.serveCmd().ParseFlags(args); err != nil {
			t.Fatal(err)
		}
		return a.config()
	}
	if cfg, err := load(); err != nil || cfg.InstanceID != "factory2-1" {
		t.Errorf("no flag: instance_id %q, %v; want the file's factory2-1", cfg.InstanceID, err)
	}
	if cfg, err := load("--instance-id", "factory2-2"); err != nil || cfg.InstanceID != "factory2-2" {
		t.Errorf("--instance-id factory2-2: instance_id %q, %v", cfg.InstanceID, err)
	}
	t.Setenv("FACTORY2_INSTANCE_ID", "factory2-7")
	if cfg, err := load(); err != nil || cfg.InstanceID != "factory2-7" {
		t.Errorf("FACTORY2_INSTANCE_ID=factory2-7: instance_id %q, %v", cfg.InstanceID, err)
	}
	if cfg, err := load("--instance-id", "factory2-3"); err != nil || cfg.InstanceID != "factory2-3" {
		t.Errorf("flag and env: instance_id %q, %v; want the flag's", cfg.InstanceID, err)
	}
	if _, err := load("--instance-id", "a/b"); err == nil || !strings.Contains(err.Error(), `instance_id "a/b"`) {
		t.Errorf("--instance-id a/b: %v, want an instance_id error", err)
	}
}
