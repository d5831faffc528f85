package main

import (
	"context"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/factory2/factory2/internal/browsertest"
	"github.com/factory2/factory2/internal/config"
	"github.com/factory2/factory2/internal/ingest"
	"github.com/factory2/factory2/internal/kafkatest"
	"github.com/factory2/factory2/internal/sample"
	"github.com/factory2/factory2/topics"
)

// TestOverviewPageInBrowser runs the pipeline against the real broker,
// opens the overview page in headless Chromium before any event, feeds
// the sample, and watches its decisions appear on the page as they are
// made (no reload); then it opens a build's journey, the compose, and the
// dependency trace, and checks what they show. Screenshots are saved as
// test artifacts (see internal/browsertest).
func TestOverviewPageInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole pipeline and a browser")
	}
	env := kafkatest.RequireReal(t)
	b := browsertest.Start(t)
	p, base := startOverviewPipeline(t, env.Brokers())

	// Before any event: the page is empty, and its stream connected.
	b.Navigate(base + "/")
	b.WaitText("#live", "live", time.Minute)
	if n := b.Count("#decision-rows tr"); n != 0 {
		t.Fatalf("%d decisions on the page before any event", n)
	}
	b.Screenshot("1-overview-empty")

	feedSampleSteps(t, p)

	// The decisions come in over the stream, on the page loaded before.
	const wait = 3 * time.Minute
	b.WaitJS(`document.querySelector("#decision-rows tr.decision td.kind") !== null &&
		Array.from(document.querySelectorAll("#decision-rows tr")).some(r =>
			r.querySelector(".kind").textContent === "compose-ready" && r.textContent.includes(`+jsString(sample.ComposeID)+`))`,
		wait, "a compose-ready row for "+sample.ComposeID, "#decision-rows tr")
	b.WaitJS(`Array.from(document.querySelectorAll("#decision-rows tr")).some(r =>
			r.querySelector(".kind").textContent === "gating" && r.textContent.includes(`+jsString(sample.Blocked)+`) &&
			r.querySelector(".verdict").textContent === "blocked" && r.querySelector(".reason").textContent.includes("failed"))`,
		wait, "a blocked gating row for "+sample.Blocked+" with its reason", "#decision-rows tr")
	if b.Count("#no-decisions") != 0 {
		t.Errorf("the page still says no decision was made")
	}
	b.Screenshot("2-overview-live")
	b.WaitText("#live", "live", time.Second) // still connected

	// The composes and the recent builds follow, refreshed by the page.
	b.WaitText("#composes td", sample.ComposeID, 30*time.Second)
	b.WaitText("#builds li", sample.Passing, 30*time.Second)

	// A reload renders the same decisions on the server.
	live := b.Count("#decision-rows tr")
	b.Navigate(base + "/")
	b.WaitText("#decision-rows tr td.subject", sample.ComposeID, 30*time.Second)
	if n := b.Count("#decision-rows tr"); n < live {
		t.Errorf("after a reload %d decisions, live %d", n, live)
	}
	b.WaitText("#composes td", sample.ComposeID, 30*time.Second)

	// The passing build's journey, by its link in the decisions: every
	// stage reached, with latencies.
	b.Click(`#decision-rows td.subject a[href="/builds/` + sample.Passing + `"]`)
	b.WaitText("h1", sample.Passing, 30*time.Second)
	for _, stage := range []string{"built", "tagged", "signed", "tested", "decided"} {
		b.WaitJS(`document.querySelector('#stages li[data-stage="`+stage+`"].reached') !== null`, 30*time.Second,
			"stage "+stage+" reached", "#stages li")
	}
	steps := strings.Join(b.Texts("#steps tbody tr"), "\n")
	for _, want := range []string{"tagged", "f42-signing-pending", "a15b79cc", "fedora-ci.koji-build.tier0.functional", "bodhi_update_push_stable"} {
		if !strings.Contains(steps, want) {
			t.Errorf("journey of %s lacks %q:\n%s", sample.Passing, want, steps)
		}
	}
	b.Screenshot("3-build-journey")

	// What depends on it, by the journey's link: its RPMs.
	b.Click(`.links a[href*="direction=down"]`)
	b.WaitJS(`document.querySelectorAll("#trace-graph .node").length >= 4`, 30*time.Second, "the build and its 3 RPMs", "#trace-graph .node")
	nodes := strings.Join(b.Texts("#trace-graph .node title"), "\n")
	if !strings.Contains(nodes, "build:"+sample.Passing) || !strings.Contains(nodes, "rpm:"+sample.Passing+".x86_64.rpm") {
		t.Errorf("trace of %s:\n%s", sample.Passing, nodes)
	}

	// The compose and its blockers (none left: it is ready), found with
	// the search box.
	b.Navigate(base + "/")
	if err := chromedp.Do(b.Ctx, chromedp.SendKeys(chromedp.CSS("#find-q"), sample.ComposeID), chromedp.Submit(chromedp.CSS("#find-q"))); err != nil {
		t.Fatal(err)
	}
	b.WaitText("h1", sample.ComposeID, 30*time.Second)
	if loc := b.Location(); !strings.HasSuffix(loc, "/composes/"+sample.ComposeID) {
		t.Errorf("search for %s went to %s", sample.ComposeID, loc)
	}
	b.WaitText("#compose-facts dd", "ready", 30*time.Second)
	facts := strings.Join(b.Texts("#compose-facts dd"), "\n")
	if !strings.Contains(facts, "3") {
		t.Errorf("compose facts lack its 3 members:\n%s", facts)
	}
	b.Screenshot("4-compose")

	// The dependency trace as a graph: the image, the RPM it includes,
	// the build that produced it.
	b.Navigate(base + "/trace?" + url.Values{"node": {"container:" + sample.ToolboxImage}, "direction": {"up"}}.Encode())
	b.WaitJS(`document.querySelectorAll("#trace-graph .node").length >= 3`, 30*time.Second, "a graph of 3 nodes", "#trace-graph .node")
	nodes = strings.Join(b.Texts("#trace-graph .node title"), "\n")
	for _, want := range []string{"container:" + sample.ToolboxImage, "rpm:" + sample.OldBashRPM, "build:" + sample.OldBash} {
		if !strings.Contains(nodes, want) {
			t.Errorf("trace graph lacks node %s:\n%s", want, nodes)
		}
	}
	if n := b.Count("#trace-graph .edges path"); n < 2 {
		t.Errorf("trace graph has %d edges, want 2 or more", n)
	}
	b.Screenshot("5-trace")
}

