package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/factory2/factory2/avro"
	"github.com/factory2/factory2/internal/config"
	"github.com/factory2/factory2/internal/ingest"
	"github.com/factory2/factory2/internal/koji"
)

// newEnricher returns the Koji enricher of cfg (ingest.koji_hub_url), or
// nil when the configuration sets no hub. reg may be nil (no metrics).
func newEnricher(cfg config.Config, log *slog.Logger, reg prometheus.Registerer) (*koji.Enricher, error) {
	if cfg.Ingest.KojiHubURL == "" {
		return nil, nil
	}
	c, err := koji.NewClient(cfg.Ingest.KojiHubURL, cfg.Ingest.KojiTimeout, nil)
	if err != nil {
		return nil, err
	}
	return koji.NewEnricher(koji.EnricherConfig{Client: c, Logger: log, Registerer: reg})
}

// produceEnrichments asks Koji, through en, for what the bus messages of
// a produced batch could not carry (the RPM list of each build that
// became COMPLETE), and produces the events it derives with prod in a
// transaction of their own, bounded by produceTimeout; ctx bounds the
// whole. It runs only after the batch is committed, so Koji being down
// never holds back or loses the batch. It returns what it produced; an
// error says which builds could not be enriched (logged too) or that
// producing failed. Sending the same messages again is the retry: it
// derives the same events, which the processors take as duplicates.
func produceEnrichments(ctx context.Context, en *koji.Enricher, p *ingest.Parser, prod *ingest.Producer,
	events []ingest.Event, produceTimeout time.Duration, log *slog.Logger) ([]ingest.Produced, error) {
	recs := make([]avro.Record, len(events))
	for i, ev := range events {
		recs[i] = ev.Record
	}
	derived, enrichErr := en.EnrichAll(ctx, recs)
	if enrichErr != nil {
		log.Error("koji: a COMPLETE build's RPM list is not recorded; its artifact list stays unknown "+
			"until the message is sent again", "err", enrichErr)
	}
	if len(derived) == 0 {
		return nil, enrichErr
	}
	evs, err := p.Records(derived...)
	if err != nil {
		return nil, fmt.Errorf("koji: the events derived from the hub's answers: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, produceTimeout)
	defer cancel()
	res, err := prod.Produce(pctx, evs)
	if err != nil {
		return res, fmt.Errorf("producing the RPM lists Koji gave: %w", err)
	}
	return res, enrichErr
}
