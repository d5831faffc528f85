package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/factory2/factory2/avro"
	"github.com/factory2/factory2/internal/config"
	"github.com/factory2/factory2/internal/kclient"
	"github.com/factory2/factory2/topics"
)

type watchOpts struct {
	fromBeginning bool
	follow        bool
	max           int
	timeout       time.Duration
	group         string
	output        string
}

// watchShortcut is a name watch takes besides catalog aliases and topic
// names.
type watchShortcut struct {
	name, doc string
	topics    func(*topics.Catalog) []string
}

var watchShortcuts = []watchShortcut{
	{"decisions", "every decision topic", func(c *topics.Catalog) []string { return topics.Names(c.ByRole(topics.Decision)) }},
	{"events", "every input topic", func(c *topics.Catalog) []string { return topics.Names(c.ByRole(topics.Input)) }},
	{"autosign", topics.DecisionsAutosign, func(c *topics.Catalog) []string { return []string{c.Name(topics.DecisionsAutosign)} }},
	{"gating", topics.DecisionsGating, func(c *topics.Catalog) []string { return []string{c.Name(topics.DecisionsGating)} }},
	{"signed", topics.DecisionsSigned, func(c *topics.Catalog) []string { return []string{c.Name(topics.DecisionsSigned)} }},
	{"compose-ready", topics.DecisionsComposeReady, func(c *topics.Catalog) []string { return []string{c.Name(topics.DecisionsComposeReady)} }},
	{"rebuild", topics.DecisionsRebuild, func(c *topics.Catalog) []string { return []string{c.Name(topics.DecisionsRebuild)} }},
	{"deadletter", "the dead-letter topic", func(c *topics.Catalog) []string { return []string{c.Name(topics.DeadLetters)} }},
}

func (a *app) watchCmd() *cobra.Command {
	var o watchOpts
	var names []string
	for _, s := range watchShortcuts {
		names = append(names, fmt.Sprintf("  %-14s %s", s.name, s.doc))
	}
	cmd := &cobra.Command{
		Use:   "watch TOPIC...",
		Short: "Print the records of topics: a line each for people, JSON lines for scripts",
		Long: `Print the committed records of one or more topics.

On a terminal (or with -o text) each record is one line: its event time
(UTC), kind, subject, verdict and the reason in a few words, e.g.

  2026-11-25 09:00:37  gating        curl-8.11.1-3.fc42             blocked  bodhi_update_push_stable@fedora-42: Of 2 required tests, 1 test failed (failed fedora-ci.koji-build.tier0.functional)

Piped (or with -o json) each record is one JSON line:

  {"topic","partition","offset","key","timestamp","record":{...}}

where record is the decoded event or decision (with its "type"). A record
that does not decode is printed with an "error" and its raw value
("value" if it is UTF-8, else "value_base64"); watch never stops on one.
Dead letters are printed with their raw value, the "headers"
factory2.dlq.* saying why, and the "record" when the value decodes.

TOPIC is a shortcut:
` + strings.Join(names, "\n") + `
or a catalog alias (events.build, decisions.gating, ...) or a full topic name.

Only committed records are read (read_committed), so a transaction that was
aborted never shows. Without --follow, watch reads up to the end offsets the
topics have when it starts and exits; that needs --from-beginning (or a
--group with a committed position). With --follow it keeps waiting for new
records, from the end unless --from-beginning.

--timeout bounds the whole run. Reaching it ends watch with exit status 0
after printing what came, unless watch had a goal it did not reach: --max N
records, or (without --follow) the end offsets; then it exits 1. Ctrl-C
exits 0.

Without --group, watch reads the partitions directly and remembers nothing.
With --group it consumes as that consumer group, starts where the group left
off (else at the start with --from-beginning, or the end), and commits what
it printed. Without --follow a group member stops when the partitions have
reached the end offsets, so it must be the group's only member.`,
		Example: `  # Every event so far:
  factory2 watch events --from-beginning
  # Wait for the next gating decision, at most a minute:
  factory2 watch gating --follow --max 1 --timeout 1m
  # New decisions as they come, resuming where the last run stopped:
  factory2 watch decisions --follow --group my-dashboard
  # Why records were dead-lettered:
  factory2 watch deadletter --from-beginning | jq '.headers'
  # The text form, into a file:
  factory2 watch decisions --from-beginning -o text > decisions.txt`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runWatch(cmd.Context(), o, args)
		},
	}
	a.addBrokersFlag(cmd)
	f := cmd.Flags()
	f.BoolVar(&o.fromBeginning, "from-beginning", false, "start at the first record (default: the end, or the group's position)")
	f.BoolVar(&o.follow, "follow", false, "keep waiting for new records (default: stop at the end offsets present at start)")
	f.IntVar(&o.max, "max", 0, "stop after `N` records (0: no limit)")
	f.DurationVar(&o.timeout, "timeout", 0, "stop after this long (0: no limit; see above for the exit status)")
	f.StringVar(&o.group, "group", "", "consume as consumer group `G` and commit what was printed")
	addOutputFlag(f, &o.output)
	cmd.Long += "\n\n" + outputHelp
	return cmd
}

