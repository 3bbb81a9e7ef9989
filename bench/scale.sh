#!/bin/bash
# Scale: a one-function patch (`rewire apply` of compute.o) against
# programs of 1,000 to 1,000,000 functions (bench/gen_syms.py, beside
# bench/victim_main.c and compute.c), each running under `rewire run`.
# For each size: the patch's link and apply stages as rewire reports them,
# the whole command's wall time, what is left of it (exec, connect, read
# and index the executable's symbols, the DWARF check: "read"), and the
# command's peak resident memory. Then the same program in a `rewire run`
# session with a compile_commands.json for compute.c: N saves of it (after
# a first, not counted: it reads the executable, which the session keeps),
# each until rewire's "patched ... in T ms — compile C, ..." line; what is
# not the compile, T - C (rewire's own part of the patch), and from the
# save on (inotify and the debounce too); the session's resident memory.
#   bench/scale.sh [N]    (N patches a size, default 10; bench/run.sh)
#   BENCH_SCALE_SIZES="1000 10000 100000 1000000" (the default)
set -eu
. "$(dirname "$0")/lib.sh"
n=${1:-10}
bench_begin scale
cd "$work"
cp "$top/bench/victim_main.c" "$top/bench/compute.c" .
cc -O2 -g -c victim_main.c compute.c
mkdir a b
sed 's/x \* 3 + 1/x * 3 + 2/' compute.c >a/compute.c
sed 's/x \* 3 + 1/x * 3 + 3/' compute.c >b/compute.c
(cd a && cc -O2 -g -c compute.c) && (cd b && cc -O2 -g -c compute.c)

# session_saves SIZE: the session part, for the program built last.
session_saves() {
	local k=scale.$1 i v s line total=() rest=() wall=() comp=()
	printf '[{"directory": "%s", "file": "compute.c", "output": "%s/compute.o", "command": "cc -O2 -g -c -o compute.o compute.c"}]\n' \
		"$work" "$work" >compile_commands.json
	cp -p compute.c compute.orig.c	# its time too: the next size's object stays current
	session_start "s$1" "$work" ./victim
	for i in $(seq 0 "$n"); do
		v=a; [ $((i % 2)) = 0 ] && v=b
		session_save "s$1" "$work/compute.c" "$work/$v/compute.c"
		((i)) || continue	# the first reads the executable
		s=($(stages "$save_line"))
		line=$(sed -n 's/.* in \([0-9.]*\) ms — .*/\1/p' <<<"$save_line")
		comp+=("${s[0]}") total+=("$line")
		rest+=($(python3 -c "print(f'{$line - ${s[0]}:.1f}')"))
		wall+=($(python3 -c "print(f'{$save_us / 1000 - ${s[0]}:.1f}')"))
		sleep 0.2
	done
	series "$k.session_rss" KiB "$(awk '/^VmRSS/ {print $2}' "/proc/$session_pid/status")"
	kill "$session_pid"
	wait "$session_pid" 2>/dev/null || true
	mv compute.orig.c compute.c
	rm compile_commands.json
	series "$k.session_compile" ms "${comp[@]}"
	series "$k.session_total" ms "${total[@]}"
	series "$k.session_rest" ms "${rest[@]}"
	series "$k.session_wall_rest" ms "${wall[@]}"
}

sizes=()
for size in ${BENCH_SCALE_SIZES:-1000 10000 100000 1000000}; do
	say "scale: $size functions: generate, assemble, link"
	rm -rf gen
	python3 "$top/bench/gen_syms.py" gen "$size" >/dev/null
	ls gen/*.s | xargs -P2 -I{} sh -c 'cc -c -o "${1%.s}.o" "$1"' _ {}
	cc -o victim victim_main.o compute.o gen/*.o
	rm -rf gen
	syms=$(nm victim | wc -l)
	say "scale: $size functions ($syms symbols, $(($(stat -c %s victim) / 1024)) KiB): $n patches"
	"$rewire" run -- ./victim 2>run.log &
	run=$!
	pids+=($run)
	vpid=
	for _ in $(seq 100); do	# a first patch, not counted: until the agent answers
		vpid=$(pgrep -P "$run" victim || true)
		[ -n "$vpid" ] && "$rewire" apply --pid "$vpid" b/compute.o 2>/dev/null && break
		sleep 0.1
	done
	: >usage
	for i in $(seq "$n"); do
		obj=a/compute.o; [ $((i % 2)) = 0 ] && obj=b/compute.o
		python3 "$top/bench/rusage.py" usage "$rewire" apply --pid "$vpid" "$obj" 2>>log ||
			{ echo "bench: scale: patch $i failed: $(tail -1 log)" >&2; exit 1; }
	done
	kill "$run"
	wait "$run" 2>/dev/null || true
	python3 - "$size" "$syms" "$n" usage log >>"$dat" <<'PY'
import re, sys
size, syms, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
usage = [l.split() for l in open(sys.argv[4])]
usage = [u for u in usage if u[2] == "0"][-n:]
rep = [re.search(r"link ([\d.]+), apply ([\d.]+)", l) for l in open(sys.argv[5]) if "patched" in l]
rep = [tuple(map(float, m.groups())) for m in rep if m][-n:]
wall = [int(u[0]) / 1000 for u in usage]
k = f"scale.{size}"
print(f"{k}.symbols count {syms}")
print(f"{k}.wall ms " + " ".join(f"{w:.2f}" for w in wall))
print(f"{k}.link ms " + " ".join(f"{r[0]:.3f}" for r in rep))
print(f"{k}.apply ms " + " ".join(f"{r[1]:.3f}" for r in rep))
print(f"{k}.link_apply ms " + " ".join(f"{r[0] + r[1]:.3f}" for r in rep))
print(f"{k}.read ms " + " ".join(f"{w - r[0] - r[1]:.2f}" for w, r in zip(wall, rep)))
print(f"{k}.maxrss KiB " + " ".join(u[1] for u in usage))
PY
	: >log
	session_saves "$size"
	sizes+=("$size")
done
series scale.sizes count "${sizes[@]}"
