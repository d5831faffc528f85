package processors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/factory2/factory2/state"
	"github.com/factory2/factory2/topics"
)

// minCommitGap is the least time between two commits made because the
// runner caught up (deadline commits are CommitInterval apart).
var minCommitGap = 10 * time.Millisecond

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
	// StateValueCacheBytes bounds each task's cache of committed state
	// values, which answers reads before Pebble. Zero is
	// state.DefaultValueCacheBytes; negative turns it off.
	StateValueCacheBytes int64
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
	// MaxRecordBytes is the largest record (key, value and headers) the
	// runner produces: an output or a state value over it is the fault
	// of the input that caused it, which is dead-lettered. Keep it at or
	// below the brokers' message.max.bytes. Default 1,000,000 (Kafka's
	// default limit is 1,048,588).
	MaxRecordBytes int
	// MaxDeadLetterBytes bounds the payload copied into a dead letter; a
	// longer payload is truncated (its size and SHA-256 are in the
	// headers, and its topic/partition/offset say where the original
	// is). Default 64 KiB.
	MaxDeadLetterBytes int
	// Threads is how many tasks process their records at once (each task's
	// records in order on one goroutine), in one consumer and one
	// transaction. Default: GOMAXPROCS.
	Threads int
	// MaxTaskIdle is how long a task whose other inputs have records
	// waits for an input partition that has nothing fetched and nothing
	// more committed, before it processes without it (Kafka Streams'
	// max.task.idle.ms). Data already committed to a partition is always
	// waited for, whatever MaxTaskIdle: that is what keeps the order of
	// events the same live and in replay. 0 (the default) waits for
	// nothing that is not yet produced; negative takes heads as they
	// come without waiting for anything (not recommended).
	MaxTaskIdle time.Duration
	// MaxTxnWait bounds how long a task whose other inputs have records
	// waits for an open transaction on an input partition it has read to
	// its last stable offset. The transaction's records may commit with
	// earlier timestamps than the records waiting (a producer's commit
	// markers reach the partitions of its transaction one by one), so
	// the wait keeps the order of events the same live and in replay. A
	// producer that hangs holds its transaction open until it times out:
	// past MaxTxnWait the task goes on without it (counted in
	// factory2_processor_open_txn_waits_given_up_total). Default 1s;
	// negative does not wait. Ignored when MaxTaskIdle is negative.
	MaxTxnWait time.Duration
	// RetryBackoff and MaxRetryBackoff bound the wait between retries
	// after a Kafka fault or failed transaction. Defaults 100ms and 10s.
	RetryBackoff, MaxRetryBackoff time.Duration
	Logger                        *slog.Logger
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
	if c.Threads <= 0 {
		c.Threads = runtime.GOMAXPROCS(0)
	}
	if c.MaxRecordBytes <= 0 {
		c.MaxRecordBytes = 1_000_000
	}
	if c.MaxDeadLetterBytes <= 0 {
		c.MaxDeadLetterBytes = 64 << 10
	}
	c.MaxDeadLetterBytes = min(c.MaxDeadLetterBytes, c.MaxRecordBytes/2)
	if c.MaxTxnWait == 0 {
		c.MaxTxnWait = time.Second
	}
	if c.RetryBackoff <= 0 {
		c.RetryBackoff = 100 * time.Millisecond
	}
	if c.MaxRetryBackoff <= 0 {
		c.MaxRetryBackoff = 10 * time.Second
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
//
// A Runner keeps going (DESIGN.md, "Failure model"): Kafka faults are
// waited out, an input that cannot be processed is dead-lettered, and Run
// returns only when ctx ends or on an error no retry can fix.
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
	// decisionOuts are the outputs that are decision topics, and
	// decisionKinds the metrics of the kinds they carry, resolved once:
	// emit finds an output by a scan of these few.
	decisionOuts  []decisionOut
	decisionKinds []decisionKinds
	// retention is the changelogs' delete.retention.ms, by topic.
	retention map[string]time.Duration
	// topicIDs are the topics' ids (for requests the runner builds).
	topicIDs map[string][16]byte

	admin *kgo.Client // metadata and offsets; no transactions
	sess  *kgo.GroupTransactSession

	// mu guards tasks and everything a task holds except its clEnd. The
	// group callbacks take it, so it is never held across sess.End, whose
	// lock the callbacks hold (see kgo.GroupTransactSession), nor across
	// a restore, which can outlast the rebalance timeout.
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
	// fatal is set (under mu) by a group callback that failed in a way
	// the loop must stop for, such as a split assignment.
	fatal error

	// punctTxn is set while a punctuation transaction ends (see
	// punctuate).
	punctTxn bool
	// pollSeq numbers the polls (under mu): what a poll reports of a
	// partition's end is evidence for the records fetched before it.
	pollSeq uint64
	// idleWake is the earliest end of a task's Config.MaxTaskIdle or
	// Config.MaxTxnWait wait (under mu), zero when none waits.
	idleWake time.Time
	// moreReady is set by a drain that left records tasks could take
	// (a task at its budget, or one waiting its turn; under mu): the
	// next poll does not wait.
	moreReady bool
	// turn rotates which tasks take the first turn of a transaction on a
	// backlog (takeTurns; under mu).
	turn int
	// paused are the input partitions whose fetching backpressure paused
	// (under mu), per topic; the session's client holds the pause.
	paused map[string]map[int32]bool

	// The loop's own state, touched by the loop goroutine only.
	inTxn bool
	dirty bool // something was produced or consumed since Begin
	// txnRecords counts the input records processed in the open
	// transaction; txnLast is the last one (added up from the tasks
	// after each drain).
	txnRecords  int
	txnLast     recordRef
	txnProduced atomic.Int64
	// suspects are input records whose processing failed for a reason
	// tied to them: when polled again they are dead-lettered instead.
	suspects map[recordRef]suspect
	// outLimits are the outputs' own record limits, where the catalog
	// gives one above MaxRecordBytes.
	outLimits map[string]int
	// offsetsFetchedAt is when the last stable offset fetch of an
	// assignment returned (under mu).
	offsetsFetchedAt time.Time
	// isolate, when not nil, is the end (exclusive) per input partition of
	// a transaction that failed for a reason no single record was blamed
	// for: up to there, records are processed one per transaction, so the
	// next failure names its record.
	isolate map[recordRef]bool
	retry   backoff

	health health
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
		retention:  map[string]time.Duration{},
		topicIDs:   map[string][16]byte{},
		suspects:   map[recordRef]suspect{},
		retry:      backoff{min: cfg.RetryBackoff, max: cfg.MaxRetryBackoff},
	}
	r.health.started = time.Now()
	for _, s := range spec.Stores {
		r.changelogs[s] = cfg.Catalog.AddChangelog(spec.Name, s)
	}
	r.outLimits = map[string]int{}
	for _, o := range spec.Outputs {
		if s, ok := cfg.Catalog.Lookup(o); ok && s.MaxRecordBytes > cfg.MaxRecordBytes {
			r.outLimits[o] = s.MaxRecordBytes
		}
	}
	if n := r.maxRecordBytes(); n > cfg.MaxRecordBytes {
		// The producer batches every topic up to the largest record:
		// each topic written must take such batches.
		for _, t := range slices.Concat(spec.Outputs, slices.Collect(maps.Values(r.changelogs)), []string{r.deadLetter}) {
			cfg.Catalog.RaiseRecordLimit(t, n)
		}
	}
	r.metrics = newMetrics(r.group)
	r.initDecisionOuts()
	var inputs []string
	for _, in := range spec.Inputs {
		inputs = append(inputs, r.alias(in))
	}
	kinds := make([]string, len(r.decisionKinds))
	for i, d := range r.decisionKinds {
		kinds[i] = d.kind
	}
	r.metrics.preinit(inputs, kinds, len(spec.Stores) > 0)
	r.stateMetrics = state.NewCollector("factory2")
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

