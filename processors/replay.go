package processors

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/factory2/factory2/state"
)

// Progress reports the advance of a long job: done of total units
// (records) for one partition.
type Progress func(partition int32, done, total int64)

// RestoreStats summarizes a restore or a re-derivation.
type RestoreStats struct {
	Partitions int           `json:"partitions"`
	Records    int64         `json:"records"`
	Took       time.Duration `json:"took_ns"`
}

// partitions lists the partitions of the processor's first input, or the
// requested ones.
func partitionsOf(ctx context.Context, adm *kadm.Client, topic string, want []int32) ([]int32, error) {
	d, err := adm.ListTopics(ctx, topic)
	if err != nil {
		return nil, err
	}
	td, ok := d[topic]
	if !ok || td.Err != nil {
		return nil, fmt.Errorf("processors: topic %s is missing", topic)
	}
	all := td.Partitions.Numbers()
	slices.Sort(all)
	if len(want) == 0 {
		return all, nil
	}
	for _, p := range want {
		if !slices.Contains(all, p) {
			return nil, fmt.Errorf("processors: %s has no partition %d", topic, p)
		}
	}
	return want, nil
}

// Restore brings the local state of the processor's tasks (all partitions,
// or the given ones) up to their changelogs' committed end, as a Runner
// would on assignment, without processing anything. Run it while the
// processor is stopped on this instance.
func Restore(ctx context.Context, spec Spec, cfg Config, parts []int32) (RestoreStats, error) {
	start := time.Now()
	r, err := offlineRunner(ctx, spec, cfg)
	if err != nil {
		return RestoreStats{}, err
	}
	defer r.admin.Close()
	parts, err = partitionsOf(ctx, kadm.NewClient(r.admin), spec.Inputs[0], parts)
	if err != nil {
		return RestoreStats{}, err
	}
	var st RestoreStats
	for _, p := range parts {
		before := restoredCount(r)
		t, err := r.openTask(p)
		if err != nil {
			return st, err
		}
		err = t.restore(ctx)
		err = errors.Join(err, t.close())
		if err != nil {
			return st, err
		}
		st.Partitions++
		st.Records += restoredCount(r) - before
	}
	st.Took = time.Since(start)
	return st, nil
}

// offlineRunner is a Runner for a job that runs beside the processor
// rather than as it (restore, apply): connected and checked, but not
// consuming, and registering no metrics (they would collide with a live
// runner's). The caller closes r.admin.
func offlineRunner(ctx context.Context, spec Spec, cfg Config) (*Runner, error) {
	cfg.Registerer = nil
	r, err := NewRunner(spec, cfg)
	if err != nil {
		return nil, err
	}
	r.admin, err = NewClient(r.cfg.Brokers, r.cfg.ClientOpts)
	if err != nil {
		return nil, err
	}
	if err := r.checkTopics(ctx); err != nil {
		r.admin.Close()
		return nil, err
	}
	return r, nil
}

func restoredCount(r *Runner) int64 {
	return int64(readCounter(r.metrics.restoredRecords))
}

// Rederived is the result of re-deriving a processor's outputs from its
// inputs.
type Rederived struct {
	// Outputs are the re-derived records, per partition in processing
	// order, partitions ascending.
	Outputs []Output
	// Partitions were re-derived, into Dir/<processor>/<partition>, from
	// the inputs up to Ends (committed end offsets when it started).
	Partitions []int32
	Dir        string
	Ends       map[string]map[int32]int64
	// Inputs is the number of input records read.
	Inputs int64
	// DeadLetters counts inputs that would be dead-lettered.
	DeadLetters int64
}

// Rederive re-runs the processor over its inputs from the beginning to the
// committed end present when it starts, into a fresh state under dir (a
// new, empty directory; it is left there for inspection), and returns
// every output it would emit. It produces nothing and does not touch the
// running processor's state or group.
//
// Inputs of one partition are merged across the input topics exactly as
// the runner merges them live (merge.go: the head with the smallest
// record timestamp first, then input order, then offset; each
// partition's log order kept), so the re-derived history is the live one,
// intermediate decisions included.
func Rederive(ctx context.Context, spec Spec, cfg Config, dir string, parts []int32, progress Progress) (*Rederived, error) {
	cfg.setDefaults()
	if err := errors.Join(spec.Validate(), cfg.validate()); err != nil {
		return nil, err
	}
	adminCl, err := NewClient(cfg.Brokers, cfg.ClientOpts)
	if err != nil {
		return nil, err
	}
	defer adminCl.Close()
	adm := kadm.NewClient(adminCl)
	parts, err = partitionsOf(ctx, adm, spec.Inputs[0], parts)
	if err != nil {
		return nil, err
	}
	ends, err := adm.ListCommittedOffsets(ctx, spec.Inputs...)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("processors: listing input end offsets: %w", err)
	}
	out := &Rederived{Partitions: parts, Dir: dir, Ends: map[string]map[int32]int64{}}
	ends.Each(func(o kadm.ListedOffset) {
		if out.Ends[o.Topic] == nil {
			out.Ends[o.Topic] = map[int32]int64{}
		}
		out.Ends[o.Topic][o.Partition] = o.Offset
	})
	for _, p := range parts {
		if err := rederivePartition(ctx, spec, cfg, dir, p, ends, out, progress); err != nil {
			return out, err
		}
	}
	return out, nil
}

