package deps

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/factory2/factory2/avro"
	"github.com/factory2/factory2/processors"
	"github.com/factory2/factory2/topics"
)

// Name is the name of the edges processor.
const Name = "deps"

// StoreEdges holds every live edge, one key per (origin, edge): the
// store's compacted changelog is the edges topic the Graph of every
// instance loads.
const StoreEdges = "edges"

// Where an edge came from, the stored value: an edge event, a build
// event's own fields, or a compose-ready manifest. Replacing a
// manifest's edges removes only those.
const (
	fromEdgeEvent = 'e'
	fromBuild     = 'b'
	fromManifest  = 'm'
)

// Spec returns the runtime spec of the edges processor. It reads
// dependency edge events, build events (a build's source, buildroot and
// artifacts) and compose decisions (a ready compose contains its
// manifest's builds), all keyed by the id of the node that depends, and
// keeps the live edges in its store.
func Spec(cat *topics.Catalog) processors.Spec {
	return processors.Spec{
		Name: Name,
		Inputs: []string{
			cat.Name(topics.EventsBuild),
			cat.Name(topics.EventsDeps),
			cat.Name(topics.DecisionsComposeReady),
		},
		Stores: []string{StoreEdges},
		New:    func(int32) processors.Processor { return &Edges{} },
	}
}

// Edges is the edges processor: events in, edges in its store.
type Edges struct{}

// edgeKey is the store key of an edge: its origin (the key of the record
// it came from), then the edge. Node keys and relations hold no NUL.
func edgeKey(origin string, e Edge) []byte {
	return []byte(origin + "\x00" + e.From + "\x00" + e.Relation + "\x00" + e.To)
}

// parseEdgeKey is the inverse of edgeKey.
func parseEdgeKey(k []byte) (origin string, e Edge, ok bool) {
	parts := strings.SplitN(string(k), "\x00", 4)
	if len(parts) != 4 {
		return "", Edge{}, false
	}
	return parts[0], Edge{From: parts[1], Relation: parts[2], To: parts[3]}, true
}

// Edge is one edge of the graph: From depends on To.
type Edge struct {
	From, Relation, To string // node keys (type:id) and the relation
}

// Process implements processors.Processor.
func (p *Edges) Process(c *processors.Context, in *processors.Input) error {
	origin := string(in.Key)
	switch r := in.Record.(type) {
	case *avro.DependencyEdge:
		if r.FromID != origin {
			return processors.Reject("deps: edge key %q is not its from id %q", in.Key, r.FromID)
		}
		e, err := edgeOf(r)
		if err != nil {
			return processors.Reject("deps: %v", err)
		}
		if r.Removed {
			return remove(c, origin, e)
		}
		return add(c, origin, e, fromEdgeEvent)
	case *avro.BuildEvent:
		if r.NVR != origin {
			return processors.Reject("deps: build event key %q is not its NVR %q", in.Key, r.NVR)
		}
		return p.build(c, r)
	case *avro.ComposeReadyDecision:
		if r.Kind != avro.ComposeReady {
			return nil
		}
		return p.manifest(c, origin, r)
	}
	return processors.Reject("deps: unexpected record %s on %s", in.Record.SchemaName(), in.Topic)
}

func edgeOf(r *avro.DependencyEdge) (Edge, error) {
	for _, f := range []string{r.FromType, r.FromID, r.Relation, r.ToType, r.ToID} {
		if f == "" || strings.ContainsRune(f, 0) {
			return Edge{}, fmt.Errorf("edge %s:%s -%s-> %s:%s: every end needs a type and an id, without NUL", r.FromType, r.FromID, r.Relation, r.ToType, r.ToID)
		}
	}
	if strings.ContainsRune(r.FromType, ':') || strings.ContainsRune(r.ToType, ':') {
		return Edge{}, fmt.Errorf("node types %q, %q: a type holds no colon", r.FromType, r.ToType)
	}
	return Edge{From: avro.NodeKey(r.FromType, r.FromID), Relation: r.Relation, To: avro.NodeKey(r.ToType, r.ToID)}, nil
}