// watchTopics resolves watch's arguments to topic names, without
// duplicates, in the order given.
func watchTopics(cat *topics.Catalog, args []string) []string {
	var out []string
	add := func(names ...string) {
		for _, n := range names {
			if !slices.Contains(out, n) {
				out = append(out, n)
			}
		}
	}
	for _, arg := range args {
		i := slices.IndexFunc(watchShortcuts, func(s watchShortcut) bool { return s.name == arg })
		switch s, ok := cat.Lookup(arg); {
		case i >= 0:
			add(watchShortcuts[i].topics(cat)...)
		case ok:
			add(s.Name)
		default:
			add(arg) // a full topic name; checked against the cluster
		}
	}
	return out
}

// watchLine is one line watch prints.
type watchLine struct {
	Topic     string          `json:"topic"`
	Partition int32           `json:"partition"`
	Offset    int64           `json:"offset"`
	Key       string          `json:"key"`
	KeyBase64 string          `json:"key_base64,omitempty"`
	Timestamp time.Time       `json:"timestamp"`
	Record    json.RawMessage `json:"record,omitempty"`
	Error     string          `json:"error,omitempty"`
	// Value and ValueBase64 carry the raw value of dead letters and of
	// records that do not decode.
	Value       string            `json:"value,omitempty"`
	ValueBase64 string            `json:"value_base64,omitempty"`
	Headers     map[string]string `json:"headers,omitempty"`
}

// dlqHeaderPrefix starts the headers the processors add to dead letters.
const dlqHeaderPrefix = "factory2.dlq."

func (a *app) runWatch(ctx context.Context, o watchOpts, args []string) error {
	if !o.follow && !o.fromBeginning && o.group == "" {
		return errors.New("watch: nothing to read: without --follow, watch reads up to the end offsets present at start, so pass --from-beginning (or --follow to wait for new records)")
	}
	if o.max < 0 {
		return fmt.Errorf("watch: --max %d: must not be negative", o.max)
	}
	cfg, cat, err := a.configAndCatalog()
	if err != nil {
		return err
	}
	codec, err := newCodec(cfg)
	if err != nil {
		return err
	}
	out, err := a.newRecordPrinter(o.output, cat, codec)
	if err != nil {
		return err
	}
	parent := ctx
	if o.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.timeout)
		defer cancel()
	}
	names := watchTopics(cat, args)
	w, err := a.newWatcher(ctx, cfg, o, names)
	if err != nil {
		if parent.Err() != nil {
			return nil
		}
		return err
	}
	defer w.cl.Close()

	printed := 0
	for w.more() && (o.max == 0 || printed < o.max) {
		fs := w.cl.PollFetches(ctx) // records already fetched are printed even if ctx ended
		var ferr error
		fs.EachError(func(t string, p int32, err error) {
			if ferr == nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
				ferr = fmt.Errorf("watch: fetching %s[%d]: %w", t, p, err)
			}
		})
		if ferr != nil {
			return ferr
		}
		var handled []*kgo.Record
		for _, r := range fs.Records() {
			if o.max > 0 && printed >= o.max {
				break
			}
			handled = append(handled, r)
			w.reached(r)
			if r.Attrs.IsControl() {
				continue
			}
			if err := out.print(r); err != nil {
				return err
			}
			printed++
		}
		if o.group != "" && len(handled) > 0 {
			// Commit what was printed even when ctx just ended, so the
			// next run does not print it again.
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			err := w.cl.CommitRecords(cctx, handled...)
			cancel()
			if err != nil {
				return fmt.Errorf("watch: committing group %s: %w", o.group, err)
			}
		}
		if ctx.Err() != nil {
			break
		}
	}

	switch {
	case parent.Err() != nil: // interrupted: a normal way to stop
	case ctx.Err() != nil && o.max > 0 && printed < o.max:
		return fmt.Errorf("watch: timed out after %s with %d of %d records", o.timeout, printed, o.max)
	case ctx.Err() != nil && w.more() && !o.follow:
		return fmt.Errorf("watch: timed out after %s before reaching the end of %s (%d records printed)", o.timeout, w.pendingList(), printed)
	}
	a.say("watch: %s from %s", plural(printed, "record"), strings.Join(names, ", "))
	return nil
}

// watcher consumes the topics and knows, without --follow, which
// partitions have not yet reached their end offset.
type watcher struct {
	cl     *kgo.Client
	follow bool
	// pending maps topic → partition → the end offset (last stable offset
	// at start) not yet reached.
	pending map[string]map[int32]int64
}

