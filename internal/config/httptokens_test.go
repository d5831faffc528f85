package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeConfig writes files (path relative to a new directory: content)
// and returns the directory.
func writeConfig(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestHTTPTokenSources: tokens come from a file relative to the
// configuration's directory (its final newline dropped), an absolute
// file, or an environment variable, and a protected read with its token
// in a file is valid.
func TestHTTPTokenSources(t *testing.T) {
	t.Setenv("FACTORY2_TEST_ADMIN_TOKEN", "admin-from-env")
	abs := writeConfig(t, map[string]string{"read": "read-from-abs-file\r\n"})
	dir := writeConfig(t, map[string]string{
		"secrets/events": "events-from-file\n",
		"factory2.yml": "http:\n  token_file: secrets/events\n  admin_token_env: FACTORY2_TEST_ADMIN_TOKEN\n" +
			"  read_token_file: " + filepath.Join(abs, "read") + "\n  protect_reads: true\n",
	})
	path := filepath.Join(dir, "factory2.yml")
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "secrets", "events"); cfg.HTTP.TokenFile != want {
		t.Errorf("token_file %q, want %q", cfg.HTTP.TokenFile, want)
	}
	if !cfg.HTTP.HasTokenFiles() || Default().HTTP.HasTokenFiles() {
		t.Errorf("HasTokenFiles: %v for the file, %v for the defaults", cfg.HTTP.HasTokenFiles(), Default().HTTP.HasTokenFiles())
	}
	a, err := cfg.HTTP.Auth()
	if err != nil {
		t.Fatal(err)
	}
	if a.EventsToken != "events-from-file" || a.AdminToken != "admin-from-env" || a.ReadToken != "read-from-abs-file" || !a.ProtectReads {
		t.Errorf("auth %+v", a)
	}
	o, err := cfg.HTTP.ServerOptions()
	if err != nil || o.Auth != a {
		t.Errorf("ServerOptions: %+v, %v; want the same tokens as Auth", o.Auth, err)
	}
	if err := Check(path); err != nil {
		t.Errorf("Check: %v", err)
	}
}

// TestHTTPTokenSourcesBad: a file that is missing, empty or holds a
// token with a space, an unset variable, and an admin token equal to the
// read token are all reported, naming the key, file or variable, and
// never the token.
func TestHTTPTokenSourcesBad(t *testing.T) {
	t.Setenv("FACTORY2_TEST_UNSET", "")
	dir := writeConfig(t, map[string]string{
		"empty":  "\n",
		"spaced": "two words-s3cret\n",
		"read":   "same-s3cret\n",
		"admin":  "same-s3cret",
	})
	cases := []struct {
		http  HTTP
		wants []string
	}{
		{HTTP{TokenFile: filepath.Join(dir, "missing")}, []string{"http.token_file: open " + filepath.Join(dir, "missing")}},
		{HTTP{TokenFile: filepath.Join(dir, "empty")}, []string{"http.token_file " + filepath.Join(dir, "empty") + ": empty"}},
		{HTTP{ReadTokenFile: filepath.Join(dir, "spaced")}, []string{"http.read_token_file " + filepath.Join(dir, "spaced") + ": the token must not contain spaces"}},
		{HTTP{AdminTokenEnv: "FACTORY2_TEST_UNSET", TokenEnv: "FACTORY2_TEST_NEVER_SET"}, []string{
			"http.admin_token_env: environment variable FACTORY2_TEST_UNSET is unset or empty",
			"http.token_env: environment variable FACTORY2_TEST_NEVER_SET is unset or empty",
		}},
		{HTTP{ReadTokenFile: filepath.Join(dir, "read"), AdminTokenFile: filepath.Join(dir, "admin")}, []string{"http.admin_token: must differ"}},
	}
	for _, c := range cases {
		_, err := c.http.Auth()
		if err == nil {
			t.Errorf("%+v: want an error", c.http)
			continue
		}
		for _, w := range c.wants {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error %q does not say %q", err, w)
			}
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("error %q says the token", err)
		}
	}
	// config check reads the files (not the variables).
	cfgDir := writeConfig(t, map[string]string{"factory2.yml": "http:\n  token_file: nowhere\n  read_token_env: FACTORY2_TEST_NEVER_SET\n"})
	err := Check(filepath.Join(cfgDir, "factory2.yml"))
	if err == nil || !strings.Contains(err.Error(), "http.token_file: open "+filepath.Join(cfgDir, "nowhere")) {
		t.Errorf("Check: %v, want the missing token file reported", err)
	}
	if err != nil && strings.Contains(err.Error(), "FACTORY2_TEST_NEVER_SET") {
		t.Errorf("Check reads environment variables: %v", err)
	}
}
