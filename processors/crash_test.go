package processors_test

// Crash and rebalance tests against the real broker: counter runners run in
// child processes (see TestMain), which the tests SIGKILL, terminate and
// restart while events stream in. Whatever happened, a read_committed
// consumer must see every key's outputs as exactly 1..n (a gap is a lost
// decision, a repeat a duplicate), n must be the key's number of events,
// the changelog must end at those counts, and no local Pebble state may be
// ahead of the changelog or behind the changelog offset it recorded.
//
// FACTORY2_CRASH_SEED=<n> replays the random choices (keys, kill delays,
// which restart loses its state) of a logged run; the interleaving with the
// broker is not replayed.

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/factory2/factory2/avro"
	"github.com/factory2/factory2/internal/kafkatest"
	"github.com/factory2/factory2/processors"
	"github.com/factory2/factory2/state"
	"github.com/factory2/factory2/topics"
)

const envCrashSeed = "FACTORY2_CRASH_SEED"

// Bounds of the waits of the crash tests. A SIGKILLed member keeps its
// partitions until its session (childSessionTimeout) expires, so a restart
// takes that long to be assigned anything.
const (
	assignTimeout = 45 * time.Second
	drainTimeout  = 90 * time.Second
	stopTimeout   = 30 * time.Second
)

func TestCrashKill9NoLossNoDuplicates(t *testing.T) {
	kafkatest.RequireReal(t)
	for _, tc := range []struct {
		name string
		// wipe: one restart, chosen by the seed, runs on a deleted state
		// directory and restores every task from the changelog.
		wipe bool
	}{
		{name: "local-state-survives", wipe: false},
		{name: "one-restart-loses-state", wipe: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			begin := time.Now()
			e := newCrashEnv(t, 3)
			const events, kills = 20000, 6
			keys := 7 + e.rng.IntN(44)
			wipeAt := -1
			if tc.wipe {
				wipeAt = 1 + e.rng.IntN(kills-1)
			}
			dir := t.TempDir()

			c := e.start("a", dir)
			e.waitOwns(c, 3)
			// 800 batches of 25 events, one every 50ms: a steady
			// stream (transactions are open most of the time) over
			// most of the kills (each restart waits for the dead
			// member's session to expire).
			s := e.stream(events, keys, 25, 50*time.Millisecond)
			out := e.outputs()
			for i := range kills {
				delay := 300*time.Millisecond + time.Duration(e.rng.Int64N(int64(1700*time.Millisecond)))
				time.Sleep(delay) // a random crash point, not a wait for a condition
				e.kill9(c, fmt.Sprintf("kill %d/%d, %v after its assignment, %d events produced", i+1, kills, delay.Round(time.Millisecond), s.produced.Load()))
				if i == wipeAt {
					if err := os.RemoveAll(dir); err != nil {
						t.Fatal(err)
					}
					t.Logf("deleted the state directory: the next incarnation restores every task from the changelog")
				}
				c = e.start("a", dir)
				e.waitOwns(c, 3)
			}
			s.wait(t)
			out.waitTotal(events)
			e.term(c)
			out.check(s.perKey)
			e.checkChangelogAndState(s.perKey, dir)
			wiped := "no restart lost its state"
			if tc.wipe {
				wiped = fmt.Sprintf("restart %d ran on a deleted state directory", wipeAt+1)
				if e.restoredRecords == 0 {
					t.Errorf("no incarnation restored a changelog record, though one ran on a deleted state directory")
				}
			}
			t.Logf("proved: %d events over %d keys, %d SIGKILLs (%s; %d changelog records restored; "+
				"%d outputs of aborted transactions): every key's outputs are exactly 1..n with n its event count, "+
				"the changelog ends at those counts, local state is consistent; took %v",
				events, keys, kills, wiped, e.restoredRecords, e.abortedOutputs(events), time.Since(begin).Round(time.Second))
		})
	}
}

