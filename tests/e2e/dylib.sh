# tests/e2e/dylib.sh: the dylib reload API (include/rewire_lib.h). The
# plugin hosts run directly, not under `rewire run`: the API needs no agent.
# Helpers: lib.sh.

DYLIB=$RW_TESTS/victims/dylib

# dylib_api: sets API to the archive hosts link with: build/librewire-api.a
# when it has the reload API, else one built here from src/api.
dylib_api() {
	local a=$RW_ROOT/build/librewire-api.a f
	if [[ -f $a ]] && nm "$a" 2>/dev/null | grep -q ' T rewire_lib_open$'; then
		API=$a
		return
	fi
	mkdir -p "$W/api"
	for f in "$RW_ROOT"/src/api/*.c "$RW_ROOT"/src/guard/guard.c; do
		f=${f#"$RW_ROOT"/}
		"$CC" -O2 -g -Wall -Wextra -Werror -Wno-unused-parameter -fPIC -c \
			-o "$W/api/$(basename "$f" .c).o" "$RW_ROOT/$f" >"$W/api/cc.log" 2>&1 ||
			{ APPLY_OUT=$W/api/cc.log APPLY_RC=-; fail "cannot compile $f"; }
	done
	ar rcs "$W/api/librewire-api.a" "$W"/api/*.o
	API=$W/api/librewire-api.a
}

# dylib_host NAME: victims/dylib/NAME.c -> $W/NAME, linked with $API.
dylib_host() {
	(cd "$W" && "$CC" "${CFLAGS[@]}" -I"$RW_ROOT/include" -c "$DYLIB/$1.c" -o "$1.o" &&
		"$CC" "${LDFLAGS[@]}" "$1.o" "$API" -o "$1") >"$W/$1.cc.log" 2>&1 ||
		{ APPLY_OUT=$W/$1.cc.log APPLY_RC=-; fail "cannot build the host $1"; }
}

# plugin_build SRC OUT LINK_FLAGS [MARKER TEXT...]: victims/dylib/SRC,
# edited at the markers, built into the shared library OUT as a build
# writes it: to a temporary name, then renamed over OUT.
plugin_build() {
	local src=$1 out=$2 extra=$3 cc=$CC
	shift 3
	[[ $src == *.cpp ]] && cc=$CXX
	mkdir -p "$W/src"
	local s=$W/src/${out##*/}.${src##*.}
	if (($#)); then edit_source "$DYLIB/$src" "$s" "$@"; else cp "$DYLIB/$src" "$s"; fi
	# shellcheck disable=SC2086
	(cd "$W" && "$cc" -g "$RW_OPT" -fPIC -shared -I"$RW_ROOT/include" -o "$out.tmp" "$s" $extra) \
		>"$W/src/cc.log" 2>&1 || { APPLY_OUT=$W/src/cc.log APPLY_RC=-; fail "cannot build $out from $src"; }
	mv "$out.tmp" "$out"
}

# put_lib FROM TO: install a built library as a build does (rename).
put_lib() {
	cp "$1" "$2.tmp" && mv "$2.tmp" "$2"
}

# start_host NAME ARGS...: run $W/NAME, stdout to $LOG, stderr to $ERR;
# wait for its pid= line. Sets VPID, VSTART.
start_host() {
	local name=$1
	shift
	LOG=$W/$name.log ERR=$W/$name.err
	"$W/$name" "$@" >"$LOG" 2>"$ERR" &
	VPID=$!
	rw_track "$VPID"
	VSTART=$(proc_start "$VPID")
	wait_for "$LOG" '^pid=[0-9]+$' 10 ||
		fail "the host printed no pid= line: $(head -c 300 "$ERR" | tr '\n' ' ')"
}

# count_lines FROM COND: how many lines after FROM satisfy COND.
count_lines() {
	kv_lines "$1" "$2" | wc -l
}

e2e_test t_dylib_reload "dylib: a rebuilt plugin reloads (renamed, then written in place): old pointers, host state" timeout=120
t_dylib_reload() {
	local from size half n bad
	dylib_api
	dylib_host host
	plugin_build plugin.c "$W/libplugin.so" ""
	plugin_build plugin.c "$W/v3.so" "" BODY 'return n * 4;'
	start_host host "$W/libplugin.so"
	wait_lines "$LOG" 5 5 1 || fail "the host printed fewer than 5 lines in 5 s"
	check_all 1 'v["value"] == 2 * v["tick"] && v["version"] == 1 && v["loaded"] == 1' \
		"before the rebuild"
	# Rebuilt with gcc while the host runs (written beside it, renamed).
	from=$(lines "$LOG")
	plugin_build plugin.c "$W/libplugin.so" "" BODY 'return n * 3;'
	check_after "$from" 'v["value"] == 3 * v["tick"] && v["version"] == 2 && v["loaded"] == 2' \
		"after the rebuild (the pointer from rewire_lib_sym reaches version 2)"
	# Rewritten in place: truncated, half written, a pause, the rest. The
	# half file must not be loaded; the whole one must.
	from=$(lines "$LOG")
	size=$(stat -c %s "$W/v3.so")
	half=$((size / 2))
	{ head -c "$half" "$W/v3.so"; sleep 0.5; tail -c +"$((half + 1))" "$W/v3.so"; } >"$W/libplugin.so"
	check_after "$from" 'v["value"] == 4 * v["tick"] && v["version"] == 3 && v["loaded"] == 3' \
		"after the rewrite in place"
	grep -q 'past the end of the file (still being written?); waiting' "$ERR" ||
		fail "the half-written file was not seen as incomplete: $(tail -n 3 "$ERR" | tr '\n' ' ')"
	# Emptied, it can look untouched for a moment (the size changes before
	# the time): still only awaited, never refused.
	bad=$(grep -E 'ELF header|past the end of the file' "$ERR" | grep -v '(still being written?); waiting$')
	[[ -z $bad ]] || fail "the file being written was refused as broken: $(head -n 1 <<<"$bad")"
	check_all "$from" 'v["value"] == 3 * v["tick"] || v["value"] == 4 * v["tick"]' \
		"while the file was half written (version 2 runs)"
	n=$(count_lines 1 'v["upd"] == 1')
	((n == 2)) || fail "rewire_lib_update returned 1 $n times, expected 2"
	check_all 1 'v["upd"] >= 0 && v["crashed"] == 0' "every update and call"
	# The state the host owns was counted by every version without a gap.
	check_all 1 'v["count"] == v["tick"]' "the host's state across the reloads"
	check_steps 1 tick 1
	assert_alive "after the reloads"
	pass
}

e2e_test t_dylib_guard "dylib: a refusing load hook, a crash in rewire_lib_call: the previous version goes on" timeout=120
t_dylib_guard() {
	local from first bad n
	dylib_api
	dylib_host host
	plugin_build plugin.c "$W/libplugin.so" ""
	plugin_build plugin.c "$W/refuse.so" "" BODY 'return n * 9;' LOAD 'return 7;'
	plugin_build plugin.c "$W/segv.so" "" BODY 'if (n > 0) *(volatile int *)(long)(n - n) = n; return n * 5;'
	plugin_build plugin.c "$W/abort.so" "" BODY 'if (n > 0) abort(); return n * 6;'
	plugin_build plugin.c "$W/good.so" "" BODY 'return n * 7;'
	start_host host "$W/libplugin.so"
	wait_lines "$LOG" 5 5 1 || fail "the host printed fewer than 5 lines in 5 s"
	# The new version's load hook refuses: update fails once, version 1 runs.
	from=$(lines "$LOG")
	put_lib "$W/refuse.so" "$W/libplugin.so"
	wait_cond "$from" 'v["upd"] == -1' 5 || fail "rewire_lib_update did not report the refusal"
	wait_lines "$LOG" 10 5 "$from" || fail "the host stopped after the refusal"
	check_all "$from" 'v["value"] == 2 * v["tick"] && v["version"] == 1' "after the refusal"
	n=$(count_lines "$from" 'v["upd"] == -1')
	((n == 1)) || fail "the refused file was tried $n times, not once"
	grep -q 'libplugin.so: version 2: rewire_lib_load refused it (returned 7)' "$ERR" ||
		fail "the error does not say the load hook refused: $(tail -n 2 "$ERR" | tr '\n' ' ')"
	# New versions that load fine but crash in step, inside rewire_lib_call.
	for bad in segv abort; do
		from=$(lines "$LOG")
		put_lib "$W/$bad.so" "$W/libplugin.so"
		wait_cond "$from" 'v["crashed"] == 1' 5 || fail "$bad: no call reported a crash"
		first=$(kv_lines "$from" 'v["crashed"] == 1' | head -n 1 | cut -d: -f1)
		wait_lines "$LOG" 5 5 "$first" || fail "$bad: the host stopped after the crash"
		check_all "$first" 'v["value"] == 2 * v["tick"] && v["crashed"] == 0 && v["version"] == 1 && v["loaded"] == 1' \
			"$bad: after the rollback (version 1 runs, its load hook ran again)"
	done
	grep -q 'libplugin.so version 2 crashed: SIGSEGV in step+0x[0-9a-f]*, bad address (nil); .*rolled back to version 1' "$ERR" ||
		fail "the NULL dereference was not reported by function: $(grep crashed "$ERR" | head -n 1)"
	grep -q 'libplugin.so version 3 crashed: SIGABRT.*rolled back to version 1' "$ERR" ||
		fail "the abort was not reported: $(grep crashed "$ERR" | tail -n 1)"
	from=$(lines "$LOG")
	put_lib "$W/good.so" "$W/libplugin.so"
	check_after "$from" 'v["value"] == 7 * v["tick"] && v["version"] == 4 && v["loaded"] == 4' \
		"a good version after the crashes"
	check_all 1 'v["upd"] >= 0 || v["why"] > 0' "every failed update says why"
	check_all 1 'v["count"] == v["tick"]' "the host's state across refusal and crashes"
	check_steps 1 tick 1
	assert_alive "after the crashes"
	pass
}

e2e_test t_dylib_incomplete "dylib: an incomplete plugin that looks long untouched is awaited, refused only after standing still, loaded when whole" once
t_dylib_incomplete() {
	local from size lines_err
	dylib_api
	dylib_host host
	plugin_build plugin.c "$W/libplugin.so" ""
	plugin_build plugin.c "$W/v2.so" "" BODY 'return n * 3;'
	start_host host "$W/libplugin.so"
	wait_lines "$LOG" 5 5 1 || fail "the host printed fewer than 5 lines in 5 s"
	# Half a library whose time is 10 s old: what a build's truncation
	# shows for a moment (the size is set before the time), and what a
	# build that died halfway leaves.
	from=$(lines "$LOG")
	size=$(stat -c %s "$W/v2.so")
	head -c "$((size / 2))" "$W/v2.so" >"$W/half.tmp"
	touch -d '10 seconds ago' "$W/half.tmp"
	mv "$W/half.tmp" "$W/libplugin.so"
	wait_cond "$from" 'v["upd"] == -1' 20 ||
		fail "the incomplete file was never refused: $(tail -n 2 "$ERR" | tr '\n' ' ')"
	lines_err=$(grep -c . "$ERR")
	[[ $(sed -n 1p "$ERR") == "err: $W/libplugin.so: section headers past the end of the file (still being written?); waiting" ]] ||
		fail "the incomplete file was not awaited first: $(head -n 1 "$ERR")"
	[[ $(sed -n 2p "$ERR") == "err: $W/libplugin.so: section headers past the end of the file" && $lines_err == 2 ]] ||
		fail "the incomplete file was not refused as truncated: $(tr '\n' ' ' <"$ERR")"
	wait_lines "$LOG" 20 5 "$(kv_lines "$from" 'v["upd"] == -1' | head -n 1 | cut -d: -f1)" ||
		fail "the host stopped after the refusal"
	(($(count_lines "$from" 'v["upd"] == -1') == 1)) || fail "the refused file was tried again"
	check_all 1 'v["upd"] >= 0 || v["why"] > 0' "the refusal says why"
	check_all "$from" 'v["value"] == 2 * v["tick"] && v["version"] == 1' "while the file was incomplete"
	# Completed in place: it loads.
	from=$(lines "$LOG")
	cat "$W/v2.so" >"$W/libplugin.so"
	check_after "$from" 'v["value"] == 3 * v["tick"] && v["version"] == 2 && v["loaded"] == 2' \
		"once the file is whole"
	check_all 1 'v["count"] == v["tick"]' "the host's state"
	check_steps 1 tick 1
	assert_alive "after the reload"
	pass
}

# hooks_after FROM: the hook lines after line FROM, joined by "; ".
hooks_after() {
	after "$LOG" "$1" | grep '^hook=' | sed 's/^hook=//' | paste -sd';' | sed 's/;/; /g'
}

# deps_rebuild_a_b UPDATE: the host of libA, libB and libC (dep_*.c; C
# needs B and A, B needs A) running, tick its filter: A rebuilt reloads B
# and C with it, after it, B before C; B rebuilt reloads B and C, not A;
# UPDATE (the host's update-all) said 3 the first time.
deps_rebuild_a_b() {
	local from first want got
	# A changes: B and C (C needs B and A) come along, after A, B before C.
	from=$(lines "$LOG")
	plugin_build dep_a.c "$W/libA.so" "-Wl,-soname,libA.so" A 'return n * 20;'
	wait_cond "$from" "$tick && v[\"va\"] == 2" 5 || fail "A was not reloaded: $(tail -n 2 "$ERR" | tr '\n' ' ')"
	first=$(kv_lines "$from" "$tick && v[\"va\"] == 2" | head -n 1 | cut -d: -f1)
	wait_lines "$LOG" 5 5 "$first" || fail "the host stopped after the reload"
	check_all "$((first - 1))" "!$tick || (v[\"a\"] == 20 * v[\"tick\"] && v[\"b\"] == 20 * v[\"tick\"] + 1 && v[\"c\"] == 40 * v[\"tick\"] + 1 && v[\"vb\"] == 2 && v[\"vc\"] == 2)" \
		"after rebuilding A (B and C reach the new A)"
	kv_lines "$from" "$tick && v[\"upd\"] == 3" | grep -q . || fail "$1 did not return 3"
	want="load lib=A version=2; load lib=B version=2; load lib=C version=2; unload lib=C version=1; unload lib=B version=1; unload lib=A version=1"
	got=$(hooks_after "$from")
	[[ $got == "$want" ]] || fail "hooks after rebuilding A: $got; expected: $want"
	# B alone: B and C, not A.
	from=$(lines "$LOG")
	plugin_build dep_b.c "$W/libB.so" "-Wl,-soname,libB.so -L$W -lA" B 'return a_value(n) + 2;'
	wait_cond "$from" "$tick && v[\"vb\"] == 3" 5 || fail "B was not reloaded: $(tail -n 2 "$ERR" | tr '\n' ' ')"
	first=$(kv_lines "$from" "$tick && v[\"vb\"] == 3" | head -n 1 | cut -d: -f1)
	wait_lines "$LOG" 5 5 "$first" || fail "the host stopped after the reload"
	check_all "$((first - 1))" "!$tick || (v[\"b\"] == 20 * v[\"tick\"] + 2 && v[\"c\"] == 40 * v[\"tick\"] + 2 && v[\"va\"] == 2 && v[\"vc\"] == 3)" \
		"after rebuilding B"
	want="load lib=B version=3; load lib=C version=3; unload lib=C version=2; unload lib=B version=2"
	got=$(hooks_after "$from")
	[[ $got == "$want" ]] || fail "hooks after rebuilding B: $got; expected: $want"
	[[ ! -s $ERR ]] || fail "the host reported errors: $(head -n 2 "$ERR" | tr '\n' ' ')"
}

e2e_test t_dylib_deps "dylib: three plugins using each other reload in dependency order" once
t_dylib_deps() {
	local tick='("tick" in v)'
	dylib_api
	dylib_host host_deps
	plugin_build dep_a.c "$W/libA.so" "-Wl,-soname,libA.so"
	plugin_build dep_b.c "$W/libB.so" "-Wl,-soname,libB.so -L$W -lA"
	plugin_build dep_c.c "$W/libC.so" "-Wl,-soname,libC.so -L$W -lB -lA"
	start_host host_deps "$W/libA.so" "$W/libB.so" "$W/libC.so"
	wait_lines "$LOG" 8 5 1 || fail "the host printed fewer than 8 lines in 5 s"
	check_all 1 "!$tick || (v[\"b\"] == 10 * v[\"tick\"] + 1 && v[\"c\"] == 20 * v[\"tick\"] + 1)" \
		"before the rebuilds"
	deps_rebuild_a_b rewire_lib_update_all
	check_steps 1 tick 1 "$tick"
	assert_alive "after the reloads"
	pass
}

# mapped_copies PATTERN: how many distinct files matching PATTERN (an
# extended regex) the host has mapped, as the kernel sees it.
mapped_copies() {
	awk '{print $6}' "/proc/$VPID/maps" | grep -E -- "$1" | sort -u | wc -l
}

e2e_test t_dylib_unload "dylib: unloading old versions; glibc keeps a plugin with thread_local destructors" once
t_dylib_unload() {
	local line
	dylib_api
	dylib_host host_unload
	plugin_build plugin.c "$W/libplain.so" ""
	plugin_build tls.cpp "$W/libtls.so" ""
	start_host host_unload "$W/libplain.so" "$W/libtls.so"
	wait_lines "$LOG" 5 5 1 || fail "the host printed fewer than 5 lines in 5 s"
	plugin_build plugin.c "$W/libplain.so" "" BODY 'return n * 3;'
	plugin_build tls.cpp "$W/libtls.so" "" BODY 'return n * 3 + (counter.n > 0 ? 0 : 1);'
	wait_for "$LOG" '^unload ' 10 || fail "the host did not unload: $(tail -n 2 "$ERR" | tr '\n' ' ')"
	line=$(grep -m1 '^unload ' "$LOG")
	[[ $line == "unload plain=0 tls=1" ]] ||
		fail "rewire_lib_unload_old: $line, expected plain=0 (gone) tls=1 (kept)"
	grep -q '^err: tls: .*libtls.so version 1 stays mapped after dlclose: it registered thread_local destructors' "$ERR" ||
		fail "the error does not say why glibc kept libtls.so: $(grep 'err: tls' "$ERR")"
	grep -q '^err: plain: $' "$ERR" || fail "an error for the plain plugin: $(grep 'err: plain' "$ERR")"
	# What the kernel has mapped agrees: one copy of plain, two of tls.
	(($(mapped_copies '/libplain\.so\.[0-9]+$') == 1)) ||
		fail "version 1 of libplain.so is still mapped: $(grep libplain "/proc/$VPID/maps" | awk '{print $6}' | sort -u | tr '\n' ' ')"
	(($(mapped_copies '/libtls\.so\.[0-9]+$') == 2)) || fail "libtls.so version 1 is not mapped any more"
	wait_lines "$LOG" 3 5 "$(grep -n '^unload ' "$LOG" | cut -d: -f1)" || fail "the host stopped after unloading"
	check_all "$(grep -n '^unload ' "$LOG" | cut -d: -f1)" 'v["plain"] == 3 * v["tick"] && v["tls"] == 3 * v["tick"]' \
		"the current versions after unloading the old ones"
	assert_alive "after unloading"
	pass
}

# cargo_build DIR: cargo build --offline in $W/DIR (std only: no registry).
cargo_build() {
	(cd "$W/$1" && CARGO_TARGET_DIR=$W/$1/target cargo build --offline) >"$W/$1.cargo.log" 2>&1 ||
		{ APPLY_OUT=$W/$1.cargo.log APPLY_RC=-; fail "cargo build of $1 failed"; }
}

# rust_host_build HOST LINK: the crate victims/dylib/HOST (on bindings/rust)
# and rust_plugin built in $W, the host's binary linked as $W/LINK.
rust_host_build() {
	PATH=$PATH:$HOME/.cargo/bin
	command -v cargo >/dev/null || fail "cargo is not installed (~/.cargo/bin)"
	cp -r "$DYLIB/$1" "$DYLIB/rust_plugin" "$W/"
	sed -i "s|@BINDINGS@|$RW_ROOT/bindings/rust|" "$W/$1/Cargo.toml"
	cargo_build rust_plugin
	cargo_build "$1"
	ln -s "$1/target/debug/$1" "$W/$2"
}

e2e_test t_dylib_rust "dylib: a Rust host reloads a Rust cdylib plugin (rewire::Lib) after cargo build, and unloads the old version" once timeout=300
t_dylib_rust() {
	local from n
	rust_host_build rust_host rhost
	start_host rhost "$W/rust_plugin/target/debug/librust_plugin.so"
	wait_lines "$LOG" 5 5 1 || fail "the host printed fewer than 5 lines in 5 s"
	check_all 1 'v["value"] == 2 * v["tick"] && v["version"] == 1 && v["loaded"] == 1 && v["maps"] == 1 && v["kept"] == -1' "before the rebuild"
	from=$(lines "$LOG")
	edit_source "$W/rust_plugin/src/lib.rs" "$W/lib.rs.new" BODY '    n * 3'
	mv "$W/lib.rs.new" "$W/rust_plugin/src/lib.rs"
	cargo_build rust_plugin
	check_after "$from" 'v["value"] == 3 * v["tick"] && v["version"] == 2 && v["loaded"] == 2 && v["kept"] == 0 && v["maps"] == 1' \
		"after cargo build (the pointer from Lib::sym reaches version 2; Lib::unload_old unmapped version 1)"
	n=$(count_lines 1 'v["upd"] == 1')
	((n == 1)) || fail "Lib::update returned Ok(true) $n times, expected once"
	check_all 1 'v["upd"] >= 0 && v["count"] == v["tick"]' "every update, and the host's state"
	check_steps 1 tick 1
	assert_alive "after the reload"
	pass
}

e2e_test t_dylib_hot "dylib: rewire::hot_module! wrappers, a watcher thread, a reload the host postpones, then takes" once timeout=300
t_dylib_hot() {
	local from n
	rust_host_build rust_hot rhot
	start_host rhot "$W/rust_plugin/target/debug/librust_plugin.so" "$W/block"
	wait_lines "$LOG" 5 5 1 || fail "the host printed fewer than 5 lines in 5 s"
	check_all 1 'v["value"] == 2 * v["tick"] && v["version"] == 1 && v["status"] == "same"' "before the rebuild"
	# Rebuilt while the host says not now: the old version goes on.
	touch "$W/block"
	edit_source "$W/rust_plugin/src/lib.rs" "$W/lib.rs.new" BODY '    n * 3'
	mv "$W/lib.rs.new" "$W/rust_plugin/src/lib.rs"
	cargo_build rust_plugin
	from=$(lines "$LOG")
	wait_cond "$from" 'v["status"] == "postponed" && v["postponed"] >= 3' 10 ||
		fail "the reload was not postponed: $(tail -n 1 "$LOG")"
	from=$(lines "$LOG")
	wait_lines "$LOG" 10 5 "$from" || fail "the host stopped while the reload waited"
	# (before, then postponed, are counted by the watcher as the host prints)
	check_all "$from" 'v["value"] == 2 * v["tick"] && v["version"] == 1 && v["after"] == 0 && v["before"] >= 2 * v["postponed"] && v["before"] <= 2 * v["postponed"] + 2' \
		"while the host postpones the reload (each time asked about version 2)"
	rm "$W/block"
	wait_cond "$from" 'v["version"] == 2' 10 || fail "the reload was not taken once allowed: $(tail -n 1 "$LOG")"
	from=$(kv_lines "$from" 'v["version"] == 2' | head -n 1 | cut -d: -f1)
	wait_lines "$LOG" 5 5 "$from" || fail "the host stopped after the reload"
	check_after "$from" 'v["value"] == 3 * v["tick"] && v["after"] == 2 && v["count"] == v["tick"]' \
		"after the reload (the wrapper reaches version 2; after_reload told; the state kept)"
	n=$(count_lines 1 'v["upd"] == 1')
	((n == 1)) || fail "was_updated() said true $n times, expected once"
	check_steps 1 tick 1
	assert_alive "after the reload"
	pass
}

# rust_plugin_build MARKER TEXT...: victims/dylib/rust_plugin's source,
# edited at the markers, rebuilt by cargo in $W (as a developer would).
rust_plugin_build() {
	edit_source "$DYLIB/rust_plugin/src/lib.rs" "$W/lib.rs.new" "$@"
	mv "$W/lib.rs.new" "$W/rust_plugin/src/lib.rs"
	cargo_build rust_plugin
}

# wait_exit SECONDS: wait for the host to end; sets RC to its exit status
# (128 + the signal that killed it). Fails if it still runs.
wait_exit() {
	local end=$(($(now_us) + $1 * 1000000))
	while victim_alive; do
		(($(now_us) < end)) || fail "the host still runs after $1 s"
		sleep 0.02
	done
	wait "$VPID" 2>/dev/null # no "Segmentation fault" from the shell: it is expected
	RC=$?
}

RUST_SEGV='    if n > 0 { unsafe { std::ptr::write_volatile(std::ptr::null_mut::<i64>(), n) } } n * 5'
RUST_PANIC='    if n > 0 { panic!("step {n} went wrong") } n * 6'
RUST_UNWIND='pub unsafe extern "C-unwind" fn step(state: *mut c_void, n: i64) -> i64 {'

e2e_test t_dylib_rust_guard "dylib: Lib::call in a Rust host: cargo-built versions that dereference null or panic (extern \"C\" and \"C-unwind\") are rolled back; the host goes on" once timeout=300
t_dylib_rust_guard() {
	local from first bad n p=librust_plugin.so
	rust_host_build rust_guard rguard
	start_host rguard "$W/rust_plugin/target/debug/$p" guarded
	wait_lines "$LOG" 5 5 1 || fail "the host printed fewer than 5 lines in 5 s"
	check_all 1 'v["value"] == 2 * v["tick"] && v["version"] == 1 && v["loaded"] == 1 && v["crashed"] == 0 && v["host_panic"] == 1' \
		"before the rebuilds (the host's own panic unwound out of Lib::call)"
	for bad in segv panic unwind; do
		from=$(lines "$LOG")
		case $bad in
		segv) rust_plugin_build BODY "$RUST_SEGV" ;;
		panic) rust_plugin_build BODY "$RUST_PANIC" ;;
		unwind) rust_plugin_build BODY "$RUST_PANIC" SIG "$RUST_UNWIND" ;;
		esac
		wait_cond "$from" 'v["crashed"] == 1 && v["status"] == "crashed" && v["upd"] == 1' 10 ||
			fail "$bad: no Lib::call reported a crash of the new version: $(tail -n 2 "$ERR" | tr '\n' ' ')"
		first=$(kv_lines "$from" 'v["crashed"] == 1' | head -n 1 | cut -d: -f1)
		wait_lines "$LOG" 5 5 "$first" || fail "$bad: the host stopped after the crash"
		check_all "$first" 'v["value"] == 2 * v["tick"] && v["crashed"] == 0 && v["version"] == 1 && v["loaded"] == 1' \
			"$bad: after the rollback (version 1 runs, its load hook ran again)"
		n=$(count_lines "$from" 'v["crashed"] == 1')
		((n == 1)) || fail "$bad: $n calls crashed, expected 1 (a crashed version must not run again)"
	done
	grep -q "/$p version 2 crashed: SIGSEGV in step+0x[0-9a-f]*, bad address 0x0; .*/$p rolled back to version 1$" "$ERR" ||
		fail "the null dereference was not reported by function and address: $(grep -m1 crashed "$ERR")"
	grep -q "/$p version 3 crashed: a panic (SIGABRT) in step+0x[0-9a-f]*; .*/$p rolled back to version 1$" "$ERR" ||
		fail "the panic in an extern \"C\" function was not reported: $(grep crashed "$ERR" | sed -n 2p)"
	grep -q "/$p version 4 crashed: a panic (SIGABRT) in step+0x[0-9a-f]*; .*/$p rolled back to version 1$" "$ERR" ||
		fail "the panic out of an extern \"C-unwind\" function was not reported: $(grep crashed "$ERR" | sed -n 3p)"
	from=$(lines "$LOG")
	rust_plugin_build BODY '    n * 7'
	check_after "$from" 'v["value"] == 7 * v["tick"] && v["version"] == 5 && v["loaded"] == 5 && v["crashed"] == 0' \
		"a fixed version after the crashes"
	check_all 1 'v["upd"] >= 0' "every update"
	check_all 1 'v["count"] == v["tick"]' "the host's state across the crashes"
	check_steps 1 tick 1
	assert_alive "after the crashes"
	pass
}

