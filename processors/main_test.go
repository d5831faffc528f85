package processors_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/factory2/factory2/processors"
	"github.com/factory2/factory2/topics"
)

// The environment of a child runner process (see runChild).
const (
	// envChild, when "1", makes the test binary run a counter Runner
	// instead of its tests.
	envChild         = "FACTORY2_CHILD_RUNNER"
	envChildBrokers  = "FACTORY2_CHILD_BROKERS"   // comma separated host:port
	envChildPrefix   = "FACTORY2_CHILD_PREFIX"    // the topic catalog's prefix
	envChildInstance = "FACTORY2_CHILD_INSTANCE"  // Config.InstanceID
	envChildStateDir = "FACTORY2_CHILD_STATE_DIR" // Config.StateDir
)

// The child runner's timing: the fixture's commit interval; the shortest
// session timeout the broker accepts (group.min.session.timeout.ms), which
// bounds how long a SIGKILLed member holds its partitions; and a short
// transaction timeout, which bounds how long a restart waits when the
// killed incarnation died between committing its offsets in its
// transaction and ending it (the runner does not fence it before
// consuming; see TestRunnerRestartFencesDeadIncarnationAtOnce).
const (
	childCommitInterval     = 50 * time.Millisecond
	childSessionTimeout     = 6 * time.Second
	childTransactionTimeout = 10 * time.Second
)

// TestMain runs the package's tests or, in a process started by
// startChild (envChild=1), a Runner with the counter processor until it is
// killed or terminated. The crash and rebalance tests need runners they
// can SIGKILL, which only a separate process gives.
func TestMain(m *testing.M) {
	if os.Getenv(envChild) == "1" {
		os.Exit(runChild())
	}
	os.Exit(m.Run())
}

// runChild runs the counter Runner described by the environment until
// SIGTERM or SIGINT (a graceful stop: Run commits and leaves the group),
// SIGKILL, or the parent's exit. It logs JSON lines at info to stderr,
// which the parent keeps in a file and reads for "partition assigned".
// It returns the process exit code: 0 after a clean stop.
func runChild() int {
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if err := childRun(log); err != nil {
		log.Error("child runner failed", "err", err)
		return 1
	}
	log.Info("child runner stopped cleanly")
	return 0
}

func childRun(log *slog.Logger) error {
	env := map[string]string{}
	var missing []error
	for _, k := range []string{envChildBrokers, envChildPrefix, envChildInstance, envChildStateDir} {
		if env[k] = os.Getenv(k); env[k] == "" {
			missing = append(missing, fmt.Errorf("%s is not set", k))
		}
	}
	if err := errors.Join(missing...); err != nil {
		return err
	}
	f, err := childFixture(env[envChildPrefix])
	if err != nil {
		return err
	}
	r, err := processors.NewRunner(f.spec(), processors.Config{
		Brokers:            strings.Split(env[envChildBrokers], ","),
		InstanceID:         env[envChildInstance],
		Catalog:            f.cat,
		Codec:              jsonCodec{},
		StateDir:           env[envChildStateDir],
		CommitInterval:     childCommitInterval,
		SessionTimeout:     childSessionTimeout,
		TransactionTimeout: childTransactionTimeout,
		Logger:             log,
	})
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	// The parent holds our stdin open and never writes to it: EOF means it
	// is gone, and an orphan must not keep consuming from its topics.
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		log.Error("parent gone (stdin closed); exiting")
		os.Exit(3)
	}()
	return r.Run(ctx)
}

// childFixture is the fixture a child runs: the catalog of prefix, with
// the same spec as the parent's newFixture. It needs no Kafka cluster.
func childFixture(prefix string) (*fixture, error) {
	cat, err := topics.New(topics.Config{Prefix: prefix, Partitions: 1, Replication: 1, InputRetentionMS: -1, DecisionRetentionMS: -1})
	if err != nil {
		return nil, err
	}
	return &fixture{cat: cat, in: cat.Name(topics.EventsBuild), out: cat.Name(topics.DecisionsGating)}, nil
}
