#!/usr/bin/env bash
# test.sh [PACKAGES...]: the whole test suite (default ./...), unit and integration
# tests in one go test run, against a real Kafka broker (deploy/kafka/kafka.sh up).
# Called by make test after deps and vet.
#
# The broker is stopped on exit, pass or fail, unless it was already running before
# (then it was someone's make kafka-up, and it is left as it was). The exit status is
# go test's.
#
# go test runs with -v so that every test's name and result shows, but its output is
# filtered: a line per test result, the log of failed and skipped tests, package
# summaries, build errors and panics. The full output is kept in a file named at the end.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

who=test.sh
# shellcheck source=deploy/broker.sh
source deploy/broker.sh
export FACTORY2_REQUIRE_KAFKA=1

log="$(mktemp "${TMPDIR:-/tmp}/factory2-test.XXXXXX.log")"

# -p 2: at most two test binaries at once. That is this machine's core count (and go's
# default here), and it caps the load on the one shared broker on bigger machines too;
# real-broker tests stay independent through kafkatest's unique topic and group names.
set +e
go test -race -count=1 -p 2 -timeout 40m -v "${@:-./...}" 2>&1 | tee "$log" | awk '
	# With -p > 1 go test prints each package'"'"'s output in one piece once it has run,
	# so lines between a "=== RUN/CONT/NAME" and the next marker belong to that test.
	function result(kind) {
		name = $3
		if (kind == "PASS") { pass++; print; delete out[name]; return }
		if (kind == "SKIP") { skip++ } else { fail++ }
		print
		if (name in out) { printf "%s", out[name]; delete out[name] }
	}
	dump { print; if ($1 == "ok" || $1 == "FAIL") { dump = 0; cur = "" }; next }
	/^=== (RUN|CONT|NAME|PAUSE) / { if ($3 != "") cur = $3; next }
	/^ *--- PASS: / { result("PASS"); next }
	/^ *--- SKIP: / { result("SKIP"); next }
	/^ *--- FAIL: / { result("FAIL"); next }
	/^(panic: |fatal error: )/ { dump = 1; print; next }
	/^(PASS|FAIL)$/ { next }
	/^(ok |FAIL\t|\?)/ { print; cur = ""; split("", out); next }
	cur != "" { out[cur] = out[cur] $0 "\n"; next }
	{ print }
	END { printf "tests: %d passed, %d failed, %d skipped\n", pass, fail, skip }
'
status=${PIPESTATUS[0]}
set -e
echo "test.sh: full go test output: $log" >&2
exit "$status"
