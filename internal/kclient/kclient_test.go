package kclient

import (
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	pw := SASL{Mechanism: "SCRAM-SHA-512", Username: "factory2", PasswordEnv: "PW"}
	for _, tc := range []struct {
		name string
		sec  Security
		want []string // substrings, one per error; none: valid
	}{
		{"zero", Security{}, nil},
		{"scram", Security{SASL: pw}, nil},
		{"tls and scram", Security{TLS: TLS{Enabled: true, CAFile: "ca.pem"}, SASL: pw}, nil},
		{"unknown mechanism", Security{SASL: SASL{Mechanism: "GSSAPI", Username: "u", PasswordEnv: "PW"}},
			[]string{`kafka.sasl.mechanism "GSSAPI": unknown`}},
		{"lower case mechanism", Security{SASL: SASL{Mechanism: "scram-sha-256", Username: "u", PasswordEnv: "PW"}},
			[]string{"did you mean SCRAM-SHA-256"}},
		{"no password", Security{SASL: SASL{Mechanism: "SCRAM-SHA-256", Username: "u"}},
			[]string{"exactly one of password_file and password_env"}},
		{"two passwords", Security{SASL: SASL{Mechanism: "SCRAM-SHA-256", Username: "u", PasswordEnv: "A", PasswordFile: "f"}},
			[]string{"exactly one of password_file and password_env"}},
		{"no user", Security{SASL: SASL{Mechanism: "SCRAM-SHA-256", PasswordEnv: "A"}},
			[]string{"kafka.sasl.username: required"}},
		{"plain without tls", Security{SASL: SASL{Mechanism: "PLAIN", Username: "u", PasswordEnv: "A"}},
			[]string{"needs kafka.tls.enabled"}},
		{"oauth without token", Security{TLS: TLS{Enabled: true}, SASL: SASL{Mechanism: "OAUTHBEARER"}},
			[]string{"exactly one of token_file and token_env"}},
		{"oauth with user", Security{TLS: TLS{Enabled: true}, SASL: SASL{Mechanism: "OAUTHBEARER", TokenEnv: "T", Username: "u"}},
			[]string{"not used by OAUTHBEARER"}},
		{"sasl keys without mechanism", Security{SASL: SASL{Username: "u"}}, []string{"set mechanism"}},
		{"tls keys without enabled", Security{TLS: TLS{CAFile: "ca.pem"}}, []string{"need kafka.tls.enabled"}},
		{"cert without key", Security{TLS: TLS{Enabled: true, CertFile: "c.pem"}}, []string{"cert_file and key_file go together"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			errs := tc.sec.Validate()
			if len(errs) != len(tc.want) {
				t.Fatalf("errors %v, want %d: %q", errs, len(tc.want), tc.want)
			}
			for i, e := range errs {
				if !strings.Contains(e.Error(), tc.want[i]) {
					t.Errorf("error %q, want it to contain %q", e, tc.want[i])
				}
			}
		})
	}
}

// TestOptsReadsSecrets: Opts fails at once, naming the key and never the
// secret, when a file or variable is missing; and the secret read is
// trimmed of its final newline.
func TestOptsReadsSecrets(t *testing.T) {
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a := SASL{Mechanism: "SCRAM-SHA-256", Username: "u", PasswordFile: pwFile}
	if got, err := a.secret(); err != nil || got != "s3cret" {
		t.Fatalf("secret() = %q, %v; want s3cret", got, err)
	}
	if opts, err := (Security{SASL: a}).Opts(); err != nil || len(opts) != 1 {
		t.Fatalf("Opts() = %d options, %v; want 1 (SASL)", len(opts), err)
	}

	for _, tc := range []struct {
		name string
		sec  Security
		want string
	}{
		{"missing password file", Security{SASL: SASL{Mechanism: "SCRAM-SHA-256", Username: "u", PasswordFile: filepath.Join(dir, "nope")}},
			"kafka.sasl.password_file: open"},
		{"unset variable", Security{SASL: SASL{Mechanism: "SCRAM-SHA-256", Username: "u", PasswordEnv: "FACTORY2_TEST_UNSET_PW"}},
			"environment variable FACTORY2_TEST_UNSET_PW is unset"},
		{"missing ca", Security{TLS: TLS{Enabled: true, CAFile: filepath.Join(dir, "ca.pem")}}, "kafka.tls.ca_file: open"},
		{"ca without pem", Security{TLS: TLS{Enabled: true, CAFile: pwFile}}, "no PEM certificate"},
		{"unknown mechanism", Security{SASL: SASL{Mechanism: "X", Username: "u", PasswordFile: pwFile}}, "unknown"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.sec.Opts()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Opts() error %v, want one containing %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Fatalf("error %q shows the secret", err)
			}
			if _, err := New([]string{"127.0.0.1:1"}, tc.sec); err == nil {
				t.Fatal("New built a client with the broken security")
			}
		})
	}
	if errs := (Security{TLS: TLS{Enabled: true, CAFile: filepath.Join(dir, "ca.pem")}}).CheckFiles(); len(errs) != 1 {
		t.Errorf("CheckFiles of a missing CA: %v, want one error", errs)
	}
}

