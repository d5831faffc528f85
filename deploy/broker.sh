# broker.sh, sourced by test.sh and bench.sh: start the single real Kafka broker
# (deploy/kafka/kafka.sh up) unless it already runs, export FACTORY2_KAFKA_BROKERS,
# and stop it on exit only if this script started it (a broker someone started with
# make kafka-up is left as it was).
#
# The caller sets `who` (its name, for messages) and runs from the repository root.

kafka=deploy/kafka/kafka.sh
started=0
stop_broker() {
	if ((started)); then
		"$kafka" down single || echo "$who: warning: could not stop the Kafka broker" >&2
	fi
}
trap stop_broker EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# (status is read whole first: grep -q in a pipe could end it early with SIGPIPE,
# which pipefail turns into "not running".)
if [[ $("$kafka" status) =~ (^|$'\n')single\ +running ]]; then
	echo "$who: using the Kafka broker that is already running; it stays up" >&2
else
	started=1
fi
FACTORY2_KAFKA_BROKERS="$("$kafka" up)"
export FACTORY2_KAFKA_BROKERS
echo "$who: FACTORY2_KAFKA_BROKERS=$FACTORY2_KAFKA_BROKERS" >&2
