package ingest

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/factory2/factory2/avro"
	"github.com/factory2/factory2/internal/kafkatest"
	"github.com/factory2/factory2/topics"
)

// ioTimeout bounds each Kafka step of a test.
const ioTimeout = 60 * time.Second

// catalogOn creates the catalog's topics, under a prefix of the test's
// own, on env, and deletes them when the test ends.
func catalogOn(t *testing.T, env *kafkatest.Env) *topics.Catalog {
	t.Helper()
	cat, err := topics.New(topics.Config{Prefix: kafkatest.UniqueName(t) + ".", Partitions: 2, Replication: 1, InputRetentionMS: -1, DecisionRetentionMS: -1})
	if err != nil {
		t.Fatal(err)
	}
	cl := kafkatest.Client(t, env)
	ctx, cancel := context.WithTimeout(t.Context(), ioTimeout)
	defer cancel()
	if _, err := cat.Ensure(ctx, cl); err != nil {
		t.Fatalf("creating topics: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := kadm.NewClient(cl).DeleteTopics(ctx, topics.Names(cat.Specs())...); err != nil {
			t.Logf("deleting topics: %v", err)
		}
	})
	return cat
}

func newTestProducer(t *testing.T, env *kafkatest.Env, opts ...kgo.Opt) *Producer {
	t.Helper()
	return newTestProducerConfig(t, ProducerConfig{Brokers: env.Brokers(), ClientOpts: opts})
}

// newTestProducerConfig completes cfg (transactional id, timeout, codec)
// and returns its Producer.
func newTestProducerConfig(t *testing.T, cfg ProducerConfig) *Producer {
	t.Helper()
	codec, err := avro.NewCodec()
	if err != nil {
		t.Fatal(err)
	}
	cfg.TransactionalID = kafkatest.UniqueName(t)
	cfg.TransactionTimeout = 10 * time.Second
	cfg.Codec = codec
	p, err := NewProducer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// readCommitted reads every committed record of the catalog's input
// topics, stopping at the end offsets present when it is called.
func readCommitted(t *testing.T, env *kafkatest.Env, cat *topics.Catalog) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), ioTimeout)
	defer cancel()
	names := topics.Names(cat.ByRole(topics.Input))
	adm := kafkatest.Admin(t, env)
	ends, err := adm.ListCommittedOffsets(ctx, names...)
	if err != nil {
		t.Fatal(err)
	}
	pending := map[string]map[int32]int64{}
	parts := map[string]map[int32]kgo.Offset{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			if pending[o.Topic] == nil {
				pending[o.Topic], parts[o.Topic] = map[int32]int64{}, map[int32]kgo.Offset{}
			}
			pending[o.Topic][o.Partition] = o.Offset
			parts[o.Topic][o.Partition] = kgo.NewOffset().AtStart()
		}
	})
	if len(pending) == 0 {
		return nil
	}
	cl := kafkatest.Client(t, env, kgo.ConsumePartitions(parts), kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())
	var got []*kgo.Record
	for len(pending) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading: %v (still pending %v)", ctx.Err(), pending)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s[%d]: %v", topic, p, err) })
		for _, r := range fs.Records() {
			if end, ok := pending[r.Topic][r.Partition]; ok && r.Offset+1 >= end {
				delete(pending[r.Topic], r.Partition)
				if len(pending[r.Topic]) == 0 {
					delete(pending, r.Topic)
				}
			}
			if !r.Attrs.IsControl() {
				got = append(got, r)
			}
		}
	}
	return got
}

