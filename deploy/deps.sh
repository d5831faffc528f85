#!/usr/bin/env bash
# deps.sh: install what building and testing factory2 needs, skipping what is there:
# Java 17+, Maven and gcc (for go test -race) from Debian packages, the Go modules, and
# the Apache Kafka jars (deploy/kafka/kafka.sh fetch). Non-interactive; safe to rerun.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { printf 'deps.sh: %s\n' "$*" >&2; }

java_major() {
	local version major
	version="$(java -version 2>&1 | awk -F'"' '/version/ {print $2; exit}')"
	major="${version%%.*}"
	[[ $major == 1 ]] && major="$(cut -d. -f2 <<<"$version")" # 1.8.0 is Java 8
	printf '%s\n' "${major:-0}"
}

pkgs=()
if ! command -v java >/dev/null || (($(java_major) < 17)); then
	pkgs+=(openjdk-17-jre-headless)
fi
command -v mvn >/dev/null || pkgs+=(maven)
command -v gcc >/dev/null || pkgs+=(gcc)

if ((${#pkgs[@]} > 0)); then
	log "installing ${pkgs[*]}"
	sudo=()
	if ((EUID != 0)); then
		command -v sudo >/dev/null || {
			log "need root (or sudo) to install ${pkgs[*]}"
			exit 1
		}
		sudo=(sudo)
	fi
	export DEBIAN_FRONTEND=noninteractive
	"${sudo[@]}" apt-get update -q </dev/null
	"${sudo[@]}" apt-get install -y -q --no-install-recommends "${pkgs[@]}" </dev/null
fi
if (($(java_major) < 17)); then
	log "java on PATH is Java $(java_major); Kafka needs 17+ (set JAVA_HOME or update-alternatives --config java)"
	exit 1
fi

command -v go >/dev/null || {
	log "go not found: install the Go toolchain named in go.mod"
	exit 1
}
go mod download
deploy/kafka/kafka.sh fetch
