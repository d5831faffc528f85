#!/usr/bin/env bash
# chaos.sh [PACKAGES...]: the fault tests (brokers stopped, killed and restarted:
# Test...RidesOut...; default in ./processors/) with FACTORY2_CHAOS=1, which makes their
# outages last a minute rather than the seconds they take under make test, run
# CHAOS_COUNT times (default 3). It ends with the recovery times the tests logged
# (time from the last broker's return to the first new decision, or to all of them). They kill and restart brokers of their own
# (kafkatest.StartBrokers), so no shared broker is started; FACTORY2_KAFKA_BROKERS
# passes through for tests that also want one. FACTORY2_REQUIRE_KAFKA=1: a fault test
# that cannot get Kafka fails rather than skips.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

export FACTORY2_CHAOS=1 FACTORY2_REQUIRE_KAFKA=1
log="$(mktemp "${TMPDIR:-/tmp}/factory2-chaos.XXXXXX.log")"
set +e
go test -race -count="${CHAOS_COUNT:-3}" -v -run 'RidesOut' -timeout 90m "${@:-./processors/}" 2>&1 |
	tee "$log" | grep -E '^(=== RUN|\s*--- (PASS|FAIL)|ok|FAIL|panic)|broker stopped for|killed|after the (broker|last)'
status=${PIPESTATUS[0]}
set -e
echo "chaos.sh: recovery times (median and worst per test, in seconds):"
awk '/^=== RUN/ { name = $3 }
	/after the (broker|last)/ {
		for (i = 1; i <= NF; i++) if ($i ~ /^[0-9.]+(ms|s|m[0-9.]+s)$/ && $(i+1) == "after") d = $i
		v = d; if (v ~ /ms$/) { sub(/ms$/, "", v); v /= 1000 } else if (v ~ /m/) { split(v, a, "m"); sub(/s$/, "", a[2]); v = a[1] * 60 + a[2] } else { sub(/s$/, "", v) }
		n[name]++; t[name, n[name]] = v + 0
	}
	END {
		for (k in n) {
			m = n[k]; for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (t[k, j] < t[k, i]) { x = t[k, i]; t[k, i] = t[k, j]; t[k, j] = x }
			printf "  %s: runs %d, median %.2f, worst %.2f\n", k, m, t[k, int((m + 1) / 2)], t[k, m]
		}
	}' "$log"
echo "chaos.sh: full output: $log" >&2
exit "$status"
