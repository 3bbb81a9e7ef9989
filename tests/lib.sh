# tests/lib.sh: helpers for rewire's end-to-end tests.
#
# Sourced by tests/run.sh (which only reads the test registry) and executed
# by it once per test and config:
#
#   bash tests/lib.sh --job FUNCTION
#
# with the environment set by run.sh: RW_CC, RW_OPT, RW_PIE (pie|no-pie),
# RW_TEST_NAME, RW_WORK (an empty private directory), RW_TESTS, REWIRE.
# The job runs the test function, which ends with `pass` or `fail WHY`; each
# prints one line "PASS <name>" / "FAIL <name>: <why>". Every process the job
# starts is killed when it exits, however it exits.
#
# A test function typically does:
#
#   build_victim body                          # victims/body.c -> $W/base/body
#   variant body v2 BODY 'return tick * 3;'    # edited copy -> $OBJ ($W/v2/body.o)
#   start_victim body                          # rewire run; sets VPID, LOG
#   from=$(lines "$LOG")
#   apply_ok "$OBJ"                            # rewire apply --pid $VPID ...
#   check_after "$from" 'v["value"] == v["tick"] * 3' "after the patch"
#   pass
#
# (Build every variant before start_victim: a compile error then leaves no
# process behind, and a build-only pass can check all configs compile.)

RW_TESTS=${RW_TESTS:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}
REWIRE=${REWIRE:-$(dirname "$RW_TESTS")/build/rewire}
VICTIMS=$RW_TESTS/victims

# ---------------------------------------------------------------- registry

# e2e_test FUNCTION TITLE [once] [heavy] [timeout=SECONDS]: declare a test.
# "once": run in one config only, not in each of the 8. "heavy": keeps the
# CPUs busy; run.sh never runs two heavy tests at once. Timeout: 60 s.
RW_REG_FUNCS=() RW_REG_TITLES=() RW_REG_ONCE=() RW_REG_HEAVY=() RW_REG_TIMEOUTS=()
e2e_test() {
	local once=0 heavy=0 timeout=60 opt
	for opt in "${@:3}"; do
		case $opt in
		once) once=1 ;;
		heavy) heavy=1 ;;
		timeout=*) timeout=${opt#timeout=} ;;
		*) echo "e2e_test $1: unknown option $opt" >&2; exit 2 ;;
		esac
	done
	RW_REG_FUNCS+=("$1") RW_REG_TITLES+=("$2") RW_REG_ONCE+=("$once")
	RW_REG_HEAVY+=("$heavy") RW_REG_TIMEOUTS+=("$timeout")
}

# ------------------------------------------------------------------ config

# Compile flags of the victims and of the patch objects, from the config.
rw_config() {
	CC=$RW_CC
	case $RW_CC in
	gcc) CXX=g++ ;;
	clang) CXX=clang++ ;;
	*) CXX=c++ ;;
	esac
	case $RW_PIE in
	pie) PIC_FLAG=-fPIE LINK_FLAG=-pie ;;
	no-pie) PIC_FLAG=-fno-pie LINK_FLAG=-no-pie ;;
	*) echo "bad RW_PIE=$RW_PIE" >&2; exit 2 ;;
	esac
	# Every translation unit (victim and patch) is compiled with exactly these.
	CFLAGS=(-g -pthread "$RW_OPT" "$PIC_FLAG")
	LDFLAGS=(-g -pthread "$RW_OPT" "$LINK_FLAG")
	W=$RW_WORK
}

# ----------------------------------------------------------------- results

RW_VERDICT=

pass() {
	RW_VERDICT=PASS
	echo "PASS $RW_TEST_NAME"
	exit 0
}

# fail WHY: print the FAIL line and what helps to see why, then end the job.
# Never call it inside $(...): it would only end the subshell.
fail() {
	local why="$*"
	RW_VERDICT=FAIL
	if [[ -n ${VPID:-} && $why != *"no longer running"* ]] && ! victim_alive; then
		why+=" (the victim is no longer running)"
	fi
	echo "FAIL $RW_TEST_NAME: $why"
	rw_diagnostics
	exit 1
}

