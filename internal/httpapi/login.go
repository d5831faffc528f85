package httpapi

import (
	"html/template"
	"net/http"
	"net/url"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// CookieName is the login cookie: HttpOnly, SameSite=Strict, Secure
// when the server speaks TLS. Its value is derived from the token (see
// cookieValue) and opens Read routes only.
const CookieName = "factory2_token"

// maxLoginBytes caps the body of POST /login: a token and a path.
const maxLoginBytes = 8 << 10

// Results of a login, the values of factory2_http_logins_total's label.
const (
	loginOK         = "ok"
	loginWrongToken = "wrong_token"
	loginBadRequest = "bad_request"
)

// registerLogin serves the login of browsers, for servers whose reads
// are protected: a browser cannot send a bearer token when it loads a
// page or opens an EventSource, so it logs in once with the read token
// and sends the cookie it gets. GET /login shows the form, POST /login
// checks the token and sets the cookie, POST /logout clears it. All three
// are open: they are how a client without credentials gets some.
func (s *Server) registerLogin() {
	s.handle("GET /login", open, s.capped(http.HandlerFunc(s.loginForm)))
	s.handle("POST /login", open, s.capped(http.HandlerFunc(s.login)))
	s.handle("POST /logout", open, s.capped(http.HandlerFunc(s.logout)))
}

// loginForm shows the form, to come back to the query's next path.
func (s *Server) loginForm(w http.ResponseWriter, r *http.Request) {
	renderLogin(w, http.StatusOK, safeNext(r.URL.Query().Get("next")), "")
}

// login checks the form's token against the read-class tokens, in
// constant time. Right: the cookie is set and the browser sent on to
// next (303). Wrong: the form again, with 403.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxLoginBytes)
	if err := r.ParseForm(); err != nil {
		s.countLogin(loginBadRequest)
		renderLogin(w, http.StatusBadRequest, "/", "The form could not be read; try again.")
		return
	}
	next := safeNext(r.PostForm.Get("next"))
	token := strings.TrimSpace(r.PostForm.Get("token"))
	k := s.auth.Load()
	if token == "" || !matches([]byte(token), k.accepted[Read]) {
		s.countLogin(loginWrongToken)
		renderLogin(w, http.StatusForbidden, next, "Wrong token.")
		return
	}
	s.countLogin(loginOK)
	http.SetCookie(w, &http.Cookie{
		Name:     CookieName,
		Value:    cookieValue([]byte(token)),
		Path:     "/",
		HttpOnly: true,
		Secure:   s.opts.TLS != nil,
		SameSite: http.SameSiteStrictMode,
	})
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// logout clears the cookie and shows the form.
func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{
		Name:     CookieName,
		Path:     "/",
		MaxAge:   -1,
		HttpOnly: true,
		Secure:   s.opts.TLS != nil,
		SameSite: http.SameSiteStrictMode,
	})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

func (s *Server) countLogin(result string) {
	if s.logins != nil {
		s.logins.WithLabelValues(result).Inc()
	}
}

// newLoginsMetric is factory2_http_logins_total, its labels made.
func newLoginsMetric() *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "factory2_http_logins_total",
		Help: "Logins at POST /login, by result: ok, wrong_token, bad_request (a form that could not be read).",
	}, []string{"result"})
	for _, r := range []string{loginOK, loginWrongToken, loginBadRequest} {
		c.WithLabelValues(r)
	}
	return c
}

// safeNext returns next if it is a path of this server, else "/": only a
// path starting with one "/" (not "//host", nor "/\host", which browsers
// read as another host), without a scheme, host or control character, so
// that the login cannot send a browser to another site.
func safeNext(next string) string {
	if next == "" || next[0] != '/' || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\") {
		return "/"
	}
	for _, c := range next {
		if c < 0x20 || c == 0x7f {
			return "/"
		}
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return "/"
	}
	return next
}

// renderLogin writes the login form with status, to come back to next,
// saying problem when there is one. The page stands alone: its style is
// inline, since /static is behind the login too.
func renderLogin(w http.ResponseWriter, status int, next, problem string) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'")
	h.Set("X-Frame-Options", "DENY")
	w.WriteHeader(status)
	_ = loginPage.Execute(w, struct{ Next, Problem string }{next, problem}) // the client went away; nothing to do
}

var loginPage = template.Must(template.New("login").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Log in · factory2</title>
<style>
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1d232a; background: #f4f6f8; }
header { padding: .6em 1.2em; background: #243447; color: #fff; font-weight: 700; font-size: 1.1em; }
main { max-width: 26em; margin: 3em auto; background: #fff; padding: 1.2em 1.8em 1.5em; border: 1px solid #dde3e8; border-radius: 4px; }
h1 { font-size: 1.4em; margin: .2em 0 .6em; }
label { display: block; margin-bottom: .3em; color: #5f6b77; }
input[type=password] { width: 100%; padding: .4em .5em; font: inherit; border: 1px solid #dde3e8; border-radius: 3px; }
button { margin-top: 1em; padding: .35em 1.2em; font: inherit; }
.error { color: #c62828; font-weight: 600; }
</style>
</head>
<body>
<header>factory2</header>
<main>
<h1>Log in</h1>
{{if .Problem}}<p class="error" id="error">{{.Problem}}</p>{{end}}
<form method="post" action="/login" id="login">
<label for="token">Read token (http.read_token)</label>
<input type="password" name="token" id="token" autocomplete="current-password" required autofocus>
<input type="hidden" name="next" value="{{.Next}}">
<button type="submit">Log in</button>
</form>
</main>
</body>
</html>
`))
