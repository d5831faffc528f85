package kafkatest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	// topicTimeout bounds creating a topic and waiting until metadata shows it.
	topicTimeout = 30 * time.Second
	// deleteTimeout bounds the best-effort deletion of a test's topic.
	deleteTimeout = 10 * time.Second
	// maxNameBase keeps names well under Kafka's 249-character topic name limit.
	maxNameBase = 180
)

// UniqueName returns a name for a topic, consumer group or transactional ID that no
// other test, run or process uses: t.Name() reduced to the characters Kafka allows in
// topic names ([a-zA-Z0-9-]; no '.' or '_', which Kafka treats as colliding) and a
// random suffix.
func UniqueName(t testing.TB) string {
	var b strings.Builder
	for _, r := range t.Name() {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
		if b.Len() >= maxNameBase {
			break
		}
	}
	return fmt.Sprintf("%s-%08x", b.String(), rand.Uint32())
}

// Topic creates a topic named by [UniqueName] with the given partitions, the
// brokers' default replication factor and configs (nil for defaults), waits until
// the metadata of every live broker shows every partition with a leader (a broker
// learns of a new topic a moment after the controller commits it), and deletes the
// topic when t ends (best effort: a failure is only logged).
func Topic(t testing.TB, env *Env, partitions int, configs map[string]*string) string {
	t.Helper()
	name := UniqueName(t)
	cl := Client(t, env)
	adm := kadm.NewClient(cl)

	ctx, cancel := context.WithTimeout(t.Context(), topicTimeout)
	defer cancel()
	resp, err := adm.CreateTopic(ctx, int32(partitions), -1, configs, name)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("kafkatest: creating topic %s (%d partitions, configs %v): %v", name, partitions, fmtConfigs(configs), err)
		return ""
	}
	// Registered after the client's Close, so it runs before it.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), deleteTimeout)
		defer cancel()
		resp, err := adm.DeleteTopic(ctx, name)
		if err == nil {
			err = resp.Err
		}
		if err != nil {
			t.Logf("kafkatest: deleting topic %s: %v", name, err)
		}
	})

	WaitFor(t, topicTimeout, func() error { return ledEverywhere(ctx, cl, name, partitions) })
	return name
}

// ledEverywhere asks any broker which brokers are live, then each of them for
// topic, and says where it does not show partitions with leaders. (kgo sends,
// uncached, every MetadataRequest it is given.)
func ledEverywhere(ctx context.Context, cl *kgo.Client, topic string, partitions int) error {
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
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
			err = led(bresp, topic, partitions)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("broker %d: %w", b.NodeID, err))
		}
	}
	return errors.Join(errs...)
}

// led says what resp lacks of topic's partitions and their leaders.
func led(resp *kmsg.MetadataResponse, topic string, partitions int) error {
	if len(resp.Topics) != 1 {
		return fmt.Errorf("topic %s: %d topics in metadata", topic, len(resp.Topics))
	}
	td := resp.Topics[0]
	switch {
	case td.ErrorCode != 0:
		return fmt.Errorf("topic %s: %w", topic, kerr.ErrorForCode(td.ErrorCode))
	case len(td.Partitions) != partitions:
		return fmt.Errorf("topic %s: metadata shows %d of %d partitions", topic, len(td.Partitions), partitions)
	}
	var errs []error
	for _, p := range td.Partitions {
		if p.ErrorCode != 0 {
			errs = append(errs, fmt.Errorf("partition %d: %w", p.Partition, kerr.ErrorForCode(p.ErrorCode)))
		} else if p.Leader < 0 {
			errs = append(errs, fmt.Errorf("partition %d: no leader", p.Partition))
		}
	}
	return errors.Join(errs...)
}

func fmtConfigs(configs map[string]*string) map[string]string {
	out := make(map[string]string, len(configs))
	for k, v := range configs {
		if v == nil {
			out[k] = "<nil>"
		} else {
			out[k] = *v
		}
	}
	return out
}

// WaitFor calls cond until it returns nil, sleeping between calls (from 10ms,
// doubling up to 500ms), and fails t with cond's last error if timeout passes first.
// Tests use it instead of bare sleeps to wait for anything asynchronous.
func WaitFor(t testing.TB, timeout time.Duration, cond func() error) {
	t.Helper()
	const maxPause = 500 * time.Millisecond
	deadline := time.Now().Add(timeout)
	pause := 10 * time.Millisecond
	for {
		err := cond()
		if err == nil {
			return
		}
		left := time.Until(deadline)
		if left <= 0 {
			t.Fatalf("kafkatest: still failing after %v: %v", timeout, err)
			return
		}
		time.Sleep(min(pause, left))
		pause = min(2*pause, maxPause)
	}
}

// SetTopicConfig sets one config of topic and waits until every live broker
// describes the new value. AlterConfigs answers once the controller has the
// change; each broker applies it when its metadata catches up, so a record
// produced at once can still meet the old value (seen with max.message.bytes).
func SetTopicConfig(t testing.TB, cl *kgo.Client, topic, name, value string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), topicTimeout)
	defer cancel()
	resp, err := kadm.NewClient(cl).AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: name, Value: &value}}, topic)
	if err == nil {
		_, err = resp.On(topic, func(r *kadm.AlterConfigsResponse) error { return r.Err })
	}
	if err != nil {
		t.Fatalf("kafkatest: setting %s=%s on %s: %v", name, value, topic, err)
	}
	WaitFor(t, topicTimeout, func() error { return describedEverywhere(ctx, cl, topic, name, value) })
}

// describedEverywhere asks each live broker for topic's config name and
// says where it is not value.
func describedEverywhere(ctx context.Context, cl *kgo.Client, topic, name, value string) error {
	mresp, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl)
	if err != nil {
		return err
	}
	req := kmsg.NewPtrDescribeConfigsRequest()
	rr := kmsg.NewDescribeConfigsRequestResource()
	rr.ResourceType, rr.ResourceName, rr.ConfigNames = kmsg.ConfigResourceTypeTopic, topic, []string{name}
	req.Resources = append(req.Resources, rr)
	var errs []error
	for _, b := range mresp.Brokers {
		resp, err := req.RequestWith(ctx, cl.Broker(int(b.NodeID)))
		if err == nil && len(resp.Resources) != 1 {
			err = fmt.Errorf("%d resources described", len(resp.Resources))
		}
		if err == nil {
			err = kerr.ErrorForCode(resp.Resources[0].ErrorCode)
		}
		if err == nil {
			got := "<unset>"
			for _, c := range resp.Resources[0].Configs {
				if c.Name == name && c.Value != nil {
					got = *c.Value
				}
			}
			if got != value {
				err = fmt.Errorf("%s=%s, want %s", name, got, value)
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("broker %d: %w", b.NodeID, err))
		}
	}
	return errors.Join(errs...)
}
