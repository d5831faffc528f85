package httpapi

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Class is what a route does, which says which token it needs. Every
// route is registered with its class (Handle, HandleWrite, HandleAdmin),
// so a handler cannot forget to check a token: the server checks it
// before the handler runs.
type Class uint8

const (
	// Read routes answer queries. They are open unless Auth.ProtectReads
	// is set; then they need Auth.ReadToken, as a bearer token or as the
	// login cookie a browser gets from POST /login. /metrics is a read
	// route.
	Read Class = iota
	// Write routes change what the pipeline sees (POST /api/v1/events):
	// they need Auth.EventsToken as a bearer token (never a cookie, which
	// a browser would send on a forged cross-site request), and answer
	// 403 when none is configured.
	Write
	// Admin routes act on the process itself (/debug/pprof/): they need
	// Auth.AdminToken as a bearer token (never a cookie), and answer 403
	// when none is configured.
	Admin
	// open routes need no token: /healthz and /readyz, which probes must
	// reach without credentials, and the login form.
	open
)

func (c Class) String() string {
	switch c {
	case Read:
		return "read"
	case Write:
		return "write"
	case Admin:
		return "admin"
	}
	return "open"
}

// Auth holds the bearer tokens of the route classes. Tokens are compared
// in constant time and never logged.
type Auth struct {
	// EventsToken (http.token) guards Write routes. Empty: they answer
	// 403, write routes disabled.
	EventsToken string
	// AdminToken (http.admin_token) guards Admin routes. Empty: they
	// answer 403, admin routes disabled.
	AdminToken string
	// ReadToken (http.read_token) guards Read routes when ProtectReads
	// is set. The events and admin tokens are accepted there too: a
	// client trusted to write or administer may read.
	ReadToken string
	// ProtectReads (http.protect_reads) makes Read routes need a token.
	// Default false: reads are open.
	ProtectReads bool
}

// errNoReadToken is Listen's and SetAuth's answer to reads protected by
// no token, which nobody could read.
var errNoReadToken = errors.New("httpapi: protecting reads needs a read token (set http.read_token or unset http.protect_reads)")

// keys is an Auth made ready for checking requests: the tokens each class
// accepts, and the login cookie values reads accept. The server holds one
// behind an atomic pointer, so that SetAuth swaps every token at once.
type keys struct {
	protectReads bool
	// accepted holds the bearer tokens of each class, by Class.
	accepted [open][][]byte
	// cookies holds the login cookie value of each read-class token.
	cookies [][]byte
}

// compile returns the keys of a.
func (a Auth) compile() *keys {
	k := &keys{protectReads: a.ProtectReads}
	k.accepted[Read] = tokens(a.ReadToken, a.EventsToken, a.AdminToken)
	k.accepted[Write] = tokens(a.EventsToken)
	k.accepted[Admin] = tokens(a.AdminToken)
	for _, t := range k.accepted[Read] {
		k.cookies = append(k.cookies, []byte(cookieValue(t)))
	}
	return k
}

// tokenKey names the configuration key of each class's token, for the
// error messages that say what to set or send.
var tokenKey = [...]string{Read: "http.read_token", Write: "http.token", Admin: "http.admin_token"}

// guard wraps h with the token check of class c, made with the keys the
// server holds when the request comes (SetAuth may change them). A
// request without a credential gets 401 with WWW-Authenticate, or, for a
// read that a browser makes for a page, a redirect to the login form;
// one with a bearer token that is not accepted gets 403. A class with no
// token configured answers 403 rather than 404: the route exists, and no
// credential can open it until the operator configures one (the answer
// says which key), which a client must not retry.
func (s *Server) guard(c Class, h http.Handler) http.Handler {
	if c == open {
		return h
	}
	key := tokenKey[c]
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k := s.auth.Load()
		if c == Read && !k.protectReads {
			h.ServeHTTP(w, r)
			return
		}
		accepted := k.accepted[c]
		if len(accepted) == 0 {
			authError(w, http.StatusForbidden, c.String()+" routes are disabled: set "+key)
			return
		}
		given, ok := Bearer(r)
		if ok {
			if !matches([]byte(given), accepted) {
				authError(w, http.StatusForbidden, "wrong bearer token for "+c.String()+" routes")
				return
			}
			h.ServeHTTP(w, r)
			return
		}
		// Only reads take the cookie: a browser sends it on whatever
		// request a page of another site makes it send, and SameSite is
		// a second line, not the first.
		if c == Read {
			if ck, err := r.Cookie(CookieName); err == nil && matches([]byte(ck.Value), k.cookies) {
				h.ServeHTTP(w, r)
				return
			}
			if (r.Method == http.MethodGet || r.Method == http.MethodHead) && prefersHTML(r) {
				http.Redirect(w, r, "/login?"+url.Values{"next": {r.URL.RequestURI()}}.Encode(), http.StatusSeeOther)
				return
			}
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="factory2"`)
		authError(w, http.StatusUnauthorized, "missing bearer token: send Authorization: Bearer <"+key+">")
	})
}

// tokens returns the non-empty tokens of ts.
func tokens(ts ...string) [][]byte {
	var out [][]byte
	for _, t := range ts {
		if t != "" {
			out = append(out, []byte(t))
		}
	}
	return out
}

// matches reports whether given is one of accepted, comparing each in
// constant time (and all of them, so the time does not say which).
func matches(given []byte, accepted [][]byte) bool {
	ok := 0
	for _, a := range accepted {
		ok |= subtle.ConstantTimeCompare(given, a)
	}
	return ok == 1
}

// cookieValue is the login cookie of a read-class token: an HMAC of a
// fixed label keyed by the token, not the token itself, so that a cookie
// read off a browser opens reads only, even when the person logged in
// with the events or admin token. Changing the token (SIGHUP) ends every
// login made with the old one.
func cookieValue(token []byte) string {
	m := hmac.New(sha256.New, token)
	m.Write([]byte("factory2 read cookie v1"))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// Bearer returns the token of an "Authorization: Bearer <token>" header.
func Bearer(r *http.Request) (string, bool) {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// prefersHTML reports whether r's Accept header names text/html with a
// quality at least that of application/json: a browser loading a page,
// not an API client (whose Accept is JSON, */* or absent) nor an
// EventSource (text/event-stream).
func prefersHTML(r *http.Request) bool {
	html, json := -1.0, -1.0
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		q := 1.0
		if v, ok := params["q"]; ok {
			if q, err = strconv.ParseFloat(v, 64); err != nil {
				continue
			}
		}
		switch mt {
		case "text/html":
			html = max(html, q)
		case "application/json":
			json = max(json, q)
		}
	}
	return html > 0 && html >= json
}

func authError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg}) // the client went away; nothing to do
}
