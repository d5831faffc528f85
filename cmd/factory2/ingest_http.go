package main

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/factory2/factory2/internal/config"
	"github.com/factory2/factory2/internal/httpapi"
	"github.com/factory2/factory2/internal/ingest"
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
	return ingest.NewProducer(ingest.ProducerConfig{
		Brokers:            cfg.Brokers,
		TransactionalID:    ingestTxnID(cat, suffix),
		TransactionTimeout: cfg.Processing.TransactionTimeout,
		Codec:              codec,
	})
}

// registerIngest adds POST /api/v1/events to srv: the HTTP form of
// `factory2 emit`, producing with ing (see newIngestProducer).
//
// The body is JSON events (one object, a JSON array, or JSON lines) or,
// with ?format=message, bus messages (&topic= gives the topic of a bare
// body); ?source= gives events without one a source. Content-Type must be
// JSON (application/json, application/x-ndjson, application/jsonl). The
// request needs "Authorization: Bearer <http.token>"; with no token
// configured the endpoint answers 503 and accepts nothing.
//
// Answers: 202 {"count":N,"produced":[{"topic","partition","offset","key","id","type"}...]};
// 400 bad input (nothing produced); 401 no bearer token; 403 wrong token;
// 413 body over http.max_body_bytes; 415 not JSON; 503 ingestion
// disabled or producing failed (the batch was aborted). Errors are
// {"error": "..."}. A 202 means the events are committed and visible to
// read_committed consumers, except when it carries a "warning" (committed,
// not yet visible: see ingest.ErrNotVisible). Batches are produced one at
// a time.
func registerIngest(srv *httpapi.Server, cfg config.Config, ing *ingest.Producer) {
	srv.Handle("POST /api/v1/events", ingestHandler(cfg, ing))
}

// ingestHandler is the handler registerIngest registers.
func ingestHandler(cfg config.Config, ing *ingest.Producer) http.Handler {
	cat, catErr := catalog(cfg)
	token := []byte(cfg.HTTP.Token)
	maxBody := cfg.HTTP.MaxBodyBytes
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case len(token) == 0:
			ingestError(w, http.StatusServiceUnavailable, "ingestion disabled: set http.token")
			return
		case catErr != nil:
			ingestError(w, http.StatusServiceUnavailable, "ingestion disabled: "+catErr.Error())
			return
		case ing == nil:
			ingestError(w, http.StatusServiceUnavailable, "ingestion disabled: no producer")
			return
		}
		given, ok := bearer(r)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="factory2"`)
			ingestError(w, http.StatusUnauthorized, "missing bearer token: send Authorization: Bearer <http.token>")
			return
		}
		if subtle.ConstantTimeCompare([]byte(given), token) != 1 {
			ingestError(w, http.StatusForbidden, "wrong bearer token")
			return
		}
		if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || !jsonMediaType(mt) {
			ingestError(w, http.StatusUnsupportedMediaType, "Content-Type must be application/json (or application/x-ndjson, application/jsonl)")
			return
		}
		if r.ContentLength > maxBody {
			ingestError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body of %d bytes exceeds http.max_body_bytes (%d)", r.ContentLength, maxBody))
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				ingestError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body exceeds http.max_body_bytes (%d)", maxBody))
				return
			}
			ingestError(w, http.StatusBadRequest, "reading body: "+err.Error())
			return
		}

		q := r.URL.Query()
		p := &ingest.Parser{Catalog: cat, Source: q.Get("source")}
		var events []ingest.Event
		switch format := q.Get("format"); format {
		case "", "json":
			if q.Has("topic") {
				ingestError(w, http.StatusBadRequest, "topic is for format=message")
				return
			}
			events, err = p.ParseJSON(body)
		case "message":
			events, err = p.ParseMessages(body, q.Get("topic"))
		default:
			ingestError(w, http.StatusBadRequest, fmt.Sprintf("format %q: want json or message", format))
			return
		}
		if err != nil {
			ingestError(w, http.StatusBadRequest, err.Error())
			return
		}
		res, err := ing.Produce(r.Context(), events)
		var bad *ingest.InputError
		var warning string
		switch {
		case errors.As(err, &bad):
			ingestError(w, http.StatusBadRequest, err.Error())
			return
		case errors.Is(err, ingest.ErrNotVisible): // committed: accepted
			warning = err.Error()
		case err != nil:
			ingestError(w, http.StatusServiceUnavailable, err.Error())
			return
		}
		ingestJSON(w, http.StatusAccepted, struct {
			Count    int               `json:"count"`
			Produced []ingest.Produced `json:"produced"`
			Warning  string            `json:"warning,omitempty"`
		}{len(res), res, warning})
	})
}

// bearer returns the token of an "Authorization: Bearer <token>" header.
func bearer(r *http.Request) (string, bool) {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
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
