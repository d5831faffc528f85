package koji

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// ErrMalformed: a hub answer that is not an XML-RPC method response this
// package reads.
var ErrMalformed = errors.New("koji: malformed XML-RPC response")

// Fault is an XML-RPC fault: the hub ran the call and it failed. Koji's
// fault codes are those of its exception classes (koji/__init__.py:
// GenericError 1000, ServerOffline 1014, ...).
type Fault struct {
	Code   int
	String string
}

func (f *Fault) Error() string { return fmt.Sprintf("koji: fault %d: %s", f.Code, f.String) }

// Koji fault codes this package tells apart.
const (
	// FaultServerOffline is koji.ServerOffline: the hub is in offline
	// mode (maintenance); Koji's own client retries it.
	FaultServerOffline = 1014
)

// maxDepth bounds the nesting of values in a response.
const maxDepth = 32

// encodeCall writes an XML-RPC methodCall of method with params, which
// may be int, int64, string or bool.
func encodeCall(method string, params ...any) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("<?xml version='1.0'?>\n<methodCall>\n<methodName>")
	if err := xml.EscapeText(&b, []byte(method)); err != nil {
		return nil, err
	}
	b.WriteString("</methodName>\n<params>\n")
	for _, p := range params {
		b.WriteString("<param>\n<value>")
		switch v := p.(type) {
		case nil:
			b.WriteString("<nil/>") // Koji's hub allows none (koji/xmlrpcplus.py)
		case int:
			writeInt(&b, int64(v))
		case int64:
			writeInt(&b, v)
		case bool:
			if v {
				b.WriteString("<boolean>1</boolean>")
			} else {
				b.WriteString("<boolean>0</boolean>")
			}
		case string:
			b.WriteString("<string>")
			if err := xml.EscapeText(&b, []byte(v)); err != nil {
				return nil, err
			}
			b.WriteString("</string>")
		default:
			return nil, fmt.Errorf("koji: cannot encode a %T parameter", p)
		}
		b.WriteString("</value>\n</param>\n")
	}
	b.WriteString("</params>\n</methodCall>\n")
	return b.Bytes(), nil
}

// writeInt writes an int, or an i8 (Koji's extension, koji/xmlrpcplus.py)
// beyond 32 bits.
func writeInt(b *bytes.Buffer, v int64) {
	tag := "int"
	if v > 1<<31-1 || v < -1<<31 {
		tag = "i8"
	}
	fmt.Fprintf(b, "<%s>%d</%s>", tag, v, tag)
}

// decodeResponse reads an XML-RPC methodResponse: the value of its one
// param, or a *Fault. Values decode to int64, bool, string, float64,
// time.Time, []byte, nil (<nil/>, which Koji sends: allow_none), []any
// and map[string]any.
func decodeResponse(r io.Reader) (any, error) {
	d := xml.NewDecoder(r)
	start, err := nextStart(d)
	if err != nil {
		return nil, err
	}
	if start.Name.Local != "methodResponse" {
		return nil, fmt.Errorf("%w: <%s>, want <methodResponse>", ErrMalformed, start.Name.Local)
	}
	el, err := nextStart(d)
	if err != nil {
		return nil, err
	}
	switch el.Name.Local {
	case "params":
		param, err := nextStart(d)
		if err != nil {
			return nil, err
		}
		if param.Name.Local != "param" {
			return nil, fmt.Errorf("%w: <%s> in <params>", ErrMalformed, param.Name.Local)
		}
		return valueIn(d, 0)
	case "fault":
		v, err := valueIn(d, 0)
		if err != nil {
			return nil, err
		}
		m, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%w: a fault that is not a struct", ErrMalformed)
		}
		code, _ := m["faultCode"].(int64)
		msg, _ := m["faultString"].(string)
		return nil, &Fault{Code: int(code), String: msg}
	}
	return nil, fmt.Errorf("%w: <%s> in <methodResponse>", ErrMalformed, el.Name.Local)
}

// nextStart returns the next start element, skipping text, comments and
// processing instructions.
func nextStart(d *xml.Decoder) (xml.StartElement, error) {
	for {
		tok, err := d.Token()
		if err != nil {
			return xml.StartElement{}, malformed(err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			return t, nil
		case xml.EndElement:
			return xml.StartElement{}, fmt.Errorf("%w: unexpected </%s>", ErrMalformed, t.Name.Local)
		}
	}
}

func malformed(err error) error {
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: unexpected end", ErrMalformed)
	}
	return fmt.Errorf("%w: %v", ErrMalformed, err)
}

// valueIn reads the next <value> element and returns its value.
func valueIn(d *xml.Decoder, depth int) (any, error) {
	start, err := nextStart(d)
	if err != nil {
		return nil, err
	}
	if start.Name.Local != "value" {
		return nil, fmt.Errorf("%w: <%s>, want <value>", ErrMalformed, start.Name.Local)
	}
	return value(d, depth)
}

