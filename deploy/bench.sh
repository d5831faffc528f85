#!/usr/bin/env bash
# bench.sh [BENCH-REGEXP] [PACKAGES...]: the benchmarks, against the real Kafka broker
# (deploy/kafka/kafka.sh up), so that throughput and latency are measured on Apache Kafka
# and each figure sits next to its same-run baseline (raw consume rate, plain consumer
# latency). The broker is stopped on exit unless it was already running.
#
# Figures on a shared 2-core machine are noisy: compare ratios within one run, not
# absolute numbers across runs.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

who=bench.sh
# shellcheck source=deploy/broker.sh
source deploy/broker.sh

bench="${1:-.}"
shift || true
# Broker benchmarks do a fixed amount of work per run and report rates with
# b.ReportMetric, so the default benchtime runs them once; micro-benchmarks
# (codecs, state) get the usual timing.
go test -run '^$' -bench "$bench" ${BENCHTIME:+-benchtime "$BENCHTIME"} -benchmem -timeout 30m "${@:-./...}"
