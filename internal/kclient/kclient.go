// Package kclient is the one place factory2 turns its Kafka security
// settings (the kafka: section of the configuration) into franz-go
// options, and the one constructor of Kafka clients outside the
// processors package (which builds its own through Config.ClientOpts,
// always appended). A client built any other way would silently connect
// in plaintext and unauthenticated; `grep kgo.NewClient` must find none
// outside this package, processors' newClient and tests.
//
// TLS: a CA file (else the system's roots), an optional client
// certificate and key (mutual TLS), an optional server name (else the
// broker's host). SASL: SCRAM-SHA-256, SCRAM-SHA-512, PLAIN or
// OAUTHBEARER (a static token). Secrets come from files or environment
// variables, never from the configuration file itself, and are read
// again at each authentication, so a rotated password or token file is
// picked up by the next connection.
package kclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/oauth"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/factory2/factory2/internal/secret"
)

// Security is how factory2 connects to Kafka: the kafka: section of the
// configuration file. The zero value is plaintext without authentication,
// which suits only a broker on a trusted network (make kafka-up).
type Security struct {
	TLS  TLS  `yaml:"tls"`
	SASL SASL `yaml:"sasl"`
}

// TLS configures TLS to the brokers.
type TLS struct {
	// Enabled turns TLS on; the other keys need it.
	Enabled bool `yaml:"enabled"`
	// CAFile is a PEM file of the CA certificates that sign the brokers'
	// certificates; empty: the system's roots.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are a PEM client certificate and its key, for
	// brokers that ask for one (mutual TLS); both or neither.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName is the name the brokers' certificates must carry; empty:
	// the host of each broker's address.
	ServerName string `yaml:"server_name"`
}

// SASL configures SASL authentication.
type SASL struct {
	// Mechanism is SCRAM-SHA-256, SCRAM-SHA-512, PLAIN or OAUTHBEARER;
	// empty: no SASL.
	Mechanism string `yaml:"mechanism"`
	// Username is the SCRAM or PLAIN user.
	Username string `yaml:"username"`
	// PasswordFile or PasswordEnv (exactly one) holds the password of
	// SCRAM and PLAIN: a file (one line; a final newline is ignored) or an
	// environment variable's name.
	PasswordFile string `yaml:"password_file"`
	PasswordEnv  string `yaml:"password_env"`
	// TokenFile or TokenEnv (exactly one) holds the OAUTHBEARER token.
	TokenFile string `yaml:"token_file"`
	TokenEnv  string `yaml:"token_env"`
}

// Mechanisms are the SASL mechanisms factory2 supports.
var Mechanisms = []string{"SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN", "OAUTHBEARER"}

// Enabled reports whether s asks for anything beyond plaintext.
func (s Security) Enabled() bool { return s.TLS.Enabled || s.SASL.Mechanism != "" }

// ResolvePaths returns s with its relative file paths made relative to
// dir (the configuration file's directory).
func (s Security) ResolvePaths(dir string) Security {
	for _, p := range []*string{&s.TLS.CAFile, &s.TLS.CertFile, &s.TLS.KeyFile, &s.SASL.PasswordFile, &s.SASL.TokenFile} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	return s
}

// Validate reports every problem of s that needs no file or environment
// to see, each prefixed with its key under kafka. Load reports what it
// cannot read.
func (s Security) Validate() []error {
	var errs []error
	t := s.TLS
	if !t.Enabled && (t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" || t.ServerName != "") {
		errs = append(errs, errors.New("kafka.tls: ca_file, cert_file, key_file and server_name need kafka.tls.enabled: true"))
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		errs = append(errs, errors.New("kafka.tls: cert_file and key_file go together: set both (mutual TLS) or neither"))
	}
	a := s.SASL
	switch a.Mechanism {
	case "":
		if a != (SASL{}) {
			errs = append(errs, fmt.Errorf("kafka.sasl: set mechanism (one of %s) or remove the section", strings.Join(Mechanisms, ", ")))
		}
		return errs
	case "SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN":
		if a.Username == "" {
			errs = append(errs, fmt.Errorf("kafka.sasl.username: required by %s", a.Mechanism))
		}
		if (a.PasswordFile == "") == (a.PasswordEnv == "") {
			errs = append(errs, fmt.Errorf("kafka.sasl: %s needs exactly one of password_file and password_env (passwords are never written in the configuration file)", a.Mechanism))
		}
		if a.TokenFile != "" || a.TokenEnv != "" {
			errs = append(errs, fmt.Errorf("kafka.sasl: token_file and token_env are for OAUTHBEARER, not %s", a.Mechanism))
		}
	case "OAUTHBEARER":
		if (a.TokenFile == "") == (a.TokenEnv == "") {
			errs = append(errs, errors.New("kafka.sasl: OAUTHBEARER needs exactly one of token_file and token_env"))
		}
		if a.Username != "" || a.PasswordFile != "" || a.PasswordEnv != "" {
			errs = append(errs, errors.New("kafka.sasl: username, password_file and password_env are not used by OAUTHBEARER: remove them"))
		}
	default:
		hint := ""
		if i := slices.IndexFunc(Mechanisms, func(m string) bool { return strings.EqualFold(m, a.Mechanism) }); i >= 0 {
			hint = fmt.Sprintf(" (did you mean %s? names are upper case)", Mechanisms[i])
		}
		errs = append(errs, fmt.Errorf("kafka.sasl.mechanism %q: unknown; want one of %s%s", a.Mechanism, strings.Join(Mechanisms, ", "), hint))
	}
	if (a.Mechanism == "PLAIN" || a.Mechanism == "OAUTHBEARER") && !t.Enabled {
		errs = append(errs, fmt.Errorf("kafka.sasl.mechanism %s sends the secret itself to the broker: it needs kafka.tls.enabled: true", a.Mechanism))
	}
	return errs
}

