package bus

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/factory2/factory2/avro"
)

// Topic suffixes Translate understands. A message's topic matches a
// suffix when it equals it or ends with "." + suffix, so every
// environment and bus prefix ("org.fedoraproject.prod.",
// "org.fedoraproject.stg.", "org.centos.prod.", "/topic/VirtualTopic.eng.",
// "/queue/Consumer.x.y.VirtualTopic.eng.", a Kafka "eng." ...) is accepted.
const (
	topicKojiState   = "buildsys.build.state.change"
	topicKojiTag     = "buildsys.tag"
	topicKojiUntag   = "buildsys.untag"
	topicKojiSign    = "buildsys.rpm.sign"
	topicBrewTag     = "brew.build.tag"
	topicBrewUntag   = "brew.build.untag"
	topicBrewSign    = "brew.sign.rpm"
	topicResult      = "resultsdb.result.new"
	topicTaskotron   = "taskotron.result.new"
	topicWaiver      = "waiverdb.waiver.new"
	topicPungiStatus = "pungi.compose.status.change"
	topicUMBPungi    = "pungi.status-change"
	brewBuildPrefix  = "brew.build."
)

type translateFunc func(*msgCtx) ([]avro.Record, error)

var handlers = []struct {
	suffix string
	fn     translateFunc
}{
	{topicKojiState, kojiStateChange},
	{topicKojiTag, kojiTag},
	{topicKojiUntag, kojiTag},
	{topicKojiSign, rpmSign},
	{brewBuildPrefix + "building", brewStateChange},
	{brewBuildPrefix + "complete", brewStateChange},
	{brewBuildPrefix + "failed", brewStateChange},
	{brewBuildPrefix + "deleted", brewStateChange},
	{brewBuildPrefix + "canceled", brewStateChange},
	{topicBrewTag, brewTag},
	{topicBrewUntag, brewTag},
	{topicBrewSign, rpmSign},
	{topicResult, testResult},
	{topicTaskotron, testResult},
	{topicWaiver, waiver},
	{topicPungiStatus, composeStatus},
	{topicUMBPungi, composeStatus},
}

// matchTopic returns the suffix topic matches and its translator.
func matchTopic(topic string) (string, translateFunc) {
	t := strings.TrimSpace(topic)
	t = strings.TrimPrefix(t, "topic://")
	t = strings.TrimPrefix(t, "/topic/")
	for _, h := range handlers {
		if t == h.suffix || strings.HasSuffix(t, "."+h.suffix) {
			return h.suffix, h.fn
		}
	}
	return "", nil
}

// Translate returns the factory2 events m states, in the order they are
// to be produced. now is the time of ingest: it becomes each record's
// EventTime only when the message carries no time, and its IngestTime,
// provisionally (internal/ingest's Producer sets the ingest time, which
// orders records, when it produces them).
//
// Translate is deterministic: for the same m it returns records with the
// same IDs and, except for IngestTime, the same content. It is safe for
// concurrent use. The error is a *FieldError when the body lacks a field
// the translation needs, wraps ErrUnknownTopic for a topic this package
// does not translate, and wraps ErrMalformed when the body is not a JSON
// object.
func Translate(m Message, now time.Time) ([]avro.Record, error) {
	suffix, fn := matchTopic(m.Topic)
	if fn == nil {
		return nil, fmt.Errorf("%w: %q", ErrUnknownTopic, m.Topic)
	}
	var body map[string]any
	if err := decodeNumbers(m.Body, &body); err != nil || body == nil {
		return nil, fmt.Errorf("%w: %s: body is not a JSON object", ErrMalformed, m.Topic)
	}
	c := &msgCtx{msg: m, suffix: suffix, body: fields{topic: suffix, m: body}, now: now.UTC()}
	recs, err := fn(c)
	if err != nil {
		return nil, err
	}
	base := m.ID
	if base == "" {
		base = contentID(m.Topic, body)
	}
	for i, r := range recs {
		env := r.Env()
		env.ID = base
		if len(recs) > 1 {
			env.ID = base + "#" + strconv.Itoa(i+1)
		}
		env.IngestTime = c.now
		env.Origin = avro.Origin{Topic: m.Topic, MessageID: m.ID}
	}
	return recs, nil
}

// msgCtx is one translation in progress.
type msgCtx struct {
	msg    Message
	suffix string // the matched topic suffix
	body   fields
	now    time.Time
}

// eventTime is the first non-zero of the candidate times, else the ingest
// time: a message with no time of its own happened no later than that.
func (c *msgCtx) eventTime(candidates ...time.Time) time.Time {
	for _, t := range candidates {
		if !t.IsZero() {
			return t.UTC()
		}
	}
	return c.now
}

// contentID identifies a message that has no id by its topic and its body
// in canonical form (keys sorted, numbers as sent, no insignificant
// space): the first 128 bits of a SHA-256, in hex.
func contentID(topic string, body map[string]any) string {
	canon, err := json.Marshal(body)
	if err != nil { // cannot happen for decoded JSON; hash what we have
		canon = []byte(fmt.Sprint(body))
	}
	h := sha256.New()
	h.Write([]byte(topic))
	h.Write([]byte{0})
	h.Write(canon)
	return "sha256:" + hex.EncodeToString(h.Sum(nil)[:16])
}
