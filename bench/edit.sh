#!/bin/bash
# Edit-to-running latency of `rewire run`: from the moment an edited source
# is saved (renamed into place, as editors do) to the moment rewire has
# applied it to the running program, against the compile of the same unit
# alone, measured side by side. On examples/bounce and on GNU bc (Debian's
# source, its own build).
#   bench/edit.sh [N]    (make bench)
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
rewire=$top/build/rewire
n=${1:-20}
work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work"' EXIT

now_us() { echo "${EPOCHREALTIME/./}"; }

# measure NAME DIR FILE PROGRAM SED_A SED_B COMPILE...: N saves of FILE in
# DIR alternating two edits, under `rewire run PROGRAM` started in DIR.
measure() {
	local name=$1 dir=$2 file=$3 prog=$4 a=$5 b=$6
	shift 6
	local stamps=$work/$name.stamps fifo=$work/$name.fifo
	mkfifo "$fifo" "$work/$name.in"
	# rewire's stderr, each line with the time it arrived
	(while IFS= read -r line; do echo "$(now_us) $line"; done <"$fifo" >"$stamps") &
	pids+=($!)
	(cd "$dir" && exec "$rewire" run -- $prog <"$work/$name.in" >/dev/null 2>"$fifo") &
	pids+=($!)
	exec 3>"$work/$name.in"
	until grep -q 'rewire: watching' "$stamps" 2>/dev/null; do sleep 0.05; done
	sleep 2	# baselines
	cp "$dir/$file" "$work/$name.orig"
	local lat=() i before t0 t1 edit
	for i in $(seq "$n"); do
		edit=$a; [ $((i % 2)) = 0 ] && edit=$b
		sed "$edit" "$work/$name.orig" >"$dir/.$name.swp"
		before=$(grep -c 'rewire: patched' "$stamps" || true)
		t0=$(now_us)
		mv "$dir/.$name.swp" "$dir/$file"
		until [ "$(grep -c 'rewire: patched' "$stamps" || true)" -gt "$before" ]; do
			grep -q 'rewire: error' "$stamps" && { echo "bench: $(grep 'rewire: error' "$stamps" | tail -1)" >&2; exit 1; }
			sleep 0.002
		done
		t1=$(grep 'rewire: patched' "$stamps" | tail -n 1 | cut -d' ' -f1)
		lat+=($((t1 - t0)))
		sleep 0.3
	done
	cp "$work/$name.orig" "$dir/$file"
	exec 3>&-
	local comp=()
	for i in $(seq 10); do
		t0=$(now_us)
		(cd "$dir" && "$@" >/dev/null 2>&1)
		comp+=($(($(now_us) - t0)))
	done
	python3 - "$name" "${lat[*]}" "${comp[*]}" "$(grep 'rewire: patched' "$stamps" | tail -n 1 | cut -d' ' -f2-)" <<'PY'
import statistics, sys
name, lat, comp, last = sys.argv[1], sys.argv[2].split(), sys.argv[3].split(), sys.argv[4]
lat = sorted(int(x) / 1000 for x in lat); comp = sorted(int(x) / 1000 for x in comp)
med = statistics.median
print(f"{name}: edit-to-running {med(lat):.1f} ms (min {lat[0]:.1f}, max {lat[-1]:.1f}, {len(lat)} saves); "
      f"compile of the unit alone {med(comp):.1f} ms (min {comp[0]:.1f}, max {comp[-1]:.1f}); "
      f"ratio {med(lat) / med(comp):.2f}")
print(f"  last report: {last}")
PY
}

# The example.
mkdir -p "$work/bounce"
cp "$top/examples/bounce/bounce.c" "$top/examples/bounce/Makefile" "$work/bounce/"
make -s -C "$work/bounce"
measure bounce "$work/bounce" bounce.c ./bounce \
	"s/court\[(int)pos\] = 'o'/court[(int)pos] = '@'/" "s/court\[(int)pos\] = 'o'/court[(int)pos] = '#'/" \
	cc -g -O2 -fno-ipa-ra -c -o /dev/null bounce.c

# A real program: GNU bc, its interpreter's execute.c.
if tree=$("$top/scripts/third_party.sh" bc 2>/dev/null); then
	cp -p "$tree/../bc-pristine/bc/execute.c" "$tree/bc/execute.c"
	measure bc "$tree" bc/execute.c "bc/bc -q" \
		's/+ ex_stack->s_num->n_scale);/+ ex_stack->s_num->n_scale + 1000);/' \
		's/+ ex_stack->s_num->n_scale);/+ ex_stack->s_num->n_scale + 2000);/' \
		sh -c "cd bc && gcc -DHAVE_CONFIG_H -I. -I.. -I./../h -g -O2 -fno-ipa-ra -Wall -funsigned-char -c -o /dev/null execute.c"
	cp -p "$tree/../bc-pristine/bc/execute.c" "$tree/bc/execute.c"
else
	echo "bc: cannot fetch or build Debian's bc source: skipped" >&2
fi
