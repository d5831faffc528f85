package config

import (
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/factory2/factory2/avro"
)

var update = flag.Bool("update", false, "rewrite deploy/config-reference.md from the configuration's definition")

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
// Rawhide and Fedora 42 updates composes. It runs as is against `make
// kafka-up`: one broker at 127.0.0.1:29092, replication 1, the example
// policies of deploy/policies (relative to the file), from which the
// gating engine builds, and `config check` finds nothing.
func TestExampleConfig(t *testing.T) {
	cfg, err := Load(exampleConfig)
	if err != nil {
		t.Fatal(err)
	}
	if err := Check(exampleConfig); err != nil {
		t.Errorf("Check: %v", err)
	}
	if !reflect.DeepEqual(cfg.Brokers, []string{"127.0.0.1:29092"}) || cfg.Topics.Replication != 1 || cfg.Topics.MinInSyncReplicas > 1 {
		t.Errorf("not for make kafka-up: brokers %v, replication %d, min.insync.replicas %d",
			cfg.Brokers, cfg.Topics.Replication, cfg.Topics.MinInSyncReplicas)
	}
	if want := filepath.Join("..", "..", "deploy", "policies"); !reflect.DeepEqual(cfg.Gating.Policies, []string{want}) {
		t.Errorf("policies %v, want [%s]", cfg.Gating.Policies, want)
	}
	eng, err := cfg.GatingEngine()
	if err != nil {
		t.Fatal(err)
	}
	var policies []string
	for _, p := range eng.Policies().Policies() {
		policies = append(policies, p.ID)
	}
	if !reflect.DeepEqual(policies, []string{"fedora_updates_testing", "fedora_updates_stable", "fedora_rawhide_compose"}) {
		t.Errorf("example policies %v", policies)
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
		"unknown-key.bad.yml": {"line 3", `unknown key "commit_intervall"; did you mean commit_interval?`},
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
		"http-security.bad.yml": {
			"http.tls_cert_file and http.tls_key_file: set both",
			"http.admin_token: must differ from http.token",
			"http.read_token: must not contain spaces",
		},
		"http-protect.bad.yml": {
			"http.tls_cert_file and http.tls_key_file: set both",
			"http.protect_reads: needs http.read_token",
		},
		"http-token-sources.bad.yml": {
			"http.token: set at most one of http.token, http.token_file and http.token_env",
			"http.admin_token: set at most one of http.admin_token, http.admin_token_file and http.admin_token_env",
		},
		"kafka.bad.yml": {
			"kafka.tls: ca_file, cert_file, key_file and server_name need kafka.tls.enabled: true",
			"kafka.tls: cert_file and key_file go together",
			`kafka.sasl.mechanism "scram-sha-512": unknown; want one of SCRAM-SHA-256, SCRAM-SHA-512, PLAIN, OAUTHBEARER (did you mean SCRAM-SHA-512?`,
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
	o, err := cfg.HTTP.ServerOptions()
	if err != nil {
		t.Fatal(err)
	}
	if o.ReadTimeout != want.ReadTimeout || o.WriteTimeout != want.WriteTimeout || o.IdleTimeout != want.IdleTimeout || o.MaxInflightRequests != 256 {
		t.Fatalf("server options %+v", o)
	}
	if err := Default().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
}

// TestLoadHTTPSecurity: the tokens, the read switch and the TLS files
// load, and the tokens become the server's route-class tokens.
func TestLoadHTTPSecurity(t *testing.T) {
	cfg, err := Load("testdata/http-security.good.yml")
	if err != nil {
		t.Fatal(err)
	}
	h := cfg.HTTP
	if h.TLSCertFile != "/etc/factory2/tls.crt" || h.TLSKeyFile != "/etc/factory2/tls.key" {
		t.Errorf("TLS files %q %q", h.TLSCertFile, h.TLSKeyFile)
	}
	a, err := h.Auth()
	if err != nil {
		t.Fatal(err)
	}
	if a.EventsToken != "events-token" || a.AdminToken != "admin-token" || a.ReadToken != "read-token" || !a.ProtectReads {
		t.Errorf("server auth %+v", a)
	}
	if d := Default().HTTP; d.ProtectReads || d.AdminToken != "" || d.TLSCertFile != "" {
		t.Errorf("defaults must leave reads open, admin off, TLS off: %+v", d)
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

// TestLoadReportsEverything: unknown keys, values of the wrong type and
// invalid values are reported together, each once.
func TestLoadReportsEverything(t *testing.T) {
	_, err := Load(filepath.Join("testdata", "check.bad.yml"))
	if err == nil {
		t.Fatal("want an error")
	}
	for _, w := range []string{
		`line 4: unknown key "partitionz"; did you mean partitions?`,
		`line 8: "many" is not an integer`,
		`brokers: "127.0.0.1": want host:port`,
		"min.insync.replicas 2 exceeds replication 1",
	} {
		if strings.Count(err.Error(), w) != 1 {
			t.Errorf("error %q does not mention %q once", err, w)
		}
	}
}

// TestCheck: config check reports every problem of a file at once, the
// policies' and those only the policies show included; a good file has
// none.
func TestCheck(t *testing.T) {
	err := Check(filepath.Join("testdata", "check.bad.yml"))
	if err == nil {
		t.Fatal("want an error")
	}
	for _, w := range []string{
		"config: testdata/check.bad.yml: ",
		`line 4: unknown key "partitionz"`,
		`line 8: "many" is not an integer`,
		`brokers: "127.0.0.1": want host:port`,
		"min.insync.replicas 2 exceeds replication 1",
		"gating.policies: stat testdata/no-such-dir: no such file or directory",
		"gating.policies: testdata/policies-empty: a directory without a *.yaml or *.yml policy file",
		`testdata/policies-bad/p.yaml:5: policy "stable": unknown subject type "koji-build"`,
		"did you mean koji_build?",
		"testdata/policies-bad/p.yaml:7: policy \"stable\": rules[0]: unknown rule tag !PassingTestCaseRul; did you mean !PassingTestCaseRule?",
	} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error does not mention %q:\n%v", w, err)
		}
	}
	if strings.Count(err.Error(), "config: ") != 1 {
		t.Errorf("the file is named more than once:\n%v", err)
	}

	err = Check(filepath.Join("testdata", "check-contexts.bad.yml"))
	for _, w := range []string{
		`composes[0] (fedora-42-updates): decision_contexts: decision context "critpath_stable" is the decision context of no policy ` +
			`(they have: bodhi_update_push_stable, bodhi_update_push_testing, rawhide_compose_sync_to_mirrors)`,
		`gating.signing_rules (gold): require_context: decision context "bodhi_update_push_stabel" is the decision context of no policy; did you mean bodhi_update_push_stable?`,
		`rebuild.context: decision context "gating_passed" is the decision context of no policy`,
	} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error %v does not mention %q", err, w)
		}
	}
	if err != nil && strings.Contains(err.Error(), `"bodhi_update_push_stable" is`) {
		t.Errorf("a context the policies have is reported: %v", err)
	}

	if err := Check(filepath.Join("testdata", "full.good.yml")); err == nil || !strings.Contains(err.Error(), "/etc/factory2/policies") {
		t.Errorf("full.good.yml names a policy directory this machine lacks: %v", err)
	}
	if err := Check(filepath.Join("testdata", "invalid.bad.yml")); err == nil || !strings.Contains(err.Error(), "signing rule no-key") {
		t.Errorf("invalid: %v", err)
	}
	if err := Check(filepath.Join(t.TempDir(), "nope.yml")); err == nil || !os.IsNotExist(unwrapAll(err)) {
		t.Errorf("missing file: %v", err)
	}
}

