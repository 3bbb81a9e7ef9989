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
	sed -i "s|@BINDINGS@|$RW_ROOT/bindings/rust|" "$P/Cargo.toml"
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
		PANIC "$(marked PANIC '        panic!("v2");')" ASYNC "$(marked ASYNC '    x / 2 + 500')" \
		NOMANGLE "$(marked NOMANGLE '    x + 70')"
	wait_err '^rewire: patched' 2 60 || fail "no second patch: $(tail -n 3 "$ERR" | tr '\n' ' ')"
	# twice's two instances (u64, u32) are told apart by their arguments.
	grep '^rewire: patched' "$ERR" | sed -n 2p | grep -E -q 'rust_ticker::twice<u(64|32)>, rust_ticker::twice<u(32|64)>' ||
		fail "the generic's instances are not named by their arguments: $(grep '^rewire: patched' "$ERR" | sed -n 2p)"
	check_after "$from" 'v["closure"] == v["tick"] + 100 && v["shape"] == 10 && v["generic"] == 3 * v["tick"] && (v["caught"] == "v2" || v["caught"] == "none") && v["asyncv"] == int(v["tick"] / 2) + 500 && v["nomangle"] == v["tick"] + 70' \
		"after editing the closure, the generic function, the trait method, the panic, the async fn and the no_mangle function"
	after "$LOG" "$from" | grep -q 'caught=v2' || fail "no panic of the new code was caught"
	# A compile error, then its fix: the program never stops.
	save_rs src/main.rs BODY "$(marked BODY '    x * 3 +')"
	wait_err 'compile failed; the program keeps running' 1 60 || fail "no compile error reported"
	# rustc's own diagnostic, rendered from the JSON cargo asked for.
	grep -q -e '--> src/main.rs:[0-9]' "$ERR" || fail "rustc's diagnostic is not shown: $(tail -n 5 "$ERR" | tr '\n' ' ')"
	grep -q '"\$message_type"' "$ERR" && fail "rustc's JSON is shown as it is"
	save_rs src/main.rs BODY "$(marked BODY '    x * 4')"
	wait_err '^rewire: patched .*compute' 2 60 || fail "the fix was not patched"
	from=$(lines "$LOG")
	wait_cond "$from" 'v["value"] == 4 * v["tick"]' 5 || fail "the fix does not run"
	# A comment: nothing to patch, and rewire says so.
	save_rs src/main.rs BODY "$(marked BODY '    x * 4 // four')"
	wait_err 'main.rs: no code changed' 1 60 || fail "a comment-only edit was not reported as no change"
	# New calls to std functions the binary never contained (the linker
	# left them out): taken from the rlibs of its link.
	nm "$P/target/debug/rust_ticker" | grep -q -e to_uppercase -e file_name &&
		fail "the binary already contains str::to_uppercase or Path::file_name"
	from=$(lines "$LOG") npatched=$(grep -c '^rewire: patched .*compute' "$ERR")
	save_rs src/main.rs BODY "$(marked BODY '    x * 4 + "ab".to_uppercase().len() as u64 + std::path::Path::new("/x/yyy").file_name().map_or(0, |n| n.len()) as u64')"
	wait_err '^rewire: patched .*compute' $((npatched + 1)) 60 || fail "no patch calling std: $(tail -n 3 "$ERR" | tr '\n' ' ')"
	check_after "$from" 'v["value"] == 4 * v["tick"] + 5' "after calling std functions new to the binary"
	after "$LOG" "$from" | grep -q 'caught=v2' || fail "panics are no longer caught after taking code from std"
	# A struct whose instance lives in main gets a new layout: refused,
	# though only the units of the changed code are read.
	save_rs src/main.rs SQUARE "$(marked SQUARE 'struct Square(u32);')" AREA "$(marked AREA '        (self.0 * self.0) as u64')"
	wait_err 'type .*Square \(main.rs\) changed its layout' 1 60 ||
		fail "a changed struct layout was not refused: $(tail -n 3 "$ERR" | tr '\n' ' ')"
	check_steps 1 tick 1
	check_steps 1 atomic 1
	check_steps 1 local 1
	assert_alive "after the edits"
	pass
}

