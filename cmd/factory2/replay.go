package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/factory2/factory2/processors"
	"github.com/factory2/factory2/topics"
)

type replayOpts struct {
	processor  string
	partitions []int32
	into       string
	dryRun     bool
	diff       bool
	apply      bool
	output     string
}

func (a *app) replayCmd() *cobra.Command {
	var o replayOpts
	cmd := &cobra.Command{
		Use:   "replay",
		Short: "Rebuild processor state from the log",
		Long: `Rebuild a processor's state from the log, with progress on stderr and a
summary on stdout.

  replay restore   restore the local state stores from their changelogs
                   (only the tail each store lacks), as a restarted instance
                   would; run it while the processor is stopped here.
  replay rederive  re-run the processor over its input topics from the
                   beginning into a fresh state (after a policy change or a
                   bug fix). With --dry-run --diff, print which decisions would
                   differ from those already emitted, before anything is
                   published (see rederive --help). With --apply (every instance
                   of the processor stopped), make it the processor's history
                   in one transaction: publish the decisions never emitted,
                   rewrite the state changelogs, and move the group's offsets
                   to where the re-derivation read to; instances then restore
                   and continue from there, exactly once.

A policy change alone needs no replay: a processor started with new policies
re-evaluates the subjects it holds and emits what changed. Re-derive for a
bug fix, whose effect on stored state only a run from the start can undo.

` + outputHelp,
	}
	restore := &cobra.Command{
		Use:   "restore",
		Short: "Restore local state stores from their changelogs",
		Long: `Restore the local state stores of a processor from their changelogs (only
the tail each store lacks), as a restarted instance would; run it while the
processor is stopped here.

` + outputHelp + ` The JSON line is {"processor","partitions",
"restored_records","took"}.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.runRestore(cmd.Context(), o)
		},
	}
	rederive := &cobra.Command{
		Use:   "rederive",
		Short: "Re-derive decisions from the input topics into a fresh state",
		Long: `Re-run a processor over its input topics from the beginning into a fresh
state, and report what it would decide.

With --diff, the re-derived decisions are compared with those already
emitted. An emitted decision and a re-derived one about the same thing (the
same topic and subject, decision kind, and decision context and product
version, or key id) are one change, shown before → after: the verdict, the
reason, and the requirements gained (+) and lost (-). Decisions made at the
same event pair first, then the rest in order; only what is left is listed
as new (re-derived only) or gone (emitted only: --apply cannot take those
back). Pairs that differ only in identity (ids, policy version,
provenance) are counted, not listed: a policy change re-identifies every
decision. So are changes of internal records (the build views the gating
processor sends the compose processors). The counts end the output.

With --apply, every instance of the processor must be stopped: a running
one is refused before anything is re-derived. Then the re-derivation is
made the processor's history in one transaction (see replay --help).

Progress goes to stderr: a line redrawn in place on a terminal, a line
when done otherwise.

` + outputHelp + `

As JSON lines: each change {"change","topic","key","about","before",
"after","gained","lost"} (records as watch prints them, requirements with
"satisfied"), then the summary {"processor","inputs","outputs",
"dead_letters","published","diff":{"changed","new","gone",
"reidentified","identical","internal"}}.`,
		Example: `  # What a policy change would change, before anything is published:
  factory2 replay rederive --processor gating --dry-run --diff --config new.yml
  # The same, for a script:
  factory2 replay rederive --processor gating --diff -o json | jq 'select(.change == "changed")'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.runRederive(cmd.Context(), o)
		},
	}
	for _, c := range []*cobra.Command{restore, rederive} {
		a.addBrokersFlag(c)
		c.Flags().StringVar(&o.processor, "processor", "", "processor `name` (required)")
		c.Flags().Int32SliceVar(&o.partitions, "partitions", nil, "only these partitions (default all)")
		addOutputFlag(c.Flags(), &o.output)
		_ = c.MarkFlagRequired("processor")
	}
	rederive.Flags().StringVar(&o.into, "into", "", "`dir`ectory for the fresh state (default a temporary one, removed after)")
	rederive.Flags().BoolVar(&o.dryRun, "dry-run", false, "publish nothing (the default unless --apply; explicit in scripts)")
	rederive.Flags().BoolVar(&o.diff, "diff", false, "compare the re-derived decisions with those already emitted")
	rederive.Flags().BoolVar(&o.apply, "apply", false, "publish the re-derivation as the processor's history (the processor must be stopped)")
	rederive.MarkFlagsMutuallyExclusive("dry-run", "apply")
	cmd.AddCommand(restore, rederive)
	return cmd
}

