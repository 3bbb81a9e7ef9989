# tests/e2e/rust.sh: `rewire run -- cargo run`: edit a Rust source, save,
# and the running binary has the new code. Helpers: lib.sh.

# start_cargo DIR CARGO_RUN_ARGS...: copy victims/DIR to $P, run
# `rewire run -- cargo run --offline ARGS` there (std only: no registry),
# and wait for the program's pid= line and for rewire to watch.
start_cargo() {
	local dir=$1
	shift
	PATH=$PATH:$HOME/.cargo/bin
	command -v cargo >/dev/null || fail "cargo is not installed (~/.cargo/bin)"
	P=$W/$dir LOG=$W/$dir.log ERR=$W/$dir.err
	cp -r "$VICTIMS/$dir" "$P"
	(cd "$P" && CARGO_TARGET_DIR=$P/target exec "$REWIRE" run -- cargo run --offline "$@") >"$LOG" 2>"$ERR" &
	RUN_PID=$!
	rw_track "$RUN_PID"
	wait_for "$LOG" '^pid=[0-9]+$' 120 || fail "the program printed no pid=P line: $(tail -n 3 "$ERR" | tr '\n' ' ')"
	VPID=$(grep -m1 -E '^pid=[0-9]+$' "$LOG" | cut -d= -f2)
	rw_track "$VPID"
	VSTART=$(proc_start "$VPID")
	wait_for "$ERR" '^rewire: watching' 10 || fail "rewire does not watch the crates"
	wait_lines "$LOG" 4 5 1 || fail "the program printed fewer than 4 lines in 5 s"
}

# save_rs FILE MARKER TEXT...: edit $P/FILE as an editor saves (rename).
save_rs() {
	local f=$1
	shift
	edit_source "$P/$f" "$P/$f.swp" "$@" && mv "$P/$f.swp" "$P/$f"
}

e2e_test t_rust "Rust: cargo run, edit, save" once timeout=300
t_rust() {
	start_cargo rust_ticker
	check_all 1 'v["value"] == 2 * v["tick"] && v["closure"] == v["tick"] + 1 && v["shape"] == 9' \
		"before the edits"
	local from
	from=$(lines "$LOG")
	save_rs src/main.rs BODY "$(marked BODY '    x * 3 + 1')"
	wait_err '^rewire: patched .*compute' 1 60 || fail "no patch of compute: $(tail -n 3 "$ERR" | tr '\n' ' ')"
	check_after "$from" 'v["value"] == 3 * v["tick"] + 1' "after editing compute"
	from=$(lines "$LOG")
	save_rs src/main.rs BODY "$(marked BODY '    x * 3 + 1')" CLOSURE "$(marked CLOSURE '    let add = |k: u64| k + 100;')" \
		AREA "$(marked AREA '        self.0 * self.0 + 1')" GENERIC "$(marked GENERIC '    x + x + x')" \
		PANIC "$(marked PANIC '        panic!("v2");')"
	wait_err '^rewire: patched' 2 60 || fail "no second patch: $(tail -n 3 "$ERR" | tr '\n' ' ')"
	check_after "$from" 'v["closure"] == v["tick"] + 100 && v["shape"] == 10 && v["generic"] == 3 * v["tick"] && (v["caught"] == "v2" || v["caught"] == "none")' \
		"after editing the closure, the generic function, the trait method and the panic"
	after "$LOG" "$from" | grep -q 'caught=v2' || fail "no panic of the new code was caught"
	# A compile error, then its fix: the program never stops.
	save_rs src/main.rs BODY "$(marked BODY '    x * 3 +')"
	wait_err 'compile failed; the program keeps running' 1 60 || fail "no compile error reported"
	save_rs src/main.rs BODY "$(marked BODY '    x * 4')"
	wait_err '^rewire: patched .*compute' 2 60 || fail "the fix was not patched"
	from=$(lines "$LOG")
	wait_cond "$from" 'v["value"] == 4 * v["tick"]' 5 || fail "the fix does not run"
	# A comment: nothing to patch, and rewire says so.
	save_rs src/main.rs BODY "$(marked BODY '    x * 4 // four')"
	wait_err 'main.rs: no code changed' 1 60 || fail "a comment-only edit was not reported as no change"
	check_steps 1 tick 1
	check_steps 1 atomic 1
	check_steps 1 local 1
	assert_alive "after the edits"
	pass
}

e2e_test t_rust_ws "Rust workspace: edits in the binary and the library crate" once timeout=300
t_rust_ws() {
	start_cargo rust_ws -p app
	grep -q '^rewire: watching 2 sources' "$ERR" || fail "rewire does not watch both crates"
	local from
	from=$(lines "$LOG")
	save_rs util/src/lib.rs SCALE "$(marked SCALE '    x * 100')"
	wait_err '^rewire: patched util::scale' 1 60 || fail "no patch of the library: $(tail -n 3 "$ERR" | tr '\n' ' ')"
	check_after "$from" 'v["scaled"] == 100 * v["tick"]' "after editing the library"
	from=$(lines "$LOG")
	save_rs app/src/main.rs TAG "$(marked TAG '    let tag = 2;')"
	wait_err '^rewire: patched .*app::report' 1 60 || fail "no patch of the binary: $(tail -n 3 "$ERR" | tr '\n' ' ')"
	check_after "$from" 'v["tag"] == 2 && v["scaled"] == 100 * v["tick"]' "after editing the binary"
	check_steps 1 tick 1
	check_steps 1 hits 1
	assert_alive "after the edits"
	pass
}

e2e_test t_rust_threads "Rust: 4 threads while patched 100 times" once timeout=400
t_rust_threads() {
	local k from
	start_cargo rust_threads
	for k in $(seq 1 100); do
		save_rs src/main.rs BODY "$(marked BODY "    x * 7 + $((k % 2 + 1))")"
		wait_err '^rewire: patched .*compute' "$k" 60 ||
			fail "patch $k was not applied: $(tail -n 2 "$ERR" | tr '\n' ' ')"
	done
	from=$(lines "$LOG")
	wait_lines "$LOG" 3 5 "$from" || fail "the program stopped printing"
	check_all 1 'v["invalid"] == 0' "while and after patching"
	local first last
	first=$(field "$(sed -n 2p "$LOG")" calls)
	last=$(field "$(last_line)" calls)
	((last > first)) || fail "the threads stopped calling ($first, then $last calls)"
	assert_alive "after 100 patches"
	pass
}