// Run processes until ctx is done or an error no retry can fix. Kafka
// faults (brokers down, coordinators moving, a lost group membership,
// failed commits) are logged once per change and waited out, rebuilding
// the Kafka session when its state is unknown. On cancel it commits the
// open transaction if it can (abort otherwise), writes the state, closes
// every task and leaves the group.
func (r *Runner) Run(ctx context.Context) error {
	var err error
	r.admin, err = NewClient(r.cfg.Brokers, r.cfg.ClientOpts)
	if err != nil {
		return err
	}
	defer r.admin.Close()
	if err := r.waitTopics(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	var runErr error
	for ctx.Err() == nil {
		err := r.session(ctx)
		if err == nil || ctx.Err() != nil {
			break
		}
		if classify(err) == fatal {
			runErr = err
			break
		}
		// The session's state is unknown (a commit whose outcome was not
		// reported, a producer the client gave up on): start a new one,
		// which rejoins the group, re-reads the committed offsets and
		// restores the tasks' changelog tails.
		r.problem("kafka session", err)
		sleep(ctx, r.retry.next())
	}
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

// waitTopics checks the topics until they are all there and
// co-partitioned, waiting out an unreachable cluster and topics that were
// just created (metadata reaches every broker a moment after creation).
// Missing topics are fatal after a minute, a partition mismatch at once.
func (r *Runner) waitTopics(ctx context.Context) error {
	var missingSince time.Time
	for {
		err := r.checkTopics(ctx)
		var me *missingTopicsError
		switch {
		case err == nil:
			r.recovered()
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		case classify(err) == fatal:
			return err
		case errors.As(err, &me):
			if missingSince.IsZero() {
				missingSince = time.Now()
			}
			if time.Since(missingSince) > time.Minute {
				return &fatalError{err}
			}
		}
		r.problem("topics", err)
		sleep(ctx, r.retry.next())
	}
}

// missingTopicsError: some topics the processor needs do not exist.
type missingTopicsError struct{ topics []string }

func (e *missingTopicsError) Error() string {
	return fmt.Sprintf("topics %v are missing (run `factory2 topics ensure`)", e.topics)
}

// checkTopics checks once that the topics exist and are co-partitioned,
// and reads the changelogs' delete.retention.ms.
func (r *Runner) checkTopics(ctx context.Context) error {
	pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := r.admin.Ping(pctx); err != nil {
		return fmt.Errorf("processors: %s: no Kafka broker answers at %v: %w", r.spec.Name, r.cfg.Brokers, err)
	}
	want := append(slices.Clone(r.spec.Inputs), r.deadLetter)
	var changelogs []string
	for _, s := range r.spec.Stores {
		want = append(want, r.changelogs[s])
		changelogs = append(changelogs, r.changelogs[s])
	}
	adm := kadm.NewClient(r.admin)
	details, err := adm.ListTopics(pctx, want...)
	if err != nil {
		return fmt.Errorf("processors: %s: listing topics: %w", r.spec.Name, err)
	}
	var missing []string
	parts := map[string]int{}
	for _, t := range want {
		d, ok := details[t]
		switch {
		case !ok || errors.Is(d.Err, kerr.UnknownTopicOrPartition):
			missing = append(missing, t)
			continue
		case d.Err != nil:
			return fmt.Errorf("processors: %s: topic %s: %w", r.spec.Name, t, d.Err)
		}
		if t != r.deadLetter {
			parts[t] = len(d.Partitions)
		}
		r.topicIDs[t] = d.ID
	}
	if len(missing) > 0 {
		return fmt.Errorf("processors: %s: %w", r.spec.Name, &missingTopicsError{missing})
	}
	counts := slices.Sorted(maps.Values(parts))
	if counts[0] != counts[len(counts)-1] {
		return &fatalError{fmt.Errorf("processors: %s: inputs and changelogs are not co-partitioned: partition counts %v", r.spec.Name, parts)}
	}
	if len(changelogs) > 0 {
		rcs, err := adm.DescribeTopicConfigs(pctx, changelogs...)
		if err != nil {
			return fmt.Errorf("processors: %s: describing changelogs: %w", r.spec.Name, err)
		}
		for _, rc := range rcs {
			for _, c := range rc.Configs {
				if c.Key == "delete.retention.ms" && c.Value != nil {
					if ms, err := strconv.ParseInt(*c.Value, 10, 64); err == nil && ms > 0 {
						r.retention[rc.Name] = time.Duration(ms) * time.Millisecond
					}
				}
			}
		}
	}
	r.mu.Lock()
	r.partitions = counts[0]
	r.mu.Unlock()
	return nil
}

// deleteRetention is the changelog topic's delete.retention.ms (Kafka's
// default, one day, if it could not be read).
func (r *Runner) deleteRetention(topic string) time.Duration {
	if d, ok := r.retention[topic]; ok {
		return d
	}
	return 24 * time.Hour
}

// session runs one Kafka session: a transactional group client, its
// producer id, and the processing loop. It returns nil when ctx ends, and
// an error when the session must be rebuilt (or, if fatal, the runner
// stop).
func (r *Runner) session(ctx context.Context) error {
	opts := []kgo.Opt{
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
		kgo.RebalanceTimeout(r.rebalanceTimeout()),
		kgo.OnPartitionsAssigned(r.assigned),
		kgo.AdjustFetchOffsetsFn(r.offsetsFetched),
		kgo.OnPartitionsRevoked(r.revoked),
		kgo.OnPartitionsLost(r.lost),
		kgo.RecordPartitioner(partitioner(r.changelogs, r.spec.PartitionedOutputs)),
		// franz-go refuses a wait under 10 ms; a shorter commit interval
		// is kept by the poll's own deadline (pollDeadline).
		kgo.FetchMaxWait(max(r.cfg.CommitInterval, 10*time.Millisecond)),
		// Transaction markers are returned (and skipped by the loop), so
		// the position of a partition reaches its last stable offset
		// exactly and the merge can tell "caught up" from "one more
		// record to fetch" (see merge.go).
		kgo.KeepControlRecords(),
		// Every fetch answer then lists every partition it asked for,
		// with its last stable offset, including those with nothing new:
		// the merge's evidence that an idle input holds nothing older
		// than the records that came with it. An incremental fetch
		// session leaves unchanged partitions out.
		kgo.DisableFetchSessions(),
		// A produce refused with CONCURRENT_TRANSACTIONS (the first of a
		// transaction begun while the broker still writes the previous
		// one's markers: common with Kafka 4's transaction protocol) is
		// retried after a metadata refresh, which franz-go spaces by
		// this floor (default 5s): a 5 s stall inside a commit.
		kgo.MetadataMinAge(100 * time.Millisecond),
		// A short linger batches outputs into fewer produce requests
		// (12k requests for 200k events without it); it never delays a
		// commit, which flushes first.
		kgo.ProducerLinger(5 * time.Millisecond),
		// Room for the largest record the runner produces (one output
		// may allow more than MaxRecordBytes, a compose's manifest; the
		// runner then raised the limit of every topic it writes to).
		kgo.ProducerBatchMaxBytes(int32(max(r.maxRecordBytes(), 1_000_012))),
	}
	if len(r.cfg.SessionHooks) > 0 {
		opts = append(opts, kgo.WithHooks(r.cfg.SessionHooks...))
	}
	sess, err := newSession(r.cfg.Brokers, r.cfg.ClientOpts, opts...)
	if err != nil {
		return &fatalError{err}
	}
	r.sess = sess
	r.mu.Lock()
	r.paused = map[string]map[int32]bool{} // pauses live in the client
	r.mu.Unlock()
	r.metrics.sessions.Inc()
	defer r.closeSession(ctx)
	if err := r.initProducer(ctx); err != nil {
		return err
	}
	r.log.Info("processor started", "group", r.group, "transactional_id", r.txnID, "inputs", r.spec.Inputs)
	return r.loop(ctx)
}

// rebalanceTimeout is how long the group waits for members to rejoin.
func (r *Runner) rebalanceTimeout() time.Duration { return max(r.cfg.SessionTimeout, 30*time.Second) }

// initProducer initializes the transactional producer id, waiting out an
// unreachable transaction coordinator. That fences the previous
// incarnation now: initializing the producer id aborts a transaction it
// left open. Without this, a restart whose predecessor died after
// committing offsets in its transaction would wait for that transaction to
// time out (read_committed offset fetches stay "unstable" until it ends)
// before consuming anything, and so before producing, which is when
// franz-go would fence.
func (r *Runner) initProducer(ctx context.Context) error {
	for {
		fctx, fcancel := context.WithTimeout(ctx, r.cfg.TransactionTimeout)
		_, _, err := r.sess.Client().ProducerID(fctx)
		fcancel()
		switch {
		case err == nil:
			r.recovered()
			return nil
		case ctx.Err() != nil:
			return nil
		case classify(err) == fatal:
			return &fatalError{fmt.Errorf("processors: %s: initializing transactional producer %s: %w (is another instance running with instance_id %q?)", r.spec.Name, r.txnID, err, r.cfg.InstanceID)}
		}
		// The client keeps a failed producer id load: only a new
		// session retries it.
		return fmt.Errorf("processors: %s: initializing transactional producer %s: %w", r.spec.Name, r.txnID, err)
	}
}

// closeSession ends the open transaction (abort), leaves the group within
// a bounded time (a dead coordinator must not hold the stop), and closes
// the client; the revoke or lost callback closes the tasks.
func (r *Runner) closeSession(ctx context.Context) {
	r.abort(ctx)
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	_ = r.sess.Client().LeaveGroupContext(lctx)
	cancel()
	r.sess.Close()
	r.mu.Lock()
	for p, t := range r.tasks {
		r.closeTask(p, t, "session closed")
	}
	clear(r.owned)
	r.metrics.tasks.Set(0)
	r.mu.Unlock()
	clear(r.suspects)
	r.isolate = nil
}

func (r *Runner) loop(ctx context.Context) error {
	deadline := time.Now().Add(r.cfg.CommitInterval)
	var lastCommit time.Time
	// gapEnd, when set, is when a caught-up transaction held back by
	// minCommitGap commits.
	var gapEnd time.Time
	var nextPunct time.Time
	if r.spec.PunctuateEvery > 0 {
		nextPunct = time.Now().Add(r.spec.PunctuateEvery)
	}
	for {
		r.beat()
		r.backpressure()
		if err := r.restorePending(ctx); err != nil {
			if classify(err) == fatal {
				return err
			}
			r.problem("restore", err)
			sleep(ctx, r.retry.next())
		}
		wake := deadline
		if !gapEnd.IsZero() && gapEnd.Before(wake) {
			wake = gapEnd
		}
		pctx, cancel := context.WithDeadline(ctx, r.pollDeadline(wake))
		fetches := r.sess.PollRecords(pctx, r.cfg.MaxPollRecords)
		cancel()
		fetches = r.pollBuffered(fetches)
		if ctx.Err() != nil {
			// The records this poll returned already count as consumed
			// for the session (their offsets will be committed), so
			// process them before the final commit rather than lose them.
			sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer scancel()
			if err := r.process(sctx, fetches); err != nil {
				r.abort(sctx)
				return nil
			}
			return r.shutdown()
		}
		if fetches.IsClientClosed() {
			return errors.New("processors: client closed")
		}
		if err := r.fetchErrors(fetches); err != nil {
			r.abort(ctx)
			return err
		}
		r.mu.Lock()
		fatal := r.fatal
		r.mu.Unlock()
		if fatal != nil {
			r.abort(ctx)
			return &fatalError{fmt.Errorf("processors: %s: %w", r.spec.Name, fatal)}
		}
		if err := r.process(ctx, fetches); err != nil {
			if err := r.failed(ctx, err); err != nil {
				return err
			}
			deadline = time.Now().Add(r.cfg.CommitInterval)
			continue
		}
		now := time.Now()
		if fetches.NumRecords() == 0 && r.sess.Client().BufferedFetchRecords() == 0 {
			r.idlePoll(now)
		}
		// Commit at the deadline, or once the runner has caught up with
		// its inputs (nothing more is buffered): under a trickle of events
		// a decision then waits for one commit, not for the interval. But
		// not within minCommitGap of the last commit: every transaction
		// costs the broker markers on each partition it touched, and
		// committing after every small poll saturated it (p50 latency
		// tripled at 2,000 events/s) once commits got cheap. While
		// isolating a failure, every record is its own transaction.
		//
		// Caught up within minCommitGap of the last commit, the next poll
		// returns at the gap's end (gapEnd), so that a record that came
		// alone just after a commit waits for the gap, not for the whole
		// interval.
		caughtUp := r.inTxn && r.sess.Client().BufferedFetchRecords() == 0 && !r.anyQueued()
		gapEnd = time.Time{}
		if gap := min(minCommitGap, r.cfg.CommitInterval); caughtUp && now.Sub(lastCommit) < gap {
			caughtUp, gapEnd = false, lastCommit.Add(gap)
		}
		if !now.Before(deadline) || caughtUp || (r.isolate != nil && r.inTxn) {
			lastCommit = now
			if err := r.commit(ctx); err != nil {
				if err := r.failed(ctx, err); err != nil {
					return err
				}
			}
			deadline = time.Now().Add(r.cfg.CommitInterval)
		}
		if !nextPunct.IsZero() && !now.Before(nextPunct) && r.isolate == nil {
			// Punctuation runs in transactions of its own, after the
			// records' commit: its failure is then its own, and never
			// holds back the inputs.
			more, err := r.punctuate(ctx, now)
			if err != nil {
				if err := r.failed(ctx, err); err != nil {
					return err
				}
			}
			nextPunct = now.Add(r.spec.PunctuateEvery)
			if more {
				nextPunct = now // another chunk in the next round
			}
			deadline = time.Now().Add(r.cfg.CommitInterval)
		}
	}
}

// pollBuffered adds to fetches every record the client already holds. A
// fetch answer lists its partitions one after another and a poll takes
// MaxPollRecords from its front, so after one poll most tasks may hold
// the records of some inputs while those of another still wait in the
// client: their merge waits (mergeFetch), and catching up on a backlog
// the tasks ran one at a time. Records queued at a commit are carried
// over (commitQueuedFrom), so taking them early loses nothing; the
// client's buffer is one fetch, and backpressure bounds the queues.
func (r *Runner) pollBuffered(fetches kgo.Fetches) kgo.Fetches {
	cl := r.sess.Client()
	for cl.BufferedFetchRecords() > 0 {
		// Buffered records are returned without waiting; the context
		// only matters when there are none, which the loop rules out.
		more := r.sess.PollRecords(context.Background(), r.cfg.MaxPollRecords)
		fetches = append(fetches, more...) // errors included: the loop handles them
		if more.NumRecords() == 0 {
			break
		}
	}
	return fetches
}

// backlogRecords is how many queued records make a backlog, on which the
// tasks take turns by transaction (takeTurns).
func (r *Runner) backlogRecords() int { return 4 * r.cfg.MaxPollRecords }

// queueBytes bounds the bytes of one input partition's queue: above it
// (or above 2*MaxPollRecords records) the partition's fetching is paused
// until the queue is back to half (or MaxPollRecords records).
const queueBytes = 4 << 20

// backpressure pauses fetching the input partitions whose queue is over
// its bound and resumes those back under half of it. A task's merge can
// hold one input's records while it waits for another's (mergeFetch), so
// without it a backlog whose inputs a fetch advances at different paces
// (in time) would pile up in the queues. A queue resumed at MaxPollRecords
// records does not run dry before the next fetch: a drain takes at most
// MaxPollRecords records.
func (r *Runner) backpressure() {
	r.mu.Lock()
	var pause, resume map[string][]int32
	for p, t := range r.tasks {
		for _, q := range t.queues {
			paused := r.paused[q.topic][p]
			switch {
			case !paused && (len(q.recs) > 2*r.cfg.MaxPollRecords || q.bytes > queueBytes):
				if pause == nil {
					pause = map[string][]int32{}
				}
				pause[q.topic] = append(pause[q.topic], p)
				if r.paused[q.topic] == nil {
					r.paused[q.topic] = map[int32]bool{}
				}
				r.paused[q.topic][p] = true
			case paused && len(q.recs) <= r.cfg.MaxPollRecords && q.bytes <= queueBytes/2:
				if resume == nil {
					resume = map[string][]int32{}
				}
				resume[q.topic] = append(resume[q.topic], p)
				delete(r.paused[q.topic], p)
			}
		}
	}
	r.mu.Unlock()
	cl := r.sess.Client()
	if len(pause) > 0 {
		cl.PauseFetchPartitions(pause)
		r.metrics.pauses.Add(float64(countPartitions(pause)))
	}
	if len(resume) > 0 {
		cl.ResumeFetchPartitions(resume)
	}
}

// unpause resumes fetching the partitions of m that backpressure paused:
// partitions revoked or lost, whose task is gone with its queues (see
// closeTasks). Called with mu held.
func (r *Runner) unpause(cl *kgo.Client, m map[string][]int32) {
	resume := map[string][]int32{}
	for t, ps := range m {
		for _, p := range ps {
			if r.paused[t][p] {
				resume[t] = append(resume[t], p)
				delete(r.paused[t], p)
			}
		}
	}
	if len(resume) > 0 {
		cl.ResumeFetchPartitions(resume)
	}
}

func countPartitions(m map[string][]int32) int {
	n := 0
	for _, ps := range m {
		n += len(ps)
	}
	return n
}

// fetchErrors logs the fetch errors of a poll that are informational
// (the group session lost or not joinable, data loss the client resets
// from) and returns the first one the runner must act on.
func (r *Runner) fetchErrors(fetches kgo.Fetches) error {
	var err error
	fetches.EachError(func(t string, p int32, ferr error) {
		var gs *kgo.ErrGroupSession
		switch {
		case errors.Is(ferr, context.DeadlineExceeded), errors.Is(ferr, context.Canceled):
		case classify(ferr) == fatal:
			err = errors.Join(err, &fatalError{fmt.Errorf("processors: %s: fetching %s/%d: %w", r.spec.Name, t, p, ferr)})
		case errors.As(ferr, &gs):
			// The client rejoins by itself; the lost callback has
			// closed the tasks, and the open transaction will abort.
			r.problem("consumer group", ferr)
		default:
			r.problem("fetch", fmt.Errorf("fetching %s/%d: %w", t, p, ferr))
		}
	})
	return err
}

// failed handles an error of processing, committing or punctuating: the
// open transaction is aborted; a poison record is blamed (or isolated);
// a Kafka fault is backed off from. It returns an error only when the
// loop must end: fatal, or a session to rebuild.
func (r *Runner) failed(ctx context.Context, err error) error {
	r.abort(ctx)
	var pe *poisonError
	var rb *rebuildError
	switch {
	case ctx.Err() != nil:
		return nil
	case classify(err) == fatal:
		return err
	case errors.As(err, &rb):
		r.countAbort("kafka")
		return err
	case errors.As(err, &pe) && pe.src != nil:
		// Blamed on one record: reprocess at once, dead-lettering it.
		r.suspects[*pe.src] = suspect{reason: pe.err.Error(), metric: poisonReason(pe.err)}
		r.countAbort("poison")
		r.log.Warn("an input record cannot be processed; dead-lettering it", "record", pe.src.String(), "reason", pe.err)
		return nil
	case errors.As(err, &pe), classify(err) == poison:
		r.countAbort("poison")
		r.log.Warn("a transaction failed for a reason tied to one of its records; processing them one per transaction to find it", "err", err)
		return nil
	case errors.As(err, new(*punctuationError)):
		r.countAbort("punctuation")
		r.log.Warn("punctuation failed; retrying it later", "err", err)
		return nil
	}
	r.countAbort("kafka")
	r.problem("transaction", err)
	sleep(ctx, r.retry.next())
	return nil
}

// rebuildError: the session's state is unknown, so it must be rebuilt.
type rebuildError struct{ err error }

func (e *rebuildError) Error() string { return e.err.Error() }
func (e *rebuildError) Unwrap() error { return e.err }

// punctuationError: a punctuation failed.
type punctuationError struct{ err error }

func (e *punctuationError) Error() string { return e.err.Error() }
func (e *punctuationError) Unwrap() error { return e.err }

func (r *Runner) countAbort(cause string) {
	r.metrics.aborts.WithLabelValues(cause).Inc()
	n := r.health.abortedInARow()
	r.metrics.consecutiveAborts.Set(float64(n))
}

// begin opens a transaction if none is open.
func (r *Runner) begin() error {
	if r.inTxn {
		return nil
	}
	if err := r.sess.Begin(); err != nil {
		return &rebuildError{fmt.Errorf("processors: %s: beginning transaction: %w", r.spec.Name, err)}
	}
	r.inTxn = true
	r.txnRecords = 0
	r.txnProduced.Store(0)
	return nil
}

// process queues the records of one poll and processes, in merge order
// (merge.go), every queued record the merge allows. Tasks that must first
// restore do so before the lock is taken. An error means the open
// transaction must abort (see failed).
func (r *Runner) process(ctx context.Context, fetches kgo.Fetches) error {
	r.mu.Lock()
	r.enqueue(fetches)
	var need []int32
	for p, t := range r.tasks {
		if !t.restored && t.queued() {
			need = append(need, p)
		}
	}
	r.mu.Unlock()
	slices.Sort(need)
	for _, p := range need {
		if err := r.ensureRestored(ctx, p); err != nil {
			return err
		}
	}
	evidence, err := r.drain()
	if err != nil || len(evidence) == 0 {
		return err
	}
	// Some task waits to know whether an idle input holds anything older
	// than its records: ask the brokers once, then go on.
	if err := r.fetchEnds(ctx, evidence); err != nil {
		r.problem("input ends", err)
		return nil
	}
	_, err = r.drain()
	return err
}

// drain processes the queued records of every restored task in merge
// order, as far as the merge allows, and returns the input partitions
// whose end some task needs to know before it can go on. Tasks are
// independent (own state, own processor, own output partitions), so up
// to Config.Threads of them run at once; each task's records run in
// order on one goroutine.
func (r *Runner) drain() (map[string][]int32, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ready []*task
	for _, p := range slices.Sorted(maps.Keys(r.tasks)) {
		if t := r.tasks[p]; t.restored && t.queued() {
			ready = append(ready, t)
		}
	}
	r.idleWake = time.Time{}
	r.moreReady = false
	var waiting [len(mergeWaitReasons)]int
	defer func() {
		for w, n := range waiting {
			if g := r.metrics.mergeWaitingBy[w]; g != nil {
				g.Set(float64(n))
			}
		}
	}()
	if len(ready) == 0 {
		return nil, nil
	}
	if err := r.begin(); err != nil {
		return nil, err
	}
	r.dirty = true
	r.sendQuarantined()
	now := time.Now()
	committed := sync.OnceValue(r.sess.Client().CommittedOffsets)
	threads := r.cfg.Threads
	if r.isolate != nil {
		threads = 1 // one record per transaction
	}
	all := ready
	ready, deferred := r.takeTurns(ready, threads, now, committed)
	// A drain takes about MaxPollRecords records, shared by the tasks it
	// runs, so that the commit deadline is checked that often.
	budget := max(1, r.cfg.MaxPollRecords/max(1, len(ready)))
	if threads = min(threads, len(ready)); threads <= 1 {
		for _, t := range ready {
			t.drain(now, committed, budget)
		}
	} else {
		var next atomic.Int32
		var wg sync.WaitGroup
		for range threads {
			wg.Go(func() {
				for i := int(next.Add(1)) - 1; i < len(ready); i = int(next.Add(1)) - 1 {
					ready[i].drain(now, committed, budget)
				}
			})
		}
		wg.Wait()
	}
	r.moreReady = deferred // and a task at its budget, below
	var evidence map[string][]int32
	var err error
	for _, t := range all {
		if t.drainErr != nil && err == nil {
			err = t.drainErr
		}
		t.drainErr = nil
		if t.processed > 0 {
			r.txnRecords += t.processed
			r.txnLast = t.lastRef
			t.processed = 0
		}
		waiting[t.wait]++
		switch t.wait {
		case mergeEvidence:
			for _, q := range t.queues {
				if len(q.recs) == 0 {
					if evidence == nil {
						evidence = map[string][]int32{}
					}
					evidence[q.topic] = append(evidence[q.topic], t.partition)
				}
			}
		case mergeIdle:
			r.wakeBy(t.idleSince.Add(r.cfg.MaxTaskIdle))
		case mergeOpenTxn:
			r.wakeBy(t.openWake)
		case mergeBudget:
			r.moreReady = true
		}
	}
	return evidence, err
}

// drain processes t's queued records in merge order until the merge must
// wait (t.wait says why) or a record fails (t.drainErr). It runs on a
// goroutine of its own while the runner's lock is held for it: it touches
// only t, and what is safe for concurrent use (the codec, the producer,
// metrics, the read-only suspects).
func (t *task) drain(now time.Time, committed func() map[string]map[int32]kgo.EpochOffset, budget int) {
	r := t.r
	start := time.Now()
	n := 0
	for {
		if r.isolate != nil && r.txnRecords+t.processed > 0 {
			t.wait = mergeEmpty // isolating a failure: one record per transaction
			break
		}
		if n == budget {
			t.wait = mergeBudget
			break
		}
		q, why := r.nextRecord(t, now, committed)
		t.wait = why
		if why != mergeReady {
			break
		}
		n++
		if t.drainErr = r.processOne(t, q); t.drainErr != nil {
			break
		}
	}
	if n > 0 {
		// One clock read and one observation per task and poll, not
		// per record.
		r.metrics.processSeconds.Observe(time.Since(start).Seconds())
	}
}

// takeTurns returns the tasks of ready that this drain runs, and whether
// it left out some that could run. Caught up, every ready task runs. On a
// backlog (the tasks hold backlogRecords or more), at most threads tasks
// that can take a record run per transaction, those that ran in it first:
// a transaction then covers a longer stretch of fewer partitions, so a
// key written by many of its records goes to the changelog once (running
// every task at once tripled the changelog of a benchmark whose keys are
// spread evenly in time). Called with mu held.
func (r *Runner) takeTurns(ready []*task, threads int, now time.Time, committed func() map[string]map[int32]kgo.EpochOffset) ([]*task, bool) {
	if len(ready) <= threads {
		return ready, false
	}
	queued := 0
	for _, t := range ready {
		for _, q := range t.queues {
			queued += len(q.recs)
		}
	}
	if queued < r.backlogRecords() {
		return ready, false
	}
	var active, idle []*task
	for _, t := range ready {
		_, why := r.nextRecord(t, now, committed)
		if t.wait = why; why != mergeReady {
			continue // its drain would stop at once: t.wait says why
		}
		if len(t.inNext) > 0 {
			active = append(active, t) // consumed in this transaction
		} else {
			idle = append(idle, t)
		}
	}
	if len(active) == 0 && len(idle) > 0 {
		// A new transaction: start the turns one task further on than
		// the last, so that none waits behind the same others.
		k := r.turn % len(idle)
		idle = append(idle[k:], idle[:k]...)
		r.turn++
	}
	run := append(active, idle...)
	if len(run) <= threads {
		return run, false
	}
	return run[:threads], true
}

// anyQueued reports whether a task holds records it has not processed.
func (r *Runner) anyQueued() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, t := range r.tasks {
		if t.queued() {
			return true
		}
	}
	return false
}

// wakeBy moves idleWake to wake if that is earlier. Called with mu held.
func (r *Runner) wakeBy(wake time.Time) {
	if r.idleWake.IsZero() || wake.Before(r.idleWake) {
		r.idleWake = wake
	}
}

// pollDeadline is when the next poll must return: the commit deadline, or
// earlier when a task waits out Config.MaxTaskIdle or Config.MaxTxnWait,
// or at once when the last drain left records that tasks could take.
func (r *Runner) pollDeadline(deadline time.Time) time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.moreReady {
		return time.Now()
	}
	if !r.idleWake.IsZero() && r.idleWake.Before(deadline) {
		return r.idleWake
	}
	return deadline
}

