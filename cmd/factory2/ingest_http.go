package main

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"os"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/factory2/factory2/internal/config"
	"github.com/factory2/factory2/internal/httpapi"
	"github.com/factory2/factory2/internal/ingest"
	"github.com/factory2/factory2/internal/koji"
	"github.com/factory2/factory2/topics"
)

// newIngestProducer returns the producer of `emit` and of the HTTP
// ingestion endpoint, with transactional id <prefix>emit/<suffix>. A
// server passes a suffix that is stable across its restarts and unique
// among live instances, e.g. "http-"+cfg.InstanceID, so that a restarted
// instance fences a transaction its predecessor left open.
func newIngestProducer(cfg config.Config, suffix string) (*ingest.Producer, error) {
	cat, err := catalog(cfg)
	if err != nil {
		return nil, err
	}
	codec, err := newCodec(cfg)
	if err != nil {
		return nil, err
	}
	kopts, err := cfg.Kafka.Opts()
	if err != nil {
		return nil, err
	}
	return ingest.NewProducer(ingest.ProducerConfig{
		Brokers:            cfg.Brokers,
		ClientOpts:         kopts,
		TransactionalID:    ingestTxnID(cat, suffix),
		TransactionTimeout: cfg.Processing.TransactionTimeout,
		Codec:              codec,
		MaxEventBytes:      int(cfg.Ingest.MaxEventBytes),
	})
}

// registerIngest adds POST /api/v1/events to srv: the HTTP form of
// `factory2 emit`, producing with ing (see newIngestProducer).
//
// The body is JSON events (one object, a JSON array, or JSON lines) or,
// with ?format=message, bus messages (&topic= gives the topic of a bare
// body); ?source= gives events without one a source. Content-Type must be
// JSON (application/json, application/x-ndjson, application/jsonl). The
// request needs "Authorization: Bearer <http.token>", checked by the
// server before the handler runs (a write route, see httpapi.Auth, whose
// tokens may come from a file and change on SIGHUP); with no token
// configured the endpoint answers 403 and accepts nothing. The handler
// alone (ingestHandler, not registered) checks the inline http.token
// itself, so it is safe wherever it is mounted.
//
// Memory is bounded before any body is read: a request reserves its
// Content-Length (http.max_body_bytes when it sends none) out of
// http.max_inflight_body_bytes, and holds it until its batch is produced;
// when the reservation does not fit, the request gets 503 with
// Retry-After and its body is not read.
//
// Answers: 202 {"count":N,"produced":[{"topic","partition","offset","key","id","type"}...]}
// (with ingest.koji_hub_url, also "enriched" and "enrich_error": see
// withEnricher);
// 400 bad input, invalid UTF-8 included (nothing produced); 401 no bearer
// token; 403 wrong token; 408 body not received within http.read_timeout;
// 413 body over http.max_body_bytes, or an event whose record exceeds
// ingest.max_event_bytes or that Kafka refused as too large (nothing
// produced; {"error","event","line","element","size","max_bytes"} name
// it: its 1-based index in the batch, its line and array element, its
// record's size and the limit, 0 when Kafka refused it); 415 not JSON;
// 503 ingestion disabled, busy (with Retry-After), or producing failed
// (the batch was aborted). Errors are {"error": "..."}. A 202 means the
// events are committed and visible to read_committed consumers, except
// when it carries a "warning" (committed, not yet visible: see
// ingest.ErrNotVisible). Batches are produced one at a time, each within
// http.write_timeout (plus the commit, bounded by the transaction
// timeout); the answer then gets a full http.write_timeout of its own.
func registerIngest(srv *httpapi.Server, cfg config.Config, ing *ingest.Producer, opts ...ingestOpt) {
	srv.HandleWrite("POST /api/v1/events", ingestHandler(cfg, ing, append(opts, guardedByServer)...))
}

// guardedByServer leaves the token check to the server's write route:
// its tokens are the ones SIGHUP reloads, and may come from a file,
// which the handler's copy of the configuration does not hold.
func guardedByServer(s *ingestServer) { s.guarded = true }

// ingestOpt is an optional part of the ingestion endpoint.
type ingestOpt func(*ingestServer)

// withEnricher makes the endpoint ask Koji, through en, for the RPM list
// of each build a batch of bus messages (format=message) made COMPLETE,
// once the batch is committed, and produce it in a transaction of its
// own; the 202 answer then lists those records in "enriched", and says
// in "enrich_error" which builds Koji could not tell about (logged with
// log too). A nil en changes nothing.
func withEnricher(en *koji.Enricher, log *slog.Logger) ingestOpt {
	return func(s *ingestServer) { s.enricher, s.log = en, log }
}

// withMetrics counts, in m, the events the endpoint commits and the
// requests it refuses.
func withMetrics(m *ingest.Metrics) ingestOpt {
	return func(s *ingestServer) { s.metrics = m }
}

