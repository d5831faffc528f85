package bus

import (
	"regexp"

	"github.com/factory2/factory2/avro"
)

// composeIDRelease matches a productmd compose id,
// "<release>-<YYYYMMDD>[.<type>].<respin>", e.g. "Fedora-Rawhide-20170206.n.0".
var composeIDRelease = regexp.MustCompile(`^(.+)-\d{8}(?:\.[a-z]+)?\.\d+$`)

// composeStatus translates Pungi's pungi.compose.status.change (and its
// UMB name pungi.status-change): "compose_id", "location", "status", and,
// from pungi 4.1.x on, the release fields ("release_short",
// "release_version", "compose_type", "compose_date", "compose_respin",
// "compose_label", ...). Statuses are passed on verbatim.
//
// Release is release_short-release_version (e.g. "Fedora-Rawhide",
// "Fedora-Cloud-28"); for older messages without those fields it is the
// compose id without its date, type and respin.
func composeStatus(c *msgCtx) ([]avro.Record, error) {
	b := c.body
	id, err := b.str("compose_id")
	if err != nil {
		return nil, err
	}
	status, err := b.str("status")
	if err != nil {
		return nil, err
	}
	ev := &avro.ComposeEvent{
		Kind:      avro.ComposeStatusChange,
		ComposeID: id,
		Status:    status,
		Location:  b.optStr("location"),
	}
	short, version := b.optStr("release_short"), b.optStr("release_version")
	switch {
	case short != "" && version != "":
		ev.Release = short + "-" + version
	default:
		if m := composeIDRelease.FindStringSubmatch(id); m != nil {
			ev.Release = m[1]
		}
	}
	ev.Source = "pungi"
	ev.EventTime = c.eventTime(c.msg.Time)
	return []avro.Record{ev}, nil
}
