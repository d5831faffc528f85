package httpapi

import (
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"strings"
)

// Class is what a route does, which says which token it needs. Every
// route is registered with its class (Handle, HandleWrite, HandleAdmin),
// so a handler cannot forget to check a token: the server checks it
// before the handler runs.
type Class uint8

const (
	// Read routes answer queries. They are open unless Auth.ProtectReads
	// is set; then they need Auth.ReadToken. /metrics is a read route.
	Read Class = iota
	// Write routes change what the pipeline sees (POST /api/v1/events):
	// they need Auth.EventsToken, and answer 403 when none is configured.
	Write
	// Admin routes act on the process itself (/debug/pprof/): they need
	// Auth.AdminToken, and answer 403 when none is configured.
	Admin
	// open routes need no token: /healthz and /readyz, which probes must
	// reach without credentials.
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

// tokenKey names the configuration key of each class's token, for the
// error messages that say what to set or send.
var tokenKey = [...]string{Read: "http.read_token", Write: "http.token", Admin: "http.admin_token"}

// guard wraps h with the token check of class c. A request without a
// bearer token gets 401 with WWW-Authenticate; one with a token that is
// not accepted gets 403. A class with no token configured answers 403
// rather than 404: the route exists, and no credential can open it until
// the operator configures one (the answer says which key), which a
// client must not retry.
func (a Auth) guard(c Class, h http.Handler) http.Handler {
	var accepted [][]byte
	switch c {
	case open:
		return h
	case Read:
		if !a.ProtectReads {
			return h
		}
		accepted = tokens(a.ReadToken, a.EventsToken, a.AdminToken)
	case Write:
		accepted = tokens(a.EventsToken)
	case Admin:
		accepted = tokens(a.AdminToken)
	}
	key := tokenKey[c]
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(accepted) == 0 {
			authError(w, http.StatusForbidden, c.String()+" routes are disabled: set "+key)
			return
		}
		given, ok := Bearer(r)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="factory2"`)
			authError(w, http.StatusUnauthorized, "missing bearer token: send Authorization: Bearer <"+key+">")
			return
		}
		if !matches([]byte(given), accepted) {
			authError(w, http.StatusForbidden, "wrong bearer token for "+c.String()+" routes")
			return
		}
		h.ServeHTTP(w, r)
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

// Bearer returns the token of an "Authorization: Bearer <token>" header.
func Bearer(r *http.Request) (string, bool) {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

func authError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg}) // the client went away; nothing to do
}
