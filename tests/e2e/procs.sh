# tests/e2e/procs.sh: a patch reaches every process of the program: the
# workers a pre-fork server forked (before, between and during patches),
# the children of a fork-per-connection server, workers that became
# another user. Victim: victims/prefork.c. Helpers: lib.sh.

# prefork_start MODE: the server under `rewire run`; PORT its port.
prefork_start() {
	build_project prefork prefork.c
	PREFORK_MODE=$1 start_session prefork
	wait_for "$LOG" '^port=[0-9]+$' 5 || fail "the server printed no port"
	PORT=$(sed -n 's/^port=//p' "$LOG" | head -n 1)
	ANSWERS=$W/answers
	: >"$ANSWERS"
}

# ask N: N requests, one connection each; the answers go to $ANSWERS
# (and to $W/last: those of this call).
ask() {
	local i
	: >"$W/last"
	for ((i = 0; i < $1; i++)); do
		if exec 3<>"/dev/tcp/127.0.0.1/$PORT"; then
			echo x >&3
			cat <&3 >>"$W/last" || echo "no answer" >>"$W/last"
			exec 3<&-
		else
			echo "no connection" >>"$W/last"
		fi
	done
	cat "$W/last" >>"$ANSWERS"
}

# all_answer V WHAT: every answer of the last ask came from handle() = V.
all_answer() {
	local bad
	bad=$(grep -v -m1 " v=$1 " "$W/last")
	[[ -z $bad ]] || fail "$2: an answer of the old code after 'patched': $bad ($(grep -c " v=$1 " "$W/last") of $(wc -l <"$W/last") new)"
}

# The workers alive: forked (worker=) and not reaped, by the master's log.
live_workers() {
	local w
	for w in $(sed -n 's/^worker=//p' "$LOG"); do
		kill -0 "$w" 2>/dev/null && echo "$w"
	done
}

# prefork_patch V N WHAT: save handle() returning V, wait for the N-th
# "patched", then every answer must be V.
prefork_patch() {
	save prefork.c HANDLE "$(marked HANDLE "	return $1;")"
	wait_err '^rewire: patched .*handle' "$2" 60 ||
		fail "$3: not patched: $(tail -n 2 "$ERR" | tr '\n' ' ')"
	ask 12
	all_answer "$1" "$3"
}

no_crash() {
	! grep -q '^crash=' "$LOG" || fail "a worker crashed: $(grep -m1 '^crash=' "$LOG")"
	grep -q '^rewire: error' "$ERR" && fail "rewire said: $(grep -m1 '^rewire: error' "$ERR")"
	assert_alive "$1"
}

e2e_test t_prefork "processes: a pre-fork server's workers all run the edit (forked before and between patches)"
t_prefork() {
	local w before after
	prefork_start steady
	ask 9
	all_answer 1 "before the edit"
	prefork_patch 2 1 "the first patch"
	grep -q '^rewire: patched .* in 4 processes ' "$ERR" ||
		fail "the patch line does not count the master and 3 workers: $(grep patched "$ERR" | tail -n 1)"
	# Each worker answered before and after, its count going on.
	for w in $(live_workers); do
		before=$(grep "^pid=$w v=1 " "$ANSWERS" | tail -n 1 | sed 's/.*served=//')
		after=$(grep "^pid=$w v=2 " "$ANSWERS" | head -n 1 | sed 's/.*served=//')
		[[ -n $after ]] || fail "worker $w never answered after the patch: $(sort "$W/last" | uniq -c | tr '\n' ' ')"
		[[ -z $before ]] || ((after == before + 1)) ||
			fail "worker $w lost its state: served $before, then $after"
	done
	# A worker that ends is replaced by a fork of the patched master.
	w=$(live_workers | head -n 1)
	kill -KILL "$w"
	wait_for "$LOG" "^crash=$w sig=9" 5 || fail "the master did not see its worker end"
	sed -i "/^crash=$w /d" "$LOG"
	sleep 0.2
	ask 9
	all_answer 2 "from a worker forked after the patch"
	prefork_patch 3 2 "the second patch"
	for w in $(live_workers); do
		grep -q "^pid=$w v=3 " "$W/last" || fail "worker $w did not answer after the second patch"
	done
	no_crash "after two patches"
	pass
}

