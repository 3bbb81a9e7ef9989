# tests/e2e/aarch64.sh: rewire patching aarch64 programs, run under
# qemu-user (qemu-aarch64 -L /usr/aarch64-linux-gnu) with the aarch64 agent
# (build/aarch64/librewire.so, made when the cross compiler is installed).
# The engine's tests of patch.sh, more.sh and stress.sh run again here on
# aarch64 builds of their victims: a64_mode swaps the compilers (gcc:
# aarch64-linux-gnu-gcc/g++; clang: clang --target=aarch64-linux-gnu) and
# start_victim, then calls the test itself. Helpers: lib.sh.

A64_SYSROOT=/usr/aarch64-linux-gnu

# a64_mode: what follows builds aarch64 victims and patches, and runs them
# under qemu with the aarch64 agent.
a64_mode() {
	local tool
	for tool in aarch64-linux-gnu-gcc aarch64-linux-gnu-g++ qemu-aarch64; do
		command -v "$tool" >/dev/null || fail "$tool is not installed (scripts/deps.sh)"
	done
	A64_AGENT=$RW_ROOT/build/aarch64/librewire.so
	[[ -f $A64_AGENT ]] || fail "$A64_AGENT was not built (make, with the cross compiler installed)"
	readelf -h "$A64_AGENT" | grep -q 'Machine: *AArch64' ||
		fail "$A64_AGENT is not an aarch64 library: $(readelf -h "$A64_AGENT" | grep Machine)"
	mkdir -p "$W/bin"
	if [[ $RW_CC == clang ]]; then
		printf '#!/bin/sh\nexec clang --target=aarch64-linux-gnu "$@"\n' >"$W/bin/cc"
		printf '#!/bin/sh\nexec clang++ --target=aarch64-linux-gnu "$@"\n' >"$W/bin/c++"
		chmod +x "$W/bin/cc" "$W/bin/c++"
		CC=$W/bin/cc CXX=$W/bin/c++
	else
		CC=aarch64-linux-gnu-gcc CXX=aarch64-linux-gnu-g++
	fi
	export XDG_RUNTIME_DIR=$W/xdg
	mkdir -m 700 -p "$XDG_RUNTIME_DIR/rewire"
	start_victim() { a64_start_victim "$@"; }
}

# a64_start_victim NAME [ARGS...]: $W/base/NAME under qemu-aarch64 with the
# agent preloaded, as `rewire run` would start it (which runs native
# programs only); stdout to $LOG. Sets VPID (qemu's pid is the program's)
# and VSTART, and waits for the agent's socket.
a64_start_victim() {
	local name=$1 i
	shift
	LOG=$W/$name.log ERR=$W/$name.err
	qemu-aarch64 -L "$A64_SYSROOT" -E LD_PRELOAD="$A64_AGENT" -E REWIRE_DIR="$XDG_RUNTIME_DIR/rewire" \
		"$W/base/$name" "$@" >"$LOG" 2>"$ERR" &
	VPID=$!
	rw_track "$VPID"
	VSTART=$(proc_start "$VPID")
	wait_for "$LOG" '^pid=[0-9]+' 20 ||
		fail "the aarch64 $name printed no pid=P line within 20 s: $(tail -n 3 "$ERR" | tr '\n' ' ')"
	for ((i = 0; i < 500; i++)); do
		[[ -S $XDG_RUNTIME_DIR/rewire/$VPID.sock ]] && return
		sleep 0.02
	done
	fail "the agent made no socket in 10 s: $(tail -n 3 "$ERR" | tr '\n' ' ')"
}

# a64_start: victims/body.c built for aarch64 (gcc -O2), run under qemu.
a64_start() {
	a64_mode
	CC=aarch64-linux-gnu-gcc CFLAGS=(-g -pthread -O2 -fPIE) LDFLAGS=(-g -pthread -O2 -pie)
	build_victim body
	start_victim body
	wait_lines "$LOG" 4 10 1 || fail "the aarch64 program printed fewer than 4 lines in 10 s"
}

