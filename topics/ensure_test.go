package topics

// Ensure's races on kfake: a cluster of three in-process brokers whose answers
// control functions change, to play what a real cluster does only sometimes.

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// fakeCluster starts three kfake brokers and returns them with a catalog
// of three-way replicated topics and a client; everything is closed when t ends.
func fakeCluster(t *testing.T) (*kfake.Cluster, *Catalog, *kgo.Client) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(3))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cat, err := New(Config{Prefix: "f2.", Partitions: 3, Replication: 3, MinInSyncReplicas: 2,
		InputRetentionMS: -1, DecisionRetentionMS: -1})
	if err != nil {
		t.Fatal(err)
	}
	cat.AddChangelog("gating", "subjects")
	return c, cat, newClient(t, c)
}

func newClient(t *testing.T, c *kfake.Cluster) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func byTopic(st []Status) map[string]Status {
	m := make(map[string]Status, len(st))
	for _, s := range st {
		m[s.Topic] = s
	}
	return m
}

// checkCreatedOnce checks two concurrent Ensure results: each topic was created
// by exactly one of them and found as specified by the other.
func checkCreatedOnce(t *testing.T, cat *Catalog, a, b []Status) {
	t.Helper()
	ma, mb := byTopic(a), byTopic(b)
	for _, name := range Names(cat.Specs()) {
		sa, sb := ma[name], mb[name]
		if !(sa.Action == Created && sb.Action == OK) && !(sa.Action == OK && sb.Action == Created) {
			t.Errorf("%s: %s and %s (drift %v %v), want created by one Ensure and ok to the other",
				name, sa.Action, sb.Action, sa.Drift, sb.Drift)
		}
	}
}

// ensureTwice runs Ensure from two goroutines at once, each with its own client.
func ensureTwice(ctx context.Context, t *testing.T, cat *Catalog, newCl func() *kgo.Client) (a, b []Status) {
	t.Helper()
	var (
		wg   sync.WaitGroup
		sts  [2][]Status
		errs [2]error
	)
	for i := range sts {
		cl := newCl()
		wg.Go(func() { sts[i], errs[i] = cat.Ensure(ctx, cl) })
	}
	wg.Wait()
	if err := errors.Join(errs[:]...); err != nil {
		t.Fatalf("concurrent Ensure: %v", err)
	}
	return sts[0], sts[1]
}

