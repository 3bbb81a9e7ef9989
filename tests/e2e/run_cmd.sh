# tests/e2e/run_cmd.sh: `rewire run` itself. Runs in each of the 8 configs.

e2e_test t_run "run passes status and output through"
t_run() {
	[[ -x $REWIRE ]] || fail "$REWIRE not found or not executable (run make)"
	build_victim exitcode
	local rc
	# What the program does on its own...
	"$VICTIM_BIN" a "b c" --pid -k "" >"$W/direct.out" 2>"$W/direct.err"
	rc=$?
	((rc == 7)) || fail "test invalid: the program exits $rc on its own, not 7"

	# ... it does under rewire run: same stdout (bytes), same stderr apart
	# from rewire's own "rewire: " lines, same exit status. Options after
	# the program are the program's.
	LOG=$W/run.log
	timeout --foreground 20 "$REWIRE" run -- "$VICTIM_BIN" a "b c" --pid -k "" >"$LOG" 2>"$W/run.err"
	rc=$?
	((rc == 7)) || fail "rewire run -- exitcode exited $rc, expected 7"
	cmp -s "$W/direct.out" "$LOG" || fail "stdout differs: $(cmp "$W/direct.out" "$LOG" 2>&1)"
	grep -v '^rewire: ' "$W/run.err" >"$W/run.err.prog"
	cmp -s "$W/direct.err" "$W/run.err.prog" ||
		fail "stderr differs (rewire: lines left out): $(diff "$W/direct.err" "$W/run.err.prog" | head -n 4 | tr '\n' ' ')"

	# Without "--", and killed by a signal: 128 + 15.
	# (In a child shell: bash reports "Terminated" for a child it waits for.)
	bash -c '"$0" signal; exit $?' "$VICTIM_BIN" >"$W/direct2.out" 2>/dev/null
	rc=$?
	((rc == 143)) || fail "test invalid: the program exits $rc on its own with 'signal', not 143"
	LOG=$W/run2.log
	timeout --foreground 20 "$REWIRE" run "$VICTIM_BIN" signal >"$LOG" 2>"$W/run2.err"
	rc=$?
	((rc == 143)) || fail "rewire run exitcode signal exited $rc, expected 143 (SIGTERM)"
	cmp -s "$W/direct2.out" "$LOG" || fail "stdout differs (signal): $(cmp "$W/direct2.out" "$LOG" 2>&1)"
	pass
}
