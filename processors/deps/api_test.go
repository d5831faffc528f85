package deps

import (
	"github.com/twmb/franz-go/pkg/kgo"

	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/factory2/factory2/processors"
)

func TestTraceAPI(t *testing.T) {
	ready := false
	a := &API{graph: chainGraph(), health: func() processors.Health {
		if ready {
			return processors.Health{Live: true, Ready: true}
		}
		return processors.Health{Live: true, Reason: "loading the dependency graph: 3 edge records read, 5 offsets to go"}
	}}
	mux := http.NewServeMux()
	a.Register(mux)
	get := func(path string) (int, string) {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		return rec.Code, rec.Body.String()
	}
	if code, body := get("/api/v1/trace/build:openssl-3.0.1-1.fc42"); code != 503 || !strings.Contains(body, "loading the dependency graph") {
		t.Fatalf("while loading: %d %s", code, body)
	}
	ready = true
	code, body := get("/api/v1/trace/build:openssl-3.0.1-1.fc42?direction=down&types=compose,product")
	var tr Trace
	if code != 200 || json.Unmarshal([]byte(body), &tr) != nil || len(tr.Nodes) != 3 || tr.Nodes[2].Key != "product:fedora-42" {
		t.Fatalf("trace: %d %s", code, body)
	}
	code, body = get("/api/v1/trace?node=" + url.QueryEscape("source:https://src.example/rpms/openssl#c1") + "&types=product")
	if code != 200 || !strings.Contains(body, `"key":"product:fedora-42"`) {
		t.Fatalf("by parameter: %d %s", code, body)
	}
	for path, want := range map[string]int{
		"/api/v1/trace/build:nope-1-1":                                404,
		"/api/v1/trace/build:openssl-3.0.1-1.fc42?direction=sideways": 400,
		"/api/v1/trace/build:openssl-3.0.1-1.fc42?depth=-1":           400,
		"/api/v1/trace/nocolon":                                       400,
	} {
		if code, body := get(path); code != want || !strings.Contains(body, `"message"`) {
			t.Errorf("%s: %d %s, want %d", path, code, body, want)
		}
	}
}

// The table holds an edge while any origin's key for it is in the
// changelog, whatever the changelog repeats: a key put again (a processor
// rewrites a key it wrote in an earlier transaction), a tombstone
// repeated, or one whose put compaction removed. Counting records instead
// of keys lost edges under kill -9: the live graph had 118 edges where a
// replay had 121.
func TestTableCountsKeysNotRecords(t *testing.T) {
	e := Edge{From: "container:app-1", Relation: "made-from", To: "build:openssl-3.0.1-1.fc42"}
	put := func(origin string) *kgo.Record { return &kgo.Record{Key: edgeKey(origin, e), Value: []byte("{}")} }
	del := func(origin string) *kgo.Record { return &kgo.Record{Key: edgeKey(origin, e)} }
	edges := func(tb *Table) int {
		_, n := tb.Graph.Size()
		return n
	}
	for _, tc := range []struct {
		name string
		recs []*kgo.Record
		want int
	}{
		{"a tombstone repeated leaves the other origin's assertion", []*kgo.Record{put("a"), put("b"), del("a"), del("a")}, 1},
		{"a tombstone whose put was compacted away", []*kgo.Record{put("b"), del("a")}, 1},
		{"a key put twice is deleted by one tombstone", []*kgo.Record{put("a"), put("a"), del("a")}, 0},
		{"both origins deleted", []*kgo.Record{put("a"), put("b"), put("a"), del("b"), del("a")}, 0},
		{"put again after its deletion", []*kgo.Record{put("a"), del("a"), put("a")}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tb := newTable()
			for _, r := range tc.recs {
				tb.apply(r)
			}
			if got := edges(tb); got != tc.want {
				t.Errorf("%d edges, want %d", got, tc.want)
			}
		})
	}
}
