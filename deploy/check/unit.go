package check

import (
	"fmt"
	"strings"
)

// Unit is a systemd unit file: for each section, each key's values in
// order (a key may repeat, as ExecStartPre= or SystemCallFilter= do).
type Unit map[string]map[string][]string

// ParseUnit parses a unit file as systemd.syntax(7) describes it: [Section]
// headers, Key=Value lines, comments starting with # or ;, and lines
// continued by a trailing backslash. A line outside a section or without
// "=" is an error.
func ParseUnit(text string) (Unit, error) {
	u := Unit{}
	section := ""
	var cont strings.Builder
	n := 0
	for raw := range strings.Lines(text) {
		n++
		line := strings.TrimSpace(raw)
		if cont.Len() == 0 && (line == "" || line[0] == '#' || line[0] == ';') {
			continue
		}
		if s, ok := strings.CutSuffix(line, `\`); ok {
			cont.WriteString(s + " ")
			continue
		}
		if cont.Len() > 0 {
			line = cont.String() + line
			cont.Reset()
		}
		if strings.HasPrefix(line, "[") {
			if !strings.HasSuffix(line, "]") {
				return nil, fmt.Errorf("line %d: %q: a section header ends with ]", n, line)
			}
			section = line[1 : len(line)-1]
			if u[section] == nil {
				u[section] = map[string][]string{}
			}
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("line %d: %q: want Key=Value", n, line)
		}
		if section == "" {
			return nil, fmt.Errorf("line %d: %q: outside any [Section]", n, line)
		}
		key = strings.TrimSpace(key)
		u[section][key] = append(u[section][key], strings.TrimSpace(value))
	}
	if cont.Len() > 0 {
		return nil, fmt.Errorf("line %d: the file ends in a continued line", n)
	}
	return u, nil
}

// Get is the last value of section's key ("" when unset): the one systemd
// uses for a key that takes one value.
func (u Unit) Get(section, key string) string {
	vs := u[section][key]
	if len(vs) == 0 {
		return ""
	}
	return vs[len(vs)-1]
}
