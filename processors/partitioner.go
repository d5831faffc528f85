package processors

import "github.com/twmb/franz-go/pkg/kgo"

// partitioner sends changelog records to the partition set on the record
// (the task's own partition, so changelog partition p holds task p's
// state), and records to the spec's PartitionedOutputs too, and every
// other record by Kafka's murmur2 hash of its key, as the Java client and
// librdkafka do, so that decisions keyed by subject land where any other
// producer would put them.
func partitioner(changelogs map[string]string, partitioned []string) kgo.Partitioner {
	manual := map[string]bool{}
	for _, t := range changelogs {
		manual[t] = true
	}
	for _, t := range partitioned {
		manual[t] = true
	}
	return &routedPartitioner{manual: manual, byKey: kgo.StickyKeyPartitioner(nil), direct: kgo.ManualPartitioner()}
}

type routedPartitioner struct {
	manual        map[string]bool
	byKey, direct kgo.Partitioner
}

func (p *routedPartitioner) ForTopic(topic string) kgo.TopicPartitioner {
	if p.manual[topic] {
		return p.direct.ForTopic(topic)
	}
	return p.byKey.ForTopic(topic)
}
