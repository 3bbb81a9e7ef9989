# tests/e2e/warnings.sh: what rewire says when it cannot check what it
# patches. Helpers: lib.sh.

# no_debug_flags: the config's flags without -g.
no_debug_flags() {
	local f c=() l=()
	for f in "${CFLAGS[@]}"; do [[ $f == -g ]] || c+=("$f"); done
	for f in "${LDFLAGS[@]}"; do [[ $f == -g ]] || l+=("$f"); done
	CFLAGS=("${c[@]}") LDFLAGS=("${l[@]}")
}

e2e_test t_w_nodebug "session: a program without debug information is said to be unchecked, at start and at each patch"
t_w_nodebug() {
	no_debug_flags
	build_project body body.c
	start_session body
	grep -q "^rewire: warning: body has no debug information: rewire cannot check that a patch keeps the layout of types" "$ERR" ||
		fail "no warning at start: $(head -n 2 "$ERR" | tr '\n' ' ')"
	wait_lines "$LOG" 4 5 1 || fail "the program printed fewer than 4 lines in 5 s"
	local from
	from=$(lines "$LOG")
	save body.c BODY 'return tick * 3;'
	wait_err '^rewire: patched compute' || fail "no 'rewire: patched compute' line"
	grep -q "^rewire: warning: body.c has no debug information: the patch was applied without checking" "$ERR" ||
		fail "the patch does not say it was unchecked"
	check_after "$from" 'v["value"] == v["tick"] * 3' "after the save"
	assert_alive "after the patch"
	pass
}

e2e_test t_w_debug "session: a program with debug information gets no such warning"
t_w_debug() {
	build_project body body.c
	start_session body
	wait_lines "$LOG" 4 5 1 || fail "the program printed fewer than 4 lines in 5 s"
	save body.c BODY 'return tick * 3;'
	wait_err '^rewire: patched compute' || fail "no 'rewire: patched compute' line"
	! grep -q "debug information" "$ERR" || fail "a warning about debug information: $(grep 'debug information' "$ERR")"
	pass
}

# gcc_ipa_ra: does this config's compiler assume -fipa-ra (gcc, optimising)?
gcc_ipa_ra() { [[ $RW_CC == gcc && $RW_OPT != -O0 ]]; }

e2e_test t_w_gz "session: compressed debug information (-gz): gcc's -fipa-ra is said at start as without it"
t_w_gz() {
	CFLAGS+=(-gz) LDFLAGS+=(-gz)
	build_project body body.c
	# (ld leaves a section as it is when compressing does not make it
	# smaller: clang's few strings)
	[[ $RW_CC != gcc ]] || readelf -SW "$P/build/body" | grep -E '\.debug_str .* [A-Z]*C[A-Z]* ' -q ||
		fail "the program's .debug_str is not compressed: $(readelf -SW "$P/build/body" | grep debug_str)"
	start_session body
	wait_lines "$LOG" 4 5 1 || fail "the program printed fewer than 4 lines in 5 s"
	if gcc_ipa_ra; then
		grep -q '^rewire: warning: body was built by gcc with optimisation and without -fno-ipa-ra' "$ERR" ||
			fail "no -fipa-ra warning for a -gz build: $(head -n 3 "$ERR" | tr '\n' ' ')"
	else
		! grep -q 'fno-ipa-ra' "$ERR" || fail "warned: $(grep -m1 'fno-ipa-ra' "$ERR")"
	fi
	assert_alive "after start"
	pass
}

e2e_test t_w_gz_fno "session: compressed debug information (-gz) with -fno-ipa-ra: no warning, and no caller patched for it"
t_w_gz_fno() {
	CFLAGS+=(-gz) LDFLAGS+=(-gz)
	[[ $RW_CC == gcc ]] && CFLAGS+=(-fno-ipa-ra)
	build_project body body.c
	start_session body
	wait_lines "$LOG" 4 5 1 || fail "the program printed fewer than 4 lines in 5 s"
	local from
	from=$(lines "$LOG")
	save body.c BODY 'return tick * 3;'
	wait_err '^rewire: patched compute' || fail "no 'rewire: patched compute' line"
	grep -q '^rewire: patched compute (body.c)' "$ERR" ||
		fail "more than compute patched (callers taken for -fipa-ra): $(grep '^rewire: patched' "$ERR")"
	! grep -q 'fno-ipa-ra' "$ERR" || fail "warned: $(grep -m1 'fno-ipa-ra' "$ERR")"
	check_after "$from" 'v["value"] == v["tick"] * 3' "after the save"
	assert_alive "after the patch"
	pass
}

