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
