package processors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/factory2/factory2/state"
	"github.com/factory2/factory2/topics"
)

// minCommitGap is the least time between two commits made because the
// runner caught up (deadline commits are CommitInterval apart).
const minCommitGap = 10 * time.Millisecond

// Config is what a Runner needs besides its Spec.
type Config struct {
	// Brokers are the Kafka bootstrap addresses.
	Brokers []string
	// InstanceID is stable across restarts of one instance and unique
	// among live ones. The transactional id is derived from it, so a
	// restarted instance fences its previous incarnation and aborts that
	// incarnation's open transaction.
	InstanceID string
	// Catalog names the changelog and dead-letter topics.
	Catalog *topics.Catalog
	// Codec decodes inputs and encodes outputs.
	Codec Codec
	// StateDir holds one Pebble DB per task: StateDir/<processor>/<partition>.
	StateDir string
	// FS is the filesystem of the state; nil is the OS's.
	FS vfs.FS
	// Cache is the block cache shared by all tasks; nil gives each task a
	// private one.
	Cache *state.Cache
	// CommitInterval is the longest a processed record waits in an open
	// transaction. Default 100ms.
	CommitInterval time.Duration
	// TransactionTimeout is the broker-side transaction timeout. Default 30s.
	TransactionTimeout time.Duration
	// SessionTimeout is the group session timeout. Default 10s.
	SessionTimeout time.Duration
	// MaxPollRecords bounds the records processed between two checks of
	// the commit deadline. Default 5000.
	MaxPollRecords int
	Logger         *slog.Logger
	// Registerer receives the runner's metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// ClientOpts are appended to the options of every Kafka client the
	// runner makes (TLS, SASL, tests).
	ClientOpts []kgo.Opt
	// SessionHooks hook the transactional session client only, the one
	// that carries the processor's traffic (kprom's metrics, which
	// register once per client).
	SessionHooks []kgo.Hook
}

func (c *Config) setDefaults() {
	if c.CommitInterval <= 0 {
		c.CommitInterval = 100 * time.Millisecond
	}
	if c.TransactionTimeout <= 0 {
		c.TransactionTimeout = 30 * time.Second
	}
	if c.SessionTimeout <= 0 {
		c.SessionTimeout = 10 * time.Second
	}
	if c.MaxPollRecords <= 0 {
		c.MaxPollRecords = 5000
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.FS == nil {
		c.FS = vfs.Default
	}
}

func (c *Config) validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("processors: no brokers"))
	}
	if c.InstanceID == "" {
		errs = append(errs, errors.New("processors: no instance id"))
	}
	if c.Catalog == nil {
		errs = append(errs, errors.New("processors: no topic catalog"))
	}
	if c.Codec == nil {
		errs = append(errs, errors.New("processors: no codec"))
	}
	if c.StateDir == "" {
		errs = append(errs, errors.New("processors: no state directory"))
	}
	return errors.Join(errs...)
}

// Runner runs one processor: a consumer group over its co-partitioned
// inputs, one task per assigned partition, and exactly-once
// consume-process-produce through Kafka transactions.
//
// The exactly-once argument (see DESIGN.md) in short: outputs, changelog
// records and consumed offsets commit in one Kafka transaction; the local
// Pebble state is written only after that transaction committed, in one
// batch with the offsets it consumed and the changelog offset it reached;
// on start a task restores the changelog tail its store lacks. A crash
// anywhere therefore leaves either an aborted transaction (inputs are
// reprocessed against the state before it) or a committed one whose state
// is in the changelog.
type Runner struct {
	spec       Spec
	cfg        Config
	log        *slog.Logger
	changelogs map[string]string // store -> topic
	deadLetter string
	group      string
	txnID      string

	metrics      *metrics
	stateMetrics *state.Collector
	// processedByTopic caches metrics.processed per input topic (under mu).
	processedByTopic map[string]prometheus.Counter

	admin *kgo.Client // metadata and offsets; no transactions
	sess  *kgo.GroupTransactSession

	// mu guards tasks and everything a task holds except its clEnd. The
	// group callbacks take it, so it is never held across sess.End, whose
	// lock the callbacks hold (see kgo.GroupTransactSession).
	mu    sync.Mutex
	tasks map[int32]*task
	// owned is the assignment per input topic.
	owned map[string]map[int32]bool
	// partitions is the partition count of the inputs, known after the
	// topics were checked.
	partitions int
	// produceErr is the first error of a produce in the open transaction.
	produceMu  sync.Mutex
	produceErr error
	inTxn      bool
	dirty      bool // something was produced or consumed since Begin
	// fatal is set (under mu) by a group callback that failed in a way
	// the loop must stop for, such as a task whose state cannot open.
	fatal error
}

