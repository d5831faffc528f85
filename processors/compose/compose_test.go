package compose

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/factory2/factory2/avro"
	"github.com/factory2/factory2/topics"
)

func TestReadyTheMomentTheLastRequirementHolds(t *testing.T) {
	pl := newPipeline(t)
	if got := kinds(pl.define("f42", []string{"f42-updates"})); !slices.Equal(got, []string{"readiness-", "readiness-"}) {
		t.Fatalf("definition: %v, want readiness loading, then empty", got)
	}
	if d := pl.decisions[0]; d.Unsatisfied[0].Type != ReqLoading {
		t.Fatalf("loading compose: %+v", d.Unsatisfied)
	}
	if d := pl.decisions[1]; d.Unsatisfied[0].Type != ReqEmpty {
		t.Fatalf("empty compose: %+v", d.Unsatisfied)
	}
	pl.good("bash-5.2-1.fc42", "f42-updates")
	pl.state("curl-8.0-1.fc42", avro.StateComplete)
	pl.tag("curl-8.0-1.fc42", "f42-updates")
	pl.signed("curl-8.0-1.fc42", "key42", true)
	last := pl.decisions[len(pl.decisions)-1]
	if last.Ready || last.Kind != avro.ComposeReadiness {
		t.Fatalf("curl not gated yet, got %+v", last)
	}
	if !slices.Equal(last.Unsatisfied[0:1], []avro.Requirement{{Type: ReqNoDecision, SubjectType: "koji_build", SubjectID: "curl-8.0-1.fc42", Detail: "no gating decision in context ctx"}}) {
		t.Fatalf("blockers: %+v", last.Unsatisfied)
	}
	pl.gated("curl-8.0-1.fc42", "ctx", false, true)
	last = pl.decisions[len(pl.decisions)-1]
	if last.Ready || !last.Unsatisfied[0].Pending || last.Unsatisfied[0].Type != ReqGatingWait {
		t.Fatalf("curl's test is pending: %+v", last)
	}
	got := pl.gated("curl-8.0-1.fc42", "ctx", true, false)
	if !slices.Equal(kinds(got), []string{"readiness+", "ready+"}) {
		t.Fatalf("last requirement: %v, want readiness and ready", kinds(got))
	}
	ready := got[1]
	if want := []string{"bash-5.2-1.fc42", "curl-8.0-1.fc42"}; !slices.Equal(manifestNVRs(ready), want) {
		t.Fatalf("manifest %v, want %v", manifestNVRs(ready), want)
	}
	for _, e := range ready.Manifest {
		if e.KeyID != "key42" || len(e.DecisionIDs) != 1 {
			t.Fatalf("manifest entry %+v: want key42 and one decision id", e)
		}
	}
	if ready.Members != 2 || ready.ContentDigest == "" || ready.PolicyVersion == "" {
		t.Fatalf("ready: %+v", ready)
	}
	// The same facts again change nothing.
	if got := pl.gated("curl-8.0-1.fc42", "ctx", true, false); len(got) != 0 {
		t.Fatalf("a repeated decision: %v", kinds(got))
	}
	if got := pl.tag("bash-5.2-1.fc42", "f42-updates"); len(got) != 0 {
		t.Fatalf("a repeated tag (same time order changes it: %v)", kinds(got))
	}
}

func TestUntaggingABlockerMakesTheComposeReady(t *testing.T) {
	pl := newPipeline(t)
	pl.define("f42", []string{"f42-updates"})
	pl.state("vim-9.1-1.fc42", avro.StateComplete)
	pl.tag("vim-9.1-1.fc42", "f42-updates")
	pl.signed("vim-9.1-1.fc42", "key42", true)
	pl.gated("vim-9.1-1.fc42", "ctx", false, false)
	pl.good("bash-5.2-1.fc42", "f42-updates")
	last := pl.decisions[len(pl.decisions)-1]
	if last.Ready || last.BlockerCounts[0] != (avro.BlockerCount{Type: ReqGatingFail, Count: 1}) {
		t.Fatalf("vim fails gating: %+v", last)
	}
	got := pl.untag("vim-9.1-1.fc42", "f42-updates")
	if !slices.Equal(kinds(got), []string{"readiness+", "ready+"}) {
		t.Fatalf("untag: %v", kinds(got))
	}
	if !slices.Equal(manifestNVRs(got[1]), []string{"bash-5.2-1.fc42"}) {
		t.Fatalf("manifest %v", manifestNVRs(got[1]))
	}
}