e2e_test t_prefork_churn "processes: workers forked every 10 ms, before, between and during 6 patches" timeout=180
t_prefork_churn() {
	local v
	prefork_start churn
	ask 6
	all_answer 1 "before the edits"
	for v in 2 3 4 5 6 7; do
		prefork_patch "$v" $((v - 1)) "patch $((v - 1))"
	done
	(($(grep -c '^worker=' "$LOG") > 20)) || fail "the master forked too few workers to test anything"
	no_crash "after 6 patches among forks"
	pass
}

e2e_test t_percon "processes: a fork-per-connection server answers with the edit"
t_percon() {
	prefork_start percon
	ask 4
	all_answer 1 "before the edit"
	prefork_patch 2 1 "the first patch"
	prefork_patch 3 2 "the second patch"
	grep -q '^pid=[0-9]* v=3 served=1$' "$W/last" || fail "the children do not serve from a fresh count"
	no_crash "after two patches"
	pass
}

e2e_test t_prefork_setuid "processes: workers that became nobody are patched; other users cannot reach them"
t_prefork_setuid() {
	local w dir
	if ((EUID != 0)); then
		echo "    note: not root: the workers cannot change user; they run as $(id -un)"
	fi
	prefork_start setuid
	ask 6
	all_answer 1 "before the edit"
	if ((EUID == 0)); then
		for w in $(live_workers); do
			[[ $(stat -c %u "/proc/$w") == 65534 ]] || fail "worker $w did not become nobody"
		done
	fi
	prefork_patch 2 1 "the first patch"
	grep -q '^rewire: patched .* in 4 processes ' "$ERR" ||
		fail "not every worker was patched: $(grep patched "$ERR" | tail -n 1)"
	if ((EUID == 0)); then
		dir=/tmp/rewire-0
		[[ -n ${XDG_RUNTIME_DIR:-} ]] && dir=$XDG_RUNTIME_DIR/rewire
		w=$(live_workers | head -n 1)
		[[ -S $dir/$w.sock ]] || fail "worker $w has no socket in $dir"
		[[ $(stat -c '%u %a' "$dir") == "0 700" ]] || fail "$dir is not root's alone: $(stat -c '%U %a' "$dir")"
		# nobody, the workers' own user, cannot reach their agents.
		if setpriv --reuid=65534 --regid=65534 --clear-groups \
			bash -c "exec 3<>$dir/$w.sock" 2>/dev/null; then
			fail "another user opened worker $w's socket"
		fi
		setpriv --reuid=65534 --regid=65534 --clear-groups ls "$dir" >/dev/null 2>&1 &&
			fail "another user can list $dir"
	fi
	prefork_patch 3 2 "the second patch"
	no_crash "after two patches"
	pass
}