// NewRunner returns a Runner for spec. It adds the spec's changelog topics
// to cfg.Catalog; create them (Catalog.Ensure) before Run.
func NewRunner(spec Spec, cfg Config) (*Runner, error) {
	cfg.setDefaults()
	if err := errors.Join(spec.Validate(), cfg.validate()); err != nil {
		return nil, err
	}
	r := &Runner{
		spec:       spec,
		cfg:        cfg,
		log:        cfg.Logger.With("processor", spec.Name),
		changelogs: map[string]string{},
		deadLetter: cfg.Catalog.Name(topics.DeadLetters),
		group:      cfg.Catalog.Prefix() + spec.Name,
		txnID:      cfg.Catalog.Prefix() + spec.Name + "/" + cfg.InstanceID,
		tasks:      map[int32]*task{},
		owned:      map[string]map[int32]bool{},

		processedByTopic: map[string]prometheus.Counter{},
	}
	for _, s := range spec.Stores {
		r.changelogs[s] = cfg.Catalog.AddChangelog(spec.Name, s)
	}
	r.metrics = newMetrics()
	r.stateMetrics = state.NewCollector("factory2_state")
	if cfg.Registerer != nil {
		reg := prometheus.WrapRegistererWith(prometheus.Labels{"processor": spec.Name}, cfg.Registerer)
		if err := reg.Register(r.metrics); err != nil {
			return nil, err
		}
		if err := cfg.Registerer.Register(r.stateMetrics); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return nil, err
			}
		}
	}
	return r, nil
}

// Group is the consumer group id.
func (r *Runner) Group() string { return r.group }

// Run processes until ctx is done or a fatal error. On cancel it commits
// the open transaction if it can (abort otherwise), writes the state,
// closes every task and leaves the group.
func (r *Runner) Run(ctx context.Context) error {
	var err error
	r.admin, err = kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(r.cfg.Brokers...)}, r.cfg.ClientOpts...)...)
	if err != nil {
		return err
	}
	defer r.admin.Close()
	if err := r.checkTopics(ctx); err != nil {
		return err
	}

	opts := []kgo.Opt{
		kgo.SeedBrokers(r.cfg.Brokers...),
		kgo.TransactionalID(r.txnID),
		kgo.TransactionTimeout(r.cfg.TransactionTimeout),
		kgo.ConsumerGroup(r.group),
		kgo.ConsumeTopics(r.spec.Inputs...),
		// Range, not cooperative-sticky: with equal partition counts and
		// the same subscription, range gives every member the same
		// partition numbers of every input, which co-partitioning needs
		// (sticky balancers place each topic's partitions on their own,
		// so partition p of two inputs could land on two instances, each
		// running a task p and writing changelog partition p). Range is
		// eager; the transaction a rebalance interrupts aborts anyway.
		kgo.Balancers(kgo.RangeBalancer()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.RequireStableFetchOffsets(),
		kgo.SessionTimeout(r.cfg.SessionTimeout),
		kgo.RebalanceTimeout(max(r.cfg.SessionTimeout, 30*time.Second)),
		kgo.OnPartitionsAssigned(r.assigned),
		kgo.OnPartitionsRevoked(r.revoked),
		kgo.OnPartitionsLost(r.lost),
		kgo.RecordPartitioner(partitioner(r.changelogs)),
		kgo.FetchMaxWait(r.cfg.CommitInterval),
		// A short linger batches outputs into fewer produce requests
		// (12k requests for 200k events without it); it never delays a
		// commit, which flushes first.
		kgo.ProducerLinger(5 * time.Millisecond),
	}
	opts = append(opts, r.cfg.ClientOpts...)
	if len(r.cfg.SessionHooks) > 0 {
		opts = append(opts, kgo.WithHooks(r.cfg.SessionHooks...))
	}
	r.sess, err = kgo.NewGroupTransactSession(opts...)
	if err != nil {
		return err
	}
	// Fence the previous incarnation now: initializing the producer id
	// aborts a transaction it left open. Without this, a restart whose
	// predecessor died after committing offsets in its transaction would
	// wait for that transaction to time out (read_committed offset fetches
	// stay "unstable" until it ends) before consuming anything, and so
	// before producing, which is when franz-go would fence.
	fctx, fcancel := context.WithTimeout(ctx, r.cfg.TransactionTimeout)
	_, _, err = r.sess.Client().ProducerID(fctx)
	fcancel()
	if err != nil {
		r.sess.Close()
		return fmt.Errorf("processors: %s: initializing transactional producer %s: %w", r.spec.Name, r.txnID, err)
	}
	r.log.Info("processor started", "group", r.group, "transactional_id", r.txnID, "inputs", r.spec.Inputs)
	runErr := r.loop(ctx)
	r.sess.Close() // leaves the group; revoke callbacks close the tasks
	r.mu.Lock()
	for p, t := range r.tasks {
		if err := t.close(); err != nil {
			runErr = errors.Join(runErr, err)
		}
		delete(r.tasks, p)
	}
	r.mu.Unlock()
	r.log.Info("processor stopped", "err", runErr)
	return runErr
}

