package gating

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// ProductVersionRule overrides product version inference for matching
// subjects. Rules are tried in order before the built-in inference and the
// first match wins.
type ProductVersionRule struct {
	// Match is a regular expression matched at the start of the subject
	// identifier (Python's re.match, as Greenwave's product_version_match),
	// so a plain prefix such as "Fedora-Rawhide" works too.
	Match string `yaml:"match" json:"match"`
	// ProductVersion replaces the matched text, Greenwave style: \1 (or
	// ${1}) refers to a group; text after the match is kept, so match the
	// whole identifier (".*") when the version is all you want. The result
	// is lower-cased.
	ProductVersion string `yaml:"product_version" json:"product_version"`
	// SubjectType, when set, limits the rule to one subject type.
	SubjectType string `yaml:"subject_type,omitempty" json:"subject_type,omitempty"`
}

type compiledPVRule struct {
	re          *regexp.Regexp
	template    string
	subjectType string
}

var backrefRE = regexp.MustCompile(`\\(\d+)`)

func compilePVRules(rules []ProductVersionRule) ([]compiledPVRule, error) {
	var errs []string
	out := make([]compiledPVRule, 0, len(rules))
	for i, r := range rules {
		if r.Match == "" || r.ProductVersion == "" {
			errs = append(errs, fmt.Sprintf("product version rule %d: match and product_version are required", i))
			continue
		}
		re, err := regexp.Compile(`^(?:` + r.Match + `)`)
		if err != nil {
			errs = append(errs, fmt.Sprintf("product version rule %d: %v", i, err))
			continue
		}
		out = append(out, compiledPVRule{
			re:          re,
			template:    backrefRE.ReplaceAllString(r.ProductVersion, `$${$1}`),
			subjectType: NormalizeSubjectType(r.SubjectType),
		})
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("gating: %s", strings.Join(errs, "; "))
	}
	return out, nil
}

func (r *compiledPVRule) apply(subjectType, id string) (string, bool) {
	if r.subjectType != "" && r.subjectType != subjectType {
		return "", false
	}
	loc := r.re.FindStringSubmatchIndex(id)
	if loc == nil {
		return "", false
	}
	var dst []byte
	dst = r.re.ExpandString(dst, r.template, id, loc)
	return strings.ToLower(string(dst) + id[loc[1]:]), true
}

// ProductVersionFromNVR guesses the product version of a build from the
// dist tag at the end of its release, as Greenwave does for NVR subjects
// (greenwave/product_versions.py, _guess_product_versions with
// koji_build=True): "fc41" and "f41" give fedora-41, "el9" and "el9_2"
// give rhel-9, "epel8" gives epel-8, "rawhide" gives fedora-rawhide.
func ProductVersionFromNVR(nvr string) (string, bool) {
	_, _, release, ok := splitNVR(nvr)
	if !ok {
		return "", false
	}
	i := strings.LastIndexByte(release, '.')
	if i < 0 {
		return "", false
	}
	return guessProductVersion(release[i+1:], true)
}

// ProductVersionFromComposeID guesses the product version of a compose:
// "Fedora-Rawhide-20240101.n.0" gives fedora-rawhide, "Fedora-41-20241020.0"
// fedora-41 (also "Fedora-Cloud-41-…"), "RHEL-9.4.0-20240101.0" rhel-9
// (Greenwave's compose subject type: '^(RHEL-\d*)\..*').
func ProductVersionFromComposeID(id string) (string, bool) {
	if strings.HasPrefix(id, "RHEL-") {
		rest := id[len("RHEL-"):]
		n := 0
		for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
			n++
		}
		if n < len(rest) && rest[n] == '.' {
			return "rhel-" + rest[:n], true
		}
		return "", false
	}
	if !strings.HasPrefix(id, "Fedora-") {
		return "", false
	}
	if pv, ok := guessProductVersion(id, false); ok {
		return pv, true
	}
	// Fedora-<Variant>-<N>-<date> and Fedora-<Variant>-Rawhide-<date>.
	parts := strings.Split(id, "-")
	for _, p := range parts[1:] {
		switch {
		case p == "Rawhide":
			return "fedora-rawhide", true
		case isDigits(p) && len(p) < 8:
			if n, err := strconv.Atoi(p); err == nil && n > 0 {
				return "fedora-" + strconv.Itoa(n), true
			}
			return "", false
		case isDigits(p) || strings.ContainsAny(p, "."):
			return "", false // reached the date
		}
	}
	return "", false
}

