#!/usr/bin/env bash
# tests/run.sh: run rewire's unit tests (build/unit/*) and end-to-end tests
# (tests/e2e/*.sh, each test in each of 8 configs: gcc|clang x -O0|-O2 x
# pie|no-pie). Builds nothing of rewire itself: `make test` does that.
#
#   tests/run.sh [-k PATTERN] [-j N] [--keep]
#
#   -k PATTERN  run only the tests whose name contains PATTERN, e.g.
#               -k 'body', -k 'clang -O2', -k 'unit'; given more than once,
#               every PATTERN: -k session: -k '[gcc -O2 pie]'
#   -j N        run N tests at once (default 2)
#   --keep      keep the temporary directory (victims, logs) and print it
#
# Environment: REWIRE (default build/rewire), RW_STRESS_PATCHES (default 200).
#
# When build/san/ holds a driver built with ASan and UBSan (`make san`),
# its unit tests and a few end-to-end tests (SAN_TESTS) run with it too,
# named "(sanitized)": a report of either sanitizer fails the test.
#
# Every result is a line "PASS <name>" or "FAIL <name>: <why>"; the FAIL
# lines are repeated at the end, and the last line is "N passed, N failed".
# Exit status 0 iff nothing failed and something passed.
set -u

RW_TESTS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
RW_ROOT=$(dirname "$RW_TESTS")
export RW_ROOT
REWIRE=${REWIRE:-$RW_ROOT/build/rewire}
export RW_TESTS REWIRE

PATTERNS=() JOBS=2 KEEP=0
while (($#)); do
	case $1 in
	-k) PATTERNS+=("${2?-k needs a pattern}"); shift 2 ;;
	-k*) PATTERNS+=("${1#-k}"); shift ;;
	-j) JOBS=${2?-j needs a number}; shift 2 ;;
	-j*) JOBS=${1#-j}; shift ;;
	--keep) KEEP=1; shift ;;
	-h | --help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "usage: tests/run.sh [-k PATTERN] [-j N] [--keep]" >&2; exit 2 ;;
	esac
