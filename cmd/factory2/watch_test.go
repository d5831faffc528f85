package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/factory2/factory2/avro"
	"github.com/factory2/factory2/internal/embedded"
	"github.com/factory2/factory2/topics"
)

// embeddedBroker starts the broker of `factory2 dev` on a free port,
// in memory, for the test.
func embeddedBroker(t *testing.T) []string {
	t.Helper()
	b, err := embedded.Start(embedded.Options{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return []string{b.Addr()}
}

// TestWatchUndecodable: a record that does not decode is printed with an
// error and its raw value; dead letters with their headers.
func TestWatchUndecodable(t *testing.T) {
	e := evSetup(t, embeddedBroker(t))
	codec, err := avro.NewCodec()
	if err != nil {
		t.Fatal(err)
	}
	good, err := codec.Encode(&avro.BuildEvent{Envelope: avro.Envelope{ID: "b1", Source: "s", EventTime: time.Unix(1, 0)},
		Kind: avro.BuildTag, NVR: "a-1-1", Name: "a", Version: "1", Release: "1", Tag: "t"})
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.cfg.Brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), evTimeout)
	defer cancel()
	build, dlq := e.cat.Name(topics.EventsBuild), e.cat.Name(topics.DeadLetters)
	dlqHeaders := []kgo.RecordHeader{
		{Key: "factory2.dlq.reason", Value: []byte("avro: not an Avro record")},
		{Key: "factory2.dlq.kind", Value: []byte("decode")},
		{Key: "factory2.dlq.topic", Value: []byte(build)},
		{Key: "other", Value: []byte("not shown")},
	}
	if err := cl.ProduceSync(ctx,
		&kgo.Record{Topic: build, Key: []byte("k"), Value: []byte("not avro")},
		&kgo.Record{Topic: build, Key: []byte("a-1-1"), Value: good},
		&kgo.Record{Topic: dlq, Key: []byte("k"), Value: []byte{0xc3, 0x01, 0xff}, Headers: dlqHeaders},
		&kgo.Record{Topic: dlq, Key: []byte("a-1-1"), Value: good, Headers: dlqHeaders[1:2]},
	).FirstErr(); err != nil {
		t.Fatal(err)
	}

	stdout, stderr, err := e.run(t, "", "watch", "events.build", "--from-beginning")
	if err != nil {
		t.Fatalf("watch: %v\n%s", err, stderr)
	}
	lines := evLines[watchLine](t, stdout)
	if len(lines) != 2 {
		t.Fatalf("watch printed %d lines, want 2:\n%s", len(lines), stdout)
	}
	for _, l := range lines {
		switch l.Key {
		case "k":
			if !strings.Contains(l.Error, "avro") || l.Value != "not avro" || l.Record != nil {
				t.Errorf("undecodable record: %+v", l)
			}
		default:
			if l.Error != "" || !strings.Contains(string(l.Record), `"id":"b1"`) || l.Value != "" {
				t.Errorf("good record: %+v", l)
			}
		}
	}

	stdout, stderr, err = e.run(t, "", "watch", "deadletter", "--from-beginning")
	if err != nil {
		t.Fatalf("watch deadletter: %v\n%s", err, stderr)
	}
	lines = evLines[watchLine](t, stdout)
	if len(lines) != 2 {
		t.Fatalf("watch deadletter printed %d lines, want 2:\n%s", len(lines), stdout)
	}
	for _, l := range lines {
		if l.Error != "" || l.Headers["factory2.dlq.kind"] == "" || l.Headers["other"] != "" {
			t.Errorf("dead letter: %+v", l)
		}
		switch l.Key {
		case "k":
			if l.ValueBase64 != "wwH/" || l.Headers["factory2.dlq.reason"] != "avro: not an Avro record" || l.Record != nil {
				t.Errorf("undecodable dead letter: %+v", l)
			}
		default:
			if l.Record == nil || l.ValueBase64 == "" {
				t.Errorf("decodable dead letter: %+v", l)
			}
		}
	}
}

func TestWatchErrors(t *testing.T) {
	e := evSetup(t, embeddedBroker(t))
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"watch", "events"}, "nothing to read"},
		{[]string{"watch", "evnts", "--from-beginning"}, "unknown topic evnts"},
		{[]string{"watch", "events", "--from-beginning", "--max", "-1"}, "--max -1"},
		{[]string{"watch"}, "requires at least 1 arg"},
	} {
		if _, _, err := e.run(t, "", tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error with %q", tc.args, err, tc.want)
		}
	}
}

// TestWatchTimeout: --timeout with an unreached --max is an error; with
// --follow alone it is how watch ends.
func TestWatchTimeout(t *testing.T) {
	e := evSetup(t, embeddedBroker(t))
	start := time.Now()
	_, _, err := e.run(t, "", "watch", "gating", "--follow", "--max", "1", "--timeout", "200ms")
	if err == nil || !strings.Contains(err.Error(), "timed out after 200ms with 0 of 1 records") {
		t.Errorf("watch --max 1 --timeout: %v", err)
	}
	if _, _, err := e.run(t, "", "watch", "gating", "--follow", "--timeout", "200ms"); err != nil {
		t.Errorf("watch --follow --timeout: %v", err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("timeouts took %v", d)
	}
}

func TestWatchTopics(t *testing.T) {
	cat, err := topics.New(topics.Config{Prefix: "p."})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"decisions"}, "p.decisions.gating p.decisions.autosign p.decisions.signed p.decisions.compose-ready p.decisions.rebuild"},
		{[]string{"events"}, "p.events.build p.events.sign p.events.test p.events.policy p.events.compose p.events.deps"},
		{[]string{"gating", "autosign", "signed", "compose-ready", "rebuild", "deadletter"}, "p.decisions.gating p.decisions.autosign p.decisions.signed p.decisions.compose-ready p.decisions.rebuild p.deadletter"},
		{[]string{"events.build", "p.events.build", "events"}, "p.events.build p.events.sign p.events.test p.events.policy p.events.compose p.events.deps"},
		{[]string{"somebody.elses.topic"}, "somebody.elses.topic"},
	} {
		if got := strings.Join(watchTopics(cat, tc.args), " "); got != tc.want {
			t.Errorf("watchTopics(%v) = %s, want %s", tc.args, got, tc.want)
		}
	}
}
