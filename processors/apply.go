package processors

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/factory2/factory2/state"
)

// ApplyStats summarizes what Apply published.
type ApplyStats struct {
	// Published is the number of re-derived outputs that had never been
	// emitted and were published.
	Published int `json:"published"`
	// ChangelogRecords is the number of changelog records written to make
	// the stores those of the re-derivation (puts and tombstones).
	ChangelogRecords int `json:"changelog_records"`
	// Offsets is the number of input partitions whose group offset was
	// moved to the end the re-derivation read to.
	Offsets int `json:"offsets"`
}

// Apply makes a re-derivation the processor's history, in one Kafka
// transaction: it publishes the re-derived outputs that were never
// emitted (by envelope id), rewrites each store's changelog to the
// re-derived state (puts where a value differs, tombstones for keys the
// re-derivation does not have), and moves the processor group's offsets
// to the input offsets the re-derivation read to. Instances restore the
// rewritten changelog tail when they start, and continue after those
// offsets: nothing is processed twice and nothing is skipped.
//
// Outputs that were emitted but not re-derived cannot be taken back; Diff
// lists them. The processor must be stopped: Apply refuses a group with
// members, and joins it itself for the commit. It also refuses, changing
// nothing, a re-derivation the group has consumed past (the processor ran
// after it was made): that one must be made again.
func Apply(ctx context.Context, spec Spec, cfg Config, red *Rederived) (ApplyStats, error) {
	var st ApplyStats
	r, err := offlineRunner(ctx, spec, cfg)
	if err != nil {
		return st, err
	}
	defer r.admin.Close()
	adm := kadm.NewClient(r.admin)
	groups, err := adm.DescribeGroups(ctx, r.group)
	if err != nil {
		return st, fmt.Errorf("processors: describing group %s: %w", r.group, err)
	}
	if g, ok := groups[r.group]; ok && len(g.Members) > 0 {
		return st, fmt.Errorf("processors: %s: %d instances are running (group %s is %s): stop them before applying a re-derivation", spec.Name, len(g.Members), r.group, g.State)
	}

	// What to publish: outputs never emitted.
	diff, err := Diff(ctx, cfg, red.Outputs, spec.Outputs)
	if err != nil {
		return st, err
	}
	add := map[string]bool{}
	for _, d := range diff {
		if d.Change == "add" {
			add[d.ID] = true
		}
	}

	assigned := make(chan struct{}, 1)
	want := len(spec.Inputs) * len(red.Partitions)
	sess, err := newSession(r.cfg.Brokers, r.cfg.ClientOpts,
		kgo.TransactionalID(r.txnID+"/apply"),
		kgo.TransactionTimeout(r.cfg.TransactionTimeout),
		kgo.ConsumerGroup(r.group),
		kgo.ConsumeTopics(spec.Inputs...),
		kgo.Balancers(kgo.RangeBalancer()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.RequireStableFetchOffsets(),
		kgo.RecordPartitioner(partitioner(r.changelogs, r.spec.PartitionedOutputs)),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			n := 0
			for _, ps := range m {
				n += len(ps)
			}
			if n >= want {
				select {
				case assigned <- struct{}{}:
				default:
				}
			}
		}),
	)
	if err != nil {
		return st, err
	}
	defer sess.Close()
	// Join the group (as its only member, so with every partition).
	for joined := false; !joined; {
		pctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		fs := sess.PollFetches(pctx)
		cancel()
		if err := ctx.Err(); err != nil {
			return st, err
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				ferr = errors.Join(ferr, err)
			}
		})
		if ferr != nil {
			return st, fmt.Errorf("processors: joining group %s: %w", r.group, ferr)
		}
		select {
		case <-assigned:
			joined = true
		default:
		}
	}

	if err := sess.Begin(); err != nil {
		return st, err
	}
	var (
		mu         sync.Mutex
		produceErr error
	)
	produce := func(rec *kgo.Record) {
		sess.Produce(ctx, rec, func(_ *kgo.Record, err error) {
			mu.Lock()
			defer mu.Unlock()
			if err != nil && produceErr == nil {
				produceErr = err
			}
		})
	}
	for _, o := range red.Outputs {
		if !add[o.Record.Env().ID] {
			continue
		}
		v, err := r.cfg.Codec.Encode(o.Record)
		if err != nil {
			return st, err
		}
		produce(&kgo.Record{Topic: o.Topic, Partition: o.Partition, Key: o.Key, Value: v})
		st.Published++
	}
	for _, store := range spec.Stores {
		n, err := r.rewriteChangelog(ctx, red, store, produce)
		if err != nil {
			_, _ = sess.End(context.WithoutCancel(ctx), kgo.TryAbort)
			return st, err
		}
		st.ChangelogRecords += n
	}
	offsets := map[string]map[int32]kgo.EpochOffset{}
	for _, t := range spec.Inputs {
		for _, p := range red.Partitions {
			if offsets[t] == nil {
				offsets[t] = map[int32]kgo.EpochOffset{}
			}
			offsets[t][p] = kgo.EpochOffset{Epoch: -1, Offset: red.Ends[t][p]}
			st.Offsets++
		}
	}
	sess.Client().SetOffsets(offsets)
	if err := sess.Client().Flush(ctx); err != nil {
		return st, err
	}
	if err := r.checkGroupWithin(ctx, red); err != nil {
		_, _ = sess.End(context.WithoutCancel(ctx), kgo.TryAbort)
		return st, err
	}
	mu.Lock()
	failed := produceErr
	mu.Unlock()
	try := kgo.TryCommit
	if failed != nil {
		try = kgo.TryAbort
	}
	committed, err := sess.End(ctx, try)
	switch {
	case err != nil:
		return st, fmt.Errorf("processors: applying: %w", err)
	case failed != nil:
		return st, fmt.Errorf("processors: applying: %w", failed)
	case !committed:
		return st, errors.New("processors: applying: the transaction aborted (did an instance start?); nothing was changed")
	}
	return st, nil
}

