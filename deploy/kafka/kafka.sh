#!/usr/bin/env bash
# kafka.sh: fetch the Apache Kafka jars with Maven and run local KRaft brokers
# (combined broker+controller) on 127.0.0.1 for factory2's integration tests.
#
#   kafka.sh fetch               jars of Kafka $KAFKA_VERSION into .cache/<version>/lib
#   kafka.sh check               fail, saying what is missing, unless Java 17+ and the jars are there
#   kafka.sh up                  one broker on fresh storage; prints its bootstrap address
#   kafka.sh up-cluster          three brokers (3 voters); prints the bootstrap addresses
#   kafka.sh up-secure           one secured broker (TLS, SASL/SCRAM, ACLs; see below); prints
#                                its SASL_SSL bootstrap address
#   kafka.sh down [single|cluster|secure|all]   stop what up/up-cluster/up-secure started (default: all)
#   kafka.sh status              what runs
#   kafka.sh stop-broker NODE... | kill-broker NODE... | start-broker NODE... | restart-broker NODE...
#                                NODE is `single`, `secure` or cluster node 1..3: SIGTERM, SIGKILL,
#                                start on its data (prints the addresses), stop then start
#   kafka.sh clean               down, then remove run/ (storage and logs)
#
# The secured broker (node run/secure/) is what factory2's Kafka security is tested
# against: a CA, the broker's certificate and a client certificate made with openssl in
# run/secure/tls/ (ca.crt, broker.crt, client.crt and client.key); listeners SASL_SSL
# (clients: SCRAM-SHA-256 and SCRAM-SHA-512, port $FACTORY2_KAFKA_SECURE_PORT, 29492),
# CONTROLLER (29493) and INTERNAL (inter-broker, 29494), both TLS with a client
# certificate required; the StandardAuthorizer with allow.everyone.if.no.acl.found=false
# and super users User:admin and User:CN=broker (the broker's own certificate) only.
# SCRAM users admin, factory2 (the processors) and hooks (ingestion) are created when
# the storage is formatted, with random passwords in run/secure/secrets/<user>.password;
# run/secure/admin.properties is a Kafka tool's --command-config for admin. Only admin
# may do anything until ACLs are granted (factory2 topics acls).
#
# Several independent instances run side by side when each caller names its own run
# directory and ports (FACTORY2_KAFKA_RUN, FACTORY2_KAFKA_PORT, ...; see README.md). The
# ports are read from the environment only when a node is created; a node started
# again on its data keeps the ports its config names.
#
# Everything this script starts is a java process whose command line names its own run
# directory (run/<name>/); pid files, liveness and `down` rely on that, never on process
# names. Progress goes to stderr; stdout carries only the bootstrap address line.
# With FACTORY2_KAFKA_OWNER_PID set, every broker started is SIGKILLed as soon as that
# process has exited (a watchdog per broker checks every second), so that a test
# process that dies without cleaning up leaves no broker behind.
set -euo pipefail

# Kafka 4.4.0, the newest release; its broker needs Java 17+, which Debian 12 ships.
KAFKA_VERSION="${KAFKA_VERSION:-4.4.0}"
# The log4j-core that kafka-server $KAFKA_VERSION depends on (see mvn dependency:tree);
# pom.xml adds its SLF4J binding at this version. Change it with KAFKA_VERSION.
LOG4J_VERSION="${LOG4J_VERSION:-2.25.5}"

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
self="$here/$(basename "${BASH_SOURCE[0]}")"
# Absolute paths: a node's directory names its broker on the java command line, which
# must read the same whatever directory a later call runs from.
cache_dir="$(realpath -m "${FACTORY2_KAFKA_CACHE:-$here/.cache}")/$KAFKA_VERSION"
lib_dir="$cache_dir/lib"
marker="$cache_dir/.complete"
run_root="$(realpath -m "${FACTORY2_KAFKA_RUN:-$here/run}")"

host=127.0.0.1
single_port="${FACTORY2_KAFKA_PORT:-29092}"
single_controller_port="${FACTORY2_KAFKA_CONTROLLER_PORT:-29093}"
cluster_ports="${FACTORY2_KAFKA_CLUSTER_PORTS:-29192,29292,29392}"
cluster_controller_ports="${FACTORY2_KAFKA_CLUSTER_CONTROLLER_PORTS:-29193,29293,29393}"
read -r -a cluster_ports <<<"${cluster_ports//,/ }"
read -r -a cluster_controller_ports <<<"${cluster_controller_ports//,/ }"
secure_port="${FACTORY2_KAFKA_SECURE_PORT:-29492}"
secure_controller_port="${FACTORY2_KAFKA_SECURE_CONTROLLER_PORT:-29493}"
secure_internal_port="${FACTORY2_KAFKA_SECURE_INTERNAL_PORT:-29494}"
heap="${FACTORY2_KAFKA_HEAP:-512m}"
# Extra JVM options for the brokers, split on spaces (e.g. -XX:TieredStopAtLevel=1).
read -r -a jvm_opts <<<"${FACTORY2_KAFKA_JVM_OPTS:-}"
# Extra broker properties, one key=value per line, after (and so over) the defaults below.
extra_properties="${FACTORY2_KAFKA_PROPERTIES:-}"
up_timeout="${FACTORY2_KAFKA_UP_TIMEOUT:-90}"
stop_timeout="${FACTORY2_KAFKA_STOP_TIMEOUT:-30}"

