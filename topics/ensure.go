package topics

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Action is what Ensure did or found for one topic.
type Action string

const (
	// Created means the topic was missing and Ensure created it.
	Created Action = "created"
	// OK means the topic exists as specified.
	OK Action = "ok"
	// Drifted means the topic exists but differs from its spec; Ensure
	// changed nothing.
	Drifted Action = "drift"
	// Missing means the topic does not exist (Describe only).
	Missing Action = "missing"
)

// Status is the state of one topic against its spec.
type Status struct {
	Topic      string            `json:"topic"`
	Alias      string            `json:"alias"`
	Role       Role              `json:"role"`
	Action     Action            `json:"status"`
	Partitions int32             `json:"partitions"`
	Replicas   int16             `json:"replication"`
	Configs    map[string]string `json:"configs,omitempty"`
	// Drift lists each difference from the spec, for people.
	Drift []string `json:"drift,omitempty"`
	Key   string   `json:"key"`
	Doc   string   `json:"doc"`
}

// Ensure creates every missing topic of the catalog and reports, for every
// topic, whether it created it, or finds it as specified or drifted. It
// never deletes or repartitions a topic. Creating a topic that another
// process creates meanwhile is no error: that topic is reported like one
// that existed. An error is returned only when the cluster could not be
// asked or a creation failed; drift is not an error. On error the statuses
// are nil.
//
// Ensure returns once every live broker's metadata shows every topic of the
// catalog, and every topic created just now (by anyone) with all its
// partitions led, so a producer or consumer started next finds each topic
// whichever broker it asks. Kafka creates topics asynchronously: the
// controller commits a new topic, and each broker learns of it a moment
// later.
func (c *Catalog) Ensure(ctx context.Context, cl *kgo.Client) ([]Status, error) {
	names := Names(c.specs)
	md, err := topicMetadata(ctx, cl, names)
	if err != nil {
		return nil, err
	}
	created, fresh, err := c.createMissing(ctx, kadm.NewClient(cl), md)
	if err != nil {
		return nil, err
	}
	if err := waitVisible(ctx, cl, names, fresh); err != nil {
		return nil, err
	}
	if len(fresh) > 0 {
		// Topics created just now, by us or another process: their details
		// come from the metadata that shows them.
		if md, err = topicMetadata(ctx, cl, names); err != nil {
			return nil, err
		}
		cl.PurgeTopicsFromClient(fresh...) // drop cached "unknown topic" answers
	}
	return c.report(ctx, cl, md, created)
}

// Describe reports every topic of the catalog against the cluster without
// changing anything.
func (c *Catalog) Describe(ctx context.Context, cl *kgo.Client) ([]Status, error) {
	md, err := topicMetadata(ctx, cl, Names(c.specs))
	if err != nil {
		return nil, err
	}
	return c.report(ctx, cl, md, nil)
}

// createMissing creates each topic that md lacks. It returns the topics it
// created, and those plus the ones another process created meanwhile
// (fresh: they may not be known to every broker yet).
func (c *Catalog) createMissing(ctx context.Context, adm *kadm.Client, md map[string]kmsg.MetadataResponseTopic) (created map[string]bool, fresh []string, err error) {
	created = make(map[string]bool)
	for _, s := range c.specs {
		if exists(md, s.Name) {
			continue
		}
		ok, err := c.create(ctx, adm, s)
		if err != nil {
			return nil, nil, err
		}
		created[s.Name] = ok
		fresh = append(fresh, s.Name)
	}
	return created, fresh, nil
}

// create creates the topic of s. It reports false, and no error, when the
// topic already exists: another process created it since the metadata said
// it was missing, or the broker that answered did not know of it yet.
func (c *Catalog) create(ctx context.Context, adm *kadm.Client, s Spec) (bool, error) {
	cfg := make(map[string]*string, len(s.Configs))
	for k, v := range s.Configs {
		cfg[k] = &v
	}
	// kadm returns the topic's error both in resp.Err and as err.
	resp, err := adm.CreateTopic(ctx, s.Partitions, s.Replication, cfg, s.Name)
	switch {
	case errors.Is(err, kerr.TopicAlreadyExists):
		return false, nil
	case err != nil && resp.ErrMessage != "":
		return false, fmt.Errorf("topics: creating %s: %w (%s)", s.Name, err, resp.ErrMessage)
	case err != nil:
		return false, fmt.Errorf("topics: creating %s: %w", s.Name, err)
	}
	return true, nil
}