func TestResolvePaths(t *testing.T) {
	s := Security{TLS: TLS{CAFile: "tls/ca.pem", CertFile: "/abs/c.pem"}, SASL: SASL{PasswordFile: "pw"}}.ResolvePaths("/etc/factory2")
	if s.TLS.CAFile != "/etc/factory2/tls/ca.pem" || s.TLS.CertFile != "/abs/c.pem" || s.SASL.PasswordFile != "/etc/factory2/pw" || s.TLS.KeyFile != "" {
		t.Errorf("ResolvePaths: %+v", s)
	}
}

// TestOneConstructor: no code of the binary builds a Kafka client but
// this package, so that none can forget the security options. Tests and
// internal/kafkatest (test helpers) are exempt.
func TestOneConstructor(t *testing.T) {
	root := filepath.Join("..", "..")
	fset := token.NewFileSet()
	var found []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", "kafkatest", "kclient", "testdata", "deploy":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if x, ok := sel.X.(*ast.Ident); ok && x.Name == "kgo" &&
				(sel.Sel.Name == "NewClient" || sel.Sel.Name == "NewGroupTransactSession") {
				found = append(found, fset.Position(sel.Pos()).String())
			}
			return true
		})
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	for _, f := range found {
		t.Errorf("%s: builds a Kafka client without kclient (use kclient.New, or processors.NewClient with the shared options)", f)
	}
}

// TestMechanismsReadSecretEachTime: each mechanism has its name, sends
// the secret of its file, and reads the file again at the next
// authentication (a rotated password or token is used at once).
func TestMechanismsReadSecretEachTime(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "secret")
	write := func(s string) {
		if err := os.WriteFile(file, []byte(s+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		sasl SASL
		// sends reports whether the first message of an authentication
		// carries secret (SCRAM's carries only the user and a nonce).
		sends bool
	}{
		{SASL{Mechanism: "PLAIN", Username: "u", PasswordFile: file}, true},
		{SASL{Mechanism: "OAUTHBEARER", TokenFile: file}, true},
		{SASL{Mechanism: "SCRAM-SHA-256", Username: "u", PasswordFile: file}, false},
		{SASL{Mechanism: "SCRAM-SHA-512", Username: "u", PasswordFile: file}, false},
	} {
		t.Run(tc.sasl.Mechanism, func(t *testing.T) {
			write("first-secret")
			m, err := tc.sasl.mechanism()
			if err != nil {
				t.Fatal(err)
			}
			if m.Name() != tc.sasl.Mechanism {
				t.Errorf("mechanism name %q, want %q", m.Name(), tc.sasl.Mechanism)
			}
			for _, secret := range []string{"first-secret", "rotated-secret"} {
				write(secret)
				_, first, err := m.Authenticate(t.Context(), "127.0.0.1:9092")
				if err != nil {
					t.Fatal(err)
				}
				if got := strings.Contains(string(first), secret); got != tc.sends {
					t.Errorf("first message %q carries %q: %v, want %v", first, secret, got, tc.sends)
				}
			}
			if err := os.Remove(file); err != nil {
				t.Fatal(err)
			}
			if _, _, err := m.Authenticate(t.Context(), "127.0.0.1:9092"); err == nil {
				t.Error("authenticated with the secret's file gone")
			}
		})
	}
}
