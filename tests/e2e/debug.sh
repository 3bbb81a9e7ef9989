# tests/e2e/debug.sh: tools outside the program see patched code: perf
# names a patched function from the map rewire writes (/tmp/perf-PID.map).
# Victim: victims/busy.c. Helpers: lib.sh.

e2e_test t_perf_map "perf: samples in a patched hot function are attributed to it by name"
t_perf_map() {
	command -v perf >/dev/null || fail "perf is not installed (Debian: linux-perf)"
	build_project busy busy.c
	start_session busy
	wait_lines "$LOG" 4 5 1 || fail "the program printed fewer than 4 lines in 5 s"
	local from map
	from=$(lines "$LOG")
	save busy.c BODY 'return tick * 3;'
	wait_err '^rewire: patched compute' || fail "no 'rewire: patched compute' line"
	check_after "$from" 'v["value"] == v["tick"] * 3' "after the save"
	map=/tmp/perf-$VPID.map
	grep -qE '^[0-9a-f]+ [0-9a-f]+ compute$' "$map" ||
		fail "no line for compute in $map: $(head -n 3 "$map" 2>/dev/null | tr '\n' '|')"
	perf record -q -e cpu-clock -p "$VPID" -o "$W/perf.data" -- sleep 1 >"$W/perf.out" 2>&1 ||
		{ APPLY_OUT=$W/perf.out APPLY_RC=-; fail "perf record failed"; }
	perf report -i "$W/perf.data" --stdio --sort dso,sym >"$W/report" 2>/dev/null
	# The patched compute runs in memory no file backs: perf's [JIT] map.
	awk -v pid="$VPID" '$2 == "[JIT]" && $4 == pid && $6 == "compute" && $1 + 0 > 50 { ok = 1 } END { exit !ok }' "$W/report" ||
		fail "perf does not attribute the time to the patched compute: $(grep -v '^#' "$W/report" | head -n 3 | tr '\n' '|')"
	rm -f "$map"
	assert_alive "after perf"
	pass
}

e2e_test t_gdb_jit "gdb: attached after a patch, it stops at a line of the new code, names it with file:line, shows the program's variables"
t_gdb_jit() {
	build_project state state.c
	start_session state
	wait_lines "$LOG" 4 5 1 || fail "the program printed fewer than 4 lines in 5 s"
	local from line out=$W/gdb.out vals
	from=$(lines "$LOG")
	save state.c PRINT "$(marked PRINT 'printf("v=2 file=%d global=%d local=%d\n", file_count, global_count, local_count);')"
	wait_err '^rewire: patched tick' || fail "no 'rewire: patched tick' line"
	check_after "$from" 'v["v"] == 2' "after the save"
	line=$(grep -n '@PRINT' "$P/state.c" | cut -d: -f1)
	gdb_batch "$out" "break state.c:$line" continue "bt 1" "print file_count" "print global_count" \
		"print local_count" 'info symbol $pc'
	# Two places have that line: the program's old tick and the patch's.
	grep -qE "^#0 +tick \(\) at .*state.c:$line$" "$out" ||
		fail "gdb did not stop at state.c:$line of the new code: $(grep -m1 -e '^#0' -e rror "$out")"
	grep -qE "^tick \+ [0-9]+ in section .text of <in-memory@" "$out" ||
		fail "the stop is not in the patch's code: $(grep -m1 'in section\|No symbol' "$out")"
	# The new code's DWARF reads the program's own variables: the line
	# printed next shows the values gdb printed.
	vals=$(grep -E '^\$[123] = ' "$out" | cut -d' ' -f3 | tr '\n' ' ')
	[[ $vals =~ ^([0-9]+)\ ([0-9]+)\ ([0-9]+)\ $ ]] || fail "gdb printed no values of the counters: $(grep -m3 '^\$\|rror' "$out" | tr '\n' '|')"
	wait_for "$LOG" "^v=2 file=${BASH_REMATCH[1]} global=${BASH_REMATCH[2]} local=${BASH_REMATCH[3]}$" 5 ||
		fail "gdb showed file=${BASH_REMATCH[1]} global=${BASH_REMATCH[2]} local=${BASH_REMATCH[3]}, not what the program printed"
	wait_lines "$LOG" 4 5 "$(lines "$LOG")" || fail "the program does not go on after gdb detached"
	check_steps 1 file 1
	assert_alive "after gdb"
	pass
}