func TestLatestTaggedBuildOfAPackageIsTheContent(t *testing.T) {
	pl := newPipeline(t)
	pl.define("f42", []string{"f42-updates", "f42"})
	pl.good("bash-5.2-1.fc42", "f42")
	first := pl.decisions[len(pl.decisions)-1]
	if first.Kind != avro.ComposeReady {
		t.Fatalf("want ready, got %v", kinds(pl.decisions))
	}
	// A newer build in the base tag replaces it, and is not signed yet:
	// the compose is blocked by it.
	pl.state("bash-5.2-2.fc42", avro.StateComplete)
	got := pl.tag("bash-5.2-2.fc42", "f42")
	if !slices.Equal(kinds(got), []string{"readiness-"}) || got[0].Members != 1 || got[0].Unsatisfied[0].SubjectID != "bash-5.2-2.fc42" {
		t.Fatalf("newer build tagged: %v %+v", kinds(got), got)
	}
	// An update in the first source tag wins over the base tag, however
	// old its tagging.
	pl.good("bash-5.2-3.fc42", "f42-updates")
	last := pl.decisions[len(pl.decisions)-1]
	if last.Kind != avro.ComposeReady || !slices.Equal(manifestNVRs(last), []string{"bash-5.2-3.fc42"}) {
		t.Fatalf("update tag wins: %v %v", kinds(pl.decisions), manifestNVRs(last))
	}
	// Untagged from the updates tag: back to the base tag's latest, which
	// is still unsigned.
	got = pl.untag("bash-5.2-3.fc42", "f42-updates")
	if !slices.Equal(kinds(got), []string{"readiness-"}) || got[0].Unsatisfied[0].SubjectID != "bash-5.2-2.fc42" {
		t.Fatalf("untag from updates: %v %+v", kinds(got), got)
	}
	// Signed and gated, it is content that was never ready: ready.
	pl.signed("bash-5.2-2.fc42", "key42", true)
	got = pl.gated("bash-5.2-2.fc42", "ctx", true, false)
	if !slices.Equal(kinds(got), []string{"readiness+", "ready+"}) || !slices.Equal(manifestNVRs(got[1]), []string{"bash-5.2-2.fc42"}) {
		t.Fatalf("%v", kinds(got))
	}
	// Untagging it goes back to the first build, whose content was ready
	// once: not ready again (the same content never yields a second
	// compose-ready).
	got = pl.untag("bash-5.2-2.fc42", "f42")
	if len(got) != 0 {
		t.Fatalf("back to content declared ready before: %v", kinds(got))
	}
}

func TestAFailingBuildBlocksExactlyTheComposesThatIncludeIt(t *testing.T) {
	pl := newPipeline(t)
	pl.define("updates", []string{"f42-updates"})
	pl.define("base", []string{"f42"})
	pl.define("everything", []string{"f42-updates", "f42"})
	pl.good("bash-5.2-1.fc42", "f42")
	pl.good("curl-8.0-1.fc42", "f42-updates")
	readyBefore := map[string]int{}
	for _, d := range pl.decisions {
		if d.Kind == avro.ComposeReady {
			readyBefore[d.ComposeID]++
		}
	}
	if readyBefore["updates"] != 1 || readyBefore["base"] != 1 || readyBefore["everything"] < 1 {
		t.Fatalf("ready before: %v", readyBefore)
	}
	got := pl.gated("bash-5.2-1.fc42", "ctx", false, false)
	var blocked []string
	for _, d := range got {
		if d.Kind == avro.ComposeReadiness && !d.Ready {
			blocked = append(blocked, d.ComposeID)
		}
	}
	slices.Sort(blocked)
	if !slices.Equal(blocked, []string{"base", "everything"}) || len(got) != 2 {
		t.Fatalf("blocked %v (%d decisions), want base and everything", blocked, len(got))
	}
}