// guessProductVersion is Greenwave's _guess_product_versions.
func guessProductVersion(s string, kojiBuild bool) (string, bool) {
	if s == "rawhide" || strings.HasPrefix(s, "Fedora-Rawhide") {
		return "fedora-rawhide", true
	}
	var prefix string
	switch {
	case strings.HasPrefix(s, "f") && kojiBuild:
		prefix = "fedora-"
	case strings.HasPrefix(s, "epel"):
		prefix = "epel-"
	case strings.HasPrefix(s, "el") && len(s) > 2 && isDigit(s[2]):
		prefix = "rhel-"
	case strings.HasPrefix(s, "rhel-") && len(s) > 5 && isDigit(s[5]):
		prefix = "rhel-"
	case strings.HasPrefix(s, "fc") || strings.HasPrefix(s, "Fedora"):
		prefix = "fedora-"
	default:
		return "", false
	}
	n, ok := productVersionNumber(s)
	if !ok {
		return "", false
	}
	if names := commonProductVersions[prefix]; n < len(names) {
		return names[n], true // no allocation for every event's build
	}
	return prefix + strconv.Itoa(n), true
}

// commonProductVersions are the product versions guessProductVersion
// gives, made once for the numbers in use: "fedora-41" and the like.
var commonProductVersions = func() map[string][]string {
	m := map[string][]string{}
	for _, prefix := range []string{"fedora-", "epel-", "rhel-"} {
		names := make([]string, 100)
		for n := range names {
			names[n] = prefix + strconv.Itoa(n)
		}
		m[prefix] = names
	}
	return m
}()

// productVersionNumber is Greenwave's _product_version_number_or_none:
// split into digit runs and '-'-separated other runs, drop empty pieces,
// and read the second piece as a (non-zero) number.
func productVersionNumber(s string) (int, bool) {
	// Only the second piece matters: count pieces, keep that one, and
	// allocate nothing (it runs for every event).
	var second string
	n := 0
	piece := func(p string) {
		if n == 1 {
			second = p
		}
		n++
	}
	for i := 0; i < len(s) && n < 2; {
		j := i
		if isDigit(s[i]) {
			for j < len(s) && isDigit(s[j]) {
				j++
			}
			piece(s[i:j])
		} else {
			for j < len(s) && !isDigit(s[j]) {
				j++
			}
			for p := range strings.SplitSeq(s[i:j], "-") {
				if p != "" {
					piece(p)
				}
			}
		}
		i = j
	}
	if n < 2 || !isDigits(second) {
		return 0, false
	}
	v, err := strconv.Atoi(second)
	if err != nil || v == 0 {
		return 0, false
	}
	return v, true
}

// splitNVR splits name-version-release at its last two dashes.
func splitNVR(nvr string) (name, version, release string, ok bool) {
	i := strings.LastIndexByte(nvr, '-')
	if i <= 0 {
		return "", "", "", false
	}
	j := strings.LastIndexByte(nvr[:i], '-')
	if j <= 0 {
		return "", "", "", false
	}
	return nvr[:j], nvr[j+1 : i], nvr[i+1:], true
}

// packageName is Greenwave's Subject.package_name for NVR subjects:
// id.rsplit("-", 2)[0].
func packageName(id string) string {
	i := strings.LastIndexByte(id, '-')
	if i < 0 {
		return id
	}
	if j := strings.LastIndexByte(id[:i], '-'); j >= 0 {
		return id[:j]
	}
	return id[:i]
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}