func TestTwoInstancesRebalanceNoLossNoDuplicates(t *testing.T) {
	kafkatest.RequireReal(t)
	begin := time.Now()
	e := newCrashEnv(t, 6)
	const events = 20000
	keys := 7 + e.rng.IntN(44)
	dirA, dirB := t.TempDir(), t.TempDir()

	a := e.start("a", dirA)
	e.waitOwns(a, 6)
	// 800 batches of 25 events, one every 30ms.
	s := e.stream(events, keys, 25, 30*time.Millisecond)
	out := e.outputs()

	e.waitProduced(s, events/5)
	b := e.start("b", dirB)
	e.waitSplit(a, b) // cooperative rebalance: some of a's partitions move to b
	e.logOwners("b joined", a, b)

	e.waitProduced(s, 2*events/5)
	e.term(a) // graceful: commits, leaves the group; b takes a's partitions
	e.waitOwns(b, 6)
	e.logOwners("a left", b)

	// a comes back on its old state directory: the partitions that move
	// back restore the changelog tail b wrote meanwhile.
	e.waitProduced(s, 3*events/5)
	a = e.start("a", dirA)
	e.waitSplit(a, b)
	e.logOwners("a rejoined on its old state", a, b)

	delay := 300*time.Millisecond + time.Duration(e.rng.Int64N(int64(1700*time.Millisecond)))
	time.Sleep(delay) // a random crash point
	e.kill9(b, fmt.Sprintf("%v after the split, %d events produced", delay.Round(time.Millisecond), s.produced.Load()))
	b = e.start("b", dirB)
	e.waitSplit(a, b)
	e.logOwners("b restarted after SIGKILL", a, b)

	s.wait(t)
	out.waitTotal(events)
	e.term(a)
	e.term(b)
	out.check(s.perKey)
	e.checkChangelogAndState(s.perKey, dirA, dirB)
	t.Logf("proved: %d events over %d keys through a join, a graceful leave, a rejoin on stale state and a "+
		"SIGKILL with restart (%d partition assignments, %d changelog records restored, %d transactions aborted "+
		"by the runners, %d outputs of aborted transactions): every key's outputs are exactly 1..n with n its "+
		"event count, the changelog ends at those counts, local state is consistent; took %v",
		events, keys, e.assignments, e.restoredRecords, e.aborts, e.abortedOutputs(events), time.Since(begin).Round(time.Second))
}

// crashEnv is one scenario: its topics, the child runners it started and
// the random choices of its seed.
type crashEnv struct {
	t      *testing.T
	f      *fixture
	rng    *rand.Rand
	logDir string
	// partitions of the input topic (and of the changelog).
	partitions int
	// changelog is the counter's changelog topic.
	changelog string
	// runs counts the incarnations started per instance.
	runs map[string]int
	// Totals over the children that ended, from their logs.
	assignments     int
	restoredRecords int64
	aborts          int
}

func newCrashEnv(t *testing.T, partitions int32) *crashEnv {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv(envCrashSeed); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("%s=%q: %v", envCrashSeed, s, err)
		}
	}
	t.Logf("seed %d (replay the random choices with %s=%d)", seed, envCrashSeed, seed)

	f := newFixture(t, partitions)
	e := &crashEnv{
		t:          t,
		f:          f,
		rng:        rand.New(rand.NewPCG(seed, seed)),
		partitions: int(partitions),
		logDir:     t.ArtifactDir(),
		changelog:  f.cat.AddChangelog(f.spec().Name, "counts"),
		runs:       map[string]int{},
	}
	f.ensure(t)
	// Registered before any child starts, so it runs after their cleanups
	// have killed them.
	adm := kafkatest.Admin(t, f.env)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		resp, err := adm.DeleteTopics(ctx, topics.Names(f.cat.Specs())...)
		if err == nil {
			err = resp.Error()
		}
		if err != nil {
			t.Logf("deleting the test's topics: %v", err)
		}
	})
	return e
}

// childProc is one incarnation of a child runner.
type childProc struct {
	name    string // instance#incarnation
	pid     int
	cmd     *exec.Cmd
	logPath string
	started time.Time
	done    chan struct{} // closed when the process has exited
	err     error         // cmd.Wait's; read after done
}

func (c *childProc) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// start starts an incarnation of instance on stateDir. Its stdout and
// stderr go to a file in the test's artifact directory; the test's
// cleanup kills it if it still runs.
func (e *crashEnv) start(instance, stateDir string) *childProc {
	t := e.t
	t.Helper()
	e.runs[instance]++
	c := &childProc{name: fmt.Sprintf("%s#%d", instance, e.runs[instance]), done: make(chan struct{})}
	c.logPath = filepath.Join(e.logDir, fmt.Sprintf("child-%s-%d.log", instance, e.runs[instance]))
	logf, err := os.Create(c.logPath)
	if err != nil {
		t.Fatal(err)
	}
	// -test.run=^$: were TestMain not to take the child branch, it would
	// still run no test.
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(),
		envChild+"=1",
		envChildBrokers+"="+strings.Join(e.f.env.Brokers(), ","),
		envChildPrefix+"="+e.f.cat.Prefix(),
		envChildInstance+"="+instance,
		envChildStateDir+"="+stateDir,
	)
	cmd.Stdout, cmd.Stderr = logf, logf
	// The child exits when its stdin reaches EOF, which happens when this
	// process dies without its cleanups running. Wait closes the pipe.
	if _, err := cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		t.Fatalf("starting child %s: %v", c.name, err)
	}
	c.cmd, c.pid, c.started = cmd, cmd.Process.Pid, time.Now()
	go func() {
		c.err = cmd.Wait()
		_ = logf.Close()
		close(c.done)
	}()
	t.Cleanup(func() {
		if !c.exited() {
			_ = cmd.Process.Kill()
		}
		<-c.done
		if t.Failed() {
			t.Logf("%s: last lines of %s:\n%s", c.name, c.logPath, tail(c.logPath, 30))
		}
	})
	t.Logf("started %s (pid %d, state %s)", c.name, c.pid, stateDir)
	return c
}

