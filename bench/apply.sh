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
rss_plain=$(rss $plain); rss_agent=$(rss $pid)

for i in $(seq "$n"); do
	obj=a/compute.o; [ $((i % 2)) = 0 ] && obj=b/compute.o
	"$rewire" apply --pid "$pid" $obj 2>>log
done
rss_after=$(rss $pid)

python3 - "$n" "$rss_plain" "$rss_agent" "$rss_after" "${compile_ms[@]}" <<'PY'
import re, statistics, sys
n, plain, agent, after = map(int, sys.argv[1:5])
compile_us = list(map(int, sys.argv[5:]))
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
print(f"  compile the unit  {stat(comp)}")
print(f"  patch / compile   {statistics.median(total) / statistics.median(comp):.3f}")
print(f"resident memory: plain {plain} KiB, with agent {agent} KiB "
      f"(+{agent - plain} KiB), after {n} patches {after} KiB (+{(after - agent) / n:.1f} KiB/patch)")
PY
