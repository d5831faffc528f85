// Package config loads factory2's YAML configuration file: one Config
// struct with defaults, loaded in one place, validated all at once.
// Check goes further for `factory2 config check` (the policies, and the
// decision contexts composes and signing rules require of them);
// Reference documents every key, its type and default, from the struct
// itself and the docs table, for `factory2 config reference` and
// deploy/config-reference.md.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/factory2/factory2/internal/httpapi"
	"github.com/factory2/factory2/internal/ingest"
	"github.com/factory2/factory2/internal/kclient"
	"github.com/factory2/factory2/processors/deps"
	"github.com/factory2/factory2/processors/gating"
	"github.com/factory2/factory2/topics"
)

// Config is the whole configuration of a factory2 process. The zero value
// is not useful; start from Default or Load.
type Config struct {
	// Brokers are the Kafka bootstrap addresses.
	Brokers []string `yaml:"brokers"`
	// Kafka is how every Kafka client of the process connects: TLS and
	// SASL (see kafka.go).
	Kafka kclient.Security `yaml:"kafka"`
	// InstanceID names this process among the instances of a deployment.
	// It must be stable across restarts and unique among live instances:
	// it is the transactional id prefix, so a restarted instance fences
	// its previous incarnation's open transaction.
	InstanceID string     `yaml:"instance_id"`
	Topics     Topics     `yaml:"topics"`
	State      State      `yaml:"state"`
	Processing Processing `yaml:"processing"`
	HTTP       HTTP       `yaml:"http"`
	Ingest     Ingest     `yaml:"ingest"`
	Registry   Registry   `yaml:"registry"`
	Gating     Gating     `yaml:"gating"`
	// Composes are the compose definitions: what each compose must
	// contain to be ready. `factory2 emit composes` produces them.
	Composes []Compose `yaml:"composes"`
	// Rebuild says when a new build triggers rebuild decisions, and of
	// what (the dependency views' rebuild processor).
	Rebuild deps.RebuildRules `yaml:"rebuild"`
}

// Topics mirrors topics.Config.
type Topics struct {
	Prefix              string `yaml:"prefix"`
	Partitions          int32  `yaml:"partitions"`
	Replication         int16  `yaml:"replication"`
	InputRetentionMS    int64  `yaml:"input_retention_ms"`
	DecisionRetentionMS int64  `yaml:"decision_retention_ms"`
	MinInSyncReplicas   int    `yaml:"min_insync_replicas"`
}

// Catalog returns the topics.Config of t.
func (t Topics) Catalog() topics.Config {
	return topics.Config{
		Prefix:              t.Prefix,
		Partitions:          t.Partitions,
		Replication:         t.Replication,
		InputRetentionMS:    t.InputRetentionMS,
		DecisionRetentionMS: t.DecisionRetentionMS,
		MinInSyncReplicas:   t.MinInSyncReplicas,
	}
}

// State configures the Pebble state stores.
type State struct {
	// Dir holds one Pebble database per processor task.
	Dir string `yaml:"dir"`
	// CacheBytes is the block cache shared by every store of the process.
	CacheBytes int64 `yaml:"cache_bytes"`
}

// Processing configures the processing runtime.
type Processing struct {
	// CommitInterval bounds how long a decision waits in an open
	// transaction before it becomes visible to read_committed consumers.
	CommitInterval time.Duration `yaml:"commit_interval"`
	// TransactionTimeout is the broker-side timeout of a transaction.
	TransactionTimeout time.Duration `yaml:"transaction_timeout"`
	// SessionTimeout is the consumer group session timeout.
	SessionTimeout time.Duration `yaml:"session_timeout"`
	// MaxRecordBytes is the largest record a processor produces (an
	// output, a changelog value, a dead letter): an input whose output or
	// state would exceed it is dead-lettered. Keep it at or below the
	// brokers' message.max.bytes. Default 1000000.
	MaxRecordBytes int `yaml:"max_record_bytes"`
	// MaxDeadLetterBytes bounds the payload a dead letter copies from the
	// record it reports (longer ones are truncated; size and SHA-256 are
	// in its headers). Default 65536.
	MaxDeadLetterBytes int `yaml:"max_dead_letter_bytes"`
	// Threads is how many tasks of a processor process records at once
	// (one consumer and one transaction per processor; each task's
	// records in order on one goroutine). Default 0: the number of cores
	// (GOMAXPROCS).
	Threads int `yaml:"threads"`
	// MaxTaskIdle is how long a task whose other inputs have records
	// waits for an input that has nothing more committed (Kafka Streams'
	// max.task.idle.ms). Committed records are always waited for, which
	// keeps the order of events the same live and in replay; 0 waits for
	// nothing not yet produced; negative never waits (order then follows
	// the fetches where inputs race). Default 0.
	MaxTaskIdle time.Duration `yaml:"max_task_idle"`
	// MaxTxnWait bounds how long a task whose other inputs have records
	// waits for an open transaction on an input it has read to the end:
	// its records may commit with earlier timestamps (commit markers
	// reach a transaction's partitions one by one). Past it the task goes
	// on, so a hanging producer cannot stop it. Negative never waits.
	// Default 1s.
	MaxTxnWait time.Duration `yaml:"max_txn_wait"`
}

