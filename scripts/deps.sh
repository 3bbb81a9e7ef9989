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
[ -z "$need" ] && exit 0
echo "rewire: installing$need" >&2
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $need >/dev/null