e2e_test t_gdb_jit_gz "gdb: the same, built with compressed debug information (-gz): the patch's DWARF inflated for gdb"
t_gdb_jit_gz() {
	CFLAGS+=(-gz) LDFLAGS+=(-gz)
	t_gdb_jit
}

e2e_test t_gdb_cxx "gdb: a patched C++ method: stopped at a line of it, gdb names it with file:line and reads the object"
t_gdb_cxx() {
	build_project account account.cpp
	start_session account
	wait_lines "$LOG" 4 5 1 || fail "the program printed fewer than 4 lines in 5 s"
	local from line out=$W/gdb.out b
	from=$(lines "$LOG")
	save account.cpp DEPOSIT "$(marked DEPOSIT 'balance += amount * 2;')"
	# (gcc -O2 makes deposit a clone, deposit.isra.0, of its own calling
	# convention: its callers are patched to call the new one, and the
	# patch line names the function edited)
	wait_err '^rewire: patched Account::deposit' || fail "no 'rewire: patched Account::deposit' line"
	check_after "$from" 'v["added"] == 2' "after the save"
	line=$(grep -n '@DEPOSIT' "$P/account.cpp" | cut -d: -f1)
	gdb_batch "$out" "break account.cpp:$line" continue "bt 1" "print account.balance" \
		"print account.owner" 'info symbol $pc'
	grep -qE "^#0 +(0x[0-9a-f]+ in )?Account::deposit \(.*\) at .*account.cpp:$line$" "$out" ||
		fail "gdb did not stop in the new Account::deposit at account.cpp:$line: $(grep -m1 -e '^#0' -e rror "$out")"
	grep -qE "^Account::deposit\(long\)( \[clone [^]]*\])? \+ [0-9]+ in section \S+ of <in-memory@" "$out" ||
		fail "the stop is not in the patch's code: $(grep -m1 ' in section ' "$out")"
	# The new code's DWARF reads the program's object: "ada", and the
	# balance it prints next.
	grep -qE '^\$2 = 0x[0-9a-f]+ "ada"$' "$out" || fail "gdb does not read the object's owner: $(grep -m2 '^\$\|rror' "$out" | tr '\n' '|')"
	b=$(gdb_value "$out" 1)
	[[ -n $b ]] || fail "gdb printed no balance: $(grep -m2 '^\$\|rror' "$out" | tr '\n' '|')"
	wait_for "$LOG" " balance=$((b + 2)) added=2$" 5 || fail "gdb showed balance=$b, the program did not print balance=$((b + 2)) next"
	wait_lines "$LOG" 4 5 "$(lines "$LOG")" || fail "the program does not go on after gdb detached"
	assert_alive "after gdb"
	pass
}

e2e_test t_gdb_revert "gdb: a patch taken back is no longer known to gdb; the one before it is"
t_gdb_revert() {
	build_project body body.c
	start_session body
	wait_lines "$LOG" 4 5 1 || fail "the program printed fewer than 4 lines in 5 s"
	local k out=$W/gdb.out n
	for k in 3 4; do
		save body.c BODY "$(marked BODY "return tick * $k;")"
		wait_err '^rewire: patched compute' $((k - 2)) || fail "save $((k - 2)) was not patched"
	done
	"$REWIRE" revert "$VPID" >"$W/revert.out" 2>&1 || fail "rewire revert failed: $(cat "$W/revert.out")"
	gdb_batch "$out" "info line body.c:$(grep -n '@BODY' "$P/body.c" | cut -d: -f1)"
	# The program's line, and patch 1's: patch 2's is gone.
	n=$(grep -c '^Line [0-9]* of "body.c" starts at address' "$out")
	((n == 2)) || fail "gdb knows the line in $n places, not 2 (the program's and patch 1's): $(grep '^Line' "$out" | tr '\n' '|')"
	assert_alive "after gdb"
	pass
}

