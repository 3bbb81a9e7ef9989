# bench/lib.sh: what the benchmark scripts share (sourced, not run).
#
# Each script writes its measurements to $BENCH_OUT/NAME.dat, one series a
# line: "KEY UNIT V1 V2 ..." (every repetition, not a summary), which
# bench/stats.py summarises and bench/report.py turns into
# docs/benchmarks.md. Run alone, a script writes into a temporary directory
# and prints its summary; bench/run.sh sets BENCH_OUT and keeps them.
#
# REWIRE names the rewire binary to measure (its agent beside it); by
# default build/rewire. bench/run.sh points it at a copy, so that a
# rebuild of the tree during the run does not change what is measured.

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
rewire=${REWIRE:-$top/build/rewire}
PATH=$PATH:$HOME/.cargo/bin
[ -x "$rewire" ] || { echo "bench: $rewire not built (make all)" >&2; exit 1; }

now_us() { echo "${EPOCHREALTIME/./}"; }

# say MSG: a progress line on stderr.
say() { echo "bench: $(date +%T) $*" >&2; }

# bench_begin NAME: $work (a temporary directory, removed at exit, with
# the processes in $pids), $dat (this script's data file, emptied).
bench_begin() {
	bench_name=$1
	work=$(mktemp -d "${TMPDIR:-/tmp}/rewire-bench-$1.XXXXXX")
	pids=()
	if [ -z "${BENCH_OUT:-}" ]; then
		BENCH_OUT=$work/out
		bench_summary=1
	fi
	mkdir -p "$BENCH_OUT"
	dat=$BENCH_OUT/$1.dat
	: >"$dat"
	trap bench_end EXIT
}

bench_end() {
	local rc=$?
	set +e
	if ((${#pids[@]})); then
		kill "${pids[@]}" 2>/dev/null
		wait "${pids[@]}" 2>/dev/null
	fi
	if [ "$rc" = 0 ] && [ -n "${bench_summary:-}" ]; then
		python3 "$top/bench/stats.py" "$dat"
	fi
	rm -rf "$work"
	return $rc
}

# series KEY UNIT V...: one line of the data file.
series() { echo "$*" >>"$dat"; }

# us_to_ms V...: microseconds as milliseconds, three decimals.
us_to_ms() { local v; for v in "$@"; do printf '%d.%03d ' $((v / 1000)) $((v % 1000)); done; }

# --- rewire run sessions, stderr time-stamped -----------------------------

# session_start NAME DIR CMD...: `rewire run -- CMD` in DIR, its stdout to
# $work/NAME.out, its stdin a pipe nobody writes to, each line of its stderr stamped (µs) in $work/NAME.stamps;
# returns when rewire says it is watching.
session_start() {
	local name=$1 dir=$2
	shift 2
	local fifo=$work/$name.fifo fd
	mkfifo "$fifo" "$work/$name.in"
	exec {fd}<>"$work/$name.in"	# its stdin stays open (bc reads it)
	(while IFS= read -r line; do echo "$(now_us) $line"; done <"$fifo" >"$work/$name.stamps") &
	pids+=($!)
	(cd "$dir" && exec "$rewire" run -- "$@" <"$work/$name.in" >"$work/$name.out" 2>"$fifo") &
	pids+=($!)
	session_pid=$!
	local t=0
	until grep -q 'rewire: watching' "$work/$name.stamps" 2>/dev/null; do
		sleep 0.05
		t=$((t + 1))
		if ((t > 6000)) || ! kill -0 "$session_pid" 2>/dev/null; then
			echo "bench: $name: rewire run did not start:" >&2
			cut -d' ' -f2- "$work/$name.stamps" >&2
			exit 1
		fi
	done
}

# session_save NAME DIR/FILE NEW: put NEW in place of FILE by rename, as
# editors save, and wait for rewire's "patched" line. Sets save_us (rename
# to that line) and save_line (the line, unstamped).
session_save() {
	local name=$1 file=$2 new=$3 stamps=$work/$1.stamps before t0 n=0
	before=$(grep -c 'rewire: patched' "$stamps" || true)
	cp "$new" "$(dirname "$file")/.$(basename "$file").swp"
	t0=$(now_us)
	mv "$(dirname "$file")/.$(basename "$file").swp" "$file"
	until [ "$(grep -c 'rewire: patched' "$stamps" || true)" -gt "$before" ]; do
		if grep -q 'rewire: error' "$stamps"; then
			echo "bench: $name: $(grep 'rewire: error' "$stamps" | tail -1 | cut -d' ' -f2-)" >&2
			exit 1
		fi
		sleep 0.002
		n=$((n + 1))
		((n < 150000)) || { echo "bench: $name: no patch after the save" >&2; exit 1; }
	done
	local line
	line=$(grep 'rewire: patched' "$stamps" | tail -n 1)
	save_us=$((${line%% *} - t0))
	save_line=${line#* }
}

# stages LINE: "COMPILE DIFF LINK APPLY" (ms) of a "patched ... — compile
# A, diff B, link C, apply D" line.
stages() {
	sed -n 's/.*compile \([0-9.]*\), diff \([0-9.]*\), link \([0-9.]*\), apply \([0-9.]*\).*/\1 \2 \3 \4/p' <<<"$1"
}

# wait_output FILE PATTERN [SECONDS]: until FILE has a line matching PATTERN.
wait_output() {
	local n=0 limit=$((${3:-120} * 500))
	until grep -q "$2" "$1" 2>/dev/null; do
		sleep 0.002
		n=$((n + 1))
		((n < limit)) || { echo "bench: no line '$2' in $1" >&2; exit 1; }
	done
}
