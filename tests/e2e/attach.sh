# tests/e2e/attach.sh: `rewire attach PID` takes a program started without
# rewire: a save patches it (and the workers it forked before), rewire
# ends and the program runs on; what cannot be attached is refused and
# left unharmed. Victims: victims/attached.c, victims/prefork.c,
# victims/far.c with far_value.c. Helpers:
# lib.sh, and procs.sh's ask/all_answer/prefork_patch.

# plain_start PROGRAM [ARGS...]: $P/build/PROGRAM started without rewire
# (stdin from $IN, else /dev/null), stdout and stderr to $LOG; VPID.
plain_start() {
	local prog=$1
	shift
	LOG=$W/$prog.log ERR=$W/$prog.err
	(cd "$P" && exec "build/$prog" "$@") <"${IN:-/dev/null}" >"$LOG" 2>&1 &
	VPID=$!
	# Before the wait, which asks whether this process still runs (an
	# exec keeps the pid and the start time).
	VSTART=$(proc_start "$VPID")
	rw_track "$VPID"
	wait_for "$LOG" '^pid=[0-9]+$' 10 || fail "the program printed no pid=P line within 10 s"
	grep -q librewire.so "/proc/$VPID/maps" && fail "the program has rewire's agent before the attach"
	return 0
}

# attach_start [OPTIONS...]: `rewire attach OPTIONS $VPID` in $P; wait for
# it to say it watches. RUN_PID is rewire, ERR its stderr.
attach_start() {
	(cd "$P" && exec "$REWIRE" attach "$@" "$VPID") 2>"$ERR" &
	RUN_PID=$!
	rw_track "$RUN_PID"
	wait_err '^rewire: watching' 1 20 ||
		fail "rewire attach does not say it watches: $(tail -n 2 "$ERR" | tr '\n' ' ')"
	sleep 0.3	# the baseline compiles start now
}

# untouched: the program is not traced, nor stopped.
untouched() {
	local tracer state
	tracer=$(awk '/^TracerPid:/ {print $2}' "/proc/$VPID/status")
	[[ $tracer == 0 ]] || fail "$1: the program is still traced (by $tracer)"
	state=$(proc_state "$VPID")
	[[ $state != T && $state != t ]] || fail "$1: the program is stopped (state $state)"
}

# detach: SIGTERM to rewire; it must end with status 0 and say so.
detach() {
	kill -TERM "$RUN_PID"
	local rc=0
	wait "$RUN_PID" || rc=$?
	((rc == 0)) || fail "rewire attach ended with status $rc on SIGTERM"
	grep -q "^rewire: detached from .* (pid $VPID): it runs on" "$ERR" ||
		fail "rewire did not say it detached: $(tail -n 1 "$ERR")"
}

# attach_save MODE: attach to attached.c running in MODE, save an edit,
# see it run in the same process with its count kept; detach, and the
# program goes on with the new code.
attach_save() {
	local from
	build_project attached attached.c
	plain_start attached "$1"
	wait_lines "$LOG" 4 5 1 || fail "the program printed fewer than 4 lines in 5 s"
	attach_start
	untouched "after the attach"
	from=$(lines "$LOG")
	save attached.c BODY 'return tick * 3;'
	wait_err '^rewire: patched .*compute' || fail "no 'rewire: patched ... compute' line: $(tail -n 2 "$ERR" | tr '\n' ' ')"
	check_after "$from" 'v["value"] == v["tick"] * 3 && v["pid"] == pid' "after the save"
	check_steps 1 calls 1 'v["calls"] != ""'
	check_all 1 'v["tick"] == "" || v["calls"] == v["tick"]' "the count of calls"
	detach
	untouched "after rewire ended"
	from=$(lines "$LOG")
	wait_lines "$LOG" 5 5 "$from" || fail "the program stopped printing after rewire ended"
	check_all "$from" 'v["value"] == v["tick"] * 3' "after rewire ended"
	assert_alive "after rewire ended"
	pass
}

e2e_test t_attach_sleep "attach: a program sleeping in a loop, started without rewire, is patched; it runs on after rewire ends"
t_attach_sleep() {
	attach_save sleep
}

e2e_test t_attach_thread "attach: a program whose worker thread prints while main waits in pthread_join is patched"
t_attach_thread() {
	attach_save thread
}