# Indented, so run.sh never counts these lines as results. A longer file
# shows its first lines too: what happened at start explains many a
# failure later.
rw_show() {	# TITLE FILE [LINES]
	local n=${3:-12} total
	[[ -s $2 ]] || return 0
	total=$(wc -l <"$2")
	if ((total <= n + 6)); then
		echo "    --- $1 ($2)"
		cut -c1-200 "$2" | sed 's/^/    | /'
		return 0
	fi
	echo "    --- $1 (first 6 and last $n of $total lines of $2)"
	{ head -n 6 "$2"; echo "[...]"; tail -n "$n" "$2"; } | cut -c1-200 | sed 's/^/    | /'
}

rw_diagnostics() {
	if [[ -n ${VPID:-} ]]; then
		if victim_alive; then
			echo "    victim pid $VPID: alive"
		else
			echo "    victim pid $VPID: NOT running"
		fi
	fi
	if [[ -n ${RUN_PID:-} ]] && ! run_alive; then
		wait "$RUN_PID" 2>/dev/null
		echo "    rewire run exited with status $?"
	fi
	[[ -n ${LOG:-} ]] && rw_show "victim stdout" "$LOG" 12
	[[ -n ${LOG:-} ]] && rw_show "rewire run stderr" "${LOG%.log}.err" 18
	[[ -n ${APPLY_OUT:-} ]] && rw_show "last rewire apply (exit $APPLY_RC)" "$APPLY_OUT" 12
	[[ -n ${REWIRE_TRACE:-} ]] && rw_show "rewire's dealings with the processes" "$REWIRE_TRACE" 24
	return 0
}

# ------------------------------------------------------- process tracking

RW_PIDS=() RW_STARTS=()

# With the start time: a process that ended (a victim that crashed) leaves
# its pid to be reused, by anything, within seconds on a busy machine; only
# the process tracked is ever killed.
rw_track() {
	local start
	start=$(proc_start "$1")
	RW_PIDS+=("$1") RW_STARTS+=("$start")
	# Also for run.sh, which kills what a job leaves behind (a job killed by
	# -9 runs no trap).
	[[ -n ${RW_WORK:-} ]] && echo "$1 $start" >>"$RW_WORK/pids"
}

rw_tracked() {	# INDEX: the process is still the one tracked
	[[ -n ${RW_STARTS[$1]} && $(proc_start "${RW_PIDS[$1]}") == "${RW_STARTS[$1]}" ]]
}

# rw_descendants PID...: the processes forked from them, at any depth (a
# server's workers, a supervisor's children), one per line.
rw_descendants() {
	local p kids
	for p in "$@"; do
		kids=$(pgrep -P "$p" | tr '\n' ' ')
		[[ -n $kids ]] || continue
		echo "$kids" | tr ' ' '\n' | grep .
		# shellcheck disable=SC2086
		rw_descendants $kids
	done
}

rw_cleanup() {
	local i tree
	trap - EXIT INT TERM
	# Before anything ends: an orphan's parent is no longer known.
	tree=$(for i in "${!RW_PIDS[@]}"; do rw_tracked "$i" && rw_descendants "${RW_PIDS[i]}"; done)
	for i in "${!RW_PIDS[@]}"; do
		rw_tracked "$i" && kill -TERM "${RW_PIDS[i]}" 2>/dev/null
	done
	# shellcheck disable=SC2086
	[[ -n $tree ]] && kill -KILL $tree 2>/dev/null
	for i in "${!RW_PIDS[@]}"; do
		for _ in 1 2 3 4 5 6 7 8 9 10; do
			case $(proc_state "${RW_PIDS[i]}") in "" | Z | X) break ;; esac
			sleep 0.05
		done
		case $(proc_state "${RW_PIDS[i]}") in
		"" | Z | X) ;;
		*) rw_tracked "$i" && kill -KILL "${RW_PIDS[i]}" 2>/dev/null ;;
		esac
	done
	# Forked after that snapshot (a server that forks workers until it
	# ends): the rest of the job's process group, which run.sh's timeout
	# made (only then: run by hand, the group may be the user's).
	local pg p
	pg=$(ps -o pgid= -p $$ | tr -d ' ')
	if [[ $pg == "$PPID" ]]; then
		for p in $(pgrep -g "$pg"); do
			[[ $p == "$$" || $p == "$PPID" ]] || kill -KILL "$p" 2>/dev/null
		done
	fi
	return 0
}

