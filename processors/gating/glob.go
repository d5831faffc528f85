package gating

import (
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"
)

// glob is a compiled shell-style wildcard pattern with Python's fnmatch
// semantics (what Greenwave uses for product_versions, packages and
// excluded_packages): '*' matches any run of characters including '/',
// '?' any one character, "[seq]" and "[!seq]" character sets. Matching is
// case-sensitive, as fnmatch is on POSIX.
type glob struct {
	pattern string
	kind    globKind
	lit     string // exact text or prefix
	re      *regexp.Regexp
}

type globKind uint8

const (
	globExact globKind = iota
	globPrefix
	globAny
	globRegexp
)

func compileGlob(pattern string) (glob, error) {
	g := glob{pattern: pattern}
	if !strings.ContainsAny(pattern, "*?[") {
		g.kind, g.lit = globExact, pattern
		return g, nil
	}
	if trimmed := strings.TrimRight(pattern, "*"); !strings.ContainsAny(trimmed, "*?[") {
		if trimmed == "" {
			g.kind = globAny
			return g, nil
		}
		g.kind, g.lit = globPrefix, trimmed
		return g, nil
	}
	re, err := regexp.Compile(translateGlob(pattern))
	if err != nil {
		return glob{}, fmt.Errorf("invalid wildcard pattern %q: %v", pattern, err)
	}
	g.kind, g.re = globRegexp, re
	return g, nil
}

func (g glob) match(s string) bool {
	switch g.kind {
	case globExact:
		return s == g.lit
	case globPrefix:
		return strings.HasPrefix(s, g.lit)
	case globAny:
		return true
	default:
		return g.re.MatchString(s)
	}
}

// translateGlob turns a wildcard pattern into an anchored regular
// expression, following Python's fnmatch.translate.
func translateGlob(p string) string {
	var b strings.Builder
	b.WriteString(`^(?s:`)
	n := len(p)
	for i := 0; i < n; {
		c := p[i]
		switch c {
		case '*':
			for i < n && p[i] == '*' {
				i++
			}
			b.WriteString(`.*`)
			continue
		case '?':
			b.WriteString(`.`)
			i++
			continue
		case '[':
			j := i + 1
			if j < n && p[j] == '!' {
				j++
			}
			if j < n && p[j] == ']' {
				j++
			}
			for j < n && p[j] != ']' {
				j++
			}
			if j >= n {
				b.WriteString(`\[`)
				i++
				continue
			}
			set := p[i+1 : j]
			i = j + 1
			set = strings.ReplaceAll(set, `\`, `\\`)
			set = strings.ReplaceAll(set, `[`, `\[`)
			switch {
			case strings.HasPrefix(set, "!"):
				set = "^" + set[1:]
			case strings.HasPrefix(set, "^"):
				set = `\` + set
			}
			b.WriteString("[" + set + "]")
			continue
		}
		r, size := utf8.DecodeRuneInString(p[i:])
		b.WriteString(regexp.QuoteMeta(string(r)))
		i += size
	}
	b.WriteString(`)$`)
	return b.String()
}

// globs is a list of patterns; it matches when any pattern matches.
type globs []glob

func (gs globs) match(s string) bool {
	for _, g := range gs {
		if g.match(s) {
			return true
		}
	}
	return false
}