// TestOverviewLoginInBrowser: with http.protect_reads, a browser opening
// the overview page lands on the login form; a wrong token shows it again,
// the read token (from a file) shows the page, whose stream connects and
// brings the decisions made after it loaded. Logging out ends it.
func TestOverviewLoginInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole pipeline and a browser")
	}
	env := kafkatest.RequireReal(t)
	b := browsertest.Start(t)
	tokenFile := filepath.Join(t.TempDir(), "read_token")
	if err := os.WriteFile(tokenFile, []byte("browser-read-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p, base := startOverviewPipeline(t, env.Brokers(), func(c *config.Config) {
		c.HTTP.ProtectReads = true
		c.HTTP.ReadTokenFile = tokenFile
	})

	b.Navigate(base + "/")
	b.WaitJS(`document.querySelector("form#login input[name=token]") !== null`, 30*time.Second, "the login form", "body")
	if loc := b.Location(); !strings.HasPrefix(loc, base+"/login?next=%2F") {
		t.Errorf("opening / went to %s, want the login form", loc)
	}
	if n := b.Count("#live"); n != 0 {
		t.Fatalf("the overview page shows without a login")
	}
	login := func(token string) {
		t.Helper()
		if err := chromedp.Do(b.Ctx, chromedp.SendKeys(chromedp.CSS("#token"), token), chromedp.Submit(chromedp.CSS("#token"))); err != nil {
			t.Fatal(err)
		}
	}
	login("not-the-token")
	b.WaitText("#error", "Wrong token", 30*time.Second)
	b.Screenshot("1-login-wrong-token")

	login("browser-read-token")
	b.WaitText("#live", "live", time.Minute)
	if loc := b.Location(); loc != base+"/" {
		t.Errorf("after the login the tab shows %s, want %s/", loc, base)
	}
	b.Screenshot("2-overview-logged-in")

	// The stream is a read like the page: the decisions come over it.
	feedSampleSteps(t, p)
	b.WaitJS(`Array.from(document.querySelectorAll("#decision-rows tr")).some(r =>
			r.querySelector(".kind") && r.querySelector(".kind").textContent === "compose-ready" && r.textContent.includes(`+jsString(sample.ComposeID)+`))`,
		3*time.Minute, "a compose-ready row for "+sample.ComposeID+" over the stream", "#decision-rows tr")
	b.Screenshot("3-overview-live")

	// Logging out: the next page load is sent to the form again.
	if err := chromedp.Do(b.Ctx, chromedp.Evaluate[chromedp.Void](`(() => { const f = document.createElement("form");
		f.method = "post"; f.action = "/logout"; document.body.appendChild(f); f.submit(); })()`)); err != nil {
		t.Fatal(err)
	}
	b.WaitJS(`document.querySelector("form#login") !== null && location.pathname === "/login"`, 30*time.Second, "the login form after POST /logout", "body")
	b.Navigate(base + "/builds/" + sample.Passing)
	b.WaitJS(`document.querySelector("form#login") !== null`, 30*time.Second, "the login form after logging out", "body")
	if loc := b.Location(); !strings.Contains(loc, "next=%2Fbuilds%2F") {
		t.Errorf("after logging out, a build page went to %s, want the login form coming back to it", loc)
	}
}