func (a *app) replaySpec(o replayOpts) (*pipeline, processors.Spec, error) {
	log, err := a.logger()
	if err != nil {
		return nil, processors.Spec{}, err
	}
	cfg, err := a.config()
	if err != nil {
		return nil, processors.Spec{}, err
	}
	p, err := newPipeline(cfg, log)
	if err != nil {
		return nil, processors.Spec{}, err
	}
	var names []string
	for _, s := range p.specs {
		if s.Name == o.processor {
			return p, s, nil
		}
		names = append(names, s.Name)
	}
	return nil, processors.Spec{}, fmt.Errorf("no processor %q (this binary has: %s)", o.processor, strings.Join(names, ", "))
}

func (a *app) runRestore(ctx context.Context, o replayOpts) error {
	text, err := textOutput(o.output, a.stdout)
	if err != nil {
		return err
	}
	p, spec, err := a.replaySpec(o)
	if err != nil {
		return err
	}
	defer p.cache.Unref()
	a.say("restoring %s state from its changelogs into %s", spec.Name, p.cfg.State.Dir)
	st, err := processors.Restore(ctx, spec, p.runnerConfig(), o.partitions)
	if err != nil {
		return err
	}
	if text {
		_, err := fmt.Fprintf(a.stdout, "%s: restored %s into %s in %s\n", spec.Name, plural(int(st.Records), "record"),
			plural(st.Partitions, "partition"), st.Took.Round(time.Millisecond))
		return err
	}
	return a.jsonOut().write(map[string]any{"processor": spec.Name, "partitions": st.Partitions, "restored_records": st.Records, "took": st.Took.String()})
}

func (a *app) runRederive(ctx context.Context, o replayOpts) error {
	text, err := textOutput(o.output, a.stdout)
	if err != nil {
		return err
	}
	p, spec, err := a.replaySpec(o)
	if err != nil {
		return err
	}
	defer p.cache.Unref()
	if o.apply {
		if err := refuseRunning(ctx, p, spec.Name); err != nil {
			return err
		}
	}
	dir := o.into
	if dir == "" {
		if dir, err = os.MkdirTemp("", "factory2-rederive-"); err != nil {
			return err
		}
		defer os.RemoveAll(dir)
	}
	bar := a.progressBar("re-deriving " + spec.Name)
	red, err := processors.Rederive(ctx, spec, p.runnerConfig(), dir, o.partitions, bar.update)
	bar.finish()
	if err != nil {
		return err
	}
	sum := rederiveSummary{Processor: spec.Name, Inputs: red.Inputs, Outputs: len(red.Outputs), DeadLetters: red.DeadLetters}
	if o.into != "" {
		sum.StateDir = o.into
	}
	if o.diff {
		cmp, err := processors.Compare(ctx, p.runnerConfig(), red.Outputs, spec.Outputs)
		if err != nil {
			return err
		}
		sum.Diff = &diffCounts{Reidentified: cmp.Reidentified, Identical: cmp.Identical}
		var decisions []processors.Change
		for _, c := range cmp.Changes {
			if s, ok := p.cat.Lookup(c.Topic); ok && s.Role != topics.Decision {
				sum.Diff.Internal++ // a build view, say: the decisions tell
				continue
			}
			decisions = append(decisions, c)
		}
		if err := a.writeChanges(decisions, text); err != nil {
			return err
		}
		for _, c := range decisions {
			switch c.Change {
			case processors.ChangeChanged:
				sum.Diff.Changed++
			case processors.ChangeNew:
				sum.Diff.New++
			case processors.ChangeGone:
				sum.Diff.Gone++
			}
		}
	}
	if o.apply {
		a.say("applying: publishing, rewriting the changelogs and moving the offsets of group %s in one transaction", spec.Name)
		st, err := processors.Apply(ctx, spec, p.runnerConfig(), red)
		if err != nil {
			return err
		}
		sum.Applied = true
		sum.Published = st.Published
		sum.ChangelogRecords = st.ChangelogRecords
		sum.OffsetsMoved = st.Offsets
	}
	if !text {
		return a.jsonOut().write(sum)
	}
	_, err = fmt.Fprint(a.stdout, sum.text())
	return err
}