// kill9 SIGKILLs c, which must still be running, and waits for its end.
func (e *crashEnv) kill9(c *childProc, why string) {
	t := e.t
	t.Helper()
	if c.exited() {
		t.Fatalf("%s exited on its own (%v) before being killed:\n%s", c.name, c.err, tail(c.logPath, 30))
	}
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("SIGKILL %s: %v", c.name, err)
	}
	<-c.done // SIGKILL cannot be caught: the wait is short
	if code := c.cmd.ProcessState.ExitCode(); code != -1 {
		t.Fatalf("%s exited with code %d, not by the SIGKILL:\n%s", c.name, code, tail(c.logPath, 30))
	}
	l := e.ended(c)
	t.Logf("SIGKILLed %s (%s): it owned %v; %d restores of %d records, %d aborted transactions",
		c.name, why, l.owned, l.restores, l.restored, l.aborts)
}

// term SIGTERMs c and waits for its graceful stop, which must succeed.
func (e *crashEnv) term(c *childProc) {
	t := e.t
	t.Helper()
	if c.exited() {
		t.Fatalf("%s exited on its own (%v) before being terminated:\n%s", c.name, c.err, tail(c.logPath, 30))
	}
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM %s: %v", c.name, err)
	}
	begin := time.Now()
	select {
	case <-c.done:
	case <-time.After(stopTimeout):
		t.Fatalf("%s did not stop within %v of SIGTERM:\n%s", c.name, stopTimeout, tail(c.logPath, 30))
	}
	if c.err != nil {
		t.Fatalf("%s stopped with %v (a SIGTERM during a commit fails the stop: see "+
			"TestRunnerStopDuringCommitIsGraceful):\n%s", c.name, c.err, tail(c.logPath, 30))
	}
	l := e.ended(c)
	t.Logf("terminated %s in %v after %v: %d restores of %d records, %d aborted transactions",
		c.name, time.Since(begin).Round(time.Millisecond), begin.Sub(c.started).Round(time.Second), l.restores, l.restored, l.aborts)
}

// ended reads the log of c, which has exited, adds it to the totals and
// fails the test on a data race or error the child reported.
func (e *crashEnv) ended(c *childProc) childLog {
	e.t.Helper()
	l := e.readLog(c)
	if len(l.problems) > 0 {
		e.t.Errorf("%s reported problems:\n%s", c.name, strings.Join(l.problems, "\n"))
	}
	e.assignments += l.assigned
	e.restoredRecords += l.restored
	e.aborts += l.aborts
	return l
}

// childLog is what a child's log says about its incarnation.
type childLog struct {
	owned    []int32 // partitions it owns at the end of the log
	assigned int     // partition assignments
	restores int     // store restores
	restored int64   // changelog records restored
	aborts   int     // aborted transactions
	problems []string
}

func (e *crashEnv) readLog(c *childProc) childLog {
	e.t.Helper()
	fh, err := os.Open(c.logPath)
	if err != nil {
		e.t.Fatal(err)
	}
	defer fh.Close()
	var l childLog
	owned := map[int32]bool{}
	sc := bufio.NewScanner(fh)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		var rec struct {
			Level     string `json:"level"`
			Msg       string `json:"msg"`
			Partition *int32 `json:"partition"`
			Records   int64  `json:"records"`
		}
		if !strings.HasPrefix(line, "{") || json.Unmarshal([]byte(line), &rec) != nil {
			// Not a log record: a race report or a panic.
			if strings.Contains(line, "DATA RACE") || strings.HasPrefix(line, "panic:") || strings.HasPrefix(line, "fatal error:") {
				l.problems = append(l.problems, line)
			}
			continue
		}
		switch {
		case rec.Level == "ERROR":
			l.problems = append(l.problems, line)
		case rec.Msg == "partition assigned" && rec.Partition != nil:
			owned[*rec.Partition] = true
			l.assigned++
		case strings.HasPrefix(rec.Msg, "partition ") && rec.Partition != nil:
			// Revoked or lost (while restoring, too), or its session closed.
			delete(owned, *rec.Partition)
		case rec.Msg == "restored state from changelog":
			l.restores++
			l.restored += rec.Records
		case strings.HasPrefix(rec.Msg, "transaction aborted"):
			l.aborts++
		}
	}
	if err := sc.Err(); err != nil {
		e.t.Fatalf("reading %s: %v", c.logPath, err)
	}
	for p := range owned {
		l.owned = append(l.owned, p)
	}
	slices.Sort(l.owned)
	return l
}

// alive fails the test if one of cs has exited.
func (e *crashEnv) alive(cs ...*childProc) {
	e.t.Helper()
	for _, c := range cs {
		if c.exited() {
			e.t.Fatalf("%s exited unexpectedly (%v):\n%s", c.name, c.err, tail(c.logPath, 30))
		}
	}
}

