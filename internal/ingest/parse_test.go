package ingest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/factory2/factory2/avro"
	"github.com/factory2/factory2/internal/bus"
	"github.com/factory2/factory2/topics"
)

// testNow is the ingest clock of every test parser.
var testNow = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func testParser(t testing.TB) *Parser {
	t.Helper()
	cat, err := topics.New(topics.Config{Prefix: "t."})
	if err != nil {
		t.Fatal(err)
	}
	return &Parser{Catalog: cat, Now: func() time.Time { return testNow }}
}

const (
	buildLine = `{"type":"build","source":"koji/primary","event_time":"2026-01-01T00:00:00Z","kind":"state_change","nvr":"bash-5.2.26-3.fc41","state":"COMPLETE"}`
	signLine  = `{"type":"sign","source":"robosignatory","event_time":"2026-01-01T00:00:01Z","nvr":"bash-5.2.26-3.fc41","sigkey":"a15b79cc","outcome":"signed","artifacts":[{"name":"bash.rpm","type":"rpm"}]}`
	testLine  = `{"type":"test_result","source":"resultsdb","event_time":"2026-01-01T00:00:02Z","subject_type":"koji_build","subject_id":"bash-5.2.26-3.fc41","testcase":"t1","outcome":"PASSED"}`
)

func TestParseJSONForms(t *testing.T) {
	p := testParser(t)
	for _, tc := range []struct {
		name  string
		input string
		lines []int
	}{
		{"lines", buildLine + "\n" + signLine + "\n\n" + testLine + "\n", []int{1, 2, 4}},
		{"document", "{\n" + strings.TrimPrefix(buildLine, "{") + "\n", []int{1}},
		{"array", "[\n  " + buildLine + ",\n  " + signLine + "\n]", []int{2, 3}},
		{"array then line", "[" + buildLine + "]\n" + testLine, []int{1, 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			evs, err := p.ParseJSON([]byte(tc.input))
			if err != nil {
				t.Fatal(err)
			}
			if len(evs) != len(tc.lines) {
				t.Fatalf("%d events, want %d", len(evs), len(tc.lines))
			}
			for i, ev := range evs {
				if ev.Line != tc.lines[i] {
					t.Errorf("event %d: line %d, want %d", i, ev.Line, tc.lines[i])
				}
				if ev.Key != "bash-5.2.26-3.fc41" {
					t.Errorf("event %d: key %q", i, ev.Key)
				}
				if !ev.Record.Env().IngestTime.Equal(testNow) {
					t.Errorf("event %d: ingest time %v", i, ev.Record.Env().IngestTime)
				}
			}
		})
	}
}

func TestRouting(t *testing.T) {
	p := testParser(t)
	for _, tc := range []struct {
		line, topic string
	}{
		{buildLine, "t.events.build"},
		{signLine, "t.events.sign"},
		{testLine, "t.events.test"},
		{`{"type":"waiver","source":"waiverdb","event_time":"2026-01-01T00:00:00Z","subject_type":"koji_build","subject_id":"x-1-1","testcase":"t","product_version":"fedora-41","waived":true,"scenario":null}`, "t.events.test"},
		{`{"type":"remote_rule_file","source":"f","event_time":"2026-01-01T00:00:00Z","subject_type":"koji_build","subject_id":"x-1-1","path":"gating.yaml","content":"--- []"}`, "t.events.policy"},
		{`{"type":"compose","source":"pungi","event_time":"2026-01-01T00:00:00Z","kind":"status","compose_id":"Fedora-Rawhide-20260101.n.0","status":"FINISHED"}`, "t.events.compose"},
	} {
		evs, err := p.ParseJSON([]byte(tc.line))
		if err != nil {
			t.Fatalf("%s: %v", tc.line, err)
		}
		if evs[0].Topic != tc.topic || evs[0].Key != bus.Key(evs[0].Record) {
			t.Errorf("%s: topic %q key %q, want %q", avro.TypeName(evs[0].Record), evs[0].Topic, evs[0].Key, tc.topic)
		}
	}
}