e2e_test t_rust_gdb "Rust: gdb stops at a line of a patched function and names it with file:line" once timeout=300
t_rust_gdb() {
	start_cargo rust_ticker
	local from line out=$W/gdb.out
	from=$(lines "$LOG")
	save_rs src/main.rs BODY "$(marked BODY '    x * 3 + 1')"
	wait_err '^rewire: patched .*compute' 1 60 || fail "no patch of compute: $(tail -n 3 "$ERR" | tr '\n' ' ')"
	check_after "$from" 'v["value"] == 3 * v["tick"] + 1' "after editing compute"
	line=$(grep -n '@BODY' "$P/src/main.rs" | cut -d: -f1)
	gdb_batch "$out" "break main.rs:$line" continue "bt 1" "print x" 'info symbol $pc'
	grep -qE "^#0 +(0x[0-9a-f]+ in )?rust_ticker::compute \(x=[0-9]+\) at src/main.rs:$line$" "$out" ||
		fail "gdb did not stop in the new compute at main.rs:$line: $(grep -m1 -e '^#0' -e rror "$out")"
	grep -qE "^rust_ticker::compute(::h[0-9a-f]+)? \+ [0-9]+ in section \S+ of <in-memory@" "$out" ||
		fail "the stop is not in the patch's code: $(grep -m1 ' in section \S* of ' "$out")"
	local x
	x=$(gdb_value "$out" 1)
	[[ -n $x ]] || fail "gdb printed no x: $(grep -m2 '^\$\|rror' "$out" | tr '\n' '|')"
	wait_for "$LOG" "value=$((3 * x + 1))( |$)" 5 || fail "gdb showed x=$x, the program did not print value=$((3 * x + 1))"
	wait_lines "$LOG" 4 5 "$(lines "$LOG")" || fail "the program does not go on after gdb detached"
	assert_alive "after gdb"
	pass
}

