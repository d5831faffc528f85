package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/spf13/cobra"
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
		Short: "Explain a subject's decisions: what is satisfied, missing, pending or failing, since when",
		Long: `Ask a running factory2 (dev or serve) why a subject is or is not ready: for
every decision the subject gets (or the one chosen with --context and
--product-version), what is satisfied, what is missing, pending or failing,
the results and waivers behind each, and since when.

When SUBJECT is a compose that has made decisions (and no --context,
--product-version or --subject-type is given), why shows what
` + "`factory2 compose status`" + ` does: its readiness, what blocks it, its last
compose-ready and its gate.`,
		Example: `  factory2 why xz-5.6.3-2.fc42
  factory2 why bash-5.2.37-1.fc42 --context bodhi_update_push_stable --product-version fedora-42
  factory2 why fedora-42-updates
  factory2 why Fedora-Rawhide-20261125.n.0 --subject-type compose --json`,
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
			return a.whyAny(ctx, base, args[0], u, asJSON)
		},
	}
	f := cmd.Flags()
	f.StringVar(&urlFlag, "url", "", "base `URL` of a running factory2 (default: http:// and the http.addr of --config, else http://127.0.0.1:8080)")
	f.StringSliceVar(&contexts, "context", nil, "decision context (repeatable)")
	f.StringVar(&pv, "product-version", "", "product version, e.g. fedora-42")
	f.StringVar(&typ, "subject-type", "", "subject type (default: the subject's own)")
	f.BoolVar(&asJSON, "json", false, "print the decisions as one JSON document on stdout")
	f.DurationVar(&timeout, "timeout", 10*time.Second, "give up after this long")
	return cmd
}

// whyAny explains id as a compose when the compose table knows it, else
// as a gating subject (asking u).
func (a *app) whyAny(ctx context.Context, base, id, u string, asJSON bool) error {
	done, err := a.whyCompose(ctx, base, id, asJSON)
	var ae *apiError
	switch {
	case done:
		return nil
	case err == nil:
		return a.why(ctx, u) // not a compose
	case !errors.As(err, &ae):
		return err // the server does not answer
	}
	// The compose table cannot answer now (it is loading): id may well
	// be a build.
	if gerr := a.why(ctx, u); gerr != nil {
		return fmt.Errorf("%w; as a compose: %w", gerr, err)
	}
	return nil
}

// why prints the gating API's answer at u.
func (a *app) why(ctx context.Context, u string) error {
	body, err := apiGet(ctx, u)
	if err != nil {
		return err
	}
	_, err = a.stdout.Write(body)
	return err
}
