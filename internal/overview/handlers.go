package overview

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/factory2/factory2/processors/compose"
	"github.com/factory2/factory2/processors/deps"
)

//go:embed assets
var assets embed.FS

// Handler is where routes are registered: *httpapi.Server, or an
// *http.ServeMux in tests.
type Handler interface {
	Handle(pattern string, h http.Handler)
}

// Register adds the page's routes to mux, every one a GET:
//
//	/                       the overview: live decisions, composes, recent builds
//	/builds/{nvr}           a build's journey
//	/composes/{id}          a compose and its blockers
//	/trace?node=type:id     the dependency trace as a graph
//	/find?q=...             the page of a node key, compose id or NVR
//	/parts/{name}           a section of the overview (composes, builds), refreshed by its script
//	/static/...             the embedded script and style sheet
//	/api/v1/decisions       the recent decisions (JSON)
//	/api/v1/builds/{nvr}    a build's journey (JSON)
//	/api/v1/stream          the decisions as they are made (server-sent events)
func (o *Overview) Register(mux Handler) {
	static, _ := fs.Sub(assets, "assets/static") // a constant path of the embedded tree
	mux.Handle("GET /{$}", http.HandlerFunc(o.index))
	mux.Handle("GET /builds/{nvr}", http.HandlerFunc(o.build))
	mux.Handle("GET /composes/{id}", http.HandlerFunc(o.compose))
	mux.Handle("GET /trace", http.HandlerFunc(o.trace))
	mux.Handle("GET /find", http.HandlerFunc(o.find))
	mux.Handle("GET /parts/{name}", http.HandlerFunc(o.part))
	mux.Handle("GET /static/", http.StripPrefix("/static/", cacheable(http.FileServerFS(static))))
	mux.Handle("GET /api/v1/decisions", http.HandlerFunc(o.decisionsJSON))
	mux.Handle("GET /api/v1/builds/{nvr}", http.HandlerFunc(o.buildJSON))
	mux.Handle("GET /api/v1/stream", http.HandlerFunc(o.stream))
}

var pages = template.Must(template.New("").Funcs(template.FuncMap{
	"when":     when,
	"duration": duration,
	"latency": func(d time.Duration) string {
		if d < 0 {
			return duration(-d) + " before"
		}
		return "+" + duration(d)
	},
	"path": pathEscape,
	"join": strings.Join,
	"readiness": func(r *bool) string {
		switch {
		case r == nil:
			return "no readiness decision"
		case *r:
			return "ready"
		}
		return "blocked"
	},
	"readyClass": func(r *bool) string {
		switch {
		case r == nil:
			return "info"
		case *r:
			return "good"
		}
		return "bad"
	},
	"passed": func(b bool) string {
		if b {
			return "passed"
		}
		return "failed"
	},
}).ParseFS(assets, "assets/*.html"))

// page is what every page's layout needs.
type page struct {
	Title string
	Nav   string
	// Error, when set, is shown instead of the content.
	Error string
}

// indexData is what the overview page shows.
type indexData struct {
	page
	Decisions      []Decision
	Last           int64
	Composes       []compose.Overview
	ComposeLoading string
	Builds         []string
}

func (o *Overview) indexData() indexData {
	composes, err := o.cfg.Composes.List()
	var loading string
	if err != nil {
		loading = err.Error()
	}
	decisions := o.hub.recent()
	var last int64
	if len(decisions) > 0 {
		last = decisions[0].Seq
	}
	return indexData{page: page{Title: "Pipeline overview", Nav: "overview"}, Decisions: decisions, Last: last,
		Composes: composes, ComposeLoading: loading, Builds: o.journeys.latest(recentBuilds)}
}

// recentBuilds is how many builds the overview lists.
const recentBuilds = 20

func (o *Overview) index(w http.ResponseWriter, _ *http.Request) {
	render(w, http.StatusOK, "index.html", o.indexData())
}

// part renders one section of the overview (composes, builds), for the
// page's script to refresh it when decisions come.
func (o *Overview) part(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if name != "composes" && name != "builds" {
		http.NotFound(w, r)
		return
	}
	render(w, http.StatusOK, name, o.indexData())
}

