#!/usr/bin/env bash
# chaos.sh [PACKAGES...]: the long fault tests (named Test...Chaos..., default in ./...)
# with FACTORY2_CHAOS=1, which makes them run for minutes rather than the seconds they
# take under make test. They kill and restart brokers of their own
# (kafkatest.StartBrokers), so no shared broker is started; FACTORY2_KAFKA_BROKERS
# passes through for tests that also want one. FACTORY2_REQUIRE_KAFKA=1: a fault test
# that cannot get Kafka fails rather than skips.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

export FACTORY2_CHAOS=1 FACTORY2_REQUIRE_KAFKA=1
go test -race -count=1 -run 'Chaos' -timeout 60m "${@:-./...}"
