package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/factory2/factory2/processors"
)

type replayOpts struct {
	processor  string
	partitions []int32
	into       string
	dryRun     bool
	diff       bool
	apply      bool
}

func (a *app) replayCmd() *cobra.Command {
	var o replayOpts
	cmd := &cobra.Command{
		Use:   "replay",
		Short: "Rebuild processor state from the log",
		Long: `Rebuild a processor's state from the log, with progress on stderr and a JSON
summary on stdout.

  replay restore   restore the local state stores from their changelogs
                   (only the tail each store lacks), as a restarted instance
                   would; run it while the processor is stopped here.
  replay rederive  re-run the processor over its input topics from the
                   beginning into a fresh state (after a policy change or a
                   bug fix). With --dry-run --diff, print which decisions would
                   differ from those already emitted (add, remove, change),
                   before anything is published. With --apply (every instance
                   of the processor stopped), make it the processor's history
                   in one transaction: publish the decisions never emitted,
                   rewrite the state changelogs, and move the group's offsets
                   to where the re-derivation read to; instances then restore
                   and continue from there, exactly once.

A policy change alone needs no replay: a processor started with new policies
re-evaluates the subjects it holds and emits what changed. Re-derive for a
bug fix, whose effect on stored state only a run from the start can undo.`,
	}
	restore := &cobra.Command{
		Use:   "restore",
		Short: "Restore local state stores from their changelogs",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.runRestore(cmd.Context(), o)
		},
	}
	rederive := &cobra.Command{
		Use:   "rederive",
		Short: "Re-derive decisions from the input topics into a fresh state",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.runRederive(cmd.Context(), o)
		},
	}
	for _, c := range []*cobra.Command{restore, rederive} {
		a.addBrokersFlag(c)
		c.Flags().StringVar(&o.processor, "processor", "", "processor `name` (required)")
		c.Flags().Int32SliceVar(&o.partitions, "partitions", nil, "only these partitions (default all)")
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
	return a.jsonOut().write(map[string]any{"processor": spec.Name, "partitions": st.Partitions, "restored_records": st.Records, "took": st.Took.String()})
}

func (a *app) runRederive(ctx context.Context, o replayOpts) error {
	p, spec, err := a.replaySpec(o)
	if err != nil {
		return err
	}
	defer p.cache.Unref()
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
	out := a.jsonOut()
	summary := map[string]any{"processor": spec.Name, "inputs": red.Inputs, "outputs": len(red.Outputs), "dead_letters": red.DeadLetters, "published": 0}
	if o.diff {
		diff, err := processors.Diff(ctx, p.runnerConfig(), red.Outputs, spec.Outputs)
		if err != nil {
			return err
		}
		counts := map[string]int{}
		for _, d := range diff {
			counts[d.Change]++
			if err := out.write(d); err != nil {
				return err
			}
		}
		summary["diff"] = counts
	}
	if o.apply {
		a.say("applying: publishing, rewriting the changelogs and moving the offsets of group %s in one transaction", spec.Name)
		st, err := processors.Apply(ctx, spec, p.runnerConfig(), red)
		if err != nil {
			return err
		}
		summary["published"] = st.Published
		summary["changelog_records"] = st.ChangelogRecords
		summary["offsets_moved"] = st.Offsets
	}
	if o.into != "" {
		summary["state_dir"] = o.into
	}
	return out.write(summary)
}

// progress draws a one-line progress bar on stderr, at most every 200ms.
type progress struct {
	a     *app
	label string
	mu    sync.Mutex
	last  time.Time
	parts map[int32][2]int64
}

func (a *app) progressBar(label string) *progress {
	return &progress{a: a, label: label, parts: map[int32][2]int64{}}
}

func (b *progress) update(p int32, done, total int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.parts[p] = [2]int64{done, total}
	if time.Since(b.last) < 200*time.Millisecond {
		return
	}
	b.last = time.Now()
	b.draw()
}

func (b *progress) draw() {
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
	ps := slices.Sorted(func(yield func(int32) bool) {
		for p := range b.parts {
			if !yield(p) {
				return
			}
		}
	})
	fmt.Fprintf(b.a.stderr, "\r%s [%s%s] %5.1f%% %d/%d records, partitions %v", b.label, strings.Repeat("#", n), strings.Repeat(".", width-n), pct, done, total, ps)
}

func (b *progress) finish() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.draw()
	fmt.Fprintln(b.a.stderr)
}
