#!/bin/sh
# Installs the Debian packages rewire's build, demo and tests need, when
# they are missing. Safe to run again; does nothing when all are there.
set -e
need=""
for p in make gcc g++ clang binutils python3; do
	case $p in
	binutils) cmd=objdump ;;
	*) cmd=$p ;;
	esac
	command -v "$cmd" >/dev/null 2>&1 || need="$need $p"
done
# libiberty: the demangler for C++ and Rust names in rewire's messages
[ -f /usr/include/libiberty/demangle.h ] || need="$need libiberty-dev"
# json-c: reads compile_commands.json
[ -f /usr/include/json-c/json.h ] || need="$need libjson-c-dev"
# libdw (elfutils): reads DWARF, to refuse changed type layouts and signatures
[ -f /usr/include/elfutils/libdw.h ] || need="$need libdw-dev"
# aarch64: a cross compiler for the aarch64 agent and test programs, and
# qemu-user to run them (the tests of tests/e2e/aarch64.sh)
command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 || need="$need gcc-aarch64-linux-gnu libc6-dev-arm64-cross"
command -v aarch64-linux-gnu-g++ >/dev/null 2>&1 || need="$need g++-aarch64-linux-gnu"
command -v qemu-aarch64 >/dev/null 2>&1 || need="$need qemu-user"
# zlib: inflates compressed debug sections (-gz)
[ -f /usr/include/zlib.h ] || need="$need zlib1g-dev"
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
if [ -n "$need" ]; then
	echo "rewire: installing$need" >&2
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $need >/dev/null
fi

# The driver built for aarch64 too (make: build/aarch64/host/; the tests
# run it and its unit tests under qemu). It links Debian's arm64 libdw,
# json-c and libiberty: downloaded with apt-get and unpacked into
# build/aarch64/root, not installed (the host keeps its own packages, and
# the aarch64 programs under qemu their cross sysroot).
a64_root=$(dirname "$0")/../build/aarch64/root
[ -f "$a64_root/usr/lib/aarch64-linux-gnu/libdw.so" ] && exit 0
echo "rewire: downloading Debian's arm64 libdw, json-c and libiberty into build/aarch64/root" >&2
a64_apt=$(dirname "$0")/../build/aarch64/apt
mkdir -p "$a64_apt/lists/partial" "$a64_apt/cache/archives/partial" "$a64_apt/debs" "$a64_root"
a64_apt=$(cd "$a64_apt" && pwd)
set -- -q -o Dir::State::Lists="$a64_apt/lists" -o Dir::Cache="$a64_apt/cache" \
	-o APT::Architecture=arm64 -o APT::Architectures::=arm64 -o Debug::NoLocking=1
[ "$(id -u)" = 0 ] && set -- "$@" -o APT::Sandbox::User=root
apt-get "$@" update >"$a64_apt/update.log" 2>&1 ||
	{ echo "rewire: apt-get update (arm64 lists) failed: $(tail -n 2 "$a64_apt/update.log")" >&2; exit 1; }
(cd "$a64_apt/debs" && apt-get "$@" download libdw-dev libdw1 libelf-dev libelf1 libjson-c-dev \
	libjson-c5 libiberty-dev zlib1g-dev zlib1g liblzma5 libbz2-1.0 >"$a64_apt/download.log" 2>&1) ||
	{ echo "rewire: apt-get download (arm64) failed: $(tail -n 2 "$a64_apt/download.log")" >&2; exit 1; }
for deb in "$a64_apt"/debs/*.deb; do
	dpkg-deb -x "$deb" "$a64_root"
done
rm -rf "$a64_apt"