// TestDerivedID: an event without an id gets a hash of its content, the
// same whatever its key order and spacing and whenever it is ingested.
func TestDerivedID(t *testing.T) {
	p := testParser(t)
	id := func(p *Parser, line string) string {
		t.Helper()
		evs, err := p.ParseJSON([]byte(line))
		if err != nil {
			t.Fatal(err)
		}
		return evs[0].Record.Env().ID
	}
	a := id(p, buildLine)
	if !strings.HasPrefix(a, "sha256:") || len(a) != len("sha256:")+32 {
		t.Fatalf("derived id %q", a)
	}
	reordered := `{ "nvr": "bash-5.2.26-3.fc41", "state": "COMPLETE", "type": "build", "kind": "state_change",
		"event_time": "2026-01-01T00:00:00Z", "source": "koji/primary", "ingest_time": "1999-01-01T00:00:00Z" }`
	later := *p
	later.Now = func() time.Time { return testNow.Add(time.Hour) }
	if b := id(&later, reordered); b != a {
		t.Errorf("same event, different id: %s vs %s", a, b)
	}
	if c := id(p, strings.Replace(buildLine, "COMPLETE", "FAILED", 1)); c == a {
		t.Errorf("different events, same id %s", c)
	}
	if d := id(p, strings.Replace(buildLine, `"type":"build",`, `"type":"build","id":"mine",`, 1)); d != "mine" {
		t.Errorf("given id replaced by %q", d)
	}
}

func TestDefaults(t *testing.T) {
	p := testParser(t)
	p.Source = "cli"
	p.EventTimeNow = true
	evs, err := p.ParseJSON([]byte(`{"type":"test_result","subject_type":"koji_build","subject_id":"x-1-1","testcase":"t","outcome":"PASSED"}
{"type":"build","kind":"tag","nvr":"bash-5.2.26-3.fc41","tag":"f41","source":"koji/primary"}`))
	if err != nil {
		t.Fatal(err)
	}
	r := evs[0].Record.(*avro.TestResult)
	if r.Source != "cli" || !r.EventTime.Equal(testNow) || r.ResultID != r.ID {
		t.Errorf("test result defaults: source %q, event time %v, result id %q (id %q)", r.Source, r.EventTime, r.ResultID, r.ID)
	}
	b := evs[1].Record.(*avro.BuildEvent)
	if b.Source != "koji/primary" || b.Name != "bash" || b.Version != "5.2.26" || b.Release != "3.fc41" {
		t.Errorf("build defaults: source %q, n-v-r %q %q %q", b.Source, b.Name, b.Version, b.Release)
	}
}

// defLine is a compose definition with every definition field.
const defLine = `{"type":"compose","source":"factory2/config","event_time":"2026-01-01T00:00:00Z","kind":"definition","compose_id":"fedora-42-updates",` +
	`"product_version":"fedora-42","source_tags":["f42-updates","f42"],"packages_allow":["python-*","bash"],"packages_deny":["*-doc"],` +
	`"signing_key":"105ef944","decision_contexts":["bodhi_update_push_stable"],` +
	`"cadence":{"min_interval_ms":21600000,"window_start":"22:00","window_end":"06:00"}}`

