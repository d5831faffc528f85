package topics

import (
	"context"
	"errors"
	"fmt"
	"sort"
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

// Ensure creates every missing topic of the catalog (a topic another
// process created meanwhile counts as created) and reports, for every
// topic, whether it was created, is as specified, or has drifted. It never
// deletes or repartitions a topic. An error is returned only when the
// cluster could not be asked or a creation failed; drift is not an error.
//
// Ensure returns once every created topic is visible in the cluster's
// metadata with all its partitions led, so producers and consumers started
// next find it.
func (c *Catalog) Ensure(ctx context.Context, cl *kgo.Client) ([]Status, error) {
	st, err := c.check(ctx, kadm.NewClient(cl), true)
	if err != nil {
		return st, err
	}
	var created []string
	for _, s := range st {
		if s.Action == Created {
			created = append(created, s.Topic)
		}
	}
	return st, waitVisible(ctx, cl, created)
}

// waitVisible polls uncached metadata until every topic has a leader for
// each partition. Topic creation is asynchronous in Kafka: CreateTopics
// returns before every broker knows the topic.
func waitVisible(ctx context.Context, cl *kgo.Client, topics []string) error {
	if len(topics) == 0 {
		return nil
	}
	defer cl.PurgeTopicsFromClient(topics...) // drop cached "unknown topic" answers
	for backoff := 20 * time.Millisecond; ; backoff = min(2*backoff, time.Second) {
		req := kmsg.NewPtrMetadataRequest()
		for _, t := range topics {
			rt := kmsg.NewMetadataRequestTopic()
			rt.Topic = kmsg.StringPtr(t)
			req.Topics = append(req.Topics, rt)
		}
		resp, err := req.RequestWith(ctx, cl)
		if err == nil && allLed(resp, len(topics)) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("topics: waiting for %d created topics to appear: %w", len(topics), ctx.Err())
		case <-time.After(backoff):
		}
	}
}

func allLed(resp *kmsg.MetadataResponse, want int) bool {
	n := 0
	for _, t := range resp.Topics {
		if t.ErrorCode != 0 || len(t.Partitions) == 0 {
			return false
		}
		for _, p := range t.Partitions {
			if p.ErrorCode != 0 || p.Leader < 0 {
				return false
			}
		}
		n++
	}
	return n == want
}

// Describe reports every topic of the catalog against the cluster without
// changing anything.
func (c *Catalog) Describe(ctx context.Context, cl *kgo.Client) ([]Status, error) {
	return c.check(ctx, kadm.NewClient(cl), false)
}

func (c *Catalog) check(ctx context.Context, adm *kadm.Client, create bool) ([]Status, error) {
	names := Names(c.specs)
	details, err := adm.ListTopics(ctx, names...)
	if err != nil {
		return nil, fmt.Errorf("topics: listing topics: %w", err)
	}
	out := make([]Status, len(c.specs))
	var existing []string
	for i, s := range c.specs {
		out[i] = Status{Topic: s.Name, Alias: s.Alias, Role: s.Role, Key: s.Key, Doc: s.Doc}
		d, ok := details[s.Name]
		if !ok || d.Err != nil {
			if create {
				if err := c.create(ctx, adm, s); err != nil {
					return out, err
				}
				out[i].Action = Created
				out[i].Partitions, out[i].Replicas, out[i].Configs = s.Partitions, s.Replication, s.Configs
			} else {
				out[i].Action = Missing
			}
			continue
		}
		out[i].Partitions = int32(len(d.Partitions))
		if len(d.Partitions) > 0 {
			out[i].Replicas = int16(len(d.Partitions[0].Replicas))
		}
		if out[i].Partitions != s.Partitions {
			out[i].Drift = append(out[i].Drift, fmt.Sprintf("partitions: have %d, want %d", out[i].Partitions, s.Partitions))
		}
		if out[i].Replicas != s.Replication {
			out[i].Drift = append(out[i].Drift, fmt.Sprintf("replication: have %d, want %d", out[i].Replicas, s.Replication))
		}
		existing = append(existing, s.Name)
	}
	if len(existing) > 0 {
		rcs, err := adm.DescribeTopicConfigs(ctx, existing...)
		if err != nil {
			return out, fmt.Errorf("topics: describing configs: %w", err)
		}
		have := make(map[string]map[string]string)
		for _, rc := range rcs {
			if rc.Err != nil {
				return out, fmt.Errorf("topics: describing configs of %s: %w", rc.Name, rc.Err)
			}
			m := make(map[string]string)
			for _, kv := range rc.Configs {
				if kv.Value != nil {
					m[kv.Key] = *kv.Value
				}
			}
			have[rc.Name] = m
		}
		for i, s := range c.specs {
			m, ok := have[s.Name]
			if !ok {
				continue
			}
			out[i].Configs = make(map[string]string)
			keys := make([]string, 0, len(s.Configs))
			for k := range s.Configs {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
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
	}
	return out, nil
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

func (c *Catalog) create(ctx context.Context, adm *kadm.Client, s Spec) error {
	cfg := make(map[string]*string, len(s.Configs))
	for k, v := range s.Configs {
		cfg[k] = &v
	}
	resp, err := adm.CreateTopic(ctx, s.Partitions, s.Replication, cfg, s.Name)
	if err != nil {
		return fmt.Errorf("topics: creating %s: %w", s.Name, err)
	}
	if resp.Err != nil && !errors.Is(resp.Err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("topics: creating %s: %w (%s)", s.Name, resp.Err, resp.ErrMessage)
	}
	return nil
}