func (o *Overview) build(w http.ResponseWriter, r *http.Request) {
	nvr := r.PathValue("nvr")
	j, ok := o.journeys.get(nvr)
	code := http.StatusOK
	p := page{Title: nvr, Nav: "builds"}
	if !ok {
		code = http.StatusNotFound
		p.Error = o.unknownBuild(nvr)
	}
	render(w, code, "build.html", struct {
		page
		Journey *Journey
	}{p, j})
}

func (o *Overview) unknownBuild(nvr string) string {
	return fmt.Sprintf("no event or decision about %q read in the last %s (builds kept: the %d most recently changed)",
		nvr, o.cfg.Lookback, o.cfg.MaxBuilds)
}

func (o *Overview) buildJSON(w http.ResponseWriter, r *http.Request) {
	nvr := r.PathValue("nvr")
	j, ok := o.journeys.get(nvr)
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]string{"message": o.unknownBuild(nvr)})
		return
	}
	writeJSON(w, http.StatusOK, j)
}

func (o *Overview) compose(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	st, err := o.cfg.Composes.Status(id, false)
	code := http.StatusOK
	p := page{Title: id, Nav: "composes"}
	var le *compose.LoadingError
	switch {
	case errors.As(err, &le):
		code, p.Error = http.StatusServiceUnavailable, err.Error()
		w.Header().Set("Retry-After", "1")
	case errors.Is(err, compose.ErrUnknownCompose):
		code, p.Error = http.StatusNotFound, err.Error()
	case err != nil:
		code, p.Error = http.StatusInternalServerError, err.Error()
	}
	render(w, code, "compose.html", struct {
		page
		Status *compose.Status
	}{p, st})
}

func (o *Overview) trace(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	node := strings.TrimSpace(q.Get("node"))
	data := struct {
		page
		Node, Direction string
		Depth           int
		Trace           *deps.Trace
		Graph           svgGraph
	}{page: page{Title: "Dependency trace", Nav: "trace"}, Node: node, Direction: q.Get("direction"), Depth: 3}
	if data.Direction == "" {
		data.Direction = string(deps.Down)
	}
	if node == "" {
		render(w, http.StatusOK, "trace.html", data)
		return
	}
	if h := o.cfg.Graph.Health(); !h.Ready && h.Waiting == "" {
		w.Header().Set("Retry-After", "1")
		data.Error = h.Reason
		render(w, http.StatusServiceUnavailable, "trace.html", data)
		return
	}
	tq, err := deps.ParseQuery(node, q)
	if err == nil && q.Get("depth") == "" {
		tq.Depth = data.Depth
	}
	data.Depth = tq.Depth
	if err == nil {
		if tq.MaxNodes == 0 || tq.MaxNodes > maxDrawn {
			tq.MaxNodes = maxDrawn
		}
		tq.Sorted = true
		data.Trace, err = o.cfg.Graph.Graph.Trace(tq)
	}
	var unknown *deps.ErrUnknownNode
	switch {
	case errors.As(err, &unknown):
		data.Error = err.Error()
		render(w, http.StatusNotFound, "trace.html", data)
	case err != nil:
		data.Error = err.Error()
		render(w, http.StatusBadRequest, "trace.html", data)
	default:
		data.Graph = layout(data.Trace)
		render(w, http.StatusOK, "trace.html", data)
	}
}

// find sends the header's search box to a page: a node key (type:id) to
// its trace, a known compose id to the compose, anything else to the
// build journey of that NVR.
func (o *Overview) find(w http.ResponseWriter, r *http.Request) {
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	to := "/"
	switch {
	case q == "":
	case strings.Contains(q, ":"):
		to = "/trace?" + url.Values{"node": {q}}.Encode()
	default:
		to = "/builds/" + pathEscape(q)
		if _, err := o.cfg.Composes.Status(q, false); err == nil {
			to = "/composes/" + pathEscape(q)
		}
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}

func (o *Overview) decisionsJSON(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"decisions": o.hub.recent()})
}

