package httpapi

import (
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

const browserAccept = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"

// protected starts a server with protected reads, every token set, and
// request metrics.
func protected(t *testing.T) *Server {
	t.Helper()
	reg := prometheus.NewRegistry()
	srv, err := Listen("127.0.0.1:0", reg, slog.New(slog.DiscardHandler), Options{Registerer: reg,
		Auth: Auth{EventsToken: eventsToken, AdminToken: adminToken, ReadToken: readToken, ProtectReads: true}})
	if err != nil {
		t.Fatal(err)
	}
	authRoutes(srv)
	run(t, srv)
	return srv
}

// noRedirects is a client that shows redirects instead of following them.
func noRedirects(t *testing.T) *http.Client {
	cl := client(t)
	cl.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return cl
}

// send sends req and returns the response with its body read.
func send(t *testing.T, cl *http.Client, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(body)
}

// login posts the form and returns the answer.
func login(t *testing.T, cl *http.Client, srv *Server, token, next string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), "POST", srv.URL()+"/login",
		strings.NewReader(url.Values{"token": {token}, "next": {next}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return send(t, cl, req)
}

// loginCookie logs in with token and returns the cookie set.
func loginCookie(t *testing.T, cl *http.Client, srv *Server, token string) *http.Cookie {
	t.Helper()
	resp, body := login(t, cl, srv, token, "/api/v1/thing")
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login with a good token: %d %s", resp.StatusCode, body)
	}
	for _, c := range resp.Cookies() {
		if c.Name == CookieName {
			return c
		}
	}
	t.Fatalf("login set no %s cookie: %v", CookieName, resp.Header["Set-Cookie"])
	return nil
}

// withCookie sends method path with cookie c and no bearer token.
func withCookie(t *testing.T, cl *http.Client, srv *Server, method, path string, c *http.Cookie) int {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), method, srv.URL()+path, strings.NewReader("{}"))
	req.AddCookie(c)
	resp, _ := send(t, cl, req)
	return resp.StatusCode
}

// TestLoginCookieOpensReadsOnly: the cookie of a login opens read routes,
// whatever read-class token logged in, and never write or admin routes,
// even when the events or admin token logged in (a forged cross-site
// request carries cookies, not bearer tokens).
func TestLoginCookieOpensReadsOnly(t *testing.T) {
	srv := protected(t)
	cl := noRedirects(t)
	for _, tok := range []string{readToken, eventsToken, adminToken} {
		c := loginCookie(t, cl, srv, tok)
		if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || c.Secure {
			t.Errorf("cookie %+v: want HttpOnly, SameSite=Strict, Path=/, not Secure over plain HTTP", c)
		}
		if strings.Contains(c.Value, tok) {
			t.Errorf("the cookie holds the token itself")
		}
		for _, r := range []struct {
			method, path string
			want         int
		}{
			{"GET", "/api/v1/thing", 200},
			{"POST", "/api/v1/query", 200},
			{"GET", "/metrics", 200},
			{"POST", "/api/v1/events", 401},
			{"POST", "/admin/act", 401},
			{"GET", "/debug/pprof/", 401},
		} {
			if got := withCookie(t, cl, srv, r.method, r.path, c); got != r.want {
				t.Errorf("logged in with the %s token: %s %s with the cookie: %d, want %d", tokenName(tok), r.method, r.path, got, r.want)
			}
		}
	}
	// A forged or stale cookie opens nothing.
	if got := withCookie(t, cl, srv, "GET", "/api/v1/thing", &http.Cookie{Name: CookieName, Value: cookieValue([]byte("old-token"))}); got != 401 {
		t.Errorf("a cookie of another token: %d, want 401", got)
	}
	if got := withCookie(t, cl, srv, "GET", "/api/v1/thing", &http.Cookie{Name: CookieName, Value: readToken}); got != 401 {
		t.Errorf("the raw token as cookie: %d, want 401", got)
	}
}

func tokenName(tok string) string {
	return map[string]string{readToken: "read", eventsToken: "events", adminToken: "admin"}[tok]
}

