package config

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLoadKoji: the Koji enrichment is off by default, on with a hub URL;
// a URL without a scheme and a zero timeout are reported together.
func TestLoadKoji(t *testing.T) {
	if d := Default().Ingest; d.KojiHubURL != "" || d.KojiTimeout != 10*time.Second {
		t.Fatalf("defaults %+v", d)
	}
	cfg, err := Load("testdata/koji.good.yml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Ingest.KojiHubURL != "https://koji.example.org/kojihub" || cfg.Ingest.KojiTimeout != 20*time.Second {
		t.Fatalf("ingest %+v", cfg.Ingest)
	}
	_, err = Load(filepath.Join("testdata", "koji.bad.yml"))
	for _, w := range []string{`ingest.koji_hub_url "koji.example.org/kojihub": want an http(s) URL`, "ingest.koji_timeout 0s", "koji.bad.yml"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error %v does not mention %q", err, w)
		}
	}
}