# --------------------------------------------------------------- building

# compile_in DIR NAME: DIR/NAME.c -> DIR/NAME.o with the config's flags.
# Compiled from inside DIR under the same file name as the victim, so the
# object's STT_FILE symbol and DW_AT_name match those of the running program.
# A NAME.cpp (C++ victim) is compiled with the config's C++ compiler.
compile_in() {
	local dir=$1 name=$2 cc=$CC src=$2.c
	[[ -f $dir/$name.cpp ]] && cc=$CXX src=$name.cpp
	(cd "$dir" && "$cc" "${CFLAGS[@]}" -c "$src" -o "$name.o") >"$dir/cc.log" 2>&1 ||
		{ APPLY_OUT=$dir/cc.log APPLY_RC=-; fail "cannot compile $dir/$src ($cc ${CFLAGS[*]})"; }
}

# victim_src NAME: victims/NAME.c, or victims/NAME.cpp for a C++ victim.
victim_src() {
	if [[ -f $VICTIMS/$1.cpp ]]; then echo "$VICTIMS/$1.cpp"; else echo "$VICTIMS/$1.c"; fi
}

# build_victim NAME: victims/NAME.c -> $W/base/NAME (and $W/base/NAME.o).
build_victim() {
	local name=$1 src ld=$CC
	src=$(victim_src "$name")
	[[ $src == *.cpp ]] && ld=$CXX
	mkdir -p "$W/base"
	cp "$src" "$W/base/"
	compile_in "$W/base" "$name"
	(cd "$W/base" && "$ld" "${LDFLAGS[@]}" "$name.o" -o "$name" ${VICTIM_LIBS:-}) \
		>"$W/base/ld.log" 2>&1 ||
		{ APPLY_OUT=$W/base/ld.log APPLY_RC=-; fail "cannot link victim $name"; }
	VICTIM_BIN=$W/base/$name
}