e2e_test t_prefork_dropped "processes: a master that became nobody before it forks: its workers are patched; other users cannot reach them"
t_prefork_dropped() {
	local w dir old
	prefork_start dropped
	ask 6
	all_answer 1 "before the edit"
	if ((EUID == 0)); then
		[[ $(stat -c %u "/proc/$(sed -n 's/^pid=//p' "$LOG" | head -n 1)") == 65534 ]] ||
			fail "the master did not become nobody"
		for w in $(live_workers); do
			[[ $(stat -c %u "/proc/$w") == 65534 ]] || fail "worker $w is not nobody's"
		done
	fi
	prefork_patch 2 1 "the first patch"
	grep -q '^rewire: patched .* in 4 processes ' "$ERR" ||
		fail "not every worker was patched: $(grep patched "$ERR" | tail -n 1)"
	# A worker forked after the patch, by the patched master, answers new.
	old=$(live_workers | head -n 1)
	kill "$old"
	for ((i = 0; i < 50; i++)); do
		[[ $(live_workers | wc -l) == 3 ]] && ! kill -0 "$old" 2>/dev/null && break
		sleep 0.1
	done
	ask 12
	all_answer 2 "a worker forked after the patch"
	if ((EUID == 0)); then
		dir=/tmp/rewire-0
		[[ -n ${XDG_RUNTIME_DIR:-} ]] && dir=$XDG_RUNTIME_DIR/rewire
		w=$(live_workers | head -n 1)
		[[ -S $dir/u65534/$w.sock ]] || fail "worker $w has no socket in $dir/u65534"
		[[ $(stat -c '%u %a' "$dir") == "0 700" ]] || fail "$dir is not root's alone: $(stat -c '%U %a' "$dir")"
		[[ $(stat -c '%u %a' "$dir/u65534") == "65534 700" ]] ||
			fail "$dir/u65534 is not nobody's alone: $(stat -c '%U %a' "$dir/u65534")"
		# nobody, the workers' own user, cannot reach their agents by path.
		if setpriv --reuid=65534 --regid=65534 --clear-groups \
			bash -c "exec 3<>$dir/u65534/$w.sock" 2>/dev/null; then
			fail "another process of nobody's opened worker $w's socket"
		fi
	fi
	prefork_patch 3 2 "the second patch"
	grep -q '^rewire: patched .* in 4 processes ' "$ERR" ||
		fail "not every worker took the second patch: $(grep patched "$ERR" | tail -n 1)"
	no_crash "after two patches"
	grep -q 'cannot be patched' "$ERR" "$LOG" && fail "a process said it cannot be patched: $(grep -h -m1 'cannot be patched' "$ERR" "$LOG")"
	pass
}

e2e_test t_prefork_exec "processes: a child that runs another program is left alone"
t_prefork_exec() {
	local h dir=/tmp/rewire-$EUID
	[[ -n ${XDG_RUNTIME_DIR:-} ]] && dir=$XDG_RUNTIME_DIR/rewire
	prefork_start exec
	wait_for "$LOG" '^helper=[0-9]+$' 5 || fail "the master started no helper"
	h=$(sed -n 's/^helper=//p' "$LOG")
	rw_track "$h"
	ask 6
	all_answer 1 "before the edit"
	prefork_patch 2 1 "the patch"
	grep -q '^rewire: patched .* in 4 processes ' "$ERR" ||
		fail "the patch line counts other than the master and 3 workers: $(grep patched "$ERR" | tail -n 1)"
	[[ $(readlink "/proc/$h/exe") == */sleep ]] || fail "the helper does not run sleep"
	grep -q librewire.so "/proc/$h/maps" && fail "the helper has rewire's agent"
	[[ -e $dir/$h.sock ]] && fail "the helper's socket (made at fork, before exec) is left in $dir"
	kill "$h"
	no_crash "after the patch"
	pass
}

# The agents' socket directory.
socket_dir() {
	if [[ -n ${XDG_RUNTIME_DIR:-} ]]; then echo "$XDG_RUNTIME_DIR/rewire"; else echo "/tmp/rewire-$EUID"; fi
}

# only_errors_about PID WHAT: rewire's only errors name process PID.
only_errors_about() {
	local other
	other=$(grep '^rewire: error' "$ERR" | grep -v -m1 "^rewire: error: process $1: ")
	[[ -z $other ]] || fail "$2: rewire said: $other"
}

