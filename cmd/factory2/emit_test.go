package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/factory2/factory2/avro"
	"github.com/factory2/factory2/internal/bus"
	"github.com/factory2/factory2/internal/config"
	"github.com/factory2/factory2/internal/ingest"
	"github.com/factory2/factory2/internal/kafkatest"
	"github.com/factory2/factory2/topics"
)

// evTimeout bounds each command a test runs and each Kafka step.
const evTimeout = 60 * time.Second

// evCLI runs factory2 in-process with args, stdin as its input, and
// returns what it printed on stdout and stderr.
func evCLI(t *testing.T, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), evTimeout)
	defer cancel()
	var out, errb bytes.Buffer
	root := newRoot(strings.NewReader(stdin), &out, &errb)
	root.SetArgs(args)
	err = root.ExecuteContext(ctx)
	return out.String(), errb.String(), err
}

// evEnv is a test's own set of topics (a unique prefix) on some brokers,
// and the config file naming them.
type evEnv struct {
	cfg     config.Config
	cfgPath string
	cat     *topics.Catalog
}

// evConfig writes a config with brokers and a unique topic prefix.
func evConfig(t *testing.T, brokers []string) *evEnv {
	t.Helper()
	cfg := config.Default()
	cfg.Brokers = brokers
	cfg.InstanceID = "test"
	cfg.Topics.Prefix = kafkatest.UniqueName(t) + "."
	cfg.Topics.Partitions = 2
	cfg.Processing.TransactionTimeout = 10 * time.Second
	yaml := fmt.Sprintf("brokers: [%s]\ninstance_id: test\ntopics: {prefix: %q, partitions: 2}\nprocessing: {transaction_timeout: 10s}\n",
		strings.Join(brokers, ", "), cfg.Topics.Prefix)
	path := filepath.Join(t.TempDir(), "factory2.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	cat, err := catalog(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &evEnv{cfg: cfg, cfgPath: path, cat: cat}
}

// evSetup is evConfig plus the catalog's topics, created with `topics
// ensure` and deleted when the test ends.
func evSetup(t *testing.T, brokers []string) *evEnv {
	t.Helper()
	e := evConfig(t, brokers)
	if _, stderr, err := e.run(t, "", "topics", "ensure"); err != nil {
		t.Fatalf("topics ensure: %v\n%s", err, stderr)
	}
	t.Cleanup(func() {
		cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
		if err != nil {
			return
		}
		defer cl.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := kadm.NewClient(cl).DeleteTopics(ctx, topics.Names(e.cat.Specs())...); err != nil {
			t.Logf("deleting topics: %v", err)
		}
	})
	return e
}

// run runs a command with the env's config and brokers.
func (e *evEnv) run(t *testing.T, stdin string, args ...string) (string, string, error) {
	t.Helper()
	args = append(args, "--config", e.cfgPath, "--brokers", strings.Join(e.cfg.Brokers, ","))
	return evCLI(t, stdin, args...)
}

// evLines decodes each line of out.
func evLines[T any](t *testing.T, out string) []T {
	t.Helper()
	var vs []T
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var v T
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		vs = append(vs, v)
	}
	return vs
}

// dryRunLine is a line of emit --dry-run.
type dryRunLine struct {
	Topic string          `json:"topic"`
	Key   string          `json:"key"`
	Event json.RawMessage `json:"event"`
}

func (l dryRunLine) record(t *testing.T) avro.Record {
	t.Helper()
	r, err := avro.UnmarshalJSON(l.Event)
	if err != nil {
		t.Fatalf("event %s: %v", l.Event, err)
	}
	return r
}

// unreachable is a broker address nothing listens on: dry runs must not
// connect.
const unreachable = "127.0.0.1:1"

// busFixtures is internal/bus/testdata (read only).
var busFixtures = filepath.Join("..", "..", "internal", "bus", "testdata")

