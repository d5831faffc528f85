package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/spf13/cobra"

	"github.com/factory2/factory2/processors/compose"
)

func (a *app) whyCmd() *cobra.Command {
	var (
		urlFlag, pv, typ string
		contexts         []string
		asJSON           bool
		timeout          time.Duration
	)
	cmd := &cobra.Command{
		Use:   "why SUBJECT",
		Short: "Explain why a subject is (not yet) ready: gating, autosign, signed status, compose readiness",
		Long: `Ask a running factory2 (dev or serve) every "why not yet?" about a subject,
from the state its processors hold:

  compose     when SUBJECT is a compose that has made decisions, what
              ` + "`factory2 compose status`" + ` shows: its readiness, what blocks it,
              its last compose-ready and its gate
  gating      for every decision the subject gets (each decision context
              and product version), what is satisfied, what is missing,
              pending or failing, the results and waivers behind each, and
              since when (a compose's own test results included)
  autosign    for a build, per signing rule: what it still waits for (the
              build COMPLETE, tagged into the rule's from tag, its required
              decision context satisfied, artifacts left unsigned), or the
              sign decision emitted (its id) and whether it is outstanding,
              fulfilled or revoked
  signed      for a build, per key: signed, or which artifacts lack the key;
              or that the build's artifact list is unknown (no build event
              listed the artifacts: see ingest.koji_hub_url)

--context and --product-version (or --subject-type) ask for one gating
decision only. --json prints one JSON document: {"subject", "compose"
(composes), "decisions" (gating, as GET /api/v1/why/SUBJECT), "signing"
(builds, as GET /api/v1/why/SUBJECT/signing)}.`,
		Example: `  factory2 why xz-5.6.3-2.fc42
  factory2 why bash-5.2.37-1.fc42 --context bodhi_update_push_stable --product-version fedora-42
  factory2 why fedora-42-updates
  factory2 why Fedora-42-updates-testing-20261125.0 --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			q := url.Values{}
			for _, c := range contexts {
				q.Add("context", c)
			}
			if pv != "" {
				q.Set("product_version", pv)
			}
			if typ != "" {
				q.Set("subject_type", typ)
			}
			if !asJSON {
				q.Set("format", "text")
			}
			base, err := a.apiBase(urlFlag)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			u := base + "/api/v1/why/" + url.PathEscape(args[0]) + "?" + q.Encode()
			if len(contexts) > 0 || pv != "" || typ != "" {
				return a.why(ctx, u)
			}
			return a.whyAll(ctx, base, args[0], asJSON)
		},
	}
	f := cmd.Flags()
	f.StringVar(&urlFlag, "url", "", "base `URL` of a running factory2 (default: http:// and the http.addr of --config, else http://127.0.0.1:8080)")
	f.StringSliceVar(&contexts, "context", nil, "decision context (repeatable)")
	f.StringVar(&pv, "product-version", "", "product version, e.g. fedora-42")
	f.StringVar(&typ, "subject-type", "", "subject type (default: the subject's own)")
	f.BoolVar(&asJSON, "json", false, "print everything as one JSON document on stdout")
	f.DurationVar(&timeout, "timeout", 10*time.Second, "give up after this long")
	return cmd
}

// whyAnswer is everything the API says about one subject: each part is
// nil when that part of the API does not know the subject. Text parts
// are the text forms (format=text), JSON parts the JSON answers.
type whyAnswer struct {
	compose, gating, signing []byte
}

// whyAll explains id with every view that knows it, in this order: the
// compose table's view, gating's decisions, and autosign and signed
// status (for a subject gating knows).
func (a *app) whyAll(ctx context.Context, base, id string, asJSON bool) error {
	ans, err := a.askWhy(ctx, base, id, asJSON)
	if err != nil {
		return err
	}
	if asJSON {
		return a.writeWhyJSON(id, ans)
	}
	first := true
	for _, part := range [][]byte{ans.compose, ans.gating, ans.signing} {
		if len(part) == 0 {
			continue
		}
		if !first {
			fmt.Fprintln(a.stdout)
		}
		first = false
		if _, err := a.stdout.Write(part); err != nil {
			return err
		}
	}
	return nil
}

// askWhy asks the compose table, gating, and signing about id. A part
// that answers 404 is left out; the subject must be known to the compose
// table or to gating. A part that cannot answer now (503: its partition
// is restoring, the compose table is loading) is left out with a note
// on stderr when another part answered.
func (a *app) askWhy(ctx context.Context, base, id string, asJSON bool) (*whyAnswer, error) {
	esc := url.PathEscape(id)
	format := "?format=text"
	if asJSON {
		format = ""
	}
	var ans whyAnswer
	composeErr := a.askCompose(ctx, base, id, asJSON, &ans)
	if composeErr != nil && !isAPIError(composeErr) {
		return nil, composeErr // the server does not answer
	}
	gating, err := a.apiGet(ctx, base+"/api/v1/why/"+esc+format)
	switch {
	case isNotFound(err) && ans.compose != nil:
		return &ans, nil // a compose gating knows nothing about
	case err != nil && ans.compose != nil:
		a.say("why: gating cannot answer about %s now: %v", id, err)
		return &ans, nil
	case err != nil && composeErr != nil:
		// The compose table cannot answer now (it is loading): id may
		// well be a compose.
		return nil, fmt.Errorf("%w; as a compose: %w", err, composeErr)
	case err != nil:
		return nil, err
	}
	ans.gating = gating
	signing, err := a.apiGet(ctx, base+"/api/v1/why/"+esc+"/signing"+format)
	if err != nil {
		// An older server without the route: gating stands alone.
		a.say("why: no autosign and signed status for %s: %v", id, err)
		return &ans, nil
	}
	ans.signing = signing
	return &ans, nil
}

// askCompose fills ans.compose with the compose table's view of id (text
// or JSON), or leaves it nil when the table does not know id (404).
func (a *app) askCompose(ctx context.Context, base, id string, asJSON bool, ans *whyAnswer) error {
	u := base + "/api/v1/composes/" + url.PathEscape(id)
	if !asJSON {
		u += "?manifest=false" // the text shows only its size
	}
	body, err := a.apiGet(ctx, u)
	switch {
	case isNotFound(err):
		return nil
	case err != nil:
		return err
	case asJSON:
		ans.compose = body
		return nil
	}
	var s compose.Status
	if err := json.Unmarshal(body, &s); err != nil {
		return fmt.Errorf("reading the status of compose %s: %w", id, err)
	}
	var b bytes.Buffer
	if err := s.WriteText(&b); err != nil {
		return err
	}
	ans.compose = b.Bytes()
	return nil
}

// writeWhyJSON prints ans as one JSON document.
func (a *app) writeWhyJSON(id string, ans *whyAnswer) error {
	doc := struct {
		Subject   string          `json:"subject"`
		Compose   jsonRaw         `json:"compose,omitempty"`
		Decisions json.RawMessage `json:"decisions"`
		Signing   jsonRaw         `json:"signing,omitempty"`
	}{Subject: id, Compose: jsonRaw(ans.compose), Decisions: json.RawMessage("[]"), Signing: jsonRaw(ans.signing)}
	if ans.gating != nil {
		var g struct {
			Decisions json.RawMessage `json:"decisions"`
		}
		if err := json.Unmarshal(ans.gating, &g); err != nil {
			return fmt.Errorf("reading the gating answer about %s: %w", id, err)
		}
		if len(g.Decisions) > 0 {
			doc.Decisions = g.Decisions
		}
	}
	return a.jsonOut().write(doc)
}

func isAPIError(err error) bool {
	var ae *apiError
	return errors.As(err, &ae)
}

func isNotFound(err error) bool {
	var ae *apiError
	return errors.As(err, &ae) && ae.status == http.StatusNotFound
}

// why prints the gating API's answer at u.
func (a *app) why(ctx context.Context, u string) error {
	body, err := a.apiGet(ctx, u)
	if err != nil {
		return err
	}
	_, err = a.stdout.Write(body)
	return err
}
