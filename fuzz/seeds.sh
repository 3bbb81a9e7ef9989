#!/usr/bin/env bash
# fuzz/seeds.sh: write the seed inputs of fuzz/corpus/<target>/seed-*:
# real objects, images and archives built here from two small sources with
# gcc and clang, and channel messages as the driver writes them. Seeds are
# valid inputs: the unit tests check that the readers accept every one.
#
#   fuzz/seeds.sh          (from anywhere; needs gcc, g++, clang, ar, python3)
#
# Not run by `make fuzz`: the seeds are committed, and kept small (a few KB
# each) because libFuzzer mutates every byte of them.
set -eu

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
C=$ROOT/fuzz/corpus
TMP=$(mktemp -d "${TMPDIR:-/tmp}/rewire-seeds.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
cd "$TMP"
mkdir -p "$C/object" "$C/image" "$C/proto" "$C/agent" "$C/archive"
rm -f "$C"/*/seed-*

# What rewire meets in a patch: statics, a static local, a thread-local,
# a cold split at -O2, and from C++ COMDAT groups and mangled names.
cat >game.c <<'EOF'
#include <stdio.h>
static int count;
__thread int tls_hits = 3;
int speed = 7;
static const char *greet(const char *who)
{
	static char buf[64];
	snprintf(buf, sizeof buf, "hi %s %d", who, ++count);
	return buf;
}
__attribute__((cold, noinline)) static void oops(int x) { fprintf(stderr, "bad %d\n", x); }
int step(int x)
{
	if (__builtin_expect(x < 0, 0))
		oops(x);
	tls_hits += x;
	return x * speed;
}
int main(int argc, char **argv) { puts(greet(argc > 1 ? argv[1] : "you")); return step(argc) & 1; }
EOF
cat >box.cc <<'EOF'
#include <string>
template <class T> struct Box { T v; T get() const { return v; } };
inline int twice(int x) { return 2 * x; }
int use(const std::string &s) { Box<int> b{(int)s.size()}; return twice(b.get()); }
EOF

for cc in gcc clang; do
	for opt in -O0 -O2; do
		$cc $opt -c game.c -o "$C/object/seed-$cc$opt.o"
	done
done
gcc -O2 -ffunction-sections -fdata-sections -c game.c -o "$C/object/seed-gcc-sections.o"
clang++ -O0 -c box.cc -o "$C/object/seed-clang++-comdat.o"
g++ -O2 -c box.cc -o "$C/object/seed-g++-O2.o"

# Images: no separate code pages, which keeps them near 8 KB.
L=-Wl,-z,noseparate-code
gcc -O2 $L -o "$C/image/seed-pie" game.c
gcc -O2 -no-pie $L -o "$C/image/seed-no-pie" game.c
gcc -O2 -shared -fPIC $L -o "$C/image/seed-lib.so" game.c
gcc -O2 -shared -fPIC $L -s -o "$C/image/seed-lib-dynsym.so" game.c
if clang -fuse-ld=lld -O0 -o lld game.c 2>/dev/null; then
	clang -fuse-ld=lld -O0 -Wl,-z,noseparate-code -o "$C/image/seed-clang-lld" game.c
fi

# Archives: a GNU index and long names; no index; a single member.
g++ -O2 -c box.cc -o box.o
gcc -O0 -c game.c -o game.o
cp box.o a_member_with_a_long_name.o
ar rc "$C/archive/seed-index.a" box.o a_member_with_a_long_name.o
ar rcS "$C/archive/seed-no-index.a" box.o game.o
ar rc "$C/archive/seed-one.a" box.o

# Messages, in the layout of src/proto/proto.h (frames) and src/proto/msg.c
# (requests and the patch).
python3 - "$C" <<'EOF'
import struct, sys
C = sys.argv[1]
u8 = lambda v: struct.pack('<B', v)
u32 = lambda v: struct.pack('<I', v)
u64 = lambda v: struct.pack('<Q', v)
def bstr(b): return u32(len(b)) + b
def s(t): return bstr(t.encode())
def frame(typ, payload=b''): return u32(0x52495752) + struct.pack('<HH', 4, typ) + u32(len(payload)) + payload
def put(path, data):
    with open(path, 'wb') as f: f.write(data)
ERROR, HELLO, LOOKUP, ALLOC, APPLY, OK = range(1, 7)

# proto: frames whose payloads are read scripts (opcode byte, then the
# value it names: 0 u8, 1 u32, 2 u64, 3 bytes, 4 string with its cap).
script = u8(0) + u8(7) + u8(1) + u32(0xdeadbeef) + u8(2) + u64(1 << 40) + \
    u8(3) + bstr(b'\x90\xc3') + u8(4) + u8(16) + s('update_player')
put(C + '/proto/seed-hello', frame(HELLO))
put(C + '/proto/seed-ok-script', frame(OK, script))
put(C + '/proto/seed-error', frame(ERROR, s('game.c:88: not applied')))
put(C + '/proto/seed-two-frames', frame(LOOKUP, u32(1) + s('malloc')) + frame(OK, script))

# agent: the first byte picks the request (0 LOOKUP, 1 ALLOC, 2 APPLY).
# Addresses are fuzz/agent.c's pretend region: FAKE_LO is handed out,
# the 16 MiB below it were committed by earlier patches.
LO, SZ = 0x7f0000000000, 16 << 20
put(C + '/agent/seed-lookup', u8(0) + u32(3) + s('malloc') + s('errno') + s('rw_no_such_symbol'))
put(C + '/agent/seed-alloc', u8(1) + u64(0x400000) + u64(0x80000000) + u64(8192))
def patch(redirs, syms):
    code = b'\x55\x48\x89\xe5\x90\x5d\xc3' + b'\xcc' * 9
    segs = u32(2) + u64(LO) + u64(4096) + u8(3) + bstr(code) + \
        u64(LO + 4096) + u64(4096) + u8(2) + bstr(u64(42))
    out = segs + u64(LO + 4096) + u32(1) + u64(LO)
    out += u32(len(redirs))
    for frm, to, via, name in redirs:
        out += u64(frm) + u64(to) + u64(via) + s(name) + s(name + '()')
    out += u32(len(syms))
    for scope, name, kind, orig, addr, size in syms:
        out += s(scope) + s(name) + u8(kind) + u64(orig) + u64(addr) + u64(size)
    out += u32(7)   # the session's number for the patch
    out += u32(1) + bstr(b'\x7fELF')   # a symbol file, for gdb
    return u8(2) + out
old = LO - SZ
put(C + '/agent/seed-apply', patch([(old + 0x100, LO, 0, 'step')],
    [('', 'step', 1, old + 0x100, LO, 16), ('game.c', 'count', 2, old + 0x2000, LO + 4096, 4)]))
put(C + '/agent/seed-apply-via', patch([(old + 0x200, LO + 8, old + 0x1f0, 'greet')], []))
EOF
chmod 644 "$C"/*/seed-*
ls -l "$C"/*/seed-*