// waitOwns waits until c owns n partitions.
func (e *crashEnv) waitOwns(c *childProc, n int) {
	e.t.Helper()
	kafkatest.WaitFor(e.t, assignTimeout, func() error {
		e.alive(c)
		if got := e.readLog(c).owned; len(got) != n {
			return fmt.Errorf("%s owns partitions %v, want %d of them", c.name, got, n)
		}
		return nil
	})
}

// waitSplit waits until a and b share all partitions, each owning some.
func (e *crashEnv) waitSplit(a, b *childProc) {
	e.t.Helper()
	want := e.partitions
	kafkatest.WaitFor(e.t, assignTimeout, func() error {
		e.alive(a, b)
		pa, pb := e.readLog(a).owned, e.readLog(b).owned
		all := map[int32]bool{}
		for _, p := range append(slices.Clone(pa), pb...) {
			all[p] = true
		}
		if len(pa) == 0 || len(pb) == 0 || len(pa)+len(pb) != want || len(all) != want {
			return fmt.Errorf("%s owns %v and %s owns %v; want a split of all %d partitions", a.name, pa, b.name, pb, want)
		}
		return nil
	})
}

func (e *crashEnv) logOwners(when string, cs ...*childProc) {
	e.t.Helper()
	var parts []string
	for _, c := range cs {
		l := e.readLog(c)
		parts = append(parts, fmt.Sprintf("%s owns %v (%d assignments, %d restores of %d records so far)", c.name, l.owned, l.assigned, l.restores, l.restored))
	}
	e.t.Logf("%s: %s", when, strings.Join(parts, "; "))
}

// stream produces events in the background, in batches, at a pace.
type stream struct {
	produced atomic.Int64
	// perKey is the number of events of each key, fixed up front.
	perKey map[string]int
	done   chan struct{}
	err    error // read after done
}

func eventKey(i, keys int) string { return fmt.Sprintf("pkg%d-1.0-1.fc42", i%keys) }

// stream starts producing events events over keys keys, batch at a time,
// one batch per pace, with an idempotent (non-transactional) producer: each
// event is in the input topic exactly once.
func (e *crashEnv) stream(events, keys, batch int, pace time.Duration) *stream {
	t := e.t
	t.Helper()
	s := &stream{perKey: map[string]int{}, done: make(chan struct{})}
	for i := range events {
		s.perKey[eventKey(i, keys)]++
	}
	cl := kafkatest.Client(t, e.f.env, kgo.DefaultProduceTopic(e.f.in))
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); <-s.done })
	go func() {
		defer close(s.done)
		tick := time.NewTicker(pace)
		defer tick.Stop()
		for from := 0; from < events; from += batch {
			to := min(from+batch, events)
			rs := make([]*kgo.Record, 0, to-from)
			for i := from; i < to; i++ {
				ev := &avro.BuildEvent{NVR: eventKey(i, keys), Kind: avro.BuildTag}
				ev.ID = fmt.Sprintf("ev-%d", i)
				v, err := jsonCodec{}.Encode(ev)
				if err != nil {
					s.err = err
					return
				}
				rs = append(rs, &kgo.Record{Key: []byte(ev.NVR), Value: v})
			}
			pctx, pcancel := context.WithTimeout(ctx, 30*time.Second)
			err := cl.ProduceSync(pctx, rs...).FirstErr()
			pcancel()
			if err != nil {
				s.err = fmt.Errorf("producing events %d..%d: %w", from, to, err)
				return
			}
			s.produced.Store(int64(to))
			select {
			case <-ctx.Done():
				s.err = ctx.Err()
				return
			case <-tick.C:
			}
		}
	}()
	return s
}

// wait waits until every event is produced.
func (s *stream) wait(t *testing.T) {
	t.Helper()
	select {
	case <-s.done:
	case <-time.After(drainTimeout):
		t.Fatalf("events still being produced after %v (%d so far)", drainTimeout, s.produced.Load())
	}
	if s.err != nil {
		t.Fatal(s.err)
	}
}

func (e *crashEnv) waitProduced(s *stream, n int) {
	e.t.Helper()
	kafkatest.WaitFor(e.t, drainTimeout, func() error {
		if got := s.produced.Load(); got < int64(n) {
			return fmt.Errorf("%d events produced, waiting for %d", got, n)
		}
		return nil
	})
}

// outputChecker consumes the committed outputs as they come and checks
// that each key's counts go 1, 2, 3, ... A violation is final: a
// read_committed consumer never sees a committed record go away.
type outputChecker struct {
	t    *testing.T
	cl   *kgo.Client
	last map[string]int // last count per key
	n    int            // outputs seen
	err  error
}

func (e *crashEnv) outputs() *outputChecker {
	e.t.Helper()
	return &outputChecker{
		t: e.t,
		cl: kafkatest.Client(e.t, e.f.env,
			kgo.ConsumeTopics(e.f.out),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		),
		last: map[string]int{},
	}
}

