package kafkatest

// Unit tests of StartBrokers' pieces that need no Java; the private brokers
// themselves are tested in brokers_test.go.

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestRepoRootFindsGoMod(t *testing.T) {
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "deploy", "kafka", "kafka.sh")); err != nil {
		t.Fatalf("repoRoot() = %s, which has no deploy/kafka/kafka.sh: %v", root, err)
	}
	wd, _ := os.Getwd()
	if rel, err := filepath.Rel(root, wd); err != nil || rel != filepath.Join("internal", "kafkatest") {
		t.Fatalf("repoRoot() = %s, not two levels above the package directory %s", root, wd)
	}

	t.Chdir(t.TempDir()) // no go.mod up to /
	if root, err := repoRoot(); err == nil {
		t.Fatalf("repoRoot() outside a module = %s, want an error", root)
	}
}

func TestFreePortsAreDistinctAndFree(t *testing.T) {
	ports, err := freePorts(6)
	if err != nil {
		t.Fatal(err)
	}
	below := ephemeralLow() >= portsLow+4000 // else the kernel picks
	seen := map[int]bool{}
	for _, p := range ports {
		if seen[p] {
			t.Fatalf("port %d twice in %v", p, ports)
		}
		seen[p] = true
		if below && (p < portsLow || p >= min(portsHigh, ephemeralLow()) || (p >= kafkaPortsLow && p <= kafkaPortsHigh)) {
			t.Errorf("port %d of %v is not below the ephemeral range (from %d) or is near kafka.sh's defaults", p, ports, ephemeralLow())
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			t.Fatalf("port %d of %v is not free after freePorts returned: %v", p, ports, err)
		}
		l.Close()
	}
}

func TestIsPortClash(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{&scriptError{stderr: "kafka.sh: error: port 127.0.0.1:41234 is taken by another process (see: ss)"}, true},
		{fmt.Errorf("wrapped: %w", &scriptError{stderr: "java.net.BindException: Address already in use"}), true},
		{&scriptError{stderr: "kafka.sh: error: brokers not ready within 90s"}, false},
		{errors.New("is taken by another process"), false}, // not from kafka.sh
	} {
		if got := isPortClash(tc.err); got != tc.want {
			t.Errorf("isPortClash(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// recordingTB records Skipf and Fatalf instead of stopping the goroutine.
type recordingTB struct {
	testing.TB
	skipped, failed bool
	msg             string
}

func (r *recordingTB) Helper() {}

func (r *recordingTB) Skipf(format string, args ...any) {
	r.skipped = true
	r.msg = fmt.Sprintf(format, args...)
}

func (r *recordingTB) Fatalf(format string, args ...any) {
	r.failed = true
	r.msg = fmt.Sprintf(format, args...)
}

func TestSkipOrFailWithoutJava(t *testing.T) {
	cause := fmt.Errorf("%w: %w", errMissing, &scriptError{args: []string{"check"}, stderr: "kafka.sh: error: java not found"})
	for _, tc := range []struct {
		require            string
		wantSkip, wantFail bool
	}{
		{require: "", wantSkip: true},
		{require: "1", wantFail: true},
	} {
		t.Setenv(EnvRequire, tc.require)
		rec := &recordingTB{TB: t}
		skipOrFail(rec, cause)
		if rec.skipped != tc.wantSkip || rec.failed != tc.wantFail {
			t.Errorf("%s=%q: skipped %v, failed %v; want %v, %v", EnvRequire, tc.require, rec.skipped, rec.failed, tc.wantSkip, tc.wantFail)
		}
		for _, want := range []string{"java not found", "make deps"} {
			if !strings.Contains(rec.msg, want) {
				t.Errorf("%s=%q: message %q does not say %q", EnvRequire, tc.require, rec.msg, want)
			}
		}
	}
}

// logTB records what is logged.
type logTB struct {
	testing.TB
	logs []string
}

func (l *logTB) Logf(format string, args ...any) {
	l.logs = append(l.logs, fmt.Sprintf(format, args...))
}

func TestLogTailsShowsWarningsAndErrors(t *testing.T) {
	dir := t.TempDir()
	logs := filepath.Join(dir, "cluster-2", "logs")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		t.Fatal(err)
	}
	server := "[2026-01-01 00:00:00,000] INFO started (kafka.Kafka)\n" +
		"[2026-01-01 00:00:01,000] WARN slow (kafka.Log)\n" +
		"[2026-01-01 00:00:02,000] ERROR broken (kafka.Log)\n"
	if err := os.WriteFile(filepath.Join(logs, "server.log"), []byte(server), 0o644); err != nil {
		t.Fatal(err)
	}
	rec := &logTB{TB: t}
	b := &Brokers{t: rec, dir: dir, nodes: []string{"1", "2", "3"}}
	b.logTails()
	if len(rec.logs) != 1 {
		t.Fatalf("logged %q, want one entry for cluster-2's server.log", rec.logs)
	}
	got := rec.logs[0]
	if !strings.Contains(got, "WARN slow") || !strings.Contains(got, "ERROR broken") || strings.Contains(got, "INFO") {
		t.Errorf("logged %q, want the WARN and ERROR lines only", got)
	}
}
