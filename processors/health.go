package processors

import (
	"fmt"
	"strings"
	"sync"
	"time"
)

// Health is a Runner's state as /healthz and /readyz report it.
type Health struct {
	// Live: the processing loop is making progress or waiting out a
	// Kafka fault; false means it is wedged (no iteration for longer than
	// a transaction can take).
	Live bool `json:"live"`
	// Ready: every assigned task is restored and has caught up with its
	// inputs, and the last transaction committed (or none was needed).
	Ready bool `json:"ready"`
	// Reason says why the runner is not ready or not live, for people.
	Reason            string        `json:"reason,omitempty"`
	Tasks             int           `json:"tasks"`
	Restoring         int           `json:"restoring"`
	CatchingUp        int           `json:"catching_up"`
	ConsecutiveAborts int           `json:"consecutive_aborts"`
	SinceLastCommit   time.Duration `json:"since_last_commit_ns"`
	// Waiting is the Kafka fault the runner is waiting out, if any.
	Waiting string `json:"waiting,omitempty"`
}

// health is the part of the runner's state that Health reads, under its
// own lock so that a probe never waits for the loop.
type health struct {
	mu         sync.Mutex
	started    time.Time
	lastBeat   time.Time
	lastCommit time.Time
	aborts     int
	hasJoined  bool
	// problem is the kind of fault being waited out ("" if none),
	// problemErr its last error, problemSince when it began.
	problem      string
	problemErr   string
	problemSince time.Time
}

func (h *health) abortedInARow() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.aborts
}

func (h *health) committed(now time.Time) {
	h.mu.Lock()
	h.lastCommit, h.aborts = now, 0
	h.mu.Unlock()
}

func (h *health) aborted() {
	h.mu.Lock()
	h.aborts++
	h.mu.Unlock()
}

func (h *health) joined() {
	h.mu.Lock()
	h.hasJoined = true
	h.mu.Unlock()
}

// beat records that the loop (or a restore) made progress.
func (r *Runner) beat() {
	r.health.mu.Lock()
	r.health.lastBeat = time.Now()
	r.health.mu.Unlock()
}

// problem records a Kafka fault being waited out. It logs when the kind
// of fault changes, not at every retry, so a broker down for an hour
// writes one line, plus one when it is back.
func (r *Runner) problem(kind string, err error) {
	h := &r.health
	h.mu.Lock()
	defer h.mu.Unlock()
	h.problemErr = err.Error()
	if h.problem == kind {
		return
	}
	if h.problem == "" {
		h.problemSince = time.Now()
	}
	h.problem = kind
	r.metrics.waiting.Set(1)
	r.log.Warn("waiting out a Kafka fault; retrying with backoff", "while", kind, "err", err)
}

// recovered records that the fault being waited out, if any, is over.
func (r *Runner) recovered() {
	h := &r.health
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.problem == "" {
		return
	}
	r.log.Info("Kafka fault over; processing resumed", "while", h.problem, "after", time.Since(h.problemSince).Round(time.Millisecond))
	h.problem, h.problemErr = "", ""
	r.metrics.waiting.Set(0)
}

// Health reports whether the runner is live and ready, and why not.
// Safe for concurrent use.
func (r *Runner) Health() Health {
	now := time.Now()
	var out Health
	var notReady []string
	r.mu.Lock()
	out.Tasks = len(r.tasks)
	for _, t := range r.tasks {
		switch {
		case !t.restored:
			out.Restoring++
		case !t.caughtUp:
			out.CatchingUp++
		}
	}
	r.mu.Unlock()

	h := &r.health
	h.mu.Lock()
	defer h.mu.Unlock()
	out.ConsecutiveAborts = h.aborts
	if !h.lastCommit.IsZero() {
		out.SinceLastCommit = now.Sub(h.lastCommit)
	}
	if h.problem != "" {
		out.Waiting = fmt.Sprintf("%s: %s (for %s)", h.problem, h.problemErr, now.Sub(h.problemSince).Round(time.Second))
	}
	// The loop iterates at least every commit interval; one iteration can
	// block in a commit for up to the transaction timeout.
	wedgedAfter := r.cfg.TransactionTimeout + r.rebalanceTimeout()
	last := h.lastBeat
	if last.IsZero() {
		last = h.started
	}
	out.Live = now.Sub(last) < wedgedAfter
	if !out.Live {
		out.Reason = fmt.Sprintf("processing loop made no progress for %s", now.Sub(last).Round(time.Second))
	}
	switch {
	case out.Waiting != "":
		notReady = append(notReady, "waiting out a Kafka fault: "+out.Waiting)
	case !h.hasJoined:
		notReady = append(notReady, "not yet a member of group "+r.group)
	}
	if out.Restoring > 0 {
		notReady = append(notReady, fmt.Sprintf("%d of %d tasks restoring", out.Restoring, out.Tasks))
	}
	if out.CatchingUp > 0 {
		notReady = append(notReady, fmt.Sprintf("%d of %d tasks catching up with their inputs", out.CatchingUp, out.Tasks))
	}
	if h.aborts > 0 {
		notReady = append(notReady, fmt.Sprintf("%d transactions aborted in a row", h.aborts))
	}
	out.Ready = out.Live && len(notReady) == 0
	if out.Live && len(notReady) > 0 {
		out.Reason = strings.Join(notReady, "; ")
	}
	return out
}