// poll reads the outputs committed by now.
func (o *outputChecker) poll() error {
	for o.err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		fs := o.cl.PollFetches(ctx)
		cancel()
		fs.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				o.err = errors.Join(o.err, fmt.Errorf("fetching outputs %s/%d: %w", topic, p, err))
			}
		})
		if fs.NumRecords() == 0 {
			break
		}
		fs.EachRecord(func(r *kgo.Record) {
			o.n++
			v, err := jsonCodec{}.Decode(r.Value)
			if err != nil {
				o.err = errors.Join(o.err, fmt.Errorf("output %d@%d: %w", r.Partition, r.Offset, err))
				return
			}
			c, err := strconv.Atoi(v.(*avro.BuildEvent).Release)
			k := string(r.Key)
			if err != nil || c != o.last[k]+1 {
				kind := "a duplicated"
				if c > o.last[k]+1 {
					kind = "a lost"
				}
				o.err = errors.Join(o.err, fmt.Errorf("key %s: output count %q after %d at %d@%d: %s decision",
					k, v.(*avro.BuildEvent).Release, o.last[k], r.Partition, r.Offset, kind))
			}
			o.last[k] = c
		})
	}
	return o.err
}

// waitTotal waits until n outputs are committed, failing at the first
// lost or duplicated one.
func (o *outputChecker) waitTotal(n int) {
	o.t.Helper()
	kafkatest.WaitFor(o.t, drainTimeout, func() error {
		if err := o.poll(); err != nil {
			o.t.Fatal(err)
		}
		if o.n < n {
			return fmt.Errorf("%d of %d outputs committed", o.n, n)
		}
		return nil
	})
}

// check reads what is left (the runners have stopped) and compares every
// key's last count with its number of events: the final state of the
// crashed runs equals that of a clean run, which counts every event once.
func (o *outputChecker) check(perKey map[string]int) {
	o.t.Helper()
	if err := o.poll(); err != nil {
		o.t.Fatal(err)
	}
	want := 0
	for _, n := range perKey {
		want += n
	}
	if o.n != want {
		o.t.Errorf("%d outputs, want one per event: %d", o.n, want)
	}
	for k, n := range perKey {
		if o.last[k] != n {
			o.t.Errorf("key %s: last output count %d, want its %d events", k, o.last[k], n)
		}
	}
	for k := range o.last {
		if _, ok := perKey[k]; !ok {
			o.t.Errorf("output for key %s, which no event has", k)
		}
	}
}

// clRecord is one committed changelog record of the counter.
type clRecord struct {
	offset int64
	key    string
	count  uint64
}

// scan calls fn with every record of topic, control records included,
// from the start of each partition to its end: the last stable offset for
// read_committed, the high watermark for read_uncommitted. Call it when the
// runners have stopped.
func (e *crashEnv) scan(topic string, level kgo.IsolationLevel, fn func(*kgo.Record)) {
	t := e.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
	defer cancel()
	adm := kafkatest.Admin(t, e.f.env)
	list := adm.ListEndOffsets
	if level == kgo.ReadCommitted() {
		list = adm.ListCommittedOffsets
	}
	ends, err := list(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		t.Fatalf("end offsets of %s: %v", topic, err)
	}
	pos := map[int32]int64{}
	from := map[int32]kgo.Offset{}
	ends.Each(func(o kadm.ListedOffset) {
		pos[o.Partition] = 0
		from[o.Partition] = kgo.NewOffset().AtStart()
	})
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(e.f.env.Brokers()...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: from}),
		kgo.FetchIsolationLevel(level),
		kgo.KeepControlRecords(), // so the position reaches the end, past the last commit marker
	)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	done := func() bool {
		for p, at := range pos {
			if end, _ := ends.Lookup(topic, p); at < end.Offset {
				return false
			}
		}
		return true
	}
	for !done() {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("reading %s: %v (at %v, ends %v)", topic, err, pos, ends)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("reading %s/%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			pos[r.Partition] = r.Offset + 1
			fn(r)
		})
	}
}

// readChangelog reads every committed changelog record, per partition in
// offset order.
func (e *crashEnv) readChangelog() map[int32][]clRecord {
	t := e.t
	t.Helper()
	out := map[int32][]clRecord{}
	e.scan(e.changelog, kgo.ReadCommitted(), func(r *kgo.Record) {
		if r.Attrs.IsControl() {
			return
		}
		if len(r.Value) != 8 {
			t.Fatalf("changelog %d@%d: key %s has a %d-byte value", r.Partition, r.Offset, r.Key, len(r.Value))
		}
		out[r.Partition] = append(out[r.Partition], clRecord{r.Offset, string(r.Key), binary.BigEndian.Uint64(r.Value)})
	})
	return out
}

// abortedOutputs counts the output records that aborted transactions
// wrote: what a read_uncommitted consumer sees beyond the committed ones.
// Crashes in the middle of a transaction leave them; the runtime's own
// aborts (rebalances) too.
func (e *crashEnv) abortedOutputs(committed int) int {
	e.t.Helper()
	all := 0
	e.scan(e.f.out, kgo.ReadUncommitted(), func(r *kgo.Record) {
		if !r.Attrs.IsControl() {
			all++
		}
	})
	return all - committed
}