// more reports whether records remain to be read.
func (w *watcher) more() bool { return w.follow || len(w.pending) > 0 }

// reached notes that r was read. The records a read_committed consumer
// skips (those of aborted transactions) are followed by their abort
// marker, which KeepControlRecords returns, so the record just before an
// end offset is always seen.
func (w *watcher) reached(r *kgo.Record) {
	ps := w.pending[r.Topic]
	if end, ok := ps[r.Partition]; ok && r.Offset+1 >= end {
		delete(ps, r.Partition)
		if len(ps) == 0 {
			delete(w.pending, r.Topic)
		}
	}
}

func (w *watcher) pendingList() string {
	var parts []string
	for _, t := range slices.Sorted(maps.Keys(w.pending)) {
		for _, p := range slices.Sorted(maps.Keys(w.pending[t])) {
			parts = append(parts, fmt.Sprintf("%s[%d]", t, p))
		}
	}
	return strings.Join(parts, ", ")
}

// newWatcher checks the topics exist, works out where to start and end,
// and returns a watcher with a consuming client, which the caller closes.
func (a *app) newWatcher(ctx context.Context, cfg config.Config, o watchOpts, names []string) (*watcher, error) {
	adminCl, err := kafkaClient(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer adminCl.Close()
	adm := kadm.NewClient(adminCl)
	td, err := adm.ListTopics(ctx, names...)
	if err != nil {
		return nil, fmt.Errorf("watch: looking up %v: %w", names, err)
	}
	var missing []string
	for _, n := range names {
		if d, ok := td[n]; !ok || d.Err != nil {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		var sc []string
		for _, s := range watchShortcuts {
			sc = append(sc, s.name)
		}
		return nil, fmt.Errorf("watch: unknown topic %s: not a shortcut (%s), a catalog alias (e.g. %s) nor a topic on the cluster (create the catalog's topics with `factory2 topics ensure`)",
			strings.Join(missing, ", "), strings.Join(sc, ", "), topics.EventsBuild)
	}

	w := &watcher{follow: o.follow, pending: map[string]map[int32]int64{}}
	start := kgo.NewOffset().AtEnd()
	if o.fromBeginning {
		start = kgo.NewOffset().AtStart()
	}
	opts := []kgo.Opt{
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
	}
	if !o.follow {
		// The end offsets are the last stable offsets: what a
		// read_committed consumer can read now.
		ends, err := adm.ListCommittedOffsets(ctx, names...)
		if err == nil {
			err = ends.Error()
		}
		if err != nil {
			return nil, fmt.Errorf("watch: listing end offsets: %w", err)
		}
		starts, err := a.watchStarts(ctx, adm, o, names)
		if err != nil {
			return nil, err
		}
		ends.Each(func(e kadm.ListedOffset) {
			if s, ok := starts[e.Topic][e.Partition]; ok && s < e.Offset {
				if w.pending[e.Topic] == nil {
					w.pending[e.Topic] = map[int32]int64{}
				}
				w.pending[e.Topic][e.Partition] = e.Offset
			}
		})
	}
	switch {
	case o.group != "":
		opts = append(opts, kgo.ConsumerGroup(o.group), kgo.ConsumeTopics(names...),
			kgo.ConsumeResetOffset(start), kgo.DisableAutoCommit())
	case o.follow:
		parts := map[string]map[int32]kgo.Offset{}
		for _, n := range names {
			parts[n] = map[int32]kgo.Offset{}
			for _, p := range td[n].Partitions {
				parts[n][p.Partition] = start
			}
		}
		opts = append(opts, kgo.ConsumePartitions(parts))
	default:
		// Only the partitions with something to read.
		parts := map[string]map[int32]kgo.Offset{}
		for t, ps := range w.pending {
			parts[t] = map[int32]kgo.Offset{}
			for p := range ps {
				parts[t][p] = start
			}
		}
		opts = append(opts, kgo.ConsumePartitions(parts))
	}
	w.cl, err = kclient.New(cfg.Brokers, cfg.Kafka, opts...)
	if err != nil {
		return nil, fmt.Errorf("watch: %w", err)
	}
	return w, nil
}

// watchStarts returns where each partition's reading starts, without
// --follow: the log start with --from-beginning, else the group's
// committed offset (falling back to the log start or end).
func (a *app) watchStarts(ctx context.Context, adm *kadm.Client, o watchOpts, names []string) (map[string]map[int32]int64, error) {
	list := adm.ListEndOffsets
	if o.fromBeginning {
		list = adm.ListStartOffsets
	}
	reset, err := list(ctx, names...)
	if err == nil {
		err = reset.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("watch: listing start offsets: %w", err)
	}
	starts := map[string]map[int32]int64{}
	reset.Each(func(l kadm.ListedOffset) {
		if starts[l.Topic] == nil {
			starts[l.Topic] = map[int32]int64{}
		}
		starts[l.Topic][l.Partition] = l.Offset
	})
	if o.group == "" {
		return starts, nil
	}
	committed, err := adm.FetchOffsets(ctx, o.group)
	// A coordinator that is loading or moving answers with a retriable
	// error (COORDINATOR_NOT_AVAILABLE right after a group is created);
	// ask again until the context ends.
	for backoff := 50 * time.Millisecond; err != nil && kerr.IsRetriable(err) && ctx.Err() == nil; backoff = min(2*backoff, time.Second) {
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		committed, err = adm.FetchOffsets(ctx, o.group)
	}
	if err != nil && !errors.Is(err, kerr.GroupIDNotFound) {
		return nil, fmt.Errorf("watch: fetching the offsets of group %s: %w", o.group, err)
	}
	committed.Each(func(c kadm.OffsetResponse) {
		if c.Err == nil && c.At >= 0 && starts[c.Topic] != nil {
			starts[c.Topic][c.Partition] = c.At
		}
	})
	return starts, nil
}

// watchRecord is the line watch prints for r.
func watchRecord(cat *topics.Catalog, codec *avro.Codec, r *kgo.Record) watchLine {
	l := watchLine{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Timestamp: r.Timestamp.UTC()}
	if utf8.Valid(r.Key) {
		l.Key = string(r.Key)
	} else {
		l.KeyBase64 = base64.StdEncoding.EncodeToString(r.Key)
	}
	spec, _ := cat.Lookup(r.Topic)
	deadLetter := spec.Role == topics.DeadLetter
	rec, err := codec.Decode(r.Value)
	if err == nil {
		l.Record, err = avro.MarshalJSON(rec)
	}
	if err != nil && !deadLetter {
		l.Error = err.Error()
	}
	if err != nil || deadLetter {
		if utf8.Valid(r.Value) {
			l.Value = string(r.Value)
		} else {
			l.ValueBase64 = base64.StdEncoding.EncodeToString(r.Value)
		}
	}
	if deadLetter {
		l.Headers = map[string]string{}
		for _, h := range r.Headers {
			if strings.HasPrefix(h.Key, dlqHeaderPrefix) {
				l.Headers[h.Key] = string(h.Value)
			}
		}
	}
	return l
}

// recordPrinter prints records the way watch does: a text line each, or
// a JSON line each (watchLine).
type recordPrinter struct {
	text  bool
	w     io.Writer
	json  jsonLines
	cat   *topics.Catalog
	codec *avro.Codec
}

// newRecordPrinter prints to stdout in the --output format.
func (a *app) newRecordPrinter(format string, cat *topics.Catalog, codec *avro.Codec) (*recordPrinter, error) {
	text, err := textOutput(format, a.stdout)
	if err != nil {
		return nil, err
	}
	return &recordPrinter{text: text, w: a.stdout, json: a.jsonOut(), cat: cat, codec: codec}, nil
}

func (p *recordPrinter) print(r *kgo.Record) error {
	if !p.text {
		return p.json.write(watchRecord(p.cat, p.codec, r))
	}
	_, err := fmt.Fprintln(p.w, watchText(p.cat, p.codec, r))
	return err
}

// watchText is the text line of r: the record's own (recordText), else a
// line saying why it is a dead letter or does not decode.
func watchText(cat *topics.Catalog, codec *avro.Codec, r *kgo.Record) textLine {
	key := string(r.Key)
	if !utf8.Valid(r.Key) {
		key = base64.StdEncoding.EncodeToString(r.Key)
	}
	spec, _ := cat.Lookup(r.Topic)
	if spec.Role == topics.DeadLetter {
		l := textLine{Time: r.Timestamp, Kind: "deadletter", Subject: key}
		for _, h := range r.Headers {
			switch h.Key {
			case dlqHeaderPrefix + "kind":
				l.Verdict = string(h.Value)
			case dlqHeaderPrefix + "reason":
				l.Reason = string(h.Value) + l.Reason
			case dlqHeaderPrefix + "topic":
				l.Reason += " (from " + string(h.Value) + ")"
			}
		}
		return l
	}
	name := spec.Alias
	if name == "" {
		name = r.Topic
	}
	rec, err := codec.Decode(r.Value)
	if err != nil {
		return textLine{Time: r.Timestamp, Kind: name, Subject: key, Verdict: "error", Reason: err.Error()}
	}
	l := recordText(rec)
	if l.Time.IsZero() {
		l.Time = r.Timestamp
	}
	if l.Subject == "" {
		l.Subject = key
	}
	return l
}
