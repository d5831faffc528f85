// Package embedded runs an in-process Kafka-protocol broker (franz-go's
// kfake) for `factory2 dev` and fast tests: no JVM, no external Kafka, and
// any Kafka client (kcat, franz-go, the Java client) can connect to it.
//
// It is a development broker: one node, persistence to a data directory
// so a restart keeps the log, and the Kafka features factory2 relies on
// (consumer groups, transactions, read_committed, compaction). Production
// runs against a real Apache Kafka cluster.
package embedded

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Options configure a Broker.
type Options struct {
	// Addr is the host:port to listen on, e.g. "127.0.0.1:9092". Port 0
	// picks a free port.
	Addr string
	// DataDir, when set, persists the log under it and reloads it on
	// start. Empty keeps everything in memory.
	DataDir string
	// Logger receives the broker's warnings; nil discards them.
	Logger *slog.Logger
}

// Broker is a running embedded broker.
type Broker struct {
	c    *kfake.Cluster
	addr string
}

// Start starts a broker. Topics are not auto-created: kfake loses
// auto-created topics on an unclean stop, so callers create them
// explicitly (topics.Catalog.Ensure).
func Start(opts Options) (*Broker, error) {
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if _, _, err := net.SplitHostPort(opts.Addr); err != nil {
		return nil, fmt.Errorf("embedded: listen address %q: %w", opts.Addr, err)
	}
	// Fail early with a clear message when the port is taken, rather than
	// with kfake's generic error.
	probe, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("embedded: cannot listen on %s (is another broker or `factory2 dev` running? choose another with --kafka-addr): %w", opts.Addr, err)
	}
	addr := probe.Addr().String()
	probe.Close()

	kopts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.ClusterID("factory2-dev"),
		kfake.ListenFn(func(network, _ string) (net.Listener, error) {
			return net.Listen(network, addr)
		}),
		kfake.BrokerConfigs(map[string]string{
			"group.initial.rebalance.delay.ms": "0",
		}),
	}
	if opts.DataDir != "" {
		dir := filepath.Join(opts.DataDir, "kafka")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("embedded: %w", err)
		}
		kopts = append(kopts, kfake.DataDir(dir))
	}
	if opts.Logger != nil {
		kopts = append(kopts, kfake.WithLogger(slogLogger{opts.Logger}))
	}
	c, err := kfake.NewCluster(kopts...)
	if err != nil {
		return nil, fmt.Errorf("embedded: starting broker on %s: %w", addr, err)
	}
	addrs := c.ListenAddrs()
	if len(addrs) == 0 {
		c.Close()
		return nil, errors.New("embedded: broker has no listen address")
	}
	return &Broker{c: c, addr: addrs[0]}, nil
}

// Addr is the bootstrap address clients connect to.
func (b *Broker) Addr() string { return b.addr }

// Cluster exposes the kfake cluster for tests that inject faults.
func (b *Broker) Cluster() *kfake.Cluster { return b.c }

// Close stops the broker, flushing its log to the data directory.
func (b *Broker) Close() { b.c.Close() }

type slogLogger struct{ l *slog.Logger }

func (s slogLogger) Logf(level kfake.LogLevel, msg string, args ...any) {
	// kfake logs every request at info; keep only what needs attention.
	var lvl slog.Level
	switch level {
	case kfake.LogLevelError:
		lvl = slog.LevelError
	case kfake.LogLevelWarn:
		lvl = slog.LevelWarn
	default:
		return
	}
	s.l.Log(context.Background(), lvl, fmt.Sprintf(msg, args...), "component", "embedded-broker")
}