func parseBatch(t *testing.T, cat *topics.Catalog, input string) []Event {
	t.Helper()
	p := &Parser{Catalog: cat}
	evs, err := p.ParseJSON([]byte(input))
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func TestProducerRoundTrip(t *testing.T) {
	env := kafkatest.Cluster(t)
	cat := catalogOn(t, env)
	p := newTestProducer(t, env)
	evs := parseBatch(t, cat, buildLine+"\n"+signLine+"\n"+testLine)
	ctx, cancel := context.WithTimeout(t.Context(), ioTimeout)
	defer cancel()
	res, err := p.Produce(ctx, evs)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 3 || res[0].Topic != cat.Name(topics.EventsBuild) || res[1].Type != "sign" || res[2].ID != evs[2].Record.Env().ID {
		t.Fatalf("produced %+v", res)
	}

	codec, _ := avro.NewCodec()
	got := readCommitted(t, env, cat)
	if len(got) != 3 {
		t.Fatalf("read %d records, want 3", len(got))
	}
	var ids []string
	for _, r := range got {
		rec, err := codec.Decode(r.Value)
		if err != nil {
			t.Fatal(err)
		}
		if string(r.Key) != "bash-5.2.26-3.fc41" {
			t.Errorf("key %q", r.Key)
		}
		ids = append(ids, rec.Env().ID)
	}
	for _, ev := range evs {
		if !slices.Contains(ids, ev.Record.Env().ID) {
			t.Errorf("event %s not read back (read %v)", ev.Record.Env().ID, ids)
		}
	}
	// The same key lands on the same partition of every input topic.
	for _, r := range res[1:] {
		if r.Partition != res[0].Partition {
			t.Errorf("%s on partition %d, build on %d", r.Topic, r.Partition, res[0].Partition)
		}
	}
}

func TestProducerNoTopic(t *testing.T) {
	env := kafkatest.Cluster(t)
	cat := catalogOn(t, env)
	other, err := topics.New(topics.Config{Prefix: kafkatest.UniqueName(t) + "-absent."})
	if err != nil {
		t.Fatal(err)
	}
	p := newTestProducer(t, env)
	ctx, cancel := context.WithTimeout(t.Context(), ioTimeout)
	defer cancel()
	evs := append(parseBatch(t, cat, buildLine), parseBatch(t, other, signLine)...)
	if _, err := p.Produce(ctx, evs); !errors.Is(err, ErrNoTopic) || !strings.Contains(err.Error(), other.Name(topics.EventsSign)) {
		t.Fatalf("Produce = %v, want ErrNoTopic naming %s", err, other.Name(topics.EventsSign))
	}
	if got := readCommitted(t, env, cat); len(got) != 0 {
		t.Fatalf("%d records produced", len(got))
	}
}

// TestProducerAbortsOnFailure fails the produce of one topic of a batch:
// the transaction is aborted, so a read_committed reader sees nothing of
// it, and the next batch goes through.
func TestProducerAbortsOnFailure(t *testing.T) {
	t.Setenv(kafkatest.EnvBrokers, "") // fault injection needs kfake
	fenv := kafkatest.Cluster(t)
	fake := fenv.Fake()
	cat := catalogOn(t, fenv)
	p := newTestProducer(t, fenv)

	signTopic := cat.Name(topics.EventsSign)
	ctx, cancel := context.WithTimeout(t.Context(), ioTimeout)
	defer cancel()
	td, err := kafkatest.Admin(t, fenv).ListTopics(ctx, signTopic)
	if err != nil {
		t.Fatal(err)
	}
	signID := td[signTopic].ID
	fake.ControlKey(int16(kmsg.Produce), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		req := kreq.(*kmsg.ProduceRequest)
		hit := slices.ContainsFunc(req.Topics, func(rt kmsg.ProduceRequestTopic) bool {
			return rt.Topic == signTopic || rt.TopicID == signID // v13+ names topics by id
		})
		if !hit {
			return nil, nil, false // not handled: the function stays
		}
		resp := req.ResponseKind().(*kmsg.ProduceResponse)
		for _, rt := range req.Topics {
			st := kmsg.NewProduceResponseTopic()
			st.Topic, st.TopicID = rt.Topic, rt.TopicID
			for _, rp := range rt.Partitions {
				sp := kmsg.NewProduceResponseTopicPartition()
				sp.Partition = rp.Partition
				sp.ErrorCode = kerr.InvalidRecord.Code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})

	_, err = p.Produce(ctx, parseBatch(t, cat, buildLine+"\n"+signLine+"\n"+testLine))
	if err == nil || !strings.Contains(err.Error(), "aborted") {
		t.Fatalf("Produce = %v, want an aborted transaction", err)
	}
	if got := readCommitted(t, fenv, cat); len(got) != 0 {
		t.Fatalf("read_committed sees %d records of an aborted batch", len(got))
	}

	// The failure was injected once; the producer recovers.
	if _, err := p.Produce(ctx, parseBatch(t, cat, buildLine+"\n"+testLine)); err != nil {
		t.Fatalf("next batch: %v", err)
	}
	if got := readCommitted(t, fenv, cat); len(got) != 2 {
		t.Fatalf("read %d records, want 2", len(got))
	}
}

// bigSource returns n random, incompressible bytes for an envelope source.
func bigSource(n int) string {
	b := make([]byte, n*3/4+1)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)[:n]
}

// TestProducerRefusesLargeEvent: an event over MaxEventBytes is refused
// with a *TooLargeError naming it before the producer connects (the
// brokers here do not exist), so nothing of its batch is produced.
func TestProducerRefusesLargeEvent(t *testing.T) {
	cat, err := topics.New(topics.Config{Prefix: "t."})
	if err != nil {
		t.Fatal(err)
	}
	p := newTestProducerConfig(t, ProducerConfig{Brokers: []string{"127.0.0.1:1"}, MaxEventBytes: 1000})
	big := strings.Replace(signLine, "robosignatory", bigSource(2000), 1)
	evs := parseBatch(t, cat, "["+buildLine+",\n"+big+"]\n"+testLine)
	_, err = p.Produce(t.Context(), evs)
	var tl *TooLargeError
	if !errors.As(err, &tl) {
		t.Fatalf("Produce = %v, want a *TooLargeError", err)
	}
	if tl.Index != 2 || tl.Line != 2 || tl.Element != 2 || tl.Type != "sign" || tl.Size <= 2000 || tl.Max != 1000 || tl.Err != nil {
		t.Errorf("refused %+v, want event 2 (line 2, array element 2, sign) of over 2000 bytes, max 1000", tl)
	}
	for _, w := range []string{"line 2 (array element 2)", "event 2 (sign)", fmt.Sprintf("%d bytes", tl.Size), "1000 bytes"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %q", err, w)
		}
	}
}