func TestDefinitionAfterTheBuildsFindsThem(t *testing.T) {
	pl := newPipeline(t)
	pl.good("bash-5.2-1.fc42", "f42")
	pl.good("curl-8.0-1.fc42", "f42")
	pl.good("vim-9.1-1.fc42", "rawhide")
	got := pl.define("f42", []string{"f42"})
	// Loading, builds arriving, then the last partition's marker: one
	// compose-ready, with all of them, never one with part of them.
	k := kinds(got)
	if len(k) < 3 || !slices.Equal(k[len(k)-2:], []string{"readiness+", "ready+"}) || slices.Index(k, "ready+") != len(k)-1 {
		t.Fatalf("definition after builds: %v", k)
	}
	if !slices.Equal(manifestNVRs(got[len(got)-1]), []string{"bash-5.2-1.fc42", "curl-8.0-1.fc42"}) {
		t.Fatalf("manifest %v", manifestNVRs(got[len(got)-1]))
	}
	// Adding a source tag brings its builds in.
	got = pl.define("f42", []string{"f42", "rawhide"})
	if k := kinds(got); k[len(k)-1] != "ready+" || got[len(got)-1].Members != 3 {
		t.Fatalf("tag added: %v", k)
	}
}

func TestDefinitionChangesReevaluateAndRetiredStops(t *testing.T) {
	pl := newPipeline(t)
	pl.define("f42", []string{"f42"})
	pl.state("kernel-6.1-1.fc42", avro.StateComplete)
	pl.tag("kernel-6.1-1.fc42", "f42")
	pl.good("bash-5.2-1.fc42", "f42")
	if last := pl.decisions[len(pl.decisions)-1]; last.Ready {
		t.Fatal("kernel unsigned, compose ready")
	}
	got := pl.define("f42", []string{"f42"}, func(e *avro.ComposeEvent) { e.PackagesDeny = []string{"kernel*"} })
	if !slices.Equal(kinds(got), []string{"readiness-", "readiness+", "ready+"}) || !slices.Equal(manifestNVRs(got[2]), []string{"bash-5.2-1.fc42"}) {
		t.Fatalf("deny kernel: %v", kinds(got))
	}
	// Re-emitting the same definition changes nothing.
	if got := pl.define("f42", []string{"f42"}, func(e *avro.ComposeEvent) { e.PackagesDeny = []string{"kernel*"} }); len(got) != 0 {
		t.Fatalf("same definition: %v", kinds(got))
	}
	got = pl.define("f42", []string{"f42"}, func(e *avro.ComposeEvent) { e.Retired = true })
	if !slices.Equal(kinds(got), []string{"readiness-"}) || got[0].Unsatisfied[0].Type != ReqRetired {
		t.Fatalf("retired: %v", kinds(got))
	}
	if got := pl.good("zsh-5.9-1.fc42", "f42"); len(got) != 0 {
		t.Fatalf("retired compose decided: %v", kinds(got))
	}
}

func TestCadenceHoldsReadyUntilDue(t *testing.T) {
	pl := newPipeline(t)
	pl.define("f42", []string{"f42"}, func(e *avro.ComposeEvent) {
		e.Cadence.MinIntervalMS = int64(6 * time.Hour / time.Millisecond)
	})
	pl.good("bash-5.2-1.fc42", "f42")
	first := pl.decisions[len(pl.decisions)-1]
	if first.Kind != avro.ComposeReady {
		t.Fatalf("first ready is not held: %v", kinds(pl.decisions))
	}
	pl.tick(time.Hour)
	got := pl.good("bash-5.2-2.fc42", "f42")
	if slices.Contains(kinds(got), "ready+") {
		t.Fatalf("ready an hour after the last one: %v", kinds(got))
	}
	// The interval counts from the first decision's record timestamp,
	// within a millisecond of its event time here.
	due := first.EventTime.Add(6 * time.Hour)
	if got := pl.punctuate(due.Add(-time.Second)); len(got) != 0 {
		t.Fatalf("before due: %v", kinds(got))
	}
	got = pl.punctuate(due.Add(time.Second))
	if !slices.Equal(kinds(got), []string{"ready+"}) || got[0].EventTime.Before(due) || got[0].EventTime.After(due.Add(time.Millisecond)) ||
		!slices.Equal(manifestNVRs(got[0]), []string{"bash-5.2-2.fc42"}) {
		t.Fatalf("at due: %+v", got)
	}
	if got := pl.punctuate(due.Add(time.Hour)); len(got) != 0 {
		t.Fatalf("due twice: %v", kinds(got))
	}
}

