package config

import (
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/factory2/factory2/internal/spell"
)

// Key is one key of the configuration file, as the reference documents
// it.
type Key struct {
	// Path is the key's path: "processing.commit_interval", with "[]" for
	// the entries of a list ("gating.signing_rules[].key_id").
	Path string
	// Type says what the key holds: "string", "integer", "duration",
	// "list of strings", ...
	Type string
	// Default is the value a file that leaves the key out gets, as YAML;
	// for the keys of list entries, what an entry that leaves it out gets.
	Default string
	// Means, when set, is what the default stands for: the code fills in
	// a zero default ("6" for a depth of 0).
	Means string
	// Doc says what the key is for.
	Doc string
}

// keyDoc documents a key: what it is, its default in words where the
// value Default() has would mislead (it depends on the host), and what a
// zero default stands for when the code fills it in later.
type keyDoc struct {
	doc  string
	def  string
	zero string
}

// docs documents every key of Config. Keys and types come from the
// struct's yaml tags, defaults from Default(); TestReference fails when a
// key lacks a doc or a doc names no key, so the reference cannot drift
// from the definition.
var docs = map[string]keyDoc{
	"brokers": {doc: "Kafka bootstrap addresses, host:port. --brokers and FACTORY2_BROKERS override them. " +
		"The default is where `factory2 dev` listens; `make kafka-up` listens on 127.0.0.1:29092."},
	"instance_id": {def: "the host name", doc: "Names this process among the instances of a deployment: stable across restarts, " +
		"unique among live instances, no spaces or slashes. It prefixes the transactional ids, so a restarted " +
		"instance fences its previous incarnation. `factory2 serve --instance-id` and FACTORY2_INSTANCE_ID override it."},

	"topics.prefix":     {doc: "Prefix of every topic name (factory2.events.build, ...)."},
	"topics.partitions": {doc: "Partitions of every topic. The key (NVR, compose id) picks the partition, so this bounds how many tasks process a topic at once."},
	"topics.replication": {doc: "Replication factor of every topic: at most the number of brokers " +
		"(1 for `make kafka-up`; 3 on a production cluster)."},
	"topics.input_retention_ms":    {doc: "retention.ms of the input (events.*) topics; -1 keeps events forever, which replaying decisions from the log needs."},
	"topics.decision_retention_ms": {doc: "retention.ms of the decision topics; -1 keeps them forever."},
	"topics.min_insync_replicas":   {doc: "min.insync.replicas of every topic, at most topics.replication; 0 leaves the broker's default."},

	"state.dir": {doc: "One Pebble database per processor task lives under this directory " +
		"(a relative path is relative to the working directory)."},
	"state.cache_bytes": {doc: "Block cache shared by every store of the process, in bytes; at least 1 MiB."},

	"processing.commit_interval":     {doc: "How long a decision may wait in an open transaction before read_committed consumers see it; in (0, 1m]."},
	"processing.transaction_timeout": {doc: "Broker-side timeout of a transaction; at least 1s."},
	"processing.session_timeout":     {doc: "Consumer group session timeout; at least 1s."},
	"processing.max_record_bytes": {doc: "Largest record a processor produces (output, changelog, dead letter); an input whose " +
		"output or state would exceed it is dead-lettered. Keep it at or below the brokers' message.max.bytes; in [65536, 67108864]."},
	"processing.max_dead_letter_bytes": {doc: "Payload a dead letter copies from the record it reports (longer ones are " +
		"truncated; size and SHA-256 are in its headers); in [1024, max_record_bytes/2]."},
	"processing.threads": {doc: "Tasks of a processor processing at once; 0: one per core (GOMAXPROCS)."},
	"processing.max_task_idle": {doc: "How long a task whose other inputs have records waits for an input with nothing " +
		"more committed (Kafka Streams' max.task.idle.ms); 0 waits for nothing not yet produced, negative never waits."},
	"processing.max_txn_wait": {doc: "How long a task whose other inputs have records waits for an open transaction on an " +
		"input it has read to the end (its records may commit with earlier timestamps); past it the task goes on " +
		"without them. In (0, transaction_timeout], negative never waits."},

	"http.addr":  {doc: "Address of the API, /metrics, /healthz, /readyz and the overview page, host:port."},
	"http.token": {doc: "Bearer token of the write routes (POST /api/v1/events); empty disables event ingestion over HTTP (403)."},
	"http.admin_token": {doc: "Bearer token of the admin routes (/debug/pprof/); empty disables them (403). " +
		"Must differ from http.token and http.read_token."},
	"http.read_token": {doc: "Bearer token of the read routes (queries, /metrics, the overview page) when http.protect_reads " +
		"is set; http.token and http.admin_token are accepted there too."},
	"http.token_file": {doc: "File holding http.token (one line; a final line break is dropped), e.g. a mounted Kubernetes Secret, " +
		"so that the configuration file holds no secret. A relative path is relative to the configuration file's directory. " +
		"Read at start and again on SIGHUP. At most one of http.token, http.token_file and http.token_env; the same goes for " +
		"the admin and read tokens."},
	"http.token_env":        {doc: "Name of the environment variable holding http.token, read at start and on SIGHUP (the environment does not change while a process runs)."},
	"http.admin_token_file": {doc: "File holding http.admin_token, as http.token_file."},
	"http.admin_token_env":  {doc: "Name of the environment variable holding http.admin_token."},
	"http.read_token_file":  {doc: "File holding http.read_token, as http.token_file."},
	"http.read_token_env":   {doc: "Name of the environment variable holding http.read_token."},
	"http.protect_reads": {doc: "Make the read routes, /metrics included, need a bearer token (http.read_token), or, from a browser, " +
		"the cookie of a login at /login with that token (reads only: write and admin routes take bearer tokens only); " +
		"false leaves them open. /healthz and /readyz are always open."},
	"http.tls_cert_file": {doc: "PEM certificate (chain) the HTTP server presents; with http.tls_key_file (both or neither) " +
		"it serves HTTPS only. SIGHUP reloads both files; a bad pair is refused and the old one kept."},
	"http.tls_key_file": {doc: "PEM private key of http.tls_cert_file."},
	"http.max_body_bytes": {doc: "Largest request body, in bytes; also what an ingestion request without " +
		"Content-Length reserves."},
	"http.read_timeout":  {doc: "Bounds reading a whole request, body included."},
	"http.write_timeout": {doc: "Bounds answering a request (ingestion gets it once to produce its batch and once more to answer)."},
	"http.idle_timeout":  {doc: "Closes keep-alive connections idle for this long."},
	"http.max_inflight_requests": {doc: "API requests served at once; beyond it, 503 with Retry-After " +
		"(/healthz and /metrics are not counted)."},
	"http.max_inflight_body_bytes": {doc: "Bytes of POST /api/v1/events bodies in flight at once; a request that does " +
		"not fit gets 503 with Retry-After, its body unread. At least http.max_body_bytes."},

	"ingest.max_event_bytes": {doc: "Largest event record (key and Avro value), for `factory2 emit` and " +
		"POST /api/v1/events alike; a batch with a larger event is refused whole (HTTP 413)."},

	"ingest.koji_hub_url": {doc: "XML-RPC URL of the Koji hub of instance primary (e.g. https://koji.fedoraproject.org/kojihub); " +
		"when set, a Koji build that becomes COMPLETE in an ingested bus message makes ingestion ask the hub once for its " +
		"RPM list and produce it as a build event (no bus message carries it, and a build counts as signed only when " +
		"its RPMs are known). Empty: off."},
	"ingest.koji_timeout": {doc: "Bounds one call to the Koji hub; a call that fails transiently is made 3 times in all. In (0, 5m]."},

	"registry.url": {doc: "A Confluent-compatible schema registry; empty: records use Avro single-object encoding."},

	"gating.policies": {doc: "Greenwave policy files (YAML documents tagged --- !Policy), or directories of " +
		"them (their *.yaml and *.yml files). A relative path is relative to the configuration file's directory. " +
		"Empty: no policies, so no gating decisions."},
	"gating.product_versions": {doc: "Product version overrides, first match wins; otherwise the product version " +
		"comes from the NVR's dist tag (fc42 → fedora-42) or the compose id."},
	"gating.product_versions[].match":           {doc: "Regular expression matched at the start of the subject identifier (required)."},
	"gating.product_versions[].product_version": {doc: "The product version, with \\1 for a group of match (required)."},
	"gating.product_versions[].subject_type":    {doc: "Limits the override to one subject type; empty: every type."},
	"gating.signing_rules": {doc: "Autosign rules, robosignatory's: a COMPLETE build tagged into from is signed " +
		"with key and moved to to."},
	"gating.signing_rules[].name":   {doc: "Names the rule in decisions (required, unique)."},
	"gating.signing_rules[].from":   {doc: "The Koji tag whose builds the rule signs (required)."},
	"gating.signing_rules[].to":     {doc: "Where the signer moves a build once signed; equal to from: no move."},
	"gating.signing_rules[].key":    {doc: "The signing key's name (required)."},
	"gating.signing_rules[].key_id": {doc: "The key's hexadecimal id, as sign events name it (required)."},
	"gating.signing_rules[].type":   {doc: "Empty, or modular: sign every build of a module's content tag."},
	"gating.signing_rules[].require_context": {doc: "A gating decision context that must be satisfied before " +
		"signing (a gold key waits for gating); empty: sign on completion (a build key)."},
	"gating.signing_rules[].product_version": {doc: "The product version require_context is evaluated for; " +
		"empty: every product version the build is gated for."},
	"gating.signing_rules[].priority": {doc: "Carried by the rule's decisions, for the signer to order its queue."},
	"gating.extra_subject_types": {doc: "Subject types policies may name besides Greenwave's (bodhi_update, " +
		"brew-build, compose, koji_build, redhat-container-image, redhat-module); any other is an error, " +
		"so that a misspelt type does not make a policy that never applies."},
	"gating.max_subject_bytes":     {doc: "Stored state of one subject; an event that would grow it further is dead-lettered. At most 786432 (768 KiB)."},
	"gating.max_policy_file_bytes": {doc: "Largest gating.yaml (remote rule file) event content; below gating.max_subject_bytes."},

	"composes": {doc: "Compose definitions: what each compose must contain to be ready. `factory2 emit composes` " +
		"produces them; the compose processor says compose-ready the moment the content is complete, signed and gated, " +
		"within the cadence."},
	"composes[].id":              {doc: "The compose id (required, unique, no white space)."},
	"composes[].product_version": {doc: "The product version of the builds' gating decisions (e.g. fedora-45 for Rawhide's fc45 builds)."},
	"composes[].source_tags": {doc: "Koji tags whose latest build of each package makes the content, in priority " +
		"order (a package in several comes from the first); at least one unless retired."},
	"composes[].packages_allow":       {doc: "Globs (path.Match syntax) over package names; when not empty, only the packages matching one."},
	"composes[].packages_deny":        {doc: "Globs over package names: the packages matching one are left out."},
	"composes[].signing_key":          {doc: "Key id every build must be signed with (hexadecimal, lower case); empty: no signature required."},
	"composes[].decision_contexts":    {doc: "Gating decision contexts every build must satisfy; each the decision context of some policy."},
	"composes[].cadence.min_interval": {doc: "Least time between two compose-ready decisions; 0: no limit."},
	"composes[].cadence.window_start": {doc: "Daily window (HH:MM, UTC) outside which compose-ready waits; with window_end, " +
		"both or neither; it may wrap midnight."},
	"composes[].cadence.window_end": {doc: "End of the daily window; see window_start."},
	"composes[].retired": {doc: "A retired definition produces no more decisions; keep it with retired: true and " +
		"emit it once more, so the compose processor learns."},

	"rebuild.context": {doc: "The gating decision context a new build must satisfy before what ships an older build " +
		"of its package is to be rebuilt; empty: not required."},
	"rebuild.key":   {doc: "The key id the new build must be signed with; empty: not required."},
	"rebuild.types": {zero: "container, module, flatpak", doc: "Node types that are rebuilt."},
	"rebuild.relations": {zero: "produced-by, embeds, includes, parent, contains",
		doc: "Dependency edges walked from the older build to what ships it."},
	"rebuild.buildroot": {doc: "Also rebuild every build built against the older one (a mass rebuild)."},
	"rebuild.depth":     {zero: "6", doc: "Edges walked at most from the older build."},
	"rebuild.cap":       {zero: "1000", doc: "Rebuild decisions per new build at most; a dependent beyond it is counted, not decided."},
}