e2e_test t_status "status: rewire status lists a program's patches in order, each function's versions, the memory"
t_status() {
	build_project body body.c
	start_session body
	wait_lines "$LOG" 4 5 1 || fail "the program printed fewer than 4 lines in 5 s"
	local k out=$W/status.out rc=0
	for k in 3 4 5; do
		save body.c BODY "$(marked BODY "return tick * $k;")"
		wait_err '^rewire: patched compute' $((k - 2)) || fail "save $((k - 2)) was not patched"
	done
	"$REWIRE" status "$VPID" >"$out" 2>&1 || rc=$?
	((rc == 0)) || fail "rewire status exited $rc: $(head -c 300 "$out")"
	grep -q "^process $VPID (.*/body): 3 patches$" "$out" || fail "no header line: $(head -n 1 "$out")"
	for k in 1 2 3; do
		# (gcc -O2 without -fno-ipa-ra patches main, compute's caller, too)
		grep -qE "^  patch $k  [0-9]{2}:[0-9]{2}:[0-9]{2}  (.*, )?compute(, .*)?$" "$out" ||
			fail "patch $k is not listed with compute: $(tr '\n' '|' <"$out")"
	done
	grep -qE "^  versions, the one built included:( .*,)? compute 4(,.*)?$" "$out" ||
		fail "no count of compute's versions: $(tr '\n' '|' <"$out")"
	grep -qE "^  memory: [0-9]+ KiB of patches \([0-9]+ MiB reserved near the program\)$" "$out" ||
		fail "no memory line: $(tr '\n' '|' <"$out")"
	rc=0
	"$REWIRE" status abc >"$out" 2>&1 || rc=$?
	((rc == 2)) && grep -q "abc: not a process id" "$out" || fail "rewire status abc: exit $rc, $(cat "$out")"
	assert_alive "after rewire status"
	pass
}

e2e_test t_revert "revert: rewire revert takes back the newest patch, then all; the state stays; the next save patches"
t_revert() {
	build_project state state.c
	start_session state
	wait_lines "$LOG" 4 5 1 || fail "the program printed fewer than 4 lines in 5 s"
	local k from out=$W/revert.out rc
	for k in 2 3; do
		save state.c PRINT "$(marked PRINT "printf(\"v=$k file=%d global=%d local=%d\\n\", file_count, global_count, local_count);")"
		wait_err '^rewire: patched tick' $((k - 1)) || fail "save $((k - 1)) was not patched"
	done
	check_after "$(lines "$LOG")" 'v["v"] == 3' "after two saves"
	# The newest patch taken back: patch 1's code runs.
	from=$(lines "$LOG") rc=0
	"$REWIRE" revert "$VPID" >"$out" 2>&1 || rc=$?
	((rc == 0)) || fail "rewire revert exited $rc: $(cat "$out")"
	grep -q "^rewire: taken back: tick.* (state.c); the program runs its code as of patch 1; the next save of a file taken back patches it again$" "$out" ||
		fail "rewire revert said: $(cat "$out")"
	check_after "$from" 'v["v"] == 2' "after the revert"
	"$REWIRE" status "$VPID" >"$out" 2>&1
	grep -qE "^  patch 2  .* \(rolled back\)$" "$out" || fail "status does not show patch 2 taken back: $(tr '\n' '|' <"$out")"
	# Everything: the code it was built with.
	from=$(lines "$LOG") rc=0
	"$REWIRE" revert "$VPID" 0 >"$out" 2>&1 || rc=$?
	((rc == 0)) && grep -q "the program runs the code it was built with" "$out" ||
		fail "rewire revert PID 0: exit $rc, $(cat "$out")"
	check_after "$from" 'v["v"] == 1' "after the revert to the build"
	rc=0
	"$REWIRE" revert "$VPID" >"$out" 2>&1 || rc=$?
	((rc == 0)) && grep -q "nothing to take back" "$out" || fail "a revert with nothing to take back: exit $rc, $(cat "$out")"
	# The next save diffs against what runs: v=4 from the build's code.
	from=$(lines "$LOG")
	save state.c PRINT "$(marked PRINT 'printf("v=4 file=%d global=%d local=%d\n", file_count, global_count, local_count);')"
	wait_err '^rewire: patched tick' 3 || fail "the save after the revert was not patched"
	check_after "$from" 'v["v"] == 4' "the save after the revert"
	# Every counter went on by one a line through patches and reverts.
	check_steps 1 file 1
	check_steps 1 global 1
	check_steps 1 local 1
	rc=0
	"$REWIRE" revert "$VPID" x >"$out" 2>&1 || rc=$?
	((rc == 2)) && grep -q "x: not a patch number" "$out" || fail "rewire revert PID x: exit $rc, $(cat "$out")"
	assert_alive "after the reverts"
	pass
}
