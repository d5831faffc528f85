// Package spell suggests what a person probably meant when they typed a
// name that is not one of the names a field takes ("did you mean
// PASSED?"). It is for messages to people only: nothing is ever corrected
// silently.
package spell

import "strings"

// Suggest returns the known name closest to typed: the one equal to it
// but for case, else the only one it is a prefix of (PASS → PASSED), else
// the nearest within an edit distance of a third of its length (at least
// 1, at most 3; case ignored). ok is false when nothing is that close, or
// when two are equally close.
func Suggest(typed string, known []string) (name string, ok bool) {
	if typed == "" {
		return "", false
	}
	lower := strings.ToLower(typed)
	for _, k := range known {
		if strings.ToLower(k) == lower {
			return k, true
		}
	}
	var prefixed []string
	for _, k := range known {
		if strings.HasPrefix(strings.ToLower(k), lower) {
			prefixed = append(prefixed, k)
		}
	}
	if len(prefixed) == 1 {
		return prefixed[0], true
	}
	limit := min(max(len(typed)/3, 1), 3)
	best, bestDist, tie := "", limit+1, false
	for _, k := range known {
		d := distance(lower, strings.ToLower(k))
		switch {
		case d < bestDist:
			best, bestDist, tie = k, d, false
		case d == bestDist:
			tie = true
		}
	}
	if best == "" || tie {
		return "", false
	}
	return best, true
}

// DidYouMean is Suggest as the end of a message: "; did you mean
// PASSED?", or "" when there is no suggestion.
func DidYouMean(typed string, known []string) string {
	if s, ok := Suggest(typed, known); ok {
		return "; did you mean " + s + "?"
	}
	return ""
}

// distance is the Levenshtein distance between a and b, in bytes (the
// names compared are ASCII).
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
