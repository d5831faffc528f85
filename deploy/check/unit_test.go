package check

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestSystemdUnit: deploy/systemd/factory2.service runs factory2 serve as
// a dedicated user, restarts it on failure with a backoff, stops it with
// time for a clean commit, reloads the HTTP certificate on SIGHUP, keeps
// its state in its StateDirectory (where the service may write, and
// nowhere else), and is hardened.
func TestSystemdUnit(t *testing.T) {
	data, err := os.ReadFile(deployPath("systemd", "factory2.service"))
	if err != nil {
		t.Fatal(err)
	}
	u, err := ParseUnit(string(data))
	if err != nil {
		t.Fatalf("factory2.service: %v", err)
	}
	const svc = "Service"
	for key, want := range map[string]string{
		"Type":                    "simple",
		"ExecReload":              "/bin/kill -HUP $MAINPID",
		"NoNewPrivileges":         "yes",
		"ProtectSystem":           "strict",
		"PrivateTmp":              "yes",
		"ProtectHome":             "yes",
		"RestrictSUIDSGID":        "yes",
		"CapabilityBoundingSet":   "",
		"KillSignal":              "SIGTERM",
		"StateDirectory":          "factory2",
		"ReadWritePaths":          "/var/lib/factory2",
		"RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
	} {
		if got, ok := u[svc][key]; !ok || u.Get(svc, key) != want {
			t.Errorf("[Service] %s=%q (set: %v), want %q", key, u.Get(svc, key), ok && len(got) > 0, want)
		}
	}
	if r := u.Get(svc, "Restart"); r != "on-failure" && r != "always" {
		t.Errorf("Restart=%q, want on-failure or always", r)
	}
	for _, key := range []string{"RestartSec", "RestartSteps", "RestartMaxDelaySec"} {
		if u.Get(svc, key) == "" {
			t.Errorf("[Service] %s unset: want a restart backoff", key)
		}
	}
	if u.Get("Unit", "StartLimitIntervalSec") == "" || u.Get("Unit", "StartLimitBurst") == "" {
		t.Errorf("[Unit] StartLimitIntervalSec and StartLimitBurst: want both")
	}
	if usr := u.Get(svc, "User"); usr == "" || usr == "root" {
		t.Errorf("User=%q: want a dedicated user", usr)
	}
	sysusers, err := os.ReadFile(deployPath("systemd", "factory2.sysusers"))
	if err != nil || !strings.Contains(string(sysusers), "u "+u.Get(svc, "User")+" ") {
		t.Errorf("factory2.sysusers does not create the user %s: %v", u.Get(svc, "User"), err)
	}
	if stop, err := time.ParseDuration(u.Get(svc, "TimeoutStopSec")); err != nil || stop <= 30*time.Second {
		t.Errorf("TimeoutStopSec=%q: want more than processing.transaction_timeout (30s), for a clean commit", u.Get(svc, "TimeoutStopSec"))
	}
	if n, err := strconv.Atoi(u.Get(svc, "LimitNOFILE")); err != nil || n < 4096 {
		t.Errorf("LimitNOFILE=%q: want 4096 or more (a Pebble database per task)", u.Get(svc, "LimitNOFILE"))
	}
	start := strings.Fields(u.Get(svc, "ExecStart"))
	cfg := flagValue(start, "--config")
	if len(start) < 2 || !filepath.IsAbs(start[0]) || start[1] != "serve" || cfg == "" {
		t.Fatalf("ExecStart=%q: want /absolute/factory2 serve --config FILE", u.Get(svc, "ExecStart"))
	}
	if !slices.ContainsFunc(u[svc]["ExecStartPre"], func(s string) bool { return strings.Contains(s, "config check "+cfg) }) {
		t.Errorf("ExecStartPre: want `factory2 config check %s`, so a bad configuration fails before the restart loop", cfg)
	}
	if wd := u.Get(svc, "WorkingDirectory"); wd != "/var/lib/"+u.Get(svc, "StateDirectory") {
		t.Errorf("WorkingDirectory=%q: want the StateDirectory, so a relative state.dir lands there", wd)
	}
	if u.Get("Install", "WantedBy") != "multi-user.target" {
		t.Errorf("[Install] WantedBy=%q", u.Get("Install", "WantedBy"))
	}
}

// TestParseUnit: sections, repeated keys, continuations and comments;
// malformed lines are errors.
func TestParseUnit(t *testing.T) {
	u, err := ParseUnit("# c\n[Unit]\nA=1\n; c\n[Service]\nB = x \\\n  y\nB=z\nC=\n")
	if err != nil {
		t.Fatal(err)
	}
	if u.Get("Unit", "A") != "1" || !slices.Equal(u["Service"]["B"], []string{"x  y", "z"}) || u.Get("Service", "B") != "z" {
		t.Errorf("parsed %v", u)
	}
	if _, ok := u["Service"]["C"]; !ok || u.Get("Service", "C") != "" {
		t.Errorf("C= (empty): %v", u["Service"])
	}
	for _, bad := range []string{"A=1\n", "[Unit]\nnovalue\n", "[Unit\nA=1\n", "[Unit]\nA=\\\n"} {
		if _, err := ParseUnit(bad); err == nil {
			t.Errorf("ParseUnit(%q): no error", bad)
		}
	}
}