e2e_test t_attach_read "attach: a program blocked in read() is patched; the read goes on"
t_attach_read() {
	mkfifo "$W/in"
	# One line every 20 ms: each makes the program print one.
	(while :; do echo x; sleep 0.02; done) >"$W/in" &
	rw_track $!
	IN=$W/in attach_save read
}

e2e_test t_attach_far "attach: a program with no memory free within 2 GiB of it is patched from far (stubs, absolute entry jumps); a read of its data by a 32-bit offset is refused whole"
t_attach_far() {
	local from far_msg='^rewire: warning: no memory free within 2 GiB of the program: patches are placed far and call it through stubs$'
	build_project far far.c far_value.c
	plain_start far
	wait_lines "$LOG" 4 5 1 || fail "the program printed fewer than 4 lines in 5 s"
	attach_start
	untouched "after the attach"
	from=$(lines "$LOG")
	save far_value.c K "$(marked K 'volatile int k = 3;')"
	wait_err '^rewire: patched .*value' || fail "no 'rewire: patched ... value' line: $(tail -n 2 "$ERR" | tr '\n' ' ')"
	grep -qE "$far_msg" "$ERR" || fail "rewire did not warn that the patch is placed far: $(grep -m1 warning "$ERR")"
	check_after "$from" 'v["value"] == v["tick"] * 3 && v["pid"] == pid' "after the first save"
	from=$(lines "$LOG")
	save far_value.c K "$(marked K 'volatile int k = 5;')"
	wait_err '^rewire: patched .*value' 2 || fail "no second 'rewire: patched ... value' line: $(tail -n 2 "$ERR" | tr '\n' ' ')"
	check_after "$from" 'v["value"] == v["tick"] * 5 && v["pid"] == pid' "after the second save"
	(($(grep -cE "$far_msg" "$ERR") == 1)) || fail "the warning that patches are far was said more than once"
	# Reading the file static: by a 32-bit offset (PC32) it does not reach
	# from far; through the GOT, or by its absolute 32-bit address (32S:
	# clang -O0 without -fPIE, the program below 2 GiB), it does. What the
	# compiler emits decides.
	from=$(lines "$LOG")
	save far_value.c K "$(marked K 'volatile int k = seed;')"
	(cd "$P" && "$CC" "${CFLAGS[@]}" -c far_value.c -o "$W/seed.o") >"$W/seed.log" 2>&1 ||
		fail "cannot compile the edit that reads seed: $(head -n 2 "$W/seed.log")"
	if ! readelf -rW "$W/seed.o" | sed -n '/rela.text/,/^$/p' | grep -v base_of | grep -q R_X86_64_PC32; then
		wait_err '^rewire: patched .*value' 3 || fail "the GOT-relative read of seed was not patched: $(tail -n 2 "$ERR" | tr '\n' ' ')"
		check_after "$from" 'v["value"] == v["tick"] * 4 && v["pid"] == pid' "after reading seed"
	else
		wait_err '^rewire: error: .*value refers to seed \(data of the program\) by a 32-bit offset, and no memory is free within 2 GiB of the program' ||
			fail "reading seed by a 32-bit offset was not refused, saying why: $(tail -n 2 "$ERR" | tr '\n' ' ')"
		sleep 0.2
		check_all "$from" 'v["value"] == v["tick"] * 5 && v["pid"] == pid' "after the refused edit"
	fi
	# Nothing was left half made: the next edit is patched.
	from=$(lines "$LOG")
	save far_value.c K "$(marked K 'volatile int k = 7;')"
	wait_err '^rewire: patched .*value' "$(($(grep -c '^rewire: patched .*value' "$ERR") + 1))" ||
		fail "the edit after the refused one was not patched: $(tail -n 2 "$ERR" | tr '\n' ' ')"
	check_after "$from" 'v["value"] == v["tick"] * 7 && v["pid"] == pid' "after the last save"
	check_steps 1 calls 1 'v["calls"] != ""'
	check_all 1 'v["tick"] == "" || v["calls"] == v["tick"]' "the count kept in a static"
	detach
	untouched "after rewire ended"
	assert_alive "after rewire ended"
	pass
}

