package bus

import (
	"fmt"
	"strings"
	"time"

	"github.com/factory2/factory2/avro"
)

// kojiStates are Koji's build states by code (koji.BUILD_STATES).
var kojiStates = []string{
	avro.StateBuilding, avro.StateComplete, avro.StateDeleted, avro.StateFailed, avro.StateCanceled,
}

// buildState reads a build state sent as Koji's integer code (Koji's
// fedora-messaging plugin, Brew message bodies) or as its name (Brew
// message headers). nil means absent.
func buildState(f fields, key string, v any) (string, error) {
	if n, ok := asInt(v); ok {
		if n < 0 || n >= int64(len(kojiStates)) {
			return "", f.err(key, fmt.Sprintf("unknown build state %d", n))
		}
		return kojiStates[n], nil
	}
	if s, ok := v.(string); ok {
		s = strings.ToUpper(strings.TrimSpace(s))
		for _, name := range kojiStates {
			if s == name {
				return name, nil
			}
		}
		return "", f.err(key, fmt.Sprintf("unknown build state %q", s))
	}
	return "", f.err(key, "not a build state")
}

// epochString renders an epoch sent as null, a number or a string.
func epochString(v any) string {
	s, _ := asString(v)
	return s
}

// nvrOf reads the name, version and release of a build (or RPM) dict.
func nvrOf(f fields) (name, version, release string, err error) {
	if name, err = f.str("name"); err != nil {
		return
	}
	if version, err = f.str("version"); err != nil {
		return
	}
	release, err = f.str("release")
	return
}

// splitSource splits an SCM URL "git+https://host/rpms/x.git#<commit>"
// into URL and commit. Values that are not URLs (a livemedia request
// starts with the image name) give nothing.
func splitSource(s string) (url, commit string) {
	if !strings.Contains(s, "://") {
		return "", ""
	}
	url, commit, _ = strings.Cut(s, "#")
	return url, commit
}

func instanceOf(f fields) string {
	if s := f.optStr("instance"); s != "" {
		return s
	}
	return "primary"
}

// terminalTime is the time a build reached state: its completion time for
// a finished build, its creation time for a started one. A deletion has
// no time in the build dict.
func terminalTime(state string, created, completed time.Time) time.Time {
	switch state {
	case avro.StateBuilding:
		return created
	case avro.StateComplete, avro.StateFailed, avro.StateCanceled:
		return completed
	}
	return time.Time{}
}

// kojiStateChange translates Koji's buildsys.build.state.change (schema
// koji_fedoramessaging_messages.build.BuildStateChangeV1 and the older
// fedmsg plugin's flat body).
func kojiStateChange(c *msgCtx) ([]avro.Record, error) {
	b := c.body
	name, version, release, err := nvrOf(b)
	if err != nil {
		return nil, err
	}
	if !b.has("new") {
		return nil, b.err("new", "missing")
	}
	state, err := buildState(b, "new", b.m["new"])
	if err != nil {
		return nil, err
	}
	var old string
	if b.has("old") {
		if old, err = buildState(b, "old", b.m["old"]); err != nil {
			return nil, err
		}
	}
	inst := instanceOf(b)
	ev := &avro.BuildEvent{
		Kind:           avro.BuildStateChange,
		NVR:            name + "-" + version + "-" + release,
		Name:           name,
		Version:        version,
		Release:        release,
		Epoch:          epochString(b.m["epoch"]),
		BuildID:        b.optInt("build_id"),
		TaskID:         b.optInt("task_id"),
		Owner:          b.optStr("owner"),
		Instance:       inst,
		State:          state,
		OldState:       old,
		CreationTime:   b.optTime("creation_time"),
		CompletionTime: b.optTime("completion_time"),
	}
	if req, ok := b.m["request"].([]any); ok && len(req) > 0 {
		if s, ok := req[0].(string); ok {
			ev.SourceURL, ev.SourceCommit = splitSource(s)
		}
	}
	ev.Source = "koji/" + inst
	ev.EventTime = c.eventTime(c.msg.Time, terminalTime(state, ev.CreationTime, ev.CompletionTime))
	return []avro.Record{ev}, nil
}

// kojiTag translates Koji's buildsys.tag and buildsys.untag (schema
// koji_fedoramessaging_messages.tag.TagV1/UntagV1). build_id is optional:
// the fedmsg plugin did not always send it, and the NVR identifies the
// build.
func kojiTag(c *msgCtx) ([]avro.Record, error) {
	b := c.body
	tag, err := b.str("tag")
	if err != nil {
		return nil, err
	}
	name, version, release, err := nvrOf(b)
	if err != nil {
		return nil, err
	}
	inst := instanceOf(b)
	ev := &avro.BuildEvent{
		Kind:     tagKind(c.suffix),
		NVR:      name + "-" + version + "-" + release,
		Name:     name,
		Version:  version,
		Release:  release,
		BuildID:  b.optInt("build_id"),
		Owner:    b.optStr("owner"),
		Instance: inst,
		Tag:      tag,
		TagUser:  b.optStr("user"),
	}
	ev.Source = "koji/" + inst
	ev.EventTime = c.eventTime(c.msg.Time)
	return []avro.Record{ev}, nil
}

func tagKind(suffix string) string {
	if suffix == topicKojiUntag || suffix == topicBrewUntag {
		return avro.BuildUntag
	}
	return avro.BuildTag
}

