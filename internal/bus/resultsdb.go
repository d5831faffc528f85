package bus

import (
	"github.com/factory2/factory2/avro"
)

// Subject types as ResultsDB, WaiverDB and Greenwave name them.
const (
	subjectKojiBuild      = "koji_build"
	subjectBrewBuild      = "brew-build" // Greenwave's alias of koji_build
	subjectCompose        = "compose"
	subjectContainerImage = "redhat-container-image"
)

// canonicalSubjectType maps aliases to the type Greenwave and WaiverDB
// use: "brew-build" is "koji_build".
func canonicalSubjectType(t string) string {
	if t == subjectBrewBuild {
		return subjectKojiBuild
	}
	return t
}

// subjectOf finds the subject a result (or an old-style waiver) is about
// in its data, as Greenwave does (conf/subject_types/*.yaml and
// greenwave.subjects.factory.create_subject_from_data):
//
//   - type "compose", or no type and a "productmd.compose.id": the compose
//     id in "productmd.compose.id" ("item" there is an image or a
//     compose/variant/arch path, not the compose);
//   - type "koji_build" or "brew-build", or no type: "original_spec_nvr",
//     else "item";
//   - type "redhat-container-image": "nvr", else "item";
//   - any other type (bodhi_update, redhat-module, ...): "item".
func subjectOf(d fields) (typ, id string, err error) {
	typ = canonicalSubjectType(d.first("type"))
	composeID := d.first("productmd.compose.id")
	switch {
	case typ == subjectCompose || (typ == "" && composeID != ""):
		if composeID == "" {
			return "", "", d.err("productmd.compose.id", "missing (a compose result is identified by it)")
		}
		return subjectCompose, composeID, nil
	case typ == subjectKojiBuild || typ == "":
		if nvr := d.first("original_spec_nvr"); nvr != "" {
			return subjectKojiBuild, nvr, nil
		}
		if typ == "" {
			return "", "", d.err("type", "missing (and no original_spec_nvr or productmd.compose.id)")
		}
	case typ == subjectContainerImage:
		if nvr := d.first("nvr"); nvr != "" {
			return typ, nvr, nil
		}
	}
	item := d.first("item")
	if item == "" {
		return "", "", d.err("item", "missing")
	}
	return typ, item, nil
}

// testResult translates ResultsDB's resultsdb.result.new in its current
// shape (the result as ResultsDB's API v2.0 serializes it: "id",
// "testcase", "outcome", "note", "ref_url", "submit_time", "data" with a
// list for every value) and in the older Taskotron-compatible shape that
// ResultsDB still publishes on taskotron.result.new (and once did on
// resultsdb.result.new): "task" {item, type, name} and "result" {id,
// outcome, submit_time, log_url}.
//
// Outcomes are passed on verbatim: an outcome this package has never
// heard of is for the gating engine to judge (it counts as failed).
func testResult(c *msgCtx) ([]avro.Record, error) {
	b := c.body
	r := &avro.TestResult{}
	var err error
	if res, ok := b.optObj("result"); ok && !b.has("outcome") {
		task, err := b.obj("task")
		if err != nil {
			return nil, err
		}
		if r.ResultID, err = res.str("id"); err != nil {
			return nil, err
		}
		if r.Testcase, err = task.str("name"); err != nil {
			return nil, err
		}
		if r.Outcome, err = res.str("outcome"); err != nil {
			return nil, err
		}
		if r.SubjectType, r.SubjectID, err = subjectOf(task); err != nil {
			return nil, err
		}
		r.RefURL = res.optStr("log_url")
		r.SubmitTime = res.optTime("submit_time")
	} else {
		if r.ResultID, err = b.str("id"); err != nil {
			return nil, err
		}
		if tc, ok := b.optObj("testcase"); ok {
			r.Testcase, err = tc.str("name")
		} else {
			r.Testcase, err = b.str("testcase")
		}
		if err != nil {
			return nil, err
		}
		if r.Outcome, err = b.str("outcome"); err != nil {
			return nil, err
		}
		data, err := b.obj("data")
		if err != nil {
			return nil, err
		}
		if r.SubjectType, r.SubjectID, err = subjectOf(data); err != nil {
			return nil, err
		}
		r.Scenario = data.first("scenario")
		r.SystemArch = data.first("system_architecture")
		r.SystemVariant = data.first("system_variant")
		r.RefURL = b.optStr("ref_url")
		r.Note = b.optStr("note")
		if r.ErrorReason = b.optStr("error_reason"); r.ErrorReason == "" {
			r.ErrorReason = data.first("error_reason")
		}
		r.SubmitTime = b.optTime("submit_time")
	}
	r.Source = "resultsdb"
	r.EventTime = c.eventTime(r.SubmitTime, c.msg.Time)
	return []avro.Record{r}, nil
}
