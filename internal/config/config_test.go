package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadGood(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.good.yml")
	if len(files) == 0 {
		t.Fatal("no good fixtures")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			if _, err := Load(f); err != nil {
				t.Fatal(err)
			}
		})
	}
	cfg, err := Load("testdata/full.good.yml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Processing.CommitInterval != 50*time.Millisecond || cfg.Topics.Partitions != 12 ||
		len(cfg.Gating.SigningRules) != 1 || cfg.Gating.SigningRules[0].Priority != 10 ||
		cfg.HTTP.MaxBodyBytes != Default().HTTP.MaxBodyBytes ||
		cfg.Gating.MaxSubjectBytes != 600000 || cfg.Gating.MaxPolicyFileBytes != 131072 ||
		cfg.Processing.Threads != 4 || cfg.Processing.MaxTaskIdle != 20*time.Millisecond {
		t.Fatalf("unexpected config: %+v", cfg)
	}
}

func TestLoadBad(t *testing.T) {
	for file, wants := range map[string][]string{
		"unknown-key.bad.yml": {"line 3", "commit_intervall"},
		"gating-bounds.bad.yml": {
			"gating.max_subject_bytes 1048576: must be in (0, 786432]",
			"gating.max_policy_file_bytes 0: must be positive",
		},
		"invalid.bad.yml": {
			`"nohostport"`, "instance_id", "partitions 0", "commit_interval 0s",
			"http.addr", "signing rule no-key: key_id is required",
		},
	} {
		t.Run(file, func(t *testing.T) {
			_, err := Load(filepath.Join("testdata", file))
			if err == nil {
				t.Fatal("want an error")
			}
			for _, w := range wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if !strings.Contains(err.Error(), file) {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yml"))
	if !os.IsNotExist(unwrapAll(err)) {
		t.Fatalf("want not-exist, got %v", err)
	}
}

func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return err
		}
		err = u.Unwrap()
	}
}

// TestLoadHTTPBounds: the HTTP and ingest bounds load from the file, and
// become the HTTP server's options.
func TestLoadHTTPBounds(t *testing.T) {
	cfg, err := Load("testdata/full.good.yml")
	if err != nil {
		t.Fatal(err)
	}
	want := HTTP{
		Addr: "127.0.0.1:8081", Token: "s3cret", MaxBodyBytes: Default().HTTP.MaxBodyBytes,
		ReadTimeout: 20 * time.Second, WriteTimeout: 40 * time.Second, IdleTimeout: 90 * time.Second,
		MaxInflightRequests: 256, MaxInflightBodyBytes: 32 << 20,
	}
	if cfg.HTTP != want || cfg.Ingest.MaxEventBytes != 500000 {
		t.Fatalf("http %+v, ingest %+v; want http %+v, max_event_bytes 500000", cfg.HTTP, cfg.Ingest, want)
	}
	o := cfg.HTTP.ServerOptions()
	if o.ReadTimeout != want.ReadTimeout || o.WriteTimeout != want.WriteTimeout || o.IdleTimeout != want.IdleTimeout || o.MaxInflightRequests != 256 {
		t.Fatalf("server options %+v", o)
	}
	if err := Default().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
}

// TestLoadBadHTTPBounds: every bad bound is reported at once.
func TestLoadBadHTTPBounds(t *testing.T) {
	const file = "http-bounds.bad.yml"
	_, err := Load(filepath.Join("testdata", file))
	if err == nil {
		t.Fatal("want an error")
	}
	for _, w := range []string{
		"http.read_timeout 0s", "http.write_timeout -1s", "http.idle_timeout 0s", "http.max_inflight_requests 0",
		"http.max_inflight_body_bytes 4194304: at least http.max_body_bytes (8388608)", "ingest.max_event_bytes 0", file,
	} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %q", err, w)
		}
	}
}

func TestDefaultGatingBounds(t *testing.T) {
	cfg, err := Load("testdata/empty.good.yml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Gating.MaxSubjectBytes != 512<<10 || cfg.Gating.MaxPolicyFileBytes != 256<<10 {
		t.Fatalf("gating bounds %d, %d; want 512 KiB, 256 KiB", cfg.Gating.MaxSubjectBytes, cfg.Gating.MaxPolicyFileBytes)
	}
}