e2e_test t_w_stale "session: a source edited after the build is said, and its next save patches every difference"
t_w_stale() {
	build_project body body.c
	sleep 1.1	# a later modification time than the object's
	save body.c BODY "$(marked BODY 'return tick * 3;')"
	start_session body
	grep -q '^rewire: body.c changed after the program was built: its next save patches every difference' "$ERR" ||
		fail "not said at start: $(head -n 2 "$ERR" | tr '\n' ' ')"
	wait_lines "$LOG" 4 5 1 || fail "the program printed fewer than 4 lines in 5 s"
	check_all 1 'NR == 1 || v["value"] == v["tick"] * 2' "before the next save (the program as built)"
	local from
	from=$(lines "$LOG")
	# A comment only: what differs from the running code is the earlier edit.
	save body.c DECLS '/* a note */'
	wait_err '^rewire: patched compute' || fail "the earlier edit was not patched: $(tail -n 1 "$ERR")"
	check_after "$from" 'v["value"] == v["tick"] * 3' "after the next save"
	assert_alive "after the patch"
	pass
}

e2e_test t_w_stale_gone "session: a source edited after the build, its object gone: said"
t_w_stale_gone() {
	build_project body body.c
	rm -f "$P/build/body.o"
	sleep 1.1
	save body.c BODY "$(marked BODY 'return tick * 3;')"
	start_session body
	grep -q '^rewire: warning: body.c changed after the program was built, and its object of that build is gone' "$ERR" ||
		fail "not said at start: $(head -n 2 "$ERR" | tr '\n' ' ')"
	pass
}

e2e_test t_w_base_log "session: a unit that does not compile as it is names its log, and the log outlives the session"
t_w_base_log() {
	build_project body body.c
	rm -f "$P/build/body.o"
	sleep 1.1
	save body.c BODY 'return tick * 3 +;'
	start_session body
	wait_err 'does not compile as it is' 1 30 ||
		fail "the failed compile is not said: $(tail -n 2 "$ERR" | tr '\n' ' ')"
	local log
	log=$(grep -m1 -o 'does not compile as it is ([^)]*)' "$ERR" | sed 's/.*(\(.*\))/\1/')
	[[ -s $log ]] || fail "the log named ($log) is empty or missing while the session runs"
	kill -TERM "$RUN_PID"
	wait "$RUN_PID" 2>/dev/null
	[[ -s $log ]] || fail "the log named ($log) is gone once the session ended"
	grep -q "expected expression" "$log" || fail "the log does not hold the compiler's error: $(head -n 3 "$log")"
	[[ ! -e ${log%/base/*}/owner ]] || fail "the session's cache still has its owner file"
	rm -rf "${log%/base/*}"
	pass
}

e2e_test t_w_running "session: a changed function that is running (a loop that never returns) is said; one whose calls are short is not"
t_w_running() {
	build_project running running.c
	start_session running
	wait_lines "$LOG" 4 5 1 || fail "the program printed fewer than 4 lines in 5 s"
	local from
	# step() alone: its calls are short, nothing to say.
	from=$(lines "$LOG")
	save running.c STEP 'return tick * SCALE + 1;'
	wait_err '^rewire: patched step' || fail "no 'rewire: patched step' line: $(tail -n 2 "$ERR" | tr '\n' ' ')"
	check_after "$from" 'v["value"] == v["tick"] * 2 + 1' "after the edit of step"
	sleep 1	# the warning comes within RUNNING_RECHECK_MS of the patch
	local said
	if [[ $CC == gcc ]]; then
		# gcc's -fipa-ra (on at -O2; an optimize attribute can turn it on
		# at -O0) builds loop (and main) for the registers the old step
		# used: they change with it, and they run.
		grep -q '^rewire: warning: loop is running' "$ERR" ||
			fail "gcc: loop, changed with step, was not said to run: $(tail -n 2 "$ERR" | tr '\n' ' ')"
	else
		! grep -q 'is running' "$ERR" || fail "a short call was said to be running: $(grep 'is running' "$ERR")"
	fi
	# SCALE: loop() and step() change; loop's call never returns.
	said=$(grep -c '^rewire: warning: loop is running .* goes on in its old code' "$ERR")
	from=$(lines "$LOG")
	save running.c SCALE '#define SCALE 3'
	wait_err '^rewire: patched (loop, step|step, loop)' ||
		fail "no patch of loop and step: $(tail -n 2 "$ERR" | tr '\n' ' ')"
	wait_err "^rewire: warning: loop is running \(process $VPID, thread $VPID\) and goes on in its old code until it returns" $((said + 1)) 5 ||
		fail "the running loop was not said: $(tail -n 2 "$ERR" | tr '\n' ' ')"
	! grep -q 'warning: step is running' "$ERR" || fail "step was said to be running"
	# What was said is what runs: the new step, the old loop's own SCALE.
	check_after "$from" 'v["value"] == v["tick"] * 3 + 1 && v["scale"] == 2' "after the edit of SCALE"
	check_steps 1 tick 1
	assert_alive "after the patches"
	pass
}