func rederivePartition(ctx context.Context, spec Spec, cfg Config, dir string, p int32, ends kadm.ListedOffsets, out *Rederived, progress Progress) error {
	var total int64
	assign := map[string]map[int32]kgo.Offset{}
	for _, t := range spec.Inputs {
		end, _ := ends.Lookup(t, p)
		total += end.Offset
		if end.Offset > 0 {
			assign[t] = map[int32]kgo.Offset{p: kgo.NewOffset().AtStart()}
		}
	}
	db, err := state.Open(state.Options{Dir: filepath.Join(dir, spec.Name, strconv.Itoa(int(p))), FS: cfg.FS, Cache: cfg.Cache, Logger: cfg.Logger})
	if err != nil {
		return err
	}
	defer db.Close()
	if len(assign) == 0 {
		return nil
	}
	cl, err := NewClient(cfg.Brokers, cfg.ClientOpts,
		kgo.ConsumePartitions(assign),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
	)
	if err != nil {
		return err
	}
	defer cl.Close()

	// Read the partition of every input up to its end, then merge them
	// as the runner does (merge.go): with every input read to its end,
	// the runner's merge never waits, and takes the same heads.
	queues := newQueues(spec.Inputs)
	pos := map[string]int64{}
	done := func() bool {
		for t := range assign {
			end, _ := ends.Lookup(t, p)
			if pos[t] < end.Offset {
				return false
			}
		}
		return true
	}
	var read int64
	for !done() {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return err
		}
		var ferr error
		fs.EachError(func(t string, _ int32, err error) { ferr = errors.Join(ferr, fmt.Errorf("%s: %w", t, err)) })
		if ferr != nil {
			return fmt.Errorf("processors: reading inputs of partition %d: %w", p, ferr)
		}
		fs.EachRecord(func(r *kgo.Record) {
			end, _ := ends.Lookup(r.Topic, p)
			if r.Offset >= end.Offset {
				return
			}
			pos[r.Topic] = r.Offset + 1
			read++
			if !r.Attrs.IsControl() {
				for _, q := range queues {
					if q.topic == r.Topic {
						q.recs = append(q.recs, r)
					}
				}
			}
		})
		if progress != nil {
			progress(p, read, total)
		}
	}
	var recs []*kgo.Record
	for {
		var best *inputQueue
		for _, q := range queues {
			if len(q.recs) > 0 && (best == nil || before(q.recs[0], q.idx, best.recs[0], best.idx)) {
				best = q
			}
		}
		if best == nil {
			break
		}
		recs = append(recs, best.recs[0])
		best.recs = best.recs[1:]
	}

	batch := db.NewBatch()
	defer batch.Close()
	proc := spec.New(p)
	c := NewContext(p, batch, func(o Output) { out.Outputs = append(out.Outputs, o) })
	flusher, _ := proc.(Flusher)
	for i, r := range recs {
		if flusher != nil && i > 0 && i%10000 == 0 {
			// Bound what the processor caches: the replay of a partition
			// is one long "transaction".
			if err := flusher.Flush(c); err != nil {
				return err
			}
			clear(c.cache)
		}
		out.Inputs++
		v, err := cfg.Codec.Decode(r.Value)
		if err != nil {
			out.DeadLetters++
			continue
		}
		err = proc.Process(c, &Input{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Key: r.Key, Timestamp: r.Timestamp, Record: v})
		var rej *RejectError
		switch {
		case errors.As(err, &rej):
			out.DeadLetters++
		case err != nil:
			return fmt.Errorf("processors: re-deriving %s/%d@%d: %w", r.Topic, p, r.Offset, err)
		}
	}
	if flusher != nil {
		if err := flusher.Flush(c); err != nil {
			return err
		}
	}
	return db.Commit(batch)
}

// ReadCommitted returns every committed record of topics up to their end
// offsets when it starts, as a read_committed consumer sees them, in fetch
// order (offset order within a partition). It is for bounded reads of
// decision and changelog topics: replay's diff, apply, dev's printout.
// opts are the process's shared client options (Config.ClientOpts: TLS,
// SASL).
func ReadCommitted(ctx context.Context, brokers, topics []string, opts ...kgo.Opt) ([]*kgo.Record, error) {
	if len(topics) == 0 {
		return nil, nil // listing no topics would list every topic of the cluster
	}
	cl, err := NewClient(brokers, opts,
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// Control records are returned so that the position can reach
		// the end offset, one past the last transaction's commit marker.
		kgo.KeepControlRecords(),
	)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ends, err := adm.ListCommittedOffsets(ctx, topics...)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, err
	}
	assign := map[string]map[int32]kgo.Offset{}
	remaining := map[string]map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset == 0 {
			return
		}
		if assign[o.Topic] == nil {
			assign[o.Topic] = map[int32]kgo.Offset{}
			remaining[o.Topic] = map[int32]int64{}
		}
		assign[o.Topic][o.Partition] = kgo.NewOffset().AtStart()
		remaining[o.Topic][o.Partition] = o.Offset
	})
	if len(assign) == 0 {
		return nil, nil
	}
	cl.AddConsumePartitions(assign)
	var out []*kgo.Record
	pos := map[string]map[int32]int64{}
	for t := range remaining {
		pos[t] = map[int32]int64{}
	}
	doneAll := func() bool {
		for t, ps := range remaining {
			for p, end := range ps {
				if pos[t][p] < end {
					return false
				}
			}
		}
		return true
	}
	for !doneAll() {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) { ferr = errors.Join(ferr, err) })
		if ferr != nil {
			return nil, ferr
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset >= remaining[r.Topic][r.Partition] {
				return
			}
			pos[r.Topic][r.Partition] = r.Offset + 1
			if !r.Attrs.IsControl() {
				out = append(out, r)
			}
		})
	}
	return out, nil
}
