package kafkatest

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

const (
	// EnvBrokers names real brokers to test against: comma separated host:port.
	EnvBrokers = "FACTORY2_KAFKA_BROKERS"
	// EnvRequire, when "1", makes [RequireReal] fail instead of skip without EnvBrokers.
	EnvRequire = "FACTORY2_REQUIRE_KAFKA"
)

// pingTimeout bounds the check that the brokers named by EnvBrokers answer.
const pingTimeout = 15 * time.Second

// Env is the Kafka cluster a test runs against: real brokers or an in-process kfake
// cluster. It is safe for concurrent use.
type Env struct {
	brokers []string
	fake    *kfake.Cluster
}

// Brokers returns the seed brokers' host:port addresses.
func (e *Env) Brokers() []string { return slices.Clone(e.brokers) }

// IsReal reports whether the brokers are real ones named by EnvBrokers.
func (e *Env) IsReal() bool { return e.fake == nil }

// Fake returns the kfake cluster, for tests that inject faults with its control
// functions, or nil when the brokers are real.
func (e *Env) Fake() *kfake.Cluster { return e.fake }

// An Opt changes how [Cluster] starts a kfake cluster.
type Opt interface{ apply(*cfg) }

type cfg struct {
	fakeOpts []kfake.Opt
}

type opt func(*cfg)

func (o opt) apply(c *cfg) { o(c) }

// FakeOpts passes options to [kfake.NewCluster], after the defaults of one broker and
// one partition per topic (the real test broker's num.partitions). It has no effect
// when the brokers are real.
func FakeOpts(opts ...kfake.Opt) Opt {
	return opt(func(c *cfg) { c.fakeOpts = append(c.fakeOpts, opts...) })
}

// Cluster returns the real brokers named by EnvBrokers, failing t if they do not
// answer, or else starts a kfake cluster bound to 127.0.0.1 that is closed when t ends.
func Cluster(t testing.TB, opts ...Opt) *Env {
	t.Helper()
	if brokers := envBrokers(); len(brokers) > 0 {
		return realEnv(t, brokers)
	}
	var c cfg
	for _, o := range opts {
		o.apply(&c)
	}
	fopts := append([]kfake.Opt{kfake.NumBrokers(1), kfake.DefaultNumPartitions(1)}, c.fakeOpts...)
	fake, err := kfake.NewCluster(fopts...)
	if err != nil {
		t.Fatalf("kafkatest: starting kfake cluster: %v", err)
		return nil
	}
	t.Cleanup(fake.Close)
	return &Env{brokers: fake.ListenAddrs(), fake: fake}
}

// RequireReal returns the real brokers named by EnvBrokers. Without them it skips t,
// or fails t when EnvRequire is "1"; either way it then returns nil (having stopped
// the test, when t is a *testing.T or *testing.B).
func RequireReal(t testing.TB) *Env {
	t.Helper()
	brokers := envBrokers()
	if len(brokers) == 0 {
		if os.Getenv(EnvRequire) == "1" {
			t.Fatalf("kafkatest: this test needs a real Kafka broker and %s=1, but %s is unset "+
				"(make test starts one; or make kafka-up and set %s=127.0.0.1:29092)",
				EnvRequire, EnvBrokers, EnvBrokers)
		} else {
			t.Skipf("kafkatest: skipped, needs a real Kafka broker: make kafka-up, then set %s=127.0.0.1:29092 "+
				"(make test does both)", EnvBrokers)
		}
		return nil
	}
	return realEnv(t, brokers)
}

func envBrokers() []string {
	var brokers []string
	for b := range strings.SplitSeq(os.Getenv(EnvBrokers), ",") {
		if b = strings.TrimSpace(b); b != "" {
			brokers = append(brokers, b)
		}
	}
	return brokers
}

// realEnv checks that brokers answer a Kafka request, so that a broker that is not
// running fails the test at once with its address rather than as a timeout later.
func realEnv(t testing.TB, brokers []string) *Env {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatalf("kafkatest: %s=%q: %v", EnvBrokers, os.Getenv(EnvBrokers), err)
		return nil
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), pingTimeout)
	defer cancel()
	if err := cl.Ping(ctx); err != nil {
		t.Fatalf("kafkatest: brokers %v (from %s) do not answer: %v (is the broker up? make kafka-up)",
			brokers, EnvBrokers, err)
		return nil
	}
	return &Env{brokers: brokers}
}

// Client returns a client seeded with env's brokers and opts, closed when t ends.
func Client(t testing.TB, env *Env, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(env.brokers...)}, opts...)...)
	if err != nil {
		t.Fatalf("kafkatest: new client: %v", err)
		return nil
	}
	t.Cleanup(cl.Close)
	return cl
}

// Admin returns an admin client for env, closed when t ends.
func Admin(t testing.TB, env *Env) *kadm.Client {
	t.Helper()
	return kadm.NewClient(Client(t, env))
}
