package bus

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/factory2/factory2/avro"
)

var update = flag.Bool("update", false, "rewrite testdata/golden/*.json from the current output")

// testNow is the ingest time every test passes to Translate.
var testNow = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// fixture is one real message in testdata (see testdata/SOURCES.md).
// topic is the default topic for fixtures that are bare bodies.
type fixture struct {
	name  string
	topic string
}

// goldenFixtures translate to the records in testdata/golden/<name>.json.
var goldenFixtures = []fixture{
	// Koji, fedora-messaging form.
	{name: "koji_build_complete"},
	{name: "koji_build_deleted_livecd"},
	{name: "koji_tag"},
	{name: "koji_untag"},
	{name: "koji_rpm_sign"},
	// Koji, fedmsg/datagrepper form.
	{name: "fedmsg_build_complete"},
	{name: "fedmsg_build_failed_s390"},
	{name: "fedmsg_build_building_no_owner"},
	{name: "fedmsg_tag_no_build_id"},
	{name: "fedmsg_untag"},
	// Brew on UMB, datagrepper form.
	{name: "umb_brew_build_building"},
	{name: "umb_brew_build_complete"},
	{name: "umb_brew_build_complete_container"},
	{name: "umb_brew_build_failed"},
	{name: "umb_brew_build_deleted"},
	{name: "umb_brew_build_canceled"},
	{name: "umb_brew_build_tag"},
	{name: "umb_brew_build_untag"},
	{name: "umb_brew_sign_rpm"},
	// ResultsDB and Taskotron.
	{name: "umb_resultsdb_brew_build"},
	{name: "umb_resultsdb_legacy"},
	{name: "hub_resultsdb_compose"},
	{name: "hub_resultsdb_redhat_module"},
	{name: "bare_resultsdb_koji_build", topic: "/topic/VirtualTopic.eng.resultsdb.result.new"},
	{name: "fedmsg_taskotron_koji_build"},
	{name: "fedmsg_taskotron_bodhi_update"},
	// WaiverDB.
	{name: "umb_waiver_new"},
	{name: "umb_waiver_unwaive"},
	{name: "bare_waiver_new", topic: "org.fedoraproject.prod.waiverdb.waiver.new"},
	{name: "bare_waiver_old_subject", topic: "org.fedoraproject.prod.waiverdb.waiver.new"},
	// Pungi.
	{name: "fedmsg_pungi_started"},
	{name: "umb_pungi_finished"},
	{name: "bridge_pungi_finished"},
	{name: "bridge_pungi_finished_incomplete"},
}

// errorFixtures are real messages Translate must refuse, naming the field.
var errorFixtures = []struct {
	fixture
	want FieldError
}{
	{
		fixture{name: "koji_rpm_sign_no_build"},
		FieldError{Topic: "buildsys.rpm.sign", Field: "build", Reason: "missing"},
	},
	{
		fixture{name: "umb_resultsdb_legacy_malformed"},
		FieldError{Topic: "resultsdb.result.new", Field: "task.type", Reason: "missing (and no original_spec_nvr or productmd.compose.id)"},
	},
	{
		fixture{name: "fedmsg_waiver_result_id_only"},
		FieldError{Topic: "waiverdb.waiver.new", Field: "subject_identifier", Reason: "missing (the waiver names only result_id 123; its subject is in ResultsDB)"},
	},
	{
		fixture{name: "bare_resultsdb_old_compose_no_compose_id", topic: "org.fedoraproject.prod.taskotron.result.new"},
		FieldError{Topic: "taskotron.result.new", Field: "task.productmd.compose.id", Reason: "missing (a compose result is identified by it)"},
	},
}

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func parseAndTranslate(t testing.TB, f fixture, now time.Time) ([]avro.Record, error) {
	t.Helper()
	m, err := ParseMessage(readFixture(t, f.name), f.topic)
	if err != nil {
		t.Fatalf("ParseMessage(%s): %v", f.name, err)
	}
	return Translate(m, now)
}

// goldenRecord is how a translated record is written to a golden file.
type goldenRecord struct {
	Schema string      `json:"schema"`
	Key    string      `json:"key"`
	Record avro.Record `json:"record"`
}

func TestTranslateGolden(t *testing.T) {
	for _, f := range goldenFixtures {
		t.Run(f.name, func(t *testing.T) {
			recs, err := parseAndTranslate(t, f, testNow)
			if err != nil {
				t.Fatalf("Translate: %v", err)
			}
			out := make([]goldenRecord, len(recs))
			for i, r := range recs {
				out[i] = goldenRecord{Schema: r.SchemaName(), Key: Key(r), Record: r}
			}
			got, err := json.MarshalIndent(out, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			path := filepath.Join("testdata", "golden", f.name+".json")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("records differ from %s (run go test -update and review the diff):\n%s", path, got)
			}
		})
	}
}