# A worker stopped by SIGSTOP (its agent's thread stops with it) answers
# nothing; the limit on each answer is shortened to 2 s.
e2e_test t_prefork_stopped "processes: a stopped worker does not hold up the patch of the others, and is patched once it runs again" timeout=150
t_prefork_stopped() {
	local w stopped t0 holder
	export REWIRE_REPLY_TIMEOUT_MS=2000
	prefork_start steady
	ask 6
	all_answer 1 "before the edit"
	prefork_patch 2 1 "the first patch"
	grep -q '^rewire: patched .* in 4 processes ' "$ERR" ||
		fail "the first patch did not reach the master and 3 workers: $(grep patched "$ERR" | tail -n 1)"
	stopped=$(live_workers | head -n 1)
	kill -STOP "$stopped"
	t0=$SECONDS
	save prefork.c HANDLE "$(marked HANDLE "	return 3;")"
	wait_err '^rewire: patched .*handle' 2 60 ||
		fail "the stopped worker held up the patch of the others: $(tail -n 2 "$ERR" | tr '\n' ' ')"
	((SECONDS - t0 < 30)) || fail "the patch took $((SECONDS - t0)) s with a worker stopped"
	grep -q '^rewire: patched .* in 3 of 4 processes ' "$ERR" ||
		fail "not 3 of 4 processes patched: $(grep patched "$ERR" | tail -n 1)"
	grep -qxF "rewire: error: process $stopped: the agent did not answer within 2 s (HELLO); it keeps running the previous code" "$ERR" ||
		fail "the stopped worker $stopped is not named: $(grep -m1 '^rewire: error' "$ERR")"
	ask 9
	all_answer 3 "the workers that run"
	# Each save leaves a connection in the stopped agent's backlog; once it
	# is full, connecting waits: as long as the limit too.
	python3 -c 'import socket, sys, time
held = []
for i in range(32):
    c = socket.socket(socket.AF_UNIX)
    c.settimeout(0.5)
    try:
        c.connect(sys.argv[1])
    except OSError:
        break
    held.append(c)
print("full", flush=True)
time.sleep(300)' "$(socket_dir)/$stopped.sock" >"$W/holder" 2>&1 &
	holder=$!
	rw_track "$holder"
	wait_for "$W/holder" '^full$' 20 || fail "could not fill the stopped worker's backlog: $(cat "$W/holder")"
	prefork_patch 4 3 "with the stopped worker's backlog full"
	grep '^rewire: patched ' "$ERR" | tail -n 1 | grep -q ' in 3 of 4 processes ' ||
		fail "not 3 of 4 processes patched with the backlog full: $(grep patched "$ERR" | tail -n 1)"
	grep -qxF "rewire: error: process $stopped: the agent did not answer within 2 s (connect); it keeps running the previous code" "$ERR" ||
		fail "the stopped worker $stopped is not named when its backlog is full: $(grep '^rewire: error' "$ERR" | tail -n 1)"
	kill "$holder"
	# Running again, it answers: the next patch brings it up to date.
	kill -CONT "$stopped"
	prefork_patch 5 4 "the patch after the worker runs again"
	grep '^rewire: patched ' "$ERR" | tail -n 1 | grep -q ' in 4 processes ' ||
		fail "the worker stopped before was not patched: $(grep patched "$ERR" | tail -n 1)"
	for w in $(live_workers); do
		grep -q "^pid=$w v=5 " "$W/last" || fail "worker $w did not answer after the last patch"
	done
	! grep -q '^crash=' "$LOG" || fail "a worker crashed: $(grep -m1 '^crash=' "$LOG")"
	(($(grep -c '^rewire: error' "$ERR") == 2)) || fail "errors other than the two expected: $(grep '^rewire: error' "$ERR" | tr '\n' ' ')"
	only_errors_about "$stopped" "after the worker ran again"
	assert_alive "after the worker ran again"
	pass
}

