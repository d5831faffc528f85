package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/factory2/factory2/avro"
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
	if len(cfg.Composes) != 3 || cfg.Composes[0].Cadence.MinInterval != 6*time.Hour ||
		cfg.Composes[1].Cadence.WindowEnd != "06:00" || len(cfg.Composes[1].SourceTags) != 2 || !cfg.Composes[2].Retired {
		t.Fatalf("composes %+v", cfg.Composes)
	}
}

// TestComposeEvent: a definition becomes its definition event, with an id
// of its content alone: the same for the same definition, another for
// another one.
func TestComposeEvent(t *testing.T) {
	cfg, err := Load("testdata/full.good.yml")
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.Composes[1]
	ev, err := c.Event()
	if err != nil {
		t.Fatal(err)
	}
	want := &avro.ComposeEvent{
		Envelope: avro.Envelope{ID: ev.ID, Source: DefinitionSource},
		Kind:     avro.ComposeDefinition, ComposeID: "fedora-42-updates", ProductVersion: "fedora-42",
		SourceTags: []string{"f42-updates", "f42"}, PackagesAllow: []string{"python-*", "bash"},
		SigningKey: "105ef944", DecisionContexts: []string{"bodhi_update_push_stable"},
		Cadence: avro.ComposeCadence{WindowStart: "00:00", WindowEnd: "06:00"},
	}
	if !reflect.DeepEqual(ev, want) || !strings.HasPrefix(ev.ID, "sha256:") {
		t.Fatalf("event %+v\nwant %+v", ev, want)
	}
	again, _ := c.Event()
	c.SourceTags = []string{"f42"}
	other, _ := c.Event()
	if again.ID != ev.ID || other.ID == ev.ID {
		t.Errorf("ids %s, again %s, changed definition %s", ev.ID, again.ID, other.ID)
	}
	rawhide, _ := cfg.Composes[0].Event()
	retired, _ := cfg.Composes[2].Event()
	if rawhide.Cadence.MinIntervalMS != 6*3600*1000 || !retired.Retired || retired.ComposeID != "fedora-40-updates" {
		t.Errorf("rawhide %+v, retired %+v", rawhide, retired)
	}
}

// exampleConfig is the commented example of the deploy directory.
var exampleConfig = filepath.Join("..", "..", "deploy", "factory2.example.yml")

// TestExampleConfig: the example configuration loads and validates, sets
// every key of every section (so it shows them all), and defines the
// Rawhide and Fedora 42 updates composes.
func TestExampleConfig(t *testing.T) {
	cfg, err := Load(exampleConfig)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(exampleConfig)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	for _, key := range yamlKeys(reflect.TypeFor[Config](), "") {
		if !hasKey(doc, strings.Split(key, ".")) {
			t.Errorf("the example does not set %s", key)
		}
	}
	var ids []string
	for _, c := range cfg.Composes {
		ids = append(ids, c.ID)
	}
	if !reflect.DeepEqual(ids, []string{"fedora-rawhide", "fedora-42-updates"}) {
		t.Errorf("example composes %v", ids)
	}
}

// yamlKeys lists the keys of t's fields, with those of struct fields
// (sections) as section.key; lists are keys of their own.
func yamlKeys(t reflect.Type, prefix string) []string {
	var keys []string
	for f := range t.Fields() {
		key := prefix + strings.Split(f.Tag.Get("yaml"), ",")[0]
		if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeFor[time.Duration]() {
			keys = append(keys, yamlKeys(f.Type, key+".")...)
			continue
		}
		keys = append(keys, key)
	}
	return keys
}

func hasKey(doc map[string]any, path []string) bool {
	v, ok := doc[path[0]]
	if !ok || len(path) == 1 {
		return ok
	}
	sub, _ := v.(map[string]any)
	return sub != nil && hasKey(sub, path[1:])
}

func TestLoadBad(t *testing.T) {
	for file, wants := range map[string][]string{
		"unknown-key.bad.yml": {"line 3", "commit_intervall"},
		"gating-bounds.bad.yml": {
			"gating.max_subject_bytes 1048576: must be in (0, 786432]",
			"gating.max_policy_file_bytes 0: must be positive",
		},
		"compose-unknown-key.bad.yml": {"line 5", "min_intervall"},
		"composes.bad.yml": {
			"composes[0]: id: required",
			`composes[1] (fedora-rawhide): source_tags: entry 2 "f45" repeats an earlier one`,
			`composes[1] (fedora-rawhide): packages_allow: entry 1 "python-[*" is not a glob`,
			`composes[1] (fedora-rawhide): signing_key: "fedora-45" is not a hexadecimal key id`,
			"composes[1] (fedora-rawhide): cadence.min_interval -1h0m0s: must not be negative",
			`composes[1] (fedora-rawhide): cadence.window_start: "24:00" is not a time of day as HH:MM`,
			"composes[2] (fedora-rawhide): id: also the id of composes[1]",
			"composes[3] (fedora-42-updates): source_tags: missing (a definition needs at least one source tag, unless it is retired)",
			"composes[3] (fedora-42-updates): decision_contexts: entry 1 is blank",
			"composes[3] (fedora-42-updates): cadence: window_start and window_end go together",
			"composes[4] (eln): cadence: window_start and window_end are both 03:00",
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
