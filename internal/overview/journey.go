package overview

import (
	"container/list"
	"slices"
	"sync"
	"time"

	"github.com/factory2/factory2/avro"
)

// The stages of a build's journey, in pipeline order.
const (
	StageBuilt   = "built"
	StageTagged  = "tagged"
	StageSigned  = "signed"
	StageTested  = "tested"
	StageDecided = "decided"
)

// Stages lists the stages in pipeline order.
var Stages = []string{StageBuilt, StageTagged, StageSigned, StageTested, StageDecided}

// Step is one event or decision of a build's journey.
type Step struct {
	Stage string `json:"stage"`
	// Time is the event time (for a decision, that of the event that
	// triggered it); Recorded the record's timestamp (for a decision,
	// when it was made); Ingested when the event entered factory2.
	Time     time.Time `json:"time"`
	Recorded time.Time `json:"recorded"`
	Ingested time.Time `json:"ingested,omitzero"`
	Kind     string    `json:"kind"`
	Verdict  string    `json:"verdict"`
	Reason   string    `json:"reason"`
	Class    string    `json:"class"`
	// SincePrevious is the event time since the step before (0 for the
	// first).
	SincePrevious time.Duration `json:"since_previous_ns"`
	// reached: the step reaches its stage (a completed build, a full
	// signature, a final test outcome, a gating decision).
	reached bool
}

// StageTime is when a build reached a stage: the first step that did,
// or for StageDecided the latest gating verdict (passed or blocked).
type StageTime struct {
	Stage string `json:"stage"`
	// Reached is false for a stage not reached yet; the times are then
	// zero.
	Reached bool      `json:"reached"`
	Time    time.Time `json:"time,omitzero"`
	// Latency is the event time from the stage reached before it (from
	// the first step for the first stage reached); negative when it was
	// reached before that stage (a test ran before the build was
	// tagged).
	Latency time.Duration `json:"latency_ns"`
	// What says what reached it.
	What string `json:"what,omitempty"`
}

// Journey is a build's way through the pipeline as far as the Overview
// has read it.
type Journey struct {
	NVR    string      `json:"nvr"`
	Stages []StageTime `json:"stages"`
	// Steps are in event time order (then record time); at most MaxSteps,
	// the latest. Dropped counts the older ones let go.
	Steps   []Step    `json:"steps"`
	Dropped int       `json:"dropped"`
	Updated time.Time `json:"updated"`
}

// journeys is the bounded table of journeys: at most max builds, the
// least recently changed let go first.
type journeys struct {
	mu    sync.Mutex
	max   int
	lru   *list.List // of *journeyRow, most recent first
	byNVR map[string]*list.Element
}

type journeyRow struct {
	nvr     string
	steps   []Step
	dropped int
	// first is the step that reached each stage, kept when steps go.
	first   map[string]Step
	updated time.Time
}

func newJourneys(max int) *journeys {
	return &journeys{max: max, lru: list.New(), byNVR: map[string]*list.Element{}}
}

// add records s in nvr's journey.
func (j *journeys) add(nvr string, s Step) {
	j.mu.Lock()
	defer j.mu.Unlock()
	e, ok := j.byNVR[nvr]
	if ok {
		j.lru.MoveToFront(e)
	} else {
		e = j.lru.PushFront(&journeyRow{nvr: nvr, first: map[string]Step{}})
		j.byNVR[nvr] = e
		for j.lru.Len() > j.max {
			old := j.lru.Back()
			delete(j.byNVR, old.Value.(*journeyRow).nvr)
			j.lru.Remove(old)
		}
	}
	r := e.Value.(*journeyRow)
	r.updated = s.Recorded
	if s.reached {
		// A stage is reached by its first step; decided, by the latest
		// verdict (a build blocked, then waived, is decided when it
		// passes).
		f, ok := r.first[s.Stage]
		switch {
		case !ok,
			s.Stage == StageDecided && !s.Time.Before(f.Time),
			s.Stage != StageDecided && s.Time.Before(f.Time):
			r.first[s.Stage] = s
		}
	}
	// Records of different topics come in no set order: insert by time.
	i, _ := slices.BinarySearchFunc(r.steps, s, func(a, b Step) int {
		if c := a.Time.Compare(b.Time); c != 0 {
			return c
		}
		if c := a.Recorded.Compare(b.Recorded); c != 0 {
			return c
		}
		return -1 // after equal ones: arrival order
	})
	r.steps = slices.Insert(r.steps, i, s)
	if len(r.steps) > MaxSteps {
		r.steps = slices.Delete(r.steps, 0, len(r.steps)-MaxSteps)
		r.dropped++
	}
}

