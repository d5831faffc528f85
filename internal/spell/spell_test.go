package spell

import "testing"

func TestSuggest(t *testing.T) {
	outcomes := []string{"PASSED", "INFO", "FAILED", "NEEDS_INSPECTION", "ERROR", "QUEUED", "RUNNING"}
	types := []string{"bodhi_update", "brew-build", "compose", "koji_build", "redhat-container-image", "redhat-module"}
	tags := []string{"!PassingTestCaseRule", "!RemoteRule"}
	for _, tc := range []struct {
		typed string
		known []string
		want  string // "" for no suggestion
	}{
		{"PASS", outcomes, "PASSED"},
		{"passed", outcomes, "PASSED"},
		{"FAIL", outcomes, "FAILED"},
		{"FALIED", outcomes, "FAILED"},
		{"ERRORED", outcomes, "ERROR"},
		{"OK", outcomes, ""},
		{"SUCCESS", outcomes, ""},
		{"", outcomes, ""},
		{"koji-build", types, "koji_build"},
		{"kojibuild", types, "koji_build"},
		{"redhat-", types, ""}, // a prefix of two
		{"container", types, ""},
		{"!PassingTestCaseRul", tags, "!PassingTestCaseRule"},
		{"!PassingTestcaseRule", tags, "!PassingTestCaseRule"},
		{"!RemotRule", tags, "!RemoteRule"},
		{"!Policy", tags, ""},
	} {
		got, ok := Suggest(tc.typed, tc.known)
		if got != tc.want || ok != (tc.want != "") {
			t.Errorf("Suggest(%q) = %q, %v; want %q", tc.typed, got, ok, tc.want)
		}
	}
	if got := DidYouMean("PASS", outcomes); got != "; did you mean PASSED?" {
		t.Errorf("DidYouMean = %q", got)
	}
	if got := DidYouMean("OK", outcomes); got != "" {
		t.Errorf("DidYouMean = %q", got)
	}
}