// TestEmitDryRunBusFixtures runs every bus message fixture through emit
// --message --dry-run: each translates to the events of its golden file,
// routed and keyed; the fixtures internal/bus must refuse are refused,
// naming the field.
func TestEmitDryRunBusFixtures(t *testing.T) {
	bareTopics := map[string]string{
		"bare_resultsdb_koji_build":                "/topic/VirtualTopic.eng.resultsdb.result.new",
		"bare_waiver_new":                          "org.fedoraproject.prod.waiverdb.waiver.new",
		"bare_waiver_old_subject":                  "org.fedoraproject.prod.waiverdb.waiver.new",
		"bare_resultsdb_old_compose_no_compose_id": "org.fedoraproject.prod.taskotron.result.new",
	}
	refused := map[string]string{
		"koji_rpm_sign_no_build":                   `field "build"`,
		"umb_resultsdb_legacy_malformed":           `field "task.type"`,
		"fedmsg_waiver_result_id_only":             `field "subject_identifier"`,
		"bare_resultsdb_old_compose_no_compose_id": `field "task.productmd.compose.id"`,
	}
	files, err := filepath.Glob(filepath.Join(busFixtures, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures in %s: %v", busFixtures, err)
	}
	e := evConfig(t, []string{unreachable})
	inputs := topics.Names(e.cat.ByRole(topics.Input))
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".json")
		t.Run(name, func(t *testing.T) {
			args := []string{"emit", "--message", file, "--dry-run"}
			if topic, ok := bareTopics[name]; ok {
				args = append(args, "--topic", topic)
			}
			stdout, stderr, err := e.run(t, "", args...)
			if want, ok := refused[name]; ok {
				if err == nil || !strings.Contains(err.Error(), want) || stdout != "" {
					t.Fatalf("emit = %v, stdout %q; want a refusal naming %s", err, stdout, want)
				}
				return
			}
			if err != nil {
				t.Fatalf("emit: %v\n%s", err, stderr)
			}
			lines := evLines[dryRunLine](t, stdout)
			golden := readGolden(t, name)
			if len(lines) == 0 || len(lines) != len(golden) {
				t.Fatalf("%d events, golden has %d", len(lines), len(golden))
			}
			for i, l := range lines {
				rec := l.record(t)
				if !slices.Contains(inputs, l.Topic) || l.Key != bus.Key(rec) || l.Key != golden[i].Key {
					t.Errorf("event %d: topic %q key %q (golden key %q)", i, l.Topic, l.Key, golden[i].Key)
				}
				if rec.Env().ID != golden[i].Record.ID || rec.SchemaName() != golden[i].Schema {
					t.Errorf("event %d: %s %s, golden %s %s", i, rec.SchemaName(), rec.Env().ID, golden[i].Schema, golden[i].Record.ID)
				}
			}
			if !strings.Contains(stderr, "nothing was produced") {
				t.Errorf("stderr %q", stderr)
			}
		})
	}
}

type goldenRecord struct {
	Schema string `json:"schema"`
	Key    string `json:"key"`
	Record struct {
		ID string `json:"id"`
	} `json:"record"`
}

