package kafkatest

import (
	"bytes"
	"context"
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
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	// EnvKafkaCache is where kafka.sh keeps the Kafka jars; [StartBrokers] uses the
	// repository's deploy/kafka/.cache when it is unset.
	EnvKafkaCache = "FACTORY2_KAFKA_CACHE"
	// EnvChaos, when "1", asks fault tests (named Test...Chaos...) for their long
	// runs; `make chaos` sets it. See [Chaos].
	EnvChaos = "FACTORY2_CHAOS"
)

const (
	// brokerHeap is each private broker's JVM heap: enough for tests, and three of
	// them fit beside the shared broker on a small machine.
	brokerHeap = "384m"
	// brokerJVMOpts makes a private broker start about a third faster (C1 only); its
	// throughput does not matter to tests.
	brokerJVMOpts = "-XX:TieredStopAtLevel=1"
	// scriptTimeout bounds one kafka.sh run. A start waits up to kafka.sh's own 90s
	// for the brokers; a stop up to 30s before it kills.
	scriptTimeout = 3 * time.Minute
	// fetchTimeout bounds `kafka.sh fetch`, which downloads the jars with Maven the
	// first time.
	fetchTimeout = 15 * time.Minute
	// startAttempts is how often StartBrokers picks new ports after a clash.
	startAttempts = 3
	// answerTimeout bounds the wait until a started cluster lists all its brokers,
	// and until it names a coordinator.
	answerTimeout = 60 * time.Second
)

// Chaos reports whether EnvChaos is "1": fault tests then run their long version
// (minutes of faults rather than seconds).
func Chaos() bool { return os.Getenv(EnvChaos) == "1" }

// Brokers is an Apache Kafka cluster that one test owns: a single broker or three
// nodes, each a combined KRaft broker and controller, started by
// deploy/kafka/kafka.sh in a private run directory on free loopback ports. The test
// may stop, kill and restart its nodes without disturbing any other test.
//
// Nodes are numbered by index, 0 to Len()-1; node i has Kafka node id i+1 (see
// [Brokers.NodeID], [Brokers.Index]) and listens on Addrs()[i], which stays the same
// across restarts.
//
// The methods that act on nodes report failures with t.Fatalf, so they must be
// called from the test's goroutine, one at a time. Addrs, Len, Running, NodeID,
// Index and Env are safe for concurrent use.
type Brokers struct {
	t      testing.TB
	script string   // deploy/kafka/kafka.sh
	dir    string   // the run directory
	env    []string // kafka.sh's environment beyond ours: run dir, ports, cache, heap
	nodes  []string // kafka.sh's name of each node: "single", or "1".."3"
	addrs  []string

	mu      sync.Mutex
	running []bool
}

// A BrokersOpt changes how [StartBrokers] starts brokers.
type BrokersOpt interface{ applyBrokers(*brokersCfg) }

type brokersCfg struct {
	runDir     string
	properties []string
}

type brokersOpt func(*brokersCfg)

func (o brokersOpt) applyBrokers(c *brokersCfg) { o(c) }

// RunDir makes the brokers keep their storage and logs in dir (created if missing)
// instead of a directory under t.TempDir(), e.g. to read the broker logs after
// the test. kafka.sh reformats a node's storage when it starts the cluster.
func RunDir(dir string) BrokersOpt {
	return brokersOpt(func(c *brokersCfg) { c.runDir = dir })
}

// BrokerProperties sets broker properties ("key=value") over kafka.sh's own, on
// every node (kafka.sh's FACTORY2_KAFKA_PROPERTIES).
func BrokerProperties(props ...string) BrokersOpt {
	return brokersOpt(func(c *brokersCfg) { c.properties = append(c.properties, props...) })
}

