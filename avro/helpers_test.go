package avro

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/linkedin/goavro/v2"
)

var update = flag.Bool("update", false, "rewrite golden files and missing version samples")

func ts(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

func strp(s string) *string { return &s }

func sampleEnvelope(id, source string) Envelope {
	return Envelope{
		ID:         id,
		Source:     source,
		EventTime:  ts("2024-05-01T12:00:00.123456Z"),
		IngestTime: ts("2024-05-01T12:00:01.5Z"),
		Origin: Origin{
			Topic:     "org.fedoraproject.prod.buildsys.build.state.change",
			MessageID: "8f2a6f0e-3c1b-4b9e-9a55-2b8f3f4e0c11",
		},
	}
}

func sampleRequirements() []Requirement {
	return []Requirement{
		{Type: "test-result-passed", Testcase: "fedora-ci.koji-build.tier0.functional", SubjectType: "koji_build",
			SubjectID: "bash-5.2.26-3.fc41", ResultID: "123456", Source: "fedora-ci-policy"},
		{Type: "test-result-missing", Testcase: "fedora-ci.koji-build.rpminspect.static-analysis",
			Scenario: "fedora.x86_64", SystemArch: "x86_64", SystemVariant: "Everything", Pending: true,
			Source: "fedora-ci-policy", Detail: "queued", WaiverID: "77"},
	}
}

func sampleDecision(id string) Decision {
	return Decision{
		Envelope:      sampleEnvelope(id, "factory2/gating"),
		PolicyVersion: "sha256:5d41402abc4b2a76b9719d911017c592",
		DerivedFrom:   []string{"koji-1", "resultsdb-2", "waiverdb-3"},
		Satisfied:     sampleRequirements()[:1],
		Unsatisfied:   sampleRequirements()[1:],
	}
}

// realisticBuildEvent is the benchmark's BuildEvent: every envelope field,
// eight artifacts, a few buildroot entries.
func realisticBuildEvent() *BuildEvent {
	arches := []string{"src", "x86_64", "x86_64", "x86_64", "aarch64", "aarch64", "noarch", "noarch"}
	var arts []Artifact
	for i, a := range arches {
		arts = append(arts, Artifact{
			ID:   fmt.Sprint(38000000 + i),
			Name: fmt.Sprintf("bash%s-5.2.26-3.fc41.%s.rpm", []string{"", "", "-devel", "-doc"}[i%4], a),
			Type: "rpm",
			Arch: a,
		})
	}
	return &BuildEvent{
		Envelope:       sampleEnvelope("koji-primary-2431234-state-1", "koji/primary"),
		Kind:           BuildStateChange,
		NVR:            "bash-5.2.26-3.fc41",
		Name:           "bash",
		Version:        "5.2.26",
		Release:        "3.fc41",
		Epoch:          "0",
		BuildID:        2431234,
		TaskID:         117654321,
		Owner:          "siteshwar",
		Instance:       "primary",
		State:          StateComplete,
		OldState:       StateBuilding,
		Tag:            "f41-updates-candidate",
		TagUser:        "bodhi",
		CreationTime:   ts("2024-05-01T11:02:03.000004Z"),
		CompletionTime: ts("2024-05-01T11:58:00Z"),
		SourceURL:      "git+https://src.fedoraproject.org/rpms/bash.git#4c2a0b1",
		SourceCommit:   "4c2a0b1e9f7d3a6b8c5e2f1d0a9b8c7d6e5f4a3b",
		Artifacts:      arts,
		Buildroot:      []string{"gcc-14.1.1-1.fc41", "glibc-2.39.9-1.fc41", "ncurses-6.4-12.fc41", "readline-8.2-8.fc41", "bison-3.8.2-8.fc41"},
	}
}

// fullSamples has one fully populated record per type name.
func fullSamples() map[string]Record {
	return map[string]Record{
		"build": realisticBuildEvent(),
		"sign": &SignEvent{
			Envelope: sampleEnvelope("koji-rpm-sign-1", "koji/primary"), NVR: "bash-5.2.26-3.fc41", BuildID: 2431234,
			SigKey: "a15b79cc", SigHash: "e3b0c442", Artifacts: realisticBuildEvent().Artifacts[:1],
			Signer: "robosignatory", Outcome: SignSigned, Instance: "primary",
		},
		"test_result": &TestResult{
			Envelope: sampleEnvelope("resultsdb-123456", "resultsdb"), ResultID: "123456",
			Testcase: "fedora-ci.koji-build.tier0.functional", Outcome: OutcomeError, Scenario: "fedora.x86_64",
			SystemArch: "x86_64", SystemVariant: "Everything", SubjectType: "koji_build", SubjectID: "bash-5.2.26-3.fc41",
			RefURL: "https://ci.example.org/job/1", Note: "infra flake ☃", ErrorReason: "runner lost",
			SubmitTime: ts("2024-05-01T12:30:00.000001Z"),
		},
		"waiver": &Waiver{
			Envelope: sampleEnvelope("waiverdb-77", "waiverdb"), WaiverID: "77", SubjectType: "koji_build",
			SubjectID: "bash-5.2.26-3.fc41", Testcase: "fedora-ci.koji-build.tier0.functional", Scenario: strp(""),
			ProductVersion: "fedora-41", Waived: true, User: "alice", ProxiedBy: "bodhi", Comment: "known issue",
		},
		"remote_rule_file": &RemoteRuleFile{
			Envelope: sampleEnvelope("rrf-1", "factory2/fetcher"), SubjectType: "koji_build", SubjectID: "bash-5.2.26-3.fc41",
			SourceURL: "https://src.fedoraproject.org/rpms/bash", SourceCommit: "4c2a0b1", Path: "gating.yaml",
			Content: "--- !Policy\nid: test\nrules: []\n", Missing: true, FetchError: "timeout",
		},
		"compose": &ComposeEvent{
			Envelope: sampleEnvelope("pungi-1", "pungi"), Kind: ComposeDefinition, ComposeID: "Fedora-Rawhide-20240501.n.0",
			Status: ComposeFinishedIncomplete, Location: "https://kojipkgs.fedoraproject.org/compose/rawhide/x",
			Release: "Fedora-Rawhide",
			Contents: []ComposeItem{
				{SubjectType: "koji_build", SubjectID: "bash-5.2.26-3.fc41", Variant: "Everything", Arch: "x86_64"},
				{SubjectType: "redhat-container-image", SubjectID: "fedora-toolbox-41-1"},
			},
			ProductVersion:   "fedora-rawhide",
			SourceTags:       []string{"f42-signing-pending", "f42"},
			PackagesAllow:    []string{"bash*", "kernel"},
			PackagesDeny:     []string{"*-debuginfo"},
			SigningKey:       "105ef944",
			DecisionContexts: []string{"bodhi_update_push_stable", "compose_gate"},
			Cadence:          ComposeCadence{MinIntervalMS: 3600000, WindowStart: "22:00", WindowEnd: "04:00"},
			Retired:          true,
		},
		"gating_decision": &GatingDecision{
			Decision: sampleDecision("gate-1"), SubjectType: "koji_build", SubjectID: "bash-5.2.26-3.fc41",
			DecisionContext: "bodhi_update_push_stable", ProductVersion: "fedora-41", PoliciesSatisfied: true,
			Summary: "All required tests passed", AppliedPolicies: []string{"fedora-ci", "openqa"},
			Previous: &PreviousGating{
				PoliciesSatisfied: false, Summary: "Of 2 required tests, 1 result missing",
				Satisfied: sampleRequirements()[:1], Unsatisfied: sampleRequirements()[1:],
			},
		},
		"autosign": &AutosignDecision{
			Decision: sampleDecision("autosign-1"), Action: AutosignSign, NVR: "bash-5.2.26-3.fc41", BuildID: 2431234,
			Key: "fedora-41", KeyID: "a15b79cc", FromTag: "f41-signing-pending", ToTag: "f41-updates-testing-pending",
			Unsigned: realisticBuildEvent().Artifacts[:3], IdempotencyKey: "bash-5.2.26-3.fc41/a15b79cc",
			Priority: -3, Rule: "f41",
		},
		"signed_status": &SignedStatus{
			Decision: sampleDecision("signed-1"), NVR: "bash-5.2.26-3.fc41", BuildID: 2431234, KeyID: "a15b79cc",
			Signed: true, Artifacts: realisticBuildEvent().Artifacts,
		},
		"compose_ready": &ComposeReadyDecision{
			Decision: sampleDecision("ready-1"), ComposeID: "Fedora-Rawhide-20240501.n.0", Ready: true,
			DecisionContext: "compose_gate", ProductVersion: "fedora-rawhide", Summary: "ready",
			Kind: ComposeReady, Status: ComposeFinished,
			ContentDigest: "sha256:9f86d081884c7d659a2feaa0c55ad015", Members: 2,
			BlockerCounts: []BlockerCount{{Type: "build-unsigned", Count: 3}, {Type: "test-result-missing", Count: 12}},
			Manifest: []ManifestEntry{
				{NVR: "bash-5.2.26-3.fc41", Package: "bash", KeyID: "105ef944", DecisionIDs: []string{"gate-1", "gate-2"}},
				{NVR: "kernel-6.9.0-1.fc41", Package: "kernel", DecisionIDs: []string{"gate-3"}},
			},
		},
		"rebuild": &RebuildDecision{
			Decision: sampleDecision("rebuild-1"), SubjectType: "redhat-container-image", SubjectID: "toolbox-41-1",
			TriggerType: "koji_build", TriggerID: "bash-5.2.26-3.fc41", Relation: "ContainerIncludesRPM",
			Reason: "bash changed", Priority: 2147483647,
		},
		"dependency_edge": &DependencyEdge{
			Envelope: sampleEnvelope("edge-1", "koji/primary"),
			FromType: "container", FromID: "fedora-toolbox-42-1", Relation: RelIncludes,
			ToType: "rpm", ToID: "bash-5.2.26-3.fc41.x86_64", Removed: true,
		},
		"compose_member": &ComposeMember{
			Envelope: sampleEnvelope("member-1", "factory2/compose-members"), ComposeID: "Fedora-Rawhide-20240501.n.0",
			NVR: "bash-5.2.26-3.fc41", Package: "bash", BuildID: 2431234, State: StateComplete, Seq: 7,
			Tags: []MemberTag{
				{Tag: "f42-signing-pending", Order: 1714564800123456, EventID: "koji-primary-2431234-tag-1"},
				{Tag: "f42", Order: 1714568400000000, EventID: "koji-primary-2431234-tag-2"},
			},
			SignedKeys: []string{"105ef944", "a15b79cc"},
			Gating: []MemberGating{
				{DecisionContext: "bodhi_update_push_stable", ProductVersion: "fedora-42", Satisfied: true,
					DecisionID: "gate-1", Summary: "All required tests passed"},
				{DecisionContext: "compose_gate", ProductVersion: "fedora-rawhide", Pending: true,
					DecisionID: "gate-2", Summary: "1 of 2 required test results missing"},
			},
			// A marker carries no build; set here so the round trips cover them.
			DefinitionID: "definition-1", Partition: 3,
		},
	}
}

func typeNames() []string {
	var out []string
	for _, rt := range builtin.types {
		out = append(out, rt.typeName)
	}
	return out
}

func mustCodec(t testing.TB, opts ...Opt) *Codec {
	t.Helper()
	c, err := NewCodec(opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustEqual(t testing.TB, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		gj, _ := json.MarshalIndent(got, "", " ")
		wj, _ := json.MarshalIndent(want, "", " ")
		t.Fatalf("%s: mismatch\n got: %s\nwant: %s", what, gj, wj)
	}
}

// --- random records (reflection is fine in tests) ---

var timeType = reflect.TypeFor[time.Time]()

var randRunes = []rune("abcXYZ09 -_./:\"\\\n\téü日本☃🚀\u0000")

func randString(rng *rand.Rand) string {
	n := rng.IntN(14)
	if rng.IntN(5) == 0 {
		n = 0
	} else if rng.IntN(20) == 0 {
		n = 100 + rng.IntN(300) // multi-byte length varints
	}
	var b strings.Builder
	for range n {
		b.WriteRune(randRunes[rng.IntN(len(randRunes))])
	}
	return b.String()
}

func randInt64(rng *rand.Rand) int64 {
	switch rng.IntN(4) {
	case 0:
		return 0
	case 1:
		return rng.Int64N(200) - 100
	case 2:
		return int64(rng.Uint64()) // any, including negative extremes
	default:
		return rng.Int64N(1 << 40)
	}
}

// Years 1..9999: the range encoding/json can write.
var minRandMicro, maxRandMicro = ts("0001-01-01T00:00:01Z").UnixMicro(), ts("9999-12-31T23:59:59Z").UnixMicro()

func randTime(rng *rand.Rand) time.Time {
	switch rng.IntN(4) {
	case 0:
		return time.Time{}
	case 1:
		return time.UnixMicro(rng.Int64N(4e15)).UTC() // around now
	default:
		return time.UnixMicro(minRandMicro + rng.Int64N(maxRandMicro-minRandMicro)).UTC()
	}
}

func fillRandom(rng *rand.Rand, v reflect.Value) {
	switch v.Kind() {
	case reflect.Struct:
		if v.Type() == timeType {
			v.Set(reflect.ValueOf(randTime(rng)))
			return
		}
		for i := range v.NumField() {
			fillRandom(rng, v.Field(i))
		}
	case reflect.String:
		v.SetString(randString(rng))
	case reflect.Int64:
		v.SetInt(randInt64(rng))
	case reflect.Int32:
		v.SetInt(int64(int32(randInt64(rng))))
	case reflect.Bool:
		v.SetBool(rng.IntN(2) == 1)
	case reflect.Slice:
		n := rng.IntN(5)
		if n == 0 {
			return // nil: Avro has no nil/empty distinction, decode gives nil
		}
		s := reflect.MakeSlice(v.Type(), n, n)
		for i := range n {
			fillRandom(rng, s.Index(i))
		}
		v.Set(s)
	case reflect.Pointer:
		if rng.IntN(3) == 0 {
			return
		}
		p := reflect.New(v.Type().Elem())
		fillRandom(rng, p.Elem())
		v.Set(p)
	default:
		panic("fillRandom: unhandled " + v.Kind().String())
	}
}

func randomRecord(rng *rand.Rand, rt *recordType) Record {
	r := rt.newRecord()
	fillRandom(rng, reflect.ValueOf(r).Elem())
	return r
}

// --- the goavro oracle: Go struct ⇄ goavro native, through encoding/json
// and the schema, sharing no code with the hand-written fast path. The
// struct's json names are the Avro field names; the "envelope" record
// field is the embedded Envelope, flattened in JSON. ---

// jsonObject is the encoding/json form of r as a generic object.
func jsonObject(t testing.TB, r any) map[string]any {
	t.Helper()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

func branchName(s *schema) string {
	if s.named() {
		return s.name
	}
	if s.logical != "" {
		return s.kind.String() + "." + s.logical
	}
	return s.kind.String()
}

// toNative converts a JSON value (from jsonObject) into goavro's native
// form for schema s.
func toNative(s *schema, v any) (any, error) {
	switch s.kind {
	case kindRecord:
		obj, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s: not an object: %v", s.name, v)
		}
		out := map[string]any{}
		for _, f := range s.fields {
			fv, ok := obj[f.name]
			if f.name == "envelope" {
				fv, ok = obj, true
			}
			if !ok || (fv == nil && f.typ.kind != kindUnion) {
				if !f.hasDef {
					return nil, fmt.Errorf("%s.%s: missing and no default", s.name, f.name)
				}
				fv = f.def
			}
			nv, err := toNative(f.typ, fv)
			if err != nil {
				return nil, fmt.Errorf("%s.%s: %w", s.name, f.name, err)
			}
			out[f.name] = nv
		}
		return out, nil
	case kindUnion:
		if v == nil {
			return nil, nil
		}
		for _, b := range s.branches {
			if b.kind == kindNull {
				continue
			}
			if b.logical == "timestamp-micros" {
				if str, ok := v.(string); ok {
					t, err := time.Parse(time.RFC3339Nano, str)
					if err != nil {
						return nil, err
					}
					if t.IsZero() {
						return nil, nil
					}
					return map[string]any{branchName(b): t}, nil
				}
			}
			nv, err := toNative(b, v)
			if err == nil {
				return map[string]any{branchName(b): nv}, nil
			}
		}
		return nil, fmt.Errorf("no union branch for %v", v)
	case kindArray:
		l, ok := v.([]any)
		if !ok {
			return nil, fmt.Errorf("not a list: %v", v)
		}
		out := make([]any, len(l))
		for i, x := range l {
			nv, err := toNative(s.items, x)
			if err != nil {
				return nil, err
			}
			out[i] = nv
		}
		return out, nil
	case kindString:
		str, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("not a string: %v", v)
		}
		return str, nil
	case kindLong, kindInt:
		n, ok := v.(json.Number)
		if !ok {
			return nil, fmt.Errorf("not a number: %v", v)
		}
		i, err := n.Int64()
		if s.kind == kindInt {
			return int32(i), err
		}
		return i, err
	case kindBoolean:
		b, ok := v.(bool)
		if !ok {
			return nil, fmt.Errorf("not a boolean: %v", v)
		}
		return b, nil
	}
	return nil, fmt.Errorf("toNative: unhandled %s", s.typeName())
}

// fromNative converts goavro's native form of schema s into a JSON value
// that encoding/json decodes into the Go struct.
func fromNative(s *schema, v any) (any, error) {
	switch s.kind {
	case kindRecord:
		m, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s: not a map: %T", s.name, v)
		}
		out := map[string]any{}
		for _, f := range s.fields {
			fv, err := fromNative(f.typ, m[f.name])
			if err != nil {
				return nil, fmt.Errorf("%s.%s: %w", s.name, f.name, err)
			}
			if f.name == "envelope" {
				for k, x := range fv.(map[string]any) {
					out[k] = x
				}
				continue
			}
			if fv != nil {
				out[f.name] = fv
			}
		}
		return out, nil
	case kindUnion:
		if v == nil {
			return nil, nil
		}
		m, ok := v.(map[string]any)
		if !ok || len(m) != 1 {
			return nil, fmt.Errorf("union: %v", v)
		}
		for _, b := range s.branches {
			if x, ok := m[branchName(b)]; ok {
				return fromNative(b, x)
			}
		}
		return nil, fmt.Errorf("union: no branch for %v", v)
	case kindArray:
		l, ok := v.([]any)
		if !ok {
			return nil, fmt.Errorf("array: %T", v)
		}
		if len(l) == 0 {
			return nil, nil
		}
		out := make([]any, len(l))
		for i, x := range l {
			nv, err := fromNative(s.items, x)
			if err != nil {
				return nil, err
			}
			out[i] = nv
		}
		return out, nil
	case kindLong:
		if t, ok := v.(time.Time); ok {
			return t.Format(time.RFC3339Nano), nil
		}
	}
	return v, nil
}