// brewBuild fills ev from a Brew (or Koji hub) build dict, as Brew's
// messages carry it under "info" or "build".
func brewBuild(f fields, ev *avro.BuildEvent) error {
	name, version, release, err := nvrOf(f)
	if err != nil {
		return err
	}
	ev.NVR = name + "-" + version + "-" + release
	ev.Name, ev.Version, ev.Release = name, version, release
	ev.Epoch = epochString(f.m["epoch"])
	if ev.BuildID = f.optInt("build_id"); ev.BuildID == 0 {
		ev.BuildID = f.optInt("id")
	}
	ev.TaskID = f.optInt("task_id")
	if ev.Owner = f.optStr("owner_name"); ev.Owner == "" {
		// Older Brew messages send "owner" as the user id; only a name
		// is an owner.
		if s, ok := f.m["owner"].(string); ok {
			ev.Owner = s
		}
	}
	ev.CreationTime = firstTime(f.optTime("creation_ts"), f.optTime("creation_time"))
	ev.CompletionTime = firstTime(f.optTime("completion_ts"), f.optTime("completion_time"))
	src := f.optStr("source")
	if src == "" {
		if extra, ok := f.optObj("extra"); ok {
			if s, ok := extra.optObj("source"); ok {
				src = s.optStr("original_url")
			}
		}
	}
	ev.SourceURL, ev.SourceCommit = splitSource(src)
	return nil
}

func firstTime(ts ...time.Time) time.Time {
	for _, t := range ts {
		if !t.IsZero() {
			return t
		}
	}
	return time.Time{}
}

// brewStateChange translates Brew's brew.build.<state> messages (Koji's
// protonmsg plugin): the body has "info" (the build dict as it was before
// the change, so its "state" is the old one), "attribute", and "old" and
// "new" as integer codes; the headers repeat "old" and "new" as names;
// the topic names the new state.
func brewStateChange(c *msgCtx) ([]avro.Record, error) {
	b := c.body
	info, err := b.obj("info")
	if err != nil {
		return nil, err
	}
	ev := &avro.BuildEvent{Kind: avro.BuildStateChange, Instance: "primary"}
	if err := brewBuild(info, ev); err != nil {
		return nil, err
	}
	newV, oldV := b.m["new"], b.m["old"]
	if newV == nil {
		newV = c.msg.Headers["new"]
	}
	if newV == nil {
		newV = strings.TrimPrefix(c.suffix, brewBuildPrefix)
	}
	if ev.State, err = buildState(b, "new", newV); err != nil {
		return nil, err
	}
	if oldV == nil {
		oldV = c.msg.Headers["old"]
	}
	if oldV != nil {
		if ev.OldState, err = buildState(b, "old", oldV); err != nil {
			return nil, err
		}
	}
	ev.Source = "brew/" + ev.Instance
	ev.EventTime = c.eventTime(c.msg.Time, terminalTime(ev.State, ev.CreationTime, ev.CompletionTime))
	return []avro.Record{ev}, nil
}

// brewTag translates Brew's brew.build.tag and brew.build.untag: the body
// has "tag" (the tag dict), "build" (the build dict), "user" (the user
// dict) and "force".
func brewTag(c *msgCtx) ([]avro.Record, error) {
	b := c.body
	tagInfo, err := b.obj("tag")
	if err != nil {
		return nil, err
	}
	tag, err := tagInfo.str("name")
	if err != nil {
		return nil, err
	}
	build, err := b.obj("build")
	if err != nil {
		return nil, err
	}
	ev := &avro.BuildEvent{Kind: tagKind(c.suffix), Instance: "primary", Tag: tag}
	if err := brewBuild(build, ev); err != nil {
		return nil, err
	}
	if build.has("state") {
		ev.State, _ = buildState(build, "state", build.m["state"]) // informational
	}
	if user, ok := b.optObj("user"); ok {
		ev.TagUser = user.optStr("name")
	} else {
		ev.TagUser = b.optStr("user")
	}
	ev.Source = "brew/" + ev.Instance
	ev.EventTime = c.eventTime(c.msg.Time)
	return []avro.Record{ev}, nil
}

// rpmSign translates Koji's buildsys.rpm.sign (schema
// koji_fedoramessaging_messages.rpm.SignV1) and Brew's brew.sign.rpm,
// which share a body: "sigkey", "sighash", "rpm" (the RPM dict), "build"
// (the build dict) and, from Koji, "instance". The build is required: it
// is what the event is keyed by, and an RPM's name is not its build's.
func rpmSign(c *msgCtx) ([]avro.Record, error) {
	b := c.body
	sigkey, err := b.str("sigkey")
	if err != nil {
		return nil, err
	}
	rpm, err := b.obj("rpm")
	if err != nil {
		return nil, err
	}
	name, version, release, err := nvrOf(rpm)
	if err != nil {
		return nil, err
	}
	arch, err := rpm.str("arch")
	if err != nil {
		return nil, err
	}
	build, err := b.obj("build")
	if err != nil {
		return nil, err
	}
	nvr := build.optStr("nvr")
	if nvr == "" {
		bn, bv, br, err := nvrOf(build)
		if err != nil {
			return nil, err
		}
		nvr = bn + "-" + bv + "-" + br
	}
	ev := &avro.SignEvent{
		NVR:     nvr,
		SigKey:  sigkey,
		SigHash: b.optStr("sighash"),
		Artifacts: []avro.Artifact{{
			ID:   rpm.optStr("id"),
			Name: name + "-" + version + "-" + release + "." + arch + ".rpm",
			Type: "rpm",
			Arch: arch,
		}},
		Outcome: avro.SignSigned,
	}
	for _, id := range []int64{build.optInt("build_id"), build.optInt("id"), rpm.optInt("build_id")} {
		if id != 0 {
			ev.BuildID = id
			break
		}
	}
	if c.suffix == topicBrewSign {
		ev.Instance = "primary"
		ev.Source = "brew/primary"
	} else {
		ev.Instance = instanceOf(b)
		ev.Source = "koji/" + ev.Instance
	}
	ev.EventTime = c.eventTime(c.msg.Time)
	return []avro.Record{ev}, nil
}