e2e_test t_rust_ws "Rust workspace: edits in the binary and the library crate" once timeout=300
t_rust_ws() {
	start_cargo rust_ws -p app --bin app
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

# diffed_pair: the objects the last patch diffed, from rewire's trace
# ("CRATE: N codegen units, diffing NEW against BASE").
diffed_pair() {
	grep ' codegen units, diffing ' "$W/trace" | tail -n 1 | sed 's/.*, diffing //'
}

e2e_test t_rust_cgus "Rust: only the codegen units that changed are diffed: one module, a constant of two, a new module, a revert" once timeout=300
t_rust_cgus() {
	local from pair
	REWIRE_TRACE=$W/trace start_cargo rust_modules
	check_all 1 'v["a"] == v["tick"] + 10 && v["b"] == v["tick"] + 20 && v["c"] == 2 * v["tick"] && v["d"] == 0 && v["hits"] == v["tick"] && v["count"] == v["tick"]' \
		"before the edits"
	# One module: its codegen unit alone, against its own baseline (no
	# combined object, the same unit's name on both sides).
	from=$(lines "$LOG")
	save_rs src/b.rs B "$(marked B '    n + 21')"
	wait_err '^rewire: patched rust_modules::b::b_value' 1 60 || fail "no patch of b_value: $(tail -n 3 "$ERR" | tr '\n' ' ')"
	check_after "$from" 'v["b"] == v["tick"] + 21 && v["a"] == v["tick"] + 10 && v["hits"] == v["tick"] && v["count"] == v["tick"]' "after editing b"
	pair=$(diffed_pair)
	[[ $pair =~ ^.*/([a-z0-9]+\.o)\ against\ .*/([a-z0-9]+\.o)$ && ${BASH_REMATCH[1]} == "${BASH_REMATCH[2]}" ]] ||
		fail "one module's edit did not diff one codegen unit against the same one: $pair"
	# A constant inlined into two modules: both units, combined, in one patch.
	from=$(lines "$LOG")
	save_rs src/a.rs STEP "$(marked STEP 'pub const STEP: u64 = 3;')"
	wait_err '^rewire: patched rust_modules::(a::a_value, rust_modules::c::c_value|c::c_value, rust_modules::a::a_value)' 1 60 ||
		fail "no patch of a_value && c_value: $(grep '^rewire:' "$ERR" | tail -n 2 | tr '\n' ' ')"
	check_after "$from" 'v["a"] == 3 * v["tick"] + 10 && v["c"] == 6 * v["tick"] && v["b"] == v["tick"] + 21 && v["hits"] == v["tick"] && v["count"] == v["tick"]' \
		"after editing the constant (a && c, the statics kept)"
	[[ $(diffed_pair) == *.new.o\ against\ *.base.o ]] || fail "two changed units were not diffed together: $(diffed_pair)"
	# A new module: a codegen unit the baseline does not have.
	cp "$VICTIMS/rust_modules_d.rs" "$P/src/d.rs"
	from=$(lines "$LOG")
	save_rs src/main.rs MOD "$(marked MOD 'mod d;')" D "$(marked D '    let d = d::d_value(n);')"
	wait_err '^rewire: patched rust_modules::tick' 1 60 || fail "no patch of tick: $(grep '^rewire:' "$ERR" | tail -n 2 | tr '\n' ' ')"
	check_after "$from" 'v["d"] == v["tick"] + 40 && v["a"] == 3 * v["tick"] + 10 && v["hits"] == v["tick"]' "after adding module d"
	# Taken back: tick without d runs again; the next save patches it
	# again, against the code that runs.
	"$REWIRE" revert "$VPID" >"$W/revert.out" 2>&1 || fail "rewire revert exited $?: $(cat "$W/revert.out")"
	from=$(lines "$LOG")
	wait_cond "$from" 'v["d"] == 0' 10 || fail "the revert did not take tick back: $(tail -n 1 "$LOG")"
	save_rs src/b.rs B "$(marked B '    n + 22')"
	wait_err '^rewire: patched .*b_value' 2 60 || fail "no patch after the revert: $(grep '^rewire:' "$ERR" | tail -n 2 | tr '\n' ' ')"
	grep '^rewire: patched' "$ERR" | tail -n 1 | grep -q 'tick' || fail "the save after the revert did not patch tick again: $(grep '^rewire: patched' "$ERR" | tail -n 1)"
	from=$(lines "$LOG")
	wait_cond "$from" 'v["b"] == v["tick"] + 22 && v["d"] == v["tick"] + 40' 10 || fail "after the revert && a save: $(tail -n 1 "$LOG")"
	check_all 1 'v["hits"] == v["tick"] && v["count"] == v["tick"]' "the statics, throughout"
	assert_alive "after the edits"
	pass
}

e2e_test t_rust_two_sessions "Rust: another rewire run of the crate, built otherwise, does not change what the first one diffs against" once timeout=300
t_rust_two_sessions() {
	local from blog=$W/second.log berr=$W/second.err bpid
	start_cargo rust_modules
	check_all 1 'v["b"] == v["tick"] + 20' "before the second session"
	# The second session's build (another environment) is recorded where
	# the first one's was: its b_value is the edit below, already.
	(cd "$P" && RW_MODULES_X=2 CARGO_TARGET_DIR=$P/target exec "$REWIRE" run -- cargo run --offline) >"$blog" 2>"$berr" &
	rw_track $!
	wait_for "$blog" '^pid=[0-9]+$' 120 || fail "the second program printed no pid=P line: $(tail -n 3 "$berr" | tr '\n' ' ')"
	bpid=$(grep -m1 -E '^pid=[0-9]+$' "$blog" | cut -d= -f2)
	rw_track "$bpid"
	wait_for "$berr" '^rewire: watching' 10 || fail "the second session does not watch"
	wait_for "$blog" ' b=[0-9]+' 5 || fail "the second program prints nothing"
	tail -n 1 "$blog" | grep -qE 'tick=([0-9]+) .*b=' || fail "the second program: $(tail -n 1 "$blog")"
	# The edit makes the first program's b_value what the second build has:
	# against that build it would be "no code changed", against its own
	# baseline it is a patch.
	from=$(lines "$LOG")
	save_rs src/b.rs B "$(marked B '    n + 21')"
	wait_err '^rewire: patched rust_modules::b::b_value|no code changed' 1 60 || fail "the first session said nothing: $(tail -n 3 "$ERR" | tr '\n' ' ')"
	grep -q 'no code changed' "$ERR" && fail "the first session diffed against the second one's build: $(grep '^rewire:' "$ERR" | tail -n 1)"
	check_after "$from" 'v["b"] == v["tick"] + 21 && v["hits"] == v["tick"]' "in the first program after the edit"
	assert_alive "after the edit"
	pass
}

e2e_test t_rust_closures "Rust: a closure added before another (rustc renumbers them)" once timeout=300
t_rust_closures() {
	local from
	start_cargo rust_closures
	check_all 1 'v["weighted"] == 6 * v["tick"] && v["kept"] == 10 * v["tick"] && v["fresh"] == v["kept"]' \
		"before the edits"
	# weighted::{closure#0} becomes {closure#1}; the new {closure#0}
	# captures nothing.
	from=$(lines "$LOG")
	save_rs src/main.rs WEIGHTED "$(marked WEIGHTED '    v.iter().filter(|x| **x > 1).map(|x| x * k).sum()')"
	wait_err '^rewire: patched .*weighted' 1 60 || fail "no patch of weighted: $(tail -n 3 "$ERR" | tr '\n' ' ')"
	check_after "$from" 'v["weighted"] == 5 * v["tick"]' "after adding a closure before the one of weighted"
	# The boxed closure is renumbered and changed: boxes made from now on
	# run the new code; the box made at start keeps its own.
	from=$(lines "$LOG")
	save_rs src/main.rs MAKE "$(marked MAKE '    let _ = [k].iter().map(|x| x + 1).count(); Box::new(move |x| x * k + 1)')"
	wait_err '^rewire: patched .*make' 1 60 || fail "no patch of make: $(tail -n 3 "$ERR" | tr '\n' ' ')"
	check_after "$from" 'v["fresh"] == 10 * v["tick"] + 1 && v["kept"] == 10 * v["tick"] && v["weighted"] == 5 * v["tick"]' \
		"after adding a closure before the boxed one"
	# The added closure is itself edited: paired with the patch's own.
	from=$(lines "$LOG")
	save_rs src/main.rs WEIGHTED "$(marked WEIGHTED '    v.iter().filter(|x| **x > 2).map(|x| x * k).sum()')"
	wait_err '^rewire: patched .*weighted' 2 60 || fail "no second patch of weighted: $(tail -n 3 "$ERR" | tr '\n' ' ')"
	check_after "$from" 'v["weighted"] == 3 * v["tick"] && v["fresh"] == 10 * v["tick"] + 1' \
		"after editing the added closure"
	grep -q 'changed its layout' "$ERR" && fail "a closure was refused: $(grep 'changed its layout' "$ERR" | head -n 1)"
	check_steps 1 tick 1
	check_steps 1 count 1
	assert_alive "after the edits"
	pass
}

# 100 rustc runs: 250 to 400 s on a 2-core machine, more when it is loaded.
e2e_test t_rust_threads "Rust: 4 threads while patched 100 times" once timeout=900
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

e2e_test t_rust_api "Rust: rewire::poll, on_patch and call (a crash, a panic)" once timeout=300
t_rust_api() {
	local k from
	start_cargo rust_api
	for k in 1 2 3 4 5 6; do
		save_rs src/main.rs BODY "$(marked BODY "    x * $((k % 2 + 3))")"
		wait_err '^rewire: patched .*compute' "$k" 60 ||
			fail "patch $k was not applied: $(tail -n 2 "$ERR" | tr '\n' ' ')"
	done
	from=$(lines "$LOG")
	wait_lines "$LOG" 4 5 "$from" || fail "the program stopped printing"
	# The program polls only after both calls of a tick: a patch landing
	# between them would make them differ.
	check_all 1 'v["a"] == v["b"]' "every tick's two calls ran one version"
	check_all "$from" 'v["a"] == 3 * v["tick"] && v["hooks"] == 6 && v["version"] == 6 && v["inpoll"] == 1' \
		"after 6 patches (the hook ran 6 times, inside rewire::poll)"
	check_all "$from" 'v["named"] == 1' \
		"the hook's names: compute's linkage name (_ZN…7compute…) and rust_api::compute"
	# Patched code crashes inside rewire::call: rolled back, the program goes on.
	from=$(lines "$LOG")
	save_rs src/main.rs BODY "$(marked BODY '    if x > 0 { unsafe { std::ptr::read_volatile((x - x) as *const u64) } } else { x * 5 }')"
	wait_err '^rewire: patched .*compute' 7 60 || fail "the crashing patch was not applied"
	wait_cond "$from" 'v["crashed"] == 1' 5 || fail "no call reported the crash: $(tail -n 3 "$ERR" | tr '\n' ' ')"
	from=$(kv_lines "$from" 'v["crashed"] == 1' | head -n 1 | cut -d: -f1)
	wait_lines "$LOG" 5 5 "$from" || fail "the program stopped after the crash"
	check_all "$from" 'v["a"] == 3 * v["tick"] && v["crashed"] == 0' "after the rollback (the previous version runs)"
	grep -q 'in patched code: .*compute' "$ERR" || fail "the crash was not reported by name: $(tail -n 3 "$ERR" | tr '\n' ' ')"
	# The session follows the rollback: its baselines go back with the code.
	wait_err '^rewire: taken back after the crash in process [0-9]+: .*compute.*; the program runs its code as of patch 6;' 1 5 ||
		fail "the session did not follow the rollback: $(tail -n 3 "$ERR" | tr '\n' ' ')"
	check_all "$from" 'v["err"] == "none" && v["dropped"] == v["tick"] - 1' \
		"after the rollback (a crash leaks the frames of its call, once)"
	# Patched code panics inside rewire::call: Err with the message, the
	# frames unwound (their drops ran), rolled back, the previous version
	# runs. The panic of unpatched code, every 4th tick, still reaches the
	# program's own catch_unwind.
	from=$(lines "$LOG")
	save_rs src/main.rs BODY "$(marked BODY '    if x > 0 { panic!("boom") } x * 7')"
	wait_err '^rewire: patched .*compute' 8 60 || fail "the panicking patch was not applied"
	wait_cond "$from" 'v["err"] == "panic:boom"' 5 || fail "no call reported the panic: $(tail -n 3 "$ERR" | tr '\n' ' ')"
	from=$(kv_lines "$from" 'v["err"] == "panic:boom"' | head -n 1 | cut -d: -f1)
	wait_lines "$LOG" 5 5 "$from" || fail "the program stopped after the panic"
	check_all "$from" 'v["a"] == 3 * v["tick"] && v["err"] == "none" && v["dropped"] == v["tick"] - 1' \
		"after the panic's rollback (the previous version runs, the panic's frames were dropped)"
	grep -q '^rewire: panic in patched code: .*compute .* during rewire::call()' "$ERR" ||
		fail "the panic was not reported by name: $(tail -n 3 "$ERR" | tr '\n' ' ')"
	grep -q '^rewire: patch 8 rolled back' "$ERR" || fail "patch 8 was not rolled back: $(tail -n 3 "$ERR" | tr '\n' ' ')"
	# And the next patch applies as usual.
	from=$(lines "$LOG")
	save_rs src/main.rs BODY "$(marked BODY '    x * 6')"
	wait_err '^rewire: patched .*compute' 9 60 || fail "no patch after the rollback"
	check_after "$from" 'v["a"] == 6 * v["tick"] && v["b"] == v["a"] && v["err"] == "none"' "after the patch that follows the rollback"
	check_all 1 '(v["tick"] % 4 == 0) == (v["outer"] == "propagated") && v["outer"] != "err"' \
		"a panic of unpatched code goes on to the program's catch_unwind"
	check_steps 1 tick 1
	check_all 1 'v["hooked"] == 1' "on_patch's answer under rewire"
	assert_alive "after the crash and the panic"
	# Without rewire the API does nothing, and says so as the C API does:
	# on_patch true (as rewire_on_patch's 0), poll false.
	timeout 3 "$P/target/debug/rust_api" >"$W/plain.log" 2>&1
	grep -q '^tick=1 .* hooks=0 .* hooked=1$' "$W/plain.log" ||
		fail "without rewire: $(grep -m1 '^tick=' "$W/plain.log")"
	pass
}

e2e_test t_rust_server "Rust example: the HTTP server edited while requests keep coming" once timeout=300
t_rust_server() {
	PATH=$PATH:$HOME/.cargo/bin
	command -v cargo >/dev/null || fail "cargo is not installed (~/.cargo/bin)"
	P=$W/rust-server LOG=$W/server.log ERR=$W/server.err
	cp -r "$RW_ROOT/examples/rust-server" "$P"
	rm -rf "$P/target"
	local port=$((20000 + RANDOM % 20000))
	(cd "$P" && CARGO_TARGET_DIR=$P/target exec "$REWIRE" run -- cargo run --offline -- "127.0.0.1:$port") \
		>"$LOG" 2>"$ERR" &
	RUN_PID=$!
	rw_track "$RUN_PID"
	wait_for "$LOG" '^listening on' 120 || fail "the server did not start: $(tail -n 3 "$ERR" | tr '\n' ' ')"
	VPID=$(sed -n 's/.*(pid \([0-9]*\)).*/\1/p' "$LOG" | head -n 1)
	rw_track "$VPID"
	VSTART=$(proc_start "$VPID")
	wait_for "$ERR" '^rewire: watching' 10 || fail "rewire does not watch the crate"
	# A client: one request every 20 ms, each answer's body one line.
	local answers=$W/answers
	(while :; do
		if exec 3<>"/dev/tcp/127.0.0.1/$port"; then
			printf 'GET /live HTTP/1.0\r\n\r\n' >&3
			tail -n 1 <&3 || echo "no answer"
			exec 3<&-
		else
			echo "no connection"
		fi
		sleep 0.02
	done >"$answers" 2>/dev/null) &
	rw_track $!
	wait_for "$answers" 'request 5\)' 10 || fail "the server does not answer: $(tail -n 2 "$answers")"
	sed 's|format!("hello from rewire: {} (request {})\\n", path, hits)|format!("edited live: {} (request {})\\n", path, hits)|' \
		"$P/src/main.rs" >"$P/src/.main.rs.swp"
	grep -q 'edited live' "$P/src/.main.rs.swp" || fail "the example's handle() is not as the test expects"
	mv "$P/src/.main.rs.swp" "$P/src/main.rs"
	wait_err '^rewire: patched .*handle' 1 60 || fail "handle() was not patched: $(tail -n 3 "$ERR" | tr '\n' ' ')"
	wait_for "$answers" '^edited live: /live' 5 || fail "no answer from the new handle(): $(tail -n 2 "$answers")"
	sleep 0.3
	local old new
	old=$(grep '^hello from rewire' "$answers" | tail -n 1 | sed 's/.*request \([0-9]*\).*/\1/')
	new=$(grep '^edited live' "$answers" | head -n 1 | sed 's/.*request \([0-9]*\).*/\1/')
	((new == old + 1)) || fail "the hit counter was not kept: last old answer request $old, first new $new"
	! grep -q -e '^no ' "$answers" || fail "a request failed: $(grep -m1 '^no ' "$answers")"
	grep -v -e '^hello from rewire: /live' -e '^edited live: /live' "$answers" | grep -q . &&
		fail "an unexpected answer: $(grep -v -e '^hello' -e '^edited' "$answers" | head -n 1)"
	assert_alive "after the edit"
	pass
}