// TestReference: every key of the configuration is documented, with its
// type and default, and deploy/config-reference.md is the reference the
// definition gives (go test -run TestReference -update rewrites it).
func TestReference(t *testing.T) {
	keys := Keys()
	seen := map[string]bool{}
	for _, k := range keys {
		seen[k.Path] = true
		if k.Doc == "" {
			t.Errorf("key %s has no doc in docs", k.Path)
		}
		if k.Type == "" || k.Default == "" {
			t.Errorf("key %s: type %q, default %q", k.Path, k.Type, k.Default)
		}
	}
	for path := range docs {
		if !seen[path] {
			t.Errorf("docs documents %s, which is not a key", path)
		}
	}
	for _, top := range yamlKeys(reflect.TypeFor[Config](), "") {
		if !seen[top] {
			t.Errorf("key %s missing from the reference", top)
		}
	}
	byPath := map[string]Key{}
	for _, k := range keys {
		byPath[k.Path] = k
	}
	for path, want := range map[string]string{
		"brokers": "[127.0.0.1:9092]", "instance_id": "the host name", "topics.partitions": "6",
		"processing.commit_interval": "100ms", "http.idle_timeout": "2m", "state.dir": "data/state",
		"http.token": `""`, "gating.policies": "[]", "gating.signing_rules[].priority": "0",
		"composes[].cadence.min_interval": "0s",
	} {
		if got := byPath[path].Default; got != want {
			t.Errorf("default of %s: %q, want %q", path, got, want)
		}
	}

	ref := Reference()
	path := filepath.Join("..", "..", "deploy", "config-reference.md")
	if *update {
		if err := os.WriteFile(path, []byte(ref), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != ref {
		t.Errorf("%s is not the reference of the configuration's definition; run: go test ./internal/config -run TestReference -update", path)
	}
}