// report builds the status of every topic from md, the metadata of the
// catalog's topics, and the topics' configs; created holds the topics this
// call created.
func (c *Catalog) report(ctx context.Context, cl *kgo.Client, md map[string]kmsg.MetadataResponseTopic, created map[string]bool) ([]Status, error) {
	out := make([]Status, len(c.specs))
	var existing []string
	for i, s := range c.specs {
		out[i] = Status{Topic: s.Name, Alias: s.Alias, Role: s.Role, Key: s.Key, Doc: s.Doc}
		switch {
		case created[s.Name]:
			out[i].Action = Created
			out[i].Partitions, out[i].Replicas, out[i].Configs = s.Partitions, s.Replication, s.Configs
			continue
		case !exists(md, s.Name):
			out[i].Action = Missing
			continue
		}
		t := md[s.Name]
		out[i].Partitions = int32(len(t.Partitions))
		if len(t.Partitions) > 0 {
			out[i].Replicas = int16(len(t.Partitions[0].Replicas))
		}
		if out[i].Partitions != s.Partitions {
			out[i].Drift = append(out[i].Drift, fmt.Sprintf("partitions: have %d, want %d", out[i].Partitions, s.Partitions))
		}
		if out[i].Replicas != s.Replication {
			out[i].Drift = append(out[i].Drift, fmt.Sprintf("replication: have %d, want %d", out[i].Replicas, s.Replication))
		}
		existing = append(existing, s.Name)
	}
	if len(existing) == 0 {
		return out, nil
	}
	have, err := describeConfigs(ctx, kadm.NewClient(cl), existing)
	if err != nil {
		return nil, err
	}
	for i, s := range c.specs {
		m, ok := have[s.Name]
		if !ok {
			continue
		}
		out[i].Configs = make(map[string]string)
		for _, k := range slices.Sorted(maps.Keys(s.Configs)) {
			out[i].Configs[k] = m[k]
			if !sameConfig(m[k], s.Configs[k]) {
				out[i].Drift = append(out[i].Drift, fmt.Sprintf("%s: have %q, want %q", k, m[k], s.Configs[k]))
			}
		}
		if len(out[i].Drift) > 0 {
			out[i].Action = Drifted
		} else {
			out[i].Action = OK
		}
	}
	return out, nil
}

// topicMetadata asks one broker, whichever kgo picks, for the metadata of
// topics, bypassing kgo's metadata cache (kgo sends every MetadataRequest
// it is given). A topic the broker does not know is absent from the map.
func topicMetadata(ctx context.Context, cl *kgo.Client, topics []string) (map[string]kmsg.MetadataResponseTopic, error) {
	resp, err := metadataRequest(topics).RequestWith(ctx, cl)
	if err != nil {
		return nil, fmt.Errorf("topics: listing topics: %w", err)
	}
	md := make(map[string]kmsg.MetadataResponseTopic, len(resp.Topics))
	for _, t := range resp.Topics {
		switch err := kerr.ErrorForCode(t.ErrorCode); {
		case t.Topic == nil, errors.Is(err, kerr.UnknownTopicOrPartition):
		case err != nil && !kerr.IsRetriable(err):
			return nil, fmt.Errorf("topics: listing topic %s: %w", *t.Topic, err)
		default:
			md[*t.Topic] = t
		}
	}
	return md, nil
}

// exists reports whether md shows topic without a topic error. A retriable
// error (say, a leader election under way) makes it absent: creating it then
// finds that it exists, and waitVisible waits for it.
func exists(md map[string]kmsg.MetadataResponseTopic, topic string) bool {
	t, ok := md[topic]
	return ok && t.ErrorCode == 0
}

func metadataRequest(topics []string) *kmsg.MetadataRequest {
	req := kmsg.NewPtrMetadataRequest()
	for _, t := range topics {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(t)
		req.Topics = append(req.Topics, rt)
	}
	return req
}

// waitVisible polls, with a backoff, the metadata of every live broker
// until each shows every topic, and each topic of fresh with all its
// partitions led. The live brokers are those the metadata lists (KRaft
// lists unfenced brokers only), asked anew every round: a broker just
// killed drops out once the controller fences it.
func waitVisible(ctx context.Context, cl *kgo.Client, topics, fresh []string) error {
	return poll(ctx, func() error { return visibleEverywhere(ctx, cl, topics, fresh) },
		"waiting until every broker knows the catalog's topics")
}