# edit_source SRC DST MARKER TEXT [MARKER TEXT...]: copy SRC to DST with each
# line holding the comment /* @MARKER */ replaced, whole, by TEXT (which may
# hold several lines). Every marker must be found.
edit_source() {
	local src=$1 dst=$2 i=0
	shift 2
	local -a env=()
	while (($# >= 2)); do
		grep -q "/\* @$1 \*/" "$src" || fail "edit_source: no marker @$1 in $src"
		env+=("RW_MARK_$i=/* @$1 */" "RW_TEXT_$i=$2")
		i=$((i + 1))
		shift 2
	done
	env "${env[@]}" RW_MARKS=$i awk '
	{
		for (i = 0; i < ENVIRON["RW_MARKS"]; i++)
			if (index($0, ENVIRON["RW_MARK_" i])) { print ENVIRON["RW_TEXT_" i]; next }
		print
	}' "$src" >"$dst"
}

# variant NAME VARIANT MARKER TEXT...: an edited copy of victims/NAME.c in
# $W/VARIANT/NAME.c, compiled to $W/VARIANT/NAME.o (path also in $OBJ).
variant() {
	local name=$1 v=$2 src
	shift 2
	src=$(victim_src "$name")
	mkdir -p "$W/$v"
	edit_source "$src" "$W/$v/${src##*/}" "$@"
	compile_in "$W/$v" "$name"
	OBJ=$W/$v/$name.o
}

# ------------------------------------------------------------ the victim

# start_victim NAME [ARGS...]: run $W/base/NAME under `rewire run`, stdout to
# $LOG, stderr to ${LOG%.log}.err; wait for its "pid=P" line. Sets RUN_PID
# (the rewire process), VPID (the program), VSTART (its start time).
start_victim() {
	local name=$1
	shift
	[[ -x $REWIRE ]] || fail "$REWIRE not found or not executable (run make)"
	LOG=$W/$name.log
	"$REWIRE" run -- "$W/base/$name" "$@" >"$LOG" 2>"${LOG%.log}.err" &
	RUN_PID=$!
	rw_track "$RUN_PID"
	wait_for "$LOG" '^pid=[0-9]+$' 10 || fail "victim $name printed no pid=P line within 10 s"
	VPID=$(grep -m1 -E '^pid=[0-9]+$' "$LOG" | cut -d= -f2)
	rw_track "$VPID"
	VSTART=$(proc_start "$VPID")
	# The program is the child of `rewire run` (or rewire run itself, had it
	# exec'd the program): never some other process.
	local ppid
	ppid=$(sed 's/^.*) //' "/proc/$VPID/stat" 2>/dev/null | awk '{print $2}')
	[[ $ppid == "$RUN_PID" || $VPID == "$RUN_PID" ]] ||
		fail "victim pid $VPID is not a child of rewire run ($RUN_PID) but of ${ppid:-?}"
	# Let the agent come up (rewire apply retries connecting for ~2 s anyway).
	sleep 0.2
}

# proc_start PID: the process's start time (field 22 of /proc/PID/stat).
proc_start() {
	sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | awk '{print $20}'
}

# victim_alive: the same process (pid and start time) still runs, not a zombie.
victim_alive() {
	local st
	st=$(sed 's/^.*) //' "/proc/$VPID/stat" 2>/dev/null) || return 1
	[[ -n $st ]] || return 1
	set -- $st
	[[ $1 != Z && $1 != X && ${20} == "$VSTART" ]]
}

# assert_alive [WHEN]: fail unless the victim still runs.
assert_alive() {
	victim_alive || fail "victim (pid $VPID) is no longer running${1:+ $1}"
}

# lines FILE: the number of complete lines in FILE.
lines() {
	local n
	n=$(wc -l <"$1" 2>/dev/null) || n=0
	echo "$n"
}

# now_us: microseconds since the epoch.
now_us() { echo "${EPOCHREALTIME/./}"; }

# proc_state PID: the process's state letter (R, S, Z...), empty if gone.
proc_state() {
	sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | awk '{print $1}'
}

# run_alive: `rewire run` (our child) has not exited.
run_alive() {
	local st
	st=$(proc_state "$RUN_PID")
	[[ -n $st && $st != Z && $st != X ]]
}

# wait_for FILE REGEX TIMEOUT [FROM]: wait until a complete line after line
# FROM (default 0) of FILE matches the extended REGEX. Returns 1 on timeout
# (whole seconds), or as soon as the victim has died.
wait_for() {
	local file=$1 re=$2 from=${4:-0} end
	end=$(($(now_us) + ${3%.*} * 1000000))
	while :; do
		after "$file" "$from" | grep -qE -- "$re" && return 0
		if [[ -n ${VPID:-} ]]; then
			if ! victim_alive; then	# it may have printed it just before it ended
				after "$file" "$from" | grep -qE -- "$re"
				return
			fi
		elif [[ -n ${RUN_PID:-} ]] && ! run_alive; then
			after "$file" "$from" | grep -qE -- "$re"
			return
		fi
		(($(now_us) < end)) || return 1
		sleep 0.02
	done
}

# wait_lines FILE N TIMEOUT [FROM]: wait until FILE has N complete lines
# after line FROM.
wait_lines() {
	local file=$1 n=$2 from=${4:-0} end
	end=$(($(now_us) + ${3%.*} * 1000000))
	while (($(lines "$file") - from < n)); do
		[[ -n ${VPID:-} ]] && ! victim_alive && return 1
		(($(now_us) < end)) || return 1
		sleep 0.02
	done
}

# after FILE FROM: the complete lines of FILE after line FROM (a line still
# being written is left out).
after() {
	local n
	n=$(lines "$1")
	((n > $2)) || return 0
	tail -n +"$(($2 + 1))" "$1" 2>/dev/null | head -n "$((n - $2))"
}

# field LINE KEY: the value of KEY=VALUE in LINE (words separated by spaces).
field() {
	local w
	for w in $1; do
		[[ $w == "$2="* ]] && { echo "${w#*=}"; return 0; }
	done
	return 1
}

# ------------------------------------------------------------ rewire apply

# apply OBJ...: rewire apply --pid $VPID OBJ...; sets APPLY_RC and APPLY_OUT
# (a file with its stdout and stderr). Never fails by itself.
APPLY_N=0
apply() {
	APPLY_N=$((APPLY_N + 1))
	APPLY_OUT=$W/apply.$APPLY_N.out
	timeout --foreground -k 2 30 "$REWIRE" apply --pid "$VPID" "$@" >"$APPLY_OUT" 2>&1
	APPLY_RC=$?
	return 0
}

# apply_ok OBJ...: apply, and fail unless it exits 0 with "rewire: patched".
apply_ok() {
	apply "$@"
	((APPLY_RC == 0)) || fail "rewire apply ${*##*/} exited $APPLY_RC: $(apply_msg)"
	grep -q '^rewire: patched' "$APPLY_OUT" ||
		fail "rewire apply exited 0 without a 'rewire: patched' line"
}

# expect_error RC WORD ARGS...: run `rewire ARGS...`, expect exit RC and a
# "rewire: error:" line holding WORD (unless WORD is empty).
expect_error() {
	local rc=$1 word=$2
	shift 2
	APPLY_N=$((APPLY_N + 1))
	APPLY_OUT=$W/apply.$APPLY_N.out
	timeout --foreground -k 2 30 "$REWIRE" "$@" >"$APPLY_OUT" 2>&1
	APPLY_RC=$?
	local cmd="rewire ${*##*/}"
	((APPLY_RC == rc)) || fail "$cmd exited $APPLY_RC, expected $rc: $(apply_msg)"
	grep -q '^rewire: error: ' "$APPLY_OUT" || fail "$cmd printed no 'rewire: error:' line"
	[[ -z $word ]] || grep '^rewire: error: ' "$APPLY_OUT" | grep -qF -- "$word" ||
		fail "$cmd: the error does not name '$word': $(apply_msg)"
}

apply_msg() {
	head -n 3 "$APPLY_OUT" 2>/dev/null | tr '\n' ' ' | cut -c1-300
}

# ------------------------------------------------- checking the output
#
# Victims print lines of words KEY=VALUE. A COND is an awk expression over
# v["KEY"] (numbers are numbers) and `pid` (the victim's pid), e.g.
#   'v["value"] == v["tick"] * 3 && v["pid"] == pid'

# kv_lines FROM COND [INVERT]: the lines after line FROM of $LOG for which
# COND holds (with INVERT=1: does not hold), as "LINENO: line".
kv_lines() {
	after "$LOG" "$1" | awk -v pid="${VPID:-0}" -v from="$1" -v inv="${3:-0}" '
	{
		delete v
		for (i = 1; i <= NF; i++) {
			k = $i; sub(/=.*/, "", k)
			x = $i; sub(/^[^=]*=/, "", x)
			if (x ~ /^-?[0-9]+$/) x += 0
			v[k] = x
		}
		ok = ('"$2"') ? 1 : 0
		if (ok != inv) print NR + from ": " $0
	}'
}

# wait_cond FROM COND TIMEOUT: wait for a line after FROM where COND holds.
wait_cond() {
	local end
	end=$(($(now_us) + $3 * 1000000))
	while :; do
		[[ -n $(kv_lines "$1" "$2" | head -n 1) ]] && return 0
		victim_alive || return 1
		(($(now_us) < end)) || return 1
		sleep 0.02
	done
}

# check_all FROM COND WHAT: fail unless COND holds on every line after FROM.
check_all() {
	local bad
	bad=$(kv_lines "$1" "$2" 1 | head -n 1)
	[[ -z $bad ]] || fail "$3: unexpected line $bad"
}

# check_after FROM COND WHAT [N]: wait (5 s) for a line after line FROM where
# COND holds, then for N (default 5) more lines; fail unless COND holds on
# every line from that first one on: once the new code ran, no old output.
# Sets FIRST_NEW to the number of that first line.
check_after() {
	local from=$1 cond=$2 what=$3 n=${4:-5}
	wait_cond "$from" "$cond" 5 ||
		fail "$what: no line with ($cond) within 5 s after the patch"
	FIRST_NEW=$(kv_lines "$from" "$cond" | head -n 1 | cut -d: -f1)
	wait_lines "$LOG" "$n" 5 "$FIRST_NEW" || fail "$what: the program stopped printing"
	check_all "$((FIRST_NEW - 1))" "$cond" "$what"
}

# check_steps FROM KEY STEP [FILTER]: fail unless, on the lines after FROM
# (those where the awk condition FILTER holds), KEY grows by exactly STEP from
# one line to the next: a counter that went on counting across the patches.
check_steps() {
	local bad
	bad=$(kv_lines "$1" "${4:-1}" | awk -v key="$2" -v step="$3" '
	{
		line = $0; sub(/^[0-9]+: /, "")
		val = ""
		for (i = 1; i <= NF; i++) if (index($i, key "=") == 1) val = substr($i, length(key) + 2) + 0
		if (val == "") { print "no " key "= in line " line; exit }
		if (seen && val != prev + step) { print key " went from " prev " to " val " (expected +" step ") at line " line; exit }
		prev = val; seen = 1
	}')
	[[ -z $bad ]] || fail "$bad"
}

# last_line [COND]: the last complete line of $LOG (where COND holds).
last_line() {
	kv_lines 0 "${1:-1}" | tail -n 1 | sed 's/^[0-9]*: //'
}

# ------------------------------------------------- the run session (watch)
#
# A project: sources in $W/proj, a compile_commands.json beside them as a
# build system writes it, objects in $W/proj/build, the program linked from
# them. `rewire run` started in $W/proj finds the database, watches the
# sources and patches what is saved.

# gdb_batch OUT COMMANDS...: attach gdb to $VPID, run the commands, detach.
gdb_batch() {
	local out=$1 args=() c
	shift
	command -v gdb >/dev/null || fail "gdb is not installed"
	for c in "handle SIG63 nostop noprint pass" "handle SIG64 nostop noprint pass" "$@"; do
		args+=(-ex "$c")
	done
	timeout 60 gdb -p "$VPID" -batch -nx "${args[@]}" >"$out" 2>&1
}

# gdb_value OUT N: the number gdb printed as $N in OUT (gdb_batch's).
gdb_value() {
	sed -n "s/^\\\$$2 = \\([0-9][0-9]*\\)\$/\\1/p" "$1"
}

# build_project PROGRAM FILE...: copy victims/FILE (.c, .cpp, .h) into
# $W/proj, compile each .c/.cpp with the config's flags, link PROGRAM.
build_project() {
	local prog=$1 f cc entries=() objs=()
	shift
	P=$W/proj
	mkdir -p "$P/build"
	for f in "$@"; do cp "$VICTIMS/$f" "$P/"; done
	local ld=$CC
	for f in "$@"; do
		case $f in *.c) cc=$CC ;; *.cpp) cc=$CXX ld=$CXX ;; *) continue ;; esac
		local o=build/${f%.*}.o args
		args=$(printf '"%s", ' "$cc" "${CFLAGS[@]}" -c -o "$o" "$f")
		entries+=("{\"directory\": \"$P\", \"file\": \"$f\", \"output\": \"$P/$o\", \"arguments\": [${args%, }]}")
		(cd "$P" && "$cc" "${CFLAGS[@]}" -c -o "$o" "$f") >"$P/cc.log" 2>&1 ||
			{ APPLY_OUT=$P/cc.log APPLY_RC=-; fail "cannot compile $f"; }
		objs+=("$o")
	done
	(IFS=,; echo "[${entries[*]}]") >"$P/compile_commands.json"
	(cd "$P" && "$ld" "${LDFLAGS[@]}" "${objs[@]}" -o "build/$prog") >"$P/ld.log" 2>&1 ||
		{ APPLY_OUT=$P/ld.log APPLY_RC=-; fail "cannot link $prog"; }
}