func TestTranslateErrorFixtures(t *testing.T) {
	for _, tc := range errorFixtures {
		t.Run(tc.name, func(t *testing.T) {
			recs, err := parseAndTranslate(t, tc.fixture, testNow)
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("Translate = %v, %v; want a *FieldError", recs, err)
			}
			if *fe != tc.want {
				t.Errorf("FieldError = %+v, want %+v", *fe, tc.want)
			}
		})
	}
}

func TestFieldErrorMessage(t *testing.T) {
	err := &FieldError{Topic: "buildsys.tag", Field: "build_id", Reason: "missing"}
	if got, want := err.Error(), `bus: buildsys.tag: field "build_id": missing`; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

// TestDeterministicIDs translates every fixture twice, at different ingest
// times and with the JSON re-indented, and wants the same IDs.
func TestDeterministicIDs(t *testing.T) {
	for _, f := range goldenFixtures {
		t.Run(f.name, func(t *testing.T) {
			a, err := parseAndTranslate(t, f, testNow)
			if err != nil {
				t.Fatal(err)
			}
			var compact bytes.Buffer
			if err := json.Compact(&compact, readFixture(t, f.name)); err != nil {
				t.Fatal(err)
			}
			m, err := ParseMessage(compact.Bytes(), f.topic)
			if err != nil {
				t.Fatal(err)
			}
			b, err := Translate(m, testNow.Add(time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			if len(a) != len(b) {
				t.Fatalf("got %d then %d records", len(a), len(b))
			}
			seen := map[string]bool{}
			for i := range a {
				ida, idb := a[i].Env().ID, b[i].Env().ID
				if ida == "" || ida != idb {
					t.Errorf("record %d: IDs %q and %q", i, ida, idb)
				}
				if seen[ida] {
					t.Errorf("record %d: duplicate ID %q", i, ida)
				}
				seen[ida] = true
			}
		})
	}
}

// TestEventTimeFromMessage checks that no fixture's event time is the
// ingest time: every one of them carries a time of its own.
func TestEventTimeFromMessage(t *testing.T) {
	for _, f := range goldenFixtures {
		recs, err := parseAndTranslate(t, f, testNow)
		if err != nil {
			t.Fatalf("%s: %v", f.name, err)
		}
		for _, r := range recs {
			if env := r.Env(); env.EventTime.Equal(testNow) || !env.IngestTime.Equal(testNow) {
				t.Errorf("%s: event time %v, ingest time %v", f.name, env.EventTime, env.IngestTime)
			}
		}
	}
}

func TestTranslateUnknownTopic(t *testing.T) {
	m, err := ParseMessage([]byte(`{"topic": "org.fedoraproject.prod.bodhi.update.comment", "body": {"x": 1}}`), "")
	if err != nil {
		t.Fatal(err)
	}
	_, err = Translate(m, testNow)
	if !errors.Is(err, ErrUnknownTopic) || !strings.Contains(err.Error(), "bodhi.update.comment") {
		t.Errorf("Translate = %v, want ErrUnknownTopic naming the topic", err)
	}
}

func TestParseMessageMalformed(t *testing.T) {
	for _, tc := range []struct {
		name, data, topic string
	}{
		{"invalid JSON", `{"topic": "buildsys.tag", "body": {`, ""},
		{"not an object", `["buildsys.tag"]`, "buildsys.tag"},
		{"null", `null`, "buildsys.tag"},
		{"bare body without topic", `{"tag": "f40"}`, ""},
		{"body not an object", `{"topic": "buildsys.tag", "body": [1, 2]}`, ""},
		{"msg not an object", `{"topic": "buildsys.tag", "msg": "hello"}`, ""},
		{"empty", ``, "buildsys.tag"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if m, err := ParseMessage([]byte(tc.data), tc.topic); !errors.Is(err, ErrMalformed) {
				t.Errorf("ParseMessage = %+v, %v; want ErrMalformed", m, err)
			}
		})
	}
}

func TestParseMessageForms(t *testing.T) {
	sent := time.Date(2020, 3, 17, 20, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name, data, topic string
		want              Message
	}{
		{
			name: "fedora-messaging",
			data: `{"topic": "org.fedoraproject.prod.buildsys.tag", "id": "abc", "headers": {"sent-at": "2020-03-17T20:00:00+00:00"}, "body": {"tag": "f40"}}`,
			want: Message{Topic: "org.fedoraproject.prod.buildsys.tag", ID: "abc", Time: sent, Body: json.RawMessage(`{"tag": "f40"}`)},
		},
		{
			name: "fedmsg",
			data: `{"topic": "org.fedoraproject.prod.buildsys.tag", "msg_id": "2020-abc", "timestamp": 1584475200.5, "msg": {"tag": "f40"}}`,
			want: Message{Topic: "org.fedoraproject.prod.buildsys.tag", ID: "2020-abc", Time: sent.Add(500 * time.Millisecond), Body: json.RawMessage(`{"tag": "f40"}`)},
		},
		{
			name: "UMB with headers",
			data: `{"topic": "/topic/VirtualTopic.eng.brew.build.tag", "headers": {"message-id": "ID:x-1", "timestamp": "1584475200000"}, "body": {"tag": "f40"}}`,
			want: Message{Topic: "/topic/VirtualTopic.eng.brew.build.tag", ID: "ID:x-1", Time: sent, Body: json.RawMessage(`{"tag": "f40"}`)},
		},
		{
			name: "body as a JSON string",
			data: `{"topic": "buildsys.tag", "id": "abc", "body": "{\"tag\": \"f40\"}"}`,
			want: Message{Topic: "buildsys.tag", ID: "abc", Body: json.RawMessage(`{"tag": "f40"}`)},
		},
		{
			name:  "bare body",
			data:  ` {"tag": "f40"} `,
			topic: "buildsys.tag",
			want:  Message{Topic: "buildsys.tag", Body: json.RawMessage(`{"tag": "f40"}`)},
		},
		{
			name:  "own topic wins over the default",
			data:  `{"topic": "buildsys.untag", "msg": {"tag": "f40"}}`,
			topic: "buildsys.tag",
			want:  Message{Topic: "buildsys.untag", Body: json.RawMessage(`{"tag": "f40"}`)},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseMessage([]byte(tc.data), tc.topic)
			if err != nil {
				t.Fatal(err)
			}
			got.Headers = nil
			if got.Topic != tc.want.Topic || got.ID != tc.want.ID || !got.Time.Equal(tc.want.Time) || string(got.Body) != string(tc.want.Body) {
				t.Errorf("ParseMessage = %+v (body %s), want %+v (body %s)", got, got.Body, tc.want, tc.want.Body)
			}
		})
	}
}

// translateOne parses and translates a hand-written message (these cases
// are synthetic: they cover shapes and values the real fixtures lack).
func translateOne(t *testing.T, data, topic string) []avro.Record {
	t.Helper()
	m, err := ParseMessage([]byte(data), topic)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := Translate(m, testNow)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

func TestTranslateResultDetails(t *testing.T) {
	recs := translateOne(t, `{
		"id": "42", "outcome": "ERROR", "testcase": {"name": "fedora-ci.koji-build.tier0.functional"},
		"submit_time": "2024-05-01T10:00:00.123456",
		"data": {"type": ["brew-build"], "item": ["bash-5.2.26-3.fc41"], "scenario": ["fedora.x86_64.uefi"],
		         "system_architecture": ["x86_64"], "system_variant": ["Server"], "error_reason": ["CI system out of memory"]}
	}`, "org.fedoraproject.prod.resultsdb.result.new")
	r := recs[0].(*avro.TestResult)
	want := avro.TestResult{
		ResultID: "42", Testcase: "fedora-ci.koji-build.tier0.functional", Outcome: avro.OutcomeError,
		Scenario: "fedora.x86_64.uefi", SystemArch: "x86_64", SystemVariant: "Server",
		SubjectType: "koji_build", SubjectID: "bash-5.2.26-3.fc41", ErrorReason: "CI system out of memory",
		SubmitTime: time.Date(2024, 5, 1, 10, 0, 0, 123456000, time.UTC),
	}
	want.Envelope = r.Envelope
	if *r != want {
		t.Errorf("TestResult = %+v, want %+v", *r, want)
	}
	if !r.EventTime.Equal(want.SubmitTime) {
		t.Errorf("EventTime = %v, want the submit time", r.EventTime)
	}

	// Unknown outcomes are passed on verbatim; original_spec_nvr is a
	// koji_build subject.
	recs = translateOne(t, `{"id": 7, "outcome": "SKIPPED", "testcase": "dist.abicheck",
		"data": {"original_spec_nvr": ["glibc-1.0-1.fc27"]}}`, "resultsdb.result.new")
	r = recs[0].(*avro.TestResult)
	if r.Outcome != "SKIPPED" || r.SubjectType != "koji_build" || r.SubjectID != "glibc-1.0-1.fc27" || r.Testcase != "dist.abicheck" {
		t.Errorf("TestResult = %+v", *r)
	}
}

func TestTranslateWaiverScenario(t *testing.T) {
	const base = `"id": 1, "subject_type": "brew-build", "subject_identifier": "bash-5.2.26-3.fc41",
		"testcase": "tc", "product_version": "fedora-41", "waived": true, "username": "u", "timestamp": "2024-05-01T10:00:00"`
	empty := ""
	sc := "x86_64.uefi"
	for _, tc := range []struct {
		name, body string
		want       *string
	}{
		{"absent", `{` + base + `}`, nil},
		{"null", `{` + base + `, "scenario": null}`, nil},
		{"empty", `{` + base + `, "scenario": ""}`, &empty},
		{"set", `{` + base + `, "scenario": "x86_64.uefi"}`, &sc},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := translateOne(t, tc.body, "waiverdb.waiver.new")[0].(*avro.Waiver)
			if (w.Scenario == nil) != (tc.want == nil) || (w.Scenario != nil && *w.Scenario != *tc.want) {
				t.Errorf("Scenario = %v, want %v", w.Scenario, tc.want)
			}
			if w.SubjectType != "koji_build" {
				t.Errorf("SubjectType = %q, want brew-build as koji_build", w.SubjectType)
			}
		})
	}
}

