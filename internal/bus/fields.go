package bus

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"time"
)

// decodeNumbers decodes JSON keeping numbers as json.Number, so ids and
// times keep every digit they were sent with.
func decodeNumbers(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	return dec.Decode(v)
}

// fields reads a decoded JSON object on behalf of one translation, naming
// the field in the *FieldError it returns. Required accessors are strict
// about type; optional ones (opt*) ignore values of an unexpected type,
// because real messages carry polymorphic optional fields (Brew sends
// "owner" as a user id, "start_time" as "NOW").
type fields struct {
	topic  string // normalized topic, for errors
	prefix string // path of this object in the body, e.g. "build."
	m      map[string]any
}

func (f fields) err(key, reason string) error {
	return &FieldError{Topic: f.topic, Field: f.prefix + key, Reason: reason}
}

// has reports whether key is present and not null.
func (f fields) has(key string) bool { return f.m[key] != nil }

// str returns a required, non-empty string. Numbers are accepted and
// returned in their JSON form.
func (f fields) str(key string) (string, error) {
	v := f.m[key]
	if v == nil {
		return "", f.err(key, "missing")
	}
	s, ok := asString(v)
	if !ok {
		return "", f.err(key, "not a string")
	}
	if s == "" {
		return "", f.err(key, "empty")
	}
	return s, nil
}

func (f fields) optStr(key string) string {
	s, _ := asString(f.m[key])
	return s
}

// optInt returns an integer sent as a number or a numeric string; 0 when
// absent or not an integer.
func (f fields) optInt(key string) int64 {
	n, _ := asInt(f.m[key])
	return n
}

// obj returns a required nested object.
func (f fields) obj(key string) (fields, error) {
	v := f.m[key]
	if v == nil {
		return fields{}, f.err(key, "missing")
	}
	m, ok := v.(map[string]any)
	if !ok {
		return fields{}, f.err(key, "not an object")
	}
	return fields{topic: f.topic, prefix: f.prefix + key + ".", m: m}, nil
}

func (f fields) optObj(key string) (fields, bool) {
	m, ok := f.m[key].(map[string]any)
	if !ok {
		return fields{}, false
	}
	return fields{topic: f.topic, prefix: f.prefix + key + ".", m: m}, true
}

// optTime returns a time sent as seconds since the epoch or as a date
// string in one of the forms the pipeline's services use; zero otherwise.
func (f fields) optTime(key string) time.Time {
	switch v := f.m[key].(type) {
	case json.Number:
		t, _ := parseUnix(v.String())
		return t
	case string:
		t, _ := parseTimeString(v)
		return t
	}
	return time.Time{}
}

// first returns the first value of a ResultsDB data field: every value
// there is a list, though older producers sent scalars.
func (f fields) first(key string) string {
	switch v := f.m[key].(type) {
	case []any:
		if len(v) > 0 {
			s, _ := asString(v[0])
			return s
		}
		return ""
	default:
		s, _ := asString(v)
		return s
	}
}

func asString(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case json.Number:
		return v.String(), true
	}
	return "", false
}

func asInt(v any) (int64, bool) {
	var s string
	switch v := v.(type) {
	case json.Number:
		s = v.String()
	case string:
		s = strings.TrimSpace(v)
	default:
		return 0, false
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n, true
	}
	fl, err := strconv.ParseFloat(s, 64)
	if err != nil || fl != math.Trunc(fl) || math.Abs(fl) > 1<<53 {
		return 0, false
	}
	return int64(fl), true
}

// parseUnix parses seconds since the epoch ("1490891323", "1359603469.2116399",
// "1.4e9"); values too large to be seconds are taken as milliseconds, as
// UMB headers send them ("1529352189165"). Digits are kept exactly, so the
// result does not depend on float rounding.
func parseUnix(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	if s == "" || s[0] == '-' {
		return time.Time{}, false
	}
	intPart, frac, _ := strings.Cut(s, ".")
	sec, err := strconv.ParseInt(intPart, 10, 64)
	if err != nil || !allDigits(frac) {
		fl, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil || math.IsInf(fl, 0) || math.IsNaN(fl) || fl < 0 || fl > 1e15 {
			return time.Time{}, false
		}
		sec, frac = int64(fl), ""
		if us := int64(math.Round((fl - math.Trunc(fl)) * 1e6)); us > 0 && us < 1e6 {
			frac = strconv.FormatInt(us+1e6, 10)[1:]
		}
	}
	if len(frac) > 9 {
		frac = frac[:9]
	}
	nsec, _ := strconv.ParseInt((frac + "000000000")[:9], 10, 64)
	if sec > 1e11 { // milliseconds
		nsec = (sec%1000)*1e6 + nsec/1000
		sec /= 1000
	}
	if sec > 1e11 {
		return time.Time{}, false
	}
	return time.Unix(sec, nsec).UTC(), true
}

func allDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// Layouts of the date strings the pipeline's services send. Koji and
// Brew send naive UTC ("2017-03-31 07:52:33.843957"), ResultsDB and
// WaiverDB naive UTC ISO 8601 ("2018-06-18T20:03:08.233992"), Taskotron
// "2015-12-16 17:14:21 UTC", fedora-messaging RFC 3339.
var timeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02T15:04:05.999999999Z0700",
	"2006-01-02 15:04:05.999999999Z0700",
}

// parseTimeString parses a date string; times without a zone are UTC.
func parseTimeString(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	s = strings.TrimSuffix(s, " UTC")
	for _, layout := range timeLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), true
		}
	}
	if allDigits(strings.Replace(s, ".", "", 1)) {
		return parseUnix(s)
	}
	return time.Time{}, false
}