// ingestHandler is the handler registerIngest registers.
func ingestHandler(cfg config.Config, ing *ingest.Producer, opts ...ingestOpt) http.Handler {
	cat, catErr := catalog(cfg)
	s := &ingestServer{
		cfg:    cfg.HTTP,
		cat:    cat,
		catErr: catErr,
		ing:    ing,
		budget: semaphore.NewWeighted(cfg.HTTP.MaxInflightBodyBytes),
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

// ingestServer serves POST /api/v1/events. It is safe for concurrent use.
type ingestServer struct {
	cfg    config.HTTP
	cat    *topics.Catalog
	catErr error
	ing    *ingest.Producer
	// budget holds the bytes reserved by the bodies in flight.
	budget *semaphore.Weighted
	// enricher, when set, asks Koji what bus messages do not carry
	// (withEnricher).
	enricher *koji.Enricher
	log      *slog.Logger
	// metrics counts events committed and requests refused; nil: not
	// counted (withMetrics).
	metrics *ingest.Metrics
	// guarded: the server checked the events token before the handler
	// runs (guardedByServer).
	guarded bool
}

// reject answers status with {"error": msg} and counts the refusal.
func (s *ingestServer) reject(w http.ResponseWriter, status int, msg string) {
	s.metrics.Rejected(rejectReason(status))
	ingestError(w, status, msg)
}

// rejectReason is the ingest.RejectReasons label of an answer status.
func rejectReason(status int) string {
	switch status {
	case http.StatusUnauthorized, http.StatusForbidden:
		return "unauthorized"
	case http.StatusUnsupportedMediaType:
		return "unsupported_media_type"
	case http.StatusRequestEntityTooLarge:
		return "too_large"
	case http.StatusRequestTimeout:
		return "timeout"
	case http.StatusBadRequest:
		return "invalid"
	}
	return "unavailable"
}

func (s *ingestServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.admit(w, r) {
		return
	}
	// Reserve before reading: a body that does not fit is never read.
	reserve := r.ContentLength
	if reserve < 0 {
		reserve = s.cfg.MaxBodyBytes
	}
	if !s.budget.TryAcquire(reserve) {
		s.metrics.Rejected("busy")
		httpapi.Unavailable(w, fmt.Sprintf("ingestion busy: the request bodies in flight fill http.max_inflight_body_bytes (%d bytes); retry later", s.cfg.MaxInflightBodyBytes))
		return
	}
	defer s.budget.Release(reserve)
	body, ok := s.readBody(w, r)
	if !ok {
		return
	}
	events, ok := s.parse(w, r, body)
	if !ok {
		return
	}
	s.produce(w, r, events)
}

// admit checks everything a request can be refused for before its body
// is read, and answers when it refuses.
func (s *ingestServer) admit(w http.ResponseWriter, r *http.Request) bool {
	switch {
	case !s.guarded && s.cfg.Token == "":
		s.reject(w, http.StatusServiceUnavailable, "ingestion disabled: set http.token")
		return false
	case s.catErr != nil:
		s.reject(w, http.StatusServiceUnavailable, "ingestion disabled: "+s.catErr.Error())
		return false
	case s.ing == nil:
		s.reject(w, http.StatusServiceUnavailable, "ingestion disabled: no producer")
		return false
	}
	if !s.guarded && !s.tokenOK(w, r) {
		return false
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || !jsonMediaType(mt) {
		s.reject(w, http.StatusUnsupportedMediaType, "Content-Type must be application/json (or application/x-ndjson, application/jsonl)")
		return false
	}
	if r.ContentLength > s.cfg.MaxBodyBytes {
		s.reject(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body of %d bytes exceeds http.max_body_bytes (%d)", r.ContentLength, s.cfg.MaxBodyBytes))
		return false
	}
	return true
}

// tokenOK checks the inline http.token of a handler that no server
// guards, and answers when the request does not carry it.
func (s *ingestServer) tokenOK(w http.ResponseWriter, r *http.Request) bool {
	given, ok := httpapi.Bearer(r)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="factory2"`)
		s.reject(w, http.StatusUnauthorized, "missing bearer token: send Authorization: Bearer <http.token>")
		return false
	}
	if subtle.ConstantTimeCompare([]byte(given), []byte(s.cfg.Token)) != 1 {
		s.reject(w, http.StatusForbidden, "wrong bearer token")
		return false
	}
	return true
}

// readBody reads the body, at most http.max_body_bytes.
func (s *ingestServer) readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	var tooBig *http.MaxBytesError
	switch {
	case err == nil:
		return body, true
	case errors.As(err, &tooBig):
		s.reject(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body exceeds http.max_body_bytes (%d)", s.cfg.MaxBodyBytes))
	case errors.Is(err, os.ErrDeadlineExceeded):
		s.reject(w, http.StatusRequestTimeout, fmt.Sprintf("body not received within http.read_timeout (%s)", s.cfg.ReadTimeout))
	default:
		s.reject(w, http.StatusBadRequest, "reading body: "+err.Error())
	}
	return nil, false
}

// parse parses body in the format the query asks for.
func (s *ingestServer) parse(w http.ResponseWriter, r *http.Request, body []byte) ([]ingest.Event, bool) {
	q := r.URL.Query()
	p := &ingest.Parser{Catalog: s.cat, Source: q.Get("source")}
	var events []ingest.Event
	var err error
	switch format := q.Get("format"); format {
	case "", "json":
		if q.Has("topic") {
			s.reject(w, http.StatusBadRequest, "topic is for format=message")
			return nil, false
		}
		events, err = p.ParseJSON(body)
	case "message":
		events, err = p.ParseMessages(body, q.Get("topic"))
	default:
		s.reject(w, http.StatusBadRequest, fmt.Sprintf("format %q: want json or message", format))
		return nil, false
	}
	if err != nil {
		s.reject(w, http.StatusBadRequest, err.Error())
		return nil, false
	}
	return events, true
}

// produce produces events as one batch and answers with the outcome.
func (s *ingestServer) produce(w http.ResponseWriter, r *http.Request, events []ingest.Event) {
	ctx := r.Context()
	if s.cfg.WriteTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.cfg.WriteTimeout)
		defer cancel()
	}
	res, err := s.ing.Produce(ctx, events)
	var enriched []ingest.Produced
	var enrichErr error
	if (err == nil || errors.Is(err, ingest.ErrNotVisible)) && s.enricher != nil && r.URL.Query().Get("format") == "message" {
		enriched, enrichErr = produceEnrichments(r.Context(), s.enricher, &ingest.Parser{Catalog: s.cat}, s.ing,
			events, s.cfg.WriteTimeout, s.log)
	}
	if s.cfg.WriteTimeout > 0 {
		// The answer says whether the batch is committed: give writing it
		// a write timeout of its own, however long producing took. Not
		// every ResponseWriter has deadlines; those also have no timeout.
		_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
	}
	var bad *ingest.InputError
	var big *ingest.TooLargeError
	var warning string
	switch {
	case errors.As(err, &big):
		s.metrics.Rejected("too_large")
		ingestJSON(w, http.StatusRequestEntityTooLarge, tooLargeAnswer{Error: withLimitHint(err).Error(),
			Event: big.Index, Line: big.Line, Element: big.Element, Size: big.Size, MaxBytes: big.Max})
		return
	case errors.As(err, &bad):
		s.reject(w, http.StatusBadRequest, err.Error())
		return
	case errors.Is(err, ingest.ErrNotVisible): // committed: accepted
		warning = err.Error()
	case err != nil:
		s.reject(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	answer := struct {
		Count       int               `json:"count"`
		Produced    []ingest.Produced `json:"produced"`
		Warning     string            `json:"warning,omitempty"`
		Enriched    []ingest.Produced `json:"enriched,omitempty"`
		EnrichError string            `json:"enrich_error,omitempty"`
	}{Count: len(res), Produced: res, Warning: warning, Enriched: enriched}
	if enrichErr != nil {
		answer.EnrichError = enrichErr.Error() + "; send the messages again to retry (the same events result)"
	}
	s.metrics.Committed(res)
	s.metrics.Committed(enriched)
	ingestJSON(w, http.StatusAccepted, answer)
}

// tooLargeAnswer is the 413 of an event too large for Kafka.
type tooLargeAnswer struct {
	Error    string `json:"error"`
	Event    int    `json:"event"`             // 1-based index in the batch
	Line     int    `json:"line,omitempty"`    // 1-based input line
	Element  int    `json:"element,omitempty"` // 1-based index in a JSON array
	Size     int    `json:"size"`              // the record's key and value, in bytes
	MaxBytes int    `json:"max_bytes"`         // ingest.max_event_bytes; 0 when Kafka refused it
}

// withLimitHint names the configuration key of the limit an
// *ingest.TooLargeError exceeds, when it is ours rather than Kafka's.
func withLimitHint(err error) error {
	var big *ingest.TooLargeError
	if errors.As(err, &big) && big.Max > 0 {
		return fmt.Errorf("%w (ingest.max_event_bytes)", err)
	}
	return err
}

func jsonMediaType(mt string) bool {
	switch mt {
	case "application/json", "application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonlines":
		return true
	}
	return false
}

func ingestError(w http.ResponseWriter, status int, msg string) {
	ingestJSON(w, status, map[string]string{"error": msg})
}

func ingestJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v) // the client went away; nothing to do
}