// get returns nvr's journey.
func (j *journeys) get(nvr string) (*Journey, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	e, ok := j.byNVR[nvr]
	if !ok {
		return nil, false
	}
	return e.Value.(*journeyRow).journey(), true
}

// count is the number of journeys kept.
func (j *journeys) count() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.lru.Len()
}

// latest lists the NVRs of the n most recently changed journeys.
func (j *journeys) latest(n int) []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	var out []string
	for e := j.lru.Front(); e != nil && len(out) < n; e = e.Next() {
		out = append(out, e.Value.(*journeyRow).nvr)
	}
	return out
}

func (r *journeyRow) journey() *Journey {
	jr := &Journey{NVR: r.nvr, Steps: slices.Clone(r.steps), Dropped: r.dropped, Updated: r.updated}
	for i := range jr.Steps {
		if i > 0 {
			jr.Steps[i].SincePrevious = jr.Steps[i].Time.Sub(jr.Steps[i-1].Time)
		}
	}
	var prev time.Time
	if len(jr.Steps) > 0 {
		prev = jr.Steps[0].Time
	}
	for _, st := range Stages {
		f, ok := r.first[st]
		t := StageTime{Stage: st, Reached: ok}
		if ok {
			t.Time, t.What = f.Time, f.Kind+" "+f.Verdict
			if f.Reason != "" {
				t.What += ": " + f.Reason
			}
			if !prev.IsZero() {
				t.Latency = f.Time.Sub(prev)
			}
			prev = f.Time
		}
		jr.Stages = append(jr.Stages, t)
	}
	return jr
}

// journeyOf is the build a record belongs to and its stage; "" for a
// record of no build's journey (compose records).
func journeyOf(r avro.Record) (nvr, stage string) {
	switch e := r.(type) {
	case *avro.BuildEvent:
		if e.Kind == avro.BuildTag || e.Kind == avro.BuildUntag {
			return e.NVR, StageTagged
		}
		return e.NVR, StageBuilt
	case *avro.SignEvent:
		return e.NVR, StageSigned
	case *avro.SignedStatus:
		return e.NVR, StageSigned
	case *avro.TestResult:
		if e.SubjectType == "compose" {
			return "", ""
		}
		return e.SubjectID, StageTested
	case *avro.Waiver:
		if e.SubjectType == "compose" {
			return "", ""
		}
		return e.SubjectID, StageTested
	case *avro.GatingDecision:
		if e.SubjectType == "compose" {
			return "", ""
		}
		return e.SubjectID, StageDecided
	case *avro.AutosignDecision:
		return e.NVR, StageDecided
	case *avro.RebuildDecision:
		return e.SubjectID, StageDecided
	}
	return "", ""
}

// reaches reports whether r, with verdict, reaches its stage: the build
// completed, is tagged, fully signed with a key, has a final test
// outcome, or a gating verdict other than waiting.
func reaches(r avro.Record, verdict string) bool {
	switch e := r.(type) {
	case *avro.BuildEvent:
		return e.Kind == avro.BuildTag || (e.Kind != avro.BuildUntag && e.State == avro.StateComplete)
	case *avro.SignedStatus:
		return e.Signed
	case *avro.TestResult:
		return e.Outcome != avro.OutcomeQueued && e.Outcome != avro.OutcomeRunning
	case *avro.GatingDecision:
		return verdict != "waiting"
	}
	return false
}
