package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/factory2/factory2/avro"
	"github.com/factory2/factory2/internal/config"
	"github.com/factory2/factory2/internal/ingest"
	"github.com/factory2/factory2/topics"
)

// emitOpts are the flags of emit and its kind subcommands.
type emitOpts struct {
	json, message bool
	topic         string // default topic of bare bus messages
	dryRun        bool
	source        string
	eventTimeNow  bool
	txnID         string
	timeout       time.Duration
	output        string // of --dry-run
}

func (a *app) emitCmd() *cobra.Command {
	var o emitOpts
	var kinds []string
	for _, k := range ingest.Kinds() {
		kinds = append(kinds, k.Name)
	}
	cmd := &cobra.Command{
		Use:   "emit (KIND [flags] | composes | --json [FILE|-] | --message [FILE|-] [--topic TOPIC])",
		Short: "Produce events from flags, JSON events or bus messages, all or nothing",
		Long: `Produce events to factory2's input topics, the way infrastructure hooks do.

Four forms of input:

  emit KIND [flags]         one event written with flags; KIND is one of
                            ` + strings.Join(kinds, ", ") + `
                            (see emit KIND --help)
  emit composes             the compose definitions of --config, one compose
                            event each (see emit composes --help)
  emit --json [FILE|-]      JSON events, as factory2 watch and emit --dry-run
                            print them: one per line, one document, or a JSON
                            array, each with a leading "type" (default: stdin)
  emit --message [FILE|-]   bus messages (fedora-messaging, fedmsg,
                            datagrepper, UMB), one per line or one document,
                            translated to events; --topic gives the topic of a
                            bare message body

Each event goes to the input topic of its type, keyed by its subject (the
NVR, or the compose id). Decisions are not accepted: the processors derive
them.

The envelope is filled deterministically: an event without an id gets a hash
of its content, so sending the same line again yields the same id; one
without a source gets --source (else it is rejected); one without an
event_time is rejected unless --event-time-now gives it the current time
(which also makes its derived id change on every run). Bus messages carry
their own id, source and time.

With ingest.koji_hub_url set, emit --message then asks that Koji hub for the
RPM list of every build a message says became COMPLETE (getBuild, listRPMs)
and produces it as a build event (id: the message's + "#rpms") in one more
transaction: no bus message carries it, and a build counts as signed only
once its artifact list is known. If Koji cannot answer, the messages' events
stay produced and emit exits 1 saying which builds lack their list; sending
the same messages again retries (the same events result).

A batch is all or nothing: a malformed line or a missing field anywhere
rejects the whole input before anything is produced, naming the line and the
field; the events are then produced in one Kafka transaction (transactional
id <prefix>emit/<--txn-id or random>), which is aborted on any error. Pass a
stable --txn-id in scripts: a rerun then fences the transaction a killed run
left open instead of waiting for it to time out.

With --dry-run nothing connects to Kafka: the events are printed, on a
terminal (or with -o text) one line each (event time, kind, subject, what,
and the topic it would go to), piped (or with -o json) as JSON lines
{"topic","key","event"}, which emit --json reads back. Otherwise one JSON line per produced record
{"topic","partition","offset","key","id","type"} goes to stdout and a summary
to stderr, once the events are committed and visible to read_committed
consumers (a watch started afterwards sees them). Exits 1 on any error.`,
		Example: `  # A Koji build completed:
  factory2 emit build --source koji/primary --event-time 2026-01-02T15:04:05Z \
      --nvr bash-5.2.26-3.fc41 --state COMPLETE --build-id 2510000

  # A test result, stamped now:
  factory2 emit test_result --source ci --event-time-now \
      --subject-id bash-5.2.26-3.fc41 --testcase fedora-ci.koji-build.tier0.functional --outcome PASSED

  # JSON events from a file, or from another factory2 (watch prints this form):
  factory2 emit --json events.jsonl
  factory2 watch events --from-beginning | jq -c .record | factory2 emit --json --brokers other:9092

  # Bus messages, e.g. a datagrepper dump, checked without producing:
  factory2 emit --message --dry-run messages.jsonl
  # A bare ResultsDB message body:
  factory2 emit --message body.json --topic org.fedoraproject.prod.resultsdb.result.new`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case o.json && o.message:
				return fmt.Errorf("emit: --json and --message exclude each other")
			case !o.json && !o.message:
				if len(args) > 0 {
					return fmt.Errorf("emit: unknown kind %q: want one of %s, or --json or --message", args[0], strings.Join(kinds, ", "))
				}
				return fmt.Errorf("emit: say what to emit: a kind (%s), --json or --message (see --help)", strings.Join(kinds, ", "))
			case o.topic != "" && !o.message:
				return fmt.Errorf("emit: --topic is for --message")
			}
			name := "-"
			if len(args) == 1 {
				name = args[0]
			}
			data, err := a.readInput(name)
			if err != nil {
				return err
			}
			return a.runEmit(cmd.Context(), o, func(_ config.Config, p *ingest.Parser) ([]ingest.Event, error) {
				if o.message {
					return p.ParseMessages(data, o.topic)
				}
				return p.ParseJSON(data)
			})
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.json, "json", false, "read JSON events from FILE (or - or nothing: stdin)")
	f.BoolVar(&o.message, "message", false, "read bus messages from FILE (or - or nothing: stdin)")
	f.StringVar(&o.topic, "topic", "", "with --message: the bus `topic` of messages that carry none (a bare body)")
	pf := cmd.PersistentFlags()
	pf.StringVar(&a.brokers, "brokers", os.Getenv("FACTORY2_BROKERS"), "Kafka bootstrap `host:port,...` (env FACTORY2_BROKERS; default from --config, else "+config.DefaultBrokers+")")
	pf.BoolVar(&o.dryRun, "dry-run", false, "print the events with their topic and key; connect to nothing, produce nothing")
	pf.StringVar(&o.source, "source", "", "envelope `source` of events that carry none, e.g. koji/primary")
	pf.BoolVar(&o.eventTimeNow, "event-time-now", false, "give events without an event_time the current time")
	pf.StringVar(&o.txnID, "txn-id", "", "transactional `id` suffix (default: random); the id is <prefix>emit/<id>")
	pf.DurationVar(&o.timeout, "timeout", 30*time.Second, "give up producing after this long")
	pf.StringVarP(&o.output, "output", "o", outputAuto, "with --dry-run: output `format`, text, json (JSON lines) or auto (text on a terminal, else json)")
	for _, k := range ingest.Kinds() {
		cmd.AddCommand(a.emitKindCmd(k, &o))
	}
	cmd.AddCommand(a.emitComposesCmd(&o))
	cmd.AddCommand(a.emitDebianCmd(&o))
	return cmd
}

