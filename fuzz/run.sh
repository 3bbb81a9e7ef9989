#!/usr/bin/env bash
# fuzz/run.sh: run rewire's fuzzers (build/fuzz/<target>, built by
# `make fuzz`) one after the other, each for a bounded time, and print
# per target the seconds run, the executions, and whether it crashed.
#
#   fuzz/run.sh SECONDS TARGET...
#
# Each fuzzer starts from the committed inputs (fuzz/corpus/<target>, and
# fuzz/regress/<target>, which are replayed first) and writes what it
# learns to build/fuzz/corpus/<target>, so the source tree stays as it is.
# A crashing input goes to build/fuzz/crashes/<target>/: once the reader is
# fixed, copy it to fuzz/regress/<target>/ so the unit tests replay it.
#
# Environment: FUZZ_ARGS, more libFuzzer options (e.g. -jobs=2). Exit
# status 0 iff no fuzzer crashed.
set -u

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 2
(($# >= 2)) && [[ $1 =~ ^[0-9]+$ ]] || { echo "usage: fuzz/run.sh SECONDS TARGET..." >&2; exit 2; }
SECONDS_EACH=$1
shift

# Longest input per target: a few seed files' worth; objects and images
# need room for a section table and a symbol table.
max_len() {
	case $1 in
	object | image | archive) echo 16384 ;;
	*) echo 4096 ;;
	esac
}

dict() {
	case $1 in
	object | image | archive) echo fuzz/elf.dict ;;
	esac
}

# What libFuzzer writes for a failure (not slow-unit-*, which is a note).
CRASH_RE='^(crash|leak|timeout|oom)-'
count_crashes() {
	ls "$1" | grep -cE "$CRASH_RE"
}

summary=()
crashed=0
for t in "$@"; do
	bin=build/fuzz/$t
	[[ -x $bin ]] || { echo "fuzz/run.sh: $bin not built (make fuzz)" >&2; exit 2; }
	work=build/fuzz/corpus/$t crashes=build/fuzz/crashes/$t log=build/fuzz/$t.log
	mkdir -p "$work" "$crashes" "fuzz/regress/$t"
	before=$(count_crashes "$crashes")
	# Value profiles help with the many exact comparisons (magics, counts
	# against sizes) of these readers.
	args=(-max_total_time="$SECONDS_EACH" -max_len="$(max_len "$t")" -timeout=10
	      -use_value_profile=1 -print_final_stats=1 -artifact_prefix="$crashes/")
	d=$(dict "$t")
	[[ -n $d ]] && args+=(-dict="$d")
	echo "fuzz: $t for $SECONDS_EACH s (log: $log)"
	start=$(date +%s%N)
	# shellcheck disable=SC2086
	nice -n 10 "$bin" "${args[@]}" ${FUZZ_ARGS:-} "$work" "fuzz/corpus/$t" "fuzz/regress/$t" \
		>"$log" 2>&1
	rc=$?
	took=$((($(date +%s%N) - start) / 1000000000))
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
	after=$(count_crashes "$crashes")
	if ((rc != 0 || after > before)); then
		crashed=1
		what="CRASHED (status $rc): $crashes/$(ls -t "$crashes" | grep -m 1 -E "$CRASH_RE")"
		grep -m 1 -E '^(==[0-9]+==ERROR|SUMMARY|.*runtime error|.*check failed)' "$log" |
			sed 's/^/    /'
	else
		what="no crash"
	fi
	summary+=("$(printf '%-8s %6d s %12s execs %8s/s   %s' "$t" "$took" "${execs:-?}" \
		"${rate:-?}" "$what")")
done

echo
echo "fuzz: target   seconds   executions    rate   result"
for line in "${summary[@]}"; do
	echo "fuzz: $line"
done
exit $crashed