// checkChangelogAndState checks that the changelog's last value of every
// key is its event count, and that the local state in each of dirs (whose
// runners have stopped) holds, for every key, a count no higher than the
// changelog's last (Pebble is never ahead of Kafka) and no lower than the
// changelog's value at the changelog offset the task recorded (a task's
// state covers the changelog up to its recorded offset).
func (e *crashEnv) checkChangelogAndState(perKey map[string]int, dirs ...string) {
	t := e.t
	t.Helper()
	cl := e.readChangelog()
	final := map[string]uint64{}
	home := map[string]int32{}
	records := 0
	for p, rs := range cl {
		records += len(rs)
		for _, r := range rs {
			if q, ok := home[r.key]; ok && q != p {
				t.Errorf("key %s is in changelog partitions %d and %d", r.key, q, p)
			}
			home[r.key] = p
			if r.count < final[r.key] {
				t.Errorf("changelog %d@%d: key %s goes back from %d to %d", p, r.offset, r.key, final[r.key], r.count)
			}
			final[r.key] = r.count
		}
	}
	for k, n := range perKey {
		if final[k] != uint64(n) {
			t.Errorf("changelog: key %s ends at %d, want its %d events", k, final[k], n)
		}
	}

	checked := 0
	for _, dir := range dirs {
		for p, rs := range cl {
			path := filepath.Join(dir, e.f.spec().Name, strconv.Itoa(int(p)))
			if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
				continue // this runner never had the partition (since its state was deleted)
			}
			db, err := state.Open(state.Options{Dir: path, ReadOnly: true})
			if err != nil {
				t.Fatalf("opening %s: %v", path, err)
			}
			// The runtime's name of the store's changelog offset (task.go).
			at, _, err := db.Offset("changelog/counts")
			if err != nil {
				t.Fatalf("%s: changelog offset: %v", path, err)
			}
			covered := map[string]uint64{}
			for _, r := range rs {
				if r.offset < at {
					covered[r.key] = r.count
				}
			}
			local := map[string]uint64{}
			err = db.Scan("counts", nil, nil, func(k, v []byte) error {
				local[string(k)] = binary.BigEndian.Uint64(v)
				return nil
			})
			if cerr := db.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				t.Fatalf("reading %s: %v", path, err)
			}
			for k, n := range local {
				if n > final[k] {
					t.Errorf("%s: key %s is %d, ahead of the changelog's %d", path, k, n, final[k])
				}
			}
			for k, n := range covered {
				if local[k] < n {
					t.Errorf("%s: key %s is %d, behind the changelog's %d at the recorded offset %d", path, k, local[k], n, at)
				}
			}
			checked++
		}
	}
	t.Logf("changelog: %d committed records over %d partitions end at every key's event count; %d local task states are consistent with it",
		records, len(cl), checked)
}

// tail returns the last n lines of the file at path.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// TestRunnerStopCommitsOnlyProcessedRecords stops a runner (cancels Run's
// context) at the moment PollRecords hands it records while its
// transaction is open. Those records count as consumed for the session
// (their offsets are in UncommittedOffsets from the moment they are
// polled), so the commit that Run makes on the way out must either include
// their processing or not commit their offsets. The restarted runner must
// then produce an output for every event.
func TestRunnerStopCommitsOnlyProcessedRecords(t *testing.T) {
	f := newFixture(t, 1)
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The stop: the first record of the second batch (offset 5) returned
	// by a poll cancels the context, inside PollRecords, as a SIGTERM
	// landing at that moment would.
	hook := &cancelOnPoll{from: 5, cancel: cancel}
	reg := prometheus.NewRegistry()
	r, err := processors.NewRunner(f.spec(), processors.Config{
		Brokers:    f.env.Brokers(),
		InstanceID: "a",
		Catalog:    f.cat,
		Codec:      jsonCodec{},
		StateDir:   dir,
		// Long, so that the transaction of the first batch is still open
		// when the second batch is polled.
		CommitInterval: time.Minute,
		SessionTimeout: 6 * time.Second,
		Registerer:     reg,
		ClientOpts:     []kgo.Opt{kgo.WithHooks(hook)},
	})
	if err != nil {
		t.Fatal(err)
	}
	f.ensure(t)
	errc := make(chan error, 1)
	go func() { errc <- r.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-errc })

	f.produce(t, 0, 5, 5)
	kafkatest.WaitFor(t, 30*time.Second, func() error {
		if n := metricValue(t, reg, "factory2_processor_records_processed_total"); n < 5 {
			return fmt.Errorf("%v of 5 events processed", n)
		}
		return nil
	})
	f.produce(t, 5, 10, 5)
	select {
	case err := <-errc:
		errc <- err // for the cleanup
		if err != nil {
			t.Fatalf("runner stopped with %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the runner did not stop within 30s of its context's cancel")
	}
	if !hook.fired.Load() {
		t.Fatal("the stop hook did not fire")
	}

	stop := start(t, f.runner(t, "a", dir))
	var got map[string]int
	kafkatest.WaitFor(t, 20*time.Second, func() error {
		if got, err = f.outputs(t); err != nil {
			t.Fatal(err)
		}
		if total(got) != 10 {
			return fmt.Errorf("%d outputs of 10 events: the events polled by the stopping runner were "+
				"committed as consumed without being processed (lost)", total(got))
		}
		return nil
	})
	if err := stop(); err != nil {
		t.Fatalf("runner: %v", err)
	}
}

