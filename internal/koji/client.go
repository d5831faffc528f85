package koji

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// Koji build states (koji.BUILD_STATES).
const (
	StateBuilding = 0
	StateComplete = 1
	StateDeleted  = 2
	StateFailed   = 3
	StateCanceled = 4
)

// MaxResponseBytes bounds a hub answer. The largest RPM lists (texlive:
// several thousand RPMs, about 600 bytes of XML each) stay well below.
const MaxResponseBytes = 64 << 20

// ErrNoBuild: the hub knows no such build (getBuild answered None).
var ErrNoBuild = errors.New("koji: no such build")

// HTTPError is an answer of the hub other than 200.
type HTTPError struct {
	Status int
	Body   string // its start
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("koji: hub answered HTTP %d: %s", e.Status, e.Body)
}

// Transient reports whether a call that failed with err may succeed when
// made again: the hub could not be reached or did not answer in time, it
// answered 5xx or 429, or it is offline for maintenance (ServerOffline).
// Koji's own client (koji.ClientSession._callMethod) retries the same
// way: every error but a fault, and the ServerOffline fault. A fault (no
// such build, a wrong argument) or a malformed answer is not transient.
func Transient(err error) bool {
	var f *Fault
	if errors.As(err, &f) {
		return f.Code == FaultServerOffline
	}
	var h *HTTPError
	if errors.As(err, &h) {
		return h.Status >= 500 || h.Status == http.StatusTooManyRequests
	}
	return err != nil && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrNoBuild) &&
		!errors.Is(err, context.Canceled)
}

// Client calls a Koji hub's XML-RPC API anonymously (read-only calls need
// no login). It is safe for concurrent use.
type Client struct {
	hubURL  string
	timeout time.Duration
	http    *http.Client
}

// NewClient returns a client of the hub at hubURL (e.g.
// "https://koji.example.org/kojihub"), giving each call timeout. A nil
// hc means a client of its own.
func NewClient(hubURL string, timeout time.Duration, hc *http.Client) (*Client, error) {
	u, err := url.Parse(hubURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("koji: hub URL %q: want http(s)://host/path", hubURL)
	}
	if timeout <= 0 {
		return nil, fmt.Errorf("koji: timeout %s: must be positive", timeout)
	}
	if hc == nil {
		hc = &http.Client{}
	}
	return &Client{hubURL: hubURL, timeout: timeout, http: hc}, nil
}

// HubURL returns the hub's URL.
func (c *Client) HubURL() string { return c.hubURL }

// Call calls method with params (int, int64, string, bool) and returns
// the decoded result (see decodeResponse), a *Fault, an *HTTPError, or
// the transport's error. The call is bounded by the client's timeout and
// by ctx.
func (c *Client) Call(ctx context.Context, method string, params ...any) (any, error) {
	body, err := encodeCall(method, params...)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.hubURL, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("koji: %w", err)
	}
	req.Header.Set("Content-Type", "text/xml")
	req.Header.Set("User-Agent", "factory2")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("koji: %s: %w", method, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		start, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, &HTTPError{Status: resp.StatusCode, Body: string(bytes.TrimSpace(start))}
	}
	lr := &io.LimitedReader{R: resp.Body, N: MaxResponseBytes + 1}
	v, err := decodeResponse(lr)
	if lr.N == 0 {
		return nil, fmt.Errorf("%w: %s: answer over %d bytes", ErrMalformed, method, MaxResponseBytes)
	}
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, ErrMalformed) {
			// The body was cut by the timeout, not malformed.
			return nil, fmt.Errorf("koji: %s: %w", method, ctx.Err())
		}
		return nil, fmt.Errorf("koji: %s: %w", method, err)
	}
	return v, nil
}

// Build is what getBuild says of a build (kojihub.get_build), the fields
// factory2 reads.
type Build struct {
	ID                     int64
	Name, Version, Release string
	// Epoch is empty when the build has none.
	Epoch string
	NVR   string
	// State is one of the State constants.
	State     int
	TaskID    int64
	OwnerName string
}