func TestCadenceWindow(t *testing.T) {
	pl := newPipeline(t) // the clock is at 12:00 UTC
	pl.define("f42", []string{"f42"}, func(e *avro.ComposeEvent) {
		e.Cadence.WindowStart, e.Cadence.WindowEnd = "22:00", "04:00"
	})
	got := pl.good("bash-5.2-1.fc42", "f42")
	if slices.Contains(kinds(got), "ready+") {
		t.Fatalf("ready outside the window: %v", kinds(got))
	}
	day := pl.clock.Truncate(24 * time.Hour)
	if got := pl.punctuate(day.Add(21 * time.Hour)); len(got) != 0 {
		t.Fatalf("before the window: %v", kinds(got))
	}
	got = pl.punctuate(day.Add(22*time.Hour + time.Minute))
	if !slices.Equal(kinds(got), []string{"ready+"}) || !got[0].EventTime.Equal(day.Add(22*time.Hour)) {
		t.Fatalf("in the window: %v", got)
	}
	// Not ready any more before the due time: nothing is let out.
	pl2 := newPipeline(t)
	pl2.define("f42", []string{"f42"}, func(e *avro.ComposeEvent) { e.Cadence.WindowStart, e.Cadence.WindowEnd = "22:00", "04:00" })
	pl2.good("bash-5.2-1.fc42", "f42")
	pl2.signed("bash-5.2-1.fc42", "key42", false)
	if got := pl2.punctuate(day.Add(23 * time.Hour)); len(got) != 0 {
		t.Fatalf("let out content that is no longer ready: %v", kinds(got))
	}
}

func TestRevokedSignatureInvalidatesReadiness(t *testing.T) {
	pl := newPipeline(t)
	pl.define("f42", []string{"f42"})
	pl.good("bash-5.2-1.fc42", "f42")
	got := pl.signed("bash-5.2-1.fc42", "key42", false)
	if !slices.Equal(kinds(got), []string{"readiness-"}) || got[0].Unsatisfied[0].Type != ReqUnsigned {
		t.Fatalf("signature revoked: %v", got)
	}
	// Signed again: the same content was declared ready already.
	got = pl.signed("bash-5.2-1.fc42", "key42", true)
	if !slices.Equal(kinds(got), []string{"readiness+"}) {
		t.Fatalf("signed again: %v", kinds(got))
	}
}

func TestBlockersAreListedBoundedAndCounted(t *testing.T) {
	pl := newPipeline(t)
	pl.define("f42", []string{"f42"})
	for i := range 30 {
		nvr := "pkg" + string(rune('a'+i%26)) + strings.Repeat("x", i/26) + "-1-1.fc42"
		pl.state(nvr, avro.StateComplete)
		pl.tag(nvr, "f42")
	}
	last := pl.decisions[len(pl.decisions)-1]
	if last.Members != 30 || len(last.Unsatisfied) != MaxListedBlockers {
		t.Fatalf("members %d, listed %d", last.Members, len(last.Unsatisfied))
	}
	want := []avro.BlockerCount{{Type: ReqUnsigned, Count: 30}, {Type: ReqNoDecision, Count: 30}}
	slices.SortFunc(want, func(x, y avro.BlockerCount) int { return strings.Compare(x.Type, y.Type) })
	if !slices.Equal(last.BlockerCounts, want) {
		t.Fatalf("counts %+v, want %+v", last.BlockerCounts, want)
	}
}