// checkTopics fails fast, with a clear error, when Kafka is unreachable
// or the topics are missing or not co-partitioned.
func (r *Runner) checkTopics(ctx context.Context) error {
	pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := r.admin.Ping(pctx); err != nil {
		return fmt.Errorf("processors: %s: no Kafka broker answers at %v: %w", r.spec.Name, r.cfg.Brokers, err)
	}
	want := append(slices.Clone(r.spec.Inputs), r.deadLetter)
	for _, s := range r.spec.Stores {
		want = append(want, r.changelogs[s])
	}
	details, err := kadm.NewClient(r.admin).ListTopics(pctx, want...)
	if err != nil {
		return fmt.Errorf("processors: %s: listing topics: %w", r.spec.Name, err)
	}
	var errs []error
	parts := map[string]int{}
	for _, t := range want {
		d, ok := details[t]
		if !ok || d.Err != nil {
			errs = append(errs, fmt.Errorf("topic %s is missing (run `factory2 topics ensure`)", t))
			continue
		}
		if t != r.deadLetter {
			parts[t] = len(d.Partitions)
		}
	}
	if len(errs) == 0 {
		counts := slices.Sorted(maps.Values(parts))
		if counts[0] != counts[len(counts)-1] {
			errs = append(errs, fmt.Errorf("inputs and changelogs are not co-partitioned: partition counts %v", parts))
		}
		r.mu.Lock()
		r.partitions = counts[0]
		r.mu.Unlock()
	}
	if len(errs) > 0 {
		return fmt.Errorf("processors: %s: %w", r.spec.Name, errors.Join(errs...))
	}
	return nil
}

func (r *Runner) loop(ctx context.Context) error {
	deadline := time.Now().Add(r.cfg.CommitInterval)
	var lastCommit time.Time
	var nextPunct time.Time
	if r.spec.PunctuateEvery > 0 {
		nextPunct = time.Now().Add(r.spec.PunctuateEvery)
	}
	for {
		pctx, cancel := context.WithDeadline(ctx, deadline)
		fetches := r.sess.PollRecords(pctx, r.cfg.MaxPollRecords)
		cancel()
		if ctx.Err() != nil {
			// The records this poll returned already count as consumed
			// for the session (their offsets will be committed), so
			// process them before the final commit rather than lose them.
			sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer scancel()
			if err := r.process(sctx, fetches); err != nil {
				r.abort(sctx)
				return err
			}
			return r.shutdown()
		}
		if fetches.IsClientClosed() {
			return errors.New("processors: client closed")
		}
		var ferr error
		fetches.EachError(func(t string, p int32, err error) {
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
				return
			}
			ferr = errors.Join(ferr, fmt.Errorf("fetching %s/%d: %w", t, p, err))
		})
		if ferr != nil {
			r.abort(ctx)
			return fmt.Errorf("processors: %s: %w", r.spec.Name, ferr)
		}
		r.mu.Lock()
		fatal := r.fatal
		r.mu.Unlock()
		if fatal != nil {
			r.abort(ctx)
			return fmt.Errorf("processors: %s: %w", r.spec.Name, fatal)
		}
		if err := r.process(ctx, fetches); err != nil {
			r.abort(ctx)
			if ctx.Err() != nil {
				return nil // stopped during a restore: nothing half done is kept
			}
			return err
		}
		now := time.Now()
		if !nextPunct.IsZero() && !now.Before(nextPunct) {
			if err := r.punctuate(ctx, now); err != nil {
				r.abort(ctx)
				return err
			}
			nextPunct = now.Add(r.spec.PunctuateEvery)
		}
		// Commit at the deadline, or once the runner has caught up with
		// its inputs (nothing more is buffered): under a trickle of events
		// a decision then waits for one commit, not for the interval. But
		// not within minCommitGap of the last commit: every transaction
		// costs the broker markers on each partition it touched, and
		// committing after every small poll saturated it (p50 latency
		// tripled at 2,000 events/s) once commits got cheap.
		caughtUp := r.inTxn && r.sess.Client().BufferedFetchRecords() == 0 &&
			now.Sub(lastCommit) >= min(minCommitGap, r.cfg.CommitInterval)
		if !now.Before(deadline) || caughtUp {
			lastCommit = now
			if err := r.commit(ctx); err != nil {
				return err
			}
			deadline = time.Now().Add(r.cfg.CommitInterval)
		}
	}
}