# start_session PROGRAM [RUN OPTIONS...]: `rewire run [OPTIONS] --
# build/PROGRAM` in $W/proj; wait for the program's pid= line and for
# rewire to say it watches. ERR is rewire's (and the compiler's) stderr.
start_session() {
	local prog=$1
	shift
	LOG=$W/$prog.log ERR=$W/$prog.err
	(cd "$P" && exec "$REWIRE" run "$@" -- "build/$prog") >"$LOG" 2>"$ERR" &
	RUN_PID=$!
	rw_track "$RUN_PID"
	wait_for "$LOG" '^pid=[0-9]+$' 10 || fail "the program printed no pid=P line within 10 s"
	VPID=$(grep -m1 -E '^pid=[0-9]+$' "$LOG" | cut -d= -f2)
	rw_track "$VPID"
	VSTART=$(proc_start "$VPID")
	wait_for "$ERR" '^rewire: watching' 10 || fail "rewire does not say it watches the sources"
	sleep 0.3	# the baseline compiles start now
}

# save FILE MARKER TEXT...: edit $P/FILE at the markers, in place (as cat >).
save() {
	local f=$1
	shift
	edit_source "$P/$f" "$P/.$f.tmp" "$@"
	cat "$P/.$f.tmp" >"$P/$f"
	rm -f "$P/.$f.tmp"
}