// GetBuild calls getBuild(buildInfo): buildInfo is a build id (int64) or
// an NVR (string). A build the hub does not know gives ErrNoBuild.
func (c *Client) GetBuild(ctx context.Context, buildInfo any) (*Build, error) {
	v, err := c.Call(ctx, "getBuild", buildInfo)
	if err != nil {
		return nil, err
	}
	if v == nil {
		return nil, fmt.Errorf("%w: %v", ErrNoBuild, buildInfo)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%w: getBuild answered a %T, want a struct", ErrMalformed, v)
	}
	f := fields{m: m, what: "getBuild"}
	b := &Build{
		ID: f.int("id"), Name: f.str("name"), Version: f.str("version"), Release: f.str("release"),
		Epoch: f.epoch(), NVR: f.str("nvr"), State: int(f.int("state")), TaskID: f.opt("task_id"),
		OwnerName: f.optStr("owner_name"),
	}
	if f.err != nil {
		return nil, f.err
	}
	if b.NVR == "" {
		b.NVR = b.Name + "-" + b.Version + "-" + b.Release
	}
	return b, nil
}

// RPM is what listRPMs says of one RPM (kojihub.list_rpms), the fields
// factory2 reads.
type RPM struct {
	ID                     int64
	Name, Version, Release string
	Arch                   string
	BuildID                int64
	// BuildrootID is the buildroot the RPM was built in (0: none, an
	// imported RPM).
	BuildrootID int64
}

// FileName is the RPM's file name, name-version-release.arch.rpm: what
// Koji's RPM sign messages name (and koji.pathinfo.rpm's base name).
func (r RPM) FileName() string {
	return r.Name + "-" + r.Version + "-" + r.Release + "." + r.Arch + ".rpm"
}

// ListRPMs calls listRPMs(buildID): every RPM the build produced, its
// source RPM included. A build with no RPMs (an image, a module) gives
// none.
func (c *Client) ListRPMs(ctx context.Context, buildID int64) ([]RPM, error) {
	v, err := c.Call(ctx, "listRPMs", buildID)
	if err != nil {
		return nil, err
	}
	return parseRPMs(v)
}

// ListBuildrootRPMs calls listRPMs(componentBuildrootID=id), positionally
// (listRPMs(None, None, None, id), kojihub.list_rpms): the RPMs installed
// in buildroot id, what the build made in it was built against.
func (c *Client) ListBuildrootRPMs(ctx context.Context, buildrootID int64) ([]RPM, error) {
	v, err := c.Call(ctx, "listRPMs", nil, nil, nil, buildrootID)
	if err != nil {
		return nil, err
	}
	return parseRPMs(v)
}

func parseRPMs(v any) ([]RPM, error) {
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("%w: listRPMs answered a %T, want an array", ErrMalformed, v)
	}
	rpms := make([]RPM, 0, len(list))
	for i, e := range list {
		m, ok := e.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%w: listRPMs entry %d is a %T, want a struct", ErrMalformed, i, e)
		}
		f := fields{m: m, what: fmt.Sprintf("listRPMs entry %d", i)}
		r := RPM{ID: f.int("id"), Name: f.str("name"), Version: f.str("version"), Release: f.str("release"),
			Arch: f.str("arch"), BuildID: f.opt("build_id"), BuildrootID: f.opt("buildroot_id")}
		if f.err != nil {
			return nil, f.err
		}
		rpms = append(rpms, r)
	}
	return rpms, nil
}

// fields reads a struct's members, keeping the first problem.
type fields struct {
	m    map[string]any
	what string
	err  error
}

func (f *fields) fail(key, want string) {
	if f.err == nil {
		f.err = fmt.Errorf("%w: %s: %s is %T, want %s", ErrMalformed, f.what, key, f.m[key], want)
	}
}

func (f *fields) str(key string) string {
	s, ok := f.m[key].(string)
	if !ok || s == "" {
		f.fail(key, "a non-empty string")
	}
	return s
}

func (f *fields) optStr(key string) string {
	s, _ := f.m[key].(string)
	return s
}

func (f *fields) int(key string) int64 {
	n, ok := f.m[key].(int64)
	if !ok {
		f.fail(key, "an int")
	}
	return n
}

// opt reads an int that may be nil.
func (f *fields) opt(key string) int64 {
	n, _ := f.m[key].(int64)
	return n
}

// epoch reads "epoch": nil or an int.
func (f *fields) epoch() string {
	switch v := f.m["epoch"].(type) {
	case int64:
		return fmt.Sprint(v)
	case nil:
		return ""
	}
	f.fail("epoch", "an int or nil")
	return ""
}
