package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/factory2/factory2/processors/deps"
)

func (a *app) traceCmd() *cobra.Command {
	var (
		f                apiFlags
		up, down         bool
		depth, maxNodes  int
		types, relations []string
		format           string
	)
	cmd := &cobra.Command{
		Use:   "trace NODE",
		Short: "Trace the dependency graph from a node: what ships it (--down) or what it is made of (--up)",
		Long: `Trace the dependency graph a running factory2 (dev or serve) holds, from NODE,
a node key: type:id, e.g. build:openssl-3.0.1-1.fc42, rpm:openssl-libs-3.0.1-1.fc42.x86_64.rpm,
source:https://src.example.org/rpms/openssl#c0ffee, container:toolbox-42-1,
compose:fedora-42-updates, deb:libc6. Every instance holds the whole graph,
so any instance answers.

--down (the default) walks to what depends on NODE: from an upstream commit
to the builds, artifacts, images, composes and products that ship it. --up
walks to what NODE depends on: from a compose to its builds and sources.
--types lists only nodes of those types (the walk still goes through the
others, shown as "via"); --relations walks only those edges (built-from,
produced-by, buildroot, requires, embeds, includes, parent, contains,
made-from).

--format tree (default) prints an indented tree, json the API's answer
(GET /api/v1/trace/NODE), dot Graphviz's DOT language (render with dot -Tsvg).`,
		Example: `  # Which composes and products ship code from this commit?
  factory2 trace 'source:https://src.example.org/rpms/openssl#c0ffee' --types compose,product
  # Which sources and builds went into this compose?
  factory2 trace compose:fedora-42-updates --up --types build,source
  # What depends on libc6, two levels deep, as a picture:
  factory2 trace deb:libc6 --depth 2 --format dot | dot -Tsvg > libc6.svg`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if up && down {
				return fmt.Errorf("trace: --up and --down together: choose one")
			}
			if f.asJSON {
				format = "json"
			}
			switch format {
			case "tree", "json", "dot":
			default:
				return fmt.Errorf("trace: --format %q: want tree, json or dot", format)
			}
			dir := deps.Down
			if up {
				dir = deps.Up
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), f.timeout)
			defer cancel()
			base, err := a.apiBase(f.url)
			if err != nil {
				return err
			}
			q := url.Values{"node": {args[0]}, "direction": {string(dir)}}
			if depth > 0 {
				q.Set("depth", strconv.Itoa(depth))
			}
			if maxNodes > 0 {
				q.Set("max", strconv.Itoa(maxNodes))
			}
			if len(types) > 0 {
				q.Set("types", strings.Join(types, ","))
			}
			if len(relations) > 0 {
				q.Set("relations", strings.Join(relations, ","))
			}
			body, err := a.apiGet(ctx, base+"/api/v1/trace?"+q.Encode())
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if format == "json" {
				_, err := out.Write(body)
				return err
			}
			var t deps.Trace
			if err := json.Unmarshal(body, &t); err != nil {
				return fmt.Errorf("trace: reading the answer: %w", err)
			}
			if format == "dot" {
				return t.WriteDOT(out)
			}
			return t.WriteTree(out)
		},
	}
	f.add(cmd, "print the API's JSON answer (same as --format json)")
	fl := cmd.Flags()
	fl.BoolVar(&up, "up", false, "walk to what NODE depends on")
	fl.BoolVar(&down, "down", false, "walk to what depends on NODE (the default)")
	fl.IntVar(&depth, "depth", 0, "walk at most this many edges (0: no bound)")
	fl.IntVar(&maxNodes, "max", 0, fmt.Sprintf("list at most this many nodes (0: %d)", deps.DefaultMaxNodes))
	fl.StringSliceVar(&types, "types", nil, "list only nodes of these types (comma separated)")
	fl.StringSliceVar(&relations, "relations", nil, "walk only these relations (comma separated)")
	fl.StringVar(&format, "format", "tree", "output: tree, json or dot")
	return cmd
}
