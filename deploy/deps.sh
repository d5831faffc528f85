#!/usr/bin/env bash
# deps.sh: install what building and testing factory2 needs, skipping what is there:
# Java 17+, Maven, gcc (for go test -race), lz4, openssl and chromium (the overview page's
# browser test drives it headless) from Debian packages, apt's package
# lists (internal/debian's tests read the machine's own Packages index, which apt keeps
# lz4-compressed), the Go modules (the binary's and deploy/check's), and the Apache
# Kafka jars (deploy/kafka/kafka.sh fetch). Non-interactive; safe to rerun.
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
command -v lz4 >/dev/null || pkgs+=(lz4)
command -v chromium >/dev/null || pkgs+=(chromium)
# openssl makes the secured test broker's CA and certificates (kafka.sh up-secure).
command -v openssl >/dev/null || pkgs+=(openssl)

# as_root WHY CMD...: run CMD as root, through sudo when not root.
as_root() {
	local why="$1"
	shift
	if ((EUID == 0)); then
		"$@" </dev/null
	elif command -v sudo >/dev/null; then
		sudo "$@" </dev/null
	else
		log "need root (or sudo) to $why"
		exit 1
	fi
}

# has_packages_index: apt has at least one binary Packages index on disk. apt-get
# indextargets lists the configured ones whether or not they were downloaded.
has_packages_index() {
	local f
	# shellcheck disable=SC2016 # $(FILENAME) is apt's placeholder, not a substitution
	while IFS= read -r f; do
		[[ -n $f && -e $f ]] && return 0
	done < <(apt-get indextargets --format '$(FILENAME)' 'Created-By: Packages' 2>/dev/null)
	return 1
}

export DEBIAN_FRONTEND=noninteractive
if ((${#pkgs[@]} > 0)); then
	log "installing ${pkgs[*]}"
	as_root "install ${pkgs[*]}" apt-get update -q
	as_root "install ${pkgs[*]}" apt-get install -y -q --no-install-recommends "${pkgs[@]}"
fi
if ! has_packages_index; then
	log "apt has no Packages index: running apt-get update"
	as_root "run apt-get update" apt-get update -q
	has_packages_index || {
		log "still no Packages index after apt-get update: check apt's sources (apt-get indextargets)"
		exit 1
	}
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
(cd deploy/check && go mod download) # deploy/'s tests: a module of their own
deploy/kafka/kafka.sh fetch