// refuseRunning fails when an instance of the processor named name runs
// (its group has members): --apply would be refused after the whole
// re-derivation otherwise.
func refuseRunning(ctx context.Context, p *pipeline, name string) error {
	var group string
	for i, s := range p.specs {
		if s.Name == name {
			group = p.runners[i].Group()
		}
	}
	cl, err := kafkaClient(ctx, p.cfg)
	if err != nil {
		return err
	}
	defer cl.Close()
	groups, err := kadm.NewClient(cl).DescribeGroups(ctx, group)
	if err != nil {
		return fmt.Errorf("replay: asking whether %s runs (group %s): %w", name, group, err)
	}
	if g, ok := groups[group]; ok && len(g.Members) > 0 {
		return fmt.Errorf("replay: --apply refused: %s of %s running (group %s is %s); stop every instance, then apply (nothing was re-derived or published)",
			plural(len(g.Members), "instance"), name, group, g.State)
	}
	return nil
}

// rederiveSummary ends a re-derivation's output.
type rederiveSummary struct {
	Processor        string      `json:"processor"`
	Inputs           int64       `json:"inputs"`
	Outputs          int         `json:"outputs"`
	DeadLetters      int64       `json:"dead_letters"`
	Published        int         `json:"published"`
	Diff             *diffCounts `json:"diff,omitempty"`
	ChangelogRecords int         `json:"changelog_records,omitempty"`
	OffsetsMoved     int         `json:"offsets_moved,omitempty"`
	StateDir         string      `json:"state_dir,omitempty"`
	Applied          bool        `json:"-"`
}

// diffCounts counts a Comparison's changes by kind, and the pairs it
// does not list.
type diffCounts struct {
	Changed      int `json:"changed"`
	New          int `json:"new"`
	Gone         int `json:"gone"`
	Reidentified int `json:"reidentified"`
	Identical    int `json:"identical"`
	// Internal counts the changes of internal records (build views),
	// which are not listed.
	Internal int `json:"internal"`
}

// text is the summary for people.
func (s rederiveSummary) text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: re-derived %s from %s (%s)\n", s.Processor, plural(s.Outputs, "output"),
		plural(int(s.Inputs), "input record"), plural(int(s.DeadLetters), "dead letter"))
	if d := s.Diff; d != nil {
		fmt.Fprintf(&b, "compared with the decisions emitted: %d changed, %d new, %d gone; not listed: %d the same but re-identified, %d identical, %d internal records changed\n",
			d.Changed, d.New, d.Gone, d.Reidentified, d.Identical, d.Internal)
	}
	if s.Applied {
		fmt.Fprintf(&b, "applied: published %s, wrote %s to the changelogs, moved %s\n",
			plural(s.Published, "decision"), plural(s.ChangelogRecords, "record"), plural(s.OffsetsMoved, "offset"))
	} else {
		b.WriteString("nothing was published (a dry run; --apply publishes)\n")
	}
	if s.StateDir != "" {
		fmt.Fprintf(&b, "the re-derived state is in %s\n", s.StateDir)
	}
	return b.String()
}

