// Package processors is factory2's stateful stream processing runtime and,
// in its subpackages, the domain processors that run on it.
//
// A processor is a deterministic function of (its state, an input record)
// to state changes and output records (Processor). The runtime (Runner)
// gives it a consumer group over co-partitioned input topics, one task per
// assigned partition with a Pebble state DB (package state), exactly-once
// consume-process-produce through Kafka transactions, a compacted
// changelog per state store from which a task restores on any instance,
// wall-clock punctuation, and a dead-letter topic for records that cannot
// be decoded or that the processor rejects.
//
// DESIGN.md holds the exactly-once argument; the comments on Runner.commit
// and task.applyCommitted state the order it relies on.
package processors
