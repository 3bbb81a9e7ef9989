#!/bin/bash
# The dylib reload API (include/rewire_lib.h): how long a reload takes, and
# what a call through rewire_lib_sym's pointer costs against a direct call
# and against dlsym before each call.
#   bench/dylib.sh [N]    (N reloads, default 50)
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
n=${1:-50}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
api=$top/build/librewire-api.a
if ! nm "$api" 2>/dev/null | grep -q ' T rewire_lib_open$'; then	# not in the archive yet
	for f in "$top"/src/api/*.c "$top"/src/guard/guard.c; do
		cc -O2 -g -Wall -Wextra -Werror -Wno-unused-parameter -fPIC -c -o "$(basename "$f" .c).o" "$f"
	done
	ar rcs librewire-api.a ./*.o
	api=$work/librewire-api.a
fi
cc -O2 -g -I"$top/include" -o dylib "$top/bench/dylib.c" "$api"
cc -O2 -g -fPIC -shared -DSTEP=1 -o a.so "$top/bench/dylib_plugin.c"
cc -O2 -g -fPIC -shared -DSTEP=2 -o b.so "$top/bench/dylib_plugin.c"
./dylib "$work/plugin.so" "$work/a.so" "$work/b.so" "$n" >out

python3 - out <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    name, _, rest = line.partition(" ")
    unit, _, vals = rest.partition("=")
    rows[name] = (unit, [float(v) for v in vals.split()])
def stat(name, scale=1):
    xs = sorted(v * scale for v in rows[name][1])
    q1, q3 = xs[len(xs) // 4], xs[3 * len(xs) // 4]
    return f"{statistics.median(xs):8.3f}  (min {xs[0]:.3f}, q1 {q1:.3f}, q3 {q3:.3f}, max {xs[-1]:.3f})"
n = len(rows["reload"][1])
print(f"dylib reload, {n} reloads of a {int(rows['plugin'][1][0]) // 1024} KiB plugin (median, spread), in ms:")
print(f"  rewire_lib_update, file written >100 ms before   {stat('reload', 1e-3)}")
print(f"  rewire_lib_update, file just written (2nd stat)  {stat('reload_fresh', 1e-3)}")
print(f"  bare copy + dlopen + dlsym + dlclose             {stat('bare_load', 1e-3)}")
print(f"one call of a one-line function, {len(rows['direct'][1])} rounds (median, spread), in ns:")
print(f"  direct (the address dlsym gives)                 {stat('direct')}")
print(f"  through rewire_lib_sym's pointer (trampoline)    {stat('trampoline')}")
print(f"  dlsym before each call                           {stat('dlsym_each')}")
d, t = statistics.median(rows["direct"][1]), statistics.median(rows["trampoline"][1])
print(f"  trampoline - direct: {t - d:+.3f} ns per call")
PY