# The master, the process patched first, is stopped: a worker takes the
# patch first in its place.
e2e_test t_prefork_stopped_master "processes: a stopped master does not hold up the patch of its workers, and is patched once it runs again" timeout=150
t_prefork_stopped_master() {
	local w
	export REWIRE_REPLY_TIMEOUT_MS=2000
	prefork_start steady
	ask 6
	all_answer 1 "before the edit"
	kill -STOP "$VPID"
	prefork_patch 2 1 "with the master stopped"
	grep -q '^rewire: patched .* in 3 of 4 processes ' "$ERR" ||
		fail "not 3 of 4 processes patched: $(grep patched "$ERR" | tail -n 1)"
	grep -qxF "rewire: error: process $VPID: the agent did not answer within 2 s (HELLO); it keeps running the previous code" "$ERR" ||
		fail "the stopped master is not named: $(grep -m1 '^rewire: error' "$ERR")"
	kill -CONT "$VPID"
	prefork_patch 3 2 "the patch after the master runs again"
	grep '^rewire: patched ' "$ERR" | tail -n 1 | grep -q ' in 4 processes ' ||
		fail "the master was not patched once it ran again: $(grep patched "$ERR" | tail -n 1)"
	# A worker the master forks now runs the master's code.
	w=$(live_workers | head -n 1)
	kill -TERM "$w"
	sleep 0.5
	ask 9
	all_answer 3 "with a worker forked after the master ran again"
	! grep -q '^crash=' "$LOG" || fail "a worker crashed: $(grep -m1 '^crash=' "$LOG")"
	(($(grep -c '^rewire: error' "$ERR") == 1)) || fail "errors other than the one expected: $(grep '^rewire: error' "$ERR" | tr '\n' ' ')"
	assert_alive "after the master ran again"
	pass
}

# A worker stops itself as soon as it is forked, before rewire has asked it
# which patch it has: between patches nothing is at stake, nothing is said;
# the patch it misses names it once.
e2e_test t_prefork_stopped_new "processes: a worker stopped before rewire asked it anything is named only by the patch it misses" timeout=150
t_prefork_stopped_new() {
	local stopped w
	export REWIRE_REPLY_TIMEOUT_MS=2000
	prefork_start stopper
	wait_lines "$LOG" 5 10 || fail "the master did not fork its 3 workers: $(tail -n 3 "$LOG" | tr '\n' ' ')"
	stopped=$(sed -n 's/^worker=//p' "$LOG" | head -n 1)
	[[ $(awk '{print $3}' "/proc/$stopped/stat" 2>/dev/null) == T ]] ||
		fail "the first worker $stopped did not stop itself"
	# Longer than rewire's wait for its answer, had it been asked.
	! wait_err '^rewire: error' 1 4 || fail "said between patches: $(grep -m1 '^rewire: error' "$ERR")"
	ask 6
	all_answer 1 "before the edit"
	prefork_patch 2 1 "with a worker stopped since its fork"
	grep -q '^rewire: patched .* in 3 of 4 processes ' "$ERR" ||
		fail "not 3 of 4 processes patched: $(grep patched "$ERR" | tail -n 1)"
	grep -qxF "rewire: error: process $stopped: the agent did not answer within 2 s (HELLO); it keeps running the previous code" "$ERR" ||
		fail "the stopped worker $stopped is not named: $(grep -m1 '^rewire: error' "$ERR")"
	kill -CONT "$stopped"
	prefork_patch 3 2 "the patch after the worker runs"
	grep '^rewire: patched ' "$ERR" | tail -n 1 | grep -q ' in 4 processes ' ||
		fail "the worker stopped before was not patched: $(grep patched "$ERR" | tail -n 1)"
	for w in $(live_workers); do
		grep -q "^pid=$w v=3 " "$W/last" || fail "worker $w did not answer after the last patch"
	done
	(($(grep -c '^rewire: error' "$ERR") == 1)) || fail "errors other than the one expected: $(grep '^rewire: error' "$ERR" | tr '\n' ' ')"
	! grep -q '^crash=' "$LOG" || fail "a worker crashed: $(grep -m1 '^crash=' "$LOG")"
	assert_alive "after the worker ran"
	pass
}

