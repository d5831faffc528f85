// Package browsertest drives a real headless browser, Debian's chromium,
// through the Chrome DevTools protocol (chromedp), for tests that look at
// the pages factory2 serves: load a page, wait until the DOM shows
// something, read it, and save a screenshot as a test artifact.
//
// Chromium is found as $FACTORY2_CHROMIUM, else chromium (or
// chromium-browser, google-chrome) on PATH; deploy/deps.sh installs it. A
// test that needs the browser fails without it, except in -short runs,
// where it is skipped. Screenshots go to $FACTORY2_ARTIFACTS when set,
// else to factory2-artifacts under the system's temporary directory:
// outside the source tree, and kept after the test for people to look
// at.
package browsertest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Environment variables the package reads.
const (
	// EnvChromium names the browser binary to run.
	EnvChromium = "FACTORY2_CHROMIUM"
	// EnvArtifacts names the directory screenshots are saved under.
	EnvArtifacts = "FACTORY2_ARTIFACTS"
)

// Browser is one headless browser with one tab, closed when the test
// ends. Its methods fail the test on error; they are for the test's own
// goroutine.
type Browser struct {
	// Ctx is the tab's context, for chromedp actions of a test's own.
	Ctx context.Context
	t   testing.TB
	dir string
}

// Start starts a headless browser for t, with a 1400×1000 window. Without
// chromium it fails t, or skips it under -short.
func Start(t testing.TB) *Browser {
	t.Helper()
	path, err := chromiumPath()
	if err != nil {
		if testing.Short() {
			t.Skipf("browsertest: skipped in -short: %v", err)
		}
		t.Fatalf("browsertest: %v", err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.WindowSize(1400, 1000),
		chromedp.Flag("disable-dev-shm-usage", true), // containers have a small /dev/shm
	)
	if os.Geteuid() == 0 {
		// Chromium refuses to run as root with its sandbox; CI runs as root.
		opts = append(opts, chromedp.NoSandbox)
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithErrorf(t.Logf))
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	// No action: starts the browser. On the tab's own context: the
	// browser lives as long as the context of its first run.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("browsertest: starting %s: %v", path, err)
	}
	return &Browser{Ctx: ctx, t: t, dir: artifactDir(t)}
}

// chromiumPath finds the browser.
func chromiumPath() (string, error) {
	if p := os.Getenv(EnvChromium); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s=%s: %w", EnvChromium, p, err)
		}
		return p, nil
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", errors.New("no chromium on PATH: run deploy/deps.sh (it installs Debian's chromium), or set " + EnvChromium)
}

// artifactDir is where t's screenshots go.
func artifactDir(t testing.TB) string {
	base := os.Getenv(EnvArtifacts)
	if base == "" {
		base = filepath.Join(os.TempDir(), "factory2-artifacts")
	}
	return filepath.Join(base, regexp.MustCompile(`[^A-Za-z0-9_.-]+`).ReplaceAllString(t.Name(), "_"))
}

// Navigate loads url and waits for its DOM.
func (b *Browser) Navigate(url string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.Ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(url), chromedp.WaitReady(chromedp.CSS("body"))); err != nil {
		b.t.Fatalf("browsertest: loading %s: %v", url, err)
	}
}

// Click clicks the first element matching the CSS selector (waiting for
// it to be visible, at most 30s), like a person would: a link is followed.
func (b *Browser) Click(selector string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.Ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(selector))); err != nil {
		shot := b.Screenshot("click-failed")
		b.t.Fatalf("browsertest: clicking %s: %v; screenshot %s", selector, err, shot)
	}
}

// Location is the URL the tab shows.
func (b *Browser) Location() string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.Ctx, 10*time.Second)
	defer cancel()
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		b.t.Fatalf("browsertest: reading the location: %v", err)
	}
	return loc
}

// WaitText waits until an element matching the CSS selector contains
// text, polling the DOM, for at most timeout; on timeout it saves a
// screenshot and fails the test with what the elements held.
func (b *Browser) WaitText(selector, text string, timeout time.Duration) {
	b.t.Helper()
	js := fmt.Sprintf(`Array.from(document.querySelectorAll(%q)).some(e => e.textContent.includes(%q))`, selector, text)
	b.WaitJS(js, timeout, fmt.Sprintf("%s containing %q", selector, text), selector)
}

// WaitJS waits until the JavaScript expression js is true, polling, for
// at most timeout; what describes the wait in the failure, and the text
// of the elements matching show is reported with it.
func (b *Browser) WaitJS(js string, timeout time.Duration, what, show string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.Ctx, timeout)
	defer cancel()
	var err error
	for {
		_, err = chromedp.Run(ctx, chromedp.Poll[chromedp.Void](js,
			chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(timeout)))
		// A page loading (after a click) ends the poll with its
		// document: poll the next one.
		if err == nil || ctx.Err() != nil {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
	if err != nil {
		shot := b.Screenshot("timeout")
		b.t.Fatalf("browsertest: no %s within %s (%v); the page shows %q there; screenshot %s",
			what, timeout, err, b.Texts(show), shot)
	}
}

// Texts returns the text of every element matching selector.
func (b *Browser) Texts(selector string) []string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.Ctx, 10*time.Second)
	defer cancel()
	js := fmt.Sprintf(`Array.from(document.querySelectorAll(%q)).map(e => e.textContent.trim())`, selector)
	out, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](js))
	if err != nil {
		b.t.Errorf("browsertest: reading %s: %v", selector, err)
	}
	return out
}

// Count returns how many elements match selector.
func (b *Browser) Count(selector string) int {
	return len(b.Texts(selector))
}

// Screenshot saves a PNG of the whole page as name.png in the test's
// artifact directory and returns its path ("" when it could not, which
// the test is told of but does not fail on: a screenshot is evidence,
// not the check).
func (b *Browser) Screenshot(name string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.Ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // 100: PNG
	if err != nil {
		b.t.Logf("browsertest: screenshot %s: %v", name, err)
		return ""
	}
	if err := os.MkdirAll(b.dir, 0o755); err != nil {
		b.t.Logf("browsertest: screenshot %s: %v", name, err)
		return ""
	}
	path := filepath.Join(b.dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Logf("browsertest: screenshot %s: %v", name, err)
		return ""
	}
	b.t.Logf("browsertest: screenshot %s", path)
	return path
}
