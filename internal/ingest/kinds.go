package ingest

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/factory2/factory2/avro"
)

// Kind is an event type that can be written with flags, one flag per
// essential field (`factory2 emit build --nvr N --state COMPLETE`). For
// anything more, write the event as JSON.
type Kind struct {
	// Name is the event's JSON type name, e.g. "build".
	Name string
	// Aliases are other names the CLI accepts for it.
	Aliases []string
	// Short describes the kind in one line.
	Short string
	// Example is a sample command line, without the program name.
	Example string
	// Fields are its flags, in the order help lists them.
	Fields []Field

	newRecord func() avro.Record
}

// Field is one flag of a Kind.
type Field struct {
	// Name is the JSON field it sets (or, for content_file, reads into).
	Name string
	// Usage says what it is, for --help.
	Usage string
	// Default is applied when the flag is not given; "" for none.
	Default string
	// Repeated fields may be given more than once.
	Repeated bool
	// Bool fields take true or false; a bare --flag means true.
	Bool bool

	set func(r avro.Record, v string) error
}

// Flag is the field's flag name, without dashes.
func (f Field) Flag() string { return FlagName(f.Name) }

// FlagName is the flag that sets the JSON field name: "subject_id" is set
// by --subject-id.
func FlagName(field string) string { return strings.ReplaceAll(field, "_", "-") }

// Build returns the event of kind k with values set: values maps a field
// name to the values given for it, in order (one, unless Repeated).
// Fields not in values take their Default. Build fills no envelope
// defaults and checks only the syntax of values: pass the result to
// Parser.Records.
func (k Kind) Build(values map[string][]string) (avro.Record, error) {
	rec := k.newRecord()
	known := map[string]bool{}
	for _, f := range k.Fields {
		known[f.Name] = true
		vs, given := values[f.Name]
		if !given && f.Default != "" {
			vs = []string{f.Default}
		}
		if len(vs) > 1 && !f.Repeated {
			return nil, &InputError{Type: k.Name, Field: f.Name, Err: fmt.Errorf("given %d times, allowed once", len(vs))}
		}
		for _, v := range vs {
			if err := f.set(rec, v); err != nil {
				return nil, &InputError{Type: k.Name, Field: f.Name, Err: err}
			}
		}
	}
	for name := range values {
		if !known[name] {
			return nil, &InputError{Type: k.Name, Field: name, Err: fmt.Errorf("not a field of %s", k.Name)}
		}
	}
	return rec, nil
}

// Kinds returns every kind that can be written with flags, in a fixed
// order.
func Kinds() []Kind {
	kinds := []Kind{buildKind(), signKind(), testResultKind(), waiverKind(), ruleFileKind(), composeKind()}
	for i := range kinds {
		kinds[i].Fields = append(envelopeFields(), kinds[i].Fields...)
	}
	return kinds
}

// LookupKind finds a kind by name or alias.
func LookupKind(name string) (Kind, bool) {
	for _, k := range Kinds() {
		if k.Name == name {
			return k, true
		}
		for _, a := range k.Aliases {
			if a == name {
				return k, true
			}
		}
	}
	return Kind{}, false
}

func envelopeFields() []Field {
	return []Field{
		{Name: "id", Usage: "event id, the idempotency key (default: a hash of the event)", set: func(r avro.Record, v string) error {
			r.Env().ID = v
			return nil
		}},
		{Name: "event_time", Usage: "when the event happened, RFC 3339 (required unless --event-time-now)", set: func(r avro.Record, v string) error {
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return fmt.Errorf("%q is not an RFC 3339 time such as 2026-01-02T15:04:05Z", v)
			}
			r.Env().EventTime = t.UTC()
			return nil
		}},
	}
}

// Typed setters. Each returns a set func for a field of record type R.

func str[R avro.Record](p func(R) *string) func(avro.Record, string) error {
	return func(r avro.Record, v string) error { *p(r.(R)) = v; return nil }
}

func integer[R avro.Record](p func(R) *int64) func(avro.Record, string) error {
	return func(r avro.Record, v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Errorf("%q is not an integer", v)
		}
		*p(r.(R)) = n
		return nil
	}
}

