package kafkatest

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/factory2/factory2/internal/kclient"
)

// SecureBroker is a private secured broker (kafka.sh up-secure): TLS with
// the test CA, SCRAM users admin (super user), factory2 and hooks, the
// StandardAuthorizer with no ACL yet. See deploy/kafka/kafka.sh.
type SecureBroker struct {
	b *Brokers
	// Addr is the SASL_SSL listener's host:port.
	Addr string
	// Dir is the node's directory: tls/, secrets/, logs/.
	Dir string
}

// The SCRAM users of a SecureBroker.
const (
	UserAdmin    = "admin"
	UserFactory2 = "factory2"
	UserHooks    = "hooks"
)

// StartSecureBroker starts a private secured broker on free loopback
// ports, killed when t ends; like StartBrokers, it skips or fails t when
// Java or the jars are missing, and skips in -short mode.
func StartSecureBroker(t testing.TB) *SecureBroker {
	t.Helper()
	if testing.Short() {
		t.Skip("kafkatest: skipped in -short mode: starts a private Kafka broker (make test runs it)")
		return nil
	}
	b, err := newBrokers(t, 1, brokersCfg{})
	if err != nil {
		t.Fatalf("kafkatest: %v", err)
		return nil
	}
	b.nodes = []string{"secure"}
	if err := b.prerequisites(t.Context()); err != nil {
		skipOrFail(t, err)
		return nil
	}
	t.Cleanup(b.cleanup)
	began := time.Now()
	err = b.upOnFreePorts(3, func(ports []int) []string {
		return []string{
			"FACTORY2_KAFKA_SECURE_PORT=" + strconv.Itoa(ports[0]),
			"FACTORY2_KAFKA_SECURE_CONTROLLER_PORT=" + strconv.Itoa(ports[1]),
			"FACTORY2_KAFKA_SECURE_INTERNAL_PORT=" + strconv.Itoa(ports[2]),
		}
	}, "up-secure")
	if err != nil {
		t.Fatalf("kafkatest: starting a secured broker in %s: %v", b.dir, err)
		return nil
	}
	b.running[0] = true
	s := &SecureBroker{b: b, Addr: b.addrs[0], Dir: filepath.Join(b.dir, "secure")}
	t.Logf("kafkatest: secured broker at %s ready after %v (run directory %s)",
		s.Addr, time.Since(began).Round(100*time.Millisecond), s.Dir)
	return s
}

// CAFile is the PEM file of the test CA.
func (s *SecureBroker) CAFile() string { return filepath.Join(s.Dir, "tls", "ca.crt") }

// ClientCert returns the client certificate and key files the test CA
// signed (CN=factory2-client).
func (s *SecureBroker) ClientCert() (cert, key string) {
	return filepath.Join(s.Dir, "tls", "client.crt"), filepath.Join(s.Dir, "tls", "client.key")
}

// PasswordFile is the file holding user's password.
func (s *SecureBroker) PasswordFile(user string) string {
	return filepath.Join(s.Dir, "secrets", user+".password")
}

// Password returns user's password, failing t if it cannot be read.
func (s *SecureBroker) Password(t testing.TB, user string) string {
	t.Helper()
	data, err := os.ReadFile(s.PasswordFile(user))
	if err != nil {
		t.Fatalf("kafkatest: %v", err)
	}
	return strings.TrimSpace(string(data))
}

// Security returns the kafka section that connects as user: TLS with the
// test CA, SCRAM-SHA-512 with user's password file.
func (s *SecureBroker) Security(user string) kclient.Security {
	return kclient.Security{
		TLS:  kclient.TLS{Enabled: true, CAFile: s.CAFile()},
		SASL: kclient.SASL{Mechanism: "SCRAM-SHA-512", Username: user, PasswordFile: s.PasswordFile(user)},
	}
}

// InternalAddr is the inter-broker listener's host:port: TLS with a
// client certificate the test CA signed required, no SASL; the
// certificate's subject is the principal (User:CN=...).
func (s *SecureBroker) InternalAddr(t testing.TB) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(s.Dir, "server.properties"))
	if err != nil {
		t.Fatalf("kafkatest: %v", err)
	}
	m := regexp.MustCompile(`(?m)^listeners=.*INTERNAL://([^,\s]+)`).FindSubmatch(data)
	if m == nil {
		t.Fatalf("kafkatest: no INTERNAL listener in %s/server.properties", s.Dir)
	}
	return string(m[1])
}

// Env returns the broker as an [Env], for [Topic] and [UniqueName]; its
// clients must be built with [SecureBroker.Security].
func (s *SecureBroker) Env() *Env { return &Env{brokers: []string{s.Addr}} }