// TestRunnerStopDuringCommitIsGraceful cancels Run's context while the
// runner commits (as a SIGTERM landing then does). Run must still stop
// gracefully: return nil, and leave no open transaction behind, which
// would hold back the last stable offset of its output and changelog
// partitions (what read_committed consumers and restores can read) until
// the transaction times out.
func TestRunnerStopDuringCommitIsGraceful(t *testing.T) {
	f := newFixture(t, 1)
	dir := t.TempDir()
	changelog := f.cat.AddChangelog(f.spec().Name, "counts")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The stop: buffering the first changelog record, which the runner
	// produces at the start of a commit, cancels the context.
	hook := &cancelOnProduce{topic: changelog, cancel: cancel}
	r, err := processors.NewRunner(f.spec(), processors.Config{
		Brokers:        f.env.Brokers(),
		InstanceID:     "a",
		Catalog:        f.cat,
		Codec:          jsonCodec{},
		StateDir:       dir,
		CommitInterval: 50 * time.Millisecond,
		SessionTimeout: 6 * time.Second,
		ClientOpts:     []kgo.Opt{kgo.WithHooks(hook)},
	})
	if err != nil {
		t.Fatal(err)
	}
	f.ensure(t)
	errc := make(chan error, 1)
	go func() { errc <- r.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-errc })

	f.produce(t, 0, 5, 5)
	select {
	case err := <-errc:
		errc <- err // for the cleanup
		if err != nil {
			t.Errorf("Run returned %q after its context was canceled during a commit; a stop must be graceful", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the runner did not stop within 30s of its context's cancel")
	}
	if !hook.fired.Load() {
		t.Fatal("the stop hook did not fire")
	}

	adm := kafkatest.Admin(t, f.env)
	kafkatest.WaitFor(t, 10*time.Second, func() error {
		lctx, lcancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer lcancel()
		for _, topic := range []string{f.out, changelog} {
			stable, err := adm.ListCommittedOffsets(lctx, topic)
			if err == nil {
				err = stable.Error()
			}
			ends, err2 := adm.ListEndOffsets(lctx, topic)
			if err = errors.Join(err, err2); err == nil {
				err = ends.Error()
			}
			if err != nil {
				return err
			}
			s, _ := stable.Lookup(topic, 0)
			e, _ := ends.Lookup(topic, 0)
			if s.Offset != e.Offset {
				return fmt.Errorf("%s: last stable offset %d, end %d: the stopped runner left its transaction open", topic, s.Offset, e.Offset)
			}
		}
		return nil
	})

	stop := start(t, f.runner(t, "a", dir))
	kafkatest.WaitFor(t, 20*time.Second, func() error {
		got, err := f.outputs(t)
		if err != nil {
			t.Fatal(err)
		}
		if total(got) != 5 {
			return fmt.Errorf("%d outputs of 5 events", total(got))
		}
		return nil
	})
	if err := stop(); err != nil {
		t.Fatalf("runner: %v", err)
	}
}

// cancelOnProduce is a kgo hook that calls cancel when the first record
// to topic is buffered for producing.
type cancelOnProduce struct {
	topic  string
	cancel context.CancelFunc
	fired  atomic.Bool
}

func (h *cancelOnProduce) OnProduceRecordBuffered(r *kgo.Record) {
	if r.Topic == h.topic && h.fired.CompareAndSwap(false, true) {
		h.cancel()
	}
}

// cancelOnPoll is a kgo hook that calls cancel when PollRecords returns
// the first record at or after offset from.
type cancelOnPoll struct {
	from   int64
	cancel context.CancelFunc
	fired  atomic.Bool
}

func (h *cancelOnPoll) OnFetchRecordUnbuffered(r *kgo.Record, polled bool) {
	if polled && r.Offset >= h.from && h.fired.CompareAndSwap(false, true) {
		h.cancel()
	}
}

// metricValue sums the values of the counter or gauge name in reg, or the
// sample sums of the histogram name.
func metricValue(t testing.TB, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue() + m.GetHistogram().GetSampleSum()
		}
	}
	return sum
}

