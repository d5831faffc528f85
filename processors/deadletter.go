package processors

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/factory2/factory2/avro"
)

// Dead-letter headers. Every dead letter says why (reason, kind), where
// the original is (processor, topic, partition, offset, record time), and
// what it was (size and SHA-256 of the original value; truncated is
// "true" when the value carried is only its first MaxDeadLetterBytes).
const (
	hdrReason     = "factory2.dlq.reason"
	hdrKind       = "factory2.dlq.kind"
	hdrProcessor  = "factory2.dlq.processor"
	hdrTopic      = "factory2.dlq.topic"
	hdrPartition  = "factory2.dlq.partition"
	hdrOffset     = "factory2.dlq.offset"
	hdrRecordTime = "factory2.dlq.record_time"
	hdrSize       = "factory2.dlq.size"
	hdrSHA256     = "factory2.dlq.sha256"
	hdrTruncated  = "factory2.dlq.truncated"
	hdrDropped    = "factory2.dlq.headers_dropped"
)

// Bounds of what a dead letter copies from the original besides its
// value: a dead letter must always fit in a Kafka record, or the input it
// reports would stop the runner in turn.
const (
	maxDeadLetterKey     = 4 << 10
	maxDeadLetterReason  = 4 << 10
	maxDeadLetterHeaders = 16 << 10
)

// deadLetter is one record for the dead-letter topic.
type deadLetter struct {
	kind, reason string
	topic        string
	partition    int32
	offset       int64
	timestamp    time.Time
	key, value   []byte
	headers      []kgo.RecordHeader
}

// deadLetterRecord sends rec to the dead-letter topic, in the open
// transaction, with headers saying why (kind, reason), where from and
// when. metric is the reason label it is counted under (one of
// deadLetterReasons).
func (r *Runner) deadLetterRecord(rec *kgo.Record, kind, metric, reason string) {
	r.metrics.deadLettered.WithLabelValues(r.alias(rec.Topic), metric).Inc()
	r.log.Warn("dead-lettering record", "topic", rec.Topic, "partition", rec.Partition, "offset", rec.Offset, "kind", kind, "reason", truncate(reason, 512))
	r.produceDeadLetter(deadLetter{
		kind: kind, reason: reason,
		topic: rec.Topic, partition: rec.Partition, offset: rec.Offset, timestamp: rec.Timestamp,
		key: rec.Key, value: rec.Value, headers: rec.Headers,
	})
}

// produceDeadLetter produces d in the open transaction, truncated to fit.
func (r *Runner) produceDeadLetter(d deadLetter) {
	sum := sha256.Sum256(d.value)
	value, truncated := d.value, false
	if len(value) > r.cfg.MaxDeadLetterBytes {
		value, truncated = value[:r.cfg.MaxDeadLetterBytes], true
	}
	key := d.key
	if len(key) > maxDeadLetterKey {
		key, truncated = key[:maxDeadLetterKey], true
	}
	var headers []kgo.RecordHeader
	size := 0
	for _, h := range d.headers {
		size += len(h.Key) + len(h.Value)
	}
	if size <= maxDeadLetterHeaders {
		headers = append(headers, d.headers...)
	} else {
		headers = append(headers, kgo.RecordHeader{Key: hdrDropped, Value: []byte(strconv.Itoa(len(d.headers)))})
	}
	headers = append(headers,
		kgo.RecordHeader{Key: hdrReason, Value: []byte(truncate(d.reason, maxDeadLetterReason))},
		kgo.RecordHeader{Key: hdrKind, Value: []byte(d.kind)},
		kgo.RecordHeader{Key: hdrProcessor, Value: []byte(r.spec.Name)},
		kgo.RecordHeader{Key: hdrTopic, Value: []byte(d.topic)},
		kgo.RecordHeader{Key: hdrPartition, Value: []byte(strconv.Itoa(int(d.partition)))},
		kgo.RecordHeader{Key: hdrOffset, Value: []byte(strconv.FormatInt(d.offset, 10))},
		kgo.RecordHeader{Key: hdrRecordTime, Value: []byte(d.timestamp.UTC().Format(time.RFC3339Nano))},
		kgo.RecordHeader{Key: hdrSize, Value: []byte(strconv.Itoa(len(d.value)))},
		kgo.RecordHeader{Key: hdrSHA256, Value: []byte(hex.EncodeToString(sum[:]))},
	)
	if truncated {
		headers = append(headers, kgo.RecordHeader{Key: hdrTruncated, Value: []byte("true")})
	}
	r.produce(context.Background(), &kgo.Record{Topic: r.deadLetter, Key: key, Value: value, Headers: headers}, nil, nil)
}

// sendQuarantined puts the quarantined changelog values of every task in
// the open transaction: each value to the dead-letter topic, and a
// tombstone for its key to the changelog (the key was already deleted
// locally by the restore). Called with mu held, in a transaction.
func (r *Runner) sendQuarantined() {
	for _, t := range r.tasks {
		if len(t.quarantined) == 0 || t.quarantinedSent {
			continue
		}
		for _, q := range t.quarantined {
			r.metrics.deadLettered.WithLabelValues("changelog", "quarantined").Inc()
			r.produceDeadLetter(deadLetter{
				kind: "quarantined", reason: q.reason,
				topic: r.changelogs[q.store], partition: t.partition, offset: q.offset,
				key: q.key, value: q.value,
			})
			// The key is deleted locally already; deleting it in the
			// pending batch puts its tombstone in the changelog (unless
			// the transaction writes the key again).
			if err := t.batch.Delete(q.store, q.key); err != nil {
				r.setProduceErr(&StorageError{fmt.Errorf("%s: quarantining a key of %s: %w", t.label, q.store, err)})
			}
		}
		t.quarantinedSent = true
		r.dirty = true
	}
}

// truncate cuts s to at most n bytes.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// suspect is an input record to dead-letter when it comes round again:
// reason is why (the header), metric the reason label it is counted
// under.
type suspect struct{ reason, metric string }

// errOutputTooLarge is wrapped by the error of an output over its
// record limit.
var errOutputTooLarge = errors.New("output over the record limit")

// decodeReason is the dead-letter reason of a record that did not
// decode: unknown_schema when its writer schema is unknown, else decode.
func decodeReason(err error) string {
	if errors.As(err, new(*avro.UnknownSchemaError)) {
		return "unknown_schema"
	}
	return "decode"
}

// poisonReason is the dead-letter reason of a record processing failed
// for: too_large when its output or state exceeds a record limit (ours
// or Kafka's), else poison.
func poisonReason(err error) string {
	switch {
	case errors.Is(err, errOutputTooLarge), errors.As(err, new(*ValueTooLargeError)),
		errors.Is(err, kerr.MessageTooLarge), errors.Is(err, kerr.RecordListTooLarge):
		return "too_large"
	}
	return "poison"
}
