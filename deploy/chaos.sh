#!/usr/bin/env bash
# chaos.sh [PACKAGES...]: the long fault tests (named Test...Chaos..., default in ./...)
# with FACTORY2_CHAOS=1, which makes them run for minutes rather than the seconds they
# take under make test. They kill and restart brokers of their own
# (kafkatest.StartBrokers); the shared broker is started too (deploy/broker.sh), for
# what they run beside the faults, and stopped on exit unless it was already running.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

who=chaos.sh
# shellcheck source=deploy/broker.sh
source deploy/broker.sh
export FACTORY2_CHAOS=1 FACTORY2_REQUIRE_KAFKA=1

go test -race -count=1 -run 'Chaos' -timeout 60m "${@:-./...}"