// begin opens a transaction if none is open.
func (r *Runner) begin() error {
	if r.inTxn {
		return nil
	}
	if err := r.sess.Begin(); err != nil {
		return fmt.Errorf("processors: %s: beginning transaction: %w", r.spec.Name, err)
	}
	r.inTxn = true
	return nil
}

func (r *Runner) process(ctx context.Context, fetches kgo.Fetches) error {
	if fetches.NumRecords() == 0 {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.begin(); err != nil {
		return err
	}
	r.dirty = true
	var err error
	fetches.EachPartition(func(fp kgo.FetchTopicPartition) {
		if err != nil || len(fp.Records) == 0 {
			return
		}
		t := r.tasks[fp.Partition]
		if t == nil {
			// Revoked since the fetch: the session aborts this
			// transaction and the new owner processes the records.
			return
		}
		if !t.restored {
			if err = t.restore(ctx); err != nil {
				return
			}
		}
		for _, rec := range fp.Records {
			if err = r.processOne(t, rec); err != nil {
				return
			}
		}
	})
	return err
}

func (r *Runner) processOne(t *task, rec *kgo.Record) error {
	t.inNext[rec.Topic] = rec.Offset + 1
	v, err := r.cfg.Codec.Decode(rec.Value)
	if err != nil {
		r.deadLetterRecord(rec, "decode", err.Error())
		return nil
	}
	in := &Input{Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset, Key: rec.Key, Timestamp: rec.Timestamp, Record: v}
	start := time.Now()
	err = t.proc.Process(t.ctx, in)
	r.metrics.processSeconds.Observe(time.Since(start).Seconds())
	var rej *RejectError
	switch {
	case errors.As(err, &rej):
		r.deadLetterRecord(rec, "rejected", rej.Reason)
		return nil
	case err != nil:
		return fmt.Errorf("processors: %s: processing %s/%d@%d: %w", t.label, rec.Topic, rec.Partition, rec.Offset, err)
	}
	r.processedCounter(rec.Topic).Inc()
	return nil
}

func (r *Runner) punctuate(ctx context.Context, now time.Time) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range slices.Sorted(maps.Keys(r.tasks)) {
		t := r.tasks[p]
		pu, ok := t.proc.(Punctuator)
		if !ok {
			return nil
		}
		if !t.restored {
			if err := t.restore(ctx); err != nil {
				return err
			}
		}
		if err := r.begin(); err != nil {
			return err
		}
		r.dirty = true
		if _, err := pu.Punctuate(t.ctx, now); err != nil {
			return fmt.Errorf("processors: %s: punctuate: %w", t.label, err)
		}
	}
	return nil
}

// emitFor returns the Context emit function of task t.
func (r *Runner) emitFor(t *task) func(Output) {
	return func(o Output) {
		v, err := r.cfg.Codec.Encode(o.Record)
		if err != nil {
			r.setProduceErr(fmt.Errorf("processors: %s: encoding output for %s: %w", t.label, o.Topic, err))
			return
		}
		r.metrics.emitted.WithLabelValues(r.alias(o.Topic)).Inc()
		r.produce(context.Background(), &kgo.Record{Topic: o.Topic, Key: o.Key, Value: v}, nil)
	}
}