// HTTP configures the HTTP server (API, metrics, overview page).
type HTTP struct {
	Addr string `yaml:"addr"`
	// Token is the bearer token of the write routes: POST /api/v1/events.
	// Empty disables event ingestion over HTTP (403). TokenFile (a file
	// holding it, one line) or TokenEnv (an environment variable's name)
	// give it instead; at most one of the three. So do the *File and
	// *Env keys of the other two tokens; Auth reads them.
	Token     string `yaml:"token"`
	TokenFile string `yaml:"token_file"`
	TokenEnv  string `yaml:"token_env"`
	// AdminToken (http.admin_token) is the bearer token of the admin
	// routes (/debug/pprof/). Empty disables them (403).
	AdminToken     string `yaml:"admin_token"`
	AdminTokenFile string `yaml:"admin_token_file"`
	AdminTokenEnv  string `yaml:"admin_token_env"`
	// ReadToken (http.read_token) is the bearer token of the read routes
	// (queries, /metrics, the overview page) when ProtectReads is set;
	// the events and admin tokens are accepted there too.
	ReadToken     string `yaml:"read_token"`
	ReadTokenFile string `yaml:"read_token_file"`
	ReadTokenEnv  string `yaml:"read_token_env"`
	// ProtectReads (http.protect_reads, default false: reads are open)
	// makes the read routes need a token. /healthz and /readyz stay
	// open.
	ProtectReads bool `yaml:"protect_reads"`
	// TLSCertFile and TLSKeyFile (http.tls_cert_file, http.tls_key_file:
	// both or neither) are the PEM certificate (chain) and key the server
	// presents; with them it speaks HTTPS only. SIGHUP reloads both.
	TLSCertFile string `yaml:"tls_cert_file"`
	TLSKeyFile  string `yaml:"tls_key_file"`
	// MaxBodyBytes limits request bodies.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// ReadTimeout (http.read_timeout, default 30s) bounds reading a whole
	// request, body included: a client sending its body too slowly is cut
	// off.
	ReadTimeout time.Duration `yaml:"read_timeout"`
	// WriteTimeout (http.write_timeout, default 30s) bounds answering a
	// request. Event ingestion gives producing a batch this long, then
	// writing the answer this long again, so a client always learns
	// whether its batch was committed.
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// IdleTimeout (http.idle_timeout, default 120s) closes keep-alive
	// connections idle for this long.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// MaxInflightRequests (http.max_inflight_requests, default 512) caps
	// the API requests served at once; beyond it a request gets 503 with
	// Retry-After. /healthz and /metrics are not counted.
	MaxInflightRequests int `yaml:"max_inflight_requests"`
	// MaxInflightBodyBytes (http.max_inflight_body_bytes, default 64 MiB)
	// caps the bytes of the POST /api/v1/events bodies being read, parsed
	// or produced at once. A request reserves its Content-Length (or
	// max_body_bytes when the length is not given) before its body is
	// read, and gets 503 with Retry-After, its body unread, when the
	// reservation does not fit. At least max_body_bytes.
	MaxInflightBodyBytes int64 `yaml:"max_inflight_body_bytes"`
}

// ServerOptions returns the bounds and tokens of the HTTP server,
// reading the tokens' files and variables (see Auth).
func (h HTTP) ServerOptions() (httpapi.Options, error) {
	auth, err := h.Auth()
	return httpapi.Options{
		ReadTimeout:         h.ReadTimeout,
		WriteTimeout:        h.WriteTimeout,
		IdleTimeout:         h.IdleTimeout,
		MaxInflightRequests: h.MaxInflightRequests,
		Auth:                auth,
	}, err
}