// TestRunnerRestartFencesDeadIncarnationAtOnce starts a runner whose
// previous incarnation died inside a commit: its transaction is open, with
// the input offsets it consumed committed in it (TxnOffsetCommit done,
// EndTxn never sent). Config.InstanceID promises that the restart fences
// that incarnation and aborts its transaction; until then the group's
// offsets are unstable (KIP-447), and the runner, which fetches them with
// RequireStableFetchOffsets, cannot start consuming. The runner must
// process new events well before the dead transaction's own timeout.
func TestRunnerRestartFencesDeadIncarnationAtOnce(t *testing.T) {
	kafkatest.RequireReal(t)
	f := newFixture(t, 1)
	r := f.runner(t, "a", t.TempDir())
	f.ensure(t)
	f.produce(t, 0, 5, 5)

	// The dead incarnation: a transactional session with the runner's
	// group and transactional id (runner.go: <group>/<instance id>) that
	// consumes, produces an output, and freezes (every write blocks, as
	// if it was SIGKILLed) when End sends EndTxn.
	const deadTxnTimeout = 120 * time.Second
	fr := &freezer{thaw: make(chan struct{})}
	// Canceled before Close, which then does not try to leave the group
	// through the frozen connections.
	zctx, zcancel := context.WithCancel(context.Background())
	z, err := kgo.NewGroupTransactSession(
		kgo.WithContext(zctx),
		kgo.SeedBrokers(f.env.Brokers()...),
		kgo.Dialer(fr.dial),
		kgo.TransactionalID(r.Group()+"/a"),
		kgo.TransactionTimeout(deadTxnTimeout),
		kgo.ConsumerGroup(r.Group()),
		kgo.Balancers(kgo.RangeBalancer()), // the runner's: a group agrees on one protocol
		kgo.ConsumeTopics(f.in),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.RequireStableFetchOffsets(),
		kgo.SessionTimeout(6*time.Second),
	)
	if err != nil {
		t.Fatal(err)
	}
	ended := make(chan struct{})
	t.Cleanup(func() {
		zcancel()
		close(fr.thaw)
		z.Close()
		select {
		case <-ended:
		case <-time.After(30 * time.Second):
			t.Errorf("the frozen session's End did not return")
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var polled int
	for polled == 0 {
		fs := z.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("the dead incarnation polled nothing: %v", ctx.Err())
		}
		polled += fs.NumRecords()
	}
	if err := z.Begin(); err != nil {
		t.Fatal(err)
	}
	out := &avro.BuildEvent{NVR: "pkg0-1.0-1.fc42", Release: "1"}
	v, _ := jsonCodec{}.Encode(out)
	if err := z.ProduceSync(ctx, &kgo.Record{Topic: f.out, Key: []byte(out.NVR), Value: v}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(ended)
		_, _ = z.End(context.Background(), kgo.TryCommit)
	}()
	kafkatest.WaitFor(t, 30*time.Second, func() error {
		if !fr.frozen.Load() {
			return errors.New("the dead incarnation has not sent EndTxn yet")
		}
		return nil
	})
	t.Logf("the dead incarnation froze with an open transaction holding its offsets of %d consumed events", polled)

	begin := time.Now()
	stop := start(t, r)
	f.produce(t, 5, 10, 5)
	// The dead member holds its partition until its session (6s) expires;
	// the rest should be quick.
	const within = 30 * time.Second
	kafkatest.WaitFor(t, within, func() error {
		got, err := f.outputs(t)
		if err != nil {
			t.Fatal(err)
		}
		if total(got) != 10 {
			return fmt.Errorf("%d outputs of 10 events after %v: the restarted runner has not fenced its dead "+
				"incarnation, whose open transaction keeps the group's offsets unstable until it times out (%v)",
				total(got), time.Since(begin).Round(time.Second), deadTxnTimeout)
		}
		return nil
	})
	if err := stop(); err != nil {
		t.Fatalf("runner: %v", err)
	}
	t.Logf("the restarted runner fenced its dead incarnation and processed every event in %v", time.Since(begin).Round(time.Millisecond))
}

// freezer makes a client's connections freeze, as a SIGKILLed process's
// do, when the client sends EndTxn: that write and every later one block
// until thaw is closed or the connection is.
type freezer struct {
	frozen atomic.Bool
	thaw   chan struct{}
}

func (f *freezer) dial(ctx context.Context, network, host string) (net.Conn, error) {
	c, err := (&net.Dialer{}).DialContext(ctx, network, host)
	if err != nil {
		return nil, err
	}
	return &freezingConn{Conn: c, f: f, closed: make(chan struct{})}, nil
}

type freezingConn struct {
	net.Conn
	f      *freezer
	once   sync.Once
	closed chan struct{}
}

// Write sees one whole request per call (kgo writes each request at once):
// int32 length, int16 API key, ...
func (c *freezingConn) Write(b []byte) (int, error) {
	if len(b) >= 6 && int16(binary.BigEndian.Uint16(b[4:6])) == kmsg.EndTxn.Int16() {
		c.f.frozen.Store(true)
	}
	if c.f.frozen.Load() {
		select {
		case <-c.f.thaw:
		case <-c.closed:
		}
		return 0, net.ErrClosed
	}
	return c.Conn.Write(b)
}

func (c *freezingConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return c.Conn.Close()
}