// Opts returns the franz-go options that apply s: a TLS dialer and a SASL
// mechanism, or none for plaintext. It reads the certificate files and
// checks that the secret's file or variable can be read, so that a
// mistake is reported at startup rather than at the first connection.
func (s Security) Opts() ([]kgo.Opt, error) {
	if errs := s.Validate(); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	var opts []kgo.Opt
	if s.TLS.Enabled {
		tc, err := s.TLS.config()
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	if s.SASL.Mechanism != "" {
		m, err := s.SASL.mechanism()
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.SASL(m))
	}
	return opts, nil
}

// New returns a client of brokers with extra, secured by sec. Every
// Kafka client of the binary is built here or by NewClient.
func New(brokers []string, sec Security, extra ...kgo.Opt) (*kgo.Client, error) {
	opts, err := sec.Opts()
	if err != nil {
		return nil, err
	}
	return NewClient(brokers, opts, extra...)
}

// NewClient returns a client of brokers with opts, then shared: the
// process's shared options (those of Security.Opts, and hooks), always
// last so that no caller can leave them out or override them. It is for
// packages that receive the shared options ready-made (processors'
// Config.ClientOpts, ingest's ProducerConfig.ClientOpts).
func NewClient(brokers []string, shared []kgo.Opt, opts ...kgo.Opt) (*kgo.Client, error) {
	return kgo.NewClient(all(brokers, shared, opts)...)
}

// NewGroupTransactSession is NewClient for a transactional consumer
// group session (the processors' runner and apply).
func NewGroupTransactSession(brokers []string, shared []kgo.Opt, opts ...kgo.Opt) (*kgo.GroupTransactSession, error) {
	return kgo.NewGroupTransactSession(all(brokers, shared, opts)...)
}

func all(brokers []string, shared, opts []kgo.Opt) []kgo.Opt {
	out := make([]kgo.Opt, 0, 1+len(opts)+len(shared))
	out = append(out, kgo.SeedBrokers(brokers...))
	out = append(out, opts...)
	return append(out, shared...)
}

// config builds the tls.Config of t.
func (t TLS) config() (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("kafka.tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("kafka.tls.ca_file %s: no PEM certificate in it", t.CAFile)
		}
		tc.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("kafka.tls.cert_file, key_file: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// mechanism builds the SASL mechanism of a, after reading its secret
// once to report a missing one now.
func (a SASL) mechanism() (sasl.Mechanism, error) {
	if _, err := a.secret(); err != nil {
		return nil, err
	}
	switch a.Mechanism {
	case "SCRAM-SHA-256", "SCRAM-SHA-512":
		auth := func(context.Context) (scram.Auth, error) {
			pw, err := a.secret()
			return scram.Auth{User: a.Username, Pass: pw}, err
		}
		if a.Mechanism == "SCRAM-SHA-256" {
			return scram.Sha256(auth), nil
		}
		return scram.Sha512(auth), nil
	case "PLAIN":
		return plain.Plain(func(context.Context) (plain.Auth, error) {
			pw, err := a.secret()
			return plain.Auth{User: a.Username, Pass: pw}, err
		}), nil
	default: // OAUTHBEARER; Validate allows nothing else
		return oauth.Oauth(func(context.Context) (oauth.Auth, error) {
			tok, err := a.secret()
			return oauth.Auth{Token: tok}, err
		}), nil
	}
}

// secret reads the password or token of a from its file or environment
// variable. Errors name the key and the file or variable, never the
// secret.
func (a SASL) secret() (string, error) {
	key, file, env := "password", a.PasswordFile, a.PasswordEnv
	if a.Mechanism == "OAUTHBEARER" {
		key, file, env = "token", a.TokenFile, a.TokenEnv
	}
	return secret.Read("kafka.sasl."+key+"_file", file, "kafka.sasl."+key+"_env", env)
}

// CheckFiles reports every file of s (certificates, secret files) that
// cannot be read or used, for `factory2 config check`. Environment
// variables are not checked: the checking shell need not have them.
func (s Security) CheckFiles() []error {
	var errs []error
	if s.TLS.Enabled {
		if _, err := s.TLS.config(); err != nil {
			errs = append(errs, err)
		}
	}
	if f := s.SASL.PasswordFile + s.SASL.TokenFile; f != "" && s.SASL.Mechanism != "" {
		if _, err := s.SASL.secret(); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}