func boolean[R avro.Record](p func(R) *bool) func(avro.Record, string) error {
	return func(r avro.Record, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("%q is not true or false", v)
		}
		*p(r.(R)) = b
		return nil
	}
}

// parseSpec parses "FIRST[,key=value]...", checking keys against allowed.
func parseSpec(v string, allowed ...string) (string, map[string]string, error) {
	parts := strings.Split(v, ",")
	first, kv := strings.TrimSpace(parts[0]), map[string]string{}
	if first == "" {
		return "", nil, fmt.Errorf("%q: empty", v)
	}
	for _, p := range parts[1:] {
		k, val, ok := strings.Cut(p, "=")
		k = strings.TrimSpace(k)
		if !ok || !slices.Contains(allowed, k) {
			return "", nil, fmt.Errorf("%q: %q is not one of %s=VALUE", v, p, strings.Join(allowed, "=, "))
		}
		kv[k] = strings.TrimSpace(val)
	}
	return first, kv, nil
}

func artifact(v string) (avro.Artifact, error) {
	name, kv, err := parseSpec(v, "type", "arch", "id")
	if err != nil {
		return avro.Artifact{}, err
	}
	a := avro.Artifact{Name: name, Type: kv["type"], Arch: kv["arch"], ID: kv["id"]}
	if a.Type == "" {
		a.Type = "rpm"
	}
	return a, nil
}

const artifactUsage = "an artifact as NAME[,type=T][,arch=A][,id=I] (type defaults to rpm); repeat for more"

func buildKind() Kind {
	type R = *avro.BuildEvent
	return Kind{
		Name:      "build",
		Short:     "A build state change, tag or untag (to events.build)",
		Example:   "emit build --source koji/primary --event-time 2026-01-02T15:04:05Z --nvr bash-5.2.26-3.fc41 --state COMPLETE --build-id 2510000",
		newRecord: func() avro.Record { return new(avro.BuildEvent) },
		Fields: []Field{
			{Name: "nvr", Usage: "name-version-release of the build (required)", set: str(func(r R) *string { return &r.NVR })},
			{Name: "kind", Usage: "state_change, tag or untag", Default: avro.BuildStateChange, set: str(func(r R) *string { return &r.Kind })},
			{Name: "state", Usage: "the build's state: BUILDING, COMPLETE, DELETED, FAILED, CANCELED (required for state_change)", set: str(func(r R) *string { return &r.State })},
			{Name: "old_state", Usage: "the build's state before the change", set: str(func(r R) *string { return &r.OldState })},
			{Name: "tag", Usage: "the tag (required for tag and untag)", set: str(func(r R) *string { return &r.Tag })},
			{Name: "tag_user", Usage: "who tagged or untagged", set: str(func(r R) *string { return &r.TagUser })},
			{Name: "build_id", Usage: "the build system's build id", set: integer(func(r R) *int64 { return &r.BuildID })},
			{Name: "task_id", Usage: "the build system's task id", set: integer(func(r R) *int64 { return &r.TaskID })},
			{Name: "owner", Usage: "the build's owner", set: str(func(r R) *string { return &r.Owner })},
			{Name: "instance", Usage: "build system instance, e.g. primary", set: str(func(r R) *string { return &r.Instance })},
			{Name: "source_url", Usage: "SCM URL the build was built from", set: str(func(r R) *string { return &r.SourceURL })},
			{Name: "source_commit", Usage: "SCM commit the build was built from", set: str(func(r R) *string { return &r.SourceCommit })},
			{Name: "artifacts", Usage: artifactUsage, Repeated: true, set: func(r avro.Record, v string) error {
				a, err := artifact(v)
				r.(R).Artifacts = append(r.(R).Artifacts, a)
				return err
			}},
		},
	}
}