e2e_test t_dylib_rust_hot_guard "dylib: hot_module!'s guarded wrappers: a crash or panic of a new version returns Err and rolls it back" once timeout=300
t_dylib_rust_hot_guard() {
	local from first bad p=librust_plugin.so
	rust_host_build rust_guard rguard
	start_host rguard "$W/rust_plugin/target/debug/$p" hot
	wait_lines "$LOG" 5 5 1 || fail "the host printed fewer than 5 lines in 5 s"
	check_all 1 'v["value"] == 2 * v["tick"] && v["version"] == 1 && v["crashed"] == 0' "before the rebuilds"
	for bad in segv panic; do
		from=$(lines "$LOG")
		case $bad in
		segv) rust_plugin_build BODY "$RUST_SEGV" ;;
		panic) rust_plugin_build BODY "$RUST_PANIC" ;;
		esac
		wait_cond "$from" 'v["crashed"] == 1 && v["status"] == "crashed"' 10 ||
			fail "$bad: plugin::guarded::step did not return the crash: $(tail -n 2 "$ERR" | tr '\n' ' ')"
		first=$(kv_lines "$from" 'v["crashed"] == 1' | head -n 1 | cut -d: -f1)
		wait_lines "$LOG" 5 5 "$first" || fail "$bad: the host stopped after the crash"
		check_all "$first" 'v["value"] == 2 * v["tick"] && v["crashed"] == 0 && v["version"] == 1 && v["loaded"] == 1' \
			"$bad: after the rollback"
	done
	grep -q "^err: .*/$p version 3 crashed: a panic (SIGABRT) in step+0x[0-9a-f]*; .*/$p rolled back to version 1$" "$ERR" ||
		fail "the panic was not reported: $(grep crashed "$ERR" | tail -n 1)"
	from=$(lines "$LOG")
	rust_plugin_build BODY '    n * 7'
	check_after "$from" 'v["value"] == 7 * v["tick"] && v["version"] == 4 && v["crashed"] == 0' "a fixed version after the crashes"
	check_all 1 'v["count"] == v["tick"]' "the host's state across the crashes"
	check_steps 1 tick 1
	assert_alive "after the crashes"
	pass
}

