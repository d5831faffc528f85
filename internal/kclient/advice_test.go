package kclient_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/factory2/factory2/internal/kafkatest"
	"github.com/factory2/factory2/internal/kclient"
)

func advice(t *testing.T, brokers []string) []string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	got, err := kclient.BrokerAdvice(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// TestBrokerAdvice checks the advice on the transaction retry backoff: none
// for kafka.sh's brokers (1 ms), one line for a broker left at Kafka's
// default (20 ms), and none from the embedded broker, which does not report
// the setting.
func TestBrokerAdvice(t *testing.T) {
	t.Run("tuned", func(t *testing.T) {
		env := kafkatest.RequireReal(t)
		if got := advice(t, env.Brokers()); len(got) != 0 {
			t.Errorf("kafka.sh's broker got advice: %q", got)
		}
	})
	t.Run("default", func(t *testing.T) {
		b := kafkatest.StartBrokers(t, 1, kafkatest.BrokerProperties("add.partitions.to.txn.retry.backoff.ms=20"))
		got := advice(t, b.Addrs())
		if len(got) != 1 || !strings.Contains(got[0], "broker 1: add.partitions.to.txn.retry.backoff.ms=20") ||
			!strings.Contains(got[0], "Set it to 1") {
			t.Errorf("advice %q: want one line on broker 1's add.partitions.to.txn.retry.backoff.ms=20", got)
		}
	})
	t.Run("embedded", func(t *testing.T) {
		fake, err := kfake.NewCluster(kfake.NumBrokers(1))
		if err != nil {
			t.Fatal(err)
		}
		defer fake.Close()
		if got := advice(t, fake.ListenAddrs()); len(got) != 0 {
			t.Errorf("the embedded broker got advice: %q", got)
		}
	})
}
