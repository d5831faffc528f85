package config

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestSecureExample: deploy's secured example is valid, its files are
// relative to its directory, and config check reports a CA it cannot
// read by its key.
func TestSecureExample(t *testing.T) {
	const path = "../../deploy/factory2.secure.example.yml"
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	k := cfg.Kafka
	if want := filepath.Join("..", "..", "deploy", "kafka", "ca.crt"); !k.TLS.Enabled || k.TLS.CAFile != want {
		t.Errorf("kafka.tls: %+v, want enabled with ca_file %s", k.TLS, want)
	}
	if k.SASL.Mechanism != "SCRAM-SHA-512" || k.SASL.Username != "factory2" || k.SASL.PasswordEnv != "FACTORY2_KAFKA_PASSWORD" || k.SASL.PasswordFile != "" {
		t.Errorf("kafka.sasl: %+v", k.SASL)
	}
	k.TLS.CAFile = filepath.Join(t.TempDir(), "ca.crt")
	errs := k.CheckFiles()
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "kafka.tls.ca_file") {
		t.Errorf("CheckFiles without the CA: %v, want one error naming kafka.tls.ca_file", errs)
	}
}
