package gating

import (
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/factory2/factory2/avro"
)

// TestBuildViewOnEveryChange: the build view goes out when the build's
// state, tags, signed keys or gating decisions change, and only then.
func TestBuildViewOnEveryChange(t *testing.T) {
	e, err := NewEngine(mustPolicies(t, f41Policies), []SigningRule{{Name: "f41", From: "f41-signing-pending", To: "f41-updates", Key: "fedora-41", KeyID: "aaaa1111"}})
	if err != nil {
		t.Fatal(err)
	}
	k := newTask(t, e, vfs.NewMem(), "task")
	on := subj(f41NVR)
	steps := []struct {
		name string
		rec  avro.Record
		want string // "" for no view
	}{
		{"complete", build(avro.StateComplete, 0, on, id("b"), artifacts("bash-5.2.26-3.fc41.src.rpm")), "COMPLETE [] [] 2"},
		{"tagged", tag("f41-signing-pending", 1, on, id("t")), "COMPLETE [f41-signing-pending] [] 2"},
		{"same tag again: no change", tag("f41-signing-pending", 1, on, id("t")), ""},
		{"result: gating changes", result("dist.rpmdeplint", "PASSED", 2, on, id("r1")), "COMPLETE [f41-signing-pending] [] 2"},
		{"result of an unrequired test: nothing", result("other.test", "PASSED", 3, on, id("r2")), ""},
		{"signed", sign("aaaa1111", 4, on, id("s"), artifacts("bash-5.2.26-3.fc41.src.rpm")), "COMPLETE [f41-signing-pending] [aaaa1111] 2"},
		{"untagged", untag("f41-signing-pending", 5, on, id("u")), "COMPLETE [] [aaaa1111] 2"},
	}
	for _, st := range steps {
		k.views = nil
		k.process("", st.rec)
		got := ""
		if len(k.views) > 1 {
			t.Fatalf("%s: %d views", st.name, len(k.views))
		}
		if len(k.views) == 1 {
			v := k.views[0]
			var tags []string
			for _, tg := range v.Tags {
				tags = append(tags, tg.Tag)
			}
			got = v.State + " " + fmtList(tags) + " " + fmtList(v.SignedKeys) + " " + string(rune('0'+len(v.Gating)))
			if v.NVR != f41NVR || v.Package != "bash" || v.ID == "" || !v.EventTime.Equal(st.rec.Env().EventTime) {
				t.Errorf("%s: view %+v", st.name, v)
			}
		}
		if got != st.want {
			t.Errorf("%s: view %q, want %q", st.name, got, st.want)
		}
	}
}

func fmtList(l []string) string { return "[" + strings.Join(l, " ") + "]" }