// writeChanges prints a comparison's changes as text or JSON lines.
func (a *app) writeChanges(changes []processors.Change, text bool) error {
	out := a.jsonOut()
	for _, c := range changes {
		var err error
		if text {
			_, err = fmt.Fprint(a.stdout, changeText(c))
		} else {
			err = out.write(c)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// changeText is the text of a change: a line as watch prints decisions,
// led by what changed; for a changed decision, its verdict before →
// after, then the reason and the requirements gained and lost, indented.
func changeText(c processors.Change) string {
	const lead = "%-8s "
	switch c.Change {
	case processors.ChangeNew:
		return fmt.Sprintf(lead+"%s\n", c.Change, recordText(c.After))
	case processors.ChangeGone:
		return fmt.Sprintf(lead+"%s\n", c.Change, recordText(c.Before))
	}
	before, after := recordText(c.Before), recordText(c.After)
	head := after
	head.Verdict, head.Reason = before.Verdict+" → "+after.Verdict, ""
	if before.Verdict == after.Verdict {
		head.Verdict = after.Verdict
	}
	var b strings.Builder
	fmt.Fprintf(&b, lead+"%s\n", c.Change, head)
	if before.Reason != after.Reason {
		fmt.Fprintf(&b, "           was: %s\n", before.Reason)
		fmt.Fprintf(&b, "           now: %s\n", after.Reason)
	} else {
		fmt.Fprintf(&b, "           %s\n", after.Reason)
	}
	for _, q := range c.Gained {
		fmt.Fprintf(&b, "           + %s\n", requirementText(q))
	}
	for _, q := range c.Lost {
		fmt.Fprintf(&b, "           - %s\n", requirementText(q))
	}
	return b.String()
}

// requirementText is one requirement a decision gained or lost.
func requirementText(q processors.RequirementChange) string {
	s := "unsatisfied "
	if q.Satisfied {
		s = "satisfied "
	}
	s += q.Type
	for _, part := range []string{q.Testcase, q.Scenario, q.SubjectID} {
		if part != "" && !(part == q.SubjectID && q.Testcase != "") {
			s += " " + part
		}
	}
	if q.Detail != "" {
		s += " (" + q.Detail + ")"
	}
	return s
}

// progress reports a long job on stderr: on a terminal, one line redrawn
// in place at most every 200ms; otherwise one line when it is done. Either
// way the last line ends with a newline.
type progress struct {
	a        *app
	label    string
	terminal bool
	mu       sync.Mutex
	last     time.Time
	parts    map[int32][2]int64
}

func (a *app) progressBar(label string) *progress {
	return &progress{a: a, label: label, terminal: isTerminal(a.stderr), parts: map[int32][2]int64{}}
}

func (b *progress) update(p int32, done, total int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.parts[p] = [2]int64{done, total}
	if !b.terminal || time.Since(b.last) < 200*time.Millisecond {
		return
	}
	b.last = time.Now()
	fmt.Fprint(b.a.stderr, "\r"+b.line()+"\x1b[K")
}

// line is the progress so far.
func (b *progress) line() string {
	var done, total int64
	for _, v := range b.parts {
		done += v[0]
		total += v[1]
	}
	pct := 100.0
	if total > 0 {
		pct = 100 * float64(done) / float64(total)
	}
	const width = 30
	n := int(pct / 100 * width)
	return fmt.Sprintf("%s [%s%s] %5.1f%% %d/%d records, %s", b.label, strings.Repeat("#", n), strings.Repeat(".", width-n), pct, done, total,
		plural(len(b.parts), "partition"))
}

// finish ends the progress line.
func (b *progress) finish() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.terminal {
		fmt.Fprint(b.a.stderr, "\r"+b.line()+"\x1b[K\n")
		return
	}
	fmt.Fprintln(b.a.stderr, b.line())
}
