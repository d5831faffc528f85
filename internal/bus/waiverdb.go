package bus

import (
	"fmt"
	"strings"

	"github.com/factory2/factory2/avro"
)

// waiver translates WaiverDB's waiverdb.waiver.new: the waiver as
// WaiverDB's API serializes it. Current WaiverDB sends "subject_type" and
// "subject_identifier" (plus a backwards-compatible "subject" dict, which
// is then ignored); WaiverDB before 0.11 sent only "subject", a dict in
// ResultsDB's data vocabulary ({type, item}, {original_spec_nvr},
// {productmd.compose.id}), which Greenwave's consumers also passed on as
// a list of such dicts: a list yields one waiver per subject. The first
// WaiverDB releases sent only "result_id"; such a waiver cannot be
// translated without asking ResultsDB for the result, and is reported as
// a *FieldError.
//
// "scenario" absent or null waives every scenario of the testcase and is
// kept as a nil Scenario, distinct from "".
func waiver(c *msgCtx) ([]avro.Record, error) {
	b := c.body
	subjects, err := waiverSubjects(b)
	if err != nil {
		return nil, err
	}
	w := avro.Waiver{}
	if w.WaiverID, err = b.str("id"); err != nil {
		return nil, err
	}
	if w.Testcase, err = b.str("testcase"); err != nil {
		return nil, err
	}
	if w.ProductVersion, err = b.str("product_version"); err != nil {
		return nil, err
	}
	if w.Waived, err = waivedOf(b); err != nil {
		return nil, err
	}
	if v := b.m["scenario"]; v != nil {
		s, ok := asString(v)
		if !ok {
			return nil, b.err("scenario", "not a string")
		}
		w.Scenario = &s
	}
	w.User = b.optStr("username")
	w.ProxiedBy = b.optStr("proxied_by")
	w.Comment = b.optStr("comment")
	w.Source = "waiverdb"
	w.EventTime = c.eventTime(b.optTime("timestamp"), c.msg.Time)

	recs := make([]avro.Record, 0, len(subjects))
	for _, s := range subjects {
		wi := w
		if w.Scenario != nil {
			sc := *w.Scenario
			wi.Scenario = &sc
		}
		wi.SubjectType, wi.SubjectID = s[0], s[1]
		recs = append(recs, &wi)
	}
	return recs, nil
}

func waiverSubjects(b fields) ([][2]string, error) {
	if b.has("subject_type") || b.has("subject_identifier") {
		typ, err := b.str("subject_type")
		if err != nil {
			return nil, err
		}
		id, err := b.str("subject_identifier")
		if err != nil {
			return nil, err
		}
		return [][2]string{{canonicalSubjectType(typ), id}}, nil
	}
	switch v := b.m["subject"].(type) {
	case map[string]any:
		typ, id, err := subjectOf(fields{topic: b.topic, prefix: b.prefix + "subject.", m: v})
		if err != nil {
			return nil, err
		}
		return [][2]string{{typ, id}}, nil
	case []any:
		var out [][2]string
		for i, e := range v {
			m, ok := e.(map[string]any)
			if !ok {
				return nil, b.err(fmt.Sprintf("subject[%d]", i), "not an object")
			}
			typ, id, err := subjectOf(fields{topic: b.topic, prefix: fmt.Sprintf("%ssubject[%d].", b.prefix, i), m: m})
			if err != nil {
				return nil, err
			}
			out = append(out, [2]string{typ, id})
		}
		if len(out) > 0 {
			return out, nil
		}
		return nil, b.err("subject", "empty")
	case nil:
		if b.has("result_id") {
			return nil, b.err("subject_identifier", "missing (the waiver names only result_id "+b.optStr("result_id")+"; its subject is in ResultsDB)")
		}
		return nil, b.err("subject_identifier", "missing")
	default:
		return nil, b.err("subject", "not an object")
	}
}

// waivedOf reads "waived", a boolean (older Greenwave tests and producers
// also sent the strings "true" and "false").
func waivedOf(b fields) (bool, error) {
	switch v := b.m["waived"].(type) {
	case bool:
		return v, nil
	case string:
		switch strings.ToLower(strings.TrimSpace(v)) {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
		return false, b.err("waived", fmt.Sprintf("not a boolean: %q", v))
	case nil:
		return false, b.err("waived", "missing")
	default:
		return false, b.err("waived", "not a boolean")
	}
}