// build records the edges a build event carries: the build's source, its
// buildroot and the artifacts it produced. A deleted build loses every
// edge recorded under its NVR.
func (p *Edges) build(c *processors.Context, r *avro.BuildEvent) error {
	nvr := r.NVR
	node := avro.NodeKey("build", nvr)
	if r.Kind == avro.BuildStateChange && r.State == avro.StateDeleted {
		return removeOrigin(c, nvr, 0)
	}
	if r.SourceURL != "" {
		src := r.SourceURL
		if r.SourceCommit != "" && !strings.Contains(src, "#") {
			src += "#" + r.SourceCommit
		}
		if err := add(c, nvr, Edge{From: node, Relation: avro.RelBuiltFrom, To: avro.NodeKey("source", src)}, fromBuild); err != nil {
			return err
		}
	}
	for _, b := range r.Buildroot {
		if b == "" || b == nvr {
			continue
		}
		if err := add(c, nvr, Edge{From: node, Relation: avro.RelBuildroot, To: avro.NodeKey("build", b)}, fromBuild); err != nil {
			return err
		}
	}
	for _, a := range r.Artifacts {
		typ := a.Type
		if typ == "" {
			typ = "artifact"
		}
		if a.Name == "" {
			continue
		}
		if err := add(c, nvr, Edge{From: avro.NodeKey(typ, a.Name), Relation: avro.RelProducedBy, To: node}, fromBuild); err != nil {
			return err
		}
	}
	return nil
}

// manifest replaces the builds a ready compose contains.
func (p *Edges) manifest(c *processors.Context, id string, r *avro.ComposeReadyDecision) error {
	if err := removeOrigin(c, id, fromManifest); err != nil {
		return err
	}
	node := avro.NodeKey("compose", id)
	for _, m := range r.Manifest {
		if err := add(c, id, Edge{From: node, Relation: avro.RelContains, To: avro.NodeKey("build", m.NVR)}, fromManifest); err != nil {
			return err
		}
	}
	return nil
}

// add stores e under origin unless it is there. The changelog still
// repeats keys (an origin's edges removed and added again in one
// transaction leave a put of a key that was there), so the table counts
// each key once (Table.apply), not each record.
func add(c *processors.Context, origin string, e Edge, how byte) error {
	k := edgeKey(origin, e)
	if _, ok, err := c.Get(StoreEdges, k); err != nil || ok {
		return err
	}
	return c.Put(StoreEdges, k, []byte{how})
}

func remove(c *processors.Context, origin string, e Edge) error {
	k := edgeKey(origin, e)
	if _, ok, err := c.Get(StoreEdges, k); err != nil || !ok {
		return err
	}
	return c.Delete(StoreEdges, k)
}

// removeOrigin deletes the edges stored under origin (of kind how; 0:
// all).
func removeOrigin(c *processors.Context, origin string, how byte) error {
	lower := []byte(origin + "\x00")
	upper := []byte(origin + "\x01")
	var keys [][]byte
	if err := c.Scan(StoreEdges, lower, upper, func(k, v []byte) error {
		if how == 0 || (len(v) == 1 && v[0] == how) {
			keys = append(keys, bytes.Clone(k))
		}
		return nil
	}); err != nil {
		return &processors.StorageError{Err: err}
	}
	for _, k := range keys {
		if err := c.Delete(StoreEdges, k); err != nil {
			return err
		}
	}
	return nil
}

// ValidateState implements processors.StateValidator.
func (p *Edges) ValidateState(store string, key, value []byte) error {
	if _, _, ok := parseEdgeKey(key); !ok {
		return fmt.Errorf("key %q is not origin NUL from NUL relation NUL to", key)
	}
	if len(value) != 1 || (value[0] != fromEdgeEvent && value[0] != fromBuild && value[0] != fromManifest) {
		return fmt.Errorf("value %q is not an edge origin kind", value)
	}
	return nil
}
