package deps_test

// End-to-end tests on the real broker: gating (for build views), the
// edges and rebuild processors and the graph table run on the runtime,
// fed build, sign, test and edge events; trace answers come from the
// table, rebuild decisions are read back read_committed, and both are
// compared with a re-derivation from the log.

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/factory2/factory2/avro"
	"github.com/factory2/factory2/internal/ingest"
	"github.com/factory2/factory2/internal/kafkatest"
	"github.com/factory2/factory2/processors"
	"github.com/factory2/factory2/processors/deps"
	"github.com/factory2/factory2/processors/gating"
	"github.com/factory2/factory2/state"
	"github.com/factory2/factory2/topics"
)

const (
	envChild         = "FACTORY2_DEPS_CHILD"
	envChildBrokers  = "FACTORY2_DEPS_CHILD_BROKERS"
	envChildPrefix   = "FACTORY2_DEPS_CHILD_PREFIX"
	envChildStateDir = "FACTORY2_DEPS_CHILD_STATE"
)

func TestMain(m *testing.M) {
	if os.Getenv(envChild) == "1" {
		os.Exit(runChild())
	}
	os.Exit(m.Run())
}

const policy = `
--- !Policy
id: f42
product_versions: [fedora-42]
decision_context: bodhi_update_push_stable
subject_type: koji_build
rules:
  - !PassingTestCaseRule {test_case_name: dist.rpmdeplint}
`

var rule = gating.SigningRule{Name: "f42", From: "f42-signing-pending", To: "f42-updates", Key: "fedora-42", KeyID: "105ef944"}

var rules = deps.RebuildRules{Context: "bodhi_update_push_stable", Key: "105ef944"}

func catalog(prefix string) (*topics.Catalog, error) {
	return topics.New(topics.Config{Prefix: prefix, Partitions: 3, Replication: 1, InputRetentionMS: -1, DecisionRetentionMS: -1})
}

// pipeline is the processors and the graph table of one process.
type pipeline struct {
	specs []processors.Spec
	table *deps.Table
	cfg   processors.Config
}

func newPipeline(brokers []string, cat *topics.Catalog, dir string, log *slog.Logger) (*pipeline, error) {
	ps, err := gating.LoadPolicies(map[string][]byte{"policy.yaml": []byte(policy)})
	if err != nil {
		return nil, err
	}
	e, err := gating.NewEngine(ps, []gating.SigningRule{rule})
	if err != nil {
		return nil, err
	}
	codec, err := avro.NewCodec()
	if err != nil {
		return nil, err
	}
	t := deps.NewTable(deps.TableConfig{Brokers: brokers, Catalog: cat, Logger: log})
	return &pipeline{
		specs: []processors.Spec{gating.Spec(cat, e), deps.Spec(cat), deps.RebuildSpec(cat, t.Graph, rules)},
		table: t,
		cfg: processors.Config{
			Brokers: brokers, InstanceID: "a", Catalog: cat, Codec: codec, StateDir: dir,
			CommitInterval: 50 * time.Millisecond, SessionTimeout: 6 * time.Second, TransactionTimeout: 10 * time.Second,
			Logger: log,
		},
	}, nil
}

func (p *pipeline) run(ctx context.Context) error {
	errs := make(chan error, len(p.specs)+1)
	for _, s := range p.specs {
		r, err := processors.NewRunner(s, p.cfg)
		if err != nil {
			return err
		}
		go func() { errs <- r.Run(ctx) }()
	}
	go func() { errs <- p.table.Run(ctx) }()
	var first error
	for range len(p.specs) + 1 {
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
		var p *pipeline
		if p, err = newPipeline(strings.Split(os.Getenv(envChildBrokers), ","), cat, os.Getenv(envChildStateDir), log); err == nil {
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			err = p.run(ctx)
		}
	}
	if err != nil {
		log.Error("child failed", "err", err)
		return 1
	}
	return 0
}

