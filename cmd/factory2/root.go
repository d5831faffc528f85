package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/factory2/factory2/internal/config"
	"github.com/factory2/factory2/topics"
)

// errSilent is returned by a command that already told the user why it
// failed; main exits non-zero without printing it again.
var errSilent = errors.New("failed")

// app holds what every subcommand shares: the streams and global flags.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer

	configPath string
	logLevel   string
	brokers    string
	instanceID string // serve's --instance-id: overrides the config's instance_id

	// api is how query commands (why, trace, compose) reach the HTTP API;
	// apiBase sets it.
	api apiClient
}

// newRoot builds the command tree. We use cobra (with pflag) rather than
// the standard flag package because factory2 has nested subcommands
// ("topics ensure"), flags after positional arguments ("why NVR
// --context C"), and a generated --help for every command; cobra does all
// three and is the de facto standard of Go CLIs.
func newRoot(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:   "factory2",
		Short: "Reactive stream processor for a distribution's build pipeline",
		Long: `factory2 turns build, sign, test and compose events on Kafka topics into
decisions (autosign, gating, compose-ready, rebuild) the moment their inputs
are satisfied, with exactly-once processing and a reason for every decision.

Commands that print records or results print readable text when stdout is a
terminal and JSON lines when it is piped (-o text|json chooses); messages
for people go to stderr. Kafka-facing commands take --brokers (or
FACTORY2_BROKERS).`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().StringVar(&a.configPath, "config", os.Getenv("FACTORY2_CONFIG"), "YAML configuration `file` (env FACTORY2_CONFIG)")
	root.PersistentFlags().StringVar(&a.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	root.AddCommand(
		a.devCmd(),
		a.emitCmd(),
		a.serveCmd(),
		a.topicsCmd(),
		a.replayCmd(),
		a.whyCmd(),
		a.composeCmd(),
		a.configCmd(),
		a.traceCmd(),
		a.versionCmd(),
		a.watchCmd(),
	)
	return root
}

// addBrokersFlag gives a Kafka-facing command its --brokers flag.
func (a *app) addBrokersFlag(cmd *cobra.Command) {
	def := os.Getenv("FACTORY2_BROKERS")
	cmd.Flags().StringVar(&a.brokers, "brokers", def, "Kafka bootstrap `host:port,...` (env FACTORY2_BROKERS; default from --config, else "+config.DefaultBrokers+")")
}

// config loads --config (or the defaults) and applies the overrides of
// flags and environment (--brokers, FACTORY2_KAFKA_USERNAME).
func (a *app) config() (config.Config, error) {
	cfg := config.Default()
	if a.configPath != "" {
		var err error
		if cfg, err = config.Load(a.configPath); err != nil {
			return cfg, err
		}
	}
	if a.brokers != "" {
		cfg.Brokers = splitList(a.brokers)
	}
	if a.instanceID != "" {
		cfg.InstanceID = a.instanceID
	}
	if u := os.Getenv(config.EnvKafkaUsername); u != "" {
		cfg.Kafka.SASL.Username = u
	}
	return cfg, cfg.Validate()
}

// configAndCatalog loads the configuration and builds its topic catalog.
func (a *app) configAndCatalog() (config.Config, *topics.Catalog, error) {
	cfg, err := a.config()
	if err != nil {
		return cfg, nil, err
	}
	cat, err := catalog(cfg)
	return cfg, cat, err
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// logger writes human-readable logs to stderr.
func (a *app) logger() (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(a.logLevel)); err != nil {
		return nil, fmt.Errorf("--log-level %q: %w", a.logLevel, err)
	}
	return slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: lvl})), nil
}

// jsonLines writes one JSON value per line to stdout.
type jsonLines struct{ enc *json.Encoder }

func (a *app) jsonOut() jsonLines {
	enc := json.NewEncoder(a.stdout)
	enc.SetEscapeHTML(false)
	return jsonLines{enc}
}

func (j jsonLines) write(v any) error { return j.enc.Encode(v) }

// say prints a message for people on stderr.
func (a *app) say(format string, args ...any) {
	fmt.Fprintf(a.stderr, format+"\n", args...)
}

// jsonRaw embeds already-encoded JSON in a value passed to jsonLines.
type jsonRaw []byte

// MarshalJSON implements json.Marshaler.
func (j jsonRaw) MarshalJSON() ([]byte, error) { return j, nil }