done
[[ $JOBS =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: -j needs a positive number" >&2; exit 2; }

RW_TMP=$(mktemp -d "${TMPDIR:-/tmp}/rewire-tests.XXXXXX") || exit 2
export RW_TMP

# ------------------------------------------------------------ cleanup

declare -A JOB_PID=()	# job index -> pid of its `timeout` process
declare -A JOB_START=()	# job index -> $SECONDS when it started

kill_leftovers() {	# FILE: "pid starttime" lines
	local pid start now
	[[ -f $1 ]] || return 0
	while read -r pid start; do
		now=$(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | awk '{print $20}')
		[[ -n $now && $now == "$start" ]] && kill -KILL "$pid" 2>/dev/null
	done <"$1"
	return 0
}

cleanup() {
	local i
	trap - EXIT INT TERM
	for i in "${!JOB_PID[@]}"; do
		# timeout passes the signal on to the test and its process group.
		kill -TERM "${JOB_PID[$i]}" 2>/dev/null
	done
	for i in "${!JOB_PID[@]}"; do
		wait "${JOB_PID[$i]}" 2>/dev/null
	done
	for i in "$RW_TMP"/job*/pids; do
		kill_leftovers "$i"
	done
	if ((KEEP)); then
		echo "kept $RW_TMP"
	else
		rm -rf "$RW_TMP"
	fi
}
trap cleanup EXIT
trap 'echo "interrupted"; exit 130' INT TERM

# ------------------------------------------------------------ results

RESULTS=$RW_TMP/results	# every PASS/FAIL line, in the order printed

# report FILE: print a finished test's output and collect its results.
report() {
	cat "$1"
	grep -E '^(PASS|FAIL) ' "$1" >>"$RESULTS"
}

matches() {
	local p
	for p in "${PATTERNS[@]}"; do
		[[ $1 == *"$p"* ]] || return 1
	done
	return 0
}

: >"$RESULTS"

# ------------------------------------------------------------ unit tests

SAN=$RW_ROOT/build/san
# The sanitized ones: their reports go to files, and a report fails the test.
san_env() {	# DIR
	mkdir -p "$1"
	export ASAN_OPTIONS="log_path=$1/asan:detect_leaks=${SAN_LEAKS:-0}" \
		UBSAN_OPTIONS="log_path=$1/ubsan:print_stacktrace=1:halt_on_error=1"
}
san_reported() {	# DIR NAME: a FAIL line and the report, when there is one
	local f
	f=$(ls "$1"/asan.* "$1"/ubsan.* 2>/dev/null | head -n 1)
	[[ -n $f ]] || return 1
	echo "FAIL $2: the sanitizer reported ($(basename "$f")):"
	grep -m 30 . "$f" | sed 's/^/    | /'
}

# The unit tests built for aarch64 (make: build/aarch64/host/unit/, once
# scripts/deps.sh has unpacked the arm64 libraries) run under qemu-user:
# the driver's code on aarch64.
A64_UNIT=$RW_ROOT/build/aarch64/host/unit
if [[ ! -x $A64_UNIT/test_util ]] && matches "unit (aarch64)"; then
	echo "FAIL unit (aarch64): $A64_UNIT was not built (scripts/deps.sh, then make)" >"$RW_TMP/a64.unit"
	report "$RW_TMP/a64.unit"
fi

for bin in "$RW_ROOT"/build/unit/* "$SAN"/unit/* "$A64_UNIT"/*; do
	[[ -f $bin && -x $bin ]] || continue
	name=unit/$(basename "$bin")
	sandir= run=()
	[[ $bin == "$SAN"/* ]] && name="unit (sanitized)/$(basename "$bin")" sandir=$RW_TMP/san-$(basename "$bin")
	[[ $bin == "$A64_UNIT"/* ]] && name="unit (aarch64)/$(basename "$bin")" \
		run=(qemu-aarch64 -L /usr/aarch64-linux-gnu)
	out=$RW_TMP/$(basename "$bin")${sandir:+.san}${run:+.a64}.unit
	(
		cd "$RW_ROOT" || exit 2
		[[ -z $sandir ]] || SAN_LEAKS=1 san_env "$sandir"
		timeout -k 5 240 "${run[@]}" "$bin"
	) >"$out.raw" 2>&1
	rc=$?
	{
		# Its results, filtered by the pattern; its other output only when
		# it failed, indented so that it never counts.
		grep -E '^(PASS|FAIL) ' "$out.raw" | while IFS= read -r line; do
			[[ -z $sandir ]] || line="${line%% *} (sanitized) ${line#* }"
			[[ -z ${run[*]} ]] || line="${line%% *} (aarch64) ${line#* }"
			matches "$name: ${line#* }" && echo "$line"
		done
		if ((rc != 0)) && ! grep -qE '^FAIL ' "$out.raw" && matches "$name"; then
			if ((rc == 124 || rc == 137)); then
				echo "FAIL $name: timed out after 240 s"
			else
				echo "FAIL $name: exited with status $rc"
			fi
		fi
		if ((rc != 0)) && matches "$name"; then
			grep -vE '^(PASS|FAIL) ' "$out.raw" | tail -n 20 | sed 's/^/    | /'
		fi
		[[ -n $sandir ]] && matches "$name" && san_reported "$sandir" "$name"
	} >"$out"
	report "$out"
done

# ------------------------------------------------------------ e2e tests

# The registry: e2e files only declare tests and define functions.
# shellcheck source=tests/lib.sh
. "$RW_TESTS/lib.sh"
for f in "$RW_TESTS"/e2e/*.sh; do
	# shellcheck source=/dev/null
	. "$f"
done

CONFIGS=()
for cc in gcc clang; do
	for opt in -O0 -O2; do
		for pie in pie no-pie; do
			CONFIGS+=("$cc $opt $pie")
		done
	done
done
ONCE_CONFIG="gcc -O2 pie"
# Run again with the sanitized driver, in ONCE_CONFIG: the session, the
# diff, the linker, every process, attach, Rust, refusals, bad input.
SAN_TESTS=(t_body t_newcode t_s_body t_s_header t_s_types t_s_restart t_prefork t_attach_sleep
	t_consts t_types t_badinput t_rust)

# The jobs: one per test and config; the heavy ones first, so that they
# spread over the whole run (never two at once) while light ones fill in.
J_NAME=() J_FUNC=() J_CONF=() J_TIMEOUT=() J_HEAVY=() J_SAN=()
for i in $(for r in "${!RW_REG_FUNCS[@]}"; do echo "$((1 - RW_REG_HEAVY[r])) $r"; done | sort -n -s -k1,1 | cut -d' ' -f2); do
	for conf in "${CONFIGS[@]}"; do
		((RW_REG_ONCE[i])) && [[ $conf != "$ONCE_CONFIG" ]] && continue
		name="e2e: ${RW_REG_TITLES[i]} [$conf]"
		matches "$name" || continue
		set -- $conf
		if ! command -v "$1" >/dev/null; then
			echo "SKIP $name: $1 not installed"
			continue
		fi
		J_NAME+=("$name") J_FUNC+=("${RW_REG_FUNCS[i]}") J_CONF+=("$conf")
		J_TIMEOUT+=("${RW_REG_TIMEOUTS[i]}") J_HEAVY+=("${RW_REG_HEAVY[i]}") J_SAN+=(0)
	done
done
if [[ -x $SAN/rewire ]]; then
	for i in "${!RW_REG_FUNCS[@]}"; do
		[[ " ${SAN_TESTS[*]} " == *" ${RW_REG_FUNCS[i]} "* ]] || continue
		name="e2e (sanitized): ${RW_REG_TITLES[i]} [$ONCE_CONFIG]"
		matches "$name" || continue
		J_NAME+=("$name") J_FUNC+=("${RW_REG_FUNCS[i]}") J_CONF+=("$ONCE_CONFIG")
		J_TIMEOUT+=("$((2 * RW_REG_TIMEOUTS[i]))") J_HEAVY+=("${RW_REG_HEAVY[i]}") J_SAN+=(1)
	done
fi

if ((${#J_NAME[@]})) && [[ ! -x $REWIRE ]]; then
	echo "FAIL e2e: setup: $REWIRE not found (run make): ${#J_NAME[@]} e2e tests not run" |
		tee -a "$RESULTS"
	J_NAME=()
fi

start_job() {	# INDEX
	local i=$1 dir=$RW_TMP/job$1
	set -- ${J_CONF[i]}
	mkdir -p "$dir/work"
	(
		export RW_CC=$1 RW_OPT=$2 RW_PIE=$3 RW_TEST_NAME=${J_NAME[i]} RW_WORK=$dir/work
		# How each session dealt with the program's processes: shown when it fails.
		export REWIRE_TRACE=$dir/work/rewire.trace
		if ((J_SAN[i])); then
			export REWIRE=$SAN/rewire
			san_env "$dir/san"
		fi
		timeout -k 5 "${J_TIMEOUT[i]}" bash "$RW_TESTS/lib.sh" --job "${J_FUNC[i]}" \
			</dev/null >"$dir/out" 2>&1
		echo $? >"$dir/rc"
	) &
	JOB_PID[$i]=$!
	JOB_START[$i]=$SECONDS
}

finish_job() {	# INDEX
	local i=$1 dir=$RW_TMP/job$1 rc
	wait "${JOB_PID[$i]}" 2>/dev/null
	unset 'JOB_PID[$i]'
	rc=$(cat "$dir/rc")
	# A job's verdict is its exit status; its FAIL line says why.
	if ((rc != 0)) && ! grep -qE '^FAIL ' "$dir/out"; then
		sed -i -E '/^PASS /d' "$dir/out"
		# Whatever a killed job's processes printed, indented: never a result.
		sed -i -E '/^(PASS|FAIL|    )/!s/^/    /' "$dir/out"
		if ((rc == 124 || rc == 137)); then
			echo "FAIL ${J_NAME[i]}: timed out after ${J_TIMEOUT[i]} s" >>"$dir/out"
		else
			echo "FAIL ${J_NAME[i]}: the test exited with status $rc" >>"$dir/out"
		fi
	elif ((rc == 0)) && ! grep -qE '^PASS ' "$dir/out"; then
		echo "FAIL ${J_NAME[i]}: the test printed no verdict" >>"$dir/out"
	fi
	if ((J_SAN[i])) && san_reported "$dir/san" "${J_NAME[i]}" >"$dir/san.out"; then
		# One verdict: the sanitizer's FAIL, or the test's own and the report.
		sed -i -E '/^PASS /d' "$dir/out"
		grep -qE '^FAIL ' "$dir/out" && sed -i -E '/^FAIL /d' "$dir/san.out"
		cat "$dir/san.out" >>"$dir/out"
	fi
	local took=$((SECONDS - JOB_START[$i]))
	((took < 20)) || echo "    (took $took s)" >>"$dir/out"
	report "$dir/out"
	kill_leftovers "$dir/work/pids"
	((KEEP)) || rm -rf "$dir/work"
}

# next_job: the index of the first job not started that may start now (no
# heavy job while another runs), or nothing.
declare -A STARTED=()
next_job() {
	local i j heavy_running=0
	for j in "${!JOB_PID[@]}"; do ((J_HEAVY[j])) && heavy_running=1; done
	for ((i = 0; i < ${#J_NAME[@]}; i++)); do
		[[ -z ${STARTED[$i]:-} ]] || continue
		((J_HEAVY[i] && heavy_running)) && continue
		echo "$i"
		return
	done
}

started=0
total=${#J_NAME[@]}
while ((started < total || ${#JOB_PID[@]} > 0)); do
	while ((${#JOB_PID[@]} < JOBS)); do
		i=$(next_job)
		[[ -n $i ]] || break
		STARTED[$i]=1
		started=$((started + 1))
		start_job "$i"
	done
	sleep 0.1
	for i in "${!JOB_PID[@]}"; do
		[[ -e $RW_TMP/job$i/rc ]] && finish_job "$i"
	done
done

# ------------------------------------------------------------ summary

passed=$(grep -c '^PASS ' "$RESULTS")
failed=$(grep -c '^FAIL ' "$RESULTS")
if ((failed)); then
	echo
	echo "failed:"
	grep '^FAIL ' "$RESULTS"
fi
echo "$passed passed, $failed failed"
((failed == 0 && passed > 0))