func (r *Runner) processOne(t *task, q *inputQueue) error {
	rec := q.pop()
	t.inNext[rec.Topic] = rec.Offset + 1
	t.processed++
	ref := refOf(rec)
	t.lastRef = ref
	if s, ok := r.suspects[ref]; ok {
		// Not deleted: if this transaction aborts, the record comes
		// round again and is dead-lettered again. Suspects behind the
		// committed position are dropped at commit.
		r.deadLetterRecord(rec, "poison", s.metric, s.reason)
		return nil
	}
	v, err := r.cfg.Codec.Decode(rec.Value)
	if err != nil {
		r.deadLetterRecord(rec, "decode", decodeReason(err), err.Error())
		return nil
	}
	in := &Input{Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset, Key: rec.Key, Timestamp: rec.Timestamp, Record: v}
	t.current = rec
	err = t.proc.Process(t.ctx, in)
	t.current = nil
	var rej *RejectError
	switch {
	case errors.As(err, &rej):
		r.deadLetterRecord(rec, "rejected", "rejected", rej.Reason)
		return nil
	case err != nil && classify(err) == fatal:
		return err
	case err != nil && errors.Is(err, context.Canceled):
		return err
	case err != nil:
		// Process is deterministic: the same record fails again on the
		// same state, so the record is the poison.
		return &poisonError{src: &ref, err: fmt.Errorf("processors: %s: processing %s: %w", t.label, ref, err)}
	}
	if perr := r.producePoison(); perr != nil {
		return perr
	}
	q.processed.Inc()
	return nil
}