// TestProducerBrokerRefusesLargeEvent: a record within MaxEventBytes that
// Kafka refuses as too large (the topic's max.message.bytes is lower)
// gives a *TooLargeError wrapping the broker's error, and the batch is
// aborted.
func TestProducerBrokerRefusesLargeEvent(t *testing.T) {
	env := kafkatest.Cluster(t)
	cat := catalogOn(t, env)
	ctx, cancel := context.WithTimeout(t.Context(), ioTimeout)
	defer cancel()
	kafkatest.SetTopicConfig(t, kafkatest.Client(t, env), cat.Name(topics.EventsSign), "max.message.bytes", "2000")

	p := newTestProducer(t, env)
	big := strings.Replace(signLine, "robosignatory", bigSource(8000), 1)
	_, err := p.Produce(ctx, parseBatch(t, cat, buildLine+"\n"+big))
	var tl *TooLargeError
	if !errors.As(err, &tl) || !errors.Is(err, kerr.MessageTooLarge) || tl.Index != 2 || tl.Line != 2 || tl.Max != 0 {
		t.Fatalf("Produce = %v (%+v), want a *TooLargeError for event 2 wrapping MESSAGE_TOO_LARGE", err, tl)
	}
	if !strings.Contains(err.Error(), "aborted") {
		t.Errorf("error %q does not say the batch was aborted", err)
	}
	if got := readCommitted(t, env, cat); len(got) != 0 {
		t.Fatalf("read_committed sees %d records of a refused batch", len(got))
	}
}

// TestProducerMaxEventBytes: the limit is checked when the producer is
// made.
func TestProducerMaxEventBytes(t *testing.T) {
	codec, err := avro.NewCodec()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{-1, LargestMaxEventBytes + 1} {
		if _, err := NewProducer(ProducerConfig{Brokers: []string{"b:9092"}, TransactionalID: "x", Codec: codec, MaxEventBytes: n}); err == nil {
			t.Errorf("MaxEventBytes %d accepted", n)
		}
	}
}