e2e_test t_a64_agent "aarch64: the agent runs in an aarch64 program under qemu-user, and rewire status reaches it" once timeout=120
t_a64_agent() {
	local out=$W/status.out rc=0
	a64_start
	"$REWIRE" status "$VPID" >"$out" 2>&1 || rc=$?
	((rc == 0)) || fail "rewire status exited $rc: $(cat "$out")"
	grep -qF "process $VPID ($W/base/body under qemu-aarch64): 0 patches" "$out" ||
		fail "the header line does not name the program under qemu: $(head -n 1 "$out")"
	grep -qE "^  memory: 0 KiB of patches \([0-9]+ MiB reserved near the program\)$" "$out" ||
		fail "the agent reserved nothing near the program: $(tr '\n' '|' <"$out")"
	check_all 1 'v["value"] == v["tick"] * 2' "with the agent in (as without it)"
	[[ -s $ERR ]] && fail "the program (or the agent) wrote to stderr: $(head -n 3 "$ERR" | tr '\n' ' ')"
	assert_alive "after rewire status"
	pass
}

e2e_test t_a64_machine "aarch64: an x86-64 object for an aarch64 program is refused, naming both machines" once timeout=120
t_a64_machine() {
	local from
	a64_start
	variant body v2 BODY 'return tick * 3;'
	local a64=$OBJ
	edit_source "$VICTIMS/body.c" "$W/x86.c" BODY 'return tick * 3;'
	gcc -g -O2 -fPIE -c -o "$W/x86.o" "$W/x86.c" >"$W/x86.log" 2>&1 || fail "the x86-64 compile failed"
	from=$(lines "$LOG")
	expect_error 3 "x86.o is x86-64 code, the program ($W/base/body) is aarch64" apply --pid "$VPID" "$W/x86.o"
	expect_error 3 "x86.o is x86-64 code, $a64 is aarch64: a patch is for one machine" \
		apply --pid "$VPID" "$a64" "$W/x86.o"
	wait_lines "$LOG" 4 5 "$from" || fail "the program stopped after the refusals"
	check_all 1 'v["value"] == v["tick"] * 2' "after the refusals (nothing applied)"
	from=$(lines "$LOG")
	apply_ok "$a64"
	check_after "$from" 'v["value"] == v["tick"] * 3 && v["pid"] == pid' "after the aarch64 patch"
	assert_alive "after the patch"
	pass
}