// TestLogin: the form is served; a wrong token shows it again with 403;
// a good one redirects to next; logout clears the cookie. Each login is
// counted by result.
func TestLogin(t *testing.T) {
	srv := protected(t)
	cl := noRedirects(t)
	req, _ := http.NewRequestWithContext(t.Context(), "GET", srv.URL()+"/login?next=%2Fbuilds%2Fx", nil)
	resp, body := send(t, cl, req)
	if resp.StatusCode != 200 || !strings.Contains(body, `name="token"`) || !strings.Contains(body, `value="/builds/x"`) {
		t.Fatalf("GET /login: %d\n%s", resp.StatusCode, body)
	}
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Errorf("GET /login Content-Type %q", resp.Header.Get("Content-Type"))
	}

	resp, body = login(t, cl, srv, "wrong", "/builds/x")
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "Wrong token") || !strings.Contains(body, `value="/builds/x"`) {
		t.Errorf("wrong token: %d\n%s", resp.StatusCode, body)
	}
	if len(resp.Cookies()) != 0 {
		t.Errorf("wrong token set cookies %v", resp.Cookies())
	}
	resp, _ = login(t, cl, srv, readToken, "/builds/x?a=1")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/builds/x?a=1" {
		t.Errorf("good token: %d to %q, want 303 to /builds/x?a=1", resp.StatusCode, resp.Header.Get("Location"))
	}
	big := strings.Repeat("x", maxLoginBytes+1)
	resp, _ = login(t, cl, srv, big, "/")
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("oversized form: %d, want 400", resp.StatusCode)
	}

	req, _ = http.NewRequestWithContext(t.Context(), "POST", srv.URL()+"/logout", nil)
	resp, _ = send(t, cl, req)
	if resp.StatusCode != http.StatusSeeOther || len(resp.Cookies()) != 1 || resp.Cookies()[0].MaxAge >= 0 || resp.Cookies()[0].Name != CookieName {
		t.Errorf("logout: %d, cookies %v; want 303 clearing %s", resp.StatusCode, resp.Header["Set-Cookie"], CookieName)
	}

	for result, want := range map[string]float64{"ok": 1, "wrong_token": 1, "bad_request": 1} {
		if got := testutil.ToFloat64(srv.logins.WithLabelValues(result)); got != want {
			t.Errorf("factory2_http_logins_total{result=%q} = %v, want %v", result, got, want)
		}
	}
}

// TestLoginNext: next is followed only to a path of this server; anything
// that a browser could read as another site goes to /.
func TestLoginNext(t *testing.T) {
	for next, want := range map[string]string{
		"/":                      "/",
		"/builds/a-1.0-1.fc42":   "/builds/a-1.0-1.fc42",
		"/trace?node=x&d=up":     "/trace?node=x&d=up",
		"":                       "/",
		"//evil.example":         "/",
		"///evil.example":        "/",
		"/\\evil.example":        "/",
		"\\\\evil.example":       "/",
		"https://evil.example/":  "/",
		"evil.example":           "/",
		"javascript:alert(1)":    "/",
		"/\tevil":                "/",
		"/x\r\nSet-Cookie: a=b":  "/",
		" /x":                    "/",
		"/%2F%2Fevil.example":    "/%2F%2Fevil.example", // a path of ours
		"/login?next=//evil.com": "/login?next=//evil.com",
	} {
		if got := safeNext(next); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", next, got, want)
		}
	}
	// And through the server.
	srv := protected(t)
	resp, _ := login(t, noRedirects(t), srv, readToken, "//evil.example/x")
	if loc := resp.Header.Get("Location"); loc != "/" {
		t.Errorf("login with next //evil.example/x redirects to %q, want /", loc)
	}
}