# The master answers APPLY after the limit (a constructor of the new code
# sleeps in it, in the master only): the workers are patched all the same,
# and rewire asks the master which patch it has before the next one. The
# limit is 1 s, APPLY's 6 s.
e2e_test t_prefork_late "processes: an answer to APPLY that comes after the limit: the others are patched, the late one is asked again" once timeout=150
t_prefork_late() {
	local w
	export REWIRE_REPLY_TIMEOUT_MS=1000
	prefork_start steady
	ask 6
	all_answer 1 "before the edit"
	save prefork.c HANDLE "$(marked HANDLE "	return 2;")" \
		DECLS "$(marked DECLS '__attribute__((constructor)) static void slow_start(void) { if (getpid() == master) { sleep(8); printf("slept\n"); fflush(stdout); } }')"
	wait_err '^rewire: patched .*handle' 1 60 ||
		fail "a late answer held up the patch of the others: $(tail -n 2 "$ERR" | tr '\n' ' ')"
	grep -q '^rewire: patched .* in 3 of 4 processes ' "$ERR" ||
		fail "not 3 of 4 processes patched: $(grep patched "$ERR" | tail -n 1)"
	grep -qxF "rewire: error: process $VPID: the agent did not answer within 6 s (APPLY): the patch may have been applied; rewire asks it again before the next patch" "$ERR" ||
		fail "the master's late answer is not said: $(grep -m1 '^rewire: error' "$ERR")"
	ask 9
	all_answer 2 "the workers"
	wait_for "$LOG" '^slept$' 20 || fail "the new code's constructor did not end in the master"
	sleep 0.3
	save prefork.c HANDLE "$(marked HANDLE "	return 3;")" DECLS "$(marked DECLS '')"
	wait_err '^rewire: patched .*handle' 2 60 || fail "the next save was not patched: $(tail -n 2 "$ERR" | tr '\n' ' ')"
	grep '^rewire: patched ' "$ERR" | tail -n 1 | grep -q ' in 4 processes ' ||
		fail "the next patch did not reach every process: $(grep patched "$ERR" | tail -n 1)"
	ask 9
	all_answer 3 "after the next patch"
	# A worker forked now runs the master's code.
	w=$(live_workers | head -n 1)
	kill -TERM "$w"
	sleep 0.5
	ask 9
	all_answer 3 "with a worker forked after the late answer"
	! grep -q '^crash=' "$LOG" || fail "a process crashed: $(grep -m1 '^crash=' "$LOG")"
	(($(grep -c '^rewire: error' "$ERR") == 1)) || fail "more than one error: $(grep '^rewire: error' "$ERR" | tr '\n' ' ')"
	(($(grep -c '^slept$' "$LOG") == 1)) || fail "the constructor ran $(grep -c '^slept$' "$LOG") times in the master"
	assert_alive "after the late answer"
	pass
}

# superv_lines PID: the lines of the serving process PID.
superv_lines() {
	grep "^serve=$1 " "$LOG"
}

# superv_new PID V WHAT: within 5 s, the lines of process PID show
# value = V * tick, and every line after the first such one too.
superv_new() {
	local end=$((SECONDS + 5)) first
	until first=$(superv_lines "$1" | awk -v m="$2" '{split($2, t, "="); split($3, v, "=");
		if (v[2] == m * t[2]) { print NR; exit }}') && [[ -n $first ]]; do
		((SECONDS < end)) || fail "$3: process $1 never ran the patched code: $(superv_lines "$1" | tail -n 1)"
		sleep 0.1
	done
	sleep 0.2
	superv_lines "$1" | awk -v m="$2" -v from="$first" 'NR >= from {split($2, t, "="); split($3, v, "=");
		if (v[2] != m * t[2]) { print; exit 1 }}' >"$W/bad" || fail "$3: old code after new in process $1: $(cat "$W/bad")"
}