log() { printf 'kafka.sh: %s\n' "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}

java_bin() {
	if [[ -n ${JAVA_HOME:-} && -x $JAVA_HOME/bin/java ]]; then
		printf '%s\n' "$JAVA_HOME/bin/java"
	else
		command -v java || die "java not found (install Java 17+, e.g. make deps)"
	fi
}

check_java() {
	local java version major
	java="$(java_bin)"
	version="$("$java" -version 2>&1 | awk -F'"' '/version/ {print $2; exit}')"
	major="${version%%.*}"
	[[ $major == 1 ]] && major="$(cut -d. -f2 <<<"$version")"
	if ! [[ $major =~ ^[0-9]+$ ]] || ((major < 17)); then
		die "Kafka $KAFKA_VERSION needs Java 17+, $java is '$version'"
	fi
}

# lock DIR: holds an exclusive lock on DIR/.lock until the script exits, so that two
# callers (say, two test runs in one tree) do not format or stop the same node at once.
lock() {
	mkdir -p "$1"
	exec 9>"$1/.lock"
	flock -w 300 9 || die "another kafka.sh has held $1/.lock for 300s"
}

# ---- fetch -------------------------------------------------------------------------

cmd_fetch() {
	if [[ -f $marker ]]; then
		log "Kafka $KAFKA_VERSION jars already in $lib_dir"
		return
	fi
	lock "$(dirname "$cache_dir")"
	if [[ -f $marker ]]; then
		log "Kafka $KAFKA_VERSION jars already in $lib_dir (fetched meanwhile)"
		return
	fi
	command -v mvn >/dev/null || die "mvn not found (make deps installs it)"
	check_java
	local tmp="$cache_dir.partial"
	rm -rf "$tmp"
	mkdir -p "$tmp"
	log "fetching Kafka $KAFKA_VERSION and its runtime dependencies with Maven" \
		"(the first time it downloads them into ~/.m2; progress follows)"
	# copy-dependencies of a pom-packaged project writes nothing but outputDirectory;
	# the jars themselves are cached in Maven's local repository (~/.m2).
	# Maven's output (errors included; Debian's 3.8 also prints stray colour codes even
	# in batch mode) is kept in a file and shown only on failure; its download lines
	# become the progress (maven_progress).
	local started=$SECONDS
	if ! mvn -B -f "$here/pom.xml" -Dkafka.version="$KAFKA_VERSION" -Dlog4j.version="$LOG4J_VERSION" \
		dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$tmp/lib" \
		</dev/null 2>&1 | tee "$tmp/mvn.log" | maven_progress; then
		cat "$tmp/mvn.log" >&2
		die "Maven could not fetch Kafka $KAFKA_VERSION (log: $tmp/mvn.log)"
	fi
	log "Maven done in $((SECONDS - started))s"
	local jar
	for jar in kafka_2.13-$KAFKA_VERSION kafka-tools-$KAFKA_VERSION log4j-core-$LOG4J_VERSION log4j-slf4j-impl-$LOG4J_VERSION; do
		[[ -f $tmp/lib/$jar.jar ]] || die "Maven did not produce $jar.jar in $tmp/lib"
	done
	# Two versions of one artifact would make the classpath ambiguous.
	local dups
	dups="$(find "$tmp/lib" -name '*.jar' -printf '%f\n' | sed 's/-[0-9][^-]*\.jar$//' | sort | uniq -d)"
	[[ -z $dups ]] || die "several versions of: $dups in $tmp/lib"
	rm -rf "$cache_dir"
	mkdir -p "$cache_dir"
	mv "$tmp/lib" "$lib_dir"
	rm -rf "$tmp"
	# The marker is written last, so an interrupted fetch is redone from scratch.
	ls "$lib_dir" >"$marker"
	log "fetched $(wc -l <"$marker") jars into $lib_dir"
}

# maven_progress reads Maven's batch-mode output and reports its downloads on stderr:
# on a terminal one line kept up to date (files, megabytes, the file just downloaded),
# otherwise a line every 5 seconds while downloads go on; then a total. It prints file
# names and sizes only, never where they came from.
maven_progress() {
	local tty=0
	[[ -t 2 ]] && tty=1
	awk -v tty="$tty" '
		function now() { srand(); return srand() } # seconds; portable to mawk
		function mb(x) { return sprintf("%.1f MB", x / 1048576) }
		function files(k) { return k == 1 ? "1 file" : k " files" }
		{ gsub(/\033\[[0-9;]*[A-Za-z]/, "") }
		/Downloaded from [^:]*: / {
			n++
			line = $0
			sub(/.*Downloaded from [^:]*: /, "", line)
			name = line
			sub(/ .*/, "", name)
			sub(/.*\//, "", name)
			size = line
			if (sub(/^[^(]*\(/, "", size)) {
				split(size, f, " ")
				unit = f[2]
				mult = (unit == "B") ? 1 : (unit == "kB" || unit == "KB") ? 1024 : (unit == "MB") ? 1048576 : (unit == "GB") ? 1073741824 : 0
				bytes += f[1] * mult
			}
			if (tty) {
				printf "\rkafka.sh: downloaded %s, %s: %s\033[K", files(n), mb(bytes), name > "/dev/stderr"
			} else if (now() - last >= 5) {
				last = now()
				printf "kafka.sh: downloaded %s, %s so far (latest %s)\n", files(n), mb(bytes), name > "/dev/stderr"
			}
		}
		END {
			if (tty && n) printf "\n" > "/dev/stderr"
			if (n) printf "kafka.sh: Maven downloaded %s, %s\n", files(n), mb(bytes) > "/dev/stderr"
			else printf "kafka.sh: nothing to download: every jar was in Maven'"'"'s local repository\n" > "/dev/stderr"
		}
	'
}

require_jars() {
	[[ -f $marker ]] || die "Kafka $KAFKA_VERSION jars missing; run: $0 fetch"
}

# ---- node bookkeeping --------------------------------------------------------------
# A node is a directory run/<name>/ holding server.properties, data/, logs/ and kafka.pid.

node_dir() { printf '%s\n' "$run_root/$1"; }
pid_file() { printf '%s/kafka.pid\n' "$(node_dir "$1")"; }

# node_pid NAME prints the pid of NAME's broker if it is alive and really ours; it
# removes a stale pid file and fails when nothing of ours runs.
node_pid() {
	local pf pid
	pf="$(pid_file "$1")"
	[[ -f $pf ]] || return 1
	pid="$(<"$pf")"
	if [[ $pid =~ ^[0-9]+$ ]] && is_ours "$pid" "$(node_dir "$1")"; then
		printf '%s\n' "$pid"
		return 0
	fi
	log "removing stale pid file $pf"
	rm -f "$pf"
	return 1
}

is_ours() {
	local pid="$1" dir="$2" cmdline
	cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" || return 1
	[[ $cmdline == *"-Dfactory2.kafka.node=$dir "* ]]
}

# node_ports NAME prints the broker and controller ports that NAME's config names.
node_ports() {
	local conf ports
	conf="$(node_dir "$1")/server.properties"
	ports="$(sed -n 's#^listeners=[A-Z_]*://[^:]*:\([0-9]*\),CONTROLLER://[^:]*:\([0-9]*\).*$#\1 \2#p' "$conf" 2>/dev/null)"
	[[ $ports =~ ^[0-9]+\ [0-9]+$ ]] || die "no listeners in $conf"
	printf '%s\n' "$ports"
}

# addrs NAME... prints the bootstrap addresses of the named nodes, comma separated.
addrs() {
	local name ports out=()
	for name in "$@"; do
		ports="$(node_ports "$name")"
		out+=("$host:${ports%% *}")
	done
	(
		IFS=,
		echo "${out[*]}"
	)
}

# proc_start PID prints when process PID started (field 22 of /proc/PID/stat, in clock
# ticks since boot), which tells it from a later process given the same pid; it fails
# if PID does not exist or is a zombie.
proc_start() {
	local stat f
	{ stat="$(<"/proc/$1/stat")"; } 2>/dev/null || return 1
	stat="${stat##*) }" # after the command name, which may hold spaces and parentheses
	read -r -a f <<<"$stat"
	[[ ${f[0]} != Z ]] || return 1
	printf '%s\n' "${f[19]}"
}

port_open() {
	(exec 3<>"/dev/tcp/$host/$1") 2>/dev/null
}

# ports_free PORT... fails if something listens on one of the ports (checked before a
# start, since none of our brokers should hold them then).
ports_free() {
	local port
	for port in "$@"; do
		if port_open "$port"; then
			die "port $host:$port is taken by another process (see: ss -ltnp 'sport = :$port')"
		fi
	done
}

# ---- configuration -------------------------------------------------------------------

# write_config NAME NODE_ID PORT CONTROLLER_PORT QUORUM REPLICAS MIN_ISR
write_config() {
	local name="$1" id="$2" port="$3" cport="$4" quorum="$5" rf="$6" isr="$7" dir
	dir="$(node_dir "$name")"
	mkdir -p "$dir/logs" "$dir/data"
	cat >"$dir/server.properties" <<EOF
# Written by deploy/kafka/kafka.sh for tests when the node was created; a start on
# the node's data (start-broker) reuses it.
process.roles=broker,controller
node.id=$id
controller.quorum.bootstrap.servers=$quorum
listeners=PLAINTEXT://$host:$port,CONTROLLER://$host:$cport
advertised.listeners=PLAINTEXT://$host:$port,CONTROLLER://$host:$cport
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
log.dirs=$dir/data

# Small machine: fewer threads than the defaults.
num.network.threads=2
num.io.threads=4
background.threads=4

# Topics are created explicitly, as in production.
auto.create.topics.enable=false
num.partitions=1
default.replication.factor=$rf
min.insync.replicas=$isr

# Internal topics fit the node count; fewer partitions make their first use fast.
offsets.topic.replication.factor=$rf
offsets.topic.num.partitions=5
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$isr
transaction.state.log.num.partitions=5
share.coordinator.state.topic.replication.factor=$rf
share.coordinator.state.topic.min.isr=$isr

# Tests start consumers one at a time; do not wait for more members.
group.initial.rebalance.delay.ms=0

# Transactions: abort timed-out ones quickly; allow clients up to 5 minutes.
transaction.abort.timed.out.transaction.cleanup.interval.ms=2000
transaction.max.timeout.ms=300000

# Exactly-once latency (DESIGN.md, "Latency"). With Kafka 4's transaction protocol a
# produce registers its partition with the transaction coordinator itself; the first
# produce of a transaction begun while the coordinator still writes the previous one's
# markers is refused with CONCURRENT_TRANSACTIONS, and the broker retries it after this
# backoff (default 20 ms, growing to 100 ms). A processor committing every ~10 ms hits it
# again and again: commits of ~25 ms instead of ~6, and about twice the decision latency.
add.partitions.to.txn.retry.backoff.ms=1
add.partitions.to.txn.retry.backoff.max.ms=20

# Compaction fast enough for tests (topics may lower their own lag and ratio further).
log.cleaner.backoff.ms=500
log.cleaner.min.compaction.lag.ms=0
log.cleaner.min.cleanable.ratio=0.1
log.cleaner.dedupe.buffer.size=16777216
log.cleaner.threads=1
log.retention.check.interval.ms=5000
log.segment.delete.delay.ms=1000
EOF
	if [[ -n $extra_properties ]]; then
		printf '\n# From FACTORY2_KAFKA_PROPERTIES (the last value of a key wins).\n%s\n' "$extra_properties" >>"$dir/server.properties"
	fi
	cat >"$dir/log4j2.properties" <<EOF
# Broker log: logs/server.log, rolled at 20 MiB, 3 files kept.
status = warn
appender.file.type = RollingFile
appender.file.name = file
appender.file.fileName = $dir/logs/server.log
appender.file.filePattern = $dir/logs/server.log.%i
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 20MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 3
rootLogger.level = info
rootLogger.appenderRef.file.ref = file
logger.request.name = kafka.request.logger
logger.request.level = warn
logger.network.name = kafka.network.RequestChannel\$
logger.network.level = warn
EOF
}

# java_tool LOG CLASS ARGS...: runs a Kafka tool class, its output appended to LOG.
java_tool() {
	local out="$1"
	shift
	"$(java_bin)" -Xmx256m -XX:TieredStopAtLevel=1 -Djava.awt.headless=true \
		-Dlog4j2.level=warn -cp "$lib_dir/*" "$@" >>"$out" 2>&1 </dev/null
}

# new_uuid prints a random Kafka UUID (base64url of 16 bytes, no padding) without the
# leading '-' that Kafka's Uuid.randomUuid also avoids.
new_uuid() {
	local u
	while :; do
		u="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')"
		[[ $u != -* ]] && break
	done
	printf '%s\n' "$u"
}

# format NAME CLUSTER_ID FORMAT_ARGS...: formats NAME's storage (StorageTool is the class
# behind bin/kafka-storage.sh).
format() {
	local name="$1" cid="$2" dir
	shift 2
	dir="$(node_dir "$name")"
	java_tool "$dir/logs/format.log" kafka.tools.StorageTool format \
		--config "$dir/server.properties" --cluster-id "$cid" "$@" ||
		die "formatting $dir failed; see $dir/logs/format.log"
}

# launch NAME starts NAME's broker in the background, in its own session so that a
# terminal's ^C or the caller's exit does not reach it.
launch() {
	local name="$1" dir pid
	dir="$(node_dir "$name")"
	# setsid does not fork here (a background job of a script leads no process group),
	# so $! is the java process itself; is_ours checks that below.
	setsid nohup "$(java_bin)" "-Xmx$heap" "-Xms$heap" -server -XX:+UseG1GC \
		-XX:MaxGCPauseMillis=20 -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
		"${jvm_opts[@]}" "-Dfactory2.kafka.node=$dir" \
		"-Dlog4j2.configurationFile=$dir/log4j2.properties" "-Dkafka.logs.dir=$dir/logs" \
		-cp "$lib_dir/*" kafka.Kafka "$dir/server.properties" \
		>"$dir/logs/stdout.log" 2>&1 </dev/null 9>&- &
	pid=$!
	echo "$pid" >"$(pid_file "$name")"
	# The process execs setsid, nohup, then java, and its command line reads empty for
	# a moment during each exec (longer on a loaded machine): wait until it is java's,
	# for as long as the process lives. The log's last lines go with the error: a port
	# another process took meanwhile ("Address already in use") is how a caller knows
	# to pick other ports.
	local start=$SECONDS
	until is_ours "$pid" "$dir" && [[ $(cat "/proc/$pid/comm" 2>/dev/null) == java ]]; do
		proc_start "$pid" >/dev/null && ((SECONDS - start < 30)) ||
			die "$name's broker did not start; last log lines:$(printf '\n'; tail -n 20 "$dir/logs/stdout.log" "$dir/logs/server.log" 2>/dev/null)"
		sleep 0.1
	done
	[[ -z ${FACTORY2_KAFKA_OWNER_PID:-} ]] || start_watchdog "$dir" "$pid" "$FACTORY2_KAFKA_OWNER_PID"
	log "started $name (pid $pid), logs in $dir/logs"
}

# start_watchdog DIR PID OWNER runs `kafka.sh watch` for the broker PID of node DIR in
# the background, detached like the broker.
start_watchdog() {
	local dir="$1" pid="$2" owner="$3" owner_start
	owner_start="$(proc_start "$owner")" || {
		kill -KILL "$pid" 2>/dev/null || true
		die "FACTORY2_KAFKA_OWNER_PID=$owner is not a running process; killed the broker just started"
	}
	setsid nohup "$self" watch "$dir" "$pid" "$owner" "$owner_start" \
		>>"$dir/logs/watchdog.log" 2>&1 </dev/null 9>&- &
}

# cmd_watch DIR PID OWNER OWNER_START: while the broker PID of node DIR runs, checks
# every second that the process OWNER started at OWNER_START still runs, and SIGKILLs
# the broker once it does not.
cmd_watch() {
	local dir="$1" pid="$2" owner="$3" owner_start="$4"
	while is_ours "$pid" "$dir"; do
		if [[ $(proc_start "$owner") != "$owner_start" ]]; then
			log "owner pid $owner has exited; killing the broker of $dir (pid $pid)"
			kill -KILL "$pid" 2>/dev/null || true
			return 0
		fi
		sleep 1
	done
}

# wait_ready TIMEOUT NAMES...: waits until every named broker listens and a Kafka
# ApiVersions round trip through the first one reports all of them registered.
wait_ready() {
	local timeout="$1"
	shift
	local names=("$@") start=$SECONDS name port dir probe_log bootstrap=()
	for name in "${names[@]}"; do
		dir="$(node_dir "$name")"
		port="$(sed -n 's#^listeners=[A-Z_]*://[^:]*:\([0-9]*\),.*#\1#p' "$dir/server.properties")"
		bootstrap+=("$host:$port")
		while ! port_open "$port"; do
			node_pid "$name" >/dev/null ||
				die "$name's broker exited; last log lines:$(printf '\n'; tail -n 20 "$dir/logs/server.log" "$dir/logs/stdout.log" 2>/dev/null)"
			((SECONDS - start < timeout)) || die "$name did not open $host:$port within ${timeout}s; see $dir/logs"
			sleep 0.5
		done
		log "$name listens on $host:$port after $((SECONDS - start))s"
	done
	probe_log="$(node_dir "${names[0]}")/logs/probe.log"
	local joined
	joined="$(
		IFS=,
		echo "${bootstrap[*]}"
	)"
	local addr missing cc=()
	# A secured node's probe authenticates as its admin.
	[[ -f $(node_dir "${names[0]}")/admin.properties ]] && cc=(--command-config "$(node_dir "${names[0]}")/admin.properties")
	while :; do
		: >"$probe_log"
		# BrokerApiVersionsCommand (bin/kafka-broker-api-versions.sh) asks each broker in
		# the metadata for its API versions and prints a block per broker, headed
		# "127.0.0.1:29092 (id: 1 rack: null isFenced: false) -> (".
		missing=()
		if java_tool "$probe_log" org.apache.kafka.tools.BrokerApiVersionsCommand \
			--bootstrap-server "$joined" "${cc[@]}"; then
			for addr in "${bootstrap[@]}"; do
				grep -q "^$addr (id: [0-9]* .*isFenced: false) -> " "$probe_log" || missing+=("$addr")
			done
			((${#missing[@]} == 0)) && break
		else
			missing=("${bootstrap[@]}")
		fi
		((SECONDS - start < timeout)) || die "brokers not ready within ${timeout}s; see $probe_log"
		log "waiting for ${missing[*]} to answer Kafka requests unfenced ($((SECONDS - start))s)"
		sleep 1
	done
	log "ready after $((SECONDS - start))s"
}

# ---- single ------------------------------------------------------------------------

cmd_up() {
	require_jars
	if node_pid single >/dev/null; then
		log "single broker already running"
		addrs single
		return
	fi
	check_java
	ports_free "$single_port" "$single_controller_port"
	local dir
	dir="$(node_dir single)"
	rm -rf "$dir"
	write_config single 1 "$single_port" "$single_controller_port" \
		"$host:$single_controller_port" 1 1
	format single "$(new_uuid)" --standalone
	launch single
	# A broker that never gets ready is stopped rather than left behind.
	trap 'stop_nodes single' EXIT
	wait_ready "$up_timeout" single
	trap - EXIT
	addrs single
}

# ---- secure ------------------------------------------------------------------------

# make_certs DIR: a CA, the broker's certificate (127.0.0.1 and localhost) and a client
# certificate, signed by the CA, in DIR (PEM; keys unencrypted PKCS#8, mode 600).
# broker.pem is the broker's key and certificate chain, a Kafka PEM keystore.
make_certs() {
	local d="$1" log="$1/openssl.log"
	command -v openssl >/dev/null || die "openssl not found (make deps installs it)"
	mkdir -p "$d"
	(
		umask 077
		set -e
		openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=factory2 test CA" \
			-keyout "$d/ca.key" -out "$d/ca.crt" -addext basicConstraints=critical,CA:TRUE \
			-addext keyUsage=critical,keyCertSign,cRLSign
		for who in broker client; do
			cn=broker ext="subjectAltName=IP:$host,DNS:localhost"
			[[ $who == client ]] && cn=factory2-client ext="extendedKeyUsage=clientAuth"
			openssl req -newkey rsa:2048 -nodes -subj "/CN=$cn" -keyout "$d/$who.key" -out "$d/$who.csr"
			printf '%s\n' "$ext" >"$d/$who.ext"
			openssl x509 -req -in "$d/$who.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial \
				-days 30 -extfile "$d/$who.ext" -out "$d/$who.crt"
			rm -f "$d/$who.csr" "$d/$who.ext"
		done
		cat "$d/broker.key" "$d/broker.crt" "$d/ca.crt" >"$d/broker.pem"
	) >"$log" 2>&1 || die "making the test certificates failed; see $log"
	chmod 644 "$d/ca.crt" "$d/broker.crt" "$d/client.crt"
}

# secure_config NAME: the secured broker's configuration: write_config's, with its
# listeners replaced (clients on SASL_SSL only) and security added.
secure_config() {
	local dir conf
	dir="$(node_dir "$1")"
	conf="$dir/server.properties"
	sed -i -e '/^listeners=/d' -e '/^advertised.listeners=/d' -e '/^listener.security.protocol.map=/d' \
		-e '/^inter.broker.listener.name=/d' "$conf"
	# listeners= comes first after the header: node_ports and wait_ready read it.
	sed -i "/^controller.quorum.bootstrap.servers=/a listeners=SASL_SSL://$host:$secure_port,CONTROLLER://$host:$secure_controller_port,INTERNAL://$host:$secure_internal_port" "$conf"
	cat >>"$conf" <<END
# Secured (kafka.sh up-secure): clients authenticate with SCRAM over TLS; the
# controller and inter-broker listeners take only a certificate the test CA signed.
advertised.listeners=SASL_SSL://$host:$secure_port,CONTROLLER://$host:$secure_controller_port,INTERNAL://$host:$secure_internal_port
listener.security.protocol.map=SASL_SSL:SASL_SSL,CONTROLLER:SSL,INTERNAL:SSL
inter.broker.listener.name=INTERNAL
sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
ssl.keystore.type=PEM
ssl.keystore.location=$dir/tls/broker.pem
ssl.truststore.type=PEM
ssl.truststore.location=$dir/tls/ca.crt
ssl.client.auth=required
# On SASL_SSL the SCRAM user is the principal; a client certificate is checked if sent.
listener.name.sasl_ssl.ssl.client.auth=requested
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=User:admin;User:CN=broker
END
}

cmd_up_secure() {
	require_jars
	if node_pid secure >/dev/null; then
		log "secured broker already running"
		addrs secure
		return
	fi
	check_java
	ports_free "$secure_port" "$secure_controller_port" "$secure_internal_port"
	local dir
	dir="$(node_dir secure)"
	rm -rf "$dir"
	write_config secure 1 "$secure_port" "$secure_controller_port" \
		"$host:$secure_controller_port" 1 1
	make_certs "$dir/tls"
	secure_config secure
	mkdir -p "$dir/secrets"
	chmod 700 "$dir/secrets"
	local user pw scram=()
	for user in admin factory2 hooks; do
		pw="$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')"
		(umask 077 && printf '%s\n' "$pw" >"$dir/secrets/$user.password")
		scram+=(--add-scram "SCRAM-SHA-256=[name=$user,password=$pw]" --add-scram "SCRAM-SHA-512=[name=$user,password=$pw]")
	done
	(
		umask 077
		cat >"$dir/admin.properties" <<END
security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$(<"$dir/secrets/admin.password")";
ssl.truststore.type=PEM
ssl.truststore.location=$dir/tls/ca.crt
END
	)
	format secure "$(new_uuid)" --standalone "${scram[@]}"
	launch secure
	trap 'stop_nodes secure' EXIT
	wait_ready "$up_timeout" secure
	trap - EXIT
	addrs secure
}

# ---- cluster -----------------------------------------------------------------------

cluster_name() { printf 'cluster-%s\n' "$1"; }

cluster_config() {
	local n="$1" i quorum=()
	for i in 0 1 2; do quorum+=("$host:${cluster_controller_ports[$i]}"); done
	write_config "$(cluster_name "$n")" "$n" "${cluster_ports[$((n - 1))]}" \
		"${cluster_controller_ports[$((n - 1))]}" "$(
			IFS=,
			echo "${quorum[*]}"
		)" 3 2
}

cmd_up_cluster() {
	require_jars
	local n name running=() stopped=() all=(cluster-1 cluster-2 cluster-3)
	for name in "${all[@]}"; do
		if node_pid "$name" >/dev/null; then running+=("$name"); else stopped+=("$name"); fi
	done
	if ((${#stopped[@]} == 0)); then
		log "cluster already running"
		addrs "${all[@]}"
		return
	fi
	check_java
	# A node that never gets ready is stopped rather than left behind.
	# shellcheck disable=SC2064 # expanded now on purpose: the locals are gone at exit
	trap "stop_nodes ${stopped[*]}" EXIT
	if ((${#running[@]} > 0)); then
		# Part of the cluster runs (e.g. after kill-broker): restart the rest on their data.
		for name in "${stopped[@]}"; do start_node "$name"; done
	else
		((${#cluster_ports[@]} == 3 && ${#cluster_controller_ports[@]} == 3)) ||
			die "FACTORY2_KAFKA_CLUSTER_PORTS and FACTORY2_KAFKA_CLUSTER_CONTROLLER_PORTS need 3 ports each"
		ports_free "${cluster_ports[@]}" "${cluster_controller_ports[@]}"
		local cid controllers=() dirs=()
		cid="$(new_uuid)"
		for n in 1 2 3; do
			rm -rf "$(node_dir "$(cluster_name "$n")")"
			cluster_config "$n"
			dirs+=("$(new_uuid)")
			controllers+=("$n@$host:${cluster_controller_ports[$((n - 1))]}:${dirs[$((n - 1))]}")
		done
		local initial
		initial="$(
			IFS=,
			echo "${controllers[*]}"
		)"
		# The three formats are independent JVM runs; do them side by side.
		local pids=()
		for n in 1 2 3; do
			format "$(cluster_name "$n")" "$cid" --initial-controllers "$initial" &
			pids+=($!)
		done
		for n in "${pids[@]}"; do wait "$n" || die "formatting the cluster failed"; done
		for name in "${all[@]}"; do launch "$name"; done
	fi
	wait_ready "$up_timeout" "${all[@]}"
	trap - EXIT
	addrs "${all[@]}"
}

# ---- one node at a time ------------------------------------------------------------

# node_names ARG... sets the caller's array `names` to the nodes that the arguments of
# stop-broker and the like name: `single`, or a cluster node number 1..3.
node_names() {
	local a
	names=()
	(($# > 0)) || die "name the nodes: single, or cluster node numbers 1, 2, 3"
	for a in "$@"; do
		case "$a" in
		single) names+=(single) ;;
		secure) names+=(secure) ;;
		1 | 2 | 3) names+=("$(cluster_name "$a")") ;;
		*) die "expected single or a cluster node number 1, 2 or 3, got '$a'" ;;
		esac
	done
	if [[ " ${names[*]} " == *" single "* || " ${names[*]} " == *" secure "* ]] && ((${#names[@]} > 1)); then
		die "single and cluster nodes belong to different clusters; name one kind per call"
	fi
}

# start_node NAME starts NAME's broker on its data, with the config written when the
# node was created (same node id and ports).
start_node() {
	local name="$1" dir ports
	dir="$(node_dir "$name")"
	[[ -f $dir/data/meta.properties ]] || die "$name has no storage in $dir; create it with up or up-cluster"
	ports="$(node_ports "$name")"
	ports_free "${ports%% *}" "${ports##* }"
	launch "$name"
}

cmd_start_broker() {
	local names name started=()
	node_names "$@"
	require_jars
	for name in "${names[@]}"; do
		if node_pid "$name" >/dev/null; then
			log "$name already running"
		else
			started+=("$name")
		fi
	done
	if ((${#started[@]} > 0)); then
		check_java
		# shellcheck disable=SC2064 # expanded now on purpose
		trap "stop_nodes ${started[*]}" EXIT
		for name in "${started[@]}"; do start_node "$name"; done
	fi
	# All named nodes are waited for together: a cluster node restarted alone is ready
	# only once it has a quorum, which may need the next one named.
	wait_ready "$up_timeout" "${names[@]}"
	trap - EXIT
	addrs "${names[@]}"
}

cmd_kill_broker() {
	local names name pid
	node_names "$@"
	for name in "${names[@]}"; do
		pid="$(node_pid "$name")" || {
			log "$name is not running"
			continue
		}
		kill -KILL "$pid" 2>/dev/null || true # it may have exited meanwhile
		wait_gone "$pid" 10 || die "pid $pid survived SIGKILL"
		rm -f "$(pid_file "$name")"
		log "killed $name (pid $pid)"
	done
}

cmd_stop_broker() {
	local names
	node_names "$@"
	stop_nodes "${names[@]}"
}

cmd_restart_broker() {
	cmd_stop_broker "$@"
	cmd_start_broker "$@"
}

# ---- down / status -------------------------------------------------------------------

wait_gone() {
	local pid="$1" timeout="$2" start=$SECONDS
	while kill -0 "$pid" 2>/dev/null; do
		# A zombie (parent not reaping yet) is gone for our purposes.
		[[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) == Z ]] && return 0
		((SECONDS - start < timeout)) || return 1
		sleep 0.2
	done
}

stop_node() {
	local name="$1" pid
	pid="$(node_pid "$name")" || return 0
	log "stopping $name (pid $pid)"
	kill -TERM "$pid" 2>/dev/null || true
	if ! wait_gone "$pid" "$stop_timeout"; then
		log "$name did not stop within ${stop_timeout}s; sending SIGKILL"
		kill -KILL "$pid" 2>/dev/null || true
		wait_gone "$pid" 10 || die "pid $pid survived SIGKILL"
	fi
	rm -f "$(pid_file "$name")"
}

# stop_nodes NAME... stops nodes side by side: a controlled shutdown of the last nodes
# of a cluster waits on the quorum, which needs the others still up.
stop_nodes() {
	local name pids=() failed=0 p
	for name in "$@"; do
		stop_node "$name" &
		pids+=($!)
	done
	for p in "${pids[@]}"; do wait "$p" || failed=1; done
	((failed == 0)) || die "some brokers did not stop"
}

cmd_down() {
	local what="${1:-all}"
	case "$what" in
	single) stop_nodes single ;;
	secure) stop_nodes secure ;;
	cluster) stop_nodes cluster-1 cluster-2 cluster-3 ;;
	all) stop_nodes single secure cluster-1 cluster-2 cluster-3 ;;
	*) die "down takes single, cluster, secure or all, not '$what'" ;;
	esac
}

cmd_status() {
	local name pid any=0
	for name in single secure cluster-1 cluster-2 cluster-3; do
		if pid="$(node_pid "$name" 2>/dev/null)"; then
			any=1
			printf '%-10s running  pid %-8s %s\n' "$name" "$pid" "$(addrs "$name")"
		fi
	done
	((any)) || echo "no broker running"
	if [[ -f $marker ]]; then
		echo "Kafka $KAFKA_VERSION jars: $lib_dir"
	else
		echo "Kafka $KAFKA_VERSION jars: not fetched (run: $0 fetch)"
	fi
}

cmd_check() {
	check_java
	require_jars
	log "Java $("$(java_bin)" -version 2>&1 | awk -F'"' '/version/ {print $2; exit}') and the Kafka $KAFKA_VERSION jars are ready"
}

cmd_clean() {
	cmd_down all
	rm -rf "$run_root"
}

usage() {
	sed -n '2,/^set -euo/{/^set/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}" >&2
	exit 2
}

case "${1:-}" in
up | up-cluster | up-secure | down | stop-broker | kill-broker | start-broker | restart-broker | clean)
	lock "$run_root"
	;;
esac

cmd="${1:-}"
shift || true
case "$cmd" in
fetch) cmd_fetch ;;
check) cmd_check ;;
up) cmd_up ;;
up-cluster) cmd_up_cluster ;;
up-secure) cmd_up_secure ;;
down) cmd_down "${1:-all}" ;;
status) cmd_status ;;
stop-broker) cmd_stop_broker "$@" ;;
kill-broker) cmd_kill_broker "$@" ;;
start-broker) cmd_start_broker "$@" ;;
restart-broker) cmd_restart_broker "$@" ;;
clean) cmd_clean ;;
watch) cmd_watch "$@" ;; # internal: see start_watchdog
*) usage ;;
esac
