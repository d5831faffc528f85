package topics

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/factory2/factory2/internal/kafkatest"
)

// TestEnsureRacesOnPrivateCluster reproduces what a fresh three-broker cluster did to
// `topics ensure` followed at once by `serve`: two Ensure calls race on a fresh
// catalog (as two processes would), and right after they return a new client
// seeded with one broker, for each broker, must find every topic with all its
// partitions led. Each round uses a new catalog, so every topic is created anew.
func TestEnsureRacesOnPrivateCluster(t *testing.T) {
	b := kafkatest.StartBrokers(t, 3)
	const rounds = 3
	for round := range rounds {
		ensureRaceRound(t, b, round)
		if t.Failed() {
			t.FailNow()
		}
	}
	t.Logf("proved: %d rounds of two concurrent Ensure calls on a fresh catalog succeed, each topic created by "+
		"one and found by the other, and right after, a new client seeded with any one of the 3 brokers "+
		"lists every topic with all partitions led", rounds)
}

func ensureRaceRound(t *testing.T, b *kafkatest.Brokers, round int) {
	t.Helper()
	prefix := fmt.Sprintf("%s-%d.", kafkatest.UniqueName(t), round)
	cat, err := New(Config{Prefix: prefix, Partitions: 3, Replication: 3, MinInSyncReplicas: 2,
		InputRetentionMS: -1, DecisionRetentionMS: -1})
	if err != nil {
		t.Fatal(err)
	}
	cat.AddChangelog("gating", "subjects")
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()

	x, y := ensureTwice(ctx, t, cat, func() *kgo.Client {
		cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addrs()...))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		return cl
	})
	checkCreatedOnce(t, cat, x, y)

	var wg sync.WaitGroup
	for i, addr := range b.Addrs() {
		wg.Go(func() {
			for _, err := range listFromOneBroker(ctx, addr, Names(cat.Specs())) {
				t.Errorf("round %d: node %d (%s): %v", round, i, addr, err)
			}
		})
	}
	wg.Wait()
}

// listFromOneBroker lists names through a new client that knows only addr, so that
// the metadata comes from that broker, and returns what is missing or unled.
func listFromOneBroker(ctx context.Context, addr string, names []string) []error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		return []error{err}
	}
	defer cl.Close()
	details, err := kadm.NewClient(cl).ListTopics(ctx, names...)
	if err != nil {
		return []error{err}
	}
	var errs []error
	for _, name := range names {
		d, ok := details[name]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("topic %s not listed", name))
		case d.Err != nil:
			errs = append(errs, fmt.Errorf("topic %s: %w", name, d.Err))
		case len(d.Partitions) == 0:
			errs = append(errs, fmt.Errorf("topic %s: no partitions", name))
		}
		for _, p := range d.Partitions {
			if p.Err != nil || p.Leader < 0 {
				errs = append(errs, fmt.Errorf("topic %s partition %d: leader %d, %v", name, p.Partition, p.Leader, p.Err))
			}
		}
	}
	return errs
}