# superv_child N: the pid of the supervisor's N-th child, once it runs;
# status 1 when it does not within 5 s (callers fail: not in $(...)).
superv_child() {
	local end=$((SECONDS + 5)) c
	until c=$(sed -n 's/^child=//p' "$LOG" | sed -n "${1}p") && [[ -n $c ]] && superv_lines "$c" | grep -q .; do
		((SECONDS < end)) || return 1
		sleep 0.05
	done
	echo "$c"
}

e2e_test t_revert_workers "processes: rewire revert takes a patch back in every worker, and in one forked after"
t_revert_workers() {
	local out=$W/revert.out rc=0 w
	prefork_start steady
	prefork_patch 2 1 "the first patch"
	prefork_patch 3 2 "the second patch"
	# Named by a worker: the session takes it back in the whole program.
	w=$(live_workers | head -n 1)
	"$REWIRE" revert "$w" >"$out" 2>&1 || rc=$?
	((rc == 0)) || fail "rewire revert $w exited $rc: $(cat "$out")"
	grep -q "^rewire: taken back: .*handle.* (prefork.c) in 4 processes; the program runs its code as of patch 1;" "$out" ||
		fail "rewire revert said: $(cat "$out")"
	ask 12
	all_answer 2 "after the revert"
	# A worker forked now has the master's code: patch 1's.
	kill -TERM "$w"
	sleep 0.3
	ask 12
	all_answer 2 "with a worker forked after the revert"
	prefork_patch 4 3 "the save after the revert"
	no_crash
	assert_alive "after the revert"
	pass
}

e2e_test t_follow "processes: a child that runs the program again (a supervisor's restart) gets every patch"
t_follow() {
	local c1 c2
	build_project superv superv.c
	start_session superv
	c1=$(superv_child 1) || fail "the supervisor's child 1 did not run within 5 s"
	save superv.c BODY "$(marked BODY '	return tick * 3;')"
	wait_err '^rewire: patched .*compute' 1 60 || fail "not patched: $(tail -n 2 "$ERR" | tr '\n' ' ')"
	grep -q '^rewire: patched .* in 2 processes ' "$ERR" ||
		fail "not the supervisor and its child: $(grep patched "$ERR" | tail -n 1)"
	superv_new "$c1" 3 "the child running when the patch came"
	# The child ends; the supervisor execs the program again.
	kill "$c1"
	c2=$(superv_child 2) || fail "the supervisor's child 2 did not run within 5 s"
	superv_new "$c2" 3 "the child started again after the patch"
	# It runs no code of the program before it has the patch: from its
	# first line on, the new code.
	superv_lines "$c2" | awk '{split($2, t, "="); split($3, v, "="); if (v[2] != 3 * t[2]) { print; exit 1 }}' \
		>"$W/bad" || fail "the child started again ran the old code first: $(cat "$W/bad")"
	grep -q librewire.so "/proc/$c2/maps" || fail "the new child has no agent"
	save superv.c BODY "$(marked BODY '	return tick * 4;')"
	wait_err '^rewire: patched .*compute' 2 60 || fail "the second save was not patched"
	superv_new "$c2" 4 "the new child, at the next patch"
	superv_lines "$c2" | awk '{split($4, c, "="); if (c[2] != NR) { print; exit 1 }}' >"$W/bad" ||
		fail "the new child's count went wrong: $(cat "$W/bad")"
	assert_alive "after the restart"
	pass
}

