package ingest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/factory2/factory2/avro"
	"github.com/factory2/factory2/internal/kclient"
)

// ErrNoTopic: an event's topic does not exist on the cluster.
var ErrNoTopic = errors.New("ingest: topic does not exist (create the topics with `factory2 topics ensure`)")

// ErrNotVisible: the batch was committed, but read_committed consumers did
// not see it within the transaction timeout.
var ErrNotVisible = errors.New("ingest: the batch was committed but is not yet visible to read_committed consumers")

// Record size limits. A record travels in a record batch, which the
// producer bounds (franz-go's ProducerBatchMaxBytes: 1000012 bytes by
// default, the historical Kafka max.message.bytes) and so does the broker
// (the topic's max.message.bytes: 1048588 bytes by default). A batch of
// one record adds framing to the key and value: a 61-byte batch header
// and at most 36 bytes of record header without headers.
const (
	// DefaultMaxEventBytes is the default ProducerConfig.MaxEventBytes:
	// a record of this size, framing included, fits both default batch
	// limits.
	DefaultMaxEventBytes = 999_000
	// LargestMaxEventBytes is the largest MaxEventBytes a Producer takes:
	// franz-go bounds a record batch by 1 GiB.
	LargestMaxEventBytes = 1<<30 - recordFraming

	// defaultBatchMaxBytes is franz-go's default batch limit.
	defaultBatchMaxBytes = 1_000_012
	// recordFraming bounds the framing of a batch of one record (with
	// room to spare).
	recordFraming = 1_012
)

// ProducerConfig configures a Producer.
type ProducerConfig struct {
	// Brokers are the Kafka bootstrap addresses.
	Brokers []string
	// TransactionalID identifies the producer to Kafka's transaction
	// coordinator. A producer that starts with the id of one that died
	// mid-transaction aborts that transaction at once (by fencing);
	// otherwise the broker aborts it after TransactionTimeout, and until
	// then read_committed consumers of its partitions wait. Required.
	TransactionalID string
	// TransactionTimeout is the broker-side timeout of a transaction;
	// zero means 30s.
	TransactionTimeout time.Duration
	// Codec encodes the events. Required.
	Codec *avro.Codec
	// MaxEventBytes bounds an event's record (key and encoded value): a
	// batch with a larger event is refused with a *TooLargeError before
	// anything is produced. Zero means DefaultMaxEventBytes. Above it,
	// the producer raises its batch limit to match; a record that, framed,
	// exceeds its topic's max.message.bytes is then refused by Kafka
	// (also a *TooLargeError).
	MaxEventBytes int
	// ClientOpts are the process's shared franz-go options (TLS, SASL,
	// hooks: kclient's), applied after the producer's own.
	ClientOpts []kgo.Opt
	// Now is the ingest clock; nil means time.Now. Produce reads it once
	// per batch (see Produce for the times it gives).
	Now func() time.Time
}

// Producer produces batches of events, each in one Kafka transaction:
// all of a batch becomes visible to read_committed consumers, or none of
// it does. It connects on first use.
//
// A Producer is safe for concurrent use; batches are produced one at a
// time (a transactional producer runs one transaction at a time), so a
// Produce call waits for the one before it.
type Producer struct {
	cfg ProducerConfig

	mu    sync.Mutex      // held for a whole batch
	cl    *kgo.Client     // nil before first use and after a failure
	known map[string]bool // topics seen to exist
	// last is the ingest time of the last record stamped, lastTopic its
	// topic (see stamp).
	last      time.Time
	lastTopic string
}

// Produced is one record a Producer produced.
type Produced struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	Key       string `json:"key"`
	ID        string `json:"id"`
	Type      string `json:"type"`
}

