package processors_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/factory2/factory2/internal/kafkatest"
	"github.com/factory2/factory2/processors"
)

// A re-derivation fixes the input ends it read to. If the processor ran on
// after that, applying it would move the group back to those ends and the
// next run would process, and emit, the later inputs a second time (seen
// as duplicate outputs). Apply refuses it and changes nothing; a
// re-derivation made again applies.
func TestApplyRefusesRederivationTheGroupConsumedPast(t *testing.T) {
	f := newFixture(t, 2)
	local := t.TempDir()
	r := f.runner(t, "a", local) // adds the changelog topic to the catalog
	f.ensure(t)
	stop := start(t, r)
	f.produce(t, 0, 40, 4)
	f.waitOutputs(t, 40)
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	v2 := f.spec()
	v2.New = func(int32) processors.Processor { return counterV2{out: f.out} }
	cfg := processors.Config{Brokers: f.env.Brokers(), InstanceID: "a", Catalog: f.cat, Codec: jsonCodec{}, StateDir: t.TempDir(), SessionTimeout: 6 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	stale, err := processors.Rederive(ctx, v2, cfg, t.TempDir(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}

	// The processor goes on after the re-derivation read its inputs.
	stop = start(t, f.runner(t, "a", local))
	f.produce(t, 40, 60, 4)
	f.waitOutputs(t, 60)
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	adm := kadm.NewClient(kafkatest.Client(t, f.env))
	changelog := f.cat.AddChangelog(v2.Name, "counts")
	snapshot := func() (map[string]map[int32]int64, int) {
		t.Helper()
		offs, err := adm.FetchOffsets(ctx, f.cat.Prefix()+v2.Name)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]map[int32]int64{}
		offs.Each(func(o kadm.OffsetResponse) {
			if m[o.Topic] == nil {
				m[o.Topic] = map[int32]int64{}
			}
			m[o.Topic][o.Partition] = o.At
		})
		recs, err := processors.ReadCommitted(ctx, f.env.Brokers(), []string{changelog})
		if err != nil {
			t.Fatal(err)
		}
		return m, len(recs)
	}
	offsetsBefore, changelogBefore := snapshot()

	_, err = processors.Apply(ctx, v2, cfg, stale)
	if err == nil || !strings.Contains(err.Error(), "re-run the re-derivation") {
		t.Fatalf("apply of a re-derivation the group consumed past: %v, want a refusal", err)
	}
	t.Logf("refused: %v", err)
	offsetsAfter, changelogAfter := snapshot()
	if fmt.Sprint(offsetsAfter) != fmt.Sprint(offsetsBefore) || changelogAfter != changelogBefore {
		t.Fatalf("the refused apply changed the group offsets (%v → %v) or the changelog (%d → %d records)",
			offsetsBefore, offsetsAfter, changelogBefore, changelogAfter)
	}
	f.waitOutputs(t, 60) // no v2 output published: outputs checks every one counts by one

	// Made again, the re-derivation covers everything consumed: it applies.
	fresh, err := processors.Rederive(ctx, v2, cfg, t.TempDir(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := processors.Apply(ctx, v2, cfg, fresh)
	if err != nil {
		t.Fatal(err)
	}
	if st.Published != 60 || st.Offsets != 2 {
		t.Fatalf("apply: %+v, want 60 published, 2 offsets", st)
	}
	offsetsApplied, _ := snapshot()
	for tp, ps := range fresh.Ends {
		for p, end := range ps {
			if got := offsetsApplied[tp][p]; got != end {
				t.Fatalf("%s/%d: group offset %d after apply, want the re-derivation's end %d", tp, p, got, end)
			}
		}
	}
}
