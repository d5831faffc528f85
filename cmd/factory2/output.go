package main

// One output convention for the commands that print records or results
// on stdout (watch, topics, replay, emit --dry-run, dev): readable text
// when stdout is a terminal, where people look, and JSON lines when it is
// not (piped or redirected), where scripts read; -o text or -o json
// chooses. Messages for people always go to stderr.
//
// The text form of a record is one line: when (the event time), what
// kind, about what, the verdict, and the reason in a few words. The JSON
// form is each command's documented JSON line.

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/factory2/factory2/avro"
	"github.com/factory2/factory2/processors/compose"
	"github.com/factory2/factory2/processors/gating"
)

// Output formats (--output).
const (
	outputAuto = "auto"
	outputText = "text"
	outputJSON = "json"
)

// outputHelp documents the convention in each command's --help.
const outputHelp = `Output: readable text, one line per record, when stdout is a terminal;
JSON lines when it is not (piped or redirected), for scripts. -o text or
-o json chooses. Messages for people go to stderr.`

// addOutputFlag gives a command its -o/--output flag.
func addOutputFlag(fs *pflag.FlagSet, format *string) {
	fs.StringVarP(format, "output", "o", outputAuto, "output `format`: text, json (JSON lines) or auto (text on a terminal, else json)")
}

// textOutput reports whether to print text to w under --output format.
func textOutput(format string, w io.Writer) (bool, error) {
	switch format {
	case outputText:
		return true, nil
	case outputJSON:
		return false, nil
	case outputAuto, "":
		return isTerminal(w), nil
	}
	return false, fmt.Errorf("--output %q: want text, json or auto", format)
}

// isTerminal reports whether w is a terminal (a character device).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// textLine is the readable form of one record.
type textLine struct {
	Time    time.Time
	Kind    string
	Subject string
	Verdict string
	Reason  string
}

// String lays the line out in columns: time (UTC), kind, subject,
// verdict, reason.
func (l textLine) String() string {
	ts := "-"
	if !l.Time.IsZero() {
		ts = l.Time.UTC().Format(time.DateTime)
	}
	s := fmt.Sprintf("%s  %-13s %-30s %-8s %s", ts, l.Kind, l.Subject, l.Verdict, l.Reason)
	return strings.TrimRight(s, " ")
}

// Decision kinds as text lines name them.
const (
	kindGating       = "gating"
	kindAutosign     = "autosign"
	kindSigned       = "signed"
	kindComposeReady = "compose-ready"
	kindReadiness    = "readiness"
	kindGate         = "gate"
	kindRebuild      = "rebuild"
)

// recordText is the text line of an event or a decision.
func recordText(r avro.Record) textLine {
	l := textLine{Time: r.Env().EventTime, Kind: avro.TypeName(r)}
	switch d := r.(type) {
	case *avro.GatingDecision:
		l.Kind, l.Subject = kindGating, d.SubjectID
		l.Verdict = gatingVerdict(d.PoliciesSatisfied, d.Unsatisfied)
		l.Reason = d.DecisionContext + "@" + d.ProductVersion + ": " + d.Summary + testNotes(d.Satisfied, d.Unsatisfied)
	case *avro.AutosignDecision:
		l.Kind, l.Subject, l.Verdict = kindAutosign, d.NVR, d.Action
		l.Reason = autosignReason(d)
	case *avro.SignedStatus:
		l.Kind, l.Subject = kindSigned, d.NVR
		l.Verdict, l.Reason = "signed", fmt.Sprintf("all %s signed with %s", plural(len(d.Artifacts), "artifact"), d.KeyID)
		if !d.Signed {
			l.Verdict, l.Reason = "unsigned", "no longer fully signed with "+d.KeyID+details(d.Unsatisfied)
		}
	case *avro.ComposeReadyDecision:
		l.Subject = d.ComposeID
		l.Kind, l.Verdict, l.Reason = composeText(d)
	case *avro.RebuildDecision:
		l.Kind, l.Subject, l.Verdict = kindRebuild, d.SubjectID, "rebuild"
		l.Reason = d.Reason
		if l.Reason == "" {
			l.Reason = fmt.Sprintf("%s %s changed (%s)", d.TriggerType, d.TriggerID, d.Relation)
		}
	default:
		eventText(r, &l)
	}
	return l
}