// goavroCodec compiles schema text with goavro.
func goavroCodec(t testing.TB, text string) *goavro.Codec {
	t.Helper()
	c, err := goavro.NewCodec(text)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// goavroEncode encodes r's JSON form with goavro under schema (s, text).
func goavroEncode(t testing.TB, s *schema, gc *goavro.Codec, r any) []byte {
	t.Helper()
	native, err := toNative(s, jsonObject(t, r))
	if err != nil {
		t.Fatal(err)
	}
	b, err := gc.BinaryFromNative(nil, native)
	if err != nil {
		t.Fatalf("goavro encode: %v", err)
	}
	return b
}

// goavroDecodeInto decodes body with goavro and fills a new record of
// type rt from it (via JSON, rejecting unknown fields).
func goavroDecodeInto(t testing.TB, s *schema, gc *goavro.Codec, rt *recordType, body []byte) Record {
	t.Helper()
	native, rest, err := gc.NativeFromBinary(body)
	if err != nil {
		t.Fatalf("goavro decode: %v", err)
	}
	if len(rest) != 0 {
		t.Fatalf("goavro decode: %d trailing bytes", len(rest))
	}
	obj, err := fromNative(s, native)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	r := rt.newRecord()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(r); err != nil {
		t.Fatalf("goavro value into %T: %v", r, err)
	}
	return r
}

// soe frames an Avro body as a single-object encoding.
func soe(fp uint64, body []byte) []byte {
	out := []byte{0xC3, 0x01, 0, 0, 0, 0, 0, 0, 0, 0}
	for i := range 8 {
		out[2+i] = byte(fp >> (8 * i))
	}
	return append(out, body...)
}