func TestEnsureConcurrentlyOnFake(t *testing.T) {
	c, cat, _ := fakeCluster(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	a, b := ensureTwice(ctx, t, cat, func() *kgo.Client { return newClient(t, c) })
	checkCreatedOnce(t, cat, a, b)
}

// TestEnsureTopicCreatedMeanwhile plays another process creating a topic
// between Ensure's listing and its create: the create answers
// TOPIC_ALREADY_EXISTS although no broker shows the topic yet. Ensure must
// take that as success and wait until the topic shows, then report it as found.
func TestEnsureTopicCreatedMeanwhile(t *testing.T) {
	c, cat, cl := fakeCluster(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	spec, _ := cat.Lookup(EventsBuild)

	raced := make(chan struct{})
	c.ControlKey(int16(kmsg.CreateTopics), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		req := kreq.(*kmsg.CreateTopicsRequest)
		if len(req.Topics) != 1 || req.Topics[0].Topic != spec.Name {
			return nil, nil, false
		}
		resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
		rt := kmsg.NewCreateTopicsResponseTopic()
		rt.Topic = spec.Name
		rt.ErrorCode = kerr.TopicAlreadyExists.Code
		resp.Topics = append(resp.Topics, rt)
		close(raced)
		return resp, nil, true
	})

	type result struct {
		st  []Status
		err error
	}
	done := make(chan result, 1)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel() // first: a failed test stops Ensure, then waits for it
	wg.Go(func() {
		st, err := cat.Ensure(ctx, cl)
		done <- result{st, err}
	})
	select {
	case <-raced:
	case r := <-done:
		t.Fatalf("Ensure returned (%v) without creating %s", r.err, spec.Name)
	}
	// Ensure now waits for a topic nobody has created; the other process does.
	cfg := make(map[string]*string)
	for k, v := range spec.Configs {
		cfg[k] = &v
	}
	if _, err := kadm.NewClient(newClient(t, c)).CreateTopic(ctx, spec.Partitions, spec.Replication, cfg, spec.Name); err != nil {
		t.Fatalf("creating %s as the other process: %v", spec.Name, err)
	}
	r := <-done
	if r.err != nil {
		t.Fatalf("Ensure: %v", r.err)
	}
	if s := byTopic(r.st)[spec.Name]; s.Action != OK {
		t.Errorf("%s, created by another process: %s %v, want ok", spec.Name, s.Action, s.Drift)
	}
	if s := byTopic(r.st)[cat.Name(EventsSign)]; s.Action != Created {
		t.Errorf("%s: %s, want created", s.Topic, s.Action)
	}
}

// TestEnsureWaitsForEveryBroker plays a broker that learns of new topics late:
// broker 2 answers that the catalog's topics do not exist the first few times
// it is asked. Ensure must keep asking broker 2 until it shows them.
func TestEnsureWaitsForEveryBroker(t *testing.T) {
	c, cat, cl := fakeCluster(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	// The brokers as kfake lists them, for the forged answers.
	live, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, newClient(t, c))
	if err != nil {
		t.Fatal(err)
	}
	const late int32 = 2
	const hides = 4
	var hidden atomic.Int32
	c.ControlKey(int16(kmsg.Metadata), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		req := kreq.(*kmsg.MetadataRequest)
		if c.CurrentNode() != late || len(req.Topics) == 0 || hidden.Load() >= hides {
			return nil, nil, false
		}
		c.KeepControl()
		hidden.Add(1)
		resp := req.ResponseKind().(*kmsg.MetadataResponse)
		resp.Brokers, resp.ClusterID, resp.ControllerID = live.Brokers, live.ClusterID, live.ControllerID
		for _, rt := range req.Topics {
			mt := kmsg.NewMetadataResponseTopic()
			mt.Topic, mt.ErrorCode = rt.Topic, kerr.UnknownTopicOrPartition.Code
			resp.Topics = append(resp.Topics, mt)
		}
		return resp, nil, true
	})

	st, err := cat.Ensure(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if n := hidden.Load(); n != hides {
		t.Fatalf("broker %d was asked %d times while it hid the topics, want %d: Ensure returned before it showed them", late, n, hides)
	}
	for _, s := range st {
		if s.Action != Created {
			t.Errorf("%s: %s, want created", s.Topic, s.Action)
		}
	}
}

// TestDescribeAsksAgainAboutUnknownTopic plays a broker answering a config
// request before it learned of a topic that the metadata already showed.
func TestDescribeAsksAgainAboutUnknownTopic(t *testing.T) {
	c, cat, cl := fakeCluster(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if _, err := cat.Ensure(ctx, cl); err != nil {
		t.Fatal(err)
	}
	var answered atomic.Int32
	c.ControlKey(int16(kmsg.DescribeConfigs), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		req := kreq.(*kmsg.DescribeConfigsRequest)
		resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
		for _, r := range req.Resources {
			rr := kmsg.NewDescribeConfigsResponseResource()
			rr.ResourceType, rr.ResourceName = r.ResourceType, r.ResourceName
			rr.ErrorCode = kerr.UnknownTopicOrPartition.Code
			resp.Resources = append(resp.Resources, rr)
		}
		answered.Add(1)
		return resp, nil, true // once: handling drops the control function
	})
	st, err := cat.Describe(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if answered.Load() != 1 {
		t.Fatalf("the forged answer was given %d times, want once", answered.Load())
	}
	for _, s := range st {
		if s.Action != OK {
			t.Errorf("%s: %s %v, want ok", s.Topic, s.Action, s.Drift)
		}
	}
}
