package avro

import (
	"context"
	"fmt"
	"sync"

	"github.com/twmb/franz-go/pkg/sr"
)

// registry caches schema ids of a Confluent-compatible schema registry.
// Both caches only grow: a schema id never changes meaning (the registry
// guarantees ids are immutable), and there are few schemas.
type registry struct {
	cl           *sr.Client // safe for concurrent use
	autoRegister bool
	cat          *catalog

	mu      sync.RWMutex
	ids     map[*recordType]int // current schema id per record type
	writers map[int]*writerSchema
}

// writerSchema is what Decode needs to know about a registry schema id.
type writerSchema struct {
	rt        *recordType
	name      string // the writer schema's full name
	toCurrent op     // nil when the writer is the current version
}

func newRegistry(cl *sr.Client, autoRegister bool, cat *catalog) *registry {
	return &registry{
		cl:           cl,
		autoRegister: autoRegister,
		cat:          cat,
		ids:          map[*recordType]int{},
		writers:      map[int]*writerSchema{},
	}
}

// currentID returns the id of rt's current schema under its
// RecordNameStrategy subject, looking it up (or registering it) once.
func (g *registry) currentID(ctx context.Context, rt *recordType) (int, error) {
	g.mu.RLock()
	id, ok := g.ids[rt]
	g.mu.RUnlock()
	if ok {
		return id, nil
	}
	s := sr.Schema{Schema: rt.current.text, Type: sr.TypeAvro}
	var err error
	if g.autoRegister {
		// RegisterSchema returns the existing id when the subject already
		// has an identical schema.
		id, err = g.cl.RegisterSchema(ctx, rt.name, s, -1, -1)
	} else {
		var ss sr.SubjectSchema
		ss, err = g.cl.LookupSchema(ctx, rt.name, s)
		id = ss.ID
	}
	if err != nil {
		return 0, fmt.Errorf("avro: registry: schema id of %s v%d: %w", rt.name, rt.current.number, err)
	}
	g.mu.Lock()
	g.ids[rt] = id
	g.writers[id] = &writerSchema{rt: rt, name: rt.name}
	g.mu.Unlock()
	return id, nil
}

// writer returns the writer schema of a registry id, fetching it once.
func (g *registry) writer(ctx context.Context, id int) (*writerSchema, error) {
	g.mu.RLock()
	w, ok := g.writers[id]
	g.mu.RUnlock()
	if ok {
		return w, nil
	}
	s, err := g.cl.SchemaByID(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("avro: registry: schema id %d: %w", id, err)
	}
	if s.Type != sr.TypeAvro {
		return nil, fmt.Errorf("avro: registry: schema id %d is %s, not Avro", id, s.Type)
	}
	if len(s.References) > 0 {
		return nil, fmt.Errorf("avro: registry: schema id %d has references, which factory2 schemas never have", id)
	}
	rt, name, conv, err := g.cat.writerFor(s.Schema)
	if err != nil {
		if use, ok := err.(*UnknownSchemaError); ok {
			use.ID = id
		}
		return nil, err
	}
	w = &writerSchema{rt: rt, name: name, toCurrent: conv}
	g.mu.Lock()
	g.writers[id] = w
	g.mu.Unlock()
	return w, nil
}
