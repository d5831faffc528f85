package bus

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Message is one bus message, independent of the envelope it came in.
type Message struct {
	// Topic is the message's full original topic, e.g.
	// "org.fedoraproject.prod.buildsys.tag" or
	// "/topic/VirtualTopic.eng.brew.build.complete".
	Topic string
	// ID is the message id the bus gave it (fedora-messaging id, fedmsg
	// msg_id, UMB message-id); empty when the message has none.
	ID string
	// Headers are the message's headers (fedora-messaging headers, UMB
	// properties); nil when it has none. Numbers are json.Number.
	Headers map[string]any
	// Time is when the message was sent, from its envelope (header
	// sent-at, fedmsg timestamp, UMB header timestamp); zero when the
	// envelope has none.
	Time time.Time
	// Body is the message body, a JSON object.
	Body json.RawMessage
}

// maxWrapDepth bounds how many envelopes ParseMessage unwraps.
const maxWrapDepth = 4

// ParseMessage finds the topic, id, headers, send time and body of one
// message, accepting:
//
//   - fedora-messaging JSON: {"topic", "headers", "id", "body"} (as written
//     by fedora-messaging's dumps and the fedora-messaging CLI), and the
//     same with a whole fedmsg as the body (the 2018-2019 fedmsg-to-AMQP
//     bridge), in which case the inner fedmsg's msg_id and timestamp win;
//   - fedmsg and datagrepper JSON: {"topic", "msg", "msg_id", "timestamp", ...};
//   - Red Hat UMB messages in either of those forms, with topics like
//     "/topic/VirtualTopic.eng.brew.build.complete" and the message id in
//     the headers' "message-id";
//   - a moksha hub wrapper {"body": <one of the above>};
//   - a bare body, when defaultTopic is not empty.
//
// defaultTopic is used only when the message carries no topic itself. The
// error wraps ErrMalformed when data is not JSON, not an object, has no
// topic (and defaultTopic is empty), or its body is not a JSON object.
func ParseMessage(data []byte, defaultTopic string) (Message, error) {
	top, err := decodeObject(data)
	if err != nil {
		return Message{}, err
	}
	return parseEnvelope(top, data, defaultTopic, 0)
}

func decodeObject(data []byte) (map[string]json.RawMessage, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if top == nil {
		return nil, fmt.Errorf("%w: not a JSON object", ErrMalformed)
	}
	return top, nil
}

func parseEnvelope(top map[string]json.RawMessage, raw []byte, defaultTopic string, depth int) (Message, error) {
	topic := rawString(top["topic"])
	body, hasBody := nonNull(top["body"])
	msg, hasMsg := nonNull(top["msg"])
	_, hasMsgID := nonNull(top["msg_id"])
	_, hasStamp := nonNull(top["timestamp"])

	_, hasHeaders := nonNull(top["headers"])
	_, hasID := nonNull(top["id"])
	if topic == "" && hasBody && (hasHeaders || hasID) {
		topic = defaultTopic // fedora-messaging without a topic
	}

	switch {
	case hasBody && topic != "":
		// fedora-messaging, or UMB as {topic, headers, body}.
		m := Message{Topic: topic, Headers: rawHeaders(top["headers"]), ID: rawString(top["id"])}
		if m.ID == "" {
			m.ID = headerString(m.Headers, "message-id")
		}
		m.Time = headerTime(m.Headers)
		body = unquoteBody(body)
		if inner, ok := fedmsgInside(body); ok && depth < maxWrapDepth {
			im, err := parseEnvelope(inner, body, topic, depth+1)
			if err != nil {
				return Message{}, err
			}
			if im.ID != "" {
				m.ID = im.ID
			}
			if !im.Time.IsZero() {
				m.Time = im.Time
			}
			body = im.Body
		}
		m.Body = body
		return m, checkBody(m)

	case hasMsg && (topic != "" || hasMsgID || hasStamp):
		// fedmsg, datagrepper, UMB in datagrepper form.
		m := Message{Topic: topic, Headers: rawHeaders(top["headers"]), ID: rawString(top["msg_id"])}
		if m.Topic == "" {
			m.Topic = defaultTopic
		}
		if m.Topic == "" {
			return Message{}, fmt.Errorf("%w: %w", ErrMalformed, ErrNoTopic)
		}
		if m.ID == "" {
			m.ID = headerString(m.Headers, "message-id")
		}
		if t, ok := unixTime(top["timestamp"]); ok {
			m.Time = t
		} else {
			m.Time = headerTime(m.Headers)
		}
		m.Body = unquoteBody(msg)
		return m, checkBody(m)

	case hasBody && len(top) == 1 && depth < maxWrapDepth:
		// moksha hub wrapper: {"body": {...}}.
		inner, err := decodeObject(body)
		if err != nil {
			return Message{}, err
		}
		return parseEnvelope(inner, body, defaultTopic, depth+1)
	}

	if defaultTopic == "" {
		return Message{}, fmt.Errorf("%w: %w and no body (a bare body needs a default topic)", ErrMalformed, ErrNoTopic)
	}
	m := Message{Topic: defaultTopic, Body: json.RawMessage(bytes.TrimSpace(raw))}
	return m, checkBody(m)
}