func readGolden(t *testing.T, name string) []goldenRecord {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(busFixtures, "golden", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var g []goldenRecord
	if err := json.Unmarshal(data, &g); err != nil {
		t.Fatal(err)
	}
	return g
}

// splitArgs splits a command line as a shell would, for the examples:
// spaces separate, single quotes group.
func splitArgs(s string) []string {
	var args []string
	var cur strings.Builder
	quoted, inArg := false, false
	for _, r := range s {
		switch {
		case r == '\'':
			quoted, inArg = !quoted, true
		case r == ' ' && !quoted:
			if inArg {
				args = append(args, cur.String())
				cur.Reset()
				inArg = false
			}
		default:
			cur.WriteRune(r)
			inArg = true
		}
	}
	if inArg {
		args = append(args, cur.String())
	}
	return args
}

// TestEmitDryRunKinds runs the example of every kind's --help.
func TestEmitDryRunKinds(t *testing.T) {
	e := evConfig(t, []string{unreachable})
	want := map[string]string{
		"build": topics.EventsBuild, "sign": topics.EventsSign, "test_result": topics.EventsTest,
		"waiver": topics.EventsTest, "remote_rule_file": topics.EventsPolicy, "compose": topics.EventsCompose,
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "gating.yaml"), []byte("--- !Policy\nid: test\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, k := range ingest.Kinds() {
		t.Run(k.Name, func(t *testing.T) {
			args := splitArgs(strings.ReplaceAll(k.Example, "gating.yaml", filepath.Join(dir, "gating.yaml")))
			stdout, stderr, err := e.run(t, "", append(args, "--dry-run")...)
			if err != nil {
				t.Fatalf("%v: %v\n%s", args, err, stderr)
			}
			lines := evLines[dryRunLine](t, stdout)
			if len(lines) != 1 || lines[0].Topic != e.cat.Name(want[k.Name]) {
				t.Fatalf("output %s", stdout)
			}
			rec := lines[0].record(t)
			if avro.TypeName(rec) != k.Name || lines[0].Key == "" || !strings.HasPrefix(rec.Env().ID, "sha256:") {
				t.Errorf("event %s", lines[0].Event)
			}
			if f, ok := rec.(*avro.RemoteRuleFile); ok && !strings.Contains(f.Content, "!Policy") {
				t.Errorf("content %q not read from --content-file", f.Content)
			}
			// Flag events have derived ids: the same flags give the same id.
			again, _, err := e.run(t, "", append(args, "--dry-run")...)
			if err != nil || evLines[dryRunLine](t, again)[0].record(t).Env().ID != rec.Env().ID {
				t.Errorf("second run: %v, id differs: %s", err, again)
			}
		})
	}
}

func TestEmitErrors(t *testing.T) {
	e := evConfig(t, []string{unreachable})
	build := `{"type":"build","source":"koji/primary","event_time":"2026-01-01T00:00:00Z","kind":"state_change","nvr":"bash-5.2.26-3.fc41","state":"COMPLETE"}`
	for _, tc := range []struct {
		name  string
		stdin string
		args  []string
		want  []string
	}{
		{"nothing to emit", "", []string{"emit"}, []string{"say what to emit"}},
		{"unknown kind", "", []string{"emit", "bild"}, []string{`unknown kind "bild"`}},
		{"json and message", "", []string{"emit", "--json", "--message"}, []string{"exclude each other"}},
		{"topic without message", build, []string{"emit", "--json", "--topic", "x"}, []string{"--topic is for --message"}},
		{"missing flag", "", []string{"emit", "build", "--state", "COMPLETE", "--source", "s", "--event-time-now"}, []string{"build: --nvr: missing"}},
		{"bad flag value", "", []string{"emit", "build", "--nvr", "a-1-1", "--build-id", "x"}, []string{`--build-id: "x" is not an integer`}},
		{"malformed json", build + "\n{oops\n", []string{"emit", "--json"}, []string{"line 2", "malformed JSON"}},
		{"missing field", build + "\n" + strings.Replace(build, `"nvr":"bash-5.2.26-3.fc41",`, "", 1), []string{"emit", "--json"}, []string{"line 2", `field "nvr": missing`}},
		{"no event time", strings.Replace(build, `"event_time":"2026-01-01T00:00:00Z",`, "", 1), []string{"emit", "--json"}, []string{"line 1", `field "event_time": missing`}},
		{"decision", `{"type":"autosign"}`, []string{"emit", "--json"}, []string{"line 1", "decisions are not accepted"}},
		{"unknown bus topic", `{"topic":"org.fedoraproject.prod.bodhi.update.comment","msg":{"x":1}}`, []string{"emit", "--message"}, []string{"line 1", "unknown topic", "bodhi.update.comment"}},
		{"no events", "\n", []string{"emit", "--json"}, []string{"no events"}},
		{"no file", "", []string{"emit", "--json", filepath.Join(t.TempDir(), "absent.jsonl")}, []string{"no such file"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stdout, _, err := e.run(t, tc.stdin, append(tc.args, "--dry-run")...)
			if err == nil {
				t.Fatalf("no error; stdout %q", stdout)
			}
			if stdout != "" {
				t.Errorf("stdout %q with an error", stdout)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestEmitDefaults(t *testing.T) {
	e := evConfig(t, []string{unreachable})
	line := `{"type":"test_result","subject_type":"koji_build","subject_id":"bash-5.2.26-3.fc41","testcase":"t","outcome":"PASSED"}`
	stdout, stderr, err := e.run(t, line+"\n", "emit", "--json", "-", "--source", "ci", "--event-time-now", "--dry-run")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	r := evLines[dryRunLine](t, stdout)[0].record(t).(*avro.TestResult)
	if r.Source != "ci" || time.Since(r.EventTime) > time.Minute || r.ResultID != r.ID {
		t.Errorf("defaults not applied: %+v", r)
	}
}

// TestEmitWatchRoundTripEmbedded: emit and watch against the embedded
// broker of `factory2 dev`.
func TestEmitWatchRoundTripEmbedded(t *testing.T) {
	evRoundTrip(t, embeddedBroker(t))
}

// TestEmitWatchRoundTripCluster: the same against kafkatest's cluster
// (kfake, or the real broker under make test).
func TestEmitWatchRoundTripCluster(t *testing.T) {
	evRoundTrip(t, kafkatest.Cluster(t).Brokers())
}

// TestEmitWatchRoundTripRealBroker: the same against the real broker,
// which make test always has.
func TestEmitWatchRoundTripRealBroker(t *testing.T) {
	env := kafkatest.RequireReal(t)
	evRoundTrip(t, env.Brokers())
	t.Logf("proved: emit (JSON, flags, bus message) → watch round trip through Apache Kafka at %v, with transactions, read_committed and a consumer group", env.Brokers())
}

// producedLine is a line of emit (without --dry-run).
type producedLine struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	Key       string `json:"key"`
	ID        string `json:"id"`
	Type      string `json:"type"`
}

func evRoundTrip(t *testing.T, brokers []string) {
	e := evSetup(t, brokers)
	var produced []producedLine
	emit := func(stdin string, args ...string) {
		t.Helper()
		stdout, stderr, err := e.run(t, stdin, append([]string{"emit"}, args...)...)
		if err != nil {
			t.Fatalf("emit %v: %v\n%s", args, err, stderr)
		}
		got := evLines[producedLine](t, stdout)
		if len(got) == 0 || !strings.Contains(stderr, "in one transaction") {
			t.Fatalf("emit %v printed %q, %q", args, stdout, stderr)
		}
		produced = append(produced, got...)
	}
	emit(`{"type":"build","source":"koji/primary","event_time":"2026-01-01T00:00:00Z","kind":"state_change","nvr":"bash-5.2.26-3.fc41","state":"COMPLETE"}
{"type":"sign","source":"robosignatory","event_time":"2026-01-01T00:00:01Z","nvr":"bash-5.2.26-3.fc41","sigkey":"a15b79cc","outcome":"signed","artifacts":[{"name":"bash-5.2.26-3.fc41.x86_64.rpm","type":"rpm","arch":"x86_64"}]}
{"type":"compose","source":"pungi","event_time":"2026-01-01T00:00:02Z","kind":"status","compose_id":"Fedora-Rawhide-20260101.n.0","status":"FINISHED"}
`, "--json", "--txn-id", "round-trip")
	emit("", "waiver", "--source", "waiverdb", "--event-time", "2026-01-01T00:00:03Z", "--subject-id", "bash-5.2.26-3.fc41",
		"--testcase", "tier0", "--product-version", "fedora-41")
	emit("", "--message", filepath.Join(busFixtures, "koji_tag.json"))
	if len(produced) != 5 {
		t.Fatalf("produced %d records, want 5", len(produced))
	}
	var ids []string
	for _, p := range produced {
		ids = append(ids, p.ID)
		if spec, ok := e.cat.Lookup(p.Topic); !ok || spec.Role != topics.Input {
			t.Errorf("produced to %q", p.Topic)
		}
	}
	slices.Sort(ids)

	watch := func(args ...string) []watchLine {
		t.Helper()
		stdout, stderr, err := e.run(t, "", append([]string{"watch"}, args...)...)
		if err != nil {
			t.Fatalf("watch %v: %v\n%s", args, err, stderr)
		}
		return evLines[watchLine](t, stdout)
	}
	idsOf := func(lines []watchLine) []string {
		t.Helper()
		var out []string
		for _, l := range lines {
			if l.Error != "" {
				t.Errorf("watch error: %s", l.Error)
				continue
			}
			r, err := avro.UnmarshalJSON(l.Record)
			if err != nil {
				t.Fatalf("record %s: %v", l.Record, err)
			}
			if l.Key != bus.Key(r) {
				t.Errorf("key %q, record's %q", l.Key, bus.Key(r))
			}
			out = append(out, r.Env().ID)
		}
		slices.Sort(out)
		return out
	}

	if got := idsOf(watch("events", "--from-beginning")); !slices.Equal(got, ids) {
		t.Fatalf("watch events saw %v, emitted %v", got, ids)
	}
	if got := watch("events.build", "--from-beginning", "--max", "1"); len(got) != 1 || got[0].Topic != e.cat.Name(topics.EventsBuild) {
		t.Fatalf("watch --max 1: %+v", got)
	}
	if got := watch(e.cat.Name(topics.EventsCompose), "--from-beginning"); len(got) != 1 {
		t.Fatalf("watch by full name: %+v", got)
	}
	if got := watch("decisions", "--from-beginning"); len(got) != 0 {
		t.Fatalf("watch decisions: %+v", got)
	}

	// A group resumes where it left off.
	group := kafkatest.UniqueName(t)
	t.Cleanup(func() {
		cl, err := kgo.NewClient(kgo.SeedBrokers(e.cfg.Brokers...))
		if err != nil {
			return
		}
		defer cl.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _ = kadm.NewClient(cl).DeleteGroup(ctx, group) // best effort
	})
	if got := idsOf(watch("events", "--from-beginning", "--group", group)); !slices.Equal(got, ids) {
		t.Fatalf("first group watch saw %v", got)
	}
	if got := watch("events", "--group", group); len(got) != 0 {
		t.Fatalf("second group watch saw %d records, want none", len(got))
	}

	// --follow waits for a record emitted while it runs. Started from the
	// beginning, it sees the record whether the emit comes before or after
	// it reads the end offsets.
	type result struct {
		stdout string
		err    error
	}
	follow := make(chan result, 1)
	args := []string{"watch", "events", "--from-beginning", "--follow", "--max", "6", "--timeout", evTimeout.String(),
		"--config", e.cfgPath, "--brokers", strings.Join(e.cfg.Brokers, ",")}
	go func() {
		var out, errb bytes.Buffer
		root := newRoot(strings.NewReader(""), &out, &errb)
		root.SetArgs(args)
		err := root.ExecuteContext(context.Background()) // bounded by --timeout
		follow <- result{out.String(), err}
	}()
	emit("", "test_result", "--source", "ci", "--event-time", "2026-01-01T00:00:04Z", "--subject-id", "bash-5.2.26-3.fc41",
		"--testcase", "tier1", "--outcome", "FAILED")
	res := <-follow
	if res.err != nil {
		t.Fatalf("watch --follow: %v", res.err)
	}
	if lines := evLines[watchLine](t, res.stdout); len(lines) != 6 {
		t.Fatalf("watch --follow printed %d records, want 6", len(lines))
	}
}

// TestEmitAllOrNothing: a batch with one bad line produces nothing.
func TestEmitAllOrNothing(t *testing.T) {
	e := evSetup(t, embeddedBroker(t))
	good := `{"type":"build","source":"koji/primary","event_time":"2026-01-01T00:00:00Z","kind":"state_change","nvr":"bash-5.2.26-3.fc41","state":"COMPLETE"}`
	bad := `{"type":"sign","source":"robosignatory","event_time":"2026-01-01T00:00:01Z","nvr":"bash-5.2.26-3.fc41","outcome":"signed"}`
	stdout, _, err := e.run(t, good+"\n"+good+"\n"+bad+"\n", "emit", "--json")
	var ie *ingest.InputError
	if !errors.As(err, &ie) || ie.Line != 3 || ie.Field != "sigkey" {
		t.Fatalf("emit = %v, want an error at line 3, field sigkey", err)
	}
	if stdout != "" {
		t.Errorf("stdout %q", stdout)
	}
	wout, _, err := e.run(t, "", "watch", "events", "--from-beginning")
	if err != nil || wout != "" {
		t.Fatalf("watch after a rejected batch: %v, %q", err, wout)
	}
}

// TestEmitEventTooLarge: an event whose record exceeds
// ingest.max_event_bytes is refused before anything is produced, with
// an error naming it, its size and the setting.
func TestEmitEventTooLarge(t *testing.T) {
	e := evSetup(t, kafkatest.Cluster(t).Brokers())
	f, err := os.OpenFile(e.cfgPath, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("ingest: {max_event_bytes: 1000}\n"); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	good := `{"type":"build","source":"koji/primary","event_time":"2026-01-01T00:00:00Z","kind":"state_change","nvr":"bash-5.2.26-3.fc41","state":"COMPLETE"}`
	big := strings.Replace(good, "koji/primary", strings.Repeat("k", 1500), 1)
	stdout, _, err := e.run(t, good+"\n"+big+"\n", "emit", "--json")
	var tl *ingest.TooLargeError
	if !errors.As(err, &tl) || tl.Index != 2 || tl.Line != 2 || tl.Max != 1000 {
		t.Fatalf("emit = %v, want event 2 on line 2 refused as over 1000 bytes", err)
	}
	for _, w := range []string{"line 2: event 2 (build)", "exceeds the maximum event size of 1000 bytes", "ingest.max_event_bytes"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %q", err, w)
		}
	}
	if stdout != "" {
		t.Errorf("stdout %q", stdout)
	}
	wout, _, err := e.run(t, "", "watch", "events", "--from-beginning")
	if err != nil || wout != "" {
		t.Fatalf("watch after a refused batch: %v, %q", err, wout)
	}
}

// TestEmitComposes: emit composes --dry-run gives one definition event
// per definition of the configuration, keyed by compose id, with source
// factory2/config, the current time and an id of the definition alone;
// without definitions, with an invalid one or with --source it refuses.
func TestEmitComposes(t *testing.T) {
	e := evConfig(t, []string{unreachable})
	appendConfig(t, e.cfgPath, `composes:
  - id: fedora-rawhide
    product_version: fedora-rawhide
    source_tags: [f45]
    signing_key: f577861e
    decision_contexts: [bodhi_update_push_stable]
    cadence: {min_interval: 6h}
  - id: fedora-42-updates
    source_tags: [f42-updates, f42]
    packages_deny: ["*-testsuite"]
    cadence: {window_start: "00:00", window_end: "06:00"}
  - id: fedora-40-updates
    retired: true
`)
	cfg, err := config.Load(e.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	emit := func() []*avro.ComposeEvent {
		t.Helper()
		stdout, stderr, err := e.run(t, "", "emit", "composes", "--dry-run")
		if err != nil {
			t.Fatalf("emit composes: %v\n%s", err, stderr)
		}
		if !strings.Contains(stderr, "3 events (3 to "+e.cat.Name(topics.EventsCompose)+")") {
			t.Errorf("stderr %q", stderr)
		}
		var evs []*avro.ComposeEvent
		for i, l := range evLines[dryRunLine](t, stdout) {
			c, ok := l.record(t).(*avro.ComposeEvent)
			want, _ := cfg.Composes[i].Event()
			switch {
			case !ok || l.Topic != e.cat.Name(topics.EventsCompose) || l.Key != cfg.Composes[i].ID:
				t.Fatalf("line %d: %s to %s key %s", i+1, l.Event, l.Topic, l.Key)
			case c.Kind != avro.ComposeDefinition || c.ComposeID != want.ComposeID || c.ID != want.ID ||
				c.Source != config.DefinitionSource || time.Since(c.EventTime) > time.Minute:
				t.Errorf("line %d: %+v; want %+v at the current time", i+1, c, want)
			}
			evs = append(evs, c)
		}
		if len(evs) != 3 {
			t.Fatalf("%d events, want 3", len(evs))
		}
		return evs
	}
	first := emit()
	if c := first[0]; c.SigningKey != "f577861e" || c.Cadence.MinIntervalMS != 6*3600*1000 || c.DecisionContexts[0] != "bodhi_update_push_stable" {
		t.Errorf("rawhide %+v", c)
	}
	if c := first[1]; c.SourceTags[1] != "f42" || c.PackagesDeny[0] != "*-testsuite" || c.Cadence.WindowEnd != "06:00" {
		t.Errorf("updates %+v", c)
	}
	if !first[2].Retired {
		t.Errorf("retired definition %+v", first[2])
	}
	// The ids are those of the definitions without event time (checked
	// above): emitting again gives them again.
	for i, c := range emit() {
		if c.ID != first[i].ID {
			t.Errorf("definition %d: id %s, first emitted as %s", i, c.ID, first[i].ID)
		}
	}

	for _, tc := range []struct {
		name, config string
		args         []string
		want         string
	}{
		{"no definitions", "", nil, "has no compose definitions"},
		{"invalid definition", "composes:\n  - id: x\n    packages_allow: ['[']\n", nil, `composes[0] (x): source_tags: missing`},
		{"source", "composes:\n  - {id: x, source_tags: [f42]}\n", []string{"--source", "me"}, "--source does not apply"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := evConfig(t, []string{unreachable})
			appendConfig(t, e.cfgPath, tc.config)
			stdout, _, err := e.run(t, "", append([]string{"emit", "composes", "--dry-run"}, tc.args...)...)
			if err == nil || !strings.Contains(err.Error(), tc.want) || stdout != "" {
				t.Fatalf("emit composes = %v, stdout %q; want an error with %q", err, stdout, tc.want)
			}
		})
	}
}

// appendConfig appends YAML to the config file at path.
func appendConfig(t *testing.T, path, yaml string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(yaml); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}