// TestTranslateWaiverSubjectList covers the old shape Greenwave's tests
// used: "subject" as a list, "waived" as a string. One message, two
// subjects: two waivers with IDs <msgid>#1 and <msgid>#2.
func TestTranslateWaiverSubjectList(t *testing.T) {
	recs := translateOne(t, `{"topic": "org.fedoraproject.prod.waiverdb.waiver.new", "msg_id": "2017-x",
		"msg": {"id": 9, "comment": "Because I said so", "username": "foo", "waived": "true",
		"timestamp": "2017-08-10T17:42:04.209638", "product_version": "fedora-26", "testcase": "dist.abicheck",
		"subject": [{"type": "koji_build", "item": "a-1-1.fc26"}, {"productmd.compose.id": "Fedora-26-20170810.n.0"}]}}`, "")
	if len(recs) != 2 {
		t.Fatalf("got %d records, want 2", len(recs))
	}
	for i, want := range [][3]string{{"2017-x#1", "koji_build", "a-1-1.fc26"}, {"2017-x#2", "compose", "Fedora-26-20170810.n.0"}} {
		w := recs[i].(*avro.Waiver)
		if w.ID != want[0] || w.SubjectType != want[1] || w.SubjectID != want[2] || !w.Waived {
			t.Errorf("waiver %d = %+v, want %v", i, *w, want)
		}
	}
}