func TestComposeGate(t *testing.T) {
	pl := newPipeline(t)
	id := "Fedora-Rawhide-20261102.n.0"
	status := func(s string) []*avro.ComposeReadyDecision {
		return pl.send(topics.EventsCompose, id, &avro.ComposeEvent{Envelope: pl.env("pungi"), Kind: avro.ComposeStatusChange, ComposeID: id, Status: s})
	}
	gating := func(ok bool) []*avro.ComposeReadyDecision {
		d := &avro.GatingDecision{Decision: avro.Decision{Envelope: pl.env("factory2/gating")},
			SubjectType: "compose", SubjectID: id, DecisionContext: "rawhide_compose_sync_to_mirrors", ProductVersion: "fedora-rawhide", PoliciesSatisfied: ok}
		if !ok {
			d.Unsatisfied = []avro.Requirement{{Type: "test-result-missing", Testcase: "compose.install_default", Scenario: "fedora.Server-dvd-iso.x86_64.64bit"}}
		}
		return pl.send(topics.DecisionsGating, id, d)
	}
	if got := status(avro.ComposeStarted); len(got) != 0 {
		t.Fatalf("started: %v", kinds(got))
	}
	if got := gating(false); len(got) != 0 {
		t.Fatalf("gating before finished: %v", kinds(got))
	}
	got := status(avro.ComposeFinished)
	if !slices.Equal(kinds(got), []string{"gate-"}) || got[0].Unsatisfied[0].Testcase != "compose.install_default" {
		t.Fatalf("finished with a missing scenario: %v", got)
	}
	got = gating(true)
	if !slices.Equal(kinds(got), []string{"gate+"}) || got[0].Status != avro.ComposeFinished {
		t.Fatalf("last scenario passed: %v", got)
	}

	doomed := "Fedora-Rawhide-20261102.n.1"
	id = doomed
	got = status(avro.ComposeDoomed)
	if !slices.Equal(kinds(got), []string{"gate-"}) || got[0].Unsatisfied[0].Type != ReqGateFinal {
		t.Fatalf("doomed: %v", got)
	}
	if got := gating(true); len(got) != 0 {
		t.Fatalf("decision after doomed: %v", kinds(got))
	}
}

func TestNextAllowed(t *testing.T) {
	at := func(s string) time.Time {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			panic(err)
		}
		return t
	}
	for _, tc := range []struct {
		name       string
		min        time.Duration
		start, end string
		t, last    string
		want       string
	}{
		{name: "asap", t: "2026-11-02T12:00:00Z", want: "2026-11-02T12:00:00Z"},
		{name: "interval passed", min: time.Hour, t: "2026-11-02T12:00:00Z", last: "2026-11-02T10:00:00Z", want: "2026-11-02T12:00:00Z"},
		{name: "interval not passed", min: 6 * time.Hour, t: "2026-11-02T12:00:00Z", last: "2026-11-02T10:00:00Z", want: "2026-11-02T16:00:00Z"},
		{name: "in window", start: "10:00", end: "14:00", t: "2026-11-02T12:00:00Z", want: "2026-11-02T12:00:00Z"},
		{name: "before window", start: "13:00", end: "14:00", t: "2026-11-02T12:00:00Z", want: "2026-11-02T13:00:00Z"},
		{name: "after window", start: "10:00", end: "11:00", t: "2026-11-02T12:00:00Z", want: "2026-11-03T10:00:00Z"},
		{name: "wrapping, late", start: "22:00", end: "04:00", t: "2026-11-02T23:00:00Z", want: "2026-11-02T23:00:00Z"},
		{name: "wrapping, early", start: "22:00", end: "04:00", t: "2026-11-02T03:59:00Z", want: "2026-11-02T03:59:00Z"},
		{name: "wrapping, outside", start: "22:00", end: "04:00", t: "2026-11-02T04:00:00Z", want: "2026-11-02T22:00:00Z"},
		{name: "interval into window", min: 6 * time.Hour, start: "00:00", end: "06:00", t: "2026-11-02T01:00:00Z", last: "2026-11-02T00:30:00Z", want: "2026-11-03T00:00:00Z"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := &avro.ComposeEvent{Kind: avro.ComposeDefinition, ComposeID: "c", SourceTags: []string{"t"},
				Cadence: avro.ComposeCadence{MinIntervalMS: tc.min.Milliseconds(), WindowStart: tc.start, WindowEnd: tc.end}}
			d, err := parseDefinition(e)
			if err != nil {
				t.Fatal(err)
			}
			var last time.Time
			if tc.last != "" {
				last = at(tc.last)
			}
			if got := d.nextAllowed(at(tc.t), last); !got.Equal(at(tc.want)) {
				t.Fatalf("got %v, want %s", got, tc.want)
			}
		})
	}
}

