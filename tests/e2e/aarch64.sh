# tests/e2e/aarch64.sh: rewire's agent in aarch64 programs, run under
# qemu-user (qemu-aarch64 -L /usr/aarch64-linux-gnu). What runs there today:
# the agent (build/aarch64/librewire.so, made when the cross compiler is
# installed) answers rewire; patching aarch64 code is refused, saying why.
# Helpers: lib.sh.

A64_SYSROOT=/usr/aarch64-linux-gnu

# a64_start: victims/body.c built for aarch64, run under qemu with the
# aarch64 agent preloaded, as `rewire run` starts a program; VPID its pid.
a64_start() {
	command -v aarch64-linux-gnu-gcc >/dev/null || fail "aarch64-linux-gnu-gcc is not installed (scripts/deps.sh)"
	command -v qemu-aarch64 >/dev/null || fail "qemu-aarch64 is not installed (scripts/deps.sh)"
	A64_AGENT=$RW_ROOT/build/aarch64/librewire.so
	[[ -f $A64_AGENT ]] || fail "$A64_AGENT was not built (make, with the cross compiler installed)"
	readelf -h "$A64_AGENT" | grep -q 'Machine: *AArch64' || fail "$A64_AGENT is not an aarch64 library: $(readelf -h "$A64_AGENT" | grep Machine)"
	export XDG_RUNTIME_DIR=$W/xdg
	mkdir -m 700 -p "$XDG_RUNTIME_DIR/rewire"
	aarch64-linux-gnu-gcc -g -O2 -o "$W/body" "$VICTIMS/body.c" -pthread >"$W/cc.log" 2>&1 ||
		{ APPLY_OUT=$W/cc.log APPLY_RC=-; fail "the aarch64 build of body.c failed"; }
	LOG=$W/body.log ERR=$W/body.err
	qemu-aarch64 -L "$A64_SYSROOT" -E LD_PRELOAD="$A64_AGENT" -E REWIRE_DIR="$XDG_RUNTIME_DIR/rewire" \
		"$W/body" >"$LOG" 2>"$ERR" &
	VPID=$!
	rw_track "$VPID"
	VSTART=$(proc_start "$VPID")
	wait_lines "$LOG" 4 10 1 || fail "the aarch64 program printed fewer than 4 lines in 10 s: $(tail -n 3 "$ERR" | tr '\n' ' ')"
	local i
	for ((i = 0; i < 250; i++)); do
		[[ -S $XDG_RUNTIME_DIR/rewire/$VPID.sock ]] && return
		sleep 0.02
	done
	fail "the agent made no socket in 5 s: $(tail -n 3 "$ERR" | tr '\n' ' ')"
}

e2e_test t_a64_agent "aarch64: the agent runs in an aarch64 program under qemu-user, and rewire status reaches it" once timeout=120
t_a64_agent() {
	local out=$W/status.out rc=0
	a64_start
	"$REWIRE" status "$VPID" >"$out" 2>&1 || rc=$?
	((rc == 0)) || fail "rewire status exited $rc: $(cat "$out")"
	grep -q "^process $VPID (.*): 0 patches$" "$out" || fail "no header line: $(head -n 1 "$out")"
	grep -qE "^  memory: 0 KiB of patches \([0-9]+ MiB reserved near the program\)$" "$out" ||
		fail "the agent reserved nothing near the program: $(tr '\n' '|' <"$out")"
	check_all 1 'v["value"] == v["tick"] * 2' "with the agent in (as without it)"
	[[ -s $ERR ]] && fail "the program (or the agent) wrote to stderr: $(head -n 3 "$ERR" | tr '\n' ' ')"
	assert_alive "after rewire status"
	pass
}

e2e_test t_a64_refused "aarch64: a patch of aarch64 code is refused, naming the machine; the program runs on unchanged" once timeout=120
t_a64_refused() {
	local out=$W/apply.out rc=0 from
	a64_start
	sed 's|return tick \* 2; /\* @BODY \*/|return tick * 3; /* @BODY */|' "$VICTIMS/body.c" >"$W/v2.c"
	grep -q 'tick \* 3' "$W/v2.c" || fail "the edit did not apply to body.c"
	aarch64-linux-gnu-gcc -g -O2 -c -o "$W/v2.o" "$W/v2.c" >"$W/cc2.log" 2>&1 || fail "the aarch64 compile of the edit failed"
	from=$(lines "$LOG")
	"$REWIRE" apply --pid "$VPID" "$W/v2.o" >"$out" 2>&1 || rc=$?
	((rc != 0)) || fail "rewire apply of an aarch64 object succeeded: $(cat "$out")"
	grep -q "v2.o: is an ELF object for machine 183 (AArch64), not x86-64" "$out" ||
		fail "the refusal does not name the machine: $(cat "$out")"
	wait_lines "$LOG" 4 5 "$from" || fail "the program stopped after the refusal"
	check_all 1 'v["value"] == v["tick"] * 2' "after the refusal (nothing applied)"
	assert_alive "after the refusal"
	pass
}