// checkGroupWithin refuses a re-derivation that the processor's group has
// consumed past: the processor ran after the re-derivation fixed its input
// ends, so moving the group back to them would make the next run process
// those inputs again and emit their decisions twice. Apply calls it as the
// group's only member (no one else can commit offsets) and inside its
// transaction, before committing.
func (r *Runner) checkGroupWithin(ctx context.Context, red *Rederived) error {
	committed, err := kadm.NewClient(r.admin).FetchOffsets(kadm.RequireStable(ctx), r.group)
	if err != nil {
		return fmt.Errorf("processors: fetching the offsets of group %s: %w", r.group, err)
	}
	var errs []error
	committed.EachError(func(o kadm.OffsetResponse) {
		errs = append(errs, fmt.Errorf("%s/%d: %w", o.Topic, o.Partition, o.Err))
	})
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("processors: fetching the offsets of group %s: %w", r.group, err)
	}
	var past []string
	for _, t := range r.spec.Inputs {
		for _, p := range red.Partitions {
			o, ok := committed.Lookup(t, p)
			if ok && o.At > red.Ends[t][p] {
				past = append(past, fmt.Sprintf("%s/%d: committed offset %d, re-derived up to %d", t, p, o.At, red.Ends[t][p]))
			}
		}
	}
	if len(past) > 0 {
		return fmt.Errorf("processors: %s consumed past the re-derivation since it was made (%s): applying it would make the processor process those inputs again; re-run the re-derivation (factory2 replay rederive --apply) while it is stopped. Nothing was changed",
			r.spec.Name, strings.Join(past, "; "))
	}
	return nil
}

// rewriteChangelog produces the records that turn store's changelog into
// the re-derived state: a put for every key whose value differs, a
// tombstone for every key the re-derivation does not have.
func (r *Runner) rewriteChangelog(ctx context.Context, red *Rederived, store string, produce func(*kgo.Record)) (int, error) {
	topic := r.changelogs[store]
	recs, err := ReadCommitted(ctx, r.cfg.Brokers, []string{topic}, r.cfg.ClientOpts...)
	if err != nil {
		return 0, fmt.Errorf("processors: reading changelog %s: %w", topic, err)
	}
	current := map[int32]map[string][]byte{}
	for _, rec := range recs {
		if current[rec.Partition] == nil {
			current[rec.Partition] = map[string][]byte{}
		}
		if rec.Value == nil {
			delete(current[rec.Partition], string(rec.Key))
		} else {
			current[rec.Partition][string(rec.Key)] = rec.Value
		}
	}
	n := 0
	for _, p := range red.Partitions {
		db, err := state.Open(state.Options{Dir: filepath.Join(red.Dir, r.spec.Name, strconv.Itoa(int(p))), FS: r.cfg.FS, Cache: r.cfg.Cache, Logger: r.cfg.Logger, ReadOnly: true})
		if err != nil {
			return n, err
		}
		fresh := map[string]bool{}
		err = db.Scan(store, nil, nil, func(k, v []byte) error {
			fresh[string(k)] = true
			if old, ok := current[p][string(k)]; ok && bytes.Equal(old, v) {
				return nil
			}
			produce(&kgo.Record{Topic: topic, Partition: p, Key: slices.Clone(k), Value: slices.Clone(v)})
			n++
			return nil
		})
		db.Close()
		if err != nil {
			return n, err
		}
		for _, k := range slices.Sorted(func(yield func(string) bool) {
			for k := range current[p] {
				if !yield(k) {
					return
				}
			}
		}) {
			if !fresh[k] {
				produce(&kgo.Record{Topic: topic, Partition: p, Key: []byte(k)})
				n++
			}
		}
	}
	return n, nil
}
