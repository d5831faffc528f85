package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/factory2/factory2/avro"
	"github.com/factory2/factory2/internal/debian"
	"github.com/factory2/factory2/internal/ingest"
)

func (a *app) emitDebianCmd(o *emitOpts) *cobra.Command {
	var (
		codename string
		batch    int
	)
	cmd := &cobra.Command{
		Use:   "debian",
		Short: "Debian's package index, as dependency edges (to events.deps)",
		Long: `Produce the dependency graph of a Debian package index that apt keeps on this
machine (apt-get indextargets lists them): for every binary package P,
deb:P built-from deb-source:S, deb:P requires deb:D for every alternative
of Depends and Pre-Depends, deb:P embeds deb-source:S for Built-Using, and
deb:V provided-by deb:P for what P Provides. About 63,000 packages and
400,000 edges for a main index.

The edges go out in transactions of --batch edges each (an index is too
large for one). Each edge's id hashes the edge and the codename, so
emitting the same index again changes nothing. Progress goes to stderr.
--dry-run loads and counts, producing nothing.`,
		Example: `  # Which indexes apt has, then load the main one:
  apt-get indextargets --format '$(CODENAME) $(METAKEY)' | grep Packages
  factory2 emit debian --codename bookworm --txn-id debian`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.emitDebian(cmd.Context(), *o, codename, batch)
		},
	}
	cmd.Flags().StringVar(&codename, "codename", "", "the index's codename (default: the largest binary index apt has)")
	cmd.Flags().IntVar(&batch, "batch", 20000, "edges per transaction")
	return cmd
}

func (a *app) emitDebian(ctx context.Context, o emitOpts, codename string, batch int) error {
	if batch < 1 {
		return fmt.Errorf("emit debian: --batch %d: want 1 or more", batch)
	}
	xs, err := debian.Indexes(ctx)
	if err != nil {
		return fmt.Errorf("emit debian: %w", err)
	}
	var x *debian.Index
	for i := range xs {
		if codename != "" && xs[i].Codename != codename {
			continue
		}
		if x == nil || strings.HasPrefix(xs[i].MetaKey, "main/") && !strings.HasPrefix(x.MetaKey, "main/") ||
			len(xs[i].Codename) < len(x.Codename) {
			x = &xs[i]
		}
	}
	if x == nil {
		var have []string
		for _, i := range xs {
			have = append(have, i.Codename+" "+i.MetaKey)
		}
		return fmt.Errorf("emit debian: no binary index with codename %q; apt has: %s", codename, strings.Join(have, "; "))
	}
	a.say("emit debian: loading %s %s (%s)", x.Codename, x.MetaKey, x.Date.Format(time.DateOnly))
	edges, st, err := debian.Load(ctx, *x, debian.LoadOptions{Progress: func(s debian.Stats) {
		a.say("emit debian: %d packages, %d edges", s.Packages, s.Edges)
	}})
	if err != nil {
		return fmt.Errorf("emit debian: %w", err)
	}
	a.say("emit debian: %d packages, %d source packages, %d edges %v in %s", st.Packages, st.Sources, st.Edges, st.ByRelation, st.Elapsed.Round(time.Millisecond))
	if o.dryRun {
		a.say("emit debian: dry run: nothing was produced")
		return nil
	}
	cfg, cat, err := a.configAndCatalog()
	if err != nil {
		return err
	}
	prod, err := newIngestProducer(cfg, emitTxnSuffix(o.txnID))
	if err != nil {
		return err
	}
	defer prod.Close()
	parser := &ingest.Parser{Catalog: cat}
	start := time.Now()
	recs := make([]avro.Record, 0, batch)
	for i := 0; i < len(edges); i += batch {
		recs = recs[:0]
		for j := i; j < min(i+batch, len(edges)); j++ {
			recs = append(recs, &edges[j])
		}
		evs, err := parser.Records(recs...)
		if err != nil {
			return fmt.Errorf("emit debian: %w", err)
		}
		pctx, cancel := context.WithTimeout(ctx, o.timeout)
		_, err = prod.Produce(pctx, evs)
		cancel()
		if err != nil {
			return fmt.Errorf("emit debian: after %d of %d edges: %w", i, len(edges), withLimitHint(err))
		}
		done := min(i+batch, len(edges))
		a.say("emit debian: produced %d of %d edges (%.0f edges/s)", done, len(edges), float64(done)/time.Since(start).Seconds())
	}
	return nil
}