// writeWait bounds each write to a stream: a browser that reads nothing
// for this long is cut off (the server's own write timeout is moved on
// every write, so a stream may outlive it).
const writeWait = 10 * time.Second

// stream sends the decisions as server-sent events: first those kept
// after the one the client last saw (the `after` parameter, or the
// Last-Event-ID header a reconnecting EventSource sends), then each new
// one as it is read, with a comment every Heartbeat when idle. It ends
// when the client goes, falls behind by more than StreamBuffer decisions
// (the browser reconnects and catches up), or the Overview stops.
func (o *Overview) stream(w http.ResponseWriter, r *http.Request) {
	after, err := resumePoint(r)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"message": err.Error()})
		return
	}
	s, backlog, err := o.hub.subscribe(after)
	if err != nil {
		w.Header().Set("Retry-After", "5")
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"message": err.Error()})
		return
	}
	defer o.hub.unsubscribe(s)
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	var buf bytes.Buffer
	send := func() bool {
		_ = rc.SetWriteDeadline(time.Now().Add(writeWait)) // unsupported only by test recorders
		_, err := w.Write(buf.Bytes())
		buf.Reset()
		return err == nil && rc.Flush() == nil
	}
	buf.WriteString("retry: 2000\n\n")
	for _, d := range backlog {
		appendEvent(&buf, d)
	}
	if !send() {
		return
	}
	beat := time.NewTicker(o.cfg.Heartbeat)
	defer beat.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.gone:
			return
		case d := <-s.ch:
			appendEvent(&buf, d)
			// Take what else is waiting in the same write.
			for more := true; more; {
				select {
				case d := <-s.ch:
					appendEvent(&buf, d)
				default:
					more = false
				}
			}
		case <-beat.C:
			buf.WriteString(": ping\n\n")
		}
		if !send() {
			return
		}
	}
}

// resumePoint is the Seq the client saw last: the after parameter, else
// the Last-Event-ID header, else 0.
func resumePoint(r *http.Request) (int64, error) {
	v, name := r.Header.Get("Last-Event-ID"), "Last-Event-ID"
	if q := r.URL.Query().Get("after"); q != "" && v == "" {
		v, name = q, "after"
	}
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%s %q: want the number of the last decision seen", name, v)
	}
	return n, nil
}

// appendEvent writes d as one server-sent event: id, event type, and
// the JSON on one data line (JSON has no raw newlines).
func appendEvent(b *bytes.Buffer, d Decision) {
	js, _ := json.Marshal(d) // a Decision always marshals
	fmt.Fprintf(b, "id: %d\nevent: decision\ndata: %s\n\n", d.Seq, js)
}

func render(w http.ResponseWriter, code int, name string, data any) {
	var b bytes.Buffer
	if err := pages.ExecuteTemplate(&b, name, data); err != nil {
		http.Error(w, "overview: rendering "+name+": "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'")
	w.WriteHeader(code)
	_, _ = w.Write(b.Bytes()) // the client went away; nothing to do
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v) // the client went away; nothing to do
}

// cacheable lets browsers keep the static files a few minutes: they
// change only with the binary.
func cacheable(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=300")
		h.ServeHTTP(w, r)
	})
}

func pathEscape(s string) string { return url.PathEscape(s) }

// when is a time as the page shows it: UTC, to the second.
func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.DateTime)
}

// duration is a latency for people: 3.2s, 4m10s, 2h5m.
func duration(d time.Duration) string {
	neg := d < 0
	if neg {
		d = -d
	}
	var s string
	switch {
	case d == 0:
		return "0s"
	case d < time.Second:
		s = d.Round(time.Millisecond).String()
	case d < time.Minute:
		s = d.Round(100 * time.Millisecond).String()
	case d < time.Hour:
		s = d.Round(time.Second).String()
	default:
		s = d.Round(time.Minute).String()
		s = strings.TrimSuffix(s, "0s")
	}
	if neg {
		s = "-" + s
	}
	return s
}
