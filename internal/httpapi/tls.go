package httpapi

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Certificate holds the HTTP server's TLS certificate and key, read from
// two PEM files, and serves them to every TLS handshake through
// GetCertificate. Reload reads the files again: a good new pair serves
// the next handshakes (open connections keep theirs); a bad one is
// refused, the old pair stays. Safe for concurrent use.
type Certificate struct {
	certFile, keyFile string
	log               *slog.Logger
	cur               atomic.Pointer[tls.Certificate]

	reloads *prometheus.CounterVec
	expiry  prometheus.Gauge
}

// NewCertificate loads the pair certFile/keyFile. reg (may be nil)
// receives factory2_http_tls_reloads_total{result} and
// factory2_http_tls_certificate_expiry_timestamp_seconds.
func NewCertificate(certFile, keyFile string, log *slog.Logger, reg prometheus.Registerer) (*Certificate, error) {
	if certFile == "" || keyFile == "" {
		return nil, errors.New("httpapi: TLS needs both http.tls_cert_file and http.tls_key_file")
	}
	c := &Certificate{
		certFile: certFile, keyFile: keyFile, log: log,
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "factory2_http_tls_reloads_total",
			Help: "Reloads of the HTTP server's TLS certificate and key (on SIGHUP), by result (ok, error: the old pair stays).",
		}, []string{"result"}),
		expiry: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "factory2_http_tls_certificate_expiry_timestamp_seconds",
			Help: "Unix time when the TLS certificate the HTTP server presents expires.",
		}),
	}
	c.reloads.WithLabelValues("ok")
	c.reloads.WithLabelValues("error")
	if err := c.load(); err != nil {
		return nil, err
	}
	if reg != nil {
		if err := reg.Register(c.reloads); err != nil {
			return nil, fmt.Errorf("httpapi: registering TLS metrics: %w", err)
		}
		if err := reg.Register(c.expiry); err != nil {
			return nil, fmt.Errorf("httpapi: registering TLS metrics: %w", err)
		}
	}
	return c, nil
}

// load reads the pair and, when it is good, serves it.
func (c *Certificate) load() error {
	pair, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return fmt.Errorf("httpapi: loading TLS certificate %s and key %s (check that both are PEM and belong together): %w", c.certFile, c.keyFile, err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return fmt.Errorf("httpapi: parsing TLS certificate %s: %w", c.certFile, err)
	}
	pair.Leaf = leaf
	c.cur.Store(&pair)
	c.expiry.Set(float64(leaf.NotAfter.Unix()))
	return nil
}

// Reload reads the files again. On error the previous pair keeps being
// served; the error is logged, counted and returned.
func (c *Certificate) Reload() error {
	if err := c.load(); err != nil {
		c.reloads.WithLabelValues("error").Inc()
		c.log.Error("TLS certificate reload failed; still serving the previous certificate", "err", err)
		return err
	}
	c.reloads.WithLabelValues("ok").Inc()
	leaf := c.cur.Load().Leaf
	c.log.Info("TLS certificate reloaded", "cert", c.certFile, "subject", leaf.Subject.String(), "not_after", leaf.NotAfter)
	return nil
}

// GetCertificate serves the current pair (tls.Config.GetCertificate).
func (c *Certificate) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return c.cur.Load(), nil
}

// tlsConfig is the server's TLS configuration: TLS 1.2 at least, the
// certificate from c.
func (c *Certificate) tlsConfig() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: c.GetCertificate}
}