// punctuate runs the punctuation of every task whose state is restored
// and whose committed offsets are known, in a transaction of its own. It
// returns more when a punctuator has more work for the next round.
func (r *Runner) punctuate(ctx context.Context, now time.Time) (more bool, err error) {
	if !r.hasPunctuator() {
		return false, nil
	}
	if r.inTxn {
		if err := r.commit(ctx); err != nil {
			return false, err
		}
	}
	ran, more, err := r.punctuateTasks(now)
	if err != nil || !ran {
		return more, err
	}
	// The transaction consumed nothing, so it ends with the client's
	// EndTransaction rather than the session's End: End sends no
	// TxnOffsetCommit then, cannot tell that the broker has KIP-447, and
	// holds the session's lock for 500 ms after committing, which stalled
	// the next records' commit by half a second after every punctuation.
	r.punctTxn = true
	defer func() { r.punctTxn = false }()
	if !r.txnWrites() {
		return more, r.commit(ctx) // nothing to fence: an empty transaction
	}
	// A transaction that consumed nothing commits no offsets, so the
	// broker would not check this member's generation: a member that
	// lost its partitions without knowing it yet could commit for them.
	// Fence it explicitly.
	if err := r.fenceGeneration(ctx); err != nil {
		if errors.Is(err, errNotMember) {
			r.abort(ctx) // between generations: punctuate later
			return more, nil
		}
		return more, err
	}
	return more, r.commit(ctx)
}

