package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

func (a *app) whyCmd() *cobra.Command {
	var (
		base, pv, typ string
		contexts      []string
		asJSON        bool
		timeout       time.Duration
	)
	cmd := &cobra.Command{
		Use:   "why SUBJECT",
		Short: "Explain a subject's decisions: what is satisfied, missing, pending or failing, since when",
		Long: `Ask a running factory2 (dev or serve) why a subject is or is not ready: for
every decision the subject gets (or the one chosen with --context and
--product-version), what is satisfied, what is missing, pending or failing,
the results and waivers behind each, and since when.`,
		Example: `  factory2 why xz-5.6.3-2.fc42
  factory2 why bash-5.2.37-1.fc42 --context bodhi_update_push_stable --product-version fedora-42
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
			u := strings.TrimRight(base, "/") + "/api/v1/why/" + url.PathEscape(args[0]) + "?" + q.Encode()
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			return a.why(ctx, u, asJSON)
		},
	}
	f := cmd.Flags()
	f.StringVar(&base, "url", "http://127.0.0.1:8080", "base `URL` of a running factory2")
	f.StringSliceVar(&contexts, "context", nil, "decision context (repeatable)")
	f.StringVar(&pv, "product-version", "", "product version, e.g. fedora-42")
	f.StringVar(&typ, "subject-type", "", "subject type (default: the subject's own)")
	f.BoolVar(&asJSON, "json", false, "print the decisions as one JSON document on stdout")
	f.DurationVar(&timeout, "timeout", 10*time.Second, "give up after this long")
	return cmd
}

func (a *app) why(ctx context.Context, u string, asJSON bool) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("asking %s (is `factory2 dev` or `serve` running? see --url): %w", u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		var e struct{ Message string }
		if json.Unmarshal(body, &e) == nil && e.Message != "" {
			return fmt.Errorf("%s", e.Message)
		}
		return fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	_, err = a.stdout.Write(body)
	return err
}
