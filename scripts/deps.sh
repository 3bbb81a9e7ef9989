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

# Downloaded and unpacked into build/aarch64/, not installed (the host
# keeps its own packages, and the aarch64 programs under qemu their cross
# sysroot): Debian's arm64 libdw, json-c and libiberty, which the driver
# built for aarch64 links (make: build/aarch64/host/; the tests run it and
# its unit tests under qemu) into root/; and Debian's rustc with its arm64
# standard library, for the Rust tests on aarch64, into rust/.
a64=$(dirname "$0")/../build/aarch64
[ -f "$a64/root/usr/lib/aarch64-linux-gnu/libdw.so" ] && [ -x "$a64/rust/usr/bin/rustc" ] && exit 0
mkdir -p "$a64/apt/lists/partial" "$a64/apt/cache/archives/partial"
a64=$(cd "$a64" && pwd)
host=$(dpkg --print-architecture)
# apt-get with lists of its own, of the host's and arm64 packages
apt_a64() {
	if [ "$(id -u)" = 0 ]; then set -- -o APT::Sandbox::User=root "$@"; fi
	"${APT_GET:-apt-get}" -q -o Dir::State::Lists="$a64/apt/lists" -o Dir::Cache="$a64/apt/cache" \
		-o APT::Architecture="$host" -o APT::Architectures::="$host" -o APT::Architectures::=arm64 \
		-o Debug::NoLocking=1 "$@"
}
apt_a64 update >"$a64/apt/update.log" 2>&1 ||
	{ echo "rewire: apt-get update (arm64 lists) failed: $(tail -n 2 "$a64/apt/update.log")" >&2; exit 1; }

# fetch DIR WHAT PACKAGE...: into build/aarch64/DIR
fetch() {
	dir=$1 what=$2
	shift 2
	echo "rewire: downloading $what into build/aarch64/$dir" >&2
	rm -rf "$a64/apt/debs" "$a64/apt/unpacked" && mkdir -p "$a64/apt/debs" "$a64/apt/unpacked"
	(cd "$a64/apt/debs" && apt_a64 download "$@" >"$a64/apt/download.log" 2>&1) ||
		{ echo "rewire: apt-get download $* failed: $(tail -n 2 "$a64/apt/download.log")" >&2; exit 1; }
	for deb in "$a64"/apt/debs/*.deb; do
		dpkg-deb -x "$deb" "$a64/apt/unpacked" ||
			{ echo "rewire: cannot unpack $deb" >&2; exit 1; }
	done
	# Whole or not at all: a half-unpacked tree would pass for done.
	rm -rf "${a64:?}/$dir" && mv "$a64/apt/unpacked" "$a64/$dir"
}
[ -f "$a64/root/usr/lib/aarch64-linux-gnu/libdw.so" ] ||
	fetch root "Debian's arm64 libdw, json-c and libiberty" libdw-dev:arm64 libdw1:arm64 \
		libelf-dev:arm64 libelf1:arm64 libjson-c-dev:arm64 libjson-c5:arm64 libiberty-dev:arm64 \
		zlib1g-dev:arm64 zlib1g:arm64 liblzma5:arm64 libbz2-1.0:arm64
# rustc needs its own version of the standard library (libstd-rust-X.Y)
std=$(APT_GET=apt-cache apt_a64 show libstd-rust-dev 2>/dev/null | sed -n 's/^Depends:.*\(libstd-rust-[0-9][0-9.]*\).*/\1/p' | head -n 1)
[ -x "$a64/rust/usr/bin/rustc" ] ||
	fetch rust "Debian's rustc with its arm64 standard library" rustc "$std" libstd-rust-dev \
		libstd-rust-dev:arm64
rm -rf "$a64/apt"