// Ingest configures event ingestion, by `factory2 emit` and by
// POST /api/v1/events alike.
type Ingest struct {
	// MaxEventBytes (ingest.max_event_bytes, default 999000) bounds an
	// event's Kafka record (key and Avro-encoded value). A batch with a
	// larger event is refused before anything is produced (HTTP 413).
	// The default, framing included, fits the producer's default batch
	// limit (1000012 bytes) and the brokers' default max.message.bytes
	// (1048588); a larger value also needs the input topics'
	// max.message.bytes to fit it, or Kafka refuses the records (413).
	MaxEventBytes int64 `yaml:"max_event_bytes"`
	// KojiHubURL (ingest.koji_hub_url, default empty: off) is the XML-RPC
	// URL of the Koji hub of instance "primary", e.g.
	// https://koji.fedoraproject.org/kojihub. When set, every Koji build
	// state change to COMPLETE ingested from a bus message (emit
	// --message, POST /api/v1/events?format=message) makes ingestion ask
	// the hub for the build's RPM list (getBuild, listRPMs) once, and
	// produce it as a build event right after the message's events: no
	// bus message carries the RPM list, and without it no build counts
	// as signed. See internal/koji.
	KojiHubURL string `yaml:"koji_hub_url"`
	// KojiTimeout (ingest.koji_timeout, default 10s) bounds one call to
	// the Koji hub. A call that fails transiently is made 3 times in all.
	KojiTimeout time.Duration `yaml:"koji_timeout"`
}

// validate reports the problems of the ingest section.
func (in Ingest) validate() []error {
	var errs []error
	if in.MaxEventBytes <= 0 || in.MaxEventBytes > ingest.LargestMaxEventBytes {
		errs = append(errs, fmt.Errorf("ingest.max_event_bytes %d: must be in [1, %d]", in.MaxEventBytes, ingest.LargestMaxEventBytes))
	}
	if in.KojiHubURL != "" {
		if u, err := url.Parse(in.KojiHubURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("ingest.koji_hub_url %q: want an http(s) URL, e.g. https://koji.fedoraproject.org/kojihub", in.KojiHubURL))
		}
	}
	if in.KojiTimeout <= 0 || in.KojiTimeout > 5*time.Minute {
		errs = append(errs, fmt.Errorf("ingest.koji_timeout %s: must be in (0, 5m]", in.KojiTimeout))
	}
	return errs
}

// Registry configures an optional Confluent-compatible schema registry.
// Without one, records use Avro single-object encoding.
type Registry struct {
	URL string `yaml:"url"`
}

// Gating configures the gating and autosign processor.
type Gating struct {
	// Policies are Greenwave policy files or directories of them.
	Policies []string `yaml:"policies"`
	// ProductVersions override product version inference: the first
	// entry whose Match (a regular expression) matches the subject
	// identifier wins.
	ProductVersions []gating.ProductVersionRule `yaml:"product_versions"`
	// SigningRules are the autosign rules (robosignatory's from/to/key).
	SigningRules []gating.SigningRule `yaml:"signing_rules"`
	// ExtraSubjectTypes are subject types policies may name besides
	// Greenwave's (gating.GreenwaveSubjectTypes).
	ExtraSubjectTypes []string `yaml:"extra_subject_types"`
	// MaxSubjectBytes bounds the stored state of one subject (one
	// changelog record, which Kafka refuses above 1 MiB): an event that
	// would grow a subject past it goes to the dead-letter topic.
	// Default 512 KiB, at most 768 KiB.
	MaxSubjectBytes int `yaml:"max_subject_bytes"`
	// MaxPolicyFileBytes bounds a gating.yaml (remote rule file) event's
	// content; a larger one goes to the dead-letter topic. Default
	// 256 KiB, below max_subject_bytes.
	MaxPolicyFileBytes int `yaml:"max_policy_file_bytes"`
}

// DefaultBrokers is where `factory2 dev` listens.
const DefaultBrokers = "127.0.0.1:9092"

