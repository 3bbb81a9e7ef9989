#!/bin/bash
# `rewire apply` of a one-function patch (bench/compute.c), N times in a
# row to one running program (bench/victim_main.c): each patch's stages as
# rewire reports them (link in the driver, apply in the agent, and the
# stop-the-world pause inside apply) and the whole command's wall time,
# against the compile of the same unit; and the target's memory: with and
# without the agent, and after every 10 patches.
#   bench/apply.sh [N]    (default 1000; bench/run.sh)
set -eu
. "$(dirname "$0")/lib.sh"
n=${1:-1000}
bench_begin apply
cd "$work"
cp "$top/bench/victim_main.c" "$top/bench/compute.c" .
cc -O2 -g -o victim victim_main.c compute.c
mkdir a b
sed 's/x \* 3 + 1/x * 3 + 2/' compute.c >a/compute.c
sed 's/x \* 3 + 1/x * 3 + 3/' compute.c >b/compute.c
(cd a && cc -O2 -g -c compute.c) && (cd b && cc -O2 -g -c compute.c)

# private memory (smaps_rollup: Private_Clean + Private_Dirty), and RSS, KiB
private_kb() { awk '/^Private_(Clean|Dirty):/ { kb += $2 } END { print kb + 0 }' "/proc/$1/smaps_rollup"; }
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }

say "apply: compile of the unit alone, 20 times"
alone=()
for i in $(seq 20); do
	t0=$(now_us)
	(cd a && cc -O2 -g -c compute.c)
	alone+=($(us_to_ms $(($(now_us) - t0))))
done
series apply.compile_alone ms "${alone[@]}"

./victim &
plain=$!
pids+=($plain)
"$rewire" run -- ./victim 2>run.log &
run=$!
pids+=($run)
for _ in $(seq 100); do
	pid=$(pgrep -P "$run" victim || true)
	[ -n "$pid" ] && break
	sleep 0.1
done
[ -n "$pid" ] || { echo "bench: apply: the program did not start under rewire" >&2; exit 1; }
sleep 1	# the agent set up, the program in its loop
series mem.plain_private KiB "$(private_kb $plain)"
series mem.plain_rss KiB "$(rss_kb $plain)"
series mem.agent_private KiB "$(private_kb "$pid")"
series mem.agent_rss KiB "$(rss_kb "$pid")"

say "apply: $n patches"
at=(0) priv=($(private_kb "$pid")) rss=($(rss_kb "$pid")) wall=()
for i in $(seq "$n"); do
	obj=a/compute.o; [ $((i % 2)) = 0 ] && obj=b/compute.o
	t0=$(now_us)
	"$rewire" apply --pid "$pid" $obj 2>>log || { echo "bench: apply: patch $i: $(tail -1 log)" >&2; exit 1; }
	wall+=($(us_to_ms $(($(now_us) - t0))))
	if ((i % 10 == 0)); then
		at+=($i) priv+=($(private_kb "$pid")) rss+=($(rss_kb "$pid"))
	fi
	((i % 200 == 0)) && say "apply: $i of $n patches, private memory ${priv[-1]} KiB"
done
series apply.wall ms "${wall[@]}"
python3 - log >>"$dat" <<'PY'
import re, sys
rows = [re.search(r"in ([\d.]+) ms .*link ([\d.]+), apply ([\d.]+) \(pause (\d+) us", l)
        for l in open(sys.argv[1]) if "patched" in l]
rows = [m.groups() for m in rows if m]
for i, name in enumerate(["link_apply", "link", "apply"]):
    print(f"apply.{name} ms " + " ".join(r[i] for r in rows))
print("apply.pause ms " + " ".join(f"{int(r[3]) / 1000:.3f}" for r in rows))
PY
series mem.patches count "${at[@]}"
series mem.private KiB "${priv[@]}"
series mem.rss KiB "${rss[@]}"
