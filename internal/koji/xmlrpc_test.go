package koji

import (
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

// The files in testdata are hub answers in the form Koji's hub writes
// them: Python's xmlrpc.client marshaller with allow_none (which
// koji/xmlrpcplus.py extends with i8), written with xmlrpc.client.dumps
// from the fields kojihub.get_build and kojihub.list_rpms return, for an
// example build xz-5.6.3-2.fc42.

func TestEncodeCallIsPythons(t *testing.T) {
	// xmlrpc.client.dumps((2601003,), 'getBuild', allow_none=True)
	const want = "<?xml version='1.0'?>\n<methodCall>\n<methodName>getBuild</methodName>\n<params>\n<param>\n" +
		"<value><int>2601003</int></value>\n</param>\n</params>\n</methodCall>\n"
	got, err := encodeCall("getBuild", int64(2601003))
	if err != nil || string(got) != want {
		t.Fatalf("%v\n%s", err, got)
	}
	got, err = encodeCall("getBuild", "a<b&c", 1<<40, true)
	if err != nil || !strings.Contains(string(got), "<string>a&lt;b&amp;c</string>") ||
		!strings.Contains(string(got), "<i8>1099511627776</i8>") || !strings.Contains(string(got), "<boolean>1</boolean>") {
		t.Fatalf("%v\n%s", err, got)
	}
	if _, err := encodeCall("x", 1.5); err == nil {
		t.Fatal("encoded a float")
	}
}

func TestDecodeResponse(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       any
	}{
		{"int", "<int>7</int>", int64(7)},
		{"i4", "<i4>-7</i4>", int64(-7)},
		{"i8", "<i8>9007199254740993</i8>", int64(9007199254740993)},
		{"string", "<string>a &amp; b</string>", "a & b"},
		{"untyped string", " plain ", " plain "},
		{"boolean", "<boolean>1</boolean>", true},
		{"double", "<double>1.5</double>", 1.5},
		{"nil", "<nil/>", nil},
		{"dateTime", "<dateTime.iso8601>20261102T11:58:41</dateTime.iso8601>", time.Date(2026, 11, 2, 11, 58, 41, 0, time.UTC)},
		{"base64", "<base64>aGk=</base64>", []byte("hi")},
		{"empty array", "<array><data></data></array>", []any{}},
		{"nested", "<struct><member><name>a</name><value><array><data><value><int>1</int></value><value>x</value></data></array></value></member></struct>",
			map[string]any{"a": []any{int64(1), "x"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodeResponse(strings.NewReader("<?xml version='1.0'?>\n<methodResponse><params><param><value>" +
				tc.body + "</value></param></params></methodResponse>"))
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %#v, %v; want %#v", got, err, tc.want)
			}
		})
	}
}

func TestDecodeResponseFiles(t *testing.T) {
	open := func(name string) *os.File {
		f, err := os.Open("testdata/" + name)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	v, err := decodeResponse(open("getBuild.xml"))
	m, _ := v.(map[string]any)
	if err != nil || m["nvr"] != "xz-5.6.3-2.fc42" || m["state"] != int64(1) || m["epoch"] != nil ||
		m["completion_ts"] != 1793620721.220087 || m["extra"].(map[string]any)["source"] == nil {
		t.Fatalf("getBuild: %v %#v", err, v)
	}
	v, err = decodeResponse(open("listRPMs.xml"))
	if l, _ := v.([]any); err != nil || len(l) != 9 || l[0].(map[string]any)["arch"] != "src" {
		t.Fatalf("listRPMs: %v %#v", err, v)
	}
	if v, err = decodeResponse(open("getBuild-none.xml")); err != nil || v != nil {
		t.Fatalf("None: %v %#v", err, v)
	}
	var f *Fault
	if _, err = decodeResponse(open("fault-offline.xml")); !errors.As(err, &f) || f.Code != FaultServerOffline || f.String != "server is offline" {
		t.Fatalf("fault: %v", err)
	}
}

func TestDecodeResponseMalformed(t *testing.T) {
	for _, body := range []string{
		"",
		"not xml",
		"<methodCall/>",
		"<methodResponse><params><param><value><int>x</int></value></param></params></methodResponse>",
		"<methodResponse><params><param><value><float>1</float></value></param></params></methodResponse>",
		"<methodResponse><params><param><value><struct><member><value>1</value></member></struct></value></param></params></methodResponse>",
		"<methodResponse><params><param><value><array><value>1</value></array></value></param></params></methodResponse>",
		"<methodResponse><params><param><value><int>1</int>junk</value></param></params></methodResponse>",
		"<methodResponse><params><param><value><struct><member><name>a</name>",
		"<methodResponse><fault><value><int>1</int></value></fault></methodResponse>",
		"<methodResponse><params><param><value>" + strings.Repeat("<array><data><value>", maxDepth+2),
	} {
		if v, err := decodeResponse(strings.NewReader(body)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%q: %#v, %v", body, v, err)
		}
	}
}

// FuzzDecodeResponse: any input decodes or fails with ErrMalformed or a
// *Fault, and never panics.
func FuzzDecodeResponse(f *testing.F) {
	for _, name := range []string{"getBuild.xml", "listRPMs.xml", "getBuild-none.xml", "fault-offline.xml"} {
		b, err := os.ReadFile("testdata/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_, err := decodeResponse(strings.NewReader(string(b)))
		var fault *Fault
		if err != nil && !errors.Is(err, ErrMalformed) && !errors.As(err, &fault) {
			t.Fatalf("unexpected error %v", err)
		}
	})
}
