package processors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// FollowerConfig configures a Follower.
type FollowerConfig struct {
	Brokers    []string
	ClientOpts []kgo.Opt
	// Topics are read whole, every partition.
	Topics []string
	Logger *slog.Logger
	// Apply is called with every data record (never a transaction
	// marker), in log order within each partition, from one goroutine.
	Apply func(r *kgo.Record)
}

// Follower reads topics whole, read_committed, from their beginning and
// keeps following them: the loader of a table every instance holds
// (Kafka Streams' global table). It reports itself loaded once it has
// read up to the ends (last stable offsets) the topics had when it
// started. Kafka faults are logged once per change and waited out; Run
// returns only when its context ends or a client cannot be made.
type Follower struct {
	cfg FollowerConfig

	mu     sync.Mutex
	ends   map[string]map[int32]int64 // at start; nil until listed
	pos    map[string]map[int32]int64
	loaded bool
	read   int64
	fault  string
}

// NewFollower returns a Follower of cfg.Topics.
func NewFollower(cfg FollowerConfig) *Follower {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Follower{cfg: cfg, pos: map[string]map[int32]int64{}}
}

// Loaded reports whether the follower has read what the topics held when
// it started, and how far it is: records read, and offsets still to read
// to the start ends (0 once loaded).
func (f *Follower) Loaded() (loaded bool, read, behind int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.loaded {
		behind = f.behindLocked()
		if f.ends == nil {
			behind = -1
		}
	}
	return f.loaded, f.read, behind
}

// Fault is the Kafka fault being waited out, "" if none.
func (f *Follower) Fault() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fault
}

func (f *Follower) behindLocked() int64 {
	var n int64
	for t, ps := range f.ends {
		for p, end := range ps {
			n += max(0, end-f.pos[t][p])
		}
	}
	return n
}

// Run follows the topics until ctx ends.
func (f *Follower) Run(ctx context.Context) error {
	cl, err := NewClient(f.cfg.Brokers, f.cfg.ClientOpts,
		kgo.ConsumeTopics(f.cfg.Topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// Markers are fetched too, so the position reaches the last
		// stable offset: how "loaded" is told.
		kgo.KeepControlRecords(),
	)
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	pause := 100 * time.Millisecond
	for ctx.Err() == nil {
		if f.ends == nil {
			if err := f.listEnds(ctx, adm); err != nil {
				f.faulted("listing the topics' ends", err)
				sleep(ctx, pause)
				pause = min(2*pause, 5*time.Second)
				continue
			}
		}
		f.checkLoaded()
		// Bounded, so that loading is noticed when nothing comes (the
		// topics are empty, or end in a transaction marker).
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		fs := cl.PollFetches(pctx)
		cancel()
		var ferr error
		fs.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
				ferr = fmt.Errorf("%s/%d: %w", t, p, err)
			}
		})
		if ferr != nil {
			f.faulted("fetching", ferr)
			sleep(ctx, pause)
			pause = min(2*pause, 5*time.Second)
			continue
		}
		pause = 100 * time.Millisecond
		fs.EachRecord(func(r *kgo.Record) {
			if !r.Attrs.IsControl() {
				f.cfg.Apply(r)
			}
			f.mu.Lock()
			if f.pos[r.Topic] == nil {
				f.pos[r.Topic] = map[int32]int64{}
			}
			f.pos[r.Topic][r.Partition] = r.Offset + 1
			if !r.Attrs.IsControl() {
				f.read++
			}
			f.mu.Unlock()
		})
		f.mu.Lock()
		if f.fault != "" {
			f.cfg.Logger.Info("following again", "topics", f.cfg.Topics, "after", f.fault)
			f.fault = ""
		}
		f.mu.Unlock()
		f.checkLoaded()
	}
	return nil
}

// checkLoaded marks the follower loaded once it has read to the ends
// listed at start.
func (f *Follower) checkLoaded() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.loaded && f.ends != nil && f.behindLocked() == 0 {
		f.loaded = true
		f.cfg.Logger.Info("table loaded", "topics", f.cfg.Topics, "records", f.read)
	}
}

func (f *Follower) listEnds(ctx context.Context, adm *kadm.Client) error {
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ends, err := adm.ListCommittedOffsets(lctx, f.cfg.Topics...)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return err
	}
	m := map[string]map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if m[o.Topic] == nil {
			m[o.Topic] = map[int32]int64{}
		}
		m[o.Topic][o.Partition] = o.Offset
	})
	f.mu.Lock()
	f.ends = m
	f.mu.Unlock()
	return nil
}

func (f *Follower) faulted(what string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	msg := what + ": " + err.Error()
	if msg != f.fault {
		f.cfg.Logger.Warn("waiting out a Kafka fault", "topics", f.cfg.Topics, "while", what, "err", err)
		f.fault = msg
	}
}