// emitKindCmd is `emit KIND`: one event from flags.
func (a *app) emitKindCmd(k ingest.Kind, o *emitOpts) *cobra.Command {
	cmd := &cobra.Command{
		Use:     k.Name + " [flags]",
		Aliases: k.Aliases,
		Short:   k.Short,
		Example: "  factory2 " + k.Example,
		Args:    cobra.NoArgs,
	}
	single := map[string]*string{}
	repeated := map[string]*[]string{}
	f := cmd.Flags()
	for _, fl := range k.Fields {
		if fl.Repeated {
			repeated[fl.Name] = f.StringArray(fl.Flag(), nil, fl.Usage)
			continue
		}
		single[fl.Name] = f.String(fl.Flag(), fl.Default, fl.Usage)
		if fl.Bool {
			f.Lookup(fl.Flag()).NoOptDefVal = "true"
		}
	}
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		values := map[string][]string{}
		for name, v := range single {
			if cmd.Flags().Changed(ingest.FlagName(name)) {
				values[name] = []string{*v}
			}
		}
		for name, v := range repeated {
			if cmd.Flags().Changed(ingest.FlagName(name)) {
				values[name] = *v
			}
		}
		rec, err := k.Build(values)
		if err != nil {
			return err
		}
		return a.runEmit(cmd.Context(), *o, func(_ config.Config, p *ingest.Parser) ([]ingest.Event, error) {
			return p.Records(rec)
		})
	}
	return cmd
}

// emitComposesCmd is `emit composes`: the compose definitions of the
// configuration.
func (a *app) emitComposesCmd(o *emitOpts) *cobra.Command {
	return &cobra.Command{
		Use:   "composes",
		Short: "The compose definitions of --config, one event each (to events.compose)",
		Long: `Produce every compose definition of the configuration's composes section as
a compose event of kind definition, keyed by its compose id, all in one
transaction, like the other forms of emit.

Run it after every change to the definitions. Each event's source is
` + config.DefinitionSource + ` and its event time the current time (a definition is an
operator's act); its id is a hash of the definition alone, so emitting an
unchanged definition again gives an event with the same id. A retired
definition is emitted with retired: true. The
configuration is validated first: nothing is produced when any definition
is invalid.`,
		Example: `  # Check what would be produced, then produce it:
  factory2 emit composes --config /etc/factory2/factory2.yml --dry-run
  factory2 emit composes --config /etc/factory2/factory2.yml --txn-id composes`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cmd.Flags().Changed("source") {
				return fmt.Errorf("emit composes: --source does not apply: definitions have source %s", config.DefinitionSource)
			}
			opts := *o
			opts.eventTimeNow = true
			return a.runEmit(cmd.Context(), opts, func(cfg config.Config, p *ingest.Parser) ([]ingest.Event, error) {
				recs, err := composeDefinitions(cfg, a.configPath)
				if err != nil {
					return nil, err
				}
				return p.Records(recs...)
			})
		},
	}
}

// composeDefinitions returns the definition events of cfg's composes,
// in the order of the file.
func composeDefinitions(cfg config.Config, path string) ([]avro.Record, error) {
	if len(cfg.Composes) == 0 {
		if path == "" {
			return nil, errors.New("emit composes: no --config given: the compose definitions are the composes section of a configuration file")
		}
		return nil, fmt.Errorf("emit composes: %s has no compose definitions (its composes section is empty)", path)
	}
	recs := make([]avro.Record, len(cfg.Composes))
	for i, c := range cfg.Composes {
		ev, err := c.Event()
		if err != nil {
			return nil, err
		}
		recs[i] = ev
	}
	return recs, nil
}

