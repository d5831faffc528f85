package compose_test

// End-to-end tests on the real broker: the gating, compose-members and
// compose processors run on the runtime, fed build, sign, tag and test
// events the way the hooks send them; the compose decisions are read back
// read_committed and compared with a re-derivation from the log.

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/factory2/factory2/avro"
	"github.com/factory2/factory2/internal/ingest"
	"github.com/factory2/factory2/internal/kafkatest"
	"github.com/factory2/factory2/processors"
	"github.com/factory2/factory2/processors/compose"
	"github.com/factory2/factory2/processors/gating"
	"github.com/factory2/factory2/topics"
)

const (
	envChild         = "FACTORY2_COMPOSE_CHILD"
	envChildBrokers  = "FACTORY2_COMPOSE_CHILD_BROKERS"
	envChildPrefix   = "FACTORY2_COMPOSE_CHILD_PREFIX"
	envChildStateDir = "FACTORY2_COMPOSE_CHILD_STATE"
)

// TestMain runs the tests, or in a child started by a kill -9 test the
// three processors until SIGKILL or SIGTERM.
func TestMain(m *testing.M) {
	if os.Getenv(envChild) == "1" {
		os.Exit(runChild())
	}
	os.Exit(m.Run())
}

const policy = `
--- !Policy
id: f42-updates
product_versions: [fedora-42]
decision_context: bodhi_update_push_stable
subject_type: koji_build
rules:
  - !PassingTestCaseRule {test_case_name: dist.rpmdeplint}
`

var rule = gating.SigningRule{Name: "f42", From: "f42-signing-pending", To: "f42-updates", Key: "fedora-42", KeyID: "105ef944"}

const composeID = "fedora-42-updates"

func engine() (*gating.Engine, error) {
	ps, err := gating.LoadPolicies(map[string][]byte{"policy.yaml": []byte(policy)})
	if err != nil {
		return nil, err
	}
	return gating.NewEngine(ps, []gating.SigningRule{rule})
}

func catalog(prefix string) (*topics.Catalog, error) {
	return topics.New(topics.Config{Prefix: prefix, Partitions: 3, Replication: 1, InputRetentionMS: -1, DecisionRetentionMS: -1})
}

func specs(cat *topics.Catalog, e *gating.Engine) []processors.Spec {
	return []processors.Spec{gating.Spec(cat, e), compose.MembersSpec(cat), compose.Spec(cat)}
}

func runnerConfig(brokers []string, cat *topics.Catalog, codec *avro.Codec, dir string, log *slog.Logger) processors.Config {
	return processors.Config{
		Brokers:            brokers,
		InstanceID:         "a",
		Catalog:            cat,
		Codec:              codec,
		StateDir:           dir,
		CommitInterval:     50 * time.Millisecond,
		SessionTimeout:     6 * time.Second,
		TransactionTimeout: 10 * time.Second,
		Logger:             log,
	}
}

// runAll runs the runners of specs until ctx is done and returns the
// first error.
func runAll(ctx context.Context, specs []processors.Spec, cfg processors.Config) error {
	errs := make(chan error, len(specs))
	for _, s := range specs {
		r, err := processors.NewRunner(s, cfg)
		if err != nil {
			return err
		}
		go func() { errs <- r.Run(ctx) }()
	}
	var first error
	for range specs {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

func runChild() int {
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	cat, err := catalog(os.Getenv(envChildPrefix))
	if err == nil {
		var e *gating.Engine
		if e, err = engine(); err == nil {
			var codec *avro.Codec
			if codec, err = avro.NewCodec(); err == nil {
				ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
				defer stop()
				err = runAll(ctx, specs(cat, e), runnerConfig(strings.Split(os.Getenv(envChildBrokers), ","), cat, codec, os.Getenv(envChildStateDir), log))
			}
		}
	}
	if err != nil {
		log.Error("child failed", "err", err)
		return 1
	}
	return 0
}

// fixture is one test's topics and producer.
type fixture struct {
	t      *testing.T
	env    *kafkatest.Env
	prefix string
	cat    *topics.Catalog
	codec  *avro.Codec
	specs  []processors.Spec
	prod   *ingest.Producer
	clock  time.Time
	seq    int
}

func newFixture(t *testing.T) *fixture {
	env := kafkatest.RequireReal(t)
	f := &fixture{t: t, env: env, prefix: kafkatest.UniqueName(t) + ".", clock: time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)}
	var err error
	if f.cat, err = catalog(f.prefix); err != nil {
		t.Fatal(err)
	}
	e, err := engine()
	if err != nil {
		t.Fatal(err)
	}
	if f.codec, err = avro.NewCodec(); err != nil {
		t.Fatal(err)
	}
	f.specs = specs(f.cat, e)
	// Runners add their changelogs to the catalog: create them all.
	for _, s := range f.specs {
		if _, err := processors.NewRunner(s, f.config(t.TempDir())); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	if _, err := f.cat.Ensure(ctx, kafkatest.Client(t, env)); err != nil {
		t.Fatal(err)
	}
	f.prod, err = ingest.NewProducer(ingest.ProducerConfig{Brokers: env.Brokers(), TransactionalID: f.prefix + "hooks", Codec: f.codec})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.prod.Close)
	return f
}

func (f *fixture) config(dir string) processors.Config {
	return runnerConfig(f.env.Brokers(), f.cat, f.codec, dir, slog.New(slog.NewTextHandler(testWriter{f.t}, &slog.HandlerOptions{Level: slog.LevelWarn})))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// run runs the processors in this process until the returned stop.
func (f *fixture) run(dir string) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runAll(ctx, f.specs, f.config(dir)) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			f.t.Errorf("processors: %v", err)
		}
	}
}

