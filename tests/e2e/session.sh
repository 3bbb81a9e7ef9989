# tests/e2e/session.sh: `rewire run` with a compile_commands.json: edit a
# source, save, and the running program has the new code. Helpers: lib.sh.

e2e_test t_s_body "session: saved edit is patched"
t_s_body() {
	build_project body body.c
	start_session body
	wait_lines "$LOG" 4 5 1 || fail "the program printed fewer than 4 lines in 5 s"
	local from
	from=$(lines "$LOG")
	save body.c BODY 'return tick * 3;'
	wait_err '^rewire: patched compute' || fail "no 'rewire: patched compute' line"
	check_after "$from" 'v["value"] == v["tick"] * 3 && v["pid"] == pid' "after the save"
	check_steps 1 tick 1
	assert_alive "after the patch"
	pass
}

e2e_test t_s_error "session: compile error, then its fix"
t_s_error() {
	build_project body body.c
	start_session body
	wait_lines "$LOG" 4 5 1 || fail "the program printed fewer than 4 lines in 5 s"
	save body.c BODY "$(marked BODY 'return tick * 3 +;')"
	wait_err 'compile failed; the program keeps running' || fail "no compile error reported"
	grep -q 'error' "$ERR" || fail "the compiler's message is not shown"
	local from
	from=$(lines "$LOG")
	wait_lines "$LOG" 4 5 "$from" || fail "the program stopped printing after the compile error"
	check_all "$from" 'v["value"] == v["tick"] * 2' "after the compile error (old code)"
	save body.c BODY 'return tick * 3 + 1;'
	wait_err '^rewire: patched compute' || fail "the fix was not patched"
	check_after "$from" 'v["value"] == v["tick"] * 3 + 1' "after the fix"
	check_steps 1 tick 1
	assert_alive "after the fix"
	pass
}

e2e_test t_s_back "session: saved back to the running code after a compile error, then a refused patch: said so"
t_s_back() {
	build_project body body.c
	cp "$P/body.c" "$W/body.orig.c"
	start_session body
	wait_lines "$LOG" 4 5 1 || fail "the program printed fewer than 4 lines in 5 s"
	save body.c BODY "$(marked BODY 'return tick * 3 +;')"
	wait_err 'compile failed; the program keeps running' || fail "no compile error reported"
	cat "$W/body.orig.c" >"$P/body.c"	# the editor's undo: the code that runs
	wait_err '^rewire: body.c: the program runs this code already$' ||
		fail "saving back the running code was not said: $(tail -n 1 "$ERR")"
	# The same after a refused patch (a new thread-local variable).
	save body.c BODY "$(marked BODY 'static __thread int t; return tick * 2 + (t++ & 0);')"
	wait_err '^rewire: error: body.c: ' 2 || fail "the thread-local was not refused: $(tail -n 1 "$ERR")"
	cp "$W/body.orig.c" "$P/.body.tmp" && mv "$P/.body.tmp" "$P/body.c"
	wait_err '^rewire: body.c: the program runs this code already$' 2 ||
		fail "saving back after the refusal was not said: $(tail -n 1 "$ERR")"
	grep -q 'no code changed' "$ERR" && fail "rewire said 'no code changed' for the code that runs"
	local from
	from=$(lines "$LOG")
	save body.c BODY "$(marked BODY 'return tick * 5;')"
	wait_err '^rewire: patched compute' || fail "the next edit was not patched"
	check_after "$from" 'v["value"] == v["tick"] * 5' "after the next edit"
	assert_alive "after the saves"
	pass
}

e2e_test t_s_twenty "session: 20 edits saved by rename"
t_s_twenty() {
	build_project body body.c
	start_session body
	wait_lines "$LOG" 4 5 1 || fail "the program printed fewer than 4 lines in 5 s"
	local k from
	for k in $(seq 3 22); do
		from=$(lines "$LOG")
		save_by_rename body.c BODY "$(marked BODY "return tick * $k;")"
		wait_err '^rewire: patched compute' $((k - 2)) ||
			fail "edit $((k - 2)) (tick * $k) was not patched"
		wait_cond "$from" 'v["value"] == v["tick"] * '"$k" 5 ||
			fail "edit $((k - 2)): the program does not compute tick * $k"
	done
	check_steps 1 tick 1
	assert_alive "after 20 edits"
	pass
}

e2e_test t_s_during "session: an edit saved while the one before it compiles is patched too"
t_s_during() {
	build_project body body.c
	# The compiler reads the source, then takes 1.5 s more to exit: the
	# second edit is saved after the first one was compiled and before it
	# is patched, always.
	cat >"$P/slowcc" <<SH
#!/bin/sh
"\$@"; rc=\$?
echo compiled >>"$W/cc.trace"
sleep 1.5
echo exited >>"$W/cc.trace"
exit \$rc
SH
	chmod +x "$P/slowcc"
	sed -i "s|\"arguments\": \[|\"arguments\": [\"$P/slowcc\", |" "$P/compile_commands.json"
	start_session body
	wait_lines "$LOG" 4 5 1 || fail "the program printed fewer than 4 lines in 5 s"
	# No compiler at start: the build's object is the baseline, and the
	# #include lines give the headers.
	[[ -e $W/cc.trace ]] && fail "rewire ran the compiler at start: $(tr '\n' ' ' <"$W/cc.trace")"
	: >"$W/cc.trace"
	local from
	from=$(lines "$LOG")
	save body.c BODY "$(marked BODY 'return tick * 3;')"
	wait_for "$W/cc.trace" '^compiled$' 10 || fail "the first edit was not compiled"
	save body.c BODY "$(marked BODY 'return tick * 5;')"
	wait_err '^rewire: patched compute' 1 || fail "the first edit was not patched"
	wait_err '^rewire: patched compute' 2 ||
		fail "the edit saved during the first one's compile was not patched: $(tail -n 2 "$ERR" | tr '\n' ' ')"
	check_after "$from" 'v["value"] == v["tick"] * 5 && v["pid"] == pid' "after the second save"
	check_steps 1 tick 1
	assert_alive "after the patches"
	pass
}