// StartBrokers starts n private brokers (1: a single broker; 3: a three-node cluster
// with replication 3 and min.insync.replicas 2 as defaults for every topic) and
// returns once every broker answers Kafka requests unfenced. When t ends, pass or
// fail, every node is killed; a test process that dies before its cleanups (a go
// test -timeout panic) leaves no broker behind either, since kafka.sh kills brokers
// whose owner process has exited.
//
// It needs Java 17+ and the Kafka jars (from FACTORY2_KAFKA_CACHE, else the
// repository's deploy/kafka/.cache; fetched with `kafka.sh fetch` when missing).
// Without them it skips t, or fails t when FACTORY2_REQUIRE_KAFKA=1 (make test). It
// skips t in -short mode (make test-unit). The ports are free ones on 127.0.0.1
// below the ephemeral range (see freePorts), picked anew if the start fails on a
// port another process took meanwhile.
func StartBrokers(t testing.TB, n int, opts ...BrokersOpt) *Brokers {
	t.Helper()
	if n != 1 && n != 3 {
		t.Fatalf("kafkatest: StartBrokers(%d): kafka.sh runs 1 broker or a cluster of 3", n)
		return nil
	}
	if testing.Short() {
		t.Skip("kafkatest: skipped in -short mode: starts private Kafka brokers (make test runs it)")
		return nil
	}
	var c brokersCfg
	for _, o := range opts {
		o.applyBrokers(&c)
	}
	b, err := newBrokers(t, n, c)
	if err != nil {
		t.Fatalf("kafkatest: %v", err)
		return nil
	}
	if err := b.prerequisites(t.Context()); err != nil {
		skipOrFail(t, err)
		return nil
	}
	t.Cleanup(b.cleanup)
	b.start()
	return b
}

// newBrokers finds kafka.sh and the jar cache and prepares the run directory.
func newBrokers(t testing.TB, n int, c brokersCfg) (*Brokers, error) {
	root, err := repoRoot()
	if err != nil {
		return nil, err
	}
	script := filepath.Join(root, "deploy", "kafka", "kafka.sh")
	if _, err := os.Stat(script); err != nil {
		return nil, fmt.Errorf("finding kafka.sh: %w", err)
	}
	cache := os.Getenv(EnvKafkaCache)
	if cache == "" {
		cache = filepath.Join(root, "deploy", "kafka", ".cache")
	}
	dir := c.runDir
	if dir == "" {
		dir = t.TempDir()
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return nil, fmt.Errorf("run directory: %w", err)
	}
	b := &Brokers{
		t:      t,
		script: script,
		dir:    dir,
		env: []string{
			"FACTORY2_KAFKA_RUN=" + dir,
			EnvKafkaCache + "=" + cache,
			"FACTORY2_KAFKA_HEAP=" + brokerHeap,
			"FACTORY2_KAFKA_JVM_OPTS=" + brokerJVMOpts,
			"FACTORY2_KAFKA_OWNER_PID=" + strconv.Itoa(os.Getpid()),
			"FACTORY2_KAFKA_PROPERTIES=" + strings.Join(c.properties, "\n"),
		},
		running: make([]bool, n),
	}
	if n == 1 {
		b.nodes = []string{"single"}
	} else {
		b.nodes = []string{"1", "2", "3"}
	}
	return b, nil
}

// repoRoot returns the nearest directory at or above the working directory (a test's
// package directory) that holds go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("finding the repository root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("finding the repository root: no go.mod at or above the working directory")
		}
		dir = parent
	}
}

// errMissing marks what a developer installs (Java, the jars), as opposed to a
// broken kafka.sh or broker.
var errMissing = errors.New("missing")

// prerequisites fetches the jars if needed and checks Java; an error wraps errMissing.
func (b *Brokers) prerequisites(ctx context.Context) error {
	fctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	if _, err := b.run(fctx, "fetch"); err != nil {
		return fmt.Errorf("%w: %w", errMissing, err)
	}
	if _, err := b.run(ctx, "check"); err != nil {
		return fmt.Errorf("%w: %w", errMissing, err)
	}
	return nil
}