type fixture struct {
	t      *testing.T
	env    *kafkatest.Env
	prefix string
	cat    *topics.Catalog
	codec  *avro.Codec
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
	if f.codec, err = avro.NewCodec(); err != nil {
		t.Fatal(err)
	}
	p := f.pipeline(t.TempDir())
	for _, s := range p.specs {
		if _, err := processors.NewRunner(s, p.cfg); err != nil { // adds the changelogs to the catalog
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	if _, err := f.cat.Ensure(ctx, kafkatest.Client(t, env)); err != nil {
		t.Fatal(err)
	}
	if f.prod, err = ingest.NewProducer(ingest.ProducerConfig{Brokers: env.Brokers(), TransactionalID: f.prefix + "hooks", Codec: f.codec}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.prod.Close)
	return f
}

func (f *fixture) pipeline(dir string) *pipeline {
	f.t.Helper()
	log := slog.New(slog.NewTextHandler(testWriter{f.t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	p, err := newPipeline(f.env.Brokers(), f.cat, dir, log)
	if err != nil {
		f.t.Fatal(err)
	}
	return p
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func (f *fixture) env0(source string) avro.Envelope {
	f.seq++
	f.clock = f.clock.Add(time.Second)
	return avro.Envelope{ID: fmt.Sprintf("%s-%d", source, f.seq), Source: source, EventTime: f.clock}
}

func (f *fixture) send(recs ...avro.Record) {
	f.t.Helper()
	evs, err := (&ingest.Parser{Catalog: f.cat}).Records(recs...)
	if err != nil {
		f.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := f.prod.Produce(ctx, evs); err != nil {
		f.t.Fatal(err)
	}
}

func rpmOf(nvr string) string {
	return strings.Replace(nvr, "openssl-", "openssl-libs-", 1) + ".x86_64.rpm"
}

// build is a build's events up to signed and gated: complete (with its
// source and RPM), tagged for signing, signed, moved, tested.
func (f *fixture) build(nvr, commit string) []avro.Record {
	parts := strings.SplitN(nvr, "-", 3)
	rpm := avro.Artifact{ID: "1", Name: rpmOf(nvr), Type: "rpm", Arch: "x86_64"}
	return []avro.Record{
		&avro.BuildEvent{Envelope: f.env0("koji"), Kind: avro.BuildStateChange, NVR: nvr, Name: parts[0], Version: parts[1], Release: parts[2],
			State: avro.StateComplete, SourceURL: "https://src.example/rpms/openssl", SourceCommit: commit,
			Buildroot: []string{"gcc-14.2-1.fc42"}, Artifacts: []avro.Artifact{rpm}},
		&avro.BuildEvent{Envelope: f.env0("koji"), Kind: avro.BuildTag, NVR: nvr, Tag: rule.From, State: avro.StateComplete},
		&avro.SignEvent{Envelope: f.env0("koji"), NVR: nvr, SigKey: rule.KeyID, Artifacts: []avro.Artifact{rpm}, Outcome: avro.SignSigned},
		&avro.BuildEvent{Envelope: f.env0("koji"), Kind: avro.BuildTag, NVR: nvr, Tag: rule.To, State: avro.StateComplete},
		&avro.TestResult{Envelope: f.env0("resultsdb"), ResultID: fmt.Sprint(f.seq), Testcase: "dist.rpmdeplint", Outcome: avro.OutcomePassed,
			SubjectType: "koji_build", SubjectID: nvr},
	}
}

func (f *fixture) edge(fromType, fromID, rel, toType, toID string) *avro.DependencyEdge {
	return &avro.DependencyEdge{Envelope: f.env0("image-builder"), FromType: fromType, FromID: fromID, Relation: rel, ToType: toType, ToID: toID}
}

// images are n images including the old RPM, each a child of the
// previous every tenth, and a module containing the old build.
func (f *fixture) images(old string, n int) []avro.Record {
	var out []avro.Record
	for i := range n {
		id := fmt.Sprintf("app%03d-1", i)
		out = append(out, f.edge("container", id, avro.RelIncludes, "rpm", rpmOf(old)))
		if i%10 != 0 {
			out = append(out, f.edge("container", id, avro.RelParent, "container", fmt.Sprintf("app%03d-1", i-i%10)))
		}
	}
	return append(out, f.edge("module", "openssl-3.0-4220", avro.RelContains, "build", old))
}

func (f *fixture) rebuilds() []*avro.RebuildDecision {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	recs, err := processors.ReadCommitted(ctx, f.env.Brokers(), []string{f.cat.Name(topics.DecisionsRebuild)})
	if err != nil {
		f.t.Fatal(err)
	}
	var out []*avro.RebuildDecision
	for _, r := range recs {
		v, err := f.codec.Decode(r.Value)
		if err != nil {
			f.t.Fatal(err)
		}
		out = append(out, v.(*avro.RebuildDecision))
	}
	return out
}

// checkRebuilds requires one decision per image and the module, each
// once, parent images in an earlier batch than their children.
func (f *fixture) checkRebuilds(ds []*avro.RebuildDecision, images int, newNVR string) {
	f.t.Helper()
	seen := map[string]int32{}
	for _, d := range ds {
		k := d.SubjectType + ":" + d.SubjectID
		if _, dup := seen[k]; dup {
			f.t.Fatalf("%s decided twice", k)
		}
		seen[k] = d.Priority
		if d.TriggerID != newNVR {
			f.t.Fatalf("decision %+v", d)
		}
	}
	if len(seen) != images+1 || seen["module:openssl-3.0-4220"] != 0 {
		f.t.Fatalf("%d decisions (%v), want %d images and the module", len(seen), seen, images)
	}
	for i := range images {
		want := int32(0)
		if i%10 != 0 {
			want = 1
		}
		if got := seen[fmt.Sprintf("container:app%03d-1", i)]; got != want {
			f.t.Fatalf("app%03d in batch %d, want %d", i, got, want)
		}
	}
}

// checkReplay re-derives the edges processor and requires its store to
// hold the edges the live table holds; and the rebuild processor's
// decisions, with the final graph, to be the live ones.
func (f *fixture) checkReplay(live *deps.Graph, cfg processors.Config, specs []processors.Spec) {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	dir := f.t.TempDir()
	red, err := processors.Rederive(ctx, specs[1], cfg, dir, nil, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	g := deps.NewGraph()
	for _, p := range red.Partitions {
		db, err := state.Open(state.Options{Dir: filepath.Join(dir, deps.Name, strconv.Itoa(int(p))), ReadOnly: true})
		if err != nil {
			f.t.Fatal(err)
		}
		err = db.Scan(deps.StoreEdges, nil, nil, func(k, _ []byte) error {
			parts := strings.SplitN(string(k), "\x00", 4)
			g.Add(deps.Edge{From: parts[1], Relation: parts[2], To: parts[3]})
			return nil
		})
		db.Close()
		if err != nil {
			f.t.Fatal(err)
		}
	}
	// Nodes stay once seen (an id is interned for good); edges are what
	// must agree. The live graph is a follower of the edges topic, which
	// may still be reading the last transaction: wait for it. A graph
	// that lost edges never gets there.
	_, re := g.Size()
	kafkatest.WaitFor(f.t, 30*time.Second, func() error {
		if _, le := live.Size(); le != re {
			return fmt.Errorf("replayed graph: %d edges; live: %d", re, le)
		}
		return nil
	})
	for _, q := range []deps.TraceQuery{
		{Node: "source:https://src.example/rpms/openssl#c1", Direction: deps.Down},
		{Node: "container:app015-1", Direction: deps.Up},
	} {
		// The same nodes; the order of a walk follows the order edges
		// were added in, which differs.
		a, err1 := live.Trace(q)
		b, err2 := g.Trace(q)
		ka, kb := keysOf(a), keysOf(b)
		slices.Sort(ka)
		slices.Sort(kb)
		if err1 != nil || err2 != nil || !slices.Equal(ka, kb) {
			f.t.Fatalf("trace %+v differs after replay: %v / %v", q, err1, err2)
		}
	}
	red, err = processors.Rederive(ctx, specs[2], cfg, f.t.TempDir(), nil, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	diff, err := processors.Diff(ctx, cfg, red.Outputs, specs[2].Outputs)
	if err != nil {
		f.t.Fatal(err)
	}
	if len(diff) != 0 {
		f.t.Fatalf("rebuild decisions differ after replay: %+v", diff[:min(5, len(diff))])
	}
}

func keysOf(t *deps.Trace) []string {
	var out []string
	for _, n := range t.Nodes {
		out = append(out, n.Key)
	}
	return out
}

// waitTrace waits until the table answers q with at least n nodes.
func waitTrace(t *testing.T, g *deps.Graph, q deps.TraceQuery, n int) *deps.Trace {
	t.Helper()
	var tr *deps.Trace
	kafkatest.WaitFor(t, 60*time.Second, func() error {
		var err error
		if tr, err = g.Trace(q); err != nil {
			return err
		}
		if len(tr.Nodes) < n {
			return fmt.Errorf("%d nodes, waiting for %d", len(tr.Nodes), n)
		}
		return nil
	})
	return tr
}

// TestDependencyViewsEndToEnd: a build's events and image edges become a
// graph every instance answers trace queries from; a newer build of the
// library, once signed and gated, gives one rebuild decision per image
// and module, parents first; a replay reproduces both.
func TestDependencyViewsEndToEnd(t *testing.T) {
	f := newFixture(t)
	p := f.pipeline(t.TempDir())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.run(ctx) }()

	const old, newer = "openssl-3.0.1-1.fc42", "openssl-3.0.2-1.fc42"
	f.send(append(f.build(old, "c1"), f.images(old, 30)...)...)
	f.send(f.edge("compose", "Fedora-42-20261101.0", avro.RelContains, "container", "app015-1"),
		f.edge("product", "fedora-42", avro.RelMadeFrom, "compose", "Fedora-42-20261101.0"))
	tr := waitTrace(t, p.table.Graph, deps.TraceQuery{Node: "source:https://src.example/rpms/openssl#c1", Direction: deps.Down, Types: []string{"compose", "product"}}, 3)
	if got := keysOf(tr); !slices.Equal(got, []string{"source:https://src.example/rpms/openssl#c1", "compose:Fedora-42-20261101.0", "product:fedora-42"}) {
		t.Fatalf("composes and products shipping the commit: %v", got)
	}
	up, err := p.table.Graph.Trace(deps.TraceQuery{Node: "container:app015-1", Direction: deps.Up, Types: []string{"source", "build"}})
	if err != nil || !slices.Equal(keysOf(up), []string{"container:app015-1", "build:" + old, "build:gcc-14.2-1.fc42", "source:https://src.example/rpms/openssl#c1"}) {
		t.Fatalf("what app015 is made of: %v %v", keysOf(up), err)
	}
	if out := f.rebuilds(); len(out) != 0 {
		t.Fatalf("%d rebuild decisions before a newer build", len(out))
	}

	f.send(f.build(newer, "c2")...)
	var ds []*avro.RebuildDecision
	kafkatest.WaitFor(t, 60*time.Second, func() error {
		if ds = f.rebuilds(); len(ds) < 31 {
			return fmt.Errorf("%d rebuild decisions", len(ds))
		}
		return nil
	})
	f.checkRebuilds(ds, 30, newer)

	// A removed edge leaves the graph on every instance.
	f.send(&avro.DependencyEdge{Envelope: f.env0("image-builder"), FromType: "product", FromID: "fedora-42", Relation: avro.RelMadeFrom,
		ToType: "compose", ToID: "Fedora-42-20261101.0", Removed: true})
	kafkatest.WaitFor(t, 30*time.Second, func() error {
		if p.table.Graph.Has("product:fedora-42") {
			if tr, _ := p.table.Graph.Trace(deps.TraceQuery{Node: "product:fedora-42", Direction: deps.Up}); len(tr.Nodes) > 1 {
				return fmt.Errorf("product still made from the compose")
			}
		}
		return nil
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	f.checkReplay(p.table.Graph, p.cfg, p.specs)
}

// TestDependencyViewsKill9: the processors run in a child process that
// is killed with SIGKILL while edges and builds stream in; the graph and
// the rebuild decisions end as without the kills, each decision once.
func TestDependencyViewsKill9(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	child := f.startChild(dir)
	const old, newer = "openssl-3.0.1-1.fc42", "openssl-3.0.2-1.fc42"
	f.send(f.build(old, "c1")...)
	imgs := f.images(old, 60)
	for i := 0; i < len(imgs); i += 20 {
		f.send(imgs[i:min(i+20, len(imgs))]...)
		if i == 40 {
			time.Sleep(100 * time.Millisecond)
			f.kill9(child)
			child = f.startChild(dir)
		}
	}
	// The new build only once the graph has every image: rebuild
	// decisions read the graph the instance holds.
	p := f.pipeline(t.TempDir())
	tctx, tcancel := context.WithCancel(context.Background())
	defer tcancel()
	go p.table.Run(tctx)
	waitTrace(t, p.table.Graph, deps.TraceQuery{Node: "build:" + old, Direction: deps.Down}, 63)
	time.Sleep(500 * time.Millisecond) // the child's table follows the same topic: give it a moment
	f.send(f.build(newer, "c2")[:3]...)
	f.kill9(child)
	child = f.startChild(dir)
	f.send(f.build(newer, "c2")[3:]...)
	var ds []*avro.RebuildDecision
	kafkatest.WaitFor(t, 90*time.Second, func() error {
		if ds = f.rebuilds(); len(ds) < 61 {
			return fmt.Errorf("%d rebuild decisions", len(ds))
		}
		return nil
	})
	// The decisions need only the old build's graph and the gating
	// verdict; the newer build's own edges come from the deps processor,
	// whose group may still be rebalancing after the kill. Stopping the
	// child before they are in the graph would leave them underived, and
	// the replay below would rightly find three edges more.
	waitTrace(t, p.table.Graph, deps.TraceQuery{Node: "build:" + newer, Direction: deps.Up}, 3)
	f.term(child)
	f.checkRebuilds(f.rebuilds(), 60, newer)
	f.checkReplay(p.table.Graph, p.cfg, p.specs)
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
	c.done <- nil
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