e2e_test t_dylib_rust_unguarded "dylib: with rewire::Lib's handlers in, the host's own crash inside Lib::call, and a plugin's outside it, kill the host as usual" once timeout=300
t_dylib_rust_unguarded() {
	local p=librust_plugin.so
	rust_host_build rust_guard rguard
	# At tick 5 the host writes through a null pointer inside Lib::call.
	start_host rguard "$W/rust_plugin/target/debug/$p" hostcrash
	wait_exit 10
	((RC == 139)) || fail "the host's own crash inside Lib::call: exit status $RC, expected 139 (SIGSEGV)"
	[[ $(last_line) == tick=4\ * ]] || fail "the host did not die at tick 5: $(last_line)"
	# The plugin's crash in a call not guarded.
	start_host rguard "$W/rust_plugin/target/debug/$p" unguarded
	wait_lines "$LOG" 5 5 1 || fail "the host printed fewer than 5 lines in 5 s"
	rust_plugin_build BODY "$RUST_SEGV"
	wait_exit 20
	((RC == 139)) || fail "the plugin's crash outside Lib::call: exit status $RC, expected 139 (SIGSEGV)"
	check_all 1 'v["crashed"] == 0 && v["version"] <= 2' "until the crash"
	! grep -q '^rewire: ' "$W"/rguard.err || fail "rewire reported a crash it must not catch: $(grep -m1 '^rewire: ' "$W"/rguard.err)"
	pass
}