// skipOrFail stops t because private brokers cannot run here: it fails t when
// EnvRequire is "1", and skips it otherwise.
func skipOrFail(t testing.TB, err error) {
	t.Helper()
	msg := fmt.Sprintf("this test starts private Kafka brokers, which need Java 17+ and the Kafka jars: %v; "+
		"run make deps (it installs Java 17 and Maven and fetches the jars), then the test again "+
		"(make test runs it with %s=1)", err, EnvRequire)
	if os.Getenv(EnvRequire) == "1" {
		t.Fatalf("kafkatest: %s", msg)
	} else {
		t.Skipf("kafkatest: skipped: %s", msg)
	}
}

// start runs kafka.sh up or up-cluster on free ports, picking other ports when the
// start fails on a port clash, then waits until the cluster lists every broker.
func (b *Brokers) start() {
	t := b.t
	t.Helper()
	began := time.Now()
	cmd := "up"
	if len(b.nodes) > 1 {
		cmd = "up-cluster"
	}
	if err := b.upOnFreePorts(2*len(b.nodes), b.portEnv, cmd); err != nil {
		t.Fatalf("kafkatest: starting %d private brokers in %s: %v", len(b.nodes), b.dir, err)
		return
	}
	if len(b.addrs) != len(b.nodes) {
		t.Fatalf("kafkatest: kafka.sh %s printed addresses %q, want %d", cmd, b.addrs, len(b.nodes))
		return
	}
	b.mu.Lock()
	for i := range b.running {
		b.running[i] = true
	}
	b.mu.Unlock()
	b.waitListed(len(b.nodes))
	t.Logf("kafkatest: %d private brokers at %v ready after %v (run directory %s)",
		len(b.nodes), b.addrs, time.Since(began).Round(100*time.Millisecond), b.dir)
}

// upOnFreePorts runs `kafka.sh cmd` on n free ports, given to it by the
// environment env makes of them, and picks other ports when the start
// fails on one another process took meanwhile; it sets b.addrs from what
// kafka.sh prints.
func (b *Brokers) upOnFreePorts(n int, env func(ports []int) []string, cmd string) error {
	t := b.t
	var err error
	for attempt := 1; attempt <= startAttempts; attempt++ {
		var ports []int
		if ports, err = freePorts(n); err != nil {
			return err
		}
		var out string
		if out, err = b.runEnv(t.Context(), env(ports), cmd); err == nil {
			b.addrs = strings.Split(out, ",")
			return nil
		}
		if !isPortClash(err) {
			return err
		}
		t.Logf("kafkatest: attempt %d: a port was taken meanwhile; picking others: %v", attempt, err)
	}
	return err
}

// portEnv gives kafka.sh ports as its broker and controller ports: for a
// single broker, ports[0] and ports[1]; for a cluster, ports[:3] and ports[3:].
func (b *Brokers) portEnv(ports []int) []string {
	join := func(ps []int) string {
		s := make([]string, len(ps))
		for i, p := range ps {
			s[i] = strconv.Itoa(p)
		}
		return strings.Join(s, ",")
	}
	if n := len(b.nodes); n > 1 {
		return []string{
			"FACTORY2_KAFKA_CLUSTER_PORTS=" + join(ports[:n]),
			"FACTORY2_KAFKA_CLUSTER_CONTROLLER_PORTS=" + join(ports[n:]),
		}
	}
	return []string{
		"FACTORY2_KAFKA_PORT=" + strconv.Itoa(ports[0]),
		"FACTORY2_KAFKA_CONTROLLER_PORT=" + strconv.Itoa(ports[1]),
	}
}

// Private brokers listen on ports below the kernel's ephemeral range, where no
// bind to port 0 and no outgoing connection ever lands: a node stopped for a
// while must find its port free again, and the many tests around that listen on
// port 0 (kfake, httptest) would otherwise take it now and then.
const (
	portsLow  = 20000 // the lowest port picked
	portsHigh = 32768 // above the highest; ip_local_port_range's low end if lower
	// kafkaPortsLow and kafkaPortsHigh bound the ports kafka.sh uses by default
	// (29092/29093 and 29192-29393), which are never picked.
	kafkaPortsLow, kafkaPortsHigh = 29000, 29999
)