// eventText fills l for an input event (or an internal record).
func eventText(r avro.Record, l *textLine) {
	switch e := r.(type) {
	case *avro.BuildEvent:
		l.Kind, l.Subject = "build", e.NVR
		switch e.Kind {
		case avro.BuildTag:
			l.Verdict, l.Reason = "tagged", "into "+e.Tag+by(e.TagUser)
		case avro.BuildUntag:
			l.Verdict, l.Reason = "untagged", "from "+e.Tag+by(e.TagUser)
		default:
			l.Verdict = e.State
			if e.OldState != "" {
				l.Reason = e.OldState + " → " + e.State
			}
		}
	case *avro.SignEvent:
		l.Kind, l.Subject, l.Verdict = "sign", e.NVR, e.Outcome
		var names []string
		for _, a := range e.Artifacts {
			names = append(names, a.Name)
		}
		l.Reason = "with " + e.SigKey + ": " + strings.Join(names, ", ")
	case *avro.TestResult:
		l.Kind, l.Subject, l.Verdict = "test", e.SubjectID, e.Outcome
		l.Reason = e.Testcase
		if e.Scenario != "" {
			l.Reason += " (scenario " + e.Scenario + ")"
		}
		if e.ErrorReason != "" {
			l.Reason += ": " + e.ErrorReason
		}
	case *avro.Waiver:
		l.Kind, l.Subject, l.Verdict = "waiver", e.SubjectID, "waived"
		if !e.Waived {
			l.Verdict = "unwaived"
		}
		l.Reason = e.Testcase + "@" + e.ProductVersion + by(e.User)
		if e.Comment != "" {
			l.Reason += ": " + e.Comment
		}
	case *avro.ComposeEvent:
		l.Kind, l.Subject = "compose", e.ComposeID
		switch {
		case e.Kind == avro.ComposeDefinition && e.Retired:
			l.Verdict = "retired"
		case e.Kind == avro.ComposeDefinition:
			l.Verdict = "defined"
			l.Reason = "from " + strings.Join(e.SourceTags, ", ")
			if e.SigningKey != "" {
				l.Reason += ", signed with " + e.SigningKey
			}
			if len(e.DecisionContexts) > 0 {
				l.Reason += ", gated by " + strings.Join(e.DecisionContexts, ", ") + "@" + e.ProductVersion
			}
		default:
			l.Verdict, l.Reason = e.Status, e.Location
		}
	case *avro.RemoteRuleFile:
		l.Kind, l.Subject, l.Verdict, l.Reason = "gating.yaml", e.SubjectID, "fetched", e.Path
		switch {
		case e.FetchError != "":
			l.Verdict, l.Reason = "error", e.Path+": "+e.FetchError
		case e.Missing:
			l.Verdict = "missing"
		}
	case *avro.ComposeMember:
		memberText(e, l)
	}
}

// memberText fills l for a build as the compose processors see it: a
// build view (no compose id yet), a member of a compose, or a load marker.
func memberText(e *avro.ComposeMember, l *textLine) {
	l.Kind, l.Subject, l.Verdict = "build-view", e.NVR, e.State
	if e.ComposeID != "" {
		l.Kind = "member"
	}
	if e.NVR == "" {
		l.Kind, l.Subject, l.Verdict = "member", e.ComposeID, "loaded"
		l.Reason = fmt.Sprintf("partition %d sent every build", e.Partition)
		return
	}
	var parts []string
	if e.ComposeID != "" {
		parts = append(parts, "of "+e.ComposeID)
	}
	var tags []string
	for _, t := range e.Tags {
		tags = append(tags, t.Tag)
	}
	if len(tags) > 0 {
		parts = append(parts, "in "+strings.Join(tags, ", "))
	}
	if len(e.SignedKeys) > 0 {
		parts = append(parts, "signed with "+strings.Join(e.SignedKeys, ", "))
	}
	for _, g := range e.Gating {
		v := "passed"
		if !g.Satisfied {
			v = "blocked"
			if g.Pending {
				v = "waiting"
			}
		}
		parts = append(parts, g.DecisionContext+"@"+g.ProductVersion+" "+v)
	}
	l.Reason = strings.Join(parts, "; ")
}

func by(user string) string {
	if user == "" {
		return ""
	}
	return " by " + user
}