// produce sends rec in the open transaction; the first failure dooms the
// transaction (commit turns into abort).
func (r *Runner) produce(ctx context.Context, rec *kgo.Record, ok func(*kgo.Record)) {
	r.sess.Produce(ctx, rec, func(rec *kgo.Record, err error) {
		if err != nil {
			r.setProduceErr(fmt.Errorf("processors: %s: producing to %s: %w", r.spec.Name, rec.Topic, err))
			return
		}
		if ok != nil {
			ok(rec)
		}
	})
}

func (r *Runner) setProduceErr(err error) {
	r.produceMu.Lock()
	if r.produceErr == nil {
		r.produceErr = err
	}
	r.produceMu.Unlock()
}

// deadLetterRecord sends rec to the dead-letter topic, in the open
// transaction, with headers saying why, where from and when.
func (r *Runner) deadLetterRecord(rec *kgo.Record, kind, reason string) {
	r.metrics.deadLettered.WithLabelValues(r.alias(rec.Topic), kind).Inc()
	r.log.Warn("dead-lettering record", "topic", rec.Topic, "partition", rec.Partition, "offset", rec.Offset, "kind", kind, "reason", reason)
	dl := &kgo.Record{
		Topic: r.deadLetter,
		Key:   rec.Key,
		Value: rec.Value,
		Headers: append(slices.Clone(rec.Headers),
			kgo.RecordHeader{Key: "factory2.dlq.reason", Value: []byte(reason)},
			kgo.RecordHeader{Key: "factory2.dlq.kind", Value: []byte(kind)},
			kgo.RecordHeader{Key: "factory2.dlq.processor", Value: []byte(r.spec.Name)},
			kgo.RecordHeader{Key: "factory2.dlq.topic", Value: []byte(rec.Topic)},
			kgo.RecordHeader{Key: "factory2.dlq.partition", Value: []byte(strconv.Itoa(int(rec.Partition)))},
			kgo.RecordHeader{Key: "factory2.dlq.offset", Value: []byte(strconv.FormatInt(rec.Offset, 10))},
			kgo.RecordHeader{Key: "factory2.dlq.record_time", Value: []byte(rec.Timestamp.UTC().Format(time.RFC3339Nano))},
		),
	}
	r.produce(context.Background(), dl, nil)
}

// commit ends the open transaction. Order: produce the changelog of every
// task; End (flush, commit offsets in the transaction, commit); then, only
// if Kafka committed, write each task's batch to Pebble; if it aborted,
// drop the batches (the session has rewound the consumer).
func (r *Runner) commit(ctx context.Context) error {
	if !r.inTxn {
		return nil
	}
	// A stop signal landing now must not fail the commit half way: end
	// the transaction on a context of its own, bounded by the transaction
	// timeout (after which the broker aborts it anyway).
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.TransactionTimeout)
	defer cancel()
	start := time.Now()
	r.mu.Lock()
	var flushErr error
	for _, p := range slices.Sorted(maps.Keys(r.tasks)) {
		if err := r.tasks[p].flush(); err != nil {
			flushErr = errors.Join(flushErr, err)
			continue
		}
		r.tasks[p].produceChangelog(ctx)
	}
	r.mu.Unlock()

	try := kgo.TryCommit
	if flushErr != nil {
		// A processor that cannot write its state must not commit the
		// offsets of the records it processed: abort, then stop.
		r.setProduceErr(flushErr)
	}
	if err := r.flushErr(ctx); err != nil {
		r.log.Warn("aborting transaction after a produce failure", "err", err)
		try = kgo.TryAbort
	}
	committed, err := r.sess.End(ctx, try)
	r.inTxn, r.dirty = false, false
	r.produceMu.Lock()
	r.produceErr = nil
	r.produceMu.Unlock()

	r.mu.Lock()
	defer r.mu.Unlock()
	if committed {
		for _, p := range slices.Sorted(maps.Keys(r.tasks)) {
			if aerr := r.tasks[p].applyCommitted(); aerr != nil {
				return errors.Join(err, aerr)
			}
		}
		r.metrics.commits.WithLabelValues("committed").Inc()
	} else {
		for _, t := range r.tasks {
			t.discard()
		}
		r.metrics.commits.WithLabelValues("aborted").Inc()
		r.log.Info("transaction aborted; reprocessing from the last committed offsets")
	}
	r.metrics.commitSeconds.Observe(time.Since(start).Seconds())
	if err != nil {
		return fmt.Errorf("processors: %s: ending transaction: %w", r.spec.Name, err)
	}
	return flushErr
}