// TestTranslateLenientTypes covers numbers sent as strings, epochs as
// strings, nulls, and Brew state names in the headers (as Koji's
// protonmsg plugin sends them).
func TestTranslateLenientTypes(t *testing.T) {
	ev := translateOne(t, `{"topic": "org.fedoraproject.stg.buildsys.build.state.change", "msg": {
		"name": "bash", "version": "5.2.26", "release": "3.fc41", "epoch": "1",
		"build_id": "123", "task_id": null, "owner": null, "old": null, "new": "1", "instance": null}}`, "")[0].(*avro.BuildEvent)
	if ev.Epoch != "1" || ev.BuildID != 123 || ev.TaskID != 0 || ev.Owner != "" || ev.OldState != "" ||
		ev.State != avro.StateComplete || ev.Instance != "primary" || ev.Source != "koji/primary" {
		t.Errorf("BuildEvent = %+v", *ev)
	}

	ev = translateOne(t, `{"topic": "/topic/VirtualTopic.eng.brew.build.failed",
		"headers": {"message-id": "ID:1", "old": "BUILDING", "new": "FAILED", "timestamp": 1490978317000},
		"body": {"info": {"name": "x", "version": "1", "release": "1.el9", "id": 5, "owner": 17}}}`, "")[0].(*avro.BuildEvent)
	if ev.State != avro.StateFailed || ev.OldState != avro.StateBuilding || ev.BuildID != 5 || ev.Owner != "" || ev.ID != "ID:1" ||
		!ev.EventTime.Equal(time.Unix(1490978317, 0)) {
		t.Errorf("BuildEvent = %+v", *ev)
	}
}

