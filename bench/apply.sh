#!/bin/bash
# Patch latency and agent overhead: a one-function patch applied N times to
# a running program, each stage as rewire reports it, against the compile
# of the same unit; and the agent's resident memory.
#   bench/apply.sh [N]    (make bench)
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
rewire=$top/build/rewire
n=${1:-50}
work=$(mktemp -d)
trap 'kill $pid $plain 2>/dev/null || true; rm -rf "$work"' EXIT
cd "$work"
cp "$top/bench/victim_main.c" "$top/bench/compute.c" .
cc -O2 -g -o victim victim_main.c compute.c
mkdir a b
sed 's/x \* 3 + 1/x * 3 + 2/' compute.c > a/compute.c
sed 's/x \* 3 + 1/x * 3 + 3/' compute.c > b/compute.c

compile_ms=()
for i in $(seq 10); do
	t0=$(date +%s%N)
	cc -O2 -g -c a/compute.c -o a/compute.o
	compile_ms+=($(( ($(date +%s%N) - t0) / 1000 )))
done
cc -O2 -g -c b/compute.c -o b/compute.o

./victim & plain=$!
"$rewire" run ./victim 2>/dev/null & sleep 0.5
pid=$(pgrep -P $! victim)
sleep 0.5
rss() { awk '/VmRSS/ {print $2}' /proc/$1/status; }
dirty() { awk '/^Private_Dirty/ {print $2}' /proc/$1/smaps_rollup; }
rss_plain=$(rss $plain); rss_agent=$(rss $pid)
dirty_plain=$(dirty $plain); dirty_agent=$(dirty $pid)

wall_us=()
for i in $(seq "$n"); do
	obj=a/compute.o; [ $((i % 2)) = 0 ] && obj=b/compute.o
	t0=$(date +%s%N)
	"$rewire" apply --pid "$pid" $obj 2>>log
	wall_us+=($(( ($(date +%s%N) - t0) / 1000 )))
done
rss_after=$(rss $pid)
echo "private dirty memory: plain $dirty_plain KiB, with agent $dirty_agent KiB" \
	"(+$((dirty_agent - dirty_plain)) KiB), after $n patches $(dirty $pid) KiB"

python3 - "$n" "$rss_plain" "$rss_agent" "$rss_after" "${wall_us[*]}" "${compile_ms[@]}" <<'PY'
import re, statistics, sys
n, plain, agent, after = map(int, sys.argv[1:5])
wall = [int(x) / 1000 for x in sys.argv[5].split()]
compile_us = list(map(int, sys.argv[6:]))
rows = [re.search(r"in ([\d.]+) ms .*link ([\d.]+), apply ([\d.]+) \(pause (\d+) us", l)
        for l in open("log") if "patched" in l]
rows = [tuple(map(float, m.groups())) for m in rows if m]
def stat(xs):
    xs = sorted(xs)
    return f"{statistics.median(xs):.3f} (min {xs[0]:.3f}, max {xs[-1]:.3f})"
total = [r[0] for r in rows]; link = [r[1] for r in rows]
apply = [r[2] for r in rows]; pause = [r[3] / 1000 for r in rows]
comp = [c / 1000 for c in compile_us]
print(f"one-function patch, {len(rows)} of {n} applied (median, min, max), in ms:")
print(f"  link + apply      {stat(total)}")
print(f"  link (driver)     {stat(link)}")
print(f"  apply (agent)     {stat(apply)}")
print(f"  stop-the-world    {stat(pause)}")
print(f"  rewire apply, whole command (exec, connect, read the executable, link, apply)")
print(f"                    {stat(wall)}")
print(f"  compile the unit  {stat(comp)}")
print(f"  link+apply / compile      {statistics.median(total) / statistics.median(comp):.4f}")
print(f"  whole command / compile   {statistics.median(wall) / statistics.median(comp):.4f}")
print(f"resident memory (RSS, shared library pages included): plain {plain} KiB, with agent {agent} KiB "
      f"(+{agent - plain} KiB), after {n} patches {after} KiB (+{(after - agent) / n:.1f} KiB/patch)")
PY