// NewProducer checks cfg and returns a Producer. It does not connect.
func NewProducer(cfg ProducerConfig) (*Producer, error) {
	var errs []error
	if len(cfg.Brokers) == 0 {
		errs = append(errs, errors.New("ingest: producer: no brokers"))
	}
	if cfg.TransactionalID == "" {
		errs = append(errs, errors.New("ingest: producer: no transactional id"))
	}
	if cfg.Codec == nil {
		errs = append(errs, errors.New("ingest: producer: no codec"))
	}
	if cfg.TransactionTimeout == 0 {
		cfg.TransactionTimeout = 30 * time.Second
	}
	if cfg.MaxEventBytes == 0 {
		cfg.MaxEventBytes = DefaultMaxEventBytes
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxEventBytes < 0 || cfg.MaxEventBytes > LargestMaxEventBytes {
		errs = append(errs, fmt.Errorf("ingest: producer: max event bytes %d: must be in [1, %d]", cfg.MaxEventBytes, LargestMaxEventBytes))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &Producer{cfg: cfg, known: map[string]bool{}}, nil
}

// TransactionalID returns the producer's transactional id.
func (p *Producer) TransactionalID() string { return p.cfg.TransactionalID }

// Produce produces events in one transaction and returns where each went,
// in the order of events. It encodes every event, checks its size against
// MaxEventBytes (a *TooLargeError names the first event over it) and
// checks that every topic exists before the transaction begins; a record
// Kafka refuses as too large also gives a *TooLargeError. On any error the
// transaction is aborted and nothing is visible to read_committed
// consumers, except when committing itself fails without a reply, which
// the error says: then the outcome is unknown.
//
// Produce sets each event's ingest time, which is also its record's
// timestamp, the time the processors order records by: the clock in
// whole milliseconds (the precision of a Kafka timestamp), never earlier
// than the last one this Producer gave, and a millisecond later than it
// when the record goes to another topic than the record before it. So,
// when the processors merge a partition of several topics by record
// timestamp (then topic, then offset), they take the records this
// Producer produced in the order it produced them, across batches, and
// in the order of events within a batch, whatever the clock does.
//
// Produce returns once the batch is visible to read_committed consumers:
// Kafka acknowledges a commit before it has written the transaction's
// markers to the partitions (they follow asynchronously), so Produce waits
// until every partition's last stable offset has passed the batch. Thus a
// reader started after Produce returns sees the batch. If that takes
// longer than the transaction timeout, Produce returns the records with
// ErrNotVisible: they are committed.
//
// ctx bounds encoding and producing; ending the transaction and waiting
// for it to be visible run to completion (bounded by the transaction
// timeout) even if ctx ends, since abandoning a commit midway would leave
// its outcome unknown.
func (p *Producer) Produce(ctx context.Context, events []Event) ([]Produced, error) {
	if len(events) == 0 {
		return nil, ErrNoEvents
	}
	// Batches are stamped in the order they are produced.
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stamp(events)
	recs, err := p.records(events)
	if err != nil {
		return nil, err
	}
	cl, err := p.client()
	if err != nil {
		return nil, err
	}
	if err := p.checkTopics(ctx, cl, recs); err != nil {
		return nil, err
	}
	if err := cl.BeginTransaction(); err != nil {
		p.reset()
		return nil, fmt.Errorf("ingest: beginning a transaction: %w", err)
	}
	if res := cl.ProduceSync(ctx, recs...); res.FirstErr() != nil {
		err := refusedAsTooLarge(res, recs, events)
		if err == nil {
			err = res.FirstErr()
		}
		if aerr := p.abort(ctx, cl); aerr != nil {
			return nil, fmt.Errorf("ingest: producing: %w; aborting the transaction: %v (the broker aborts it after %s)", err, aerr, p.cfg.TransactionTimeout)
		}
		return nil, fmt.Errorf("ingest: producing: %w; the transaction was aborted, nothing was produced", err)
	}
	ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.TransactionTimeout)
	defer cancel()
	if err := cl.EndTransaction(ectx, kgo.TryCommit); err != nil {
		// Per EndTransaction's contract, retrying with TryAbort aborts
		// what can still be aborted (fencing the attempt if its outcome
		// was unconfirmed).
		aerr := p.abort(ctx, cl)
		return nil, fmt.Errorf("ingest: committing the transaction: %w (abort: %v); if the commit reached the broker the batch is committed, otherwise nothing was produced", err, aerr)
	}
	out := make([]Produced, len(recs))
	for i, r := range recs {
		out[i] = Produced{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Key: events[i].Key,
			ID: events[i].Record.Env().ID, Type: avro.TypeName(events[i].Record)}
	}
	if err := waitVisible(ectx, cl, recs); err != nil {
		return out, fmt.Errorf("%w (after %s): %v", ErrNotVisible, p.cfg.TransactionTimeout, err)
	}
	return out, nil
}

// stamp gives events their ingest times (see Produce). Called with p.mu
// held.
func (p *Producer) stamp(events []Event) {
	t := p.cfg.Now().UTC().Truncate(time.Millisecond)
	if t.Before(p.last) {
		t = p.last
	}
	for _, ev := range events {
		if t.Equal(p.last) && ev.Topic != p.lastTopic && p.lastTopic != "" {
			// Records of two topics with one timestamp would be merged in
			// topic order, not in the order they were produced.
			t = t.Add(time.Millisecond)
		}
		ev.Record.Env().IngestTime = t
		p.last, p.lastTopic = t, ev.Topic
	}
}

// records encodes events into records, refusing any larger than
// MaxEventBytes.
func (p *Producer) records(events []Event) ([]*kgo.Record, error) {
	recs := make([]*kgo.Record, len(events))
	for i, ev := range events {
		v, err := p.cfg.Codec.Encode(ev.Record)
		if err != nil {
			return nil, &InputError{Line: ev.Line, Element: ev.Element, Type: avro.TypeName(ev.Record), Err: err}
		}
		r := &kgo.Record{Topic: ev.Topic, Key: []byte(ev.Key), Value: v, Timestamp: ev.Record.Env().IngestTime}
		if size := len(r.Key) + len(r.Value); size > p.cfg.MaxEventBytes {
			return nil, tooLarge(i, ev, size, p.cfg.MaxEventBytes, nil)
		}
		recs[i] = r
	}
	return recs, nil
}

// refusedAsTooLarge returns a *TooLargeError for the first record of res
// refused as too large (by Kafka, or by franz-go for exceeding the batch
// limit, with the same errors), or nil.
func refusedAsTooLarge(res kgo.ProduceResults, recs []*kgo.Record, events []Event) error {
	for _, r := range res {
		if !errors.Is(r.Err, kerr.MessageTooLarge) && !errors.Is(r.Err, kerr.RecordListTooLarge) {
			continue
		}
		if i := slices.Index(recs, r.Record); i >= 0 {
			return tooLarge(i, events[i], len(r.Record.Key)+len(r.Record.Value), 0, r.Err)
		}
	}
	return nil
}

func tooLarge(i int, ev Event, size, limit int, err error) *TooLargeError {
	return &TooLargeError{Index: i + 1, Line: ev.Line, Element: ev.Element, Type: avro.TypeName(ev.Record), Size: size, Max: limit, Err: err}
}

// waitVisible polls until every partition recs went to has a last stable
// offset past the records, or ctx ends.
func waitVisible(ctx context.Context, cl *kgo.Client, recs []*kgo.Record) error {
	want := map[string]map[int32]int64{}
	var names []string
	for _, r := range recs {
		if want[r.Topic] == nil {
			want[r.Topic] = map[int32]int64{}
			names = append(names, r.Topic)
		}
		want[r.Topic][r.Partition] = max(want[r.Topic][r.Partition], r.Offset+1)
	}
	adm := kadm.NewClient(cl)
	for backoff := 5 * time.Millisecond; ; backoff = min(2*backoff, 250*time.Millisecond) {
		lso, err := adm.ListCommittedOffsets(ctx, names...)
		if err == nil {
			err = lso.Error()
		}
		if err == nil {
			err = behind(lso, want)
		}
		if err == nil {
			return nil
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

// behind names a partition whose last stable offset is before want's.
func behind(lso kadm.ListedOffsets, want map[string]map[int32]int64) error {
	for t, ps := range want {
		for p, off := range ps {
			if got, ok := lso.Lookup(t, p); !ok || got.Offset < off {
				return fmt.Errorf("%s[%d]: last stable offset %d, batch ends at %d", t, p, got.Offset, off)
			}
		}
	}
	return nil
}

// abort aborts the open transaction and drops the client, so the next
// batch starts with a fresh producer id. Called with p.mu held.
func (p *Producer) abort(ctx context.Context, cl *kgo.Client) error {
	defer p.reset()
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.TransactionTimeout)
	defer cancel()
	return errors.Join(cl.AbortBufferedRecords(actx), cl.EndTransaction(actx, kgo.TryAbort))
}

// client returns the connected client, creating it if needed. Called with
// p.mu held.
func (p *Producer) client() (*kgo.Client, error) {
	if p.cl != nil {
		return p.cl, nil
	}
	opts := []kgo.Opt{
		kgo.TransactionalID(p.cfg.TransactionalID),
		kgo.TransactionTimeout(p.cfg.TransactionTimeout),
	}
	if limit := p.cfg.MaxEventBytes + recordFraming; limit > defaultBatchMaxBytes {
		opts = append(opts, kgo.ProducerBatchMaxBytes(int32(limit)))
	}
	cl, err := kclient.NewClient(p.cfg.Brokers, p.cfg.ClientOpts, opts...)
	if err != nil {
		return nil, fmt.Errorf("ingest: %w", err)
	}
	p.cl = cl
	return cl, nil
}

// reset closes the client. A new one with the same transactional id
// fences whatever the old one left open. Called with p.mu held.
func (p *Producer) reset() {
	if p.cl != nil {
		p.cl.Close()
		p.cl = nil
	}
}

// checkTopics fails with ErrNoTopic naming the topics of recs that do not
// exist, rather than letting the produce wait for them to appear.
func (p *Producer) checkTopics(ctx context.Context, cl *kgo.Client, recs []*kgo.Record) error {
	var unknown []string
	for _, r := range recs {
		if !p.known[r.Topic] && !slices.Contains(unknown, r.Topic) {
			unknown = append(unknown, r.Topic)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	td, err := kadm.NewClient(cl).ListTopics(ctx, unknown...)
	if err != nil {
		return fmt.Errorf("ingest: looking up topics %v: %w", unknown, err)
	}
	var missing []string
	for _, t := range unknown {
		if d, ok := td[t]; ok && d.Err == nil {
			p.known[t] = true
		} else {
			missing = append(missing, t)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %v", ErrNoTopic, missing)
	}
	return nil
}

// Close closes the connection. Produce must not be running or called
// after.
func (p *Producer) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reset()
}
