package kafkatest_test

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/factory2/factory2/internal/kafkatest"
)

// recordingTB stands in for a *testing.T where a helper is expected to skip or fail:
// it records Skipf and Fatalf instead of stopping the goroutine.
type recordingTB struct {
	testing.TB
	skipped, failed bool
	msg             string
}

func (r *recordingTB) Helper() {}

func (r *recordingTB) Skipf(format string, args ...any) {
	r.skipped = true
	r.msg = fmt.Sprintf(format, args...)
}

func (r *recordingTB) Fatalf(format string, args ...any) {
	r.failed = true
	r.msg = fmt.Sprintf(format, args...)
}

// TestClusterWithoutEnvIsFake checks that without FACTORY2_KAFKA_BROKERS a test gets a
// working in-process cluster: a topic is created with its partitions and a record
// goes round trip. It runs under make test too, where the variable is set.
func TestClusterWithoutEnvIsFake(t *testing.T) {
	t.Setenv(kafkatest.EnvBrokers, "")
	env := kafkatest.Cluster(t)
	if env.IsReal() || env.Fake() == nil {
		t.Fatalf("IsReal() = %v, Fake() = %v; want a kfake cluster", env.IsReal(), env.Fake())
	}
	if got := env.Brokers(); len(got) != 1 || !strings.HasPrefix(got[0], "127.0.0.1:") {
		t.Fatalf("Brokers() = %v, want one address on 127.0.0.1", got)
	}

	topic := kafkatest.Topic(t, env, 3, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	md, err := kafkatest.Admin(t, env).Metadata(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(md.Topics[topic].Partitions); n != 3 {
		t.Fatalf("topic %s has %d partitions, want 3", topic, n)
	}

	cl := kafkatest.Client(t, env,
		kgo.DefaultProduceTopic(topic),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)
	if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte("k"), Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	fs := cl.PollRecords(ctx, 1)
	if err := fs.Err0(); err != nil {
		t.Fatalf("poll: %v", err)
	}
	if rs := fs.Records(); len(rs) != 1 || string(rs[0].Value) != "v" {
		t.Fatalf("consumed %v, want the one record produced", rs)
	}
}

// TestClusterUsesEnvBrokers checks that FACTORY2_KAFKA_BROKERS wins over kfake; a
// kfake cluster started by hand plays the real broker.
func TestClusterUsesEnvBrokers(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	addr := c.ListenAddrs()[0]
	t.Setenv(kafkatest.EnvBrokers, " "+addr+" ,")

	for name, get := range map[string]func(testing.TB) *kafkatest.Env{
		"Cluster":     func(t testing.TB) *kafkatest.Env { return kafkatest.Cluster(t) },
		"RequireReal": kafkatest.RequireReal,
	} {
		env := get(t)
		if !env.IsReal() || env.Fake() != nil {
			t.Errorf("%s: IsReal() = %v, want true", name, env.IsReal())
		}
		if got := env.Brokers(); len(got) != 1 || got[0] != addr {
			t.Errorf("%s: Brokers() = %q, want [%q]", name, got, addr)
		}
	}
}

func TestClusterFailsOnDeadEnvBrokers(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	addr := c.ListenAddrs()[0]
	c.Close() // nothing listens there any more
	t.Setenv(kafkatest.EnvBrokers, addr)

	rec := &recordingTB{TB: t}
	if env := kafkatest.Cluster(rec); env != nil || !rec.failed {
		t.Fatalf("Cluster with dead brokers: env %v, failed %v; want a failure", env, rec.failed)
	}
	if !strings.Contains(rec.msg, addr) {
		t.Errorf("failure %q does not name the broker %s", rec.msg, addr)
	}
}

func TestRequireRealWithoutBrokers(t *testing.T) {
	for _, tc := range []struct {
		name              string
		require           string
		wantSkip, wantErr bool
	}{
		{name: "skips", require: "", wantSkip: true},
		{name: "skips unless exactly 1", require: "yes", wantSkip: true},
		{name: "fails when required", require: "1", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(kafkatest.EnvBrokers, "")
			t.Setenv(kafkatest.EnvRequire, tc.require)
			rec := &recordingTB{TB: t}
			env := kafkatest.RequireReal(rec)
			if env != nil || rec.skipped != tc.wantSkip || rec.failed != tc.wantErr {
				t.Fatalf("env %v, skipped %v, failed %v; want skipped %v, failed %v",
					env, rec.skipped, rec.failed, tc.wantSkip, tc.wantErr)
			}
			if !strings.Contains(rec.msg, kafkatest.EnvBrokers) {
				t.Errorf("message %q does not say to set %s", rec.msg, kafkatest.EnvBrokers)
			}
		})
	}
}

func TestUniqueName(t *testing.T) {
	valid := regexp.MustCompile(`^[a-zA-Z0-9-]+-[0-9a-f]{8}$`)
	for _, tc := range []struct{ testName, wantPrefix string }{
		{"TestX", "TestX-"},
		{"TestX/sub case#1.a_b", "TestX-sub-case-1-a-b-"},
		{strings.Repeat("x", 300), strings.Repeat("x", 180) + "-"},
	} {
		rec := &namedTB{TB: t, name: tc.testName}
		a, b := kafkatest.UniqueName(rec), kafkatest.UniqueName(rec)
		if a == b {
			t.Errorf("two calls gave the same name %q", a)
		}
		if !valid.MatchString(a) || len(a) > 249 {
			t.Errorf("name %q (%d chars) is not a valid topic name", a, len(a))
		}
		if !strings.HasPrefix(a, tc.wantPrefix) || len(a) != len(tc.wantPrefix)+8 {
			t.Errorf("UniqueName for test %.20q... = %q, want %.30q... and 8 hex digits", tc.testName, a, tc.wantPrefix)
		}
	}
}

// namedTB is a testing.TB with another name.
type namedTB struct {
	testing.TB
	name string
}

func (n *namedTB) Name() string { return n.name }

func TestWaitFor(t *testing.T) {
	calls := 0
	kafkatest.WaitFor(t, 10*time.Second, func() error {
		if calls++; calls < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	if calls != 3 {
		t.Errorf("cond called %d times, want 3", calls)
	}

	rec := &recordingTB{TB: t}
	start := time.Now()
	kafkatest.WaitFor(rec, 50*time.Millisecond, func() error { return errors.New("never") })
	if !rec.failed || !strings.Contains(rec.msg, "never") {
		t.Errorf("WaitFor on a condition that never holds: failed %v, message %q", rec.failed, rec.msg)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("WaitFor with a 50ms timeout took %v", d)
	}
}
