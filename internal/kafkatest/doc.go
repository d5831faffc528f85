// Package kafkatest gives tests a Kafka cluster, topics and clients.
//
// A test asks for a cluster with [Cluster]. When the environment variable
// FACTORY2_KAFKA_BROKERS names brokers (comma separated host:port, e.g. the one
// `make kafka-up` starts on 127.0.0.1:29092), the test runs against them; otherwise it
// gets an in-process kfake cluster on 127.0.0.1 that lives until the test ends. kfake
// speaks the Kafka protocol, transactions and consumer groups included, so most tests
// pass on either.
//
// Tests that need what only Apache Kafka does (log compaction, transactions across
// processes, broker restarts) call [RequireReal] instead: it skips them without
// FACTORY2_KAFKA_BROKERS, or fails them when FACTORY2_REQUIRE_KAFKA=1, which
// `make test` and CI set so that such tests can never be skipped silently there.
//
// Every real-broker test shares the broker with the other test binaries that `go test
// ./...` runs at the same time, so names must not collide: [Topic] creates a topic
// named after the test with a random suffix and deletes it afterwards, and
// [UniqueName] makes group and transactional IDs the same way.
//
// Fault tests that stop, kill and restart brokers get brokers of their own with
// [StartBrokers]: one broker or a three-node cluster, started by
// deploy/kafka/kafka.sh in the test's temporary directory on free loopback ports
// and killed when the test ends. They need Java and the Kafka jars (make deps)
// rather than FACTORY2_KAFKA_BROKERS, and skip in -short mode.
// [Brokers.GroupCoordinatorIndex] and [Brokers.TxnCoordinatorIndex] say which node
// to kill to hit a coordinator. Long fault tests are named Test...Chaos... and run
// longer when [Chaos] reports FACTORY2_CHAOS=1 (make chaos).
//
// Helpers report problems with t.Fatalf, so they must be called from the test's own
// goroutine.
package kafkatest