func TestTranslateFieldErrors(t *testing.T) {
	for _, tc := range []struct {
		name, data string
		want       FieldError
	}{
		{"tag without tag", `{"topic": "buildsys.tag", "msg": {"name": "a", "version": "1", "release": "1", "tag": null}}`,
			FieldError{"buildsys.tag", "tag", "missing"}},
		{"state change without new", `{"topic": "buildsys.build.state.change", "msg": {"name": "a", "version": "1", "release": "1"}}`,
			FieldError{"buildsys.build.state.change", "new", "missing"}},
		{"unknown build state", `{"topic": "buildsys.build.state.change", "msg": {"name": "a", "version": "1", "release": "1", "new": 9}}`,
			FieldError{"buildsys.build.state.change", "new", "unknown build state 9"}},
		{"ill-typed name", `{"topic": "buildsys.untag", "msg": {"name": ["a"], "version": "1", "release": "1", "tag": "f40"}}`,
			FieldError{"buildsys.untag", "name", "not a string"}},
		{"empty version", `{"topic": "buildsys.tag", "msg": {"name": "a", "version": "", "release": "1", "tag": "f40"}}`,
			FieldError{"buildsys.tag", "version", "empty"}},
		{"sign without rpm arch", `{"topic": "buildsys.rpm.sign", "msg": {"sigkey": "a15b79cc", "rpm": {"name": "a", "version": "1", "release": "1"}}}`,
			FieldError{"buildsys.rpm.sign", "rpm.arch", "missing"}},
		{"brew tag without build", `{"topic": "/topic/VirtualTopic.eng.brew.build.tag", "msg": {"tag": {"name": "t"}}}`,
			FieldError{"brew.build.tag", "build", "missing"}},
		{"result without outcome", `{"topic": "resultsdb.result.new", "msg": {"id": 1, "testcase": {"name": "t"}, "data": {"item": ["x"], "type": ["koji_build"]}}}`,
			FieldError{"resultsdb.result.new", "outcome", "missing"}},
		{"result without item", `{"topic": "resultsdb.result.new", "msg": {"id": 1, "outcome": "PASSED", "testcase": {"name": "t"}, "data": {"type": ["bodhi_update"]}}}`,
			FieldError{"resultsdb.result.new", "data.item", "missing"}},
		{"waiver with waived as a number", `{"topic": "waiverdb.waiver.new", "msg": {"id": 1, "subject_type": "koji_build", "subject_identifier": "a-1-1", "testcase": "t", "product_version": "p", "waived": 1}}`,
			FieldError{"waiverdb.waiver.new", "waived", "not a boolean"}},
		{"compose without status", `{"topic": "pungi.compose.status.change", "msg": {"compose_id": "Fedora-Rawhide-20240101.n.0"}}`,
			FieldError{"pungi.compose.status.change", "status", "missing"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := ParseMessage([]byte(tc.data), "")
			if err != nil {
				t.Fatal(err)
			}
			recs, err := Translate(m, testNow)
			var fe *FieldError
			if !errors.As(err, &fe) || *fe != tc.want {
				t.Errorf("Translate = %v, %v; want %v", recs, err, &tc.want)
			}
		})
	}
}

func TestParseUnix(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"1490891323.0", time.Unix(1490891323, 0), true},
		{"1359603469.2116399", time.Unix(1359603469, 211639900), true},
		{"1529352189165", time.Unix(1529352189, 165000000), true},
		{"1.4e9", time.Unix(1400000000, 0), true},
		{"-1", time.Time{}, false},
		{"NOW", time.Time{}, false},
		{"1e300", time.Time{}, false},
	} {
		got, ok := parseUnix(tc.in)
		if ok != tc.ok || !got.Equal(tc.want) {
			t.Errorf("parseUnix(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestKeyUnknownRecord(t *testing.T) {
	if got := Key(nil); got != "" {
		t.Errorf("Key(nil) = %q", got)
	}
}

func TestParseMessageDefaultTopicForEnvelopeWithoutTopic(t *testing.T) {
	m, err := ParseMessage([]byte(`{"id": "abc", "headers": {}, "body": {"tag": "f40"}}`), "buildsys.tag")
	if err != nil {
		t.Fatal(err)
	}
	if m.Topic != "buildsys.tag" || m.ID != "abc" || string(m.Body) != `{"tag": "f40"}` {
		t.Errorf("ParseMessage = %+v (body %s)", m, m.Body)
	}
}
