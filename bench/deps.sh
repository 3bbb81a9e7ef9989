#!/bin/sh
# Installs the Debian packages the benchmarks need beyond rewire's own
# (scripts/deps.sh), when they are missing: gnuplot draws the plots of
# docs/benchmarks.md; with `rust`, the crates of bench/rust-http (tokio,
# hyper, serde_json, as source in /usr/share/cargo/registry). Safe to run
# again; does nothing when all are there.
set -e
need=""
if [ "${1:-}" = rust ]; then
	for c in tokio hyper serde_json; do
		ls -d /usr/share/cargo/registry/$c-[0-9]* >/dev/null 2>&1 ||
			need="$need librust-$(echo $c | tr _ -)-dev"
	done
else
	command -v gnuplot >/dev/null 2>&1 || need="$need gnuplot-nox"
	command -v python3 >/dev/null 2>&1 || need="$need python3"
fi
[ -z "$need" ] && exit 0
echo "bench: installing$need" >&2
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $need >/dev/null