e2e_test t_dylib_rust_deps "dylib: rewire::Libs in a Rust host: plugins using each other reload in dependency order; a crash rolls back every library its reload brought in" once timeout=300
t_dylib_rust_deps() {
	local from first want got
	local tick='("tick" in v)'
	rust_host_build rust_deps rdeps
	plugin_build dep_a.c "$W/libA.so" "-Wl,-soname,libA.so"
	plugin_build dep_b.c "$W/libB.so" "-Wl,-soname,libB.so -L$W -lA"
	plugin_build dep_c.c "$W/libC.so" "-Wl,-soname,libC.so -L$W -lB -lA"
	start_host rdeps "$W/libA.so" "$W/libB.so" "$W/libC.so"
	wait_lines "$LOG" 8 5 1 || fail "the host printed fewer than 8 lines in 5 s"
	check_all 1 "!$tick || (v[\"b\"] == 10 * v[\"tick\"] + 1 && v[\"c\"] == 20 * v[\"tick\"] + 1)" "before the rebuilds"
	deps_rebuild_a_b Libs::update_all
	# B crashes in its version 4 (C's version 4 came with it): both go back.
	rust_deps_crash B "$W/libB.so" "-Wl,-soname,libB.so -L$W -lA" \
		'if (n > 0) *(volatile int *)(long)(n - n) = n; return a_value(n) + 3;' 'v["va"] == 2 && v["vb"] == 3 && v["vc"] == 3' \
		"libB.so version 4 crashed: SIGSEGV in b_value+0x[0-9a-f]*, bad address 0x0; [^;]*/libB.so rolled back to version 3; [^;]*/libC.so rolled back to version 3$" \
		"load lib=B version=4; load lib=C version=4; unload lib=C version=3; unload lib=B version=3; load lib=B version=3; load lib=C version=3"
	# A crashes in its version 3: B and C, reloaded with it, go back too.
	rust_deps_crash A "$W/libA.so" "-Wl,-soname,libA.so" \
		'if (n > 0) *(volatile int *)(long)(n - n) = n; return n * 30;' 'v["va"] == 2 && v["vb"] == 3 && v["vc"] == 3' \
		"libA.so version 3 crashed: SIGSEGV in a_value+0x[0-9a-f]*, bad address 0x0; [^;]*/libA.so rolled back to version 2; [^;]*/libB.so rolled back to version 3; [^;]*/libC.so rolled back to version 3$" \
		"load lib=A version=3; load lib=B version=5; load lib=C version=5; unload lib=C version=3; unload lib=B version=3; unload lib=A version=2; load lib=A version=2; load lib=B version=3; load lib=C version=3"
	# Fixed: A, B and C reload normally.
	from=$(lines "$LOG")
	plugin_build dep_a.c "$W/libA.so" "-Wl,-soname,libA.so" A 'return n * 30;'
	check_after "$from" "$tick && v[\"a\"] == 30 * v[\"tick\"] && v[\"b\"] == 30 * v[\"tick\"] + 2 && v[\"c\"] == 60 * v[\"tick\"] + 2 && v[\"va\"] == 4 && v[\"vb\"] == 6 && v[\"vc\"] == 6" \
		"a fixed A after the crashes"
	check_steps 1 tick 1 "$tick"
	assert_alive "after the crashes"
	pass
}

