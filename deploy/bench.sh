#!/usr/bin/env bash
# bench.sh [BENCH-REGEXP] [PACKAGES...]: the benchmarks, against the real Kafka broker
# (deploy/kafka/kafka.sh up), so that throughput and latency are measured on Apache Kafka
# and each figure sits next to its same-run baseline (raw consume rate, plain consumer
# latency, the Kafka Streams peer, the ingest rate). The broker is stopped on exit unless it was already
# running; with FACTORY2_KAFKA_BROKERS set, those brokers are used and none is started.
#
# It first builds the Kafka Streams peer of BenchmarkKafkaStreams (deploy/kstreams, with
# Maven, offline once its jars are in ~/.m2) when its sources changed, and passes its
# classpath as FACTORY2_KSTREAMS_CLASSPATH. Sizes: FACTORY2_BENCH_EVENTS, _KEYS, _ROUNDS,
# _THREADS (processors/bench_test.go); FACTORY2_COMPOSE_PACKAGES (20000), _RUNS (3: median
# and worst), _SAMPLES (200) for the compose scale benchmarks (processors/compose/
# bench_test.go); FACTORY2_KSTREAMS_JVM_OPTS adds JVM options.
#
# Figures on a shared 2-core machine are noisy: compare ratios within one run, not
# absolute numbers across runs.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

who=bench.sh
log() { printf '%s: %s\n' "$who" "$*" >&2; }

# build_peer builds deploy/kstreams into target/classes and target/lib unless the last
# build is newer than every source. Maven's output is shown only on failure.
build_peer() {
	local dir=deploy/kstreams
	local target=$dir/target stamp=$dir/target/.built
	if [[ -f $stamp && -z $(find "$dir/pom.xml" "$dir/src" -newer "$stamp" -print -quit) ]]; then
		return
	fi
	command -v mvn >/dev/null || {
		log "mvn not found (make deps installs it)"
		exit 1
	}
	log "building the Kafka Streams peer ($dir)"
	rm -rf "$target/lib" "$stamp" # jars of an older version would stay on the classpath
	mkdir -p "$target"
	# Offline first: it works once ~/.m2 has everything, with no network.
	if ! mvn -o -q -B -f "$dir/pom.xml" compile </dev/null >"$target/mvn.log" 2>&1 &&
		! mvn -q -B -f "$dir/pom.xml" compile </dev/null >"$target/mvn.log" 2>&1; then
		cat "$target/mvn.log" >&2
		log "Maven could not build $dir (log: $target/mvn.log)"
		exit 1
	fi
	touch "$stamp"
}

build_peer
peer="$PWD/deploy/kstreams/target"
export FACTORY2_KSTREAMS_CLASSPATH="$peer/classes:$peer/lib/*"

if [[ -n ${FACTORY2_KAFKA_BROKERS:-} ]]; then
	log "using FACTORY2_KAFKA_BROKERS=$FACTORY2_KAFKA_BROKERS; no broker started"
else
	# shellcheck source=deploy/broker.sh
	source deploy/broker.sh
fi

bench="${1:-.}"
shift || true
# Broker benchmarks do a fixed amount of work per run and report rates with
# b.ReportMetric, so the default benchtime runs them once; micro-benchmarks
# (codecs, state) get the usual timing.
# COUNT=5 runs each benchmark five times in a row (the latency target is "in each of five
# consecutive runs").
go test -run '^$' -bench "$bench" ${BENCHTIME:+-benchtime "$BENCHTIME"} ${COUNT:+-count "$COUNT"} -benchmem -timeout 60m "${@:-./...}"