// Default returns the configuration used when no file is given.
func Default() Config {
	host, _ := os.Hostname()
	if host == "" {
		host = "factory2"
	}
	tc := topics.DefaultConfig()
	httpOpts := httpapi.DefaultOptions()
	return Config{
		Brokers:    []string{DefaultBrokers},
		InstanceID: host,
		Topics: Topics{
			Prefix:              tc.Prefix,
			Partitions:          tc.Partitions,
			Replication:         tc.Replication,
			InputRetentionMS:    tc.InputRetentionMS,
			DecisionRetentionMS: tc.DecisionRetentionMS,
		},
		State: State{
			Dir:        "data/state",
			CacheBytes: 256 << 20,
		},
		Processing: Processing{
			CommitInterval:     100 * time.Millisecond,
			TransactionTimeout: 30 * time.Second,
			SessionTimeout:     10 * time.Second,
			MaxRecordBytes:     1_000_000,
			MaxDeadLetterBytes: 64 << 10,
			MaxTxnWait:         time.Second,
		},
		HTTP: HTTP{
			Addr:                 "127.0.0.1:8080",
			MaxBodyBytes:         4 << 20,
			ReadTimeout:          httpOpts.ReadTimeout,
			WriteTimeout:         httpOpts.WriteTimeout,
			IdleTimeout:          httpOpts.IdleTimeout,
			MaxInflightRequests:  httpOpts.MaxInflightRequests,
			MaxInflightBodyBytes: 64 << 20,
		},
		Ingest: Ingest{
			MaxEventBytes: ingest.DefaultMaxEventBytes,
			KojiTimeout:   10 * time.Second,
		},
		Gating: Gating{
			MaxSubjectBytes:    gating.DefaultMaxSubjectBytes,
			MaxPolicyFileBytes: gating.DefaultMaxPolicyFileBytes,
		},
	}
}

// Load reads the YAML file at path over the defaults and validates it,
// reporting every problem at once: unknown keys and values of the wrong
// type (each with its line), then every invalid value. Relative paths in
// gating.policies, in the kafka section and of the http tokens' files are
// relative to the file's directory, so a configuration and its policies can move together.
func Load(path string) (Config, error) {
	cfg := Default()
	data, err := os.ReadFile(path)
	if err != nil {
		return cfg, fmt.Errorf("config: %w", err)
	}
	err = Parse(data, &cfg)
	cfg.Gating.Policies = resolvePaths(filepath.Dir(path), cfg.Gating.Policies)
	cfg.Kafka = cfg.Kafka.ResolvePaths(filepath.Dir(path))
	cfg.HTTP = cfg.HTTP.ResolvePaths(filepath.Dir(path))
	if err != nil {
		return cfg, fmt.Errorf("config: %s: %w", path, err)
	}
	return cfg, nil
}

// resolvePaths makes the relative paths of paths relative to dir.
func resolvePaths(dir string, paths []string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		if p != "" && !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		out[i] = p
	}
	return out
}

// Parse decodes YAML data over cfg and validates the result. Every
// problem is reported at once: the decoder goes on past unknown keys and
// values of the wrong type, and what it could decode is validated.
func Parse(data []byte, cfg *Config) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	// An empty file decodes to io.EOF: the defaults stand.
	err := dec.Decode(cfg)
	var te *yaml.TypeError
	switch {
	case err == nil || errors.Is(err, io.EOF):
		return cfg.Validate()
	case errors.As(err, &te):
		errs := make([]error, 0, len(te.Errors)+1)
		for _, e := range te.Errors {
			errs = append(errs, errors.New(explainTypeError(e)))
		}
		return errors.Join(append(errs, cfg.Validate())...)
	}
	return fmt.Errorf("%w: %w", ErrSyntax, err) // nothing more can be read
}

// ErrSyntax is wrapped by the error for a file that is not valid YAML.
var ErrSyntax = errors.New("not valid YAML")