// Keys returns every key of the configuration file, in the order of the
// definition, documented.
func Keys() []Key {
	var keys []Key
	walkKeys(reflect.TypeFor[Config](), reflect.ValueOf(Default()), "", func(k Key) {
		d := docs[k.Path]
		k.Doc, k.Means = d.doc, d.zero
		if d.def != "" {
			k.Default = d.def
		}
		keys = append(keys, k)
	})
	return keys
}

var durationType = reflect.TypeFor[time.Duration]()

// walkKeys calls fn for every key of struct type t, whose value (or the
// zero value, when v is not valid) gives the defaults; the keys of a list
// of structs follow the list's own key.
func walkKeys(t reflect.Type, v reflect.Value, prefix string, fn func(Key)) {
	for i := range t.NumField() {
		f := t.Field(i)
		name := strings.Split(f.Tag.Get("yaml"), ",")[0]
		if name == "" || name == "-" {
			continue
		}
		path := prefix + name
		var fv reflect.Value
		if v.IsValid() {
			fv = v.Field(i)
		}
		switch {
		case f.Type.Kind() == reflect.Struct && f.Type != durationType:
			walkKeys(f.Type, fv, path+".", fn)
		case f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct:
			fn(Key{Path: path, Type: "list of " + f.Type.Elem().Name(), Default: defaultText(fv, f.Type)})
			walkKeys(f.Type.Elem(), reflect.Value{}, path+"[].", fn)
		default:
			fn(Key{Path: path, Type: typeName(f.Type), Default: defaultText(fv, f.Type)})
		}
	}
}