// txnWrites reports whether the open transaction produced a record or
// changed state.
func (r *Runner) txnWrites() bool {
	if r.txnProduced.Load() > 0 {
		return true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, t := range r.tasks {
		if t.hasWrites() {
			return true
		}
	}
	return false
}

func (r *Runner) hasPunctuator() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, t := range r.tasks {
		if _, ok := t.proc.(Punctuator); ok {
			return true
		}
	}
	return false
}

func (r *Runner) punctuateTasks(now time.Time) (ran, more bool, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	committed := r.sess.Client().CommittedOffsets()
	for _, p := range slices.Sorted(maps.Keys(r.tasks)) {
		t := r.tasks[p]
		pu, ok := t.proc.(Punctuator)
		if !ok || !t.restored || now.Before(t.punctRetryAt) {
			continue
		}
		// Never before the task's committed offsets are known: until
		// the group's stable offset fetch returned, a previous owner's
		// transaction may still commit state for this partition.
		if !t.offsetsKnown && !hasPartition(committed, p) {
			continue
		}
		t.offsetsKnown = true
		if err := r.begin(); err != nil {
			return ran, more, err
		}
		r.dirty, ran = true, true
		r.sendQuarantined()
		m, err := pu.Punctuate(t.ctx, now)
		if err == nil {
			err = r.producePoison()
		}
		if err != nil {
			t.punctFailures++
			t.punctRetryAt = now.Add(min(time.Duration(1<<min(t.punctFailures, 12))*time.Second, 5*time.Minute))
			return ran, more, &punctuationError{fmt.Errorf("processors: %s: punctuate: %w", t.label, err)}
		}
		t.punctFailures = 0
		more = more || m
	}
	return ran, more, nil
}

