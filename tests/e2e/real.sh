# tests/e2e/real.sh: a real program nobody here wrote — GNU bc, from
# Debian's source package, built by its own autotools build (with bear for
# compile_commands.json) — running under `rewire run` and patched by an
# edit of one of its source files. Helpers: lib.sh.

e2e_test t_real_bc "a real program: GNU bc from Debian's source, edited while it runs" once timeout=300
t_real_bc() {
	local tree top=$RW_TESTS/..
	tree=$("$top/scripts/third_party.sh" bc 2>"$W/tp.err") ||
		fail "cannot fetch or build bc: $(tail -n 3 "$W/tp.err" | tr '\n' ' ')"
	# The tree is shared by runs: start from the source as released.
	cp -p "$tree/../bc-pristine/bc/execute.c" "$tree/bc/execute.c"
	P=$tree LOG=$W/bc.log ERR=$W/bc.err
	mkfifo "$W/in"
	(cd "$tree" && exec "$REWIRE" run -- bc/bc -q <"$W/in") >"$LOG" 2>"$ERR" &
	RUN_PID=$!
	rw_track "$RUN_PID"
	exec 3>"$W/in"
	wait_for "$ERR" '^rewire: watching' 20 || fail "rewire does not watch bc's sources"
	VPID=$(pgrep -P "$RUN_PID" bc | head -n 1)
	[[ -n $VPID ]] || fail "bc is not running under rewire"
	rw_track "$VPID"
	VSTART=$(proc_start "$VPID")
	printf 'x = 42\nlength(12345)\n' >&3
	wait_for "$LOG" '^5$' 10 || fail "bc does not answer length(12345) = 5"
	sleep 1	# let the baselines settle
	# bc's interpreter: length() counts digits; make it count 1000 more.
	sed -i 's/+ ex_stack->s_num->n_scale);/+ ex_stack->s_num->n_scale + 1000);/' "$tree/bc/execute.c"
	grep -q 'n_scale + 1000' "$tree/bc/execute.c" || fail "the edit did not apply to execute.c"
	wait_err '^rewire: patched .*execute.c' 1 60 || fail "no patch of execute.c"
	printf 'length(12345)\nx\n' >&3
	wait_for "$LOG" '^1005$' 10 || fail "bc does not run the edited length(): $(tail -n 2 "$LOG" | tr '\n' ' ')"
	wait_for "$LOG" '^42$' 10 || fail "bc lost its variable x"
	assert_alive "after the patch"
	[[ $(pgrep -P "$RUN_PID" bc | head -n 1) == "$VPID" ]] || fail "bc's pid changed"
	exec 3>&-
	cp -p "$tree/../bc-pristine/bc/execute.c" "$tree/bc/execute.c"
	pass
}
