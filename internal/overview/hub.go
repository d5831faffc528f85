package overview

import (
	"errors"
	"sync"
	"time"
)

// Decision is one decision as the page shows it: the line
// `factory2 watch` prints, when it was made, and a link to its subject.
type Decision struct {
	// Seq numbers the decisions this process has seen, from 1; a stream
	// resumes after the last Seq it sent (the SSE event id).
	Seq int64 `json:"seq"`
	// Time is when the decision was made (its record's timestamp);
	// EventTime the time of the event that triggered it.
	Time      time.Time `json:"time"`
	EventTime time.Time `json:"event_time"`
	Kind      string    `json:"kind"`
	Subject   string    `json:"subject"`
	Verdict   string    `json:"verdict"`
	Reason    string    `json:"reason"`
	// Link is the page of the subject (a build's journey, a compose).
	Link string `json:"link,omitempty"`
	// Class is good, bad, wait or info: how the page colours the verdict.
	Class string `json:"class"`
}

// errTooManyStreams is the answer to a stream beyond Config.MaxStreams.
var errTooManyStreams = errors.New("overview: too many live streams; retry later")

// errClosed is the answer to a stream once the Overview has stopped.
var errClosed = errors.New("overview: stopped")

// hub keeps the recent decisions in a ring and fans each new one out to
// the live streams. A stream whose buffer is full is dropped (its gone
// channel closed), never waited for: one slow browser cannot hold up the
// reader or the other streams.
type hub struct {
	mu      sync.Mutex
	ring    []Decision // circular, oldest at head once full
	head    int
	seq     int64
	streams map[*stream]struct{}
	max     int
	buffer  int
	closed  bool
	dropped int64 // streams dropped for falling behind
}

// stream is one live stream's subscription.
type stream struct {
	ch   chan Decision
	gone chan struct{} // closed when the stream is dropped or the hub closes
}

func newHub(recent, maxStreams, buffer int) *hub {
	return &hub{ring: make([]Decision, 0, recent), streams: map[*stream]struct{}{}, max: maxStreams, buffer: buffer}
}

// publish numbers d, keeps it and sends it to every stream.
func (h *hub) publish(d Decision) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seq++
	d.Seq = h.seq
	if len(h.ring) < cap(h.ring) {
		h.ring = append(h.ring, d)
	} else {
		h.ring[h.head] = d
		h.head = (h.head + 1) % len(h.ring)
	}
	for s := range h.streams {
		select {
		case s.ch <- d:
		default:
			h.dropLocked(s)
			h.dropped++
		}
	}
}

// recentLocked lists the kept decisions, oldest first.
func (h *hub) recentLocked() []Decision {
	out := make([]Decision, 0, len(h.ring))
	out = append(out, h.ring[h.head:]...)
	return append(out, h.ring[:h.head]...)
}

// recent lists the kept decisions, newest first.
func (h *hub) recent() []Decision {
	h.mu.Lock()
	l := h.recentLocked()
	h.mu.Unlock()
	for i, j := 0, len(l)-1; i < j; i, j = i+1, j-1 {
		l[i], l[j] = l[j], l[i]
	}
	return l
}

// subscribe adds a stream and returns it with the kept decisions after
// seq after, oldest first: together, every decision after after exactly
// once (as far as the ring reaches back).
func (h *hub) subscribe(after int64) (*stream, []Decision, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, nil, errClosed
	}
	if len(h.streams) >= h.max {
		return nil, nil, errTooManyStreams
	}
	s := &stream{ch: make(chan Decision, h.buffer), gone: make(chan struct{})}
	h.streams[s] = struct{}{}
	var backlog []Decision
	for _, d := range h.recentLocked() {
		if d.Seq > after {
			backlog = append(backlog, d)
		}
	}
	return s, backlog, nil
}

// unsubscribe removes s, if still there.
func (h *hub) unsubscribe(s *stream) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.streams[s]; ok {
		h.dropLocked(s)
	}
}

func (h *hub) dropLocked(s *stream) {
	delete(h.streams, s)
	close(s.gone)
}

// close ends every stream and refuses new ones.
func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for s := range h.streams {
		h.dropLocked(s)
	}
}

// streamCount is the number of live streams.
func (h *hub) streamCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.streams)
}

// droppedCount is the number of streams dropped for falling behind.
func (h *hub) droppedCount() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.dropped
}
