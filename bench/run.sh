#!/bin/bash
# Every benchmark, then docs/benchmarks.md and docs/bench/*.png from what
# this run measured (bench/report.py). Made to take under 20 minutes on a
# quiet 2-CPU machine; prints a progress line per step and per save.
#   bench/run.sh    (make bench, after make all)
# BENCH_QUICK=1 runs a few repetitions of each, to try the scripts; its
# page says so. BENCH_KEEP=DIR keeps the measurements (DIR/*.dat, meta.txt:
# bench/report.py DIR docs draws the page again from them).
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
t_start=$(date +%s)
"$top/bench/deps.sh" || { echo "bench: cannot install gnuplot" >&2; exit 1; }
for f in rewire librewire.so; do
	[ -f "$top/build/$f" ] || { echo "bench: build/$f missing: make all first" >&2; exit 1; }
done
tmp=$(mktemp -d "${TMPDIR:-/tmp}/rewire-bench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# the rewire measured: a copy, so that a rebuild of the tree meanwhile
# changes nothing of this run
mkdir "$tmp/bin"
cp "$top/build/rewire" "$top/build/librewire.so" "$tmp/bin/"
export REWIRE=$tmp/bin/rewire BENCH_OUT=$tmp/out
mkdir "$BENCH_OUT"

reps() { [ -n "${BENCH_QUICK:-}" ] && echo "$2" || echo "$1"; }
load() { cut -d' ' -f1 /proc/loadavg; }
meta() { printf '%s\t%s\n' "$1" "$2" >>"$BENCH_OUT/meta.txt"; }
elapsed() { local s=$(($(date +%s) - t_start)); printf '%d min %02d s' $((s / 60)) $((s % 60)); }

meta date "$(date -u '+%Y-%m-%d %H:%M UTC')"
meta nproc "$(nproc)"
meta cpu "$(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)"
meta mem "$(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
meta kernel "$(uname -r)"
meta os "$(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME")"
meta gcc "$(gcc --version | head -1)"
meta rustc "$(PATH=$PATH:$HOME/.cargo/bin rustc --version 2>/dev/null || echo 'no rustc')"
meta commit "$(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo unknown)"
meta load_start "$(load)"
[ -n "${BENCH_QUICK:-}" ] && meta note "BENCH_QUICK: a few repetitions only; not figures to quote"

failed=()
steps=(
	"calls|call cost|bench/calls.sh"
	"apply|memory and latency over $(reps 1000 100) patches|bench/apply.sh $(reps 1000 100)"
	"scale|programs of 1,000 to 1,000,000 functions|bench/scale.sh $(reps 10 3)"
	"edit|C edit-to-running: bounce, 100,000 functions, bc|bench/edit.sh $(reps 10 3)"
	"rust|Rust edit-to-running: rust-server, 50,000 lines|bench/rust.sh $(reps 10 3)"
	"start|session start: 25 to 200 units, bc, nginx|bench/start.sh $(reps 3 1)"
)
i=0
for step in "${steps[@]}"; do
	IFS='|' read -r name what cmd <<<"$step"
	i=$((i + 1))
	echo "bench: [$(elapsed)] step $i of ${#steps[@]}: $what ($cmd)" >&2
	if ! (cd "$top" && $cmd); then
		echo "bench: [$(elapsed)] step $name FAILED" >&2
		failed+=("$name")
	fi
done
meta load_end "$(load)"
meta elapsed "$(elapsed)"
((${#failed[@]})) && meta failed "${failed[*]}"
echo "bench: [$(elapsed)] writing docs/benchmarks.md and docs/bench/*.png" >&2
[ -n "${BENCH_KEEP:-}" ] && mkdir -p "$BENCH_KEEP" && cp "$BENCH_OUT"/* "$BENCH_KEEP"/
python3 "$top/bench/report.py" "$BENCH_OUT" "$top/docs" || exit 1
echo "bench: done in $(elapsed)$( ((${#failed[@]})) && echo "; failed: ${failed[*]}")" >&2
((${#failed[@]} == 0))
