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

e2e_test t_gdb_jit "gdb: attached after a patch, it names the patched function's new code, and stops in it"
t_gdb_jit() {
	command -v gdb >/dev/null || fail "gdb is not installed"
	build_project busy busy.c
	start_session busy
	wait_lines "$LOG" 4 5 1 || fail "the program printed fewer than 4 lines in 5 s"
	local from addr out
	from=$(lines "$LOG")
	save busy.c BODY 'return tick * 3;'
	wait_err '^rewire: patched compute' || fail "no 'rewire: patched compute' line"
	check_after "$from" 'v["value"] == v["tick"] * 3' "after the save"
	# Where the new code is: perf's map (checked by the perf test).
	addr=$(awk '$3 == "compute" { print $1 }' "/tmp/perf-$VPID.map" | tail -n 1)
	[[ -n $addr ]] || fail "no address of the new compute in /tmp/perf-$VPID.map"
	out=$W/gdb.out
	timeout 60 gdb -p "$VPID" -batch -nx -ex "handle SIG63 nostop noprint pass" \
		-ex "handle SIG64 nostop noprint pass" -ex "info symbol 0x$addr+4" \
		-ex "break *0x$addr" -ex continue -ex "bt 1" >"$out" 2>&1
	grep -q "^compute + 4 in section .text of <in-memory@" "$out" ||
		fail "gdb does not name the new code: $(grep -m1 'in section\|No symbol' "$out")"
	grep -qE "^#0 +(0x0*$addr in )?compute " "$out" ||
		fail "gdb did not stop in the new compute, or does not name it: $(grep -m1 '^#0' "$out")"
	rm -f "/tmp/perf-$VPID.map"
	wait_lines "$LOG" 4 5 "$(lines "$LOG")" || fail "the program does not go on after gdb detached"
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