// startOverviewPipeline runs the whole pipeline (processors, tables, the
// overview, HTTP) against brokers, on a test's own topics, gated and
// signed by the sample's rules, until the test ends; it returns the
// pipeline and its HTTP base URL.
func startOverviewPipeline(t *testing.T, brokers []string, tweaks ...func(*config.Config)) (*pipeline, string) {
	t.Helper()
	cfg := evConfig(t, brokers).cfg
	dir := t.TempDir()
	pol := filepath.Join(dir, "policies")
	if err := os.MkdirAll(pol, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(pol, "sample.yaml"), []byte(sample.Policy), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg.Gating.Policies = []string{pol}
	cfg.Gating.SigningRules = sample.SigningRules
	cfg.Rebuild = sample.RebuildRules
	cfg.State.Dir = filepath.Join(dir, "state")
	cfg.HTTP.Addr = "127.0.0.1:0"
	for _, tweak := range tweaks {
		tweak(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	p, err := newPipeline(cfg, slog.New(slog.NewTextHandler(testLogWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := p.ensureTopics(ctx); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteTopics(t, brokers, topics.Names(p.cat.Specs())) })
	srv, closeHTTP, err := p.listenHTTP()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.run(ctx, srv) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("pipeline: %v", err)
			}
		case <-time.After(time.Minute):
			t.Errorf("pipeline did not stop within a minute")
		}
		closeHTTP()
	})
	return p, srv.URL()
}

// feedSampleSteps produces the sample step by step, each once the
// processors have consumed the one before, as dev does.
func feedSampleSteps(t *testing.T, p *pipeline) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	parser := &ingest.Parser{Catalog: p.cat}
	prod, err := ingest.NewProducer(ingest.ProducerConfig{Brokers: p.cfg.Brokers, TransactionalID: p.cat.Prefix() + "overview-sample", Codec: p.codec})
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(p.cfg.Brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for _, step := range sample.Steps(time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)) {
		events, err := parser.Records(step...)
		if err != nil {
			t.Fatal(err)
		}
		produced, err := prod.Produce(ctx, events)
		if err != nil {
			t.Fatal(err)
		}
		if err := waitCaughtUp(ctx, cl, p, produced); err != nil {
			t.Fatal(err)
		}
		if err := waitSettled(ctx, cl, p); err != nil {
			t.Fatal(err)
		}
	}
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// testLogWriter sends the pipeline's log lines to the test log.
type testLogWriter struct{ t *testing.T }

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