// TestParseDefinition: a definition with every field is accepted as
// given and routed by compose id; a retired one needs no source tag, nor
// does a version-1 definition that lists its contents.
func TestParseDefinition(t *testing.T) {
	evs, err := testParser(t).ParseJSON([]byte(defLine + "\n" +
		`{"type":"compose","source":"factory2/config","event_time":"2026-01-01T00:00:00Z","kind":"definition","compose_id":"old","retired":true}` + "\n" +
		`{"type":"compose","source":"pungi","event_time":"2026-01-01T00:00:00Z","kind":"definition","compose_id":"Fedora-42-20260101.0","contents":[{"subject_type":"koji_build","subject_id":"bash-5.2.26-3.fc41"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	c := evs[0].Record.(*avro.ComposeEvent)
	want := avro.ComposeCadence{MinIntervalMS: 6 * 3600 * 1000, WindowStart: "22:00", WindowEnd: "06:00"}
	if evs[0].Topic != "t.events.compose" || evs[0].Key != "fedora-42-updates" || c.ProductVersion != "fedora-42" ||
		len(c.SourceTags) != 2 || c.SourceTags[0] != "f42-updates" || len(c.PackagesAllow) != 2 || len(c.PackagesDeny) != 1 ||
		c.SigningKey != "105ef944" || len(c.DecisionContexts) != 1 || c.Cadence != want || c.Retired {
		t.Errorf("definition %+v routed to %s key %s", c, evs[0].Topic, evs[0].Key)
	}
	if r := evs[1].Record.(*avro.ComposeEvent); !r.Retired || len(r.SourceTags) != 0 {
		t.Errorf("retired definition %+v", r)
	}
	// The rules are the same for definitions built another way.
	if ps := DefinitionProblems(&avro.ComposeEvent{Cadence: avro.ComposeCadence{WindowStart: "24:00", WindowEnd: "0a:00"}}); len(ps) != 3 ||
		ps[0].Field != "source_tags" || !errors.Is(ps[0], ErrMissing) || ps[1].Field != "cadence.window_start" || ps[2].Field != "cadence.window_end" {
		t.Errorf("DefinitionProblems = %v", ps)
	}
}

func TestParseJSONErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		input string
		want  []string // substrings of the error
	}{
		{"malformed", buildLine + "\n{\"type\": \"build\",\n  oops}\n", []string{"line 3", "malformed JSON at column 3"}},
		{"not JSON", buildLine + "\nbash-5.2.26-3.fc41 COMPLETE\n", []string{"line 2: not JSON: the line starts with \"bash-5.2.26-3.fc41 COMPLETE\"", "JSON objects"}},
		{"not JSON, long line", "nothing here is JSON, and this line goes on and on and on\n", []string{`starts with "nothing here is JSON, and this line goes…"`}},
		{"not an object", buildLine + "\n42\n", []string{"line 2: 42 (a number) where a JSON object is expected"}},
		{"a bus message", `{"topic":"org.fedoraproject.prod.buildsys.tag","body":{"tag":"f42"}}`, []string{`no "type"`, "is it a bus message?", "emit --message"}},
		{"unknown outcome", strings.Replace(testLine, `"PASSED"`, `"PASS"`, 1), []string{`field "outcome": "PASS" is not one of PASSED, INFO, FAILED, NEEDS_INSPECTION, ERROR, QUEUED, RUNNING; did you mean PASSED?`}},
		{"unknown outcome, no suggestion", strings.Replace(testLine, `"PASSED"`, `"GREEN"`, 1), []string{`"GREEN" is not one of PASSED`, "RUNNING"}},
		{"truncated", buildLine + "\n{\"type\": \"build\"", []string{"line 2", "unexpected end of input"}},
		{"no type", `{"nvr":"x-1-1"}`, []string{"line 1", `no "type"`}},
		{"unknown type", `{"type":"bogus"}`, []string{"line 1", "unknown record type", "bogus"}},
		{"unknown field", `{"type":"build","colour":"red"}`, []string{"line 1", "colour"}},
		{"decision", buildLine + "\n" + `{"type":"gating_decision","subject_id":"x"}`, []string{"line 2", "gating_decision", "decisions are not accepted"}},
		{"no source", strings.Replace(buildLine, `"source":"koji/primary",`, "", 1), []string{"line 1", `field "source": missing`}},
		{"no event time", strings.Replace(buildLine, `"event_time":"2026-01-01T00:00:00Z",`, "", 1), []string{"line 1", `field "event_time": missing`}},
		{"build without nvr", strings.Replace(buildLine, `"nvr":"bash-5.2.26-3.fc41",`, "", 1), []string{`field "nvr": missing`}},
		{"bad state", strings.Replace(buildLine, "COMPLETE", "DONE", 1), []string{`field "state": "DONE" is not one of`}},
		{"misspelt state", strings.Replace(buildLine, "COMPLETE", "COMPLETED", 1), []string{`"COMPLETED" is not one of BUILDING, COMPLETE, DELETED, FAILED, CANCELED; did you mean COMPLETE?`}},
		{"tag without tag", strings.Replace(buildLine, "state_change", "tag", 1), []string{`field "tag": missing`}},
		{"sign without key", strings.Replace(signLine, `"sigkey":"a15b79cc",`, "", 1), []string{`field "sigkey": missing`}},
		{"artifact without type", strings.Replace(signLine, `,"type":"rpm"`, "", 1), []string{`field "artifacts": artifact 1`}},
		{"result without subject", strings.Replace(testLine, `"subject_id":"bash-5.2.26-3.fc41",`, "", 1), []string{`field "subject_id": missing`}},
		{"waiver without product version", `{"type":"waiver","source":"w","event_time":"2026-01-01T00:00:00Z","subject_type":"koji_build","subject_id":"x-1-1","testcase":"t","waived":true}`, []string{`field "product_version": missing`}},
		{"rule file missing with content", `{"type":"remote_rule_file","source":"f","event_time":"2026-01-01T00:00:00Z","subject_type":"koji_build","subject_id":"x-1-1","path":"gating.yaml","content":"x","missing":true}`, []string{`field "content"`}},
		{"compose without id", `{"type":"compose","source":"pungi","event_time":"2026-01-01T00:00:00Z","kind":"status","status":"FINISHED"}`, []string{`field "compose_id": missing`}},
		{"compose status without status", `{"type":"compose","source":"pungi","event_time":"2026-01-01T00:00:00Z","kind":"status","compose_id":"c"}`, []string{`field "status": missing`}},
		{"definition without source tags", strings.Replace(defLine, `"source_tags":["f42-updates","f42"],`, "", 1), []string{`field "source_tags": missing`, "unless it is retired"}},
		{"definition with a blank tag", strings.Replace(defLine, `"f42-updates"`, `" "`, 1), []string{`field "source_tags": entry 1 is blank`}},
		{"definition with a repeated tag", strings.Replace(defLine, `"f42"]`, `"f42-updates"]`, 1), []string{`field "source_tags": entry 2 "f42-updates" repeats`}},
		{"definition with a bad glob", strings.Replace(defLine, `"python-*"`, `"python-[*"`, 1), []string{`field "packages_allow": entry 1 "python-[*" is not a glob`}},
		{"definition with an empty glob", strings.Replace(defLine, `["*-doc"]`, `["*-doc",""]`, 1), []string{`field "packages_deny": entry 2 is empty`}},
		{"definition with a bad key", strings.Replace(defLine, `"105ef944"`, `"fedora-42"`, 1), []string{`field "signing_key": "fedora-42" is not a hexadecimal key id`}},
		{"definition with an upper-case key", strings.Replace(defLine, `"105ef944"`, `"105EF944"`, 1), []string{`field "signing_key": "105EF944": write key ids in lower case (105ef944)`}},
		{"definition with a blank context", strings.Replace(defLine, `["bodhi_update_push_stable"]`, `[""]`, 1), []string{`field "decision_contexts": entry 1 is blank`}},
		{"definition with a negative interval", strings.Replace(defLine, `"min_interval_ms":21600000`, `"min_interval_ms":-1`, 1), []string{`field "cadence.min_interval_ms": -1 is negative`}},
		{"definition with a bad window", strings.Replace(defLine, `"06:00"`, `"6:00"`, 1), []string{`field "cadence.window_end": "6:00" is not a time of day as HH:MM`}},
		{"definition with half a window", strings.Replace(defLine, `,"window_end":"06:00"`, "", 1), []string{`field "cadence": window_start and window_end go together`}},
		{"definition with an empty window", strings.Replace(defLine, `"22:00"`, `"06:00"`, 1), []string{`field "cadence": window_start and window_end are both 06:00`}},
		{"status with definition fields", `{"type":"compose","source":"pungi","event_time":"2026-01-01T00:00:00Z","kind":"status","compose_id":"c","status":"FINISHED","source_tags":["f42"],"retired":true}`, []string{"2 problems", `field "source_tags": set on a status event`, `field "retired": set on a status event`}},
		{"array element", "[\n" + buildLine + ",\n" + `{"type":"sign"}` + "\n]", []string{"line 3 (array element 2)", "sign"}},
		{"several", `{"type":"bogus"}` + "\n" + buildLine + "\n" + `{"type":"autosign"}`, []string{"2 problems", "line 1", "line 3"}},
		{"invalid UTF-8", buildLine + "\n" + strings.Replace(buildLine, "koji/primary", "koji/\xffprimary", 1), []string{"line 2", "invalid UTF-8 at byte offset", "0xff"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			evs, err := testParser(t).ParseJSON([]byte(tc.input))
			if err == nil {
				t.Fatalf("no error; events %v", evs)
			}
			if evs != nil {
				t.Errorf("events returned with the error: %v", evs)
			}
			var ie *InputError
			if !errors.As(err, &ie) {
				t.Errorf("error %T is not an *InputError", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// TestParseInvalidUTF8: input that is not UTF-8 is rejected, naming the
// offset of the first bad byte, rather than decoded with U+FFFD in its
// place; encoded U+FFFD itself is valid.
func TestParseInvalidUTF8(t *testing.T) {
	valid := strings.Replace(buildLine, "koji/primary", "koji/\uFFFD\u00e9", 1)
	if _, err := testParser(t).ParseJSON([]byte(valid)); err != nil {
		t.Fatalf("valid UTF-8: %v", err)
	}
	for _, tc := range []struct {
		name string
		bad  string // replaces "koji/primary" in the second line
	}{
		{"stray byte", "koji\xff"},
		{"truncated sequence", "koji\xc3"},
		{"surrogate", "koji\xed\xa0\x80"},
		{"overlong", "koji\xc0\xaf"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			input := buildLine + "\n" + strings.Replace(buildLine, "koji/primary", tc.bad, 1)
			want := len(buildLine) + 1 + strings.Index(buildLine, "koji/primary") + len("koji")
			for name, parse := range map[string]func([]byte) ([]Event, error){
				"ParseJSON":     testParser(t).ParseJSON,
				"ParseMessages": func(b []byte) ([]Event, error) { return testParser(t).ParseMessages(b, "") },
			} {
				_, err := parse([]byte(input))
				var ie *InputError
				if !errors.Is(err, ErrInvalidUTF8) || !errors.As(err, &ie) || ie.Line != 2 ||
					!strings.Contains(err.Error(), fmt.Sprintf("byte offset %d", want)) {
					t.Errorf("%s = %v, want ErrInvalidUTF8 on line 2 at byte offset %d", name, err, want)
				}
			}
		})
	}
}

func TestParseErrorsBounded(t *testing.T) {
	input := strings.Repeat(`{"type":"bogus"}`+"\n", 30)
	_, err := testParser(t).ParseJSON([]byte(input))
	var be *BatchError
	if !errors.As(err, &be) || len(be.Problems) != maxReported || be.More != 30-maxReported {
		t.Fatalf("error %v: want %d problems listed and %d more", err, maxReported, 30-maxReported)
	}
	if !strings.Contains(err.Error(), "30 problems") || !strings.Contains(err.Error(), "and 10 more") {
		t.Errorf("error %q", err)
	}
}

func TestParseEmpty(t *testing.T) {
	for _, in := range []string{"", "\n \n", "[]"} {
		if _, err := testParser(t).ParseJSON([]byte(in)); !errors.Is(err, ErrNoEvents) {
			t.Errorf("ParseJSON(%q) = %v, want ErrNoEvents", in, err)
		}
	}
}

func readBusFixture(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "bus", "testdata", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestParseMessages(t *testing.T) {
	p := testParser(t)
	// Two fixtures as message lines: each compacted to one line.
	var lines []string
	for _, name := range []string{"koji_tag", "umb_resultsdb_brew_build"} {
		lines = append(lines, strings.Join(strings.Fields(string(readBusFixture(t, name))), " "))
	}
	evs, err := p.ParseMessages([]byte(strings.Join(lines, "\n")), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 || evs[0].Topic != "t.events.build" || evs[1].Topic != "t.events.test" || evs[1].Line != 2 {
		t.Fatalf("events: %+v", evs)
	}
	if id := evs[0].Record.Env().ID; id != "b3d2b8a4-0d1c-4a57-9a57-3c1a1b2e0003" {
		t.Errorf("message id not kept: %q", id)
	}

	// A bare body needs the topic, and the error says how to give it.
	bare := readBusFixture(t, "bare_waiver_new")
	if _, err := p.ParseMessages(bare, ""); !errors.Is(err, bus.ErrMalformed) || !errors.Is(err, bus.ErrNoTopic) ||
		!strings.Contains(err.Error(), "line 1: no topic") || !strings.Contains(err.Error(), "--topic") {
		t.Errorf("bare body without topic: %v, want bus.ErrNoTopic naming --topic", err)
	}
	// Our own event given as a message is recognized.
	if _, err := p.ParseMessages([]byte(testLine), ""); err == nil || !strings.Contains(err.Error(), "is it a factory2 event?") {
		t.Errorf("event as a message: %v", err)
	}
	// Text is not JSON, whichever form is read.
	if _, err := p.ParseMessages([]byte("\n\nhello\n"), ""); err == nil || !strings.Contains(err.Error(), `line 3: not JSON: the line starts with "hello"`) {
		t.Errorf("text as messages: %v", err)
	}

	// Messages keep ResultsDB's tolerance: an outcome ResultsDB never
	// defined is passed on (gating counts it as a failure, as Greenwave
	// does), where our own JSON events and flags refuse it.
	odd := strings.Replace(testLine, `"PASSED"`, `"PASS"`, 1)
	if _, err := p.ParseJSON([]byte(odd)); err == nil {
		t.Error("JSON event with outcome PASS accepted")
	}
	msg := readBusFixture(t, "bare_resultsdb_koji_build")
	if !strings.Contains(string(msg), `"outcome": "PASSED"`) {
		t.Fatalf("fixture changed: %s", msg)
	}
	evs, err = p.ParseMessages([]byte(strings.Replace(string(msg), `"outcome": "PASSED"`, `"outcome": "PASS"`, 1)),
		"org.fedoraproject.prod.resultsdb.result.new")
	if err != nil {
		t.Fatalf("message with outcome PASS: %v", err)
	}
	if r := evs[0].Record.(*avro.TestResult); r.Outcome != "PASS" {
		t.Errorf("outcome %q, want PASS kept", r.Outcome)
	}
	evs, err = p.ParseMessages(bare, "org.fedoraproject.prod.waiverdb.waiver.new")
	if err != nil || evs[0].Topic != "t.events.test" {
		t.Fatalf("bare body with topic: %v, %v", evs, err)
	}

	// An unknown topic rejects the batch.
	_, err = p.ParseMessages(bare, "org.fedoraproject.prod.bodhi.update.comment")
	if !errors.Is(err, bus.ErrUnknownTopic) {
		t.Errorf("unknown topic: %v, want bus.ErrUnknownTopic", err)
	}
	// A message missing a field names it.
	_, err = p.ParseMessages(readBusFixture(t, "koji_rpm_sign_no_build"), "")
	var fe *bus.FieldError
	if !errors.As(err, &fe) || fe.Field != "build" || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("message without build: %v", err)
	}
}

func TestKinds(t *testing.T) {
	for _, tc := range []struct {
		kind   string
		values map[string][]string
		check  func(avro.Record) error
	}{
		{"build", map[string][]string{"nvr": {"bash-5.2.26-3.fc41"}, "state": {"COMPLETE"}, "build_id": {"42"}, "artifacts": {"bash.x86_64.rpm,arch=x86_64", "bash.src.rpm,type=srpm"}}, func(r avro.Record) error {
			b := r.(*avro.BuildEvent)
			if b.Kind != avro.BuildStateChange || b.BuildID != 42 || len(b.Artifacts) != 2 || b.Artifacts[0] != (avro.Artifact{Name: "bash.x86_64.rpm", Type: "rpm", Arch: "x86_64"}) || b.Artifacts[1].Type != "srpm" {
				return fmt.Errorf("%+v", b)
			}
			return nil
		}},
		{"sign", map[string][]string{"nvr": {"bash-5.2.26-3.fc41"}, "sigkey": {"a15b79cc"}}, func(r avro.Record) error {
			if s := r.(*avro.SignEvent); s.Outcome != avro.SignSigned {
				return fmt.Errorf("outcome %q", s.Outcome)
			}
			return nil
		}},
		{"result", map[string][]string{"subject_id": {"x-1-1"}, "testcase": {"t"}, "outcome": {"PASSED"}}, func(r avro.Record) error {
			if tr := r.(*avro.TestResult); tr.SubjectType != "koji_build" {
				return fmt.Errorf("subject type %q", tr.SubjectType)
			}
			return nil
		}},
		{"waiver", map[string][]string{"subject_id": {"x-1-1"}, "testcase": {"t"}, "product_version": {"fedora-41"}, "waived": {"false"}, "scenario": {"s"}}, func(r avro.Record) error {
			if w := r.(*avro.Waiver); w.Waived || w.Scenario == nil || *w.Scenario != "s" {
				return fmt.Errorf("%+v", w)
			}
			return nil
		}},
		{"rule-file", map[string][]string{"subject_id": {"x-1-1"}, "missing": {"true"}}, func(r avro.Record) error {
			if f := r.(*avro.RemoteRuleFile); !f.Missing || f.Path != "gating.yaml" {
				return fmt.Errorf("%+v", f)
			}
			return nil
		}},
		{"compose", map[string][]string{"compose_id": {"c-1"}, "kind": {"definition"}, "contents": {"bash-5.2.26-3.fc41", "m-1-1,type=redhat-module,arch=x86_64"}}, func(r avro.Record) error {
			c := r.(*avro.ComposeEvent)
			if len(c.Contents) != 2 || c.Contents[0].SubjectType != "koji_build" || c.Contents[1].SubjectType != "redhat-module" || c.Contents[1].Arch != "x86_64" {
				return fmt.Errorf("%+v", c)
			}
			return nil
		}},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			k, ok := LookupKind(tc.kind)
			if !ok {
				t.Fatalf("no kind %q", tc.kind)
			}
			tc.values["event_time"] = []string{"2026-01-01T00:00:00Z"}
			rec, err := k.Build(tc.values)
			if err != nil {
				t.Fatal(err)
			}
			if err := tc.check(rec); err != nil {
				t.Error(err)
			}
			p := testParser(t)
			p.Source = "cli"
			evs, err := p.Records(rec)
			if err != nil {
				t.Fatalf("Records: %v", err)
			}
			if avro.TypeName(evs[0].Record) != k.Name || evs[0].Line != 0 {
				t.Errorf("event %+v", evs[0])
			}
		})
	}
}

func TestKindErrors(t *testing.T) {
	build, _ := LookupKind("build")
	for _, tc := range []struct {
		values map[string][]string
		want   string
	}{
		{map[string][]string{"build_id": {"x"}}, `--build-id: "x" is not an integer`},
		{map[string][]string{"event_time": {"yesterday"}}, `--event-time: "yesterday" is not an RFC 3339 time`},
		{map[string][]string{"nvr": {"a-1-1", "b-1-1"}}, "--nvr: given 2 times"},
		{map[string][]string{"artifacts": {"a.rpm,colour=red"}}, `--artifacts: "a.rpm,colour=red"`},
		{map[string][]string{"sigkey": {"k"}}, "--sigkey: not a field of build"},
	} {
		if _, err := build.Build(tc.values); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Build(%v) = %v, want an error with %q", tc.values, err, tc.want)
		}
	}
	// Validation of flag input names the flags.
	rec, err := build.Build(map[string][]string{"state": {"COMPLETE"}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = testParser(t).Records(rec)
	for _, want := range []string{"--nvr: missing", "--source: missing", "--event-time: missing"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Records: %v, want %q", err, want)
		}
	}
	// An outcome typed by hand must be ResultsDB's, and a near miss gets
	// a suggestion.
	result, _ := LookupKind("test_result")
	rec, err = result.Build(map[string][]string{"subject_id": {"x-1-1"}, "testcase": {"t"}, "outcome": {"PASS"},
		"event_time": {"2026-01-01T00:00:00Z"}})
	if err != nil {
		t.Fatal(err)
	}
	p := testParser(t)
	p.Source = "cli"
	_, err = p.Records(rec)
	const want = `test_result: --outcome: "PASS" is not one of PASSED, INFO, FAILED, NEEDS_INSPECTION, ERROR, QUEUED, RUNNING; did you mean PASSED?`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Records: %v, want %q", err, want)
	}
}

func TestEventJSON(t *testing.T) {
	evs, err := testParser(t).ParseJSON([]byte(buildLine))
	if err != nil {
		t.Fatal(err)
	}
	b, err := evs[0].MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(b), `{"topic":"t.events.build","key":"bash-5.2.26-3.fc41","event":{"type":"build","id":"sha256:`) {
		t.Errorf("JSON %s", b)
	}
}
