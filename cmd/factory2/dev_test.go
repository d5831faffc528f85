package main

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/factory2/factory2/internal/kafkatest"
	"github.com/factory2/factory2/internal/sample"
)

// syncBuffer is a bytes.Buffer safe for a writer and a reader at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// The lines of the sample's story that the demo must show, as regular
// expressions over the text lines.
var storyLines = []string{
	`autosign +` + sample.Passing + ` +sign +fedora-42 \(105ef944\)`,
	`gating +` + sample.Passing + ` +passed `,
	`autosign +` + sample.Passing + ` +sign +fedora-42-gold \(a15b79cc\): .*bodhi_update_push_stable passed`,
	`signed +` + sample.Passing + ` +signed +all 3 artifacts signed with a15b79cc`,
	`rebuild +` + sample.ToolboxImage + ` +rebuild +container:` + sample.ToolboxImage + ` -includes-> rpm:` + sample.OldBashRPM,
	`gating +` + sample.Blocked + ` +blocked +bodhi_update_push_stable@fedora-42: Of 2 required tests, 1 test failed \(failed fedora-ci.koji-build.tier0.functional\)$`,
	`readiness +` + sample.ComposeID + ` +blocked .*` + sample.Waived,
	`gating +` + sample.Waived + ` +passed .*\(waived fedora-ci.koji-build.tier0.functional\)`,
	`compose-ready +` + sample.ComposeID + ` +ready +3 builds`,
	`gate +` + sample.PungiComposeID + ` +passed`,
}

// storyIn checks that out holds the story's lines, in that order.
func storyIn(t *testing.T, out string) {
	t.Helper()
	lines := strings.Split(out, "\n")
	at := 0
	for _, want := range storyLines {
		re := regexp.MustCompile(want)
		i := at
		for i < len(lines) && !re.MatchString(lines[i]) {
			i++
		}
		if i == len(lines) {
			t.Errorf("no line %q after line %d in:\n%s", want, at, out)
			return
		}
		at = i + 1
	}
	if regexp.MustCompile(`gating +` + sample.Blocked + ` +passed`).MatchString(out) {
		t.Errorf("%s passed:\n%s", sample.Blocked, out)
	}
}

// devRun is a `factory2 dev --sample` running in the test.
type devRun struct {
	stdout, stderr syncBuffer
	broker         string
	cancel         context.CancelFunc
	done           chan error
}

// startDev runs dev --sample on free ports until the sample is processed
// (it prints the commands that ask why).
func startDev(t *testing.T, args ...string) *devRun {
	t.Helper()
	// The data directory first: cleanups run last-registered first, and
	// dev must have stopped writing into it before it is removed.
	data := t.TempDir()
	ctx, cancel := context.WithCancel(t.Context())
	d := &devRun{cancel: cancel, done: make(chan error, 1)}
	t.Cleanup(func() { d.stop() })
	root := newRoot(strings.NewReader(""), &d.stdout, &d.stderr)
	root.SetArgs(append([]string{"dev", "--sample", "--kafka-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--data", data}, args...))
	go func() { d.done <- root.ExecuteContext(ctx) }()
	kafkatest.WaitFor(t, 3*time.Minute, func() error {
		select {
		case err := <-d.done:
			t.Fatalf("dev ended: %v\n%s", err, d.stderr.String())
		default:
		}
		if !strings.Contains(d.stderr.String(), "Ask why") {
			return errNotYet
		}
		return nil
	})
	m := regexp.MustCompile(`embedded Kafka broker at (\S+)`).FindStringSubmatch(d.stderr.String())
	if m == nil {
		t.Fatalf("no broker address in:\n%s", d.stderr.String())
	}
	d.broker = m[1]
	return d
}

// stop is Ctrl-C: it returns dev's error.
func (d *devRun) stop() error {
	d.cancel()
	select {
	case err := <-d.done:
		d.done <- err
		return err
	case <-time.After(time.Minute):
		return errorString("dev did not stop within a minute")
	}
}

// TestDevSampleTellsTheStory: dev --sample prints each decision as it is
// made, as a text line, in the order of the story, then the commands to
// ask why; Ctrl-C ends it with no error (exit status 0).
func TestDevSampleTellsTheStory(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole pipeline")
	}
	d := startDev(t, "-o", "text")
	out := d.stdout.String() // printed before the hints
	storyIn(t, out)
	hints := d.stderr.String()
	for _, want := range []string{
		"why " + sample.Blocked + " --url http://127.0.0.1:",
		"compose status " + sample.ComposeID + " --url http://127.0.0.1:",
		"watch decisions --from-beginning --brokers 127.0.0.1:",
	} {
		if !strings.Contains(hints, want) {
			t.Errorf("stderr lacks %q:\n%s", want, hints)
		}
	}
	for _, nit := range []string{"1 processors", "data in "} {
		if strings.Contains(hints, nit) {
			t.Errorf("stderr says %q:\n%s", nit, hints)
		}
	}
	// Event times never go back within the story.
	var last string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if ts := l[:len(time.DateTime)]; ts < last {
			t.Errorf("line %q printed after a line of %s", l, last)
		} else {
			last = ts
		}
	}
	if err := d.stop(); err != nil {
		t.Errorf("dev after Ctrl-C: %v", err)
	}
}

// TestDevExitAfterSample: --exit-after-sample prints the decisions and
// exits; as JSON lines by default when stdout is no terminal.
func TestDevExitAfterSample(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole pipeline")
	}
	args := []string{"dev", "--exit-after-sample", "--kafka-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--data", t.TempDir()}
	stdout, stderr, err := evCLIWithin(t, 3*time.Minute, append(args, "-o", "text")...)
	if err != nil {
		t.Fatalf("dev: %v\n%s", err, stderr)
	}
	if !strings.Contains(stderr, "fed 59 sample events") {
		t.Errorf("stderr:\n%s", stderr)
	}
	// Printed by topic, not in story order: each topic's lines are there.
	for _, want := range storyLines {
		if !regexp.MustCompile(`(?m)` + want).MatchString(stdout) {
			t.Errorf("no line %q in:\n%s", want, stdout)
		}
	}
}

var errNotYet = errorString("not yet")

type errorString string

func (e errorString) Error() string { return string(e) }

// evCLIWithin is evCLI with a timeout of its own.
func evCLIWithin(t *testing.T, d time.Duration, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), d)
	defer cancel()
	var out, errb bytes.Buffer
	root := newRoot(strings.NewReader(""), &out, &errb)
	root.SetArgs(args)
	err = root.ExecuteContext(ctx)
	return out.String(), errb.String(), err
}

func TestSelfCommand(t *testing.T) {
	for argv0, want := range map[string]string{
		"bin/factory2":                          "bin/factory2",
		"factory2":                              "factory2",
		"/usr/local/bin/factory2":               "/usr/local/bin/factory2",
		"/tmp/go-build1234/b001/exe/factory2":   "go run ./cmd/factory2",
		"/tmp/go-build1234/b001/factory2.test":  "/tmp/go-build1234/b001/factory2.test",
		"./factory2":                            "./factory2",
		"/home/me/go-builds/other/exe/factory2": "/home/me/go-builds/other/exe/factory2",
	} {
		if got := selfCommand(argv0); got != want {
			t.Errorf("selfCommand(%q) = %q, want %q", argv0, got, want)
		}
	}
}
