package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
)

// TestACLPlan: the hooks may only write (and describe) the input topics;
// the processors may not write them unless --http-ingest; every changelog
// of the binary's processors is granted; the principals get their own
// transactional id prefixes only.
func TestACLPlan(t *testing.T) {
	a := &app{configPath: exampleConfig}
	_, cat, specs, err := a.configAndFullCatalog()
	if err != nil {
		t.Fatal(err)
	}
	for _, httpIngest := range []bool{false, true} {
		plan := aclPlan(cat, specs, aclsOpts{processors: "User:p", hooks: "User:h", httpIngest: httpIngest})
		changelogs := 0
		for _, g := range plan {
			isInput := strings.HasPrefix(g.Name, "factory2.events.")
			writes := slices.Contains(g.Ops, kadm.OpWrite)
			switch {
			case g.Principal == "User:h" && g.Resource == "topic" && (!isInput || slices.Contains(g.Ops, kadm.OpRead)):
				t.Errorf("hooks granted %v on %s, want write and describe of inputs only", g.Ops, g.Name)
			case g.Principal == "User:h" && g.Resource == "transactional-id" && g.Name != "factory2.emit/":
				t.Errorf("hooks granted transactional ids %s", g.Name)
			case g.Principal == "User:h" && g.Resource == "group":
				t.Errorf("hooks granted group %s", g.Name)
			case g.Principal == "User:p" && g.Resource == "topic" && isInput && writes != httpIngest:
				t.Errorf("--http-ingest=%v: processors granted %v on input %s", httpIngest, g.Ops, g.Name)
			case g.Principal == "User:p" && g.Resource == "transactional-id" && strings.HasPrefix(g.Name, "factory2.emit/") && (!httpIngest || g.Name != "factory2.emit/http-"):
				t.Errorf("--http-ingest=%v: processors granted transactional ids %s", httpIngest, g.Name)
			}
			if g.Principal == "User:p" && strings.HasSuffix(g.Name, ".changelog") && writes {
				changelogs++
			}
		}
		want := 0
		for _, s := range specs {
			want += len(s.Stores)
		}
		if want == 0 || changelogs != want {
			t.Errorf("processors may write %d changelogs, want %d (one per store)", changelogs, want)
		}
	}
}