// freePorts returns n distinct ports on 127.0.0.1 that were free a moment ago,
// picked at random below the ephemeral range and checked by listening on each;
// all are held until every one is picked. Where the ephemeral range starts too
// low to leave room, the kernel picks them (listening on port 0).
func freePorts(n int) ([]int, error) {
	hi := min(portsHigh, ephemeralLow())
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for tries := 0; len(ports) < n; tries++ {
		p := 0
		if hi-portsLow >= 4000 && tries < 100*n {
			if p = portsLow + rand.IntN(hi-portsLow); p >= kafkaPortsLow && p <= kafkaPortsHigh {
				continue
			}
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			if p != 0 {
				continue // taken: try another
			}
			return nil, fmt.Errorf("picking a free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// ephemeralLow returns the low end of the kernel's ephemeral port range, or 0
// if it cannot be read.
func ephemeralLow() int {
	data, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0
	}
	fields := strings.Fields(string(data))
	if len(fields) == 0 {
		return 0
	}
	lo, err := strconv.Atoi(fields[0])
	if err != nil {
		return 0
	}
	return lo
}

// isPortClash reports whether a kafka.sh failure says a port was taken: kafka.sh's
// own check before a start, or the broker's bind failing after it.
func isPortClash(err error) bool {
	var se *scriptError
	if !errors.As(err, &se) {
		return false
	}
	return strings.Contains(se.stderr, "is taken by another process") ||
		strings.Contains(se.stderr, "Address already in use")
}

// waitListed waits until a metadata request through any node lists want brokers.
func (b *Brokers) waitListed(want int) {
	t := b.t
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addrs()...))
	if err != nil {
		t.Fatalf("kafkatest: client for %v: %v", b.Addrs(), err)
		return
	}
	defer cl.Close()
	WaitFor(t, answerTimeout, func() error {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		req := kmsg.NewPtrMetadataRequest()
		req.Topics = []kmsg.MetadataRequestTopic{}
		resp, err := req.RequestWith(ctx, cl) // not cached: kgo sends every MetadataRequest
		if err != nil {
			return fmt.Errorf("metadata from %v: %w", b.Addrs(), err)
		}
		if len(resp.Brokers) != want {
			return fmt.Errorf("metadata from %v lists %d brokers, want %d", b.Addrs(), len(resp.Brokers), want)
		}
		return nil
	})
}

// Addrs returns the nodes' host:port addresses, node i's at index i.
func (b *Brokers) Addrs() []string { return slices.Clone(b.addrs) }

// Len returns the number of nodes.
func (b *Brokers) Len() int { return len(b.nodes) }

// Env returns the brokers as an [Env], for [Client], [Admin] and [Topic].
func (b *Brokers) Env() *Env { return &Env{brokers: b.Addrs()} }

// Running reports whether node i runs, as far as this Brokers started and stopped it.
func (b *Brokers) Running(i int) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.running[i]
}

// NodeID returns node i's Kafka node id (broker and controller id): i+1.
func (b *Brokers) NodeID(i int) int32 { return int32(i + 1) }

// Index returns the index of the node with Kafka node id, and whether it is one of
// these nodes.
func (b *Brokers) Index(nodeID int32) (int, bool) {
	i := int(nodeID) - 1
	return i, i >= 0 && i < len(b.nodes)
}

// Stop stops node i with SIGTERM (a controlled shutdown) and returns once it has
// exited; kafka.sh sends SIGKILL if it has not within 30s.
func (b *Brokers) Stop(i int) {
	b.t.Helper()
	b.act(false, "stop-broker", i)
}