// visibleEverywhere asks any broker which brokers are live, then each of
// them for the topics, and says what some broker does not show yet.
func visibleEverywhere(ctx context.Context, cl *kgo.Client, topics, fresh []string) error {
	req := metadataRequest(topics)
	resp, err := req.RequestWith(ctx, cl) // also tells cl every live broker's address
	if err != nil {
		return err
	}
	if len(resp.Brokers) == 0 {
		return errors.New("the metadata lists no live broker")
	}
	var errs []error
	for _, b := range resp.Brokers {
		bresp, err := req.RequestWith(ctx, cl.Broker(int(b.NodeID)))
		if err == nil {
			err = shows(bresp, topics, fresh)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("broker %d: %w", b.NodeID, err))
		}
	}
	return errors.Join(errs...)
}

// shows says which of topics resp lacks, and which of fresh has a
// partition without a leader.
func shows(resp *kmsg.MetadataResponse, topics, fresh []string) error {
	byName := make(map[string]kmsg.MetadataResponseTopic, len(resp.Topics))
	for _, t := range resp.Topics {
		if t.Topic != nil {
			byName[*t.Topic] = t
		}
	}
	var errs []error
	for _, name := range topics {
		t, ok := byName[name]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("%s not in metadata", name))
		case t.ErrorCode != 0:
			errs = append(errs, fmt.Errorf("%s: %w", name, kerr.ErrorForCode(t.ErrorCode)))
		case len(t.Partitions) == 0:
			errs = append(errs, fmt.Errorf("%s: no partitions", name))
		}
	}
	for _, name := range fresh {
		for _, p := range byName[name].Partitions {
			if p.ErrorCode != 0 || p.Leader < 0 {
				errs = append(errs, fmt.Errorf("%s partition %d: no leader (%v)", name, p.Partition, kerr.ErrorForCode(p.ErrorCode)))
			}
		}
	}
	return errors.Join(errs...)
}

// unknownTimeout bounds how long describeConfigs asks again about a topic
// that the broker answering does not know yet.
const unknownTimeout = 10 * time.Second

// describeConfigs returns the configs of topics, each as key → value. A
// broker that has not yet learned of a topic created a moment ago elsewhere
// answers UNKNOWN_TOPIC_OR_PARTITION; then it asks again, for up to
// unknownTimeout.
func describeConfigs(ctx context.Context, adm *kadm.Client, topics []string) (map[string]map[string]string, error) {
	uctx, cancel := context.WithTimeout(ctx, unknownTimeout)
	defer cancel()
	var have map[string]map[string]string
	err := poll(uctx, func() error {
		rcs, err := adm.DescribeTopicConfigs(ctx, topics...)
		if err != nil {
			return permanent{fmt.Errorf("topics: describing configs: %w", err)}
		}
		have = make(map[string]map[string]string)
		var unknown []error
		for _, rc := range rcs {
			switch {
			case errors.Is(rc.Err, kerr.UnknownTopicOrPartition):
				unknown = append(unknown, fmt.Errorf("%s: %w", rc.Name, rc.Err))
				continue
			case rc.Err != nil:
				return permanent{fmt.Errorf("topics: describing configs of %s: %w", rc.Name, rc.Err)}
			}
			m := make(map[string]string)
			for _, kv := range rc.Configs {
				if kv.Value != nil {
					m[kv.Key] = *kv.Value
				}
			}
			have[rc.Name] = m
		}
		return errors.Join(unknown...)
	}, "describing configs")
	if err != nil {
		return nil, err
	}
	return have, nil
}

// permanent marks an error that poll returns at once rather than trying again.
type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }
func (p permanent) Unwrap() error { return p.err }

// poll calls try until it returns nil or a permanent error, pausing 20ms,
// then twice as long each time up to 1s. When ctx ends first, it returns
// ctx's error and try's last one, prefixed with what it was doing.
func poll(ctx context.Context, try func() error, doing string) error {
	for pause := 20 * time.Millisecond; ; pause = min(2*pause, time.Second) {
		err := try()
		var p permanent
		switch {
		case err == nil:
			return nil
		case errors.As(err, &p):
			return p.err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("topics: %s: %w (last: %w)", doing, ctx.Err(), err)
		case <-time.After(pause):
		}
	}
}

// sameConfig compares config values, treating numbers numerically.
func sameConfig(have, want string) bool {
	if have == want {
		return true
	}
	h, err1 := strconv.ParseInt(have, 10, 64)
	w, err2 := strconv.ParseInt(want, 10, 64)
	return err1 == nil && err2 == nil && h == w
}
