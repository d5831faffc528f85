package topics

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/factory2/factory2/internal/kafkatest"
)

func TestCatalogNames(t *testing.T) {
	c, err := New(Config{Prefix: "stg.", Partitions: 3, Replication: 1})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Name(EventsBuild); got != "stg.events.build" {
		t.Fatalf("Name(events.build) = %q", got)
	}
	cl := c.AddChangelog("gating", "subjects")
	if cl != "stg.gating.subjects.changelog" {
		t.Fatalf("changelog name = %q", cl)
	}
	s, ok := c.Lookup(cl)
	if !ok || s.Role != Changelog || s.Configs["cleanup.policy"] != "compact" || s.Partitions != 3 {
		t.Fatalf("changelog spec = %+v", s)
	}
	if n := len(c.ByRole(Input)); n != 6 {
		t.Fatalf("%d input topics, want 6", n)
	}
	def, _ := New(Config{})
	if def.Name(DeadLetters) != "factory2.deadletter" {
		t.Fatalf("default prefix not applied: %s", def.Name(DeadLetters))
	}
}

func TestConfigValidateReportsAll(t *testing.T) {
	err := Config{Partitions: 0, Replication: 0, MinInSyncReplicas: 2, Prefix: "a b"}.Validate()
	if err == nil {
		t.Fatal("want errors")
	}
	for _, want := range []string{"partitions 0", "replication 0", "min.insync.replicas 2", "prefix"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestEnsureCreatesAndReportsDrift(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// The real broker under make test, kfake otherwise.
	env := kafkatest.Cluster(t)
	cl := kafkatest.Client(t, env)
	adm := kadm.NewClient(cl)
	prefix := kafkatest.UniqueName(t) + "."
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		ts, _ := adm.ListTopics(ctx)
		for _, name := range ts.Names() {
			if strings.HasPrefix(name, prefix) {
				_, _ = adm.DeleteTopics(ctx, name)
			}
		}
	})

	c, err := New(Config{Prefix: prefix, Partitions: 3, Replication: 1, InputRetentionMS: -1, DecisionRetentionMS: -1})
	if err != nil {
		t.Fatal(err)
	}
	c.AddChangelog("gating", "subjects")
	// A topic created by hand with the wrong partition count must be
	// reported, not recreated.
	if _, err := adm.CreateTopic(ctx, 2, 1, nil, prefix+"events.sign"); err != nil {
		t.Fatal(err)
	}
	st, err := c.Ensure(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	byAlias := map[string]Status{}
	for _, s := range st {
		byAlias[s.Alias] = s
	}
	if byAlias[EventsBuild].Action != Created {
		t.Errorf("events.build: %+v", byAlias[EventsBuild])
	}
	if s := byAlias[EventsSign]; s.Action != Drifted || s.Partitions != 2 || len(s.Drift) == 0 {
		t.Errorf("events.sign should have drifted: %+v", s)
	}

	st, err = c.Describe(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range st {
		switch s.Alias {
		case EventsSign:
			if s.Action != Drifted {
				t.Errorf("%s: %s, want drift", s.Alias, s.Action)
			}
		default:
			if s.Action != OK {
				t.Errorf("%s: %s %v, want ok", s.Alias, s.Action, s.Drift)
			}
		}
	}
	d, err := adm.ListTopics(ctx, prefix+"events.sign")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(d[prefix+"events.sign"].Partitions); n != 2 {
		t.Fatalf("Ensure changed a drifted topic: %d partitions", n)
	}
}

// A topic that takes large records says so in its config, which Ensure
// sets: the broker refuses records over max.message.bytes.
func TestLargeRecordTopics(t *testing.T) {
	c, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	s, _ := c.Lookup(DecisionsComposeReady)
	if s.MaxRecordBytes != ComposeReadyMaxBytes || s.Configs["max.message.bytes"] != fmt.Sprint(ComposeReadyMaxBytes+64<<10) {
		t.Fatalf("compose-ready: %d, %v", s.MaxRecordBytes, s.Configs)
	}
	cl := c.AddChangelog("compose", "composes")
	c.RaiseRecordLimit(cl, 1<<24)
	if s, _ := c.Lookup(cl); s.Configs["max.message.bytes"] == "" || s.Configs["cleanup.policy"] != "compact" {
		t.Fatalf("changelog: %v", s.Configs)
	}
	if s, _ := c.Lookup(DecisionsGating); s.Configs["max.message.bytes"] != "" {
		t.Fatalf("gating decisions raised too: %v", s.Configs)
	}
}
