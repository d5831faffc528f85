package deps

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/factory2/factory2/processors"
	"github.com/factory2/factory2/topics"
)

// Table is the Graph every instance holds, loaded from the edges
// processor's changelog (compacted: the live edges, and tombstones of
// recent removals) and following it.
type Table struct {
	Graph *Graph
	f     *processors.Follower
	// present are the edge keys (an origin's assertion of an edge) the
	// graph holds. The changelog is a log of writes, not of changes: a
	// key is put again when the processor rewrites it in a later
	// transaction, a tombstone can repeat, and compaction can remove the
	// put a tombstone follows. The graph counts assertions, so each key
	// counts once, from its first put to its first tombstone. Only the
	// follower's goroutine (apply) touches it.
	present map[string]struct{}
}

// TableConfig configures a Table.
type TableConfig struct {
	Brokers    []string
	ClientOpts []kgo.Opt
	Catalog    *topics.Catalog
	Logger     *slog.Logger
}

// NewTable returns the table of the edges in cfg's deployment.
func NewTable(cfg TableConfig) *Table {
	t := newTable()
	t.f = processors.NewFollower(processors.FollowerConfig{
		Brokers:    cfg.Brokers,
		ClientOpts: cfg.ClientOpts,
		Topics:     []string{cfg.Catalog.AddChangelog(Name, StoreEdges)},
		Logger:     cfg.Logger,
		Apply:      t.apply,
	})
	return t
}

func newTable() *Table { return &Table{Graph: NewGraph(), present: map[string]struct{}{}} }

// apply applies one changelog record to the graph.
func (t *Table) apply(r *kgo.Record) {
	_, e, ok := parseEdgeKey(r.Key)
	if !ok {
		return // not an edge: the processor's quarantine drops such keys
	}
	_, had := t.present[string(r.Key)]
	switch {
	case r.Value == nil && had:
		delete(t.present, string(r.Key))
		t.Graph.Remove(e)
	case r.Value != nil && !had:
		t.present[string(r.Key)] = struct{}{}
		t.Graph.Add(e)
	}
}

// Run loads and follows the edges until ctx ends.
func (t *Table) Run(ctx context.Context) error { return t.f.Run(ctx) }

// LoadedTable is a Table over g that follows nothing and is always
// loaded: for tests and benchmarks of what reads a table.
func LoadedTable(g *Graph) *Table { return &Table{Graph: g} }

// Health is the table's part of /readyz: ready once loaded.
func (t *Table) Health() processors.Health {
	if t.f == nil {
		return processors.Health{Live: true, Ready: true}
	}
	loaded, read, behind := t.f.Loaded()
	h := processors.Health{Live: true, Ready: loaded && t.f.Fault() == "", Waiting: t.f.Fault()}
	switch {
	case !loaded && behind < 0:
		h.Reason = "loading the dependency graph: listing the edges to read"
	case !loaded:
		h.Reason = fmt.Sprintf("loading the dependency graph: %d edge records read, %d offsets to go", read, behind)
	case h.Waiting != "":
		h.Reason = "dependency graph: waiting out a Kafka fault: " + h.Waiting
	}
	return h
}

// API answers trace queries from a Table, on any instance:
//
//	GET /api/v1/trace/{node}?direction=down|up&depth=N&types=a,b&relations=r,s&max=N
//	GET /api/v1/trace?node=...&direction=...
//
// node is a node key (type:id; the rest of the path, so ids may hold
// slashes; an id with "//", a source URL, is given as the node
// parameter, since HTTP muxes clean paths). 503 while the graph loads, 404 for an unknown node, 400 for
// a bad parameter; errors are {"message": "..."}.
type API struct {
	graph  *Graph
	health func() processors.Health
}

// NewAPI returns the trace API over t.
func NewAPI(t *Table) *API { return &API{graph: t.Graph, health: t.Health} }

// Handler registers routes on a mux.
type Handler interface {
	Handle(pattern string, h http.Handler)
}

// Register adds the API's routes to mux.
func (a *API) Register(mux Handler) {
	mux.Handle("GET /api/v1/trace/{node...}", http.HandlerFunc(a.trace))
	mux.Handle("GET /api/v1/trace", http.HandlerFunc(a.trace))
}

