package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/factory2/factory2/internal/httpapi"
)

// writePair writes a self-signed certificate and its key to dir.
func writePair(t *testing.T, dir string, serial int64) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// TestReloadOnHangup: SIGHUP makes the serving process reload its TLS
// certificate.
func TestReloadOnHangup(t *testing.T) {
	// Catch SIGHUP in the test too: until reloadOnHangup has registered,
	// a SIGHUP must not end the test binary.
	guard := make(chan os.Signal, 16)
	signal.Notify(guard, syscall.SIGHUP)
	defer signal.Stop(guard)

	dir := t.TempDir()
	certFile, keyFile := writePair(t, dir, 1)
	reg := prometheus.NewRegistry()
	cert, err := httpapi.NewCertificate(certFile, keyFile, slog.New(slog.DiscardHandler), reg)
	if err != nil {
		t.Fatal(err)
	}
	writePair(t, dir, 2)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); reloadOnHangup(ctx, cert) }()
	defer func() { cancel(); <-done }()

	deadline := time.Now().Add(30 * time.Second)
	for {
		if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		if n, err := testutil.GatherAndCount(reg, "factory2_http_tls_reloads_total"); err != nil || n == 0 {
			t.Fatalf("reload metric: %d series, %v", n, err)
		}
		got, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		if reloadsOK(got) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("SIGHUP never reloaded the certificate")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if s, _ := cert.GetCertificate(nil); s.Leaf.SerialNumber.Int64() != 2 {
		t.Fatalf("serves certificate %d after SIGHUP, want 2", s.Leaf.SerialNumber.Int64())
	}
}

// reloadsOK reads factory2_http_tls_reloads_total{result="ok"}.
func reloadsOK(mfs []*dto.MetricFamily) float64 {
	for _, mf := range mfs {
		if mf.GetName() != "factory2_http_tls_reloads_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" && strings.EqualFold(l.GetValue(), "ok") {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}