func (f *fixture) env0(source string) avro.Envelope {
	f.seq++
	f.clock = f.clock.Add(time.Second)
	return avro.Envelope{ID: fmt.Sprintf("%s-%d", source, f.seq), Source: source, EventTime: f.clock}
}

// send produces recs in one transaction.
func (f *fixture) send(recs ...avro.Record) {
	f.t.Helper()
	parser := &ingest.Parser{Catalog: f.cat}
	evs, err := parser.Records(recs...)
	if err != nil {
		f.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := f.prod.Produce(ctx, evs); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) definition() *avro.ComposeEvent {
	return &avro.ComposeEvent{Envelope: f.env0("factory2/config"), Kind: avro.ComposeDefinition, ComposeID: composeID,
		ProductVersion: "fedora-42", SourceTags: []string{"f42-updates"}, SigningKey: rule.KeyID,
		DecisionContexts: []string{"bodhi_update_push_stable"}}
}

// lifecycle is a build's events: complete, tagged for signing, signed,
// moved by the signer, tested with outcome.
func (f *fixture) lifecycle(nvr, outcome string) []avro.Record {
	parts := strings.SplitN(nvr, "-", 3)
	rpm := avro.Artifact{ID: "1", Name: nvr + ".src.rpm", Type: "rpm", Arch: "src"}
	return []avro.Record{
		&avro.BuildEvent{Envelope: f.env0("koji"), Kind: avro.BuildStateChange, NVR: nvr,
			Name: parts[0], Version: parts[1], Release: parts[2], State: avro.StateComplete,
			Artifacts: []avro.Artifact{rpm}},
		&avro.BuildEvent{Envelope: f.env0("koji"), Kind: avro.BuildTag, NVR: nvr, Tag: rule.From, State: avro.StateComplete},
		&avro.SignEvent{Envelope: f.env0("koji"), NVR: nvr, SigKey: rule.KeyID, Artifacts: []avro.Artifact{rpm}, Outcome: avro.SignSigned},
		&avro.BuildEvent{Envelope: f.env0("koji"), Kind: avro.BuildTag, NVR: nvr, Tag: rule.To, State: avro.StateComplete},
		&avro.BuildEvent{Envelope: f.env0("koji"), Kind: avro.BuildUntag, NVR: nvr, Tag: rule.From, State: avro.StateComplete},
		&avro.TestResult{Envelope: f.env0("resultsdb"), ResultID: fmt.Sprint(f.seq), Testcase: "dist.rpmdeplint", Outcome: outcome,
			SubjectType: "koji_build", SubjectID: nvr},
	}
}

// passing is the lifecycles of nvrs, each build passing its test.
func (f *fixture) passing(nvrs []string) []avro.Record {
	var evs []avro.Record
	for _, nvr := range nvrs {
		evs = append(evs, f.lifecycle(nvr, avro.OutcomePassed)...)
	}
	return evs
}

// decisions reads the compose decisions, in log order per compose.
func (f *fixture) decisions() []*avro.ComposeReadyDecision {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	recs, err := processors.ReadCommitted(ctx, f.env.Brokers(), []string{f.cat.Name(topics.DecisionsComposeReady)})
	if err != nil {
		f.t.Fatal(err)
	}
	var out []*avro.ComposeReadyDecision
	for _, r := range recs {
		v, err := f.codec.Decode(r.Value)
		if err != nil {
			f.t.Fatal(err)
		}
		if d := v.(*avro.ComposeReadyDecision); d.ComposeID == composeID {
			out = append(out, d)
		}
	}
	return out
}

// waitFor waits until the last compose decision satisfies ok.
func (f *fixture) waitFor(what string, ok func(*avro.ComposeReadyDecision) bool) *avro.ComposeReadyDecision {
	f.t.Helper()
	var last *avro.ComposeReadyDecision
	kafkatest.WaitFor(f.t, 90*time.Second, func() error {
		ds := f.decisions()
		if len(ds) == 0 {
			return fmt.Errorf("no compose decision yet, waiting for %s", what)
		}
		if last = ds[len(ds)-1]; !ok(last) {
			return fmt.Errorf("waiting for %s; last decision: %s %v %s", what, last.Kind, last.Ready, last.Summary)
		}
		return nil
	})
	return last
}

// checkReplay re-derives the two compose processors from the log and
// requires the same outputs, in the same order, as the live run.
func (f *fixture) checkReplay() {
	f.t.Helper()
	f.checkReplayOf(f.specs[1:])
}

// checkReplayOf is checkReplay for the processors of specs.
func (f *fixture) checkReplayOf(specs []processors.Spec) {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	for _, s := range specs {
		red, err := processors.Rederive(ctx, s, f.config(f.t.TempDir()), f.t.TempDir(), nil, nil)
		if err != nil {
			f.t.Fatal(err)
		}
		if red.DeadLetters != 0 {
			f.t.Errorf("%s: the replay dead-letters %d records", s.Name, red.DeadLetters)
		}
		diff, err := processors.Diff(ctx, f.config(f.t.TempDir()), red.Outputs, s.Outputs)
		if err != nil {
			f.t.Fatal(err)
		}
		if len(diff) != 0 {
			f.t.Errorf("%s: the replay differs from the live history in %d records: %+v", s.Name, len(diff), diff[:min(len(diff), 5)])
		}
		if s.Name != compose.Name {
			continue
		}
		// The compose's decisions, in order.
		var want, got []string
		for _, o := range red.Outputs {
			if d, ok := o.Record.(*avro.ComposeReadyDecision); ok && d.ComposeID == composeID {
				want = append(want, d.ID)
			}
		}
		for _, d := range f.decisions() {
			got = append(got, d.ID)
		}
		if !slices.Equal(got, want) {
			f.t.Errorf("the live decisions (%d) are not the replay's (%d) in the same order", len(got), len(want))
		}
	}
}

func nvrs(n int, release string) []string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf("pkg%02d-1.0-%s.fc42", i, release))
	}
	return out
}