func signKind() Kind {
	type R = *avro.SignEvent
	return Kind{
		Name:      "sign",
		Short:     "Artifacts of a build signed with a key (to events.sign)",
		Example:   "emit sign --source robosignatory --event-time 2026-01-02T15:04:05Z --nvr bash-5.2.26-3.fc41 --sigkey a15b79cc --artifacts bash-5.2.26-3.fc41.x86_64.rpm,arch=x86_64",
		newRecord: func() avro.Record { return new(avro.SignEvent) },
		Fields: []Field{
			{Name: "nvr", Usage: "name-version-release of the build (required)", set: str(func(r R) *string { return &r.NVR })},
			{Name: "sigkey", Usage: "the signing key id, e.g. a15b79cc (required)", set: str(func(r R) *string { return &r.SigKey })},
			{Name: "outcome", Usage: "signed or failed", Default: avro.SignSigned, set: str(func(r R) *string { return &r.Outcome })},
			{Name: "artifacts", Usage: artifactUsage, Repeated: true, set: func(r avro.Record, v string) error {
				a, err := artifact(v)
				r.(R).Artifacts = append(r.(R).Artifacts, a)
				return err
			}},
			{Name: "build_id", Usage: "the build system's build id", set: integer(func(r R) *int64 { return &r.BuildID })},
			{Name: "sighash", Usage: "the signature's hash", set: str(func(r R) *string { return &r.SigHash })},
			{Name: "signer", Usage: "who signed", set: str(func(r R) *string { return &r.Signer })},
			{Name: "instance", Usage: "build system instance, e.g. primary", set: str(func(r R) *string { return &r.Instance })},
		},
	}
}

const subjectTypeUsage = "subject type, e.g. koji_build, compose, redhat-module"

func testResultKind() Kind {
	type R = *avro.TestResult
	return Kind{
		Name:      "test_result",
		Aliases:   []string{"test-result", "result"},
		Short:     "A test result (to events.test)",
		Example:   "emit test_result --source resultsdb --event-time 2026-01-02T15:04:05Z --subject-id bash-5.2.26-3.fc41 --testcase fedora-ci.koji-build.tier0.functional --outcome PASSED",
		newRecord: func() avro.Record { return new(avro.TestResult) },
		Fields: []Field{
			{Name: "subject_type", Usage: subjectTypeUsage, Default: "koji_build", set: str(func(r R) *string { return &r.SubjectType })},
			{Name: "subject_id", Usage: "subject identifier, e.g. the NVR (required)", set: str(func(r R) *string { return &r.SubjectID })},
			{Name: "testcase", Usage: "test case name (required)", set: str(func(r R) *string { return &r.Testcase })},
			{Name: "outcome", Usage: "PASSED, INFO, FAILED, NEEDS_INSPECTION, ERROR, QUEUED or RUNNING (required)", set: str(func(r R) *string { return &r.Outcome })},
			{Name: "scenario", Usage: "test scenario", set: str(func(r R) *string { return &r.Scenario })},
			{Name: "system_arch", Usage: "system architecture", set: str(func(r R) *string { return &r.SystemArch })},
			{Name: "system_variant", Usage: "system variant", set: str(func(r R) *string { return &r.SystemVariant })},
			{Name: "result_id", Usage: "the result's id in the result store (default: the event id)", set: str(func(r R) *string { return &r.ResultID })},
			{Name: "ref_url", Usage: "URL of the test run", set: str(func(r R) *string { return &r.RefURL })},
			{Name: "note", Usage: "free text", set: str(func(r R) *string { return &r.Note })},
		},
	}
}

func waiverKind() Kind {
	type R = *avro.Waiver
	return Kind{
		Name:      "waiver",
		Short:     "A waiver, or with --waived=false an unwaiver (to events.test)",
		Example:   "emit waiver --source waiverdb --event-time 2026-01-02T15:04:05Z --subject-id bash-5.2.26-3.fc41 --testcase fedora-ci.koji-build.tier0.functional --product-version fedora-41 --comment 'known flake'",
		newRecord: func() avro.Record { return new(avro.Waiver) },
		Fields: []Field{
			{Name: "subject_type", Usage: subjectTypeUsage, Default: "koji_build", set: str(func(r R) *string { return &r.SubjectType })},
			{Name: "subject_id", Usage: "subject identifier, e.g. the NVR (required)", set: str(func(r R) *string { return &r.SubjectID })},
			{Name: "testcase", Usage: "the waived test case (required)", set: str(func(r R) *string { return &r.Testcase })},
			{Name: "product_version", Usage: "product version, e.g. fedora-41 (required)", set: str(func(r R) *string { return &r.ProductVersion })},
			{Name: "scenario", Usage: "the waived scenario (default: every scenario)", set: func(r avro.Record, v string) error {
				r.(R).Scenario = &v
				return nil
			}},
			{Name: "waived", Usage: "false to revoke an earlier waiver", Default: "true", Bool: true, set: boolean(func(r R) *bool { return &r.Waived })},
			{Name: "user", Usage: "who waived", set: str(func(r R) *string { return &r.User })},
			{Name: "comment", Usage: "why", set: str(func(r R) *string { return &r.Comment })},
			{Name: "waiver_id", Usage: "the waiver's id in WaiverDB (default: the event id)", set: str(func(r R) *string { return &r.WaiverID })},
		},
	}
}

