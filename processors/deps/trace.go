package deps

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// Direction of a trace.
type Direction string

const (
	// Down walks to what depends on the node: from an upstream commit to
	// the builds, artifacts, images, composes and products that ship it.
	Down Direction = "down"
	// Up walks to what the node depends on: from a compose to its builds
	// and their sources.
	Up Direction = "up"
)

// DefaultMaxNodes bounds a trace's answer unless the query says otherwise.
const DefaultMaxNodes = 10000

// TraceQuery is a transitive query of the graph.
type TraceQuery struct {
	// Node is the start, a node key (type:id).
	Node      string
	Direction Direction
	// Depth bounds the walk in edges; 0 means no bound (MaxNodes still
	// bounds the answer).
	Depth int
	// Types, when set, are the node types the answer lists; the walk
	// goes through every type (a source reaches a compose through builds
	// and artifacts).
	Types []string
	// Relations, when set, are the only edges walked.
	Relations []string
	// MaxNodes bounds the nodes listed (DefaultMaxNodes when 0).
	MaxNodes int
	// Sorted walks each node's edges in the order of the nodes' keys, so
	// the walk (which node is reached from which) does not depend on the
	// order the edges were loaded in; it costs a sort per node.
	Sorted bool
}

// TraceNode is one node of an answer.
type TraceNode struct {
	Key   string `json:"key"`
	Type  string `json:"type"`
	ID    string `json:"id"`
	Depth int    `json:"depth"`
	// Parent is the listed node it was reached from (empty for the
	// start), by Relation; Via are the nodes in between that the type
	// filter left out, nearest to Parent first.
	Parent   string   `json:"parent,omitempty"`
	Relation string   `json:"relation,omitempty"`
	Via      []string `json:"via,omitempty"`
}

// Trace is the answer of a TraceQuery: the nodes in walk order
// (breadth-first, the start first), each with the way it was reached.
type Trace struct {
	Node      string      `json:"node"`
	Direction Direction   `json:"direction"`
	Depth     int         `json:"depth"`
	Nodes     []TraceNode `json:"nodes"`
	// Walked counts every node reached, listed or not.
	Walked    int  `json:"walked"`
	Truncated bool `json:"truncated"`
}

// ErrUnknownNode is returned for a start node the graph lacks.
type ErrUnknownNode struct{ Node string }

func (e *ErrUnknownNode) Error() string {
	return fmt.Sprintf("deps: no node %q in the graph (node keys are type:id, e.g. build:bash-5.2.26-3.fc41)", e.Node)
}

// Trace walks the graph. Each node is visited once, so cycles end.
func (g *Graph) Trace(q TraceQuery) (*Trace, error) {
	t := &Trace{}
	if err := g.walk(q, t, func(n TraceNode) { t.Nodes = append(t.Nodes, n) }); err != nil {
		return nil, err
	}
	return t, nil
}

// AppendTraceJSON appends to dst what Trace(q).AppendJSON would, writing
// each node as the walk lists it: a 10,000-node answer then leaves no
// garbage but its buffer's growth (pool it), where building the Trace
// allocated a megabyte of nodes per answer, whose collections over a graph
// of many pointers made the answers' latency tail.
func (g *Graph) AppendTraceJSON(dst []byte, q TraceQuery) ([]byte, error) {
	var t Trace
	n := 0
	body := dst
	err := g.walk(q, &t, func(nd TraceNode) {
		if n == 0 {
			body = appendTraceHead(body, &t)
		} else {
			body = append(body, ',')
		}
		n++
		body = appendNode(body, &nd)
	})
	if err != nil {
		return dst, err
	}
	if n == 0 {
		body = appendTraceHead(body, &t)
	}
	return appendTraceTail(body, &t), nil
}

