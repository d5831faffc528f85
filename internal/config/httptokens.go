package config

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/factory2/factory2/internal/httpapi"
	"github.com/factory2/factory2/internal/secret"
)

// The tokens of the http section can come from the file itself
// (http.token), from a file (http.token_file: a Kubernetes Secret
// mounted as a volume) or from an environment variable (http.token_env),
// at most one source per token. Files and variables are read when the
// server starts and again on SIGHUP; a relative file is relative to the
// configuration file's directory, as the kafka section's are.

// tokenSource is where one of the three tokens comes from.
type tokenSource struct {
	key             string // "http.token"
	inline          string
	file, env       string
	fileKey, envKey string
}

// tokenSources returns the sources of the events, admin and read tokens,
// in that order.
func (h HTTP) tokenSources() [3]tokenSource {
	return [3]tokenSource{
		{"http.token", h.Token, h.TokenFile, h.TokenEnv, "http.token_file", "http.token_env"},
		{"http.admin_token", h.AdminToken, h.AdminTokenFile, h.AdminTokenEnv, "http.admin_token_file", "http.admin_token_env"},
		{"http.read_token", h.ReadToken, h.ReadTokenFile, h.ReadTokenEnv, "http.read_token_file", "http.read_token_env"},
	}
}

// set reports whether s names a token, wherever it comes from.
func (s tokenSource) set() bool { return s.inline != "" || s.file != "" || s.env != "" }

// validate reports a token given by more than one source.
func (s tokenSource) validate() error {
	n := 0
	for _, v := range []string{s.inline, s.file, s.env} {
		if v != "" {
			n++
		}
	}
	if n > 1 {
		return fmt.Errorf("%s: set at most one of %s, %s and %s", s.key, s.key, s.fileKey, s.envKey)
	}
	return nil
}

// read returns the token: inline, or read from its file (a final line
// break dropped) or variable. Errors name the key and the file or
// variable, never the token.
func (s tokenSource) read() (string, error) {
	if s.file == "" && s.env == "" {
		return s.inline, nil
	}
	return secret.Read(s.fileKey, s.file, s.envKey, s.env)
}

// ResolvePaths returns h with its relative token files made relative to
// dir (the configuration file's directory).
func (h HTTP) ResolvePaths(dir string) HTTP {
	for _, p := range []*string{&h.TokenFile, &h.AdminTokenFile, &h.ReadTokenFile} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	return h
}

// HasTokenFiles reports whether a token comes from a file or a variable,
// which SIGHUP re-reads.
func (h HTTP) HasTokenFiles() bool {
	for _, s := range h.tokenSources() {
		if s.file != "" || s.env != "" {
			return true
		}
	}
	return false
}

// Auth reads the tokens from wherever they come from and returns the
// server's route-class tokens. Every problem is reported at once: a file
// or variable that cannot be read, and tokens that could not be sent or
// would let a reader or writer administer. No error says a token.
func (h HTTP) Auth() (httpapi.Auth, error) {
	var tok [3]string
	var errs []error
	for i, s := range h.tokenSources() {
		t, err := s.read()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		tok[i] = t
		if strings.ContainsAny(t, " \t\r\n") {
			where := s.key
			if s.file != "" {
				where = s.fileKey + " " + s.file
			} else if s.env != "" {
				where = s.envKey + " " + s.env
			}
			errs = append(errs, fmt.Errorf("%s: the token must not contain spaces or line breaks (it is sent as Authorization: Bearer <token>)", where))
		}
	}
	a := httpapi.Auth{EventsToken: tok[0], AdminToken: tok[1], ReadToken: tok[2], ProtectReads: h.ProtectReads}
	if err := errors.Join(errs...); err != nil {
		return a, err
	}
	if a.AdminToken != "" && (a.AdminToken == a.EventsToken || a.AdminToken == a.ReadToken) {
		return a, errors.New("http.admin_token: must differ from http.token and http.read_token, or a writer or reader could administer")
	}
	return a, nil
}

// CheckFiles reports every token file that cannot be read or holds an
// unusable token, for `factory2 config check`. Environment variables are
// not read: the checking shell need not have them.
func (h HTTP) CheckFiles() []error {
	var errs []error
	for _, s := range h.tokenSources() {
		if s.file == "" || s.validate() != nil {
			continue
		}
		t, err := s.read()
		if err == nil && strings.ContainsAny(t, " \t\r\n") {
			err = fmt.Errorf("%s %s: the token must not contain spaces or line breaks", s.fileKey, s.file)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// validateTokens reports the problems of the tokens' sources that need no
// file or variable to see.
func (h HTTP) validateTokens() []error {
	var errs []error
	srcs := h.tokenSources()
	for _, s := range srcs {
		if err := s.validate(); err != nil {
			errs = append(errs, err)
		}
		if t := s.inline; t != strings.TrimSpace(t) || strings.ContainsAny(t, " \t\r\n") {
			errs = append(errs, fmt.Errorf("%s: must not contain spaces or line breaks (it is sent as Authorization: Bearer <token>)", s.key))
		}
	}
	if h.ProtectReads && !srcs[2].set() {
		errs = append(errs, errors.New("http.protect_reads: needs http.read_token, http.read_token_file or http.read_token_env (or set protect_reads: false to leave reads open)"))
	}
	if h.AdminToken != "" && (h.AdminToken == h.Token || h.AdminToken == h.ReadToken) {
		errs = append(errs, errors.New("http.admin_token: must differ from http.token and http.read_token, or a writer or reader could administer"))
	}
	return errs
}