# save_by_rename FILE MARKER TEXT...: as an editor saves: a new file
# written beside it, then renamed over it.
save_by_rename() {
	local f=$1
	shift
	edit_source "$P/$f" "$P/.$f.swp" "$@"
	mv "$P/.$f.swp" "$P/$f"
}

# Source files keep their markers across edits: a marker line is
# replaced by TEXT plus the marker comment, so the next edit finds it.
marked() {	# MARKER TEXT
	printf '%s /* @%s */' "$2" "$1"
}

# verdicts: rewire's lines that end a save (patched, no code changed,
# error), without the warnings that may follow them.
verdicts() {
	grep -E '^rewire: (patched|.*no code changed|error)' "$ERR"
}

# wait_err REGEX [N] [TIMEOUT]: wait until rewire's stderr has N lines
# matching REGEX (default 1).
wait_err() {
	local re=$1 n=${2:-1} end
	end=$(($(now_us) + ${3:-20} * 1000000))
	while (($(grep -cE -- "$re" "$ERR" 2>/dev/null) < n)); do
		# (no victim to watch when VPID is empty: it is expected to end)
		if [[ -n ${VPID:-} ]] && ! victim_alive; then
			(($(grep -cE -- "$re" "$ERR" 2>/dev/null) >= n))	# said just before the end?
			return
		fi
		(($(now_us) < end)) || return 1
		sleep 0.02
	done
}

# --------------------------------------------------------------------- job

rw_job_main() {
	[[ $1 == --job && -n ${2:-} ]] || { echo "usage: lib.sh --job FUNCTION" >&2; exit 2; }
	local f
	for f in "$RW_TESTS"/e2e/*.sh; do
		# shellcheck source=/dev/null
		. "$f"
	done
	rw_config
	trap rw_cleanup EXIT
	trap 'echo "    (job terminated)"; exit 143' TERM
	trap 'exit 130' INT
	cd "$W" || exit 2
	"$2"
	# A test function that returns has forgotten its verdict.
	fail "test function $2 returned without pass or fail"
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
	rw_job_main "$@"
fi