# The engine's tests, on aarch64. Each runs in the 8 configs (the clang
# ones with clang --target=aarch64-linux-gnu).
e2e_test t_a64_body "aarch64: function body change" timeout=120
t_a64_body() { a64_mode; t_body; }
e2e_test t_a64_state "aarch64: state kept (file static, global, local static)" timeout=120
t_a64_state() { a64_mode; t_state; }
e2e_test t_a64_newcode "aarch64: new function, global and string" timeout=120
t_a64_newcode() { a64_mode; t_newcode; }
e2e_test t_a64_fnptr "aarch64: old function pointer reaches new code" timeout=120
t_a64_fnptr() { a64_mode; t_fnptr; }
# gcc -O2 addresses fnptr.c's two pointers from one section anchor, and the
# edit makes it lay them out the other way round: refused, naming them
# (binding by the anchor's symbol would read saved_fn from past
# saved_static). Built with -fno-section-anchors, the same edit patches.
e2e_test t_a64_fnptr_static "aarch64: old pointer to a static function; gcc's section anchors that moved are refused" timeout=120
t_a64_fnptr_static() {
	local edit=(SEXTRA 'printf("ssame=%d\n", saved_static == scompute);' SBODY 'return x + 400;')
	a64_mode
	build_victim fnptr
	variant fnptr anchored "${edit[@]}"
	local anchored=$OBJ
	[[ $RW_CC == gcc ]] && CFLAGS+=(-fno-section-anchors)	# clang has no section anchors
	variant fnptr plain "${edit[@]}"
	local plain=$OBJ
	start_victim fnptr
	wait_lines "$LOG" 4 5 1 || fail "the victim printed fewer than 4 lines in 5 s"
	local from
	from=$(lines "$LOG")
	apply "$anchored"
	if [[ $RW_CC == gcc && $RW_OPT == -O2 ]]; then
		((APPLY_RC == 1)) || fail "the patch with moved section anchors was not refused (exit $APPLY_RC): $(apply_msg)"
		grep -qE "saved_[a-z]+ and saved_[a-z]+ (are reached )?from one address \(gcc's section anchors\)" "$APPLY_OUT" ||
			fail "the refusal does not name the two variables: $(apply_msg)"
		wait_lines "$LOG" 4 5 "$from" || fail "the program stopped after the refusal"
		check_all 1 'v["result"] == v["tick"] + 100 && v["sresult"] == v["tick"] + 300' "after the refusal"
		apply_ok "$plain"
	else
		((APPLY_RC == 0)) || fail "rewire apply exited $APPLY_RC: $(apply_msg)"
	fi
	wait_cond "$from" 'v["sresult"] == v["tick"] + 400' 5 ||
		fail "the call through the old pointer does not reach the new code"
	check_after "$from" '("ssame" in v) ? v["ssame"] == 1 : v["result"] == v["tick"] + 100 && v["sresult"] == v["tick"] + 400' \
		"after the patch" 6
	assert_alive "after the patch"
	pass
}
e2e_test t_a64_libc "aarch64: new libc calls (strlen, memcpy)" timeout=120
t_a64_libc() { a64_mode; t_libc; }
e2e_test t_a64_tls "aarch64: thread-locals kept per thread" timeout=120
t_a64_tls() { a64_mode; t_tls; }
e2e_test t_a64_twice "aarch64: patched twice (existing function, pointer from patch 1)" timeout=120
t_a64_twice() { a64_mode; t_twice; }
e2e_test t_a64_unknown "aarch64: unknown symbol refused" timeout=120
t_a64_unknown() { a64_mode; t_unknown; }
e2e_test t_a64_throw "aarch64: C++ exception through patched code" timeout=120
t_a64_throw() { a64_mode; t_throw; }
e2e_test t_a64_cxx "aarch64: C++ methods, virtuals, templates, lambdas, new class" timeout=180
t_a64_cxx() { a64_mode; t_cxx; }
e2e_test t_a64_stress "aarch64: 30 patches under 8 busy threads" heavy timeout=300
t_a64_stress() { a64_mode; RW_STRESS_PATCHES=30 t_stress; }
e2e_test t_a64_libtls "aarch64: thread-local of a shared library" timeout=120
t_a64_libtls() { a64_mode; t_libtls; }

# -fPIC code reaches a thread-local through a TLS descriptor (adrp, ldr,
# add, blr): rewire rewrites the sequence to initial-exec, as the static
# linker does for a module whose TLS is static.
e2e_test t_a64_tlsdesc "aarch64: TLS descriptors of -fPIC code (rewritten to initial-exec)" timeout=120
t_a64_tlsdesc() {
	a64_mode
	CFLAGS+=(-fPIC)
	LIBTLS_CHECK=uses_tlsdesc t_libtls
}

uses_tlsdesc() {
	readelf -rW "$1" | grep -q 'R_AARCH64_TLSDESC_ADR_PAGE21' ||
		fail "test invalid: the -fPIC patch reaches libcount without a TLS descriptor"
}

