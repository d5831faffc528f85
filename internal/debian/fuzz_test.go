package debian

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/factory2/factory2/avro"
)

// FuzzScanner feeds arbitrary text to the Packages parser: it must never
// panic, must fail only with a *SyntaxError, and every package it returns
// must give edges with names and distinct IDs.
func FuzzScanner(f *testing.F) {
	f.Add(sample)
	f.Add("Package: a\n \n\tb\nDepends: x | y:any (>= 1) [amd64] <!nocheck>,\n z\n")
	f.Add("Package: a\r\nSource: b (1)\r\n\r\n\r\nPackage: c\n")
	f.Add("# c\n\nPackage:\n")
	f.Fuzz(func(t *testing.T, text string) {
		sc := NewScanner(strings.NewReader(text))
		for sc.Scan() {
			p := sc.Package()
			edges := AppendEdges(nil, p, Index{Codename: "fuzz"})
			ids := map[string]bool{}
			for _, e := range edges {
				if e.FromID == "" || e.ToID == "" || e.Relation == "" || ids[e.ID] || e.ID != EdgeID("fuzz", &e) {
					t.Fatalf("package %+v: bad edge %+v", p, e)
				}
				ids[e.ID] = true
			}
			if !hasBuiltFrom(edges) {
				t.Fatalf("package %+v: no built-from edge in %v", p, edgeStrings(edges))
			}
		}
		var se *SyntaxError
		if err := sc.Err(); err != nil && !errors.As(err, &se) {
			t.Fatalf("error %T %v is not a *SyntaxError", err, err)
		}
	})
}

func hasBuiltFrom(edges []avro.DependencyEdge) bool {
	for _, e := range edges {
		if e.Relation == avro.RelBuiltFrom {
			return true
		}
	}
	return false
}

// FuzzParseRelations: what parses renders back to text that parses to the
// same clauses.
func FuzzParseRelations(f *testing.F) {
	f.Add("a | b (>= 1) [amd64] <!nocheck>, c:any, d (<<2)")
	f.Add("libstdc++6 (>= 12), python3:any")
	f.Add(",|")
	f.Fuzz(func(t *testing.T, v string) {
		clauses, err := ParseRelations(v)
		if err != nil {
			return
		}
		again, err := ParseRelations(render(clauses))
		if err != nil {
			t.Fatalf("%q parsed as %+v, rendered %q fails: %v", v, clauses, render(clauses), err)
		}
		if !reflect.DeepEqual(again, clauses) {
			t.Fatalf("%q parsed as %+v, rendered %q parses as %+v", v, clauses, render(clauses), again)
		}
	})
}

// render writes clauses as a relationship field.
func render(clauses []Clause) string {
	var b strings.Builder
	for i, c := range clauses {
		if i > 0 {
			b.WriteString(", ")
		}
		for j, d := range c {
			if j > 0 {
				b.WriteString(" | ")
			}
			b.WriteString(d.Name)
			if d.Arch != "" {
				b.WriteString(":" + d.Arch)
			}
			if d.Op != "" {
				b.WriteString(" (" + d.Op + " " + d.Version + ")")
			}
		}
	}
	return b.String()
}
