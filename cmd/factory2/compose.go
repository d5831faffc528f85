package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/factory2/factory2/internal/config"
	"github.com/factory2/factory2/processors/compose"
)

func (a *app) composeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "compose",
		Short: "Ask a running factory2 about composes: readiness, blockers, the last compose-ready",
		Long: `Ask a running factory2 (dev or serve) about composes. Every instance holds
every compose's latest decisions, so any instance answers.`,
	}
	cmd.AddCommand(a.composeStatusCmd(), a.composeListCmd())
	return cmd
}

// apiFlags are the flags of a command that asks the HTTP API.
type apiFlags struct {
	url     string
	asJSON  bool
	timeout time.Duration
}

func (f *apiFlags) add(cmd *cobra.Command, jsonDoc string) {
	fl := cmd.Flags()
	fl.StringVar(&f.url, "url", "", "base `URL` of a running factory2 (default: http:// and the http.addr of --config, else http://127.0.0.1:8080)")
	fl.BoolVar(&f.asJSON, "json", false, jsonDoc)
	fl.DurationVar(&f.timeout, "timeout", 10*time.Second, "give up after this long")
}

func (a *app) composeStatusCmd() *cobra.Command {
	var f apiFlags
	cmd := &cobra.Command{
		Use:   "status COMPOSE_ID",
		Short: "Show a compose's readiness, what blocks it, its last compose-ready and its gate",
		Long: `Show a compose's readiness (READY or NOT READY), its members, its blockers
counted by type and the ones its latest readiness decision lists (type, NVR,
reason), its last compose-ready (when, how many builds, whether it is still
the current content) and its latest compose gate decision.

--json prints the API's answer (GET /api/v1/composes/{id}), with the last
compose-ready's manifest.`,
		Example: `  factory2 compose status fedora-42-updates
  factory2 compose status fedora-42-updates --json | jq '.last_ready.manifest[].nvr'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), f.timeout)
			defer cancel()
			base, err := a.apiBase(f.url)
			if err != nil {
				return err
			}
			return a.composeStatus(ctx, base, args[0], f.asJSON)
		},
	}
	f.add(cmd, "print the API's JSON answer, manifest included")
	return cmd
}

func (a *app) composeListCmd() *cobra.Command {
	var f apiFlags
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List every compose with its readiness, blocker counts, gate and last decision",
		Long: `List every compose of which a decision has been made: its readiness, members,
blockers counted by type, its compose gate and its last decision.

--json prints the API's answer (GET /api/v1/composes).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), f.timeout)
			defer cancel()
			base, err := a.apiBase(f.url)
			if err != nil {
				return err
			}
			body, err := a.apiGet(ctx, base+"/api/v1/composes")
			if err != nil {
				return err
			}
			if f.asJSON {
				_, err := a.stdout.Write(body)
				return err
			}
			var l struct {
				Composes []compose.Overview `json:"composes"`
			}
			if err := json.Unmarshal(body, &l); err != nil {
				return fmt.Errorf("reading the compose list: %w", err)
			}
			return compose.WriteOverviewText(a.stdout, l.Composes)
		},
	}
	f.add(cmd, "print the API's JSON answer")
	return cmd
}

// composeStatus prints the status of compose id, as text or as the API's
// JSON.
func (a *app) composeStatus(ctx context.Context, base, id string, asJSON bool) error {
	u := base + "/api/v1/composes/" + url.PathEscape(id)
	if !asJSON {
		u += "?manifest=false" // the text shows only its size
	}
	body, err := a.apiGet(ctx, u)
	if err != nil {
		return err
	}
	if asJSON {
		_, err := a.stdout.Write(body)
		return err
	}
	var s compose.Status
	if err := json.Unmarshal(body, &s); err != nil {
		return fmt.Errorf("reading the status of compose %s: %w", id, err)
	}
	return s.WriteText(a.stdout)
}

// apiBase returns the base URL of the factory2 to ask, and sets a.api
// to ask it: flagURL when given, else the HTTP address of the
// configuration (--config or the default), over https when the
// configuration gives the server a certificate. The configuration's read
// token (or, when it has none, its events or admin token) is sent when
// it has one; FACTORY2_HTTP_TOKEN overrides it, for asking a server
// whose configuration is elsewhere.
func (a *app) apiBase(flagURL string) (string, error) {
	cfg := config.Default()
	if a.configPath != "" {
		var err error
		if cfg, err = config.Load(a.configPath); err != nil {
			return "", err
		}
	}
	c, err := newAPIClient(cfg.HTTP)
	if err != nil {
		return "", err
	}
	a.api = c
	if flagURL != "" {
		return strings.TrimRight(flagURL, "/"), nil
	}
	scheme := "http://"
	if cfg.HTTP.TLSCertFile != "" {
		scheme = "https://"
	}
	return scheme + dialAddr(cfg.HTTP.Addr), nil
}

// apiClient asks the HTTP API with the configuration's credentials.
type apiClient struct {
	client *http.Client // nil: http.DefaultClient
	token  string
}

// envHTTPToken overrides the bearer token query commands send.
const envHTTPToken = "FACTORY2_HTTP_TOKEN"

// newAPIClient returns the client of h: it trusts h's own certificate
// (the server's, when the command runs beside it) and what the system's
// roots verify, and sends the first of h's read, events and admin tokens.
func newAPIClient(h config.HTTP) (apiClient, error) {
	var c apiClient
	auth, err := h.Auth()
	if err != nil {
		return c, err
	}
	for _, t := range []string{os.Getenv(envHTTPToken), auth.ReadToken, auth.EventsToken, auth.AdminToken} {
		if t != "" {
			c.token = t
			break
		}
	}
	if h.TLSCertFile == "" {
		return c, nil
	}
	pair, err := tls.LoadX509KeyPair(h.TLSCertFile, h.TLSKeyFile)
	if err != nil {
		return c, fmt.Errorf("http.tls_cert_file, http.tls_key_file: %w", err)
	}
	own := pair.Certificate[0]
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{
		MinVersion: tls.VersionTLS12,
		// The server's own certificate is trusted as it is (it is asked
		// on the loopback address, which its names may not include); any
		// other is verified as usual, host name included. Go's default
		// verification is off only so that VerifyConnection can do this.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("the server sent no certificate")
			}
			if bytes.Equal(cs.PeerCertificates[0].Raw, own) {
				return nil
			}
			opts := x509.VerifyOptions{DNSName: cs.ServerName, Intermediates: x509.NewCertPool()}
			for _, ic := range cs.PeerCertificates[1:] {
				opts.Intermediates.AddCert(ic)
			}
			_, err := cs.PeerCertificates[0].Verify(opts)
			return err
		},
	}
	c.client = &http.Client{Transport: tr}
	return c, nil
}

// dialAddr turns a listen address into one to connect to: a server
// listening on every interface is asked on the loopback one.
func dialAddr(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return net.JoinHostPort(host, port)
}

// apiError is an answer of the HTTP API other than 200.
type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string { return e.msg }

// apiGet GETs u with a.api's credentials and returns the body of a 200
// answer; any other answer is an *apiError with the API's message.
func (a *app) apiGet(ctx context.Context, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	if a.api.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.api.token)
	}
	client := a.api.client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("asking %s (is `factory2 dev` or `serve` running? see --url): %w", u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		var e struct{ Message string }
		if json.Unmarshal(body, &e) == nil && e.Message != "" {
			return nil, &apiError{resp.StatusCode, e.Message}
		}
		return nil, &apiError{resp.StatusCode, fmt.Sprintf("%s: %s", resp.Status, strings.TrimSpace(string(body)))}
	}
	return body, nil
}
