package gating

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// noSubjects is a Getter that has seen no subject.
type noSubjects struct{}

func (noSubjects) Get(string, []byte) ([]byte, bool, error) { return nil, false, nil }

// TestDecisionRequestBody: the decision endpoint answers a valid request,
// and refuses invalid UTF-8 (which encoding/json would silently turn into
// U+FFFD) with 400 naming the offset of the first bad byte, and a body
// over its limit with 413.
func TestDecisionRequestBody(t *testing.T) {
	ps, err := LoadPolicies(map[string][]byte{"p.yaml": []byte(`--- !Policy
id: stable
product_versions: [fedora-*]
decision_context: bodhi_update_push_stable
subject_type: koji_build
rules:
  - !PassingTestCaseRule {test_case_name: tier0}
`)})
	if err != nil {
		t.Fatal(err)
	}
	eng, err := NewEngine(ps, nil)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	NewAPI(eng, noSubjects{}).Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	const valid = `{"decision_context":"bodhi_update_push_stable","product_version":"fedora-42","subject_type":"koji_build","subject_identifier":"bash-5.2.37-1.fc42"}`
	badAt := strings.Index(valid, "bash") + len("bash")
	for _, tc := range []struct {
		name   string
		body   string
		status int
		want   string // in the message
	}{
		{"valid", valid, http.StatusOK, ""},
		{"encoded U+FFFD is valid", strings.Replace(valid, "bash", "bash\uFFFD", 1), http.StatusOK, ""},
		{"invalid UTF-8 in a value", strings.Replace(valid, "bash", "bash\xff", 1), http.StatusBadRequest, fmt.Sprintf("invalid UTF-8 at byte offset %d (0xff)", badAt)},
		{"truncated sequence", strings.Replace(valid, "bash", "bash\xe2\x82", 1), http.StatusBadRequest, fmt.Sprintf("invalid UTF-8 at byte offset %d", badAt)},
		{"malformed", `{"decision_context":`, http.StatusBadRequest, "Invalid JSON"},
		{"too large", valid + strings.Repeat(" ", maxDecisionBody), http.StatusRequestEntityTooLarge, "exceeds"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := srv.Client().Post(srv.URL+"/api/v1.0/decision", "application/json", strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var got struct {
				Message           string `json:"message"`
				PoliciesSatisfied *bool  `json:"policies_satisfied"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.status || !strings.Contains(got.Message, tc.want) {
				t.Fatalf("%s %q, want %d with %q", resp.Status, got.Message, tc.status, tc.want)
			}
			if tc.status == http.StatusOK && got.PoliciesSatisfied == nil {
				t.Errorf("no decision in a 200")
			}
		})
	}
}
