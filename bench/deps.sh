#!/bin/sh
# Installs the Debian packages the benchmarks need beyond rewire's own
# (scripts/deps.sh), when they are missing: gnuplot draws the plots of
# docs/benchmarks.md. Safe to run again; does nothing when all are there.
set -e
need=""
command -v gnuplot >/dev/null 2>&1 || need="$need gnuplot-nox"
command -v python3 >/dev/null 2>&1 || need="$need python3"
[ -z "$need" ] && exit 0
echo "bench: installing$need" >&2
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $need >/dev/null