func (a *API) trace(w http.ResponseWriter, r *http.Request) {
	if h := a.health(); !h.Ready && h.Waiting == "" {
		w.Header().Set("Retry-After", "1")
		respond(w, http.StatusServiceUnavailable, map[string]string{"message": h.Reason})
		return
	}
	node := r.PathValue("node")
	if node == "" {
		node = r.URL.Query().Get("node")
	}
	q, err := ParseQuery(node, r.URL.Query())
	if err != nil {
		respond(w, http.StatusBadRequest, map[string]string{"message": err.Error()})
		return
	}
	buf := jsonPool.Get().(*[]byte)
	defer jsonPool.Put(buf)
	var err2 error
	*buf, err2 = a.graph.AppendTraceJSON((*buf)[:0], q)
	var unknown *ErrUnknownNode
	switch {
	case errors.As(err2, &unknown):
		respond(w, http.StatusNotFound, map[string]string{"message": err2.Error()})
	case err2 != nil:
		respond(w, http.StatusBadRequest, map[string]string{"message": err2.Error()})
	default:
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(*buf)
	}
}

// ParseQuery reads a trace query from a node key and URL parameters.
func ParseQuery(node string, v map[string][]string) (TraceQuery, error) {
	get := func(k string) string {
		if vs := v[k]; len(vs) > 0 {
			return vs[len(vs)-1]
		}
		return ""
	}
	list := func(k string) []string {
		var out []string
		for _, s := range strings.Split(get(k), ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
		return out
	}
	q := TraceQuery{Node: node, Direction: Direction(get("direction")), Types: list("types"), Relations: list("relations")}
	if q.Node == "" || !strings.Contains(q.Node, ":") {
		return q, fmt.Errorf("node %q: want a node key, type:id (e.g. build:bash-5.2.26-3.fc41)", node)
	}
	for _, p := range []struct {
		name string
		to   *int
	}{{"depth", &q.Depth}, {"max", &q.MaxNodes}} {
		if s := get(p.name); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 0 {
				return q, fmt.Errorf("%s=%q: want a whole number, 0 or more", p.name, s)
			}
			*p.to = n
		}
	}
	return q, nil
}

// jsonPool holds answers' encoding buffers: a 10,000-node answer is
// 1.6 MB.
var jsonPool = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

func respond(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// WriteTree writes t as an indented tree: each listed node under the
// listed node it was reached from.
func (t *Trace) WriteTree(w io.Writer) error {
	children := map[string][]TraceNode{}
	for _, n := range t.Nodes[1:] {
		children[n.Parent] = append(children[n.Parent], n)
	}
	var write func(n TraceNode, indent string) error
	write = func(n TraceNode, indent string) error {
		line := indent + n.Key
		if n.Relation != "" {
			arrow := " ◀ " + n.Relation // down: n depends on its parent
			if t.Direction == Up {
				arrow = " ▶ " + n.Relation
			}
			line = indent + n.Key + "  (" + strings.TrimSpace(arrow)
			if len(n.Via) > 0 {
				line += " via " + strings.Join(n.Via, ", ")
			}
			line += ")"
		}
		if _, err := fmt.Fprintln(w, line); err != nil {
			return err
		}
		for _, c := range children[n.Key] {
			if err := write(c, indent+"  "); err != nil {
				return err
			}
		}
		return nil
	}
	if len(t.Nodes) == 0 {
		return nil
	}
	if err := write(t.Nodes[0], ""); err != nil {
		return err
	}
	if t.Truncated {
		_, err := fmt.Fprintf(w, "… truncated at %d nodes (of %d reached so far)\n", len(t.Nodes), t.Walked)
		return err
	}
	return nil
}

// WriteDOT writes t in Graphviz's DOT language; edges point from the
// node that depends to the node it depends on.
func (t *Trace) WriteDOT(w io.Writer) error {
	var b strings.Builder
	b.WriteString("digraph trace {\n  rankdir=LR;\n  node [shape=box];\n")
	for _, n := range t.Nodes {
		fmt.Fprintf(&b, "  %q;\n", n.Key)
	}
	for _, n := range t.Nodes[1:] {
		from, to := n.Key, n.Parent
		if t.Direction == Up {
			from, to = n.Parent, n.Key
		}
		label := n.Relation
		if len(n.Via) > 0 {
			label += " via " + strings.Join(n.Via, ", ")
		}
		fmt.Fprintf(&b, "  %q -> %q [label=%q];\n", from, to, label)
	}
	b.WriteString("}\n")
	_, err := io.WriteString(w, b.String())
	return err
}
