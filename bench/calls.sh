#!/bin/bash
# What one call costs, in ns (bench/calls.c): a direct call to a function
# rewire has patched (its entry jump to the new version) and to one it has
# not, against the same program run without rewire, a call through a
# function pointer, and models of what other tools put in every call (a
# hash-table lookup as Subsecond's jump table; a read lock and dlsym as
# hot-lib-reloader). All variants of one process in the same rounds.
#   bench/calls.sh    (bench/run.sh)
set -eu
. "$(dirname "$0")/lib.sh"
bench_begin calls
cd "$work"
cc -O2 -g -fno-ipa-ra -c "$top/bench/calls_fn.c" "$top/bench/calls_patched.c" "$top/bench/calls.c"
cc -o calls calls.o calls_fn.o calls_patched.o -ldl -lpthread
cc -O2 -fPIC -shared -o calls_lib.so "$top/bench/calls_lib.c"
mkdir patch
cp "$top/bench/calls_patched.c" patch/
cc -O2 -g -fno-ipa-ra -DVERSION=2 -c -o patch/calls_patched.o patch/calls_patched.c

say "calls: without rewire"
touch go.plain
./calls go.plain plain.txt "$work/calls_lib.so"

say "calls: under rewire, target_patched patched"
"$rewire" run -- ./calls go.rw rw.txt "$work/calls_lib.so" 2>rw.log &
pids+=($!)
for _ in $(seq 100); do	# until the agent answers
	pid=$(pgrep -P "${pids[-1]}" calls || true)
	[ -n "$pid" ] && "$rewire" apply --pid "$pid" patch/calls_patched.o 2>>rw.log && break
	sleep 0.1
done
grep -q 'rewire: patched target_patched' rw.log || { echo "bench: calls: the patch failed: $(cat rw.log)" >&2; exit 1; }
touch go.rw
wait "${pids[-1]}"
grep -q 'patched_live 1' rw.txt || { echo "bench: calls: the patched version does not run" >&2; exit 1; }
sed -n 's/^direct /plain.direct /p' plain.txt >>"$dat"
grep ' ns ' rw.txt | sed 's/^/rewire./' >>"$dat"