e2e_test t_follow_slow "processes: a child that runs the program again answers late at first: asked again, it runs"
t_follow_slow() {
	local c1
	build_project superv superv.c
	"$CC" -shared -fPIC -O2 -o "$W/slowhello.so" "$VICTIMS/slowhello.c" -ldl ||
		fail "cannot build slowhello.so"
	# Its agent's first answer comes 2 s late; rewire waits 1 s for one.
	export REWIRE_REPLY_TIMEOUT_MS=1000 LD_PRELOAD=$W/slowhello.so
	start_session superv
	unset LD_PRELOAD
	c1=$(superv_child 1) || fail "the child waiting for rewire never ran (no save came)"
	grep -q "^rewire: error: process $c1: the agent did not answer within 1 s (HELLO); it waits for rewire before it runs: rewire asks it again$" "$ERR" ||
		fail "the late answer is not said: $(grep error "$ERR" | tr '\n' ' ')"
	(($(grep -c '^rewire: error' "$ERR") == 1)) || fail "more than one error: $(grep '^rewire: error' "$ERR" | tr '\n' ' ')"
	save superv.c BODY "$(marked BODY '	return tick * 3;')"
	wait_err '^rewire: patched .*compute' 1 60 || fail "not patched: $(tail -n 2 "$ERR" | tr '\n' ' ')"
	grep -q '^rewire: patched .* in 2 processes ' "$ERR" ||
		fail "not the supervisor and its child: $(grep patched "$ERR" | tail -n 1)"
	superv_new "$c1" 3 "the child that answered late"
	assert_alive "after the late child"
	pass
}

e2e_test t_no_follow "processes: --no-follow leaves a child that runs the program again alone"
t_no_follow() {
	local c1 c2
	build_project superv superv.c
	start_session superv --no-follow
	c1=$(superv_child 1) || fail "the supervisor's child 1 did not run within 5 s"
	save superv.c BODY "$(marked BODY '	return tick * 3;')"
	wait_err '^rewire: patched .*compute' 1 60 || fail "not patched: $(tail -n 2 "$ERR" | tr '\n' ' ')"
	kill "$c1"
	c2=$(superv_child 2) || fail "the supervisor's child 2 did not run within 5 s"
	sleep 0.5
	superv_lines "$c2" | awk '{split($2, t, "="); split($3, v, "="); if (v[2] != 2 * t[2]) { print; exit 1 }}' \
		>"$W/bad" || fail "the new child runs the patched code: $(cat "$W/bad")"
	grep -q librewire.so "/proc/$c2/maps" && fail "the new child has rewire's agent"
	assert_alive "after the restart"
	pass
}

e2e_test t_follow_wrapper "processes: a wrapper script that execs the program (rewire run --exe)"
t_follow_wrapper() {
	build_project superv superv.c
	printf '#!/bin/sh\nexec ./build/superv serve alone\n' >"$P/wrap.sh"
	chmod +x "$P/wrap.sh"
	(cd "$P" && "$REWIRE" run -- ./wrap.sh) >"$W/plain.log" 2>&1 && fail "a script without --exe was run"
	grep -q 'is not an executable file but a script: name the program it runs with --exe' "$W/plain.log" ||
		fail "the script without --exe is not explained: $(cat "$W/plain.log")"
	LOG=$W/wrap.log ERR=$W/wrap.err
	(cd "$P" && exec "$REWIRE" run --exe build/superv -- ./wrap.sh) >"$LOG" 2>"$ERR" &
	RUN_PID=$!
	rw_track "$RUN_PID"
	wait_for "$LOG" '^pid=[0-9]+$' 10 || fail "the program did not start"
	VPID=$(grep -m1 -E '^pid=' "$LOG" | cut -d= -f2)
	rw_track "$VPID"
	VSTART=$(proc_start "$VPID")
	[[ $(awk '{print $4}' "/proc/$VPID/stat") == "$RUN_PID" ]] || fail "the program is not the process rewire started"
	wait_for "$ERR" '^rewire: watching 1 source of .*/build/superv ' 10 || fail "rewire does not watch superv.c"
	sleep 0.3
	save superv.c BODY "$(marked BODY '	return tick * 5;')"
	wait_err '^rewire: patched .*compute' 1 60 || fail "not patched: $(tail -n 2 "$ERR" | tr '\n' ' ')"
	superv_new "$VPID" 5 "the program the script exec'd"
	assert_alive "after the patch"
	pass
}
