// Package topics is the catalog of factory2's Kafka topics: the input
// event topics infrastructure hooks produce to, the decision topics
// services subscribe to, the dead-letter topic, and the internal changelog
// (and, later, repartition) topics of the processors.
//
// Every topic name is the catalog's prefix (default "factory2.") followed
// by the topic's alias, e.g. "factory2.events.build". The catalog also
// fixes each topic's partition count, replication factor and configs, and
// what its records are keyed by:
//
//   - everything about a subject (build, sign, test result and waiver
//     events on an NVR, and its gating.yaml) is keyed by the subject
//     identifier, so those topics are co-partitioned: partition p of each
//     holds the same subjects, and one processor task sees all of them;
//   - compose events are keyed by compose id.
//
// Co-partitioned topics must have the same partition count and the same
// partitioner (Kafka's murmur2 on the key, which franz-go, the Java client
// and librdkafka's "murmur2_random" share), which Ensure checks.
//
// Ensure creates what is missing and reports drift (a wrong partition
// count or config) without destroying data: repartitioning a keyed topic
// would move subjects between partitions, so it is left to an operator.
package topics