// flushErr waits for in-flight produces and reports the first failure.
func (r *Runner) flushErr(ctx context.Context) error {
	if err := r.sess.Client().Flush(ctx); err != nil {
		return err
	}
	r.produceMu.Lock()
	defer r.produceMu.Unlock()
	return r.produceErr
}

// abort ends an open transaction with an abort after a fatal error.
func (r *Runner) abort(ctx context.Context) {
	if !r.inTxn {
		return
	}
	ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if _, err := r.sess.End(ectx, kgo.TryAbort); err != nil {
		r.log.Warn("aborting transaction", "err", err)
	}
	r.inTxn = false
	r.mu.Lock()
	for _, t := range r.tasks {
		t.discard()
	}
	r.mu.Unlock()
}

// shutdown commits what was processed before the cancel.
func (r *Runner) shutdown() error {
	if !r.inTxn {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return r.commit(ctx)
}

// assigned opens a task per new partition. Restoring happens in the loop,
// outside the rebalance, before the task's first record.
func (r *Runner) assigned(_ context.Context, _ *kgo.Client, assigned map[string][]int32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for t, ps := range assigned {
		for _, p := range ps {
			if r.owned[t] == nil {
				r.owned[t] = map[int32]bool{}
			}
			r.owned[t][p] = true
		}
	}
	if err := r.checkCoPartitioned(); err != nil {
		r.fatal = errors.Join(r.fatal, err)
		return
	}
	for _, ps := range assigned {
		for _, p := range ps {
			if r.tasks[p] != nil {
				continue
			}
			t, err := r.openTask(p)
			if err != nil {
				// The loop cannot process this partition; stop
				// rather than skip its records.
				r.fatal = errors.Join(r.fatal, err)
				continue
			}
			r.tasks[p] = t
			r.log.Info("partition assigned", "partition", p)
		}
	}
	r.metrics.tasks.Set(float64(len(r.tasks)))
}

func (r *Runner) revoked(_ context.Context, _ *kgo.Client, revoked map[string][]int32) {
	r.closeTasks(revoked, "revoked")
}

func (r *Runner) lost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	r.closeTasks(lost, "lost")
}

// closeTasks stops the tasks of partitions that are no longer ours. Their
// pending batches are dropped: the session aborts the open transaction.
func (r *Runner) closeTasks(m map[string][]int32, why string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for t, ps := range m {
		for _, p := range ps {
			delete(r.owned[t], p)
		}
	}
	for _, ps := range m {
		for _, p := range ps {
			t := r.tasks[p]
			if t == nil {
				continue
			}
			if err := t.close(); err != nil {
				r.log.Warn("closing task", "partition", p, "err", err)
			}
			delete(r.tasks, p)
			r.log.Info("partition "+why, "partition", p)
		}
	}
	r.metrics.tasks.Set(float64(len(r.tasks)))
}

// processedCounter caches the counter of a topic: a label lookup per
// record was 5% of a simple processor's time. Called with mu held.
func (r *Runner) processedCounter(topic string) prometheus.Counter {
	c, ok := r.processedByTopic[topic]
	if !ok {
		c = r.metrics.processed.WithLabelValues(r.alias(topic))
		r.processedByTopic[topic] = c
	}
	return c
}

// alias shortens a full topic name to its catalog alias for metric labels.
func (r *Runner) alias(topic string) string {
	if s, ok := r.cfg.Catalog.Lookup(topic); ok {
		return s.Alias
	}
	return "other"
}

// checkCoPartitioned verifies that this instance owns partition p of
// every input whenever it owns it of one: a task sees all of a subject's
// records only then. The range balancer guarantees it; a violation (an
// input with another partition count, a foreign balancer in the group)
// stops the runner rather than let two instances run the same task.
func (r *Runner) checkCoPartitioned() error {
	parts := map[int32]bool{}
	for _, ps := range r.owned {
		for p := range ps {
			parts[p] = true
		}
	}
	for p := range parts {
		for _, t := range r.spec.Inputs {
			if !r.owned[t][p] {
				return fmt.Errorf("processors: %s: assigned partition %d of some inputs but not of %s: the group's assignment is not co-partitioned", r.spec.Name, p, t)
			}
		}
	}
	return nil
}

// Assignment returns the partitions this instance owns, per input topic.
func (r *Runner) Assignment() map[string][]int32 {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string][]int32{}
	for t, ps := range r.owned {
		for p := range ps {
			out[t] = append(out[t], p)
		}
		slices.Sort(out[t])
	}
	return out
}