# rust_deps_crash LIB FILE LINK TEXT COND ERROR HOOKS: rebuild dep_LIB.c
# (lowercase) into FILE with TEXT at its marker; expect one crashed call,
# then COND with the values before, the error ERROR (a regex), and the
# hooks HOOKS in that order.
rust_deps_crash() {
	local lib=$1 file=$2 link=$3 text=$4 cond=$5 error=$6 want=$7 from first got
	local tick='("tick" in v)' vals='v["b"] == 20 * v["tick"] + 2 && v["c"] == 40 * v["tick"] + 2'
	from=$(lines "$LOG")
	plugin_build "dep_${lib,,}.c" "$file" "$link" "$lib" "$text"
	wait_cond "$from" "$tick && v[\"crashed\"] == 1" 5 || fail "$lib: no crash reported: $(tail -n 2 "$ERR" | tr '\n' ' ')"
	first=$(kv_lines "$from" "$tick && v[\"crashed\"] == 1" | head -n 1 | cut -d: -f1)
	wait_lines "$LOG" 5 5 "$first" || fail "$lib: the host stopped after the crash"
	check_all "$first" "!$tick || ($vals && $cond && v[\"crashed\"] == 0)" "$lib: after the rollback"
	(($(count_lines "$from" "$tick && v[\"crashed\"] == 1") == 1)) || fail "$lib: more than one call crashed"
	grep -q "^err: .*$error" "$ERR" || fail "$lib: the error was not: $error: $(grep -m1 crashed "$ERR")"
	got=$(hooks_after "$from")
	[[ $got == "$want" ]] || fail "$lib: hooks around the crash: $got; expected: $want"
}