func typeName(t reflect.Type) string {
	switch {
	case t == durationType:
		return "duration"
	case t.Kind() == reflect.Slice:
		return "list of " + typeName(t.Elem()) + "s"
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "integer"
	case reflect.Bool:
		return "boolean"
	}
	return t.Kind().String()
}

// defaultText writes v (the zero value of t when v is not valid) as YAML.
func defaultText(v reflect.Value, t reflect.Type) string {
	if !v.IsValid() {
		v = reflect.Zero(t)
	}
	switch {
	case t == durationType:
		return formatDuration(time.Duration(v.Int()))
	case t.Kind() == reflect.String:
		if v.String() == "" {
			return `""`
		}
		return v.String()
	case t.Kind() == reflect.Slice:
		items := make([]string, v.Len())
		for i := range items {
			items[i] = defaultText(v.Index(i), t.Elem())
		}
		return "[" + strings.Join(items, ", ") + "]"
	}
	return fmt.Sprint(v.Interface())
}

// formatDuration writes d as a Go duration, without the zero parts
// time.Duration.String adds (2m, not 2m0s).
func formatDuration(d time.Duration) string {
	switch {
	case d == 0:
		return "0s"
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return d.String()
}

// Reference is the reference of every key of the configuration file, in
// Markdown: the text of `factory2 config reference`, checked in as
// deploy/config-reference.md.
func Reference() string {
	var b strings.Builder
	b.WriteString(`# factory2 configuration reference

<!-- Generated by "factory2 config reference" from internal/config; do not edit. -->

Every key of the YAML configuration file (` + "`--config FILE`" + `), with its default.
A key left out keeps its default; unknown keys are errors. Durations are Go
durations (50ms, 30s, 6h). ` + "`factory2 config check FILE`" + ` reports every problem of
a file at once; ` + "`deploy/factory2.example.yml`" + ` is a complete example that runs
against ` + "`make kafka-up`" + `. Keys under ` + "`[]`" + ` are those of each entry of a list.
`)
	section := ""
	for _, k := range Keys() {
		top, _, _ := strings.Cut(k.Path, ".")
		top, _, _ = strings.Cut(top, "[")
		if top != section || section == "" {
			section = top
			fmt.Fprintf(&b, "\n## %s\n\n| key | type | default | |\n|---|---|---|---|\n", section)
		}
		def := "`" + k.Default + "`"
		if k.Means != "" {
			def += " (" + k.Means + ")"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", k.Path, k.Type, def, strings.ReplaceAll(k.Doc, "|", `\|`))
	}
	return b.String()
}

// The messages of go.yaml.in/yaml/v3 for an unknown key and for a value
// of the wrong type.
var (
	unknownKeyRE = regexp.MustCompile(`^line (\d+): field (\S+) not found in type (\S+)$`)
	wrongTypeRE  = regexp.MustCompile("^line (\\d+): cannot unmarshal !!\\w+ `(.*)` into (\\S+)$")
)

// explainTypeError rewrites a YAML decoder message for people: an
// unknown key is named with the key probably meant, a value of the wrong
// type with what the key takes.
func explainTypeError(msg string) string {
	if m := unknownKeyRE.FindStringSubmatch(msg); m != nil {
		return fmt.Sprintf("line %s: unknown key %q%s", m[1], m[2], spell.DidYouMean(m[2], keysOfType(m[3])))
	}
	if m := wrongTypeRE.FindStringSubmatch(msg); m != nil {
		want := "a " + strings.TrimPrefix(m[3], "[]")
		switch t := m[3]; {
		case t == "time.Duration":
			want = "a duration such as 30s"
		case strings.HasPrefix(t, "[]"):
			want = "a list"
		case strings.Contains(t, "int"):
			want = "an integer"
		case t == "bool":
			want = "true or false"
		case strings.Contains(t, "."):
			want = "a mapping of keys"
		}
		return fmt.Sprintf("line %s: %q is not %s", m[1], m[2], want)
	}
	return msg
}

// keysOfType returns the yaml keys of the struct type named name
// ("config.Processing") among those Config is made of.
func keysOfType(name string) []string {
	var found []string
	var visit func(t reflect.Type)
	visit = func(t reflect.Type) {
		for t.Kind() == reflect.Slice {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || t == durationType || found != nil {
			return
		}
		var keys []string
		for i := range t.NumField() {
			f := t.Field(i)
			if k := strings.Split(f.Tag.Get("yaml"), ",")[0]; k != "" && k != "-" {
				keys = append(keys, k)
			}
			visit(f.Type)
		}
		if t.String() == name && found == nil {
			found = slices.Clip(keys)
		}
	}
	visit(reflect.TypeFor[Config]())
	return found
}