// Validate reports every problem of c at once.
func (c Config) Validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("brokers: at least one is required"))
	}
	for _, b := range c.Brokers {
		if _, _, err := net.SplitHostPort(b); err != nil {
			errs = append(errs, fmt.Errorf("brokers: %q: want host:port", b))
		}
	}
	errs = append(errs, c.Kafka.Validate()...)
	if c.InstanceID == "" || strings.ContainsAny(c.InstanceID, " /") {
		errs = append(errs, fmt.Errorf("instance_id %q: must be non-empty without spaces or slashes", c.InstanceID))
	}
	if err := c.Topics.Catalog().Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.State.Dir == "" {
		errs = append(errs, errors.New("state.dir: required"))
	}
	if c.State.CacheBytes < 1<<20 {
		errs = append(errs, fmt.Errorf("state.cache_bytes %d: at least 1 MiB", c.State.CacheBytes))
	}
	if c.Processing.CommitInterval <= 0 || c.Processing.CommitInterval > time.Minute {
		errs = append(errs, fmt.Errorf("processing.commit_interval %s: must be in (0, 1m]", c.Processing.CommitInterval))
	}
	if c.Processing.TransactionTimeout < time.Second {
		errs = append(errs, fmt.Errorf("processing.transaction_timeout %s: at least 1s", c.Processing.TransactionTimeout))
	}
	if c.Processing.SessionTimeout < time.Second {
		errs = append(errs, fmt.Errorf("processing.session_timeout %s: at least 1s", c.Processing.SessionTimeout))
	}
	if c.Processing.MaxRecordBytes < 64<<10 || c.Processing.MaxRecordBytes > 64<<20 {
		errs = append(errs, fmt.Errorf("processing.max_record_bytes %d: must be in [65536, 67108864] (and at most the brokers' message.max.bytes)", c.Processing.MaxRecordBytes))
	}
	if c.Processing.MaxTxnWait == 0 || c.Processing.MaxTxnWait > c.Processing.TransactionTimeout {
		errs = append(errs, fmt.Errorf("processing.max_txn_wait %s: must be in (0, transaction_timeout], or negative to never wait", c.Processing.MaxTxnWait))
	}
	if c.Processing.Threads < 0 || c.Processing.Threads > 1024 {
		errs = append(errs, fmt.Errorf("processing.threads %d: must be in [0, 1024] (0: one per core)", c.Processing.Threads))
	}
	if c.Processing.MaxDeadLetterBytes < 1024 || c.Processing.MaxDeadLetterBytes > c.Processing.MaxRecordBytes/2 {
		errs = append(errs, fmt.Errorf("processing.max_dead_letter_bytes %d: must be in [1024, max_record_bytes/2]", c.Processing.MaxDeadLetterBytes))
	}
	if _, _, err := net.SplitHostPort(c.HTTP.Addr); err != nil {
		errs = append(errs, fmt.Errorf("http.addr %q: want host:port", c.HTTP.Addr))
	}
	errs = append(errs, c.HTTP.validate()...)
	errs = append(errs, c.Ingest.validate()...)
	if err := gating.ValidateSigningRules(c.Gating.SigningRules); err != nil {
		errs = append(errs, fmt.Errorf("gating.signing_rules: %w", err))
	}
	if b := c.Gating.MaxSubjectBytes; b <= 0 || b > gating.MaxSubjectBytesLimit {
		errs = append(errs, fmt.Errorf("gating.max_subject_bytes %d: must be in (0, %d]", b, gating.MaxSubjectBytesLimit))
	}
	if b := c.Gating.MaxPolicyFileBytes; b <= 0 || b >= c.Gating.MaxSubjectBytes {
		errs = append(errs, fmt.Errorf("gating.max_policy_file_bytes %d: must be positive and below gating.max_subject_bytes (%d)", b, c.Gating.MaxSubjectBytes))
	}
	for i, r := range c.Gating.ProductVersions {
		if r.Match == "" || r.ProductVersion == "" {
			errs = append(errs, fmt.Errorf("gating.product_versions[%d]: match and product_version are required", i))
		}
		if _, err := regexp.Compile(r.Match); err != nil {
			errs = append(errs, fmt.Errorf("gating.product_versions[%d]: match %q: %w", i, r.Match, err))
		}
	}
	for i, t := range c.Gating.ExtraSubjectTypes {
		if strings.TrimSpace(t) == "" {
			errs = append(errs, fmt.Errorf("gating.extra_subject_types[%d]: blank", i))
		}
	}
	errs = append(errs, validateComposes(c.Composes)...)
	return errors.Join(errs...)
}

// validate reports the problems of the http section.
func (h HTTP) validate() []error {
	var errs []error
	if h.MaxBodyBytes <= 0 {
		errs = append(errs, fmt.Errorf("http.max_body_bytes %d: must be positive", h.MaxBodyBytes))
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"read_timeout", h.ReadTimeout}, {"write_timeout", h.WriteTimeout}, {"idle_timeout", h.IdleTimeout}} {
		if d.v <= 0 {
			errs = append(errs, fmt.Errorf("http.%s %s: must be positive", d.key, d.v))
		}
	}
	if h.MaxInflightRequests <= 0 {
		errs = append(errs, fmt.Errorf("http.max_inflight_requests %d: must be positive", h.MaxInflightRequests))
	}
	if h.MaxInflightBodyBytes < h.MaxBodyBytes {
		errs = append(errs, fmt.Errorf("http.max_inflight_body_bytes %d: at least http.max_body_bytes (%d)", h.MaxInflightBodyBytes, h.MaxBodyBytes))
	}
	if (h.TLSCertFile == "") != (h.TLSKeyFile == "") {
		errs = append(errs, errors.New("http.tls_cert_file and http.tls_key_file: set both (HTTPS) or neither (plain HTTP)"))
	}
	errs = append(errs, h.validateTokens()...)
	return errs
}