e2e_test t_attach_prefork "attach: a pre-fork server started without rewire: a save patches the master and the 3 workers it forked before"
t_attach_prefork() {
	local w
	build_project prefork prefork.c
	LOG=$W/prefork.log ERR=$W/prefork.err
	(cd "$P" && PREFORK_MODE=steady exec build/prefork) >"$LOG" 2>&1 &
	VPID=$!
	# Before the wait, which asks whether this process still runs (an
	# exec keeps the pid and the start time).
	VSTART=$(proc_start "$VPID")
	rw_track "$VPID"
	wait_for "$LOG" '^port=[0-9]+$' 10 || fail "the server printed no port"
	wait_lines "$LOG" 5 5 || fail "the server forked fewer than 3 workers"
	for w in $(live_workers); do rw_track "$w"; done
	PORT=$(sed -n 's/^port=//p' "$LOG" | head -n 1)
	ANSWERS=$W/answers
	: >"$ANSWERS"
	ask 9
	all_answer 1 "before the attach"
	attach_start
	grep -q "^rewire: attached to prefork (pid $VPID) and 3 processes it forked" "$ERR" ||
		fail "rewire did not attach to the 3 workers: $(grep -m1 attached "$ERR")"
	prefork_patch 2 1 "the first patch"
	grep -q '^rewire: patched .* in 4 processes ' "$ERR" ||
		fail "the patch line does not count the master and 3 workers: $(grep patched "$ERR" | tail -n 1)"
	for w in $(live_workers); do
		grep -q "^pid=$w v=2 " "$W/last" || fail "worker $w did not answer after the patch"
	done
	detach
	untouched "after rewire ended"
	ask 9
	all_answer 2 "after rewire ended"
	no_crash "after rewire ended"
	pass
}

e2e_test t_attach_apply "attach: without sources rewire only loads the agent; rewire apply patches; a second attach is refused"
t_attach_apply() {
	local from
	build_project attached attached.c
	variant attached v2 BODY 'return tick * 5;'
	rm "$P/compile_commands.json"	# no sources to watch
	plain_start attached sleep
	APPLY_OUT=$W/attach.out
	timeout 30 "$REWIRE" attach "$VPID" >"$APPLY_OUT" 2>&1 || fail "rewire attach exited $?: $(apply_msg)"
	grep -q "^rewire: patch it with: rewire apply --pid $VPID FILE.o" "$APPLY_OUT" ||
		fail "rewire attach without sources does not say how to patch: $(apply_msg)"
	untouched "after the attach"
	from=$(lines "$LOG")
	apply_ok "$OBJ"
	check_after "$from" 'v["value"] == v["tick"] * 5 && v["pid"] == pid' "after rewire apply"
	check_steps 1 calls 1 'v["calls"] != ""'
	expect_error 1 "already has rewire's agent" attach "$VPID"
	assert_alive "after the second attach"
	pass
}

e2e_test t_attach_refused "attach: a traced process, another user's, a static one: refused, saying why, and unharmed"
t_attach_refused() {
	local tracer from
	build_project attached attached.c
	plain_start attached sleep
	strace -p "$VPID" -o /dev/null 2>/dev/null &
	tracer=$!
	rw_track "$tracer"
	for _ in $(seq 100); do
		grep -q "^TracerPid:[[:space:]]*$tracer\$" "/proc/$VPID/status" && break
		sleep 0.05
	done
	grep -q "^TracerPid:[[:space:]]*$tracer\$" "/proc/$VPID/status" || fail "strace did not trace the program"
	expect_error 1 "traced by process $tracer (strace)" attach "$VPID"
	kill -TERM "$tracer"
	wait "$tracer" 2>/dev/null
	untouched "after strace ended"
	if ((EUID == 0)); then
		APPLY_OUT=$W/nobody.out
		setpriv --reuid=65534 --regid=65534 --clear-groups "$REWIRE" attach "$VPID" >"$APPLY_OUT" 2>&1
		APPLY_RC=$?
		((APPLY_RC == 1)) || fail "rewire attach as nobody exited $APPLY_RC, expected 1: $(apply_msg)"
		grep -q "^rewire: error: cannot attach to process $VPID: it runs as user root (uid 0), rewire as nobody .*run rewire attach as that user, or as root" "$APPLY_OUT" ||
			fail "the refusal as nobody does not say why: $(apply_msg)"
	fi
	untouched "after the refusals"
	grep -q librewire.so "/proc/$VPID/maps" && fail "the refused program has rewire's agent"
	from=$(lines "$LOG")
	wait_lines "$LOG" 5 5 "$from" || fail "the program stopped printing after the refusals"
	check_steps 1 tick 1 'v["tick"] != ""'
	# A static executable has no dlopen.
	(cd "$P" && "$CC" "${CFLAGS[@]}" -static attached.c -o build/static) >"$W/static-cc.log" 2>&1 ||
		{ APPLY_OUT=$W/static-cc.log APPLY_RC=-; fail "cannot link a static victim"; }
	plain_start static sleep
	expect_error 1 "static executable" attach "$VPID"
	untouched "after the refusal of the static program"
	assert_alive "after the refusal of the static program"
	pass
}