// Kill kills node i with SIGKILL and returns once it has exited.
func (b *Brokers) Kill(i int) {
	b.t.Helper()
	b.act(false, "kill-broker", i)
}

// Start starts node i again on its data and ports and returns once it answers
// Kafka requests unfenced. After a Kill that takes about 9s more: the controller
// first fences the killed incarnation (broker.session.timeout.ms). A cluster node
// needs a quorum to become ready, so restart all stopped nodes of a cluster at once
// with [Brokers.StartAll].
func (b *Brokers) Start(i int) {
	b.t.Helper()
	b.act(true, "start-broker", i)
}

// StopAll stops every node, side by side, as Stop does.
func (b *Brokers) StopAll() {
	b.t.Helper()
	b.act(false, "stop-broker", b.all()...)
}

// KillAll kills every node, as Kill does.
func (b *Brokers) KillAll() {
	b.t.Helper()
	b.act(false, "kill-broker", b.all()...)
}

// StartAll starts every stopped node on its data, all at once, and returns once
// every node answers unfenced.
func (b *Brokers) StartAll() {
	b.t.Helper()
	b.act(true, "start-broker", b.all()...)
}

func (b *Brokers) all() []int {
	is := make([]int, len(b.nodes))
	for i := range is {
		is[i] = i
	}
	return is
}

// act runs kafka.sh cmd on the nodes is and records whether they run afterwards.
func (b *Brokers) act(running bool, cmd string, is ...int) {
	t := b.t
	t.Helper()
	args := []string{cmd}
	for _, i := range is {
		if i < 0 || i >= len(b.nodes) {
			t.Fatalf("kafkatest: %s: no node %d among %d", cmd, i, len(b.nodes))
			return
		}
		args = append(args, b.nodes[i])
	}
	began := time.Now()
	if _, err := b.run(t.Context(), args...); err != nil {
		t.Fatalf("kafkatest: %s of nodes %v in %s: %v", cmd, is, b.dir, err)
		return
	}
	b.mu.Lock()
	for _, i := range is {
		b.running[i] = running
	}
	b.mu.Unlock()
	t.Logf("kafkatest: %s %v took %v", cmd, is, time.Since(began).Round(100*time.Millisecond))
}

// cleanup kills every node (their data goes with the run directory) and, when the
// test failed, logs the end of each node's broker log.
func (b *Brokers) cleanup() {
	if b.t.Failed() {
		b.logTails()
	}
	ctx, cancel := context.WithTimeout(context.Background(), scriptTimeout)
	defer cancel()
	if _, err := b.run(ctx, append([]string{"kill-broker"}, b.nodes...)...); err != nil {
		b.t.Errorf("kafkatest: killing the private brokers in %s: %v", b.dir, err)
	}
}

// tailLines is how many warnings and errors of each node's log a failed test shows.
const tailLines = 20

// logTails logs the last warnings and errors of each node's broker log, and the
// end of its JVM output (where a crash shows).
func (b *Brokers) logTails() {
	for _, node := range b.nodes {
		name := node
		if name != "single" && name != "secure" {
			name = "cluster-" + node
		}
		logs := filepath.Join(b.dir, name, "logs")
		b.logTail(filepath.Join(logs, "server.log"), func(l string) bool {
			return strings.Contains(l, "] WARN ") || strings.Contains(l, "] ERROR ") || strings.Contains(l, "] FATAL ")
		})
		b.logTail(filepath.Join(logs, "stdout.log"), func(string) bool { return true })
	}
}

func (b *Brokers) logTail(path string, keep func(string) bool) {
	data, err := os.ReadFile(path)
	if err != nil {
		return
	}
	var lines []string
	for l := range strings.Lines(string(data)) {
		if keep(l) {
			lines = append(lines, strings.TrimRight(l, "\n"))
		}
	}
	if len(lines) == 0 {
		return
	}
	lines = lines[max(0, len(lines)-tailLines):]
	b.t.Logf("kafkatest: last lines of %s (for this failure):\n%s", path, strings.Join(lines, "\n"))
}