// fedmsgInside reports whether body is itself a whole fedmsg (has "msg"
// and one of the fedmsg envelope fields), as the fedmsg-to-AMQP bridge
// sent them.
func fedmsgInside(body json.RawMessage) (map[string]json.RawMessage, bool) {
	var inner map[string]json.RawMessage
	if json.Unmarshal(body, &inner) != nil || inner == nil {
		return nil, false
	}
	if _, ok := nonNull(inner["msg"]); !ok {
		return nil, false
	}
	for _, k := range []string{"msg_id", "timestamp", "topic", "i"} {
		if _, ok := nonNull(inner[k]); ok {
			return inner, true
		}
	}
	return nil, false
}

func checkBody(m Message) error {
	b := bytes.TrimSpace(m.Body)
	if len(b) == 0 || b[0] != '{' {
		return fmt.Errorf("%w: %s: body is not a JSON object", ErrMalformed, m.Topic)
	}
	return nil
}

func nonNull(r json.RawMessage) (json.RawMessage, bool) {
	r = bytes.TrimSpace(r)
	if len(r) == 0 || bytes.Equal(r, []byte("null")) {
		return nil, false
	}
	return r, true
}

// unquoteBody turns a body sent as a JSON string holding JSON (STOMP and
// some AMQP clients do that) into the JSON it holds.
func unquoteBody(r json.RawMessage) json.RawMessage {
	if len(r) == 0 || r[0] != '"' {
		return r
	}
	var s string
	if json.Unmarshal(r, &s) != nil {
		return r
	}
	if t := strings.TrimSpace(s); json.Valid([]byte(t)) {
		return json.RawMessage(t)
	}
	return r
}

// rawString returns r as a string when it is a JSON string or number.
func rawString(r json.RawMessage) string {
	r, ok := nonNull(r)
	if !ok {
		return ""
	}
	var v any
	if decodeNumbers(r, &v) != nil {
		return ""
	}
	s, _ := asString(v)
	return s
}

func rawHeaders(r json.RawMessage) map[string]any {
	r, ok := nonNull(r)
	if !ok {
		return nil
	}
	var h map[string]any
	if decodeNumbers(r, &h) != nil {
		return nil
	}
	return h
}

func headerString(h map[string]any, key string) string {
	s, _ := asString(h[key])
	return s
}

// headerTime is the send time in headers: fedora-messaging's "sent-at"
// (RFC 3339), else UMB's "timestamp" (milliseconds since the epoch).
func headerTime(h map[string]any) time.Time {
	if s := headerString(h, "sent-at"); s != "" {
		if t, ok := parseTimeString(s); ok {
			return t
		}
	}
	if s := headerString(h, "timestamp"); s != "" {
		if t, ok := parseUnix(s); ok {
			return t
		}
	}
	return time.Time{}
}

func unixTime(r json.RawMessage) (time.Time, bool) {
	s := rawString(r)
	if s == "" {
		return time.Time{}, false
	}
	return parseUnix(s)
}