// gatingVerdict is "passed", "blocked" (a required test failed, errored,
// or another requirement fails) or "waiting" (only results are missing).
func gatingVerdict(satisfied bool, unsat []avro.Requirement) string {
	if satisfied {
		return "passed"
	}
	for _, q := range unsat {
		if q.Type != "test-result-missing" {
			return "blocked"
		}
	}
	return "waiting"
}

// testNotes names the tests behind a gating decision that a summary only
// counts: the ones that fail or error, and the waived ones.
func testNotes(sat, unsat []avro.Requirement) string {
	var notes []string
	add := func(word string, q avro.Requirement) {
		what := q.Testcase
		if what == "" {
			what = q.Detail
		}
		notes = append(notes, strings.TrimSpace(word+" "+what))
	}
	for _, q := range unsat {
		switch q.Type {
		case "test-result-missing":
		case "test-result-failed":
			add("failed", q)
		case "test-result-errored":
			add("errored", q)
		default:
			add(q.Type, q)
		}
	}
	for _, q := range sat {
		if strings.HasSuffix(q.Type, "-waived") {
			add("waived", q)
		}
	}
	if len(notes) == 0 {
		return ""
	}
	return " (" + strings.Join(capList(notes, 3), "; ") + ")"
}

// autosignReason says with which key, how much is unsigned and why now
// (sign), or what stopped holding (revoke).
func autosignReason(d *avro.AutosignDecision) string {
	s := d.Key + " (" + d.KeyID + ")"
	if d.Action == avro.AutosignRevoke {
		return s + ": no longer holds" + details(d.Unsatisfied)
	}
	s += ": " + plural(len(d.Unsigned), "artifact") + " unsigned"
	gated := slices.ContainsFunc(d.Satisfied, func(q avro.Requirement) bool { return q.Type == gating.ReqContextSatisfied })
	for _, q := range d.Satisfied {
		if q.Type == gating.ReqContextSatisfied {
			s += ", " + q.Testcase + " passed"
		}
	}
	if !gated {
		s += ", tagged into " + d.FromTag
	}
	if d.ToTag == d.FromTag {
		return s + "; stays in " + d.FromTag
	}
	return s + "; then move to " + d.ToTag
}

// details lists the details (else the types) of requirements, after ": ".
func details(reqs []avro.Requirement) string {
	var out []string
	for _, q := range reqs {
		if q.Detail != "" {
			out = append(out, q.Detail)
		} else {
			out = append(out, q.Type)
		}
	}
	if len(out) == 0 {
		return ""
	}
	return ": " + strings.Join(capList(out, 3), "; ")
}

// composeText is the kind, verdict and reason of a compose decision.
func composeText(d *avro.ComposeReadyDecision) (kind, verdict, reason string) {
	reason = trimVerdict(d.Summary)
	switch d.Kind {
	case avro.ComposeReady:
		return kindComposeReady, "ready", reason
	case avro.ComposeGate:
		switch {
		case d.Ready:
			return kindGate, "passed", reason
		case strings.HasPrefix(d.Summary, "waiting"):
			return kindGate, "waiting", reason
		case strings.HasPrefix(d.Summary, "failed"):
			return kindGate, "failed", reason
		}
		return kindGate, "blocked", reason
	}
	if d.Ready {
		return kindReadiness, "ready", reason
	}
	verdict = "blocked"
	var blocking []string
	for _, q := range d.Unsatisfied {
		if q.Type == compose.ReqLoading {
			verdict = "loading"
		}
		if q.SubjectID != "" && q.SubjectID != d.ComposeID && !slices.Contains(blocking, q.SubjectID) {
			blocking = append(blocking, q.SubjectID)
		}
	}
	if len(blocking) > 0 {
		reason += ": " + strings.Join(capList(blocking, 3), ", ")
	}
	return kindReadiness, verdict, reason
}

// trimVerdict drops the verdict a compose summary starts with ("not
// ready: ..."), which the verdict column says.
func trimVerdict(summary string) string {
	for _, p := range []string{"ready: ", "not ready: ", "passed: ", "not passed: ", "failed: ", "waiting: "} {
		if rest, ok := strings.CutPrefix(summary, p); ok {
			return rest
		}
	}
	return summary
}

// capList keeps the first n items and says how many more there are.
func capList(items []string, n int) []string {
	if len(items) <= n {
		return items
	}
	return append(slices.Clone(items[:n]), fmt.Sprintf("%d more", len(items)-n))
}
