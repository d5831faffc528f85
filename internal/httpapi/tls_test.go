package httpapi

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// selfSigned returns a PEM certificate for 127.0.0.1 with serial, its
// PEM key, and the parsed certificate.
func selfSigned(t *testing.T, serial int64) (certPEM, keyPEM []byte, cert *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: "factory2 test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour * time.Duration(serial)),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err = x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), cert
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// servedSerial opens a new TLS connection to srv and returns the serial
// of the certificate it presents.
func servedSerial(t *testing.T, srv *Server, pool *x509.CertPool) int64 {
	t.Helper()
	conn, err := tls.Dial("tcp", strings.TrimPrefix(srv.URL(), "https://"), &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatalf("TLS handshake: %v", err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
}

// TestTLSReload: the server speaks HTTPS with the configured pair; a
// reload with a new pair is seen by the next handshake; a broken pair is
// refused, counted, and the previous one keeps being served.
func TestTLSReload(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	c1, k1, x1 := selfSigned(t, 1)
	c2, k2, x2 := selfSigned(t, 2)
	writeFile(t, certFile, c1)
	writeFile(t, keyFile, k1)
	pool := x509.NewCertPool()
	pool.AddCert(x1)
	pool.AddCert(x2)

	reg := prometheus.NewRegistry()
	cert, err := NewCertificate(certFile, keyFile, slog.New(slog.DiscardHandler), reg)
	if err != nil {
		t.Fatal(err)
	}
	srv := start(t, Options{TLS: cert}, func(*Server) {})
	if !strings.HasPrefix(srv.URL(), "https://") {
		t.Fatalf("URL %s, want https", srv.URL())
	}
	if got := servedSerial(t, srv, pool); got != 1 {
		t.Fatalf("serves certificate %d, want 1", got)
	}
	cl := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: patience}
	t.Cleanup(cl.CloseIdleConnections)
	resp, err := cl.Get(srv.URL() + "/healthz")
	if err != nil {
		t.Fatalf("GET /healthz over TLS: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /healthz over TLS: %s", resp.Status)
	}
	// Plain HTTP is not served.
	if resp, err := http.Get(strings.Replace(srv.URL(), "https://", "http://", 1) + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Error("plain HTTP answered 200 on a TLS server")
		}
	}

	writeFile(t, certFile, c2)
	writeFile(t, keyFile, k2)
	if err := cert.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if got := servedSerial(t, srv, pool); got != 2 {
		t.Fatalf("after reload serves certificate %d, want 2", got)
	}

	// A mismatched pair, then garbage: both refused, 2 still served.
	writeFile(t, certFile, c1)
	if err := cert.Reload(); err == nil {
		t.Error("Reload of a certificate with another certificate's key succeeded")
	}
	writeFile(t, certFile, []byte("not PEM"))
	if err := cert.Reload(); err == nil {
		t.Error("Reload of garbage succeeded")
	}
	if got := servedSerial(t, srv, pool); got != 2 {
		t.Fatalf("after failed reloads serves certificate %d, want 2", got)
	}
	if ok, bad := testutil.ToFloat64(cert.reloads.WithLabelValues("ok")), testutil.ToFloat64(cert.reloads.WithLabelValues("error")); ok != 1 || bad != 2 {
		t.Errorf("reloads ok=%v error=%v, want 1 and 2", ok, bad)
	}
	if got := testutil.ToFloat64(cert.expiry); got != float64(x2.NotAfter.Unix()) {
		t.Errorf("expiry %v, want %v (certificate 2)", got, x2.NotAfter.Unix())
	}
}

// TestNewCertificateErrors: a missing file or half a pair is refused
// with an error naming the keys or files.
func TestNewCertificateErrors(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	if _, err := NewCertificate("a.crt", "", log, nil); err == nil || !strings.Contains(err.Error(), "http.tls_key_file") {
		t.Errorf("half a pair: %v", err)
	}
	if _, err := NewCertificate("/nonexistent/a.crt", "/nonexistent/a.key", log, nil); err == nil || !strings.Contains(err.Error(), "/nonexistent/a.crt") {
		t.Errorf("missing files: %v", err)
	}
}