# The driver is portable C: its sources compile for aarch64 as they are
# (no aarch64 libdw here to link with; the headers are the host's).
e2e_test t_a64_driver_compiles "aarch64: the driver's sources compile for aarch64 with -Werror" once timeout=300
t_a64_driver_compiles() {
	command -v aarch64-linux-gnu-gcc >/dev/null || fail "aarch64-linux-gnu-gcc is not installed (scripts/deps.sh)"
	local f n=0
	for f in "$RW_ROOT"/src/{driver,session,elf,arch,link,diff,front,proto,api,guard}/*.c "$RW_ROOT"/src/util.c; do
		aarch64-linux-gnu-gcc -O2 -c -o "$W/out.o" -Wall -Wextra -Werror -Wno-unused-parameter \
			-I"$RW_ROOT/src" -idirafter /usr/include "$f" >"$W/cc.log" 2>&1 ||
			{ APPLY_OUT=$W/cc.log APPLY_RC=-; fail "${f#"$RW_ROOT"/} does not compile for aarch64"; }
		n=$((n + 1))
	done
	((n > 50)) || fail "only $n sources found"
	pass
}

# entry_word EXE FUNCTION: the first 4 bytes of FUNCTION as the process
# VPID runs them (read from /proc/VPID/mem), as a number.
entry_word() {
	python3 - "$VPID" "$1" "$2" <<'PY'
import re, subprocess, sys
pid, exe, fn = sys.argv[1:]
out = subprocess.run(["readelf", "-hsW", exe], capture_output=True, text=True).stdout
pie = "DYN" in re.search(r"Type:\s+(\S+)", out).group(1)
addr = next(int(l.split()[1], 16) for l in out.splitlines() if l.split()[-1:] == [fn])
base = 0
if pie:
    for line in open(f"/proc/{pid}/maps"):
        f = line.split()
        if len(f) >= 6 and f[5] == exe and int(f[2], 16) == 0:
            base = int(f[0].split("-")[0], 16)
            break
with open(f"/proc/{pid}/mem", "rb") as m:
    m.seek(base + addr)
    print(int.from_bytes(m.read(4), "little"))
PY
}

# Placed far on aarch64: victims/far.c fills every free page within 160
# MiB of itself, after the agent reserved its 32 MiB near it. Two patches of
# 20 MiB each (a new array in .bss): the first fits the reservation; the
# second cannot, and no memory is free within bl's 128 MiB: it is placed
# beyond (within adrp's 4 GiB, agent/region.c), calls the program through
# stubs (adrp, ldr x16; br x16) and is entered by 12-byte jumps (adrp x16;
# add; br x16). A third reads a file static of the program by adrp, from
# there. A fourth replaces a function whose first instruction is a call a
# thread sleeps in: refused (the thread would return into the jump).
e2e_test t_a64_far "aarch64: patches placed beyond bl's reach (stubs, 12-byte entry jumps, the program's data by adrp; a thread that would return into a jump refuses)" timeout=180
t_a64_far() {
	local from warn='^rewire: warning: no memory free within 128 MiB of the program: patches are placed far and call it through stubs$'
	a64_mode
	mkdir -p "$W/base"
	cp "$VICTIMS/far_value.c" "$W/base/"
	compile_in "$W/base" far_value
	VICTIM_LIBS=far_value.o build_victim far
	variant far_value p1 K 'static volatile char big1[20 << 20]; big1[tick & 0xfffff] = 1; volatile int k = 3;'
	local p1=$OBJ
	variant far_value p2 K 'static volatile char big2[20 << 20]; big2[tick & 0xfffff] = 2; volatile int k = 5;'
	local p2=$OBJ
	variant far_value p3 K 'static volatile char big3[20 << 20]; big3[tick & 0xfffff] = 3; volatile int k = seed;'
	local p3=$OBJ
	variant far_value p4 K 'static volatile char big4[20 << 20]; big4[tick & 0xfffff] = 4; volatile int k = 6;' EXTRA 'void sleeper(void);
void wait_loop(void)
{
	for (;;)
		sleeper();
}'
	local p4=$OBJ
	start_victim far
	wait_lines "$LOG" 4 10 1 || fail "the program printed fewer than 4 lines in 10 s"
	check_all 1 'v["value"] == v["tick"] * 2' "before the patches"
	from=$(lines "$LOG")
	apply_ok "$p1"
	grep -qE "$warn" "$APPLY_OUT" && fail "patch 1 was placed far: the reservation near the program should hold it"
	check_after "$from" 'v["value"] == v["tick"] * 3 && v["pid"] == pid' "after patch 1 (near)"
	from=$(lines "$LOG")
	apply_ok "$p2"
	grep -qE "$warn" "$APPLY_OUT" || fail "patch 2 was not placed far: $(apply_msg)"
	check_after "$from" 'v["value"] == v["tick"] * 5 && v["pid"] == pid' "after patch 2 (far)"
	# value's entry holds the 12-byte jump: adrp x16 first.
	local w
	w=$(entry_word "$W/base/far" value) || fail "cannot read value's first instruction"
	(((w & 0x9f00001f) == 0x90000010)) || fail "value's entry is $(printf %08x "$w"), not adrp x16"
	from=$(lines "$LOG")
	apply_ok "$p3"
	grep -qE "$warn" "$APPLY_OUT" || fail "patch 3 was not placed far: $(apply_msg)"
	check_after "$from" 'v["value"] == v["tick"] * 4 && v["pid"] == pid' "after patch 3 (far, reading seed)"
	# far.c's thread sleeps in a call made by wait_loop's first
	# instruction: the jump to a patch placed far would overwrite the
	# instruction it returns to. Refused whole (value too), not written.
	from=$(lines "$LOG")
	expect_error 1 "would return into the first bytes of wait_loop, which the jump to the patch overwrites" \
		apply --pid "$VPID" "$p4"
	wait_lines "$LOG" 4 5 "$from" || fail "the program stopped after the refusal"
	check_after "$from" 'v["value"] == v["tick"] * 4 && v["pid"] == pid' "after the refused patch 4"
	assert_alive "after the patches"
	check_steps 1 calls 1
	check_steps 1 tick 1
	pass
}

# Rust on aarch64: Debian's rustc and its arm64 standard library
# (scripts/deps.sh unpacks them into build/aarch64/rust: no aarch64 std
# for the rustup toolchain is to be had offline), the program built by
# rustc alone, each patch the crate recompiled to one object and applied,
# with the standard library's .rlib (`rewire run -- cargo run` needs a
# cargo of that rustc's version).
a64_rustc() {	# ARGS...: that rustc, for aarch64
	local root=$RW_ROOT/build/aarch64/rust
	LD_LIBRARY_PATH=$root/usr/lib/$(gcc -print-multiarch) "$root/usr/bin/rustc" --edition 2021 \
		--crate-name rust_a64 -g -C opt-level=2 -C codegen-units=1 --target aarch64-unknown-linux-gnu \
		-C linker=aarch64-linux-gnu-gcc "$@"
}

e2e_test t_a64_rust "aarch64: Rust (std): body change, new function, a panic caught through patched code; statics and a Mutex<Vec> kept" once timeout=180
t_a64_rust() {
	local from v
	a64_mode
	[[ -x $RW_ROOT/build/aarch64/rust/usr/bin/rustc ]] ||
		fail "build/aarch64/rust holds no rustc (scripts/deps.sh unpacks Debian's)"
	mkdir -p "$W/base" "$W/p1" "$W/p2"
	cp "$VICTIMS/rust_a64.rs" "$W/base/"
	a64_rustc -o "$W/base/rust_a64" "$W/base/rust_a64.rs" >"$W/base/rustc.log" 2>&1 ||
		{ APPLY_OUT=$W/base/rustc.log APPLY_RC=-; fail "rustc (aarch64) failed"; }
	edit_source "$VICTIMS/rust_a64.rs" "$W/p1/rust_a64.rs" BODY 'tick * 7 + label(tick).len() as u64' \
		EXTRA '#[inline(never)]
fn label(tick: u64) -> String {
    format!("label-{}", tick % 10)
}'
	edit_source "$VICTIMS/rust_a64.rs" "$W/p2/rust_a64.rs" BODY 'tick * 9' \
		RISKY 'if tick % 3 == 0 { panic!("tick {} is a multiple of 3", tick); } tick + COUNT.load(Ordering::Relaxed) * 0'
	for v in p1 p2; do
		a64_rustc --emit=obj -o "$W/$v/rust_a64.o" "$W/$v/rust_a64.rs" >"$W/$v/rustc.log" 2>&1 ||
			{ APPLY_OUT=$W/$v/rustc.log APPLY_RC=-; fail "rustc (aarch64) failed on $v"; }
	done
	start_victim rust_a64
	wait_lines "$LOG" 4 20 1 || fail "the Rust program printed fewer than 4 lines in 20 s"
	check_all 1 'v["value"] == v["tick"] * 2 && v["caught"] == 0 && v["names"] == v["count"]' "before the patches"
	from=$(lines "$LOG")
	apply_ok "$W/p1/rust_a64.o"
	check_after "$from" 'v["value"] == v["tick"] * 7 + 7 && v["pid"] == pid' "after patch 1 (a new function with a String)"
	# A panic caught now, where none could be as built: the program's link
	# left out the standard library's code for it, taken from its .rlib.
	from=$(lines "$LOG")
	expect_error 1 "std::panicking::try::cleanup" apply --pid "$VPID" "$W/p2/rust_a64.o"
	apply_ok "$W/p2/rust_a64.o" "$RW_ROOT"/build/aarch64/rust/usr/lib/rustlib/aarch64-unknown-linux-gnu/lib/libstd-*.rlib
	check_after "$from" 'v["value"] == v["tick"] * 9 && v["pid"] == pid' "after patch 2"
	wait_cond "$from" 'v["caught"] > 0' 5 || fail "no panic of the patched risky() was caught"
	check_all 1 'v["names"] == v["count"]' "the Mutex<Vec<String>> kept its names"
	check_steps 1 count 1
	check_steps 1 tick 1
	assert_alive "after the patches"
	pass
}

# The driver built for aarch64 (make: build/aarch64/host/rewire, linked
# with Debian's arm64 libraries that scripts/deps.sh unpacks) runs under
# qemu too: a64_host_mode makes $REWIRE that driver, so the engine's tests
# run with the driver and the program both aarch64. (Not `rewire run`:
# without binfmt_misc, a program under qemu cannot exec another aarch64
# one; nor `rewire attach`: ptrace under qemu sees qemu's registers.)
a64_host_mode() {
	a64_mode
	local host=$RW_ROOT/build/aarch64/host/rewire
	[[ -x $host ]] || fail "$host was not built (scripts/deps.sh unpacks its arm64 libraries, then make)"
	readelf -h "$host" | grep -q 'Machine: *AArch64' || fail "$host is not an aarch64 program"
	printf '#!/bin/sh\nexec qemu-aarch64 -L %s %s "$@"\n' "$A64_SYSROOT" "$host" >"$W/bin/rewire"
	chmod +x "$W/bin/rewire"
	REWIRE=$W/bin/rewire
}

e2e_test t_a64_host_body "aarch64 driver: function body change (the driver and the program under qemu)" timeout=120
t_a64_host_body() { a64_host_mode; t_body; }
e2e_test t_a64_host_twice "aarch64 driver: patched twice (existing function, pointer from patch 1)" timeout=120
t_a64_host_twice() { a64_host_mode; t_twice; }
e2e_test t_a64_host_unknown "aarch64 driver: unknown symbol refused" timeout=120
t_a64_host_unknown() { a64_host_mode; t_unknown; }
e2e_test t_a64_host_cxx "aarch64 driver: C++ methods, virtuals, templates, lambdas, new class" timeout=180
t_a64_host_cxx() { a64_host_mode; t_cxx; }

# An aarch64 program under qemu, attached to: the process's executable is
# qemu (x86-64), and the dlopen would load the agent into qemu. Refused
# before the process is touched; it runs on.
e2e_test t_a64_attach_refused "aarch64: rewire attach to a program under qemu is refused (the agent would load into qemu)" once timeout=120
t_a64_attach_refused() {
	local from
	a64_mode
	CC=aarch64-linux-gnu-gcc CFLAGS=(-g -pthread -O2 -fPIE) LDFLAGS=(-g -pthread -O2 -pie)
	build_victim body
	LOG=$W/plain.log
	qemu-aarch64 -L "$A64_SYSROOT" "$W/base/body" >"$LOG" 2>&1 &
	VPID=$!
	rw_track "$VPID"
	VSTART=$(proc_start "$VPID")
	wait_lines "$LOG" 3 20 1 || fail "the aarch64 program printed fewer than 3 lines in 20 s"
	from=$(lines "$LOG")
	expect_error 1 "it runs under an emulator (qemu-aarch64): rewire attaches to programs of its own machine only" \
		attach "$VPID"
	grep -q librewire "/proc/$VPID/maps" && fail "an agent was loaded into qemu"
	wait_lines "$LOG" 3 10 "$from" || fail "the program stopped after the refusal"
	assert_alive "after the refused attach"
	pass
}

# status and revert, from the aarch64 driver, of patches it applied.
e2e_test t_a64_host_revert "aarch64 driver: rewire status lists the patches, rewire revert takes them back" once timeout=120
t_a64_host_revert() {
	local k from out=$W/revert.out rc=0
	a64_host_mode
	CC=aarch64-linux-gnu-gcc CFLAGS=(-g -pthread -O2 -fPIE) LDFLAGS=(-g -pthread -O2 -pie)
	build_victim body
	variant body v3 BODY 'return tick * 3;'
	variant body v4 BODY 'return tick * 4;'
	start_victim body
	wait_lines "$LOG" 4 10 1 || fail "the aarch64 program printed fewer than 4 lines in 10 s"
	for k in 3 4; do
		from=$(lines "$LOG")
		apply_ok "$W/v$k/body.o"
		check_after "$from" "v[\"value\"] == v[\"tick\"] * $k" "after patch $((k - 2))"
	done
	"$REWIRE" status "$VPID" >"$out" 2>&1 || rc=$?
	((rc == 0)) || fail "rewire status exited $rc: $(head -c 300 "$out")"
	grep -q "^process $VPID (.*): 2 patches$" "$out" || fail "no header line: $(head -n 1 "$out")"
	grep -qE "^  patch 2  [0-9]{2}:[0-9]{2}:[0-9]{2}  (.*, )?compute(, .*)?$" "$out" ||
		fail "patch 2 is not listed with compute: $(tr '\n' '|' <"$out")"
	from=$(lines "$LOG") rc=0
	"$REWIRE" revert "$VPID" >"$out" 2>&1 || rc=$?
	((rc == 0)) && grep -q "^rewire: process $VPID: patch 2 taken back; it runs the code before it" "$out" ||
		fail "rewire revert: exit $rc, $(cat "$out")"
	check_after "$from" 'v["value"] == v["tick"] * 3' "after the revert of patch 2"
	from=$(lines "$LOG") rc=0
	"$REWIRE" revert "$VPID" 0 >"$out" 2>&1 || rc=$?
	((rc == 0)) && grep -q "^rewire: process $VPID: patch 1 taken back; it runs the code before it" "$out" ||
		fail "rewire revert PID 0: exit $rc, $(cat "$out")"
	check_after "$from" 'v["value"] == v["tick"] * 2' "after the revert to the build"
	assert_alive "after the reverts"
	check_steps 1 tick 1
	pass
}

# rewire run of an aarch64 program on x86-64 runs it under qemu-user with
# the aarch64 agent (driver/run.c): the whole session — watch, compile
# with the recorded cross compiler, diff, patch — on aarch64 code.
e2e_test t_a64_s_body "aarch64: session (rewire run under qemu): saved edit is patched" timeout=120
t_a64_s_body() { a64_mode; t_s_body; }
e2e_test t_a64_s_header "aarch64: session: header change patches every unit including it" timeout=120
t_a64_s_header() { a64_mode; t_s_header; }
e2e_test t_a64_s_inline "aarch64: session: inlined static changes its caller" timeout=120
t_a64_s_inline() { a64_mode; t_s_inline; }
e2e_test t_a64_s_cxx "aarch64: session: C++ virtual function edited and saved" timeout=120
t_a64_s_cxx() { a64_mode; t_s_cxx; }
e2e_test t_a64_s_types "aarch64: session: type checks at every save" timeout=120
t_a64_s_types() { a64_mode; t_s_types; }
e2e_test t_a64_consts "aarch64: session: an edited constant takes effect (string table, float, switch table, struct)" timeout=120
t_a64_consts() { a64_mode; t_consts; }
e2e_test t_a64_consts_cpp "aarch64: session: an edited C++ constant takes effect" timeout=120
t_a64_consts_cpp() { a64_mode; t_consts_cpp; }
e2e_test t_a64_s_statics "aarch64: session: a new function-local static renumbers the others" timeout=120
t_a64_s_statics() { a64_mode; t_s_statics; }