func hasPartition(offsets map[string]map[int32]kgo.EpochOffset, p int32) bool {
	for _, ps := range offsets {
		if _, ok := ps[p]; ok {
			return true
		}
	}
	return false
}

// emitFor returns the Context emit function of task t.
func (r *Runner) emitFor(t *task) func(Output) {
	return func(o Output) {
		src := t.current
		v, err := r.cfg.Codec.Encode(o.Record)
		if err != nil {
			r.setProduceErr(r.blame(src, fmt.Errorf("processors: %s: encoding output for %s: %w", t.label, o.Topic, err)))
			return
		}
		limit := r.cfg.MaxRecordBytes
		if l := r.outLimits[o.Topic]; l > limit {
			limit = l
		}
		if n := len(o.Key) + len(v); n > limit {
			r.setProduceErr(r.blame(src, fmt.Errorf("processors: %s: output to %s is %d bytes, over the %d-byte record limit: %w", t.label, o.Topic, n, limit, errOutputTooLarge)))
			return
		}
		t.emittedCounter(o.Topic).Inc()
		for i := range r.decisionOuts {
			if d := &r.decisionOuts[i]; d.topic == o.Topic {
				t.noteDecision(d.slot(o.Record), src)
				break
			}
		}
		rec := &kgo.Record{Topic: o.Topic, Partition: o.Partition, Key: o.Key, Value: v}
		if src != nil {
			// The trigger's time: a processor downstream orders
			// decisions by the time of what caused them.
			rec.Timestamp = src.Timestamp
		}
		r.produce(context.Background(), rec, src, nil)
	}
}