// walk runs q, filling t's header and counts and calling emit for every
// listed node in walk order.
func (g *Graph) walk(q TraceQuery, t *Trace, emit func(TraceNode)) error {
	if q.Direction == "" {
		q.Direction = Down
	}
	if q.Direction != Down && q.Direction != Up {
		return fmt.Errorf("deps: direction %q: want down or up", q.Direction)
	}
	if q.MaxNodes <= 0 {
		q.MaxNodes = DefaultMaxNodes
	}
	g.mu.RLock()
	defer g.mu.RUnlock()
	start, ok := g.ids[q.Node]
	if !ok {
		return &ErrUnknownNode{q.Node}
	}
	var rels []uint8
	for _, r := range q.Relations {
		if id, ok := g.relID[r]; ok {
			rels = append(rels, id)
		} else {
			rels = append(rels, 255) // matches nothing: no such edge
		}
	}
	adj := g.in
	if q.Direction == Up {
		adj = g.out
	}
	listed := func(i uint32) bool {
		if i == start || len(q.Types) == 0 {
			return true
		}
		typ, _, _ := strings.Cut(g.keys[i], ":")
		return slices.Contains(q.Types, typ)
	}
	// Dense marks: a map of tens of thousands of entries was most of a
	// large walk's time. The walk's scratch is pooled: a large answer's
	// garbage, more than the walk, is what makes the tail (GC assists
	// over a graph of many pointers).
	w := walkPool.Get().(*walk)
	defer walkPool.Put(w)
	if cap(w.seen) < len(g.keys) {
		w.seen = make([]bool, len(g.keys))
	}
	seen := w.seen[:len(g.keys)]
	clear(seen)
	seen[start] = true
	order := append(w.order[:0], start)
	visits := append(w.visits[:0], visit{parent: -1})
	defer func() { w.order, w.visits = order[:0], visits[:0] }()
	t.Node, t.Direction, t.Depth = q.Node, q.Direction, q.Depth
	listedN := 0
	for head := 0; head < len(order); head++ {
		v := visits[head]
		if listed(order[head]) {
			if listedN == q.MaxNodes {
				t.Truncated = true
				break
			}
			listedN++
			emit(g.traceNode(order, visits, head, listed))
		}
		if q.Depth > 0 && v.depth == q.Depth {
			continue
		}
		next := adj[order[head]]
		if q.Sorted && len(next) > 1 {
			next = slices.Clone(next)
			slices.SortFunc(next, func(a, b half) int {
				if c := strings.Compare(g.keys[a.node], g.keys[b.node]); c != 0 {
					return c
				}
				return strings.Compare(g.rels[a.rel], g.rels[b.rel])
			})
		}
		for _, h := range next {
			if len(rels) > 0 && !slices.Contains(rels, h.rel) {
				continue
			}
			if seen[h.node] {
				continue
			}
			seen[h.node] = true
			order = append(order, h.node)
			visits = append(visits, visit{parent: int32(head), rel: h.rel, depth: v.depth + 1})
		}
	}
	t.Walked = len(order)
	return nil
}

// walk is the scratch of one Trace.
type walk struct {
	seen   []bool
	order  []uint32
	visits []visit
}

var walkPool = sync.Pool{New: func() any { return new(walk) }}

// visit is how a walk reached a node.
type visit struct {
	parent int32 // index into the walk order, -1 for the start
	rel    uint8
	depth  int
}

// traceNode builds the listed node at position at of the walk.
func (g *Graph) traceNode(order []uint32, visits []visit, at int, listed func(uint32) bool) TraceNode {
	key := g.keys[order[at]]
	typ, id, _ := strings.Cut(key, ":")
	n := TraceNode{Key: key, Type: typ, ID: id, Depth: visits[at].depth}
	p := visits[at].parent
	if p < 0 {
		return n
	}
	n.Relation = g.rels[visits[at].rel]
	for p >= 0 && !listed(order[p]) {
		n.Via = append(n.Via, g.keys[order[p]])
		p = visits[p].parent
	}
	if p >= 0 {
		n.Parent = g.keys[order[p]]
	}
	slices.Reverse(n.Via)
	return n
}

// AppendJSON appends t's JSON encoding (the same as encoding/json's) to
// dst: a 10,000-node answer is most of a trace's time when encoded by
// reflection.
func (t *Trace) AppendJSON(dst []byte) []byte {
	dst = appendTraceHead(dst, t)
	for i := range t.Nodes {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendNode(dst, &t.Nodes[i])
	}
	return appendTraceTail(dst, t)
}

func appendTraceHead(dst []byte, t *Trace) []byte {
	dst = append(dst, `{"node":`...)
	dst = appendString(dst, t.Node)
	dst = append(dst, `,"direction":`...)
	dst = appendString(dst, string(t.Direction))
	dst = append(dst, `,"depth":`...)
	dst = strconv.AppendInt(dst, int64(t.Depth), 10)
	return append(dst, `,"nodes":[`...)
}

func appendNode(dst []byte, n *TraceNode) []byte {
	{
		dst = append(dst, `{"key":`...)
		dst = appendString(dst, n.Key)
		dst = append(dst, `,"type":`...)
		dst = appendString(dst, n.Type)
		dst = append(dst, `,"id":`...)
		dst = appendString(dst, n.ID)
		dst = append(dst, `,"depth":`...)
		dst = strconv.AppendInt(dst, int64(n.Depth), 10)
		if n.Parent != "" {
			dst = append(dst, `,"parent":`...)
			dst = appendString(dst, n.Parent)
		}
		if n.Relation != "" {
			dst = append(dst, `,"relation":`...)
			dst = appendString(dst, n.Relation)
		}
		if len(n.Via) > 0 {
			dst = append(dst, `,"via":[`...)
			for j, v := range n.Via {
				if j > 0 {
					dst = append(dst, ',')
				}
				dst = appendString(dst, v)
			}
			dst = append(dst, ']')
		}
		dst = append(dst, '}')
	}
	return dst
}

func appendTraceTail(dst []byte, t *Trace) []byte {
	dst = append(dst, `],"walked":`...)
	dst = strconv.AppendInt(dst, int64(t.Walked), 10)
	dst = append(dst, `,"truncated":`...)
	dst = strconv.AppendBool(dst, t.Truncated)
	return append(dst, "}\n"...)
}

// appendString appends s as a JSON string, escaping as encoding/json does
// with HTML escaping off.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, `\u00`...)
				dst = append(dst, hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			if r == utf8.RuneError {
				dst = append(dst, `\ufffd`...)
			} else {
				dst = append(dst, `\u202`...)
				dst = append(dst, hexDigits[r&0xf])
			}
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

const hexDigits = "0123456789abcdef"