func TestBadDefinitionsAreRejected(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*avro.ComposeEvent)
		want string
	}{
		{"no tags", func(e *avro.ComposeEvent) { e.SourceTags = nil }, "no source tags"},
		{"repeated tag", func(e *avro.ComposeEvent) { e.SourceTags = []string{"a", "a"} }, "repeated"},
		{"bad glob", func(e *avro.ComposeEvent) { e.PackagesDeny = []string{"[a"} }, "glob"},
		{"half window", func(e *avro.ComposeEvent) { e.Cadence.WindowStart = "01:00" }, "both"},
		{"bad time", func(e *avro.ComposeEvent) { e.Cadence.WindowStart, e.Cadence.WindowEnd = "25:00", "01:00" }, "HH:MM"},
		{"negative interval", func(e *avro.ComposeEvent) { e.Cadence.MinIntervalMS = -1 }, "negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pl := newPipeline(t)
			if got := pl.define("f42", []string{"f42"}, tc.mod); len(got) != 0 {
				t.Fatalf("decisions: %v", kinds(got))
			}
			if len(pl.rejected) != 1 || !strings.Contains(pl.rejected[0], tc.want) {
				t.Fatalf("rejections %q, want one with %q", pl.rejected, tc.want)
			}
		})
	}
}

// The listed blockers are always the first MaxListedBlockers blocked
// builds in NVR order, whatever order they block and clear in (the
// listing is kept incrementally, not scanned per decision).
func TestListedBlockersStayTheFirstOnes(t *testing.T) {
	pl := newPipeline(t)
	pl.define("f42", []string{"f42"})
	const n = 120
	nvr := func(i int) string { return fmt.Sprintf("pkg%03d-1-1.fc42", i) }
	for i := range n {
		pl.state(nvr(i), avro.StateComplete)
		pl.tag(nvr(i), "f42")
		pl.gated(nvr(i), "ctx", true, false)
	}
	signed := map[string]bool{}
	rng := rand.New(rand.NewPCG(1, 2))
	check := func(step int) {
		t.Helper()
		last := pl.decisions[len(pl.decisions)-1]
		var blocked []string
		for i := range n {
			if !signed[nvr(i)] {
				blocked = append(blocked, nvr(i))
			}
		}
		var got []string
		for _, r := range last.Unsatisfied {
			got = append(got, r.SubjectID)
		}
		want := blocked[:min(len(blocked), MaxListedBlockers)]
		if !slices.Equal(got, want) {
			t.Fatalf("step %d: listed %v, want %v", step, got, want)
		}
	}
	check(-1)
	// Clear from the front, as a mass rebuild tested in name order does,
	// then at random, then block some again.
	for i := range 50 {
		signed[nvr(i)] = true
		pl.signed(nvr(i), "key42", true)
		check(i)
	}
	for step := range 300 {
		i := rng.IntN(n)
		signed[nvr(i)] = !signed[nvr(i)]
		if got := pl.signed(nvr(i), "key42", signed[nvr(i)]); len(got) == 0 {
			continue
		}
		if slices.ContainsFunc(pl.decisions[len(pl.decisions)-1:], func(d *avro.ComposeReadyDecision) bool { return d.Kind == avro.ComposeReady }) {
			continue
		}
		check(step)
	}
}