// blame wraps err as a poison error of src (nil: of the transaction).
func (r *Runner) blame(src *kgo.Record, err error) error {
	if src == nil {
		return &poisonError{err: err}
	}
	ref := refOf(src)
	return &poisonError{src: &ref, err: err}
}

// produce sends rec in the open transaction; the first failure dooms the
// transaction (commit turns into abort). src is the input record rec
// derives from, if one: a produce error that rejects rec for what it is
// is blamed on src.
func (r *Runner) produce(ctx context.Context, rec *kgo.Record, src *kgo.Record, ok func(*kgo.Record)) {
	r.txnProduced.Add(1)
	r.sess.Produce(ctx, rec, func(rec *kgo.Record, err error) {
		if err != nil {
			err = fmt.Errorf("processors: %s: producing to %s: %w", r.spec.Name, rec.Topic, err)
			if classify(err) == poison {
				err = r.blame(src, err)
			}
			r.setProduceErr(err)
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

// producePoison returns the produce error of the open transaction if it is
// already known to be poison, so processing stops at the record to blame.
func (r *Runner) producePoison() error {
	r.produceMu.Lock()
	defer r.produceMu.Unlock()
	if r.produceErr != nil && classify(r.produceErr) == poison {
		return r.produceErr
	}
	return nil
}

// commit ends the open transaction. Order: produce the changelog of every
// task; End (flush, commit offsets in the transaction, commit); then, only
// if Kafka committed, write each task's batch to Pebble; if it aborted,
// drop the batches (the session has rewound the consumer). An error says
// why the transaction did not commit (see failed); the batches are
// dropped then too.
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
	for _, p := range slices.Sorted(maps.Keys(r.tasks)) {
		if err := r.tasks[p].flush(); err != nil {
			// A state value the changelog cannot carry: the fault of
			// some record of this transaction.
			if c := classify(err); c != fatal && !errors.As(err, new(*poisonError)) {
				err = &poisonError{err: err}
			}
			r.setProduceErr(err)
			break
		}
		r.tasks[p].produceChangelog(ctx)
	}
	records, last := r.txnRecords, r.txnLast
	var ends map[recordRef]bool
	if r.isolate == nil {
		ends = r.txnEnds()
	}
	queued := r.queuedFrom()
	r.mu.Unlock()

	try := kgo.TryCommit
	txnErr := r.flushErr(ctx)
	if txnErr != nil {
		try = kgo.TryAbort
	}
	var committed bool
	var err error
	if r.punctTxn && try == kgo.TryCommit {
		// See punctuate. Nothing was consumed, so there is no consumer
		// position to keep or rewind; the generation was fenced.
		err = r.sess.Client().EndTransaction(ctx, kgo.TryCommit)
		committed = err == nil
	} else {
		committed, err = r.sess.End(commitQueuedFrom(ctx, queued), try)
	}
	r.inTxn, r.dirty = false, false
	r.produceMu.Lock()
	r.produceErr = nil
	r.produceMu.Unlock()

	r.mu.Lock()
	defer r.mu.Unlock()
	if committed {
		now := time.Now()
		for _, p := range slices.Sorted(maps.Keys(r.tasks)) {
			if aerr := r.tasks[p].applyCommitted(now); aerr != nil {
				return &fatalError{aerr}
			}
		}
		for ref := range r.suspects {
			if t := r.tasks[ref.Partition]; t != nil && t.position[ref.Topic] > ref.Offset {
				delete(r.suspects, ref) // dead-lettered for good
			}
		}
		r.metrics.commits.WithLabelValues("committed").Inc()
		r.metrics.commitSeconds.Observe(time.Since(start).Seconds())
		r.metrics.lastCommit.Set(float64(now.UnixNano()) / 1e9)
		r.metrics.consecutiveAborts.Set(0)
		r.health.committed(now)
		r.retry.reset()
		r.recovered()
		r.isolated()
		return nil
	}
	for _, t := range r.tasks {
		t.discard()
	}
	r.metrics.commits.WithLabelValues("aborted").Inc()
	r.health.aborted()
	switch {
	case err != nil:
		// The outcome of End is unknown (the commit may have reached
		// the coordinator): only a new session, which re-reads the
		// committed offsets and restores the changelog tails, can go on
		// without losing or repeating anything.
		return &rebuildError{fmt.Errorf("processors: %s: ending transaction: %w", r.spec.Name, errors.Join(txnErr, err))}
	case txnErr == nil:
		return fmt.Errorf("processors: %s: transaction aborted (rebalance or commit failure); reprocessing from the last committed offsets", r.spec.Name)
	}
	var pe *poisonError
	if classify(txnErr) == poison && (!errors.As(txnErr, &pe) || pe.src == nil) {
		if r.isolate != nil && records == 1 {
			// One record per transaction: it is the one.
			return &poisonError{src: &last, err: txnErr}
		}
		if r.isolate == nil && records > 0 {
			r.isolate = ends
		}
	}
	return txnErr
}

// txnEnds returns, per input partition the open transaction consumed, the
// ref of its next offset. Called with mu held.
func (r *Runner) txnEnds() map[recordRef]bool {
	ends := map[recordRef]bool{}
	for p, t := range r.tasks {
		for topic, next := range t.inNext {
			ends[recordRef{Topic: topic, Partition: p, Offset: next}] = true
		}
	}
	return ends
}

// isolated ends isolation once the committed positions passed the ends of
// the transaction that failed. Called with mu held after a commit.
func (r *Runner) isolated() {
	if r.isolate == nil {
		return
	}
	for end := range r.isolate {
		t := r.tasks[end.Partition]
		if t == nil {
			delete(r.isolate, end) // no longer ours
			continue
		}
		if pos, ok := t.position[end.Topic]; ok && pos >= end.Offset {
			delete(r.isolate, end)
		}
	}
	if len(r.isolate) == 0 {
		r.isolate = nil
	}
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

// abort ends an open transaction with an abort.
func (r *Runner) abort(ctx context.Context) {
	if !r.inTxn {
		return
	}
	ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if _, err := r.sess.End(ectx, kgo.TryAbort); err != nil {
		r.log.Debug("aborting transaction", "err", err)
	}
	r.inTxn, r.dirty = false, false
	r.produceMu.Lock()
	r.produceErr = nil
	r.produceMu.Unlock()
	r.mu.Lock()
	for _, t := range r.tasks {
		t.discard()
	}
	r.mu.Unlock()
	r.health.aborted()
}

// shutdown commits what was processed before the cancel.
func (r *Runner) shutdown() error {
	if !r.inTxn {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.commit(ctx); err != nil {
		r.abort(ctx)
		if classify(err) == fatal {
			return err
		}
		r.log.Warn("the last transaction did not commit; its records are processed again at the next start", "err", err)
	}
	return nil
}

// assigned opens a task per new partition. Restoring happens in the loop,
// outside the rebalance and outside mu.
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
	r.metrics.rebalances.WithLabelValues("assigned").Inc()
	r.health.joined()
}

func (r *Runner) revoked(_ context.Context, cl *kgo.Client, revoked map[string][]int32) {
	r.closeTasks(cl, revoked, "revoked")
}

func (r *Runner) lost(_ context.Context, cl *kgo.Client, lost map[string][]int32) {
	r.closeTasks(cl, lost, "lost")
}

// closeTasks stops the tasks of partitions that are no longer ours. Their
// pending batches are dropped: the session aborts the open transaction.
// A task that is restoring is told to stop, and closes itself. The
// fetching backpressure paused for them is resumed.
func (r *Runner) closeTasks(cl *kgo.Client, m map[string][]int32, why string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(m) > 0 {
		r.metrics.rebalances.WithLabelValues(why).Inc()
	}
	for t, ps := range m {
		for _, p := range ps {
			delete(r.owned[t], p)
		}
	}
	r.unpause(cl, m)
	for _, ps := range m {
		for _, p := range ps {
			if t := r.tasks[p]; t != nil {
				r.closeTask(p, t, why)
			}
		}
	}
	r.metrics.tasks.Set(float64(len(r.tasks)))
}

// closeTask removes task t of partition p. Called with mu held.
func (r *Runner) closeTask(p int32, t *task, why string) {
	delete(r.tasks, p)
	r.metrics.lag.DeleteLabelValues(strconv.Itoa(int(p)))
	for ref := range r.suspects {
		if ref.Partition == p {
			delete(r.suspects, ref)
		}
	}
	if t.restoring {
		// Wait for the restore to stop (it stops at the cancel: a fetch
		// applied, a client closed, not the rest of the restore), then
		// close the task here: the partition may come back in the same
		// rebalance, and its new task must find the state closed.
		t.gone = true
		t.cancelRestore()
		<-t.restoreDone
		why += " while restoring"
	}
	if err := t.close(); err != nil {
		r.log.Warn("closing task", "partition", p, "err", err)
	}
	r.log.Info("partition "+why, "partition", p)
}

// maxRecordBytes is the largest record the runner may produce.
func (r *Runner) maxRecordBytes() int {
	n := r.cfg.MaxRecordBytes
	for _, l := range r.outLimits {
		n = max(n, l)
	}
	return n
}

// offsetsFetched is called once the group's stable offset fetch for newly
// assigned partitions returned: their committed offsets (or none) are
// known, so their tasks can restore before any record arrives (a
// partition that never had one included).
func (r *Runner) offsetsFetched(_ context.Context, offs map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
	r.mu.Lock()
	for _, ps := range offs {
		for p := range ps {
			if t := r.tasks[p]; t != nil {
				t.offsetsKnown = true
			}
		}
	}
	r.offsetsFetchedAt = time.Now()
	r.mu.Unlock()
	return offs, nil
}

// idlePoll notes a poll that returned nothing while nothing was queued:
// every partition whose offsets have been known for a while had its
// fetch answered with nothing, so its restored task is at the end of
// its inputs (a deployment whose topics are all empty is ready).
func (r *Runner) idlePoll(now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.offsetsFetchedAt.IsZero() || now.Sub(r.offsetsFetchedAt) < time.Second {
		return
	}
	for _, t := range r.tasks {
		if t.restored && t.offsetsKnown && !t.caughtUp && !t.queued() {
			t.caughtUp = true
		}
	}
}

// restorePending restores every task that is not restored and whose
// committed offsets are known (see ensureRestored), so that queries and
// punctuation work before the first record arrives.
func (r *Runner) restorePending(ctx context.Context) error {
	r.mu.Lock()
	var ps []int32
	var committed map[string]map[int32]kgo.EpochOffset
	for p, t := range r.tasks {
		if t.restored {
			continue
		}
		if committed == nil {
			committed = r.sess.Client().CommittedOffsets()
		}
		if t.offsetsKnown || hasPartition(committed, p) {
			ps = append(ps, p)
		}
	}
	r.mu.Unlock()
	slices.Sort(ps)
	for _, p := range ps {
		if err := r.ensureRestored(ctx, p); err != nil {
			return err
		}
	}
	return nil
}

// ensureRestored restores task p if it is not, without holding mu: a
// restore can outlast the rebalance timeout, and the revocation that a
// rebalance calls needs mu. A task revoked meanwhile stops restoring (its
// progress is checkpointed) and is closed by the revocation.
//
// Only once the partition's committed offsets are known (records were
// fetched for it, or the group's stable offset fetch returned): until
// then a previous owner's transaction may still add to the changelog.
func (r *Runner) ensureRestored(ctx context.Context, p int32) error {
	r.mu.Lock()
	t := r.tasks[p]
	if t == nil || t.restored {
		r.mu.Unlock()
		return nil
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	t.restoring, t.cancelRestore, t.restoreDone = true, cancel, done
	r.mu.Unlock()

	err := t.restore(rctx)
	cancel()
	close(done) // before taking mu, which a revocation waiting for done holds

	r.mu.Lock()
	defer r.mu.Unlock()
	t.restoring = false
	if t.gone {
		return nil // closed by closeTask
	}
	if err != nil {
		if errors.Is(err, context.Canceled) && ctx.Err() != nil {
			return nil
		}
		var se *StorageError
		if errors.As(err, &se) {
			return &fatalError{err}
		}
		return err
	}
	t.restored = true
	return nil
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
