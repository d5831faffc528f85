package kafkatest_test

// Tests of private brokers (StartBrokers): each starts Apache Kafka of its own, so
// they run under make test (FACTORY2_REQUIRE_KAFKA=1) and skip in -short mode or
// without Java and the Kafka jars.

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/factory2/factory2/internal/kafkatest"
)

// TestPrivateBrokerKeepsDataAcrossRestarts produces to a private single broker, stops
// it (SIGTERM) and starts it again, then kills it (SIGKILL) and starts it again, and
// reads the same records back each time.
func TestPrivateBrokerKeepsDataAcrossRestarts(t *testing.T) {
	b := kafkatest.StartBrokers(t, 1)
	env := b.Env()
	topic := kafkatest.Topic(t, env, 1, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()

	const n = 100
	want := make([]string, n)
	rs := make([]*kgo.Record, n)
	for i := range rs {
		want[i] = strconv.Itoa(i)
		rs[i] = &kgo.Record{Value: []byte(want[i])}
	}
	p, err := kgo.NewClient(kgo.SeedBrokers(env.Brokers()...), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	err = p.ProduceSync(ctx, rs...).FirstErr()
	p.Close()
	if err != nil {
		t.Fatalf("produce: %v", err)
	}

	b.StopAll()
	if b.Running(0) {
		t.Fatal("Running(0) after StopAll")
	}
	b.StartAll()
	if got := readValues(ctx, t, env, topic, n); !slices.Equal(got, want) {
		t.Fatalf("after a stop and start, read %q, want %q", got, want)
	}

	b.Kill(0)
	b.Start(0)
	if got := readValues(ctx, t, env, topic, n); !slices.Equal(got, want) {
		t.Fatalf("after a kill and start, read %q, want %q", got, want)
	}
	t.Logf("proved: %d records on the private broker %v survive a SIGTERM stop and a SIGKILL, "+
		"each followed by a start on the same data and address", n, b.Addrs())
}

// readValues reads the first n records of partition 0 of topic with a new client.
func readValues(ctx context.Context, t *testing.T, env *kafkatest.Env, topic string, n int) []string {
	t.Helper()
	c, err := kgo.NewClient(
		kgo.SeedBrokers(env.Brokers()...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var got []string
	for _, r := range consume(ctx, t, c, func(got []*kgo.Record) bool { return len(got) >= n }) {
		got = append(got, string(r.Value))
	}
	return got
}

// TestPrivateClusterSurvivesKill kills the leader of a replicated topic's partition
// (replication 3, min.insync.replicas 2) on a private three-node cluster: a produce
// with acks=all still succeeds, and the node started again rejoins the ISR. It also
// checks that node ids map to indexes and addresses as Brokers says, coordinators
// included.
func TestPrivateClusterSurvivesKill(t *testing.T) {
	b := kafkatest.StartBrokers(t, 3)
	env := b.Env()
	cl := kafkatest.Client(t, env)
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()

	md, err := adm.BrokerMetadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, br := range md.Brokers {
		i, ok := b.Index(br.NodeID)
		if addr := net.JoinHostPort(br.Host, strconv.Itoa(int(br.Port))); !ok || b.Addrs()[i] != addr || b.NodeID(i) != br.NodeID {
			t.Fatalf("broker %d at %s: Index = %d, %v; Addrs() = %v", br.NodeID, addr, i, ok, b.Addrs())
		}
	}
	group := kafkatest.UniqueName(t)
	if i := b.GroupCoordinatorIndex(group); !b.Running(i) {
		t.Fatalf("GroupCoordinatorIndex(%s) = %d, not a running node", group, i)
	}

	topic := kafkatest.Topic(t, env, 1, map[string]*string{"min.insync.replicas": new("2")})
	p0, err := partition0(ctx, cl, topic)
	if err != nil {
		t.Fatal(err)
	}
	leader := p0.Leader
	victim, ok := b.Index(leader)
	if !ok {
		t.Fatalf("leader %d of %s is none of our nodes", leader, topic)
	}
	b.Kill(victim)

	// A new client, as a service started after the crash would be; acks=all (the
	// default) needs 2 in-sync replicas, so the write is on both survivors.
	p, err := kgo.NewClient(kgo.SeedBrokers(env.Brokers()...), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	err = p.ProduceSync(ctx, &kgo.Record{Value: []byte("after the kill")}).FirstErr()
	p.Close()
	if err != nil {
		t.Fatalf("produce with node %d (the leader) killed: %v", victim, err)
	}
	t.Logf("produced with the leader, node %d, killed after %v", victim, time.Since(began).Round(100*time.Millisecond))

	b.Start(victim)
	kafkatest.WaitFor(t, time.Minute, func() error {
		p0, err := partition0(ctx, cl, topic)
		if err != nil {
			return err
		}
		if !slices.Contains(p0.ISR, b.NodeID(victim)) {
			return fmt.Errorf("ISR of %s is %v, without node id %d", topic, p0.ISR, b.NodeID(victim))
		}
		return nil
	})
	t.Logf("proved: with the partition leader (node id %d) of a topic with replication 3 and "+
		"min.insync.replicas 2 SIGKILLed, an acks=all produce succeeds; started again on its data, "+
		"the node rejoins the ISR", leader)
}

// partition0 asks the cluster anew (kgo caches no MetadataRequest a test sends) for
// partition 0 of topic.
func partition0(ctx context.Context, cl *kgo.Client, topic string) (kmsg.MetadataResponseTopicPartition, error) {
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return kmsg.MetadataResponseTopicPartition{}, err
	}
	for _, rt := range resp.Topics {
		if err := kerr.ErrorForCode(rt.ErrorCode); err != nil {
			return kmsg.MetadataResponseTopicPartition{}, fmt.Errorf("topic %s: %w", topic, err)
		}
		for _, p := range rt.Partitions {
			if p.Partition == 0 {
				return p, kerr.ErrorForCode(p.ErrorCode)
			}
		}
	}
	return kmsg.MetadataResponseTopicPartition{}, fmt.Errorf("no partition 0 of %s in metadata", topic)
}