func ruleFileKind() Kind {
	type R = *avro.RemoteRuleFile
	return Kind{
		Name:      "remote_rule_file",
		Aliases:   []string{"remote-rule-file", "rule-file"},
		Short:     "A package's gating.yaml at a build's commit (to events.policy)",
		Example:   "emit remote_rule_file --source factory2/fetcher --event-time 2026-01-02T15:04:05Z --subject-id bash-5.2.26-3.fc41 --content-file gating.yaml",
		newRecord: func() avro.Record { return new(avro.RemoteRuleFile) },
		Fields: []Field{
			{Name: "subject_type", Usage: subjectTypeUsage, Default: "koji_build", set: str(func(r R) *string { return &r.SubjectType })},
			{Name: "subject_id", Usage: "subject identifier, e.g. the NVR (required)", set: str(func(r R) *string { return &r.SubjectID })},
			{Name: "path", Usage: "the file's path in the repository", Default: "gating.yaml", set: str(func(r R) *string { return &r.Path })},
			{Name: "content", Usage: "the file's content", set: str(func(r R) *string { return &r.Content })},
			{Name: "content_file", Usage: "read the file's content from this local `file`", set: func(r avro.Record, v string) error {
				b, err := os.ReadFile(v)
				if err != nil {
					return err
				}
				r.(R).Content = string(b)
				return nil
			}},
			{Name: "missing", Usage: "the file does not exist at that commit", Bool: true, set: boolean(func(r R) *bool { return &r.Missing })},
			{Name: "fetch_error", Usage: "the file could not be read: why", set: str(func(r R) *string { return &r.FetchError })},
			{Name: "source_url", Usage: "SCM URL of the repository", set: str(func(r R) *string { return &r.SourceURL })},
			{Name: "source_commit", Usage: "SCM commit", set: str(func(r R) *string { return &r.SourceCommit })},
		},
	}
}

func composeKind() Kind {
	type R = *avro.ComposeEvent
	return Kind{
		Name:      "compose",
		Short:     "A compose definition or status change (to events.compose)",
		Example:   "emit compose --source pungi --event-time 2026-01-02T15:04:05Z --compose-id Fedora-Rawhide-20260102.n.0 --status FINISHED",
		newRecord: func() avro.Record { return new(avro.ComposeEvent) },
		Fields: []Field{
			{Name: "compose_id", Usage: "the compose id (required)", set: str(func(r R) *string { return &r.ComposeID })},
			{Name: "kind", Usage: "definition or status", Default: avro.ComposeStatusChange, set: str(func(r R) *string { return &r.Kind })},
			{Name: "status", Usage: "STARTED, FINISHED, FINISHED_INCOMPLETE, DOOMED or TERMINATED (required for status)", set: str(func(r R) *string { return &r.Status })},
			{Name: "location", Usage: "where the compose is", set: str(func(r R) *string { return &r.Location })},
			{Name: "release", Usage: "e.g. Fedora-Rawhide", set: str(func(r R) *string { return &r.Release })},
			{Name: "contents", Usage: "a subject the compose contains, as SUBJECT_ID[,type=T][,variant=V][,arch=A] (type defaults to koji_build); repeat for more", Repeated: true, set: func(r avro.Record, v string) error {
				id, kv, err := parseSpec(v, "type", "variant", "arch")
				if err != nil {
					return err
				}
				it := avro.ComposeItem{SubjectID: id, SubjectType: kv["type"], Variant: kv["variant"], Arch: kv["arch"]}
				if it.SubjectType == "" {
					it.SubjectType = "koji_build"
				}
				r.(R).Contents = append(r.(R).Contents, it)
				return nil
			}},
		},
	}
}