// readInput reads the file name, or stdin for "-".
func (a *app) readInput(name string) ([]byte, error) {
	if name == "-" {
		return io.ReadAll(a.stdin)
	}
	return os.ReadFile(name)
}

// runEmit parses with parse, which gets the configuration, and prints
// (--dry-run) or produces the events.
func (a *app) runEmit(ctx context.Context, o emitOpts, parse func(config.Config, *ingest.Parser) ([]ingest.Event, error)) error {
	cfg, cat, err := a.configAndCatalog()
	if err != nil {
		return err
	}
	events, err := parse(cfg, &ingest.Parser{Catalog: cat, Source: o.source, EventTimeNow: o.eventTimeNow})
	if err != nil {
		return err
	}
	out := a.jsonOut()
	if o.dryRun {
		if err := a.writeDryRun(events, o.output); err != nil {
			return err
		}
		a.say("emit: dry run: %s (%s); nothing was produced", plural(len(events), "event"), countTopics(events))
		return nil
	}

	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	prod, err := newIngestProducer(cfg, emitTxnSuffix(o.txnID))
	if err != nil {
		return err
	}
	defer prod.Close()
	// Fail fast, with the usual advice, when no broker answers.
	cl, err := kafkaClient(ctx, cfg)
	if err != nil {
		return err
	}
	cl.Close()
	// res is set also with ingest.ErrNotVisible: committed, so printed.
	res, err := prod.Produce(ctx, events)
	for _, r := range res {
		if werr := out.write(r); werr != nil {
			return werr
		}
	}
	if err != nil {
		return withLimitHint(err)
	}
	a.say("emit: produced %s in one transaction (%s; transactional id %s)", plural(len(res), "event"), countTopics(events), prod.TransactionalID())
	if o.message {
		return a.emitEnrichments(parent, cfg, o, prod, events)
	}
	return nil
}

// emitEnrichments produces, after bus messages, what Koji says of the
// builds they made COMPLETE (ingest.koji_hub_url; nothing when unset).
func (a *app) emitEnrichments(ctx context.Context, cfg config.Config, o emitOpts, prod *ingest.Producer, events []ingest.Event) error {
	log, err := a.logger()
	if err != nil {
		return err
	}
	en, err := newEnricher(cfg, log, nil)
	if en == nil || err != nil {
		return err
	}
	cat, err := catalog(cfg)
	if err != nil {
		return err
	}
	res, err := produceEnrichments(ctx, en, &ingest.Parser{Catalog: cat}, prod, events, o.timeout, log)
	out := a.jsonOut()
	for _, r := range res {
		if werr := out.write(r); werr != nil {
			return werr
		}
	}
	if len(res) > 0 {
		builds := 0
		for _, r := range res {
			if r.Type == "build" {
				builds++
			}
		}
		a.say("emit: produced the RPM lists of %s and %s from %s in one more transaction",
			plural(builds, "build"), plural(len(res)-builds, "buildroot edge"), cfg.Ingest.KojiHubURL)
	}
	if err != nil {
		return fmt.Errorf("emit: the events were produced, but asking Koji failed: %w; send the messages again to retry (the same events result)", err)
	}
	return nil
}

// writeDryRun prints the events of a dry run: a text line each, or their
// JSON lines.
func (a *app) writeDryRun(events []ingest.Event, format string) error {
	text, err := textOutput(format, a.stdout)
	if err != nil {
		return err
	}
	out := a.jsonOut()
	for _, ev := range events {
		if text {
			_, err = fmt.Fprintln(a.stdout, dryRunText(ev))
		} else {
			err = out.write(ev)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// dryRunText is the text line of an event emit would produce: its own,
// then the topic it goes to.
func dryRunText(ev ingest.Event) string {
	l := recordText(ev.Record)
	if l.Subject == "" {
		l.Subject = ev.Key
	}
	return l.String() + "  → " + ev.Topic
}

// countTopics summarizes how many events go to each topic.
func countTopics(events []ingest.Event) string {
	n := map[string]int{}
	for _, ev := range events {
		n[ev.Topic]++
	}
	names := make([]string, 0, len(n))
	for t := range n {
		names = append(names, t)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, t := range names {
		parts[i] = fmt.Sprintf("%d to %s", n[t], t)
	}
	return strings.Join(parts, ", ")
}

// plural is "1 event", "2 events".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// emitTxnSuffix is the transactional id suffix of one emit: the given one,
// or a random one.
func emitTxnSuffix(given string) string {
	if given != "" {
		return given
	}
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}

// ingestTxnID is the transactional id of an ingest producer:
// <prefix>emit/<suffix>.
func ingestTxnID(cat *topics.Catalog, suffix string) string {
	return cat.Prefix() + "emit/" + suffix
}
