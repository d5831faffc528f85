#!/usr/bin/env bash
# test.sh [GO-TEST-FLAGS...] [PACKAGES...]: the whole test suite (default ./...), unit
# and integration tests, against a real Kafka broker (deploy/kafka/kafka.sh up).
# Called by make test after deps and vet.
#
# The broker is stopped on exit, pass or fail, unless it was already running before
# (then it was someone's make kafka-up, and it is left as it was). The exit status is
# 0 only when every package's tests passed (CI reads it).
#
# Each package with tests runs in a `go test -race -v` of its own, two at a time (this
# machine's core count; it also caps the load on the one shared broker on bigger
# machines, and real-broker tests stay independent through kafkatest's unique topic
# and group names). What shows while they run:
#   - which packages are running and for how long: a status line kept up to date on a
#     terminal; otherwise a line when each starts, and every minute which still run;
#   - when a package ends, one line: ok or FAIL, its time, and its tests as counts
#     (passed, failed, skipped); passing tests are not listed;
#   - a failed test in full: its --- FAIL line and everything it logged; a skipped
#     test with its reason; build errors, panics and timeouts as go test printed them;
#   - at the end, the summary line `tests: N passed, M failed, K skipped`.
# The whole go test output is kept in a directory named at the end.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

who=test.sh
# shellcheck source=deploy/broker.sh
source deploy/broker.sh
export FACTORY2_REQUIRE_KAFKA=1

jobs=2
module="$(go list -m)"
flags=()
patterns=()
for a in "$@"; do
	if [[ $a == -* ]]; then flags+=("$a"); else patterns+=("$a"); fi
done
mapfile -t pkgs < <(go list -f '{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}}{{end}}' "${patterns[@]:-./...}")
# deploy/check, the tests of deploy/'s manifests, rules and dashboard, is a
# module of its own (its dependencies stay out of the binary's go.mod), so
# ./... does not list it: the whole suite adds it, run in its directory.
checks="$module/deploy/check"
((${#patterns[@]} > 0)) || pkgs+=("$checks")
n=${#pkgs[@]}
((n > 0)) || {
	echo "$who: no package with tests in ${patterns[*]:-./...}" >&2
	exit 1
}
out="$(mktemp -d "${TMPDIR:-/tmp}/factory2-test.XXXXXX")"
tty=0
[[ -t 2 ]] && tty=1

short() { printf '%s\n' "${1#"$module"/}"; }

# Each package runs in a process group of its own, so that an interrupted run can end
# it whole (go test and its test binary) without touching anything else.
declare -A running=() # index -> start time (SECONDS)
declare -A pgid=()    # index -> process group of its go test
stop_tests() {
	local i
	for i in "${!pgid[@]}"; do
		kill -TERM -- "-${pgid[$i]}" 2>/dev/null || true
	done
}
trap 'stop_tests; stop_broker' EXIT

start() { # start INDEX: run package INDEX's tests in the background
	local i=$1 dir=.
	[[ ${pkgs[$i]} == "$checks" ]] && dir=deploy/check
	setsid bash -c 'go -C "$3" test -race -count=1 -timeout 40m -v "${@:4}" "$2" >"$1.out" 2>&1; echo $? >"$1.rc.tmp"; mv "$1.rc.tmp" "$1.rc"' \
		_ "$out/$i" "${pkgs[$i]}" "$dir" "${flags[@]}" &
	pgid[$i]=$!
	running[$i]=$SECONDS
	((tty)) || echo "$who: started $(short "${pkgs[$i]}")" >&2
}

# status prints which packages run, for how long (on a terminal: one line, redrawn).
status() {
	local i parts=()
	for i in "${!running[@]}"; do
		parts+=("$(short "${pkgs[$i]}") $((SECONDS - running[$i]))s")
	done
	local IFS=,
	if ((tty)); then
		printf '\r\033[K%s: %d of %d done; running:%s' "$who" "$finished" "$n" "${parts[*]/#/ }" >&2
	else
		printf '%s: %d of %d done; still running:%s\n' "$who" "$finished" "$n" "${parts[*]/#/ }" >&2
	fi
}

# report INDEX: the package's result line, its failures in full, and its counts.
report() {
	local i=$1 rc
	rc=$(<"$out/$i.rc")
	((tty)) && printf '\r\033[K' >&2
	awk -v pkg="$(short "${pkgs[$i]}")" -v rc="$rc" -v secs="$((SECONDS - running[$i]))" -v counts="$out/$i.counts" '
		# Lines between a "=== RUN/CONT/NAME" marker and the next belong to that test.
		function result(kind) {
			name = $3
			if (kind == "PASS") { pass++; delete buf[name]; return }
			if (kind == "SKIP") skip++; else fail++
			print
			if (name in buf) { printf "%s", buf[name]; delete buf[name] }
		}
		dump { print; if ($1 == "ok" || $1 == "FAIL") dump = 0; next }
		/^=== (RUN|CONT|NAME|PAUSE) / { if ($3 != "") cur = $3; next }
		/^ *--- PASS: / { result("PASS"); next }
		/^ *--- SKIP: / { result("SKIP"); next }
		/^ *--- FAIL: / { result("FAIL"); next }
		/^(panic: |fatal error: |\*\*\* Test killed)/ { dump = 1; print; next }
		/^(PASS|FAIL)$/ { next }
		/^(ok |FAIL\t)/ { next }
		cur != "" { buf[cur] = buf[cur] $0 "\n"; next }
		{ print } # build errors, and whatever else go test says outside a test
		END {
			verdict = (rc == 0) ? "ok  " : "FAIL"
			printf "%s %-40s %5ds  %d passed", verdict, pkg, secs, pass
			if (fail) printf ", %d failed", fail
			if (skip) printf ", %d skipped", skip
			if (rc != 0 && !fail) printf " (go test exited %d: see above)", rc
			printf "\n"
			printf "%d %d %d\n", pass, fail, skip > counts
		}
	' "$out/$i.out"
	unset "running[$i]" "pgid[$i]"
	((rc == 0)) || failed=1
}

echo "$who: $n packages with tests, $jobs at a time" >&2
next=0 finished=0 failed=0 last_status=$SECONDS
while ((finished < n)); do
	while ((${#running[@]} < jobs && next < n)); do
		start "$next"
		next=$((next + 1))
	done
	sleep 0.5
	for i in "${!running[@]}"; do
		if [[ -f $out/$i.rc ]]; then
			report "$i"
			finished=$((finished + 1))
		fi
	done
	if ((${#running[@]} > 0)) && { ((tty)) || ((SECONDS - last_status >= 60)); }; then
		status
		last_status=$SECONDS
	fi
done
((tty)) && printf '\r\033[K' >&2

cat "$out"/*.counts | awk '{ p += $1; f += $2; s += $3 } END { printf "tests: %d passed, %d failed, %d skipped\n", p, f, s }'
echo "$who: full go test output, a file per package: $out" >&2
exit "$failed"