e2e_test t_s_inline "session: inlined static changes its caller"
t_s_inline() {
	build_project scale scale.c
	start_session scale
	wait_lines "$LOG" 4 5 1 || fail "the program printed fewer than 4 lines in 5 s"
	local from
	from=$(lines "$LOG")
	save scale.c SCALE 'return x * 5;'
	wait_err '^rewire: patched' || fail "no 'rewire: patched' line"
	check_after "$from" 'v["value"] == v["tick"] * 5 + 1' "after the save"
	assert_alive "after the patch"
	pass
}

e2e_test t_s_header "session: header change patches every unit including it"
t_s_header() {
	build_project units units_main.c units_more.c config.h
	start_session units
	wait_lines "$LOG" 4 5 1 || fail "the program printed fewer than 4 lines in 5 s"
	# Both units' baselines must be known before the header is edited.
	sleep 1
	local from
	from=$(lines "$LOG")
	save config.h FACTOR '#define FACTOR 7'
	wait_err '^rewire: patched .*units_main.c, units_more.c|^rewire: patched .*units_more.c, units_main.c' ||
		fail "no single patch of both units"
	check_after "$from" 'v["a"] == v["tick"] * 7 && v["b"] == v["tick"] * 7 + 1000' "after the save"
	check_steps 1 tick 1
	assert_alive "after the patch"
	pass
}

e2e_test t_s_same_times "session: a header rewritten in place with its old size and times is still seen (file hashes kept across saves)" once
t_s_same_times() {
	build_project units units_main.c units_more.c config.h
	# Old enough when the session reads it that its hash is kept, not
	# read again while its status stays the same.
	sleep 3
	start_session units
	wait_lines "$LOG" 4 5 1 || fail "the program printed fewer than 4 lines in 5 s"
	sleep 1
	local from old
	old=$(stat -c %s "$P/config.h")
	from=$(lines "$LOG")
	# The same inode, the same size, the old modification time back before
	# the file is closed (the save rewire sees): only the change time,
	# which no one can set, says it was written.
	cp -p "$P/config.h" "$W/config.h.orig"
	edit_source "$P/config.h" "$W/config.h.new" FACTOR "$(marked FACTOR '#define FACTOR 7')"
	exec 5<>"$P/config.h"
	cat "$W/config.h.new" >&5
	touch -r "$W/config.h.orig" "$P/config.h"
	exec 5>&-
	[[ $(stat -c %s "$P/config.h") == "$old" ]] || fail "the edit changed the header's size"
	[[ $(stat -c %Y "$P/config.h") == $(stat -c %Y "$W/config.h.orig") ]] ||
		fail "the header's modification time was not put back"
	wait_err '^rewire: patched .*units_main.c, units_more.c|^rewire: patched .*units_more.c, units_main.c' ||
		fail "the header's new contents were not seen: $(verdicts | tail -n 1)"
	check_after "$from" 'v["a"] == v["tick"] * 7 && v["b"] == v["tick"] * 7 + 1000' "after the save"
	assert_alive "after the patch"
	pass
}

# The session's cache removed under it (a cleaner of /tmp): a save that
# cannot be compiled is said, not waited for in silence.
e2e_test t_s_cache_gone "session: its cache directory removed while it runs: a save says it cannot compile, and why" once
t_s_cache_gone() {
	build_project body body.c
	start_session body
	wait_lines "$LOG" 4 5 1 || fail "the program printed fewer than 4 lines in 5 s"
	rm -rf "$(session_cache)"
	save body.c BODY "$(marked BODY 'return tick * 3;')"
	wait_err '^rewire: error: body.c: cannot write .*: No such file or directory$' 1 10 ||
		fail "not said: $(tail -n 2 "$ERR" | tr '\n' ' ')"
	assert_alive "after the save"
	pass
}