// TestComposeReadyEndToEnd: a compose of 12 packages is ready exactly
// once, when its last build is signed and gated and the build that fails
// gating has been untagged; a newer build of a package replaces the
// older in the content; the decisions name the right blockers on the
// way; and a replay from the log reproduces every compose decision.
func TestComposeReadyEndToEnd(t *testing.T) {
	f := newFixture(t)
	stop := f.run(t.TempDir())
	defer func() {
		if stop != nil {
			stop()
		}
	}()
	f.send(f.definition())
	f.waitFor("the empty compose loaded", func(d *avro.ComposeReadyDecision) bool {
		return d.Kind == avro.ComposeReadiness && len(d.Unsatisfied) > 0 && d.Unsatisfied[0].Type == compose.ReqEmpty
	})

	// Every build is tagged in, and known to the compose, before any is
	// tested. (Builds reach the compose through three partitions, each
	// at its own pace: a compose whose builds are all gated is ready
	// with the builds it knows of.)
	builds := nvrs(12, "1")
	var evs, tests []avro.Record
	for i, nvr := range builds {
		outcome := avro.OutcomePassed
		if i == 5 {
			outcome = "FAILED"
		}
		l := f.lifecycle(nvr, outcome)
		evs, tests = append(evs, l[:len(l)-1]...), append(tests, l[len(l)-1])
	}
	// pkg03 gets a newer build, tagged later: it replaces the first.
	newer := "pkg03-1.0-2.fc42"
	l := f.lifecycle(newer, avro.OutcomePassed)
	evs, tests = append(evs, l[:len(l)-1]...), append(tests, l[len(l)-1])
	f.send(evs...)
	f.waitFor("every build tagged in", func(d *avro.ComposeReadyDecision) bool {
		return d.Kind == avro.ComposeReadiness && d.Members == 12 && !slices.ContainsFunc(d.Unsatisfied, func(r avro.Requirement) bool {
			return r.Type == compose.ReqUnsigned || r.SubjectID == builds[3]
		})
	})
	f.send(tests...)

	blocked := f.waitFor("pkg05 blocking, alone", func(d *avro.ComposeReadyDecision) bool {
		return d.Kind == avro.ComposeReadiness && d.Members == 12 && d.BlockerCounts != nil &&
			slices.Equal(d.BlockerCounts, []avro.BlockerCount{{Type: compose.ReqGatingFail, Count: 1}})
	})
	if blocked.Unsatisfied[0].SubjectID != builds[5] || blocked.Ready {
		t.Fatalf("blocked by %+v", blocked.Unsatisfied)
	}
	for _, d := range f.decisions() {
		if d.Kind == avro.ComposeReady {
			t.Fatalf("ready while pkg05 fails gating: %+v", d)
		}
	}

	f.send(&avro.BuildEvent{Envelope: f.env0("koji"), Kind: avro.BuildUntag, NVR: builds[5], Tag: rule.To, State: avro.StateComplete})
	ready := f.waitFor("compose-ready", func(d *avro.ComposeReadyDecision) bool { return d.Kind == avro.ComposeReady })
	want := slices.Concat(builds[:3], []string{newer}, builds[4:5], builds[6:])
	var got []string
	for _, e := range ready.Manifest {
		got = append(got, e.NVR)
		if e.KeyID != rule.KeyID || len(e.DecisionIDs) != 1 {
			t.Errorf("manifest entry %+v", e)
		}
	}
	if !slices.Equal(got, want) || ready.Members != 11 || !ready.Ready {
		t.Fatalf("manifest %v (%d members), want %v", got, ready.Members, want)
	}
	stop()
	stop = nil
	n := 0
	for _, d := range f.decisions() {
		if d.Kind == avro.ComposeReady {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d compose-ready decisions, want 1", n)
	}
	f.checkReplay()
}

// TestComposeReplayUnderLoad: builds stream in, in transactions over
// several input topics, while the three processors run; each processor's
// inputs include another's outputs, written in transactions open most of
// the time. A re-derivation of each from the log gives its live history
// record for record: the merge waited for the transactions its inputs
// had open (DESIGN.md, "One order of events").
func TestComposeReplayUnderLoad(t *testing.T) {
	f := newFixture(t)
	stop := f.run(t.TempDir())
	f.send(f.definition())
	builds := nvrs(240, "1")
	for i := 0; i < len(builds); i += 8 {
		f.send(f.passing(builds[i : i+8])...)
	}
	f.waitFor("ready with all 240", func(d *avro.ComposeReadyDecision) bool { return d.Kind == avro.ComposeReady && d.Members == 240 })
	stop()
	f.checkReplayOf(f.specs)
}

// TestComposeKill9NoLossNoDuplicates: the three processors run in a
// child process that is killed with SIGKILL twice while builds stream in.
// The compose decisions read back are exactly those a re-derivation from
// the log gives (none lost, none repeated), and the compose ends ready
// with every build.
func TestComposeKill9NoLossNoDuplicates(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	child := f.startChild(dir)
	f.send(f.definition())
	f.waitFor("the empty compose loaded", func(d *avro.ComposeReadyDecision) bool {
		return d.Kind == avro.ComposeReadiness && len(d.Unsatisfied) > 0 && d.Unsatisfied[0].Type == compose.ReqEmpty
	})
	builds := nvrs(30, "1")
	for i := 0; i < len(builds); i += 3 {
		f.send(f.passing(builds[i : i+3])...)
		if i == 9 || i == 21 {
			time.Sleep(150 * time.Millisecond) // mid-stream: some of it processed, some not
			f.kill9(child)
			child = f.startChild(dir)
		}
	}
	last := f.waitFor("ready with all 30", func(d *avro.ComposeReadyDecision) bool { return d.Kind == avro.ComposeReady && d.Members == 30 })
	if len(last.Manifest) != 30 {
		t.Fatalf("manifest of %d builds", len(last.Manifest))
	}
	f.term(child)
	ids := map[string]bool{}
	for _, d := range f.decisions() {
		if ids[d.ID] {
			t.Fatalf("decision %s (%s) repeated", d.ID, d.Kind)
		}
		ids[d.ID] = true
	}
	f.checkReplay()
}

type child struct {
	cmd  *exec.Cmd
	done chan error
}

func (f *fixture) startChild(dir string) *child {
	f.t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envChild+"=1", envChildBrokers+"="+strings.Join(f.env.Brokers(), ","),
		envChildPrefix+"="+f.prefix, envChildStateDir+"="+dir)
	logf, err := os.Create(filepath.Join(f.t.TempDir(), "child.log"))
	if err != nil {
		f.t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		f.t.Fatal(err)
	}
	c := &child{cmd: cmd, done: make(chan error, 1)}
	go func() { c.done <- cmd.Wait(); logf.Close() }()
	f.t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-c.done
		if f.t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			f.t.Logf("child log:\n%s", b[max(0, len(b)-4000):])
		}
	})
	return c
}

func (f *fixture) kill9(c *child) {
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	<-c.done
	c.done <- nil // for Cleanup
}

func (f *fixture) term(c *child) {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-c.done:
		if err != nil {
			f.t.Errorf("child stopped with %v", err)
		}
	case <-time.After(30 * time.Second):
		f.t.Error("child did not stop within 30s of SIGTERM")
		_ = c.cmd.Process.Kill()
		<-c.done
	}
	c.done <- nil
}