// scriptError is a failed kafka.sh run, with what it said on stderr.
type scriptError struct {
	args   []string
	err    error
	stderr string
}

func (e *scriptError) Error() string {
	return fmt.Sprintf("kafka.sh %s: %v; it said:\n%s", strings.Join(e.args, " "), e.err, strings.TrimSpace(e.stderr))
}

func (e *scriptError) Unwrap() error { return e.err }

func (b *Brokers) run(ctx context.Context, args ...string) (string, error) {
	return b.runEnv(ctx, nil, args...)
}

// runEnv runs kafka.sh with args and the brokers' environment plus env, and returns
// its stdout, trimmed. The script and what it runs in the foreground (probes,
// formats) are killed if ctx ends; the brokers it launched live on, detached.
func (b *Brokers) runEnv(ctx context.Context, env []string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, scriptTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, b.script, args...)
	// Later entries win: ours over any FACTORY2_KAFKA_* the test process has.
	cmd.Env = append(append(os.Environ(), b.env...), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		return "", &scriptError{args: args, err: err, stderr: stderr.String()}
	}
	return strings.TrimSpace(stdout.String()), nil
}

// GroupCoordinator returns the node id of the coordinator of group, as the cluster
// that adm talks to names it now. A cluster that cannot name one yet (the offsets
// topic is being created, or its leader moves) is an error; poll to wait.
func GroupCoordinator(ctx context.Context, adm *kadm.Client, group string) (int32, error) {
	return coordinator(adm.FindGroupCoordinators(ctx, group), "group", group)
}

// TxnCoordinator returns the node id of the coordinator of the transactional id, as
// GroupCoordinator does for groups.
func TxnCoordinator(ctx context.Context, adm *kadm.Client, txnID string) (int32, error) {
	return coordinator(adm.FindTxnCoordinators(ctx, txnID), "transactional id", txnID)
}

func coordinator(resps kadm.FindCoordinatorResponses, kind, key string) (int32, error) {
	r, ok := resps[key]
	switch {
	case !ok:
		return -1, fmt.Errorf("kafkatest: no coordinator answer for %s %q", kind, key)
	case r.Err != nil:
		return -1, fmt.Errorf("kafkatest: finding the coordinator of %s %q: %w (%s)", kind, key, r.Err, r.ErrMessage)
	}
	return r.NodeID, nil
}

// GroupCoordinatorIndex returns the index of the node that coordinates group now,
// polling for up to a minute while the cluster cannot name one; e.g.
// b.Kill(b.GroupCoordinatorIndex(group)).
func (b *Brokers) GroupCoordinatorIndex(group string) int {
	b.t.Helper()
	return b.coordinatorIndex(func(ctx context.Context, adm *kadm.Client) (int32, error) {
		return GroupCoordinator(ctx, adm, group)
	})
}

// TxnCoordinatorIndex returns the index of the node that coordinates the
// transactional id now, as GroupCoordinatorIndex does for groups.
func (b *Brokers) TxnCoordinatorIndex(txnID string) int {
	b.t.Helper()
	return b.coordinatorIndex(func(ctx context.Context, adm *kadm.Client) (int32, error) {
		return TxnCoordinator(ctx, adm, txnID)
	})
}

func (b *Brokers) coordinatorIndex(find func(context.Context, *kadm.Client) (int32, error)) int {
	t := b.t
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addrs()...))
	if err != nil {
		t.Fatalf("kafkatest: client for %v: %v", b.Addrs(), err)
		return -1
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	idx := -1
	WaitFor(t, answerTimeout, func() error {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		id, err := find(ctx, adm)
		if err != nil {
			return err
		}
		i, ok := b.Index(id)
		if !ok {
			return fmt.Errorf("coordinator node id %d is none of the %d nodes", id, len(b.nodes))
		}
		idx = i
		return nil
	})
	return idx
}