# A compile of more than a second is said while it runs; a short one is
# not. The compiler is a script of the same name that waits 1.5 s first.
e2e_test t_s_long_compile "session: a compile that takes more than a second is said (compiling …), then the patch"
t_s_long_compile() {
	mkdir -p "$W/slow"
	printf '#!/bin/sh\nsleep 1.5\nexec %s "$@"\n' "$(command -v "$CC")" >"$W/slow/${CC##*/}"
	chmod +x "$W/slow/${CC##*/}"
	CC=$W/slow/${CC##*/} build_project body body.c
	start_session body
	wait_lines "$LOG" 4 5 1 || fail "the program printed fewer than 4 lines in 5 s"
	local from
	from=$(lines "$LOG")
	save body.c BODY "$(marked BODY 'return tick * 3;')"
	wait_err '^rewire: compiling body.c…$' 1 10 || fail "the long compile was not said: $(tail -n 2 "$ERR" | tr '\n' ' ')"
	wait_err '^rewire: patched ' 1 20 || fail "not patched: $(tail -n 2 "$ERR" | tr '\n' ' ')"
	grep -B1 '^rewire: patched ' "$ERR" | head -n 1 | grep -q '^rewire: compiling body.c…$' ||
		fail "not said before the patch: $(grep -v warning "$ERR" | tr '\n' ' ')"
	check_after "$from" 'v["value"] == v["tick"] * 3' "after the save"
	(($(grep -c '^rewire: compiling' "$ERR") == 1)) || fail "said more than once: $(grep '^rewire: compiling' "$ERR" | tr '\n' ' ')"
	assert_alive "after the patch"
	pass
}

e2e_test t_s_depfile "session: a build with depfiles: no compiler at start, and a header edit is patched"
t_s_depfile() {
	CFLAGS+=(-MD)
	build_project units units_main.c units_more.c config.h
	[[ -s $P/build/units_main.d && -s $P/build/units_more.d ]] || fail "the build wrote no depfiles"
	start_session units
	wait_lines "$LOG" 4 5 1 || fail "the program printed fewer than 4 lines in 5 s"
	local dir=/tmp/rewire-$EUID from
	[[ -n ${XDG_RUNTIME_DIR:-} ]] && dir=$XDG_RUNTIME_DIR/rewire
	[[ -d $dir/cache-$VPID/base ]] || fail "no cache at $dir/cache-$VPID"
	# A compile or preprocessor pass at start would leave its log there.
	[[ -z $(ls "$dir/cache-$VPID/base") ]] ||
		fail "rewire ran a compiler at start: $(ls "$dir/cache-$VPID/base" | tr '\n' ' ')"
	from=$(lines "$LOG")
	save config.h FACTOR "$(marked FACTOR '#define FACTOR 7')"
	wait_err '^rewire: patched .*units_main.c, units_more.c|^rewire: patched .*units_more.c, units_main.c' ||
		fail "no single patch of both units: $(verdicts | tail -n 1)"
	check_after "$from" 'v["a"] == v["tick"] * 7 && v["b"] == v["tick"] * 7 + 1000' "after the save"
	assert_alive "after the patch"
	pass
}

# Sessions killed (SIGKILL: no clean-up) leave their cache directories;
# the next session's start removes them, and only them. The names are of
# process ids no process can have (above pid_max).
e2e_test t_s_stale_cache "session: the caches of sessions that were killed are removed at the next start; running ones are kept" once
t_s_stale_cache() {
	local dir=/tmp/rewire-$EUID dead live old fresh
	[[ -n ${XDG_RUNTIME_DIR:-} ]] && dir=$XDG_RUNTIME_DIR/rewire
	mkdir -p -m 700 "$dir"
	dead=$dir/cache-9${$}1 live=$dir/cache-9${$}2 old=$dir/cache-9${$}3 fresh=$dir/cache-9${$}4
	mkdir -p "$dead/base" "$live/base" "$old/base" "$fresh/base"
	echo "9${$}1 12345" >"$dead/owner"
	# Its owner runs: this shell, with its start time.
	echo "$$ $(sed 's/^.*) //' "/proc/$$/stat" | awk '{print $20}')" >"$live/owner"
	# Without an owner file (an older rewire's), its program gone: old
	# enough, removed; a minute young, it may be being made: kept.
	touch -d '5 minutes ago' "$old"
	build_project body body.c
	start_session body
	wait_lines "$LOG" 2 5 1 || fail "the program printed fewer than 2 lines in 5 s"
	local left=""
	[[ -e $dead ]] && left+=" ${dead##*/} (its session ended)"
	[[ -e $old ]] && left+=" ${old##*/} (no owner, its program ended)"
	[[ -d $live ]] || left+=" ${live##*/} REMOVED (its session runs)"
	[[ -d $fresh ]] || left+=" ${fresh##*/} REMOVED (being made)"
	rm -rf "$dead" "$live" "$old" "$fresh"
	[[ -z $left ]] || fail "caches:$left"
	[[ -d $(session_cache) ]] || fail "no cache for the session itself at $(session_cache)"
	assert_alive "after start"
	pass
}

# The cache directory of the session started last.
session_cache() {
	local dir=/tmp/rewire-$EUID
	[[ -n ${XDG_RUNTIME_DIR:-} ]] && dir=$XDG_RUNTIME_DIR/rewire
	echo "$dir/cache-$VPID"
}

e2e_test t_s_no_depfile "session: a build without depfiles: no compiler at start (the #include lines are read), and a header edit is patched"
t_s_no_depfile() {
	build_project units units_main.c units_more.c config.h
	[[ -z $(find "$P" -name '*.d') ]] || fail "the build wrote depfiles"
	start_session units
	wait_lines "$LOG" 4 5 1 || fail "the program printed fewer than 4 lines in 5 s"
	local cache from
	cache=$(session_cache)
	[[ -d $cache/base ]] || fail "no cache at $cache"
	# A compile or preprocessor pass at start would leave its log there.
	[[ -z $(ls "$cache/base") ]] || fail "rewire ran a compiler at start: $(ls "$cache/base" | tr '\n' ' ')"
	from=$(lines "$LOG")
	save config.h FACTOR "$(marked FACTOR '#define FACTOR 7')"
	wait_err '^rewire: patched .*units_main.c, units_more.c|^rewire: patched .*units_more.c, units_main.c' ||
		fail "no single patch of both units: $(verdicts | tail -n 1)"
	check_after "$from" 'v["a"] == v["tick"] * 7 && v["b"] == v["tick"] * 7 + 1000' "after the save"
	assert_alive "after the patch"
	pass
}

e2e_test t_s_stale_header "session: a header edited after the build is said at start, and the next save of a unit that includes it patches the difference"
t_s_stale_header() {
	build_project units units_main.c units_more.c config.h
	sleep 0.1
	save config.h FACTOR "$(marked FACTOR '#define FACTOR 7')"
	start_session units
	wait_lines "$LOG" 4 5 1 || fail "the program printed fewer than 4 lines in 5 s"
	grep -q '^rewire: config.h changed after the program was built: the next save of units_more.c patches' "$ERR" ||
		fail "the edited header was not said: $(tail -n 2 "$ERR" | tr '\n' ' ')"
	local from
	from=$(lines "$LOG")
	# Saved as it is: what runs is not what it says.
	cat "$P/units_more.c" >"$P/.more" && cat "$P/.more" >"$P/units_more.c"
	wait_err '^rewire: patched part_b' || fail "the save was not patched: $(verdicts | tail -n 1)"
	check_after "$from" 'v["a"] == v["tick"] * 2 && v["b"] == v["tick"] * 7 + 1000' "after the save"
	assert_alive "after the patch"
	pass
}

e2e_test t_s_computed_include "session: a unit that includes a macro (#include H) learns its headers from the compiler, and a header edit is patched"
t_s_computed_include() {
	local g=$W/gen
	mkdir -p "$g"
	cp "$VICTIMS/units_main.c" "$VICTIMS/config.h" "$g/"
	printf '#define H "config.h"\n#include H\nint part_b(int n) { return n * FACTOR + 1000; }\n' \
		>"$g/units_more.c"
	VICTIMS=$g build_project units units_main.c units_more.c config.h
	start_session units
	wait_lines "$LOG" 4 5 1 || fail "the program printed fewer than 4 lines in 5 s"
	# Its headers are known once the preprocessor pass ends (1 s without a compiler).
	local quiet=0 tries=0 cache from
	while ((quiet < 10 && tries < 300)); do
		if [[ -n $(pgrep -P "$RUN_PID" | grep -vx "$VPID") ]]; then quiet=0; else quiet=$((quiet + 1)); fi
		tries=$((tries + 1))
		sleep 0.1
	done
	cache=$(session_cache)
	# Only units_more.c (the second unit) was preprocessed.
	[[ -e $cache/base/1.d ]] || fail "no preprocessor pass for units_more.c: $(ls "$cache/base" | tr '\n' ' ')"
	[[ -z $(ls "$cache/base" | grep -v '^1\.') ]] ||
		fail "rewire ran a compiler for units_main.c: $(ls "$cache/base" | tr '\n' ' ')"
	from=$(lines "$LOG")
	save config.h FACTOR "$(marked FACTOR '#define FACTOR 7')"
	wait_err '^rewire: patched .*units_main.c, units_more.c|^rewire: patched .*units_more.c, units_main.c' ||
		fail "no single patch of both units: $(verdicts | tail -n 1)"
	check_after "$from" 'v["a"] == v["tick"] * 7 && v["b"] == v["tick"] * 7 + 1000' "after the save"
	assert_alive "after the patch"
	pass
}

e2e_test t_s_build_again "session: the user's build writes an object again before rewire compares a save: patched, never 'no code changed'"
t_s_build_again() {
	build_project units units_main.c units_more.c config.h
	start_session units
	wait_lines "$LOG" 4 5 1 || fail "the program printed fewer than 4 lines in 5 s"
	sleep 1
	local from
	from=$(lines "$LOG")
	# An editor that builds on save: the object of the edited source is
	# written before rewire has compared the save with what runs.
	mkdir -p "$P/.ed"
	sed 's/return n \* FACTOR;/return n * FACTOR * 3;/' "$P/units_main.c" >"$P/.ed/units_main.c"
	grep -q 'FACTOR \* 3' "$P/.ed/units_main.c" || fail "the edit did not apply"
	(cd "$P/.ed" && "$CC" "${CFLAGS[@]}" -I"$P" -c -o ../build/units_main.o units_main.c) \
		>"$P/cc.log" 2>&1 || fail "cannot compile the edit: $(head -n 3 "$P/cc.log")"
	cat "$P/.ed/units_main.c" >"$P/units_main.c"
	wait_err '^rewire: (patched|.*no code changed|error)' || fail "rewire said nothing of the save"
	verdicts | grep -q 'no code changed' && fail "rewire said: $(verdicts | tail -n 1)"
	wait_err '^rewire: patched .*part_a' || fail "part_a was not patched: $(verdicts | tail -n 1)"
	check_after "$from" 'v["a"] == v["tick"] * 6 && v["b"] == v["tick"] * 2 + 1000' "after the save"
	assert_alive "after the patch"
	pass
}

e2e_test t_s_clone "session: an edit of a function gcc cloned (scale.constprop.0), whose caller's bytes stay the same, runs"
t_s_clone() {
	# As rewire advises (no -fipa-ra closure to mark the caller changed).
	[[ $RW_CC == gcc ]] && CFLAGS+=(-fno-ipa-ra)
	build_project clone clone.c
	start_session clone
	wait_lines "$LOG" 4 5 1 || fail "the program printed fewer than 4 lines in 5 s"
	sleep 1
	local from
	from=$(lines "$LOG")
	save clone.c SCALE "$(marked SCALE 'return n * 5;')"
	wait_err '^rewire: (patched|.*no code changed|error)' || fail "rewire said nothing of the save"
	verdicts | grep -q '^rewire: patched ' || fail "not patched: $(verdicts | tail -n 1)"
	check_after "$from" 'v["value"] == v["tick"] * 5 + 1 && v["pid"] == pid' "after the save"
	assert_alive "after the patch"
	pass
}

e2e_test t_s_header_many "session: header change in more units than rewire runs compilers at once (10)" timeout=120
t_s_header_many() {
	# units_main.c, units_more.c and 8 more units, all including config.h:
	# more than the 8 compile slots, each of which a compile of the batch
	# held until the batch was patched (the 9th never started: no verdict,
	# and no later save was acted upon).
	local g=$W/gen k
	mkdir -p "$g"
	cp "$VICTIMS/units_main.c" "$VICTIMS/units_more.c" "$VICTIMS/config.h" "$g/"
	for k in 1 2 3 4 5 6 7 8; do
		printf '#include "config.h"\nint extra_%d(int n) { return n * FACTOR + %d; }\n' "$k" "$k" >"$g/extra$k.c"
	done
	VICTIMS=$g build_project units units_main.c units_more.c extra1.c extra2.c extra3.c extra4.c \
		extra5.c extra6.c extra7.c extra8.c config.h
	start_session units
	wait_lines "$LOG" 4 5 1 || fail "the program printed fewer than 4 lines in 5 s"
	# Every unit's headers must be known before the header is edited:
	# wait for rewire's start-up compiles to end (1 s without a compiler).
	local quiet=0 tries=0
	while ((quiet < 10 && tries < 600)); do
		if [[ -n $(pgrep -P "$RUN_PID" | grep -vx "$VPID") ]]; then quiet=0; else quiet=$((quiet + 1)); fi
		tries=$((tries + 1))
		sleep 0.1
	done
	local from
	from=$(lines "$LOG")
	save config.h FACTOR '#define FACTOR 7 /* @FACTOR */'
	wait_err '^rewire: (patched|.*no code changed|error)' 1 60 ||
		fail "rewire said nothing about the header save (10 units to compile)"
	local said
	said=$(verdicts | tail -n 1)
	for k in units_main.c units_more.c extra1.c extra2.c extra3.c extra4.c extra5.c extra6.c extra7.c extra8.c; do
		[[ $said == "rewire: patched "*"$k"* ]] || fail "no single patch of the 10 units: $said"
	done
	check_after "$from" 'v["a"] == v["tick"] * 7 && v["b"] == v["tick"] * 7 + 1000' "after the save"
	# The session goes on: the next save patches too.
	from=$(lines "$LOG")
	save config.h FACTOR '#define FACTOR 9 /* @FACTOR */'
	wait_err '^rewire: (patched|.*no code changed|error)' 2 60 ||
		fail "rewire said nothing about the second header save"
	check_after "$from" 'v["a"] == v["tick"] * 9 && v["b"] == v["tick"] * 9 + 1000' "after the second save"
	check_steps 1 tick 1
	assert_alive "after the patches"
	pass
}

e2e_test t_s_objects "session: --watch-objects with a Makefile build"
t_s_objects() {
	P=$W/proj
	mkdir -p "$P/build"
	cp "$VICTIMS/body.c" "$P/"
	cat >"$P/Makefile" <<MK
build/body: build/body.o
	\$(CC) ${LDFLAGS[*]} -o \$@ build/body.o
build/body.o: body.c
	\$(CC) ${CFLAGS[*]} -c -o \$@ body.c
MK
	make -s -C "$P" CC="$CC" >"$P/make.log" 2>&1 || { APPLY_OUT=$P/make.log APPLY_RC=-; fail "make failed"; }
	start_session body --watch-objects build/body.o
	grep -q '^rewire: watching 1 object of' "$ERR" || fail "rewire does not say it watches the object"
	wait_lines "$LOG" 4 5 1 || fail "the program printed fewer than 4 lines in 5 s"
	local from
	from=$(lines "$LOG")
	save body.c BODY 'return tick * 3;'
	make -s -C "$P" CC="$CC" build/body.o >"$P/make.log" 2>&1 || fail "make of the edit failed"
	wait_err '^rewire: patched compute' || fail "no 'rewire: patched compute' line"
	check_after "$from" 'v["value"] == v["tick"] * 3 && v["pid"] == pid' "after make"
	check_steps 1 tick 1
	assert_alive "after the patch"
	pass
}

e2e_test t_s_statics "session: a new function-local static renumbers the others"
t_s_statics() {
	build_project state state.c
	start_session state
	wait_lines "$LOG" 4 5 1 || fail "the program printed fewer than 4 lines in 5 s"
	local from
	from=$(lines "$LOG")
	# gcc numbers function-local statics in order: the new one takes
	# local_count.0, tick's becomes local_count.1.
	save state.c DECLS '__attribute__((noinline)) static int other(void)
{
	static int local_count = 70;

	return ++local_count;
}' EXTRA 'int other_count = other();' \
		PRINT 'printf("v=3 file=%d global=%d local=%d other=%d\n", file_count, global_count, local_count, other_count);'
	wait_err '^rewire: patched' || fail "no 'rewire: patched' line"
	check_after "$from" 'v["v"] == 3' "after the save"
	check_steps 1 local 1
	check_steps 1 file 1
	check_all "$((FIRST_NEW - 1))" 'NR > 1 || v["other"] == 71' "first line of the new code"
	assert_alive "after the patch"
	pass
}

e2e_test t_s_cxx "session: C++ virtual function edited and saved"
t_s_cxx() {
	build_project shapes shapes.cpp
	start_session shapes
	wait_lines "$LOG" 4 5 1 || fail "the program printed fewer than 4 lines in 5 s"
	local from
	from=$(lines "$LOG")
	save shapes.cpp AREA 'int area() const override { return s * s + 1; }'
	wait_err '^rewire: patched .*Square::area' || fail "no patch of Square::area: $(tail -n 2 "$ERR" | tr '\n' ' ')"
	check_after "$from" 'v["area"] == 10' "after the save"
	check_steps 1 bump 1
	assert_alive "after the patch"
	pass
}

e2e_test t_s_names "session: the patch line names overloads apart, a changed signature, and counts library instances"
t_s_names() {
	build_project names names.cpp
	start_session names
	wait_lines "$LOG" 4 5 1 || fail "the program printed fewer than 4 lines in 5 s"
	local from line
	from=$(lines "$LOG")
	save names.cpp SCALE_INT '	return x * 3;' SCALE_DOUBLE '	return x * 3;'
	wait_err '^rewire: patched ' 1 || fail "no patch of the overloads: $(tail -n 2 "$ERR" | tr '\n' ' ')"
	line=$(grep -m1 '^rewire: patched ' "$ERR")
	[[ $line == *"scale(int)"* && $line == *"scale(double)"* ]] ||
		fail "the overloads are not told apart: $line"
	check_after "$from" 'v["a"] == 3 * v["tick"] && v["b"] == 3 * v["tick"]' "after the overloads' save"
	# helper(int) becomes helper(int, int): another symbol, a new function.
	from=$(lines "$LOG")
	save names.cpp HELPER '__attribute__((noinline)) int helper(int x, int y)' \
		HELPER_BODY '	return x + y;' CALL '	return v[0] * 100 + helper(tick, 5);'
	wait_err '^rewire: patched ' 2 || fail "no patch of the signature change: $(tail -n 2 "$ERR" | tr '\n' ' ')"
	line=$(grep '^rewire: patched ' "$ERR" | sed -n 2p)
	# (gcc's main changes too: its calls move with the code after them)
	[[ $line == "rewire: patched report"*"; helper(int, int) replaces helper(int) (names.cpp)"* ]] ||
		fail "the signature change is not said: $line"
	check_after "$from" '(v["c"] - v["tick"] - 5) % 100 == 0' "after the signature change"
	# The lambda std::sort is instantiated for changes: named first (or
	# report, when it is inlined there), the library's instances that
	# inline it counted, not listed.
	from=$(lines "$LOG")
	save names.cpp ORDER '	std::sort(v.begin(), v.end(), [](int a, int b) { return a > b; });'
	wait_err '^rewire: patched ' 3 || fail "no patch of the lambda: $(tail -n 2 "$ERR" | tr '\n' ' ')"
	line=$(grep '^rewire: patched ' "$ERR" | sed -n 3p)
	[[ $line == "rewire: patched report"* && $line != *std::* ]] ||
		fail "the lambda is not named first, or a library instance is listed: $line"
	check_after "$from" '(v["c"] - v["tick"] - 5) % 100 == 0 && v["c"] >= 300' "after the lambda's change"
	assert_alive "after the patches"
	pass
}

e2e_test t_s_init "session: a changed initial value is kept, and said"
t_s_init() {
	build_project state state.c
	start_session state
	wait_lines "$LOG" 4 5 1 || fail "the program printed fewer than 4 lines in 5 s"
	sed -i 's/static int file_count = 100;/static int file_count = 7;/' "$P/state.c"
	grep -q 'file_count = 7;' "$P/state.c" || fail "the test's edit did not apply"
	wait_err 'the initial value of file_count changed: the running program keeps its current value' ||
		fail "rewire does not say the initial value changed"
	check_steps 1 file 1
	assert_alive "after the save"
	pass
}

# The program's debug information is read at the first save and kept: the
# saves after it are checked against it as the first was.
e2e_test t_s_types "session: type checks at every save: a changed layout and a changed signature refused between patches"
t_s_types() {
	build_project types types.c
	start_session types
	wait_lines "$LOG" 4 5 1 || fail "the program printed fewer than 4 lines in 5 s"
	local from
	from=$(lines "$LOG")
	save types.c SBODY "$(marked SBODY 'return n + 2;')"
	wait_err '^rewire: patched .*bonus' || fail "no 'rewire: patched bonus' line: $(verdicts | tail -n 1)"
	check_after "$from" 'v["bonus"] == v["tick"] + 2' "after the first save"
	# With a change of code: a layout alone changes no function, and is no patch.
	save types.c FIELDS "$(marked FIELDS 'int armor;')" SBODY "$(marked SBODY 'return n + 4;')"
	wait_err '^rewire: error: types.c: type player \(types.c\) changed its layout' ||
		fail "a changed layout was not refused: $(verdicts | tail -n 1)"
	save types.c FIELDS "$(marked FIELDS '')" PARAMS "$(marked PARAMS 'int hp, int extra')" \
		CALL "$(marked CALL 'int s = score(hero.hp, 3);')"
	wait_err '^rewire: error: types.c: function score \(types.c\) changed its signature' ||
		fail "a changed signature was not refused: $(verdicts | tail -n 1)"
	from=$(lines "$LOG")
	save types.c PARAMS "$(marked PARAMS 'int hp')" CALL "$(marked CALL 'int s = score(hero.hp);')" \
		SBODY "$(marked SBODY 'return n + 3;')"
	wait_err '^rewire: patched .*bonus' 2 || fail "the last save was not patched: $(verdicts | tail -n 1)"
	check_after "$from" 'v["bonus"] == v["tick"] + 3 && v["score"] == 2 * v["hp"]' "after the last save"
	check_steps 1 hp 1
	assert_alive "after the patches"
	pass
}

# restart_after_crash CRASH: with --restart, a first patch (tick * 3),
# then one whose code CRASH crashes once and returns tick * 5. The program
# is started again with the first patch only; a fixed save is patched in.
restart_after_crash() {
	build_project body body.c
	start_session body --restart
	wait_lines "$LOG" 4 5 1 || fail "the program printed fewer than 4 lines in 5 s"
	local from pid2 old=$VPID n
	from=$(lines "$LOG")
	save body.c BODY "$(marked BODY 'return tick * 3;')"
	wait_err '^rewire: patched compute' || fail "no 'rewire: patched compute' line"
	check_after "$from" 'v["value"] == v["tick"] * 3' "after the first save"
	# It crashes when it finds the file, which it removes: once.
	touch "$W/crash-once"
	VPID=	# it is about to crash
	save body.c BODY "$(marked BODY "if ($1 remove(\"$W/crash-once\") == 0) *(volatile int *)(long)(tick - tick) = tick; return tick * 5;")"
	wait_err 'the program crashed \(Segmentation fault\) in its patch of compute[a-z, ]* \(body.c\); restarted it \(pid [0-9]+\) without that patch' 1 20 ||
		fail "no restart without the crashing patch: $(tail -n 3 "$ERR" | tr '\n' ' ')"
	[[ ! -e $W/crash-once ]] || fail "the new code did not run before the crash"
	wait_for "$LOG" '^pid=[0-9]+$' 10 "$from" || fail "the restarted program printed no pid= line"
	pid2=$(after "$LOG" "$from" | grep -m1 -E '^pid=[0-9]+$' | cut -d= -f2)
	((pid2 != old)) || fail "no new process"
	rw_track "$pid2"
	VPID=$pid2 VSTART=$(proc_start "$pid2")
	wait_err '^rewire: patched the restarted program: compute' 1 20 ||
		fail "the restarted program was not patched: $(tail -n 3 "$ERR" | tr '\n' ' ')"
	from=$(grep -n "^pid=$pid2\$" "$LOG" | cut -d: -f1)
	check_after "$from" "v[\"value\"] == v[\"tick\"] * 3 && v[\"pid\"] == $pid2" \
		"in the restarted program (the patch before the crashing one)"
	# Held until patched: not one line of the restarted program ran the
	# code as built.
	check_all "$from" "v[\"pid\"] != $pid2 || v[\"value\"] == v[\"tick\"] * 3" \
		"the restarted program's first lines"

	# The restarted program's one patch (all it had before the crash, but
	# the crashing one) taken back: it runs as built.
	from=$(lines "$LOG")
	"$REWIRE" revert "$pid2" >"$W/revert.out" 2>&1 || fail "rewire revert exited $?: $(cat "$W/revert.out")"
	grep -q '^rewire: taken back: compute.* (body.c); the program runs the code it was built with;' "$W/revert.out" ||
		fail "rewire revert after the restart said: $(cat "$W/revert.out")"
	check_after "$from" "v[\"value\"] == v[\"tick\"] * 2 && v[\"pid\"] == $pid2" "after the revert"
	n=$(grep -c '^rewire: patched compute' "$ERR")
	from=$(lines "$LOG")
	save body.c BODY "$(marked BODY 'return tick * 7;')"
	wait_err '^rewire: patched compute' $((n + 1)) || fail "the fixed save was not patched"
	check_after "$from" "v[\"value\"] == v[\"tick\"] * 7 && v[\"pid\"] == $pid2" "after the fix"
	check_steps "$from" tick 1
	assert_alive "after the restart"
	pass
}

e2e_test t_s_restart "session: --restart brings a crashed program back, without the patch that crashed"
t_s_restart() {
	restart_after_crash 'tick % 20 == 0 &&'
}

# The new code crashes at its first call, which comes as the stop that
# wrote its jumps ends the program's sleep: before the agent answered,
# often.
e2e_test t_s_restart_at_once "session: --restart after a patch that crashes as soon as it is in"
t_s_restart_at_once() {
	restart_after_crash ''
}

# Without --restart, a patch that crashes at once: one report, in order —
# the patch, the crash naming the function and the patch, the end of the
# program — and rewire exits with the program's status.
e2e_test t_s_crash_order "session: a patch that crashes at once is said in order: patched, the crash, the program's end"
t_s_crash_order() {
	build_project body body.c
	start_session body
	wait_lines "$LOG" 4 5 1 || fail "the program printed fewer than 4 lines in 5 s"
	VPID=	# it is about to crash
	save body.c BODY "$(marked BODY '*(volatile int *)(long)(tick - tick) = tick; return tick * 5;')"
	local rc=0
	wait "$RUN_PID" 2>/dev/null || rc=$?
	((rc == 139)) || fail "rewire exited $rc, not the program's 139 (SIGSEGV)"
	local order
	order=$(grep -nE '^rewire: (patched compute|SIGSEGV in patched code: compute \(patch 1,|the program ended \(SIGSEGV\); rewire exits with its status)' "$ERR" |
		sed -E 's/^([0-9]+):rewire: (patched|SIGSEGV|the program ended).*/\2/' | tr '\n' ' ')
	[[ $order == "patched SIGSEGV the program ended " ]] ||
		fail "not one report in order (patched, the crash, the end): '$order': $(tail -n 4 "$ERR" | tr '\n' '|')"
	! grep -q 'no answer from the agent' "$ERR" || fail "the patch was said lost: $(grep 'no answer' "$ERR")"
	pass
}

# The executable is replaced on disk (relinked: another file) while the
# patched program runs; it crashes, and --restart starts the new file,
# which rewire's agent does not take for the program it was started on.
# rewire must say that the restarted program runs without its patches,
# never let the session go on as if it had them.
e2e_test t_s_restart_relinked "session: --restart of a program whose executable was relinked meanwhile says it runs as built"
t_s_restart_relinked() {
	build_project body body.c
	start_session body --restart
	wait_lines "$LOG" 4 5 1 || fail "the program printed fewer than 4 lines in 5 s"
	local from pid2
	from=$(lines "$LOG")
	save body.c BODY "$(marked BODY 'return tick * 3;')"
	wait_err '^rewire: patched compute' || fail "no 'rewire: patched compute' line"
	check_after "$from" 'v["value"] == v["tick"] * 3' "after the save"
	cp "$P/build/body" "$P/build/body.new"
	mv "$P/build/body.new" "$P/build/body"
	kill -SEGV "$VPID"
	VPID=	# it ends now
	wait_err 'the program crashed \(Segmentation fault\); restarted it \(pid [0-9]+\)' 1 20 ||
		fail "not restarted: $(tail -n 3 "$ERR" | tr '\n' ' ')"
	wait_for "$LOG" '^pid=[0-9]+$' 10 "$from" || fail "the restarted program printed no pid= line"
	pid2=$(after "$LOG" "$from" | grep -m1 -E '^pid=[0-9]+$' | cut -d= -f2)
	rw_track "$pid2"
	VPID=$pid2 VSTART=$(proc_start "$pid2")
	wait_err '^rewire: (error: cannot patch the restarted program: .*; it runs as built|patched the restarted program)' 1 20 ||
		fail "rewire said nothing of the restarted program's patches: $(tail -n 3 "$ERR" | tr '\n' ' ')"
	grep -q '^rewire: error: cannot patch the restarted program: .*; it runs as built' "$ERR" ||
		fail "the restarted program was said patched: $(grep 'restarted program' "$ERR" | tr '\n' ' ')"
	from=$(grep -n "^pid=$pid2\$" "$LOG" | cut -d: -f1)
	check_after "$from" "v[\"value\"] == v[\"tick\"] * 2 && v[\"pid\"] == $pid2" \
		"in the restarted program (as built)"
	assert_alive "after the restart"
	pass
}

# plug_project: tests/victims/plug in $W/proj, with a Makefile that links
# build/main with build/libplug.so, as a user's build would; built.
plug_project() {
	P=$W/proj
	mkdir -p "$P/build"
	cp "$VICTIMS/plug/plug.c" "$VICTIMS/plug/main.c" "$P/"
	cat >"$P/Makefile" <<MK
build/main: build/main.o build/libplug.so
	\$(CC) ${LDFLAGS[*]} -o \$@ build/main.o -Lbuild -lplug -Wl,-rpath,$P/build
build/main.o: main.c
	\$(CC) ${CFLAGS[*]} -c -o \$@ main.c
build/libplug.so: build/plug.o
	\$(CC) -shared -o \$@ build/plug.o
build/plug.o: plug.c
	\$(CC) ${CFLAGS[*]} -fPIC -c -o \$@ plug.c
MK
	make -s -C "$P" CC="$CC" >"$P/make.log" 2>&1 || { APPLY_OUT=$P/make.log APPLY_RC=-; fail "make failed"; }
}

e2e_test t_s_shlib "session: a rebuilt shared library patched in place"
t_s_shlib() {
	plug_project
	start_session main --watch-objects build/plug.o
	wait_lines "$LOG" 4 5 1 || fail "the program printed fewer than 4 lines in 5 s"
	local from
	from=$(lines "$LOG")
	save plug.c BODY 'return n * 3;'
	# The user's build makes the object and the library again, as it would.
	make -s -C "$P" CC="$CC" >"$P/make.log" 2>&1 || fail "make of the edit failed"
	wait_err '^rewire: patched plug_value' || fail "no 'rewire: patched plug_value' line: $(tail -n 2 "$ERR" | tr '\n' ' ')"
	check_after "$from" 'v["value"] == v["tick"] * 3 && v["pid"] == pid' "after make"
	check_steps 1 calls 1
	check_steps 1 tick 1
	assert_alive "after the patch"
	pass
}

# The session keeps what it read of the program's files from one patch to
# the next. Restarted, the program loads its library rebuilt meanwhile,
# where plug_value is elsewhere: its patches must go to the new address,
# never by what was read of the library the crashed process had.
e2e_test t_s_restart_shlib "session: --restart with the shared library rebuilt meanwhile: patches go to the new build's addresses"
t_s_restart_shlib() {
	plug_project
	# The library again: its code as built, after another object's 64 KiB.
	printf 'void pad(void) { __asm__ volatile(".fill 65536, 1, 0x90"); }\n' >"$P/pad.c"
	(cd "$P" && "$CC" "${CFLAGS[@]}" -fPIC -c -o build/pad.o pad.c &&
		"$CC" -shared -o build/libplug.next build/pad.o build/plug.o) >"$P/pad.log" 2>&1 ||
		{ APPLY_OUT=$P/pad.log APPLY_RC=-; fail "cannot link the rebuilt library"; }
	local a b from pid2 n
	a=$(nm -D "$P/build/libplug.so" | awk '$3 == "plug_value" {print $1}')
	b=$(nm -D "$P/build/libplug.next" | awk '$3 == "plug_value" {print $1}')
	[[ -n $a && -n $b && $a != "$b" ]] || fail "plug_value is at the same address in the rebuild ($a, $b)"
	start_session main --restart --watch-objects build/plug.o
	wait_lines "$LOG" 4 5 1 || fail "the program printed fewer than 4 lines in 5 s"
	from=$(lines "$LOG")
	# The library only: a relinked main would be another program, which
	# the restart would run without rewire's agent.
	save plug.c BODY "$(marked BODY 'return n * 3;')"
	make -s -C "$P" CC="$CC" build/libplug.so >"$P/make.log" 2>&1 || fail "make of the edit failed"
	wait_err '^rewire: patched plug_value' || fail "no 'rewire: patched plug_value' line: $(tail -n 2 "$ERR" | tr '\n' ' ')"
	check_after "$from" 'v["value"] == v["tick"] * 3' "after make"
	mv "$P/build/libplug.next" "$P/build/libplug.so"
	kill -SEGV "$VPID"
	VPID=	# it ends now
	wait_err 'the program crashed \(Segmentation fault\); restarted it \(pid [0-9]+\)' 1 20 ||
		fail "not restarted: $(tail -n 3 "$ERR" | tr '\n' ' ')"
	wait_for "$LOG" '^pid=[0-9]+$' 10 "$from" || fail "the restarted program printed no pid= line"
	pid2=$(after "$LOG" "$from" | grep -m1 -E '^pid=[0-9]+$' | cut -d= -f2)
	rw_track "$pid2"
	VPID=$pid2 VSTART=$(proc_start "$pid2")
	wait_err '^rewire: patched the restarted program: plug_value' 1 20 ||
		fail "the restarted program was not patched: $(tail -n 3 "$ERR" | tr '\n' ' ')"
	from=$(grep -n "^pid=$pid2\$" "$LOG" | cut -d: -f1)
	check_after "$from" "v[\"value\"] == v[\"tick\"] * 3 && v[\"pid\"] == $pid2" \
		"in the restarted program (its patch, at the rebuilt library's plug_value)"
	check_all "$from" "v[\"pid\"] != $pid2 || v[\"value\"] == v[\"tick\"] * 3" \
		"the restarted program's first lines"
	n=$(grep -c '^rewire: patched plug_value' "$ERR")
	from=$(lines "$LOG")
	save plug.c BODY "$(marked BODY 'return n * 5;')"
	make -s -C "$P" CC="$CC" build/libplug.so >"$P/make.log" 2>&1 || fail "make of the second edit failed"
	wait_err '^rewire: patched plug_value' $((n + 1)) || fail "the next edit was not patched"
	check_after "$from" "v[\"value\"] == v[\"tick\"] * 5 && v[\"pid\"] == $pid2" "after the next edit"
	check_steps "$from" calls 1
	assert_alive "after the restart"
	pass
}

e2e_test t_s_other_build "session: a program built from other objects than the ones rewire compares with is refused, never 'patched new code only'"
t_s_other_build() {
	build_project units units_main.c units_more.c config.h
	# The program that runs is another build: its part_b has another name
	# (as a Rust crate built with other -C metadata has other symbol hashes).
	(cd "$P" && "$CC" "${CFLAGS[@]}" -Dpart_b=part_b_x -c -o other_main.o units_main.c &&
		"$CC" "${CFLAGS[@]}" -Dpart_b=part_b_x -c -o other_more.o units_more.c &&
		"$CC" "${LDFLAGS[@]}" other_main.o other_more.o -o build/units) >"$P/other.log" 2>&1 ||
		{ APPLY_OUT=$P/other.log APPLY_RC=-; fail "cannot build the other program"; }
	start_session units
	wait_lines "$LOG" 4 5 1 || fail "the program printed fewer than 4 lines in 5 s"
	sed -i 's/n \* FACTOR + 1000/n * FACTOR + 2000/' "$P/units_more.c"
	wait_err '^rewire: (patched|.*no code changed|error)' 1 30 || fail "rewire said nothing about the save"
	verdicts | tail -n 1 | grep -q "^rewire: error: units_more.c: part_b is not in the running program, and only 0 of the 1 functions of its file are: the program runs another build of the file" ||
		fail "not refused: $(verdicts | tail -n 1)"
	local from
	from=$(lines "$LOG")
	wait_lines "$LOG" 4 5 "$from" || fail "the program stopped printing"
	check_all "$from" 'v["b"] == v["tick"] * 2 + 1000' "after the refusal (the code that runs)"
	assert_alive "after the refusal"
	pass
}
