package check

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

// factory2 builds cmd/factory2 from the main module (two directories up)
// once per test run, with the go command on PATH: the toolchain of the
// tests themselves.
func factory2(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "factory2-deploy-check-")
		if err != nil {
			buildErr = err
			return
		}
		builtBin = filepath.Join(dir, "factory2")
		cmd := exec.Command("go", "build", "-o", builtBin, "./cmd/factory2")
		cmd.Dir = filepath.Join(Deploy, "..")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/factory2 (in the main module): %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin
}

// TestMain removes the built binary.
func TestMain(m *testing.M) {
	code := m.Run()
	if builtBin != "" {
		os.RemoveAll(filepath.Dir(builtBin))
	}
	os.Exit(code)
}

// TestMetricsExported: every metric name deploy/prometheus/alerts.yml and
// deploy/grafana/factory2.json use is one the binary exports. The binary
// runs the sample pipeline on its embedded broker (`factory2 dev
// --sample`), with HTTPS when it supports it (so the TLS series exist),
// and its /metrics is scraped once the sample is processed and its probes
// answered.
func TestMetricsExported(t *testing.T) {
	groups, err := LoadRules(deployPath("prometheus", "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	ruleUses, ruleLabels, err := RuleUses(groups)
	if err != nil {
		t.Fatal(err)
	}
	d, err := LoadDashboard(deployPath("grafana", "factory2.json"))
	if err != nil {
		t.Fatal(err)
	}
	dashUses, dashLabels, err := DashboardUses(d)
	if err != nil {
		t.Fatal(err)
	}

	exposed, err := ParseExposed(scrapeSample(t))
	if err != nil {
		t.Fatalf("/metrics: %v", err)
	}
	if !exposed.Has("factory2_processor_tasks") || !exposed.Has("go_goroutines") {
		t.Fatalf("the scrape has no factory2_processor_tasks or go_goroutines: not factory2's /metrics? names: %v", keys(exposed))
	}
	// up is Prometheus' own series of each scrape, not the binary's.
	if missing := Missing(ruleUses, exposed, "up"); len(missing) > 0 {
		t.Errorf("deploy/prometheus/alerts.yml uses %d metrics the binary does not export (after the sample):\n  %s",
			len(missing), strings.Join(missing, "\n  "))
	}
	if missing := Missing(dashUses, exposed); len(missing) > 0 {
		t.Errorf("deploy/grafana/factory2.json uses %d metrics the binary does not export (after the sample):\n  %s",
			len(missing), strings.Join(missing, "\n  "))
	}
	if missing := MissingLabels(ruleLabels, exposed); len(missing) > 0 {
		t.Errorf("deploy/prometheus/alerts.yml uses %d labels the binary's series do not have:\n  %s",
			len(missing), strings.Join(missing, "\n  "))
	}
	if missing := MissingLabels(dashLabels, exposed); len(missing) > 0 {
		t.Errorf("deploy/grafana/factory2.json uses %d labels the binary's series do not have:\n  %s",
			len(missing), strings.Join(missing, "\n  "))
	}
}

// TestMissing: a name used but not exposed is reported with every place
// that uses it; Prometheus' own series are not.
func TestMissing(t *testing.T) {
	uses := []Use{{"a", "alert A"}, {"b", "alert A"}, {"b", "panel P"}, {"b", "panel P"}, {"up", "alert D"}, {"c", "alert C"}}
	got := Missing(uses, Exposed{"a": {}}, "up")
	want := []string{"b (alert A, panel P)", "c (alert C)"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("Missing = %q, want %q", got, want)
	}
}

var (
	httpAt    = regexp.MustCompile(`HTTP server at (https?://[0-9.]+:[0-9]+)`)
	sampleFed = "factory2 dev: the sample is processed"
)

// scrapeSample runs factory2 dev --sample and returns its /metrics once
// the sample is processed; dev is stopped with SIGTERM at the end.
func scrapeSample(t *testing.T) string {
	t.Helper()
	bin := factory2(t)
	dir := t.TempDir()
	args := []string{"dev", "--sample", "--kafka-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--data", filepath.Join(dir, "data")}
	client := &http.Client{Timeout: 10 * time.Second}
	tlsOn := supportsHTTPTLS(t, bin)
	if tlsOn {
		cfg, pool := httpsConfig(t, dir)
		args = append(args, "--config", cfg)
		client.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	} else {
		t.Log("this binary has no http.tls_cert_file: dev runs plain HTTP, so the TLS series cannot show")
	}

	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	cmd.Stdout = io.Discard
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	url, fed := "", false
	sc := bufio.NewScanner(stderr)
	for !fed && sc.Scan() {
		line := sc.Text()
		log.WriteString(line + "\n")
		if m := httpAt.FindStringSubmatch(line); m != nil {
			url = m[1]
		}
		fed = strings.HasPrefix(line, sampleFed)
	}
	if !fed || url == "" {
		cancel()
		_ = cmd.Wait()
		t.Fatalf("factory2 %s: no %q line with an HTTP address (%v); it said:\n%s", strings.Join(args, " "), sampleFed, ctx.Err(), log.String())
	}
	go io.Copy(io.Discard, stderr) // the rest of its log, until it exits
	if tlsOn {
		url = "https://" + strings.TrimPrefix(strings.TrimPrefix(url, "http://"), "https://")
	}

	// As the kubelet would: /healthz must answer 200 (live), and both
	// probes' requests show in the HTTP request metrics.
	for _, probe := range []string{"/healthz", "/readyz"} {
		resp, err := client.Get(url + probe)
		if err != nil {
			t.Fatalf("GET %s%s: %v", url, probe, err)
		}
		resp.Body.Close()
		if probe == "/healthz" && resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s%s: %s once the sample is processed, want 200", url, probe, resp.Status)
		}
	}
	body := scrape(t, client, url)
	if tlsOn {
		// The certificate reload counter shows once a SIGHUP reloaded the
		// certificate: send one, and scrape until it shows (or give up
		// after 10s and let the comparison report it).
		if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(10 * time.Second); !strings.Contains(body, tlsReloads) && time.Now().Before(deadline); {
			time.Sleep(200 * time.Millisecond)
			body = scrape(t, client, url)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("factory2 dev after SIGTERM: %v (want a clean exit)", err)
	}
	return body
}

// tlsReloads is the series a SIGHUP makes appear with TLS on.
const tlsReloads = "factory2_http_tls_reloads_total"

// scrape returns url's /metrics.
func scrape(t *testing.T, client *http.Client, url string) string {
	t.Helper()
	resp, err := client.Get(url + "/metrics")
	if err != nil {
		t.Fatalf("scrape %s/metrics: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape %s/metrics: %s, %v\n%s", url, resp.Status, err, body)
	}
	return string(body)
}

// supportsHTTPTLS: the binary's configuration has http.tls_cert_file.
func supportsHTTPTLS(t *testing.T, bin string) bool {
	out, err := exec.Command(bin, "config", "reference").Output()
	if err != nil {
		t.Fatalf("factory2 config reference: %v", err)
	}
	return strings.Contains(string(out), "tls_cert_file")
}

// httpsConfig writes a self-signed certificate for 127.0.0.1, its key, and
// a configuration serving HTTPS with them; it returns the configuration's
// path and a pool trusting the certificate.
func httpsConfig(t *testing.T, dir string) (string, *x509.CertPool) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "factory2 deploy check"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPath, keyPath := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	writeFile(t, certPath, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	writeFile(t, keyPath, string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})))
	cfg := filepath.Join(dir, "factory2.yml")
	writeFile(t, cfg, fmt.Sprintf("http:\n  tls_cert_file: %s\n  tls_key_file: %s\n", certPath, keyPath))
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return cfg, pool
}
