// Package config loads factory2's YAML configuration file: one Config
// struct with defaults, loaded in one place, validated all at once.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/factory2/factory2/processors/gating"
	"github.com/factory2/factory2/topics"
)

// Config is the whole configuration of a factory2 process. The zero value
// is not useful; start from Default or Load.
type Config struct {
	// Brokers are the Kafka bootstrap addresses.
	Brokers []string `yaml:"brokers"`
	// InstanceID names this process among the instances of a deployment.
	// It must be stable across restarts and unique among live instances:
	// it is the transactional id prefix, so a restarted instance fences
	// its previous incarnation's open transaction.
	InstanceID string     `yaml:"instance_id"`
	Topics     Topics     `yaml:"topics"`
	State      State      `yaml:"state"`
	Processing Processing `yaml:"processing"`
	HTTP       HTTP       `yaml:"http"`
	Registry   Registry   `yaml:"registry"`
	Gating     Gating     `yaml:"gating"`
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
}

// HTTP configures the HTTP server (API, metrics, overview page).
type HTTP struct {
	Addr string `yaml:"addr"`
	// Token is the bearer token required by POST /api/v1/events. Empty
	// disables event ingestion over HTTP.
	Token string `yaml:"token"`
	// MaxBodyBytes limits request bodies.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
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
		},
		HTTP: HTTP{
			Addr:         "127.0.0.1:8080",
			MaxBodyBytes: 4 << 20,
		},
		Gating: Gating{
			MaxSubjectBytes:    gating.DefaultMaxSubjectBytes,
			MaxPolicyFileBytes: gating.DefaultMaxPolicyFileBytes,
		},
	}
}

// Load reads the YAML file at path over the defaults. Unknown keys are
// errors, reported with their line.
func Load(path string) (Config, error) {
	cfg := Default()
	data, err := os.ReadFile(path)
	if err != nil {
		return cfg, fmt.Errorf("config: %w", err)
	}
	if err := Parse(data, &cfg); err != nil {
		return cfg, fmt.Errorf("config: %s: %w", path, err)
	}
	return cfg, nil
}

// Parse decodes YAML data over cfg and validates the result.
func Parse(data []byte, cfg *Config) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	// An empty file decodes to io.EOF: the defaults stand.
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return cfg.Validate()
}

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
	if _, _, err := net.SplitHostPort(c.HTTP.Addr); err != nil {
		errs = append(errs, fmt.Errorf("http.addr %q: want host:port", c.HTTP.Addr))
	}
	if c.HTTP.MaxBodyBytes <= 0 {
		errs = append(errs, fmt.Errorf("http.max_body_bytes %d: must be positive", c.HTTP.MaxBodyBytes))
	}
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
	}
	return errors.Join(errs...)
}