e2e_test t_attach_rust "attach: a Rust program built and started with plain cargo is patched after 'rewire attach PID -- cargo build'; another build of it is refused" once timeout=400
t_attach_rust() {
	local from rc
	PATH=$PATH:$HOME/.cargo/bin
	command -v cargo >/dev/null || fail "cargo is not installed (~/.cargo/bin)"
	P=$W/rust_ticker LOG=$W/rust_ticker.log ERR=$W/rust_ticker.err
	cp -r "$VICTIMS/rust_ticker" "$P"
	export CARGO_TARGET_DIR=$P/target
	(cd "$P" && cargo build --offline) >"$W/cargo.log" 2>&1 || fail "cargo build failed: $(tail -n 3 "$W/cargo.log")"
	(cd "$P" && exec target/debug/rust_ticker) >"$LOG" 2>&1 &
	VPID=$!
	# Before the wait, which asks whether this process still runs (an
	# exec keeps the pid and the start time).
	VSTART=$(proc_start "$VPID")
	rw_track "$VPID"
	wait_for "$LOG" '^pid=[0-9]+$' 10 || fail "the program printed no pid=P line"
	wait_lines "$LOG" 4 5 1 || fail "the program printed fewer than 4 lines in 5 s"
	# The sources changed since the program was built: refused, untouched.
	cp "$P/src/main.rs" "$W/main.rs.built"
	save_rs src/main.rs BODY "$(marked BODY '    x * 7')"
	(cd "$P" && exec timeout 200 "$REWIRE" attach "$VPID" -- cargo build --offline) >"$W/refused.out" 2>&1
	rc=$?
	((rc == 1)) || fail "attach to a program cargo would build otherwise exited $rc, expected 1: $(tail -n 2 "$W/refused.out" | tr '\n' ' ')"
	grep -q "^rewire: error: cannot attach to process $VPID: it does not run what cargo builds now" "$W/refused.out" ||
		fail "the refusal does not say why: $(tail -n 2 "$W/refused.out" | tr '\n' ' ')"
	untouched "after the refusal"
	grep -q librewire.so "/proc/$VPID/maps" && fail "the refused program has rewire's agent"
	# Its own sources again: attached, patched, its state kept.
	cp "$W/main.rs.built" "$P/src/main.rs"
	(cd "$P" && exec "$REWIRE" attach "$VPID" -- cargo build --offline) 2>"$ERR" &
	RUN_PID=$!
	rw_track "$RUN_PID"
	wait_err '^rewire: watching 1 source of .*rust_ticker' 1 200 ||
		fail "rewire attach does not say it watches: $(tail -n 2 "$ERR" | tr '\n' ' ')"
	untouched "after the attach"
	from=$(lines "$LOG")
	save_rs src/main.rs BODY "$(marked BODY '    x * 3 + 1')"
	wait_err '^rewire: patched .*compute' 1 120 || fail "no patch of compute: $(tail -n 3 "$ERR" | tr '\n' ' ')"
	check_after "$from" 'v["value"] == 3 * v["tick"] + 1' "after editing compute"
	check_steps 1 tick 1
	check_steps 1 atomic 1
	check_steps 1 local 1
	detach
	untouched "after rewire ended"
	from=$(lines "$LOG")
	wait_lines "$LOG" 5 5 "$from" || fail "the program stopped printing after rewire ended"
	check_all "$from" 'v["value"] == 3 * v["tick"] + 1' "after rewire ended"
	assert_alive "after rewire ended"
	pass
}