// TestBrowserRedirectedToLogin: a page load without credentials is sent
// to the login form with its path as next; an API client, an
// EventSource, and a write keep getting 401 with a challenge.
func TestBrowserRedirectedToLogin(t *testing.T) {
	srv := protected(t)
	cl := noRedirects(t)
	for _, c := range []struct {
		method, path, accept string
		want                 int
	}{
		{"GET", "/api/v1/thing?x=1", browserAccept, http.StatusSeeOther},
		{"GET", "/api/v1/thing", "text/html", http.StatusSeeOther},
		{"GET", "/api/v1/thing", "application/json", 401},
		{"GET", "/api/v1/thing", "application/json, text/html;q=0.5", 401},
		{"GET", "/api/v1/thing", "", 401},
		{"GET", "/api/v1/thing", "*/*", 401},
		{"GET", "/api/v1/thing", "text/event-stream", 401},
		{"GET", "/api/v1/thing", "text/html;q=0", 401},
		{"POST", "/api/v1/query", browserAccept, 401},
		{"POST", "/api/v1/events", browserAccept, 401},
		{"GET", "/debug/pprof/", browserAccept, 401},
	} {
		req, _ := http.NewRequestWithContext(t.Context(), c.method, srv.URL()+c.path, nil)
		if c.accept != "" {
			req.Header.Set("Accept", c.accept)
		}
		resp, _ := send(t, cl, req)
		if resp.StatusCode != c.want {
			t.Errorf("%s %s Accept %q: %d, want %d", c.method, c.path, c.accept, resp.StatusCode, c.want)
			continue
		}
		switch c.want {
		case http.StatusSeeOther:
			want := "/login?" + url.Values{"next": {c.path}}.Encode()
			if loc := resp.Header.Get("Location"); loc != want {
				t.Errorf("%s %s: redirected to %q, want %q", c.method, c.path, loc, want)
			}
		case 401:
			if !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer ") {
				t.Errorf("%s %s Accept %q: 401 without a Bearer challenge", c.method, c.path, c.accept)
			}
		}
	}
}

// TestNoLoginWithOpenReads: with reads open there is nothing to log in
// to, and no login route.
func TestNoLoginWithOpenReads(t *testing.T) {
	srv := start(t, Options{Auth: Auth{EventsToken: eventsToken}}, authRoutes)
	for r := range srv.RouteClasses() {
		if strings.Contains(r, "/login") || strings.Contains(r, "/logout") {
			t.Errorf("route %s with reads open", r)
		}
	}
}

// TestSetAuth: new tokens apply to the next request, end the logins of
// the old ones, and a change of ProtectReads or a missing read token is
// refused, keeping the tokens in use.
func TestSetAuth(t *testing.T) {
	srv := protected(t)
	cl := noRedirects(t)
	c := loginCookie(t, cl, srv, readToken)
	if err := srv.SetAuth(Auth{EventsToken: "events-2", AdminToken: "admin-2", ReadToken: "read-2"}); err == nil {
		t.Error("SetAuth opening reads: want an error")
	}
	if err := srv.SetAuth(Auth{EventsToken: "events-2", ProtectReads: true}); err == nil {
		t.Error("SetAuth without a read token: want an error")
	}
	checkAuth(t, cl, srv, []authCase{{"GET", "/api/v1/thing", readToken, 200}})
	if err := srv.SetAuth(Auth{EventsToken: "events-2", AdminToken: "admin-2", ReadToken: "read-2", ProtectReads: true}); err != nil {
		t.Fatal(err)
	}
	checkAuth(t, cl, srv, []authCase{
		{"GET", "/api/v1/thing", readToken, 403},
		{"GET", "/api/v1/thing", "read-2", 200},
		{"POST", "/api/v1/events", eventsToken, 403},
		{"POST", "/api/v1/events", "events-2", 200},
		{"POST", "/admin/act", "admin-2", 200},
	})
	if got := withCookie(t, cl, srv, "GET", "/api/v1/thing", c); got != 401 {
		t.Errorf("cookie of the old read token: %d, want 401", got)
	}
	if got := withCookie(t, cl, srv, "GET", "/api/v1/thing", loginCookie(t, cl, srv, "read-2")); got != 200 {
		t.Errorf("cookie of the new read token: %d, want 200", got)
	}
}