// value reads the content of a <value> whose start was read, through its
// end.
func value(d *xml.Decoder, depth int) (any, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("%w: values nested deeper than %d", ErrMalformed, maxDepth)
	}
	var text strings.Builder
	for {
		tok, err := d.Token()
		if err != nil {
			return nil, malformed(err)
		}
		switch t := tok.(type) {
		case xml.CharData:
			text.Write(t)
		case xml.EndElement: // </value> without a type: a string
			return text.String(), nil
		case xml.StartElement:
			v, err := typed(d, t, depth)
			if err != nil {
				return nil, err
			}
			if err := endOf(d, "value"); err != nil {
				return nil, err
			}
			return v, nil
		}
	}
}

// typed reads a typed value whose start element is t, through its end.
func typed(d *xml.Decoder, t xml.StartElement, depth int) (any, error) {
	switch t.Name.Local {
	case "struct":
		return structValue(d, depth)
	case "array":
		return arrayValue(d, depth)
	case "nil":
		return nil, d.Skip()
	}
	var s string
	if err := d.DecodeElement(&s, &t); err != nil {
		return nil, malformed(err)
	}
	switch t.Name.Local {
	case "string":
		return s, nil
	case "int", "i4", "i8":
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%w: <%s>%s", ErrMalformed, t.Name.Local, s)
		}
		return n, nil
	case "boolean":
		switch strings.TrimSpace(s) {
		case "1":
			return true, nil
		case "0":
			return false, nil
		}
		return nil, fmt.Errorf("%w: <boolean>%s", ErrMalformed, s)
	case "double":
		f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil {
			return nil, fmt.Errorf("%w: <double>%s", ErrMalformed, s)
		}
		return f, nil
	case "dateTime.iso8601":
		for _, layout := range []string{"20060102T15:04:05", "2006-01-02T15:04:05", time.RFC3339} {
			if tm, err := time.Parse(layout, strings.TrimSpace(s)); err == nil {
				return tm, nil
			}
		}
		return nil, fmt.Errorf("%w: <dateTime.iso8601>%s", ErrMalformed, s)
	case "base64":
		b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("%w: <base64>: %v", ErrMalformed, err)
		}
		return b, nil
	}
	return nil, fmt.Errorf("%w: unknown type <%s>", ErrMalformed, t.Name.Local)
}

// structValue reads the members of a <struct> through its end.
func structValue(d *xml.Decoder, depth int) (map[string]any, error) {
	m := map[string]any{}
	for {
		tok, err := d.Token()
		if err != nil {
			return nil, malformed(err)
		}
		switch t := tok.(type) {
		case xml.EndElement:
			return m, nil // </struct>
		case xml.StartElement:
			if t.Name.Local != "member" {
				return nil, fmt.Errorf("%w: <%s> in <struct>", ErrMalformed, t.Name.Local)
			}
			name, v, err := member(d, depth)
			if err != nil {
				return nil, err
			}
			m[name] = v
		}
	}
}

// member reads a <member>'s name and value through its end.
func member(d *xml.Decoder, depth int) (string, any, error) {
	nameEl, err := nextStart(d)
	if err != nil {
		return "", nil, err
	}
	if nameEl.Name.Local != "name" {
		return "", nil, fmt.Errorf("%w: <%s> in <member>, want <name>", ErrMalformed, nameEl.Name.Local)
	}
	var name string
	if err := d.DecodeElement(&name, &nameEl); err != nil {
		return "", nil, malformed(err)
	}
	v, err := valueIn(d, depth+1)
	if err != nil {
		return "", nil, err
	}
	return name, v, endOf(d, "member")
}

// arrayValue reads the values of an <array> (in its <data>) through its
// end.
func arrayValue(d *xml.Decoder, depth int) ([]any, error) {
	data, err := nextStart(d)
	if err != nil {
		return nil, err
	}
	if data.Name.Local != "data" {
		return nil, fmt.Errorf("%w: <%s> in <array>, want <data>", ErrMalformed, data.Name.Local)
	}
	out := []any{}
	for {
		tok, err := d.Token()
		if err != nil {
			return nil, malformed(err)
		}
		switch t := tok.(type) {
		case xml.EndElement: // </data>
			return out, endOf(d, "array")
		case xml.StartElement:
			if t.Name.Local != "value" {
				return nil, fmt.Errorf("%w: <%s> in <data>", ErrMalformed, t.Name.Local)
			}
			v, err := value(d, depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
	}
}

// endOf reads up to the end element name, allowing only white space
// before it.
func endOf(d *xml.Decoder, name string) error {
	for {
		tok, err := d.Token()
		if err != nil {
			return malformed(err)
		}
		switch t := tok.(type) {
		case xml.EndElement:
			if t.Name.Local != name {
				return fmt.Errorf("%w: </%s>, want </%s>", ErrMalformed, t.Name.Local, name)
			}
			return nil
		case xml.StartElement:
			return fmt.Errorf("%w: <%s> before </%s>", ErrMalformed, t.Name.Local, name)
		case xml.CharData:
			if len(bytes.TrimSpace(t)) > 0 {
				return fmt.Errorf("%w: text before </%s>", ErrMalformed, name)
			}
		}
	}
}
