#!/usr/bin/env bash
# fuzz/merge.sh: fold what the fuzz runs learned (build/fuzz/corpus/<target>)
# into the committed corpus (fuzz/corpus/<target>), keeping it small: the
# fewest inputs that reach every edge the runs reached, and of those only
# the small ones: the rejection paths, which the seeds do not take. The
# seeds stay as they are.
#
#   fuzz/merge.sh TARGET...        (after `make fuzz`)
#
# Small is at most MAX_BYTES: by default 4096 for objects (most of their
# checks come after the symbol table, a few KB in) and 1024 for the rest.
set -eu

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/rewire-merge.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

for t in "$@"; do
	max=${MAX_BYTES:-$([[ $t == object ]] && echo 4096 || echo 1024)}
	[[ -x build/fuzz/$t ]] || { echo "fuzz/merge.sh: build/fuzz/$t not built" >&2; exit 2; }
	mkdir -p "$TMP/$t/all" "$TMP/$t/small" "$TMP/$t/min" "build/fuzz/corpus/$t"
	# Edges only, not hit counts: far fewer inputs.
	build/fuzz/"$t" -merge=1 -use_counters=0 "$TMP/$t/all" "fuzz/corpus/$t" \
		"build/fuzz/corpus/$t" >"$TMP/$t.log" 2>&1
	find "$TMP/$t/all" -type f -size -"$((max + 1))"c -exec cp {} "$TMP/$t/small/" \;
	# What the seeds reach already needs nothing more: they go first.
	cp "fuzz/corpus/$t"/seed-* "$TMP/$t/min/"
	build/fuzz/"$t" -merge=1 -use_counters=0 "$TMP/$t/min" "$TMP/$t/small" >>"$TMP/$t.log" 2>&1
	find "fuzz/corpus/$t" -type f ! -name 'seed-*' -delete
	find "$TMP/$t/min" -type f ! -name 'seed-*' -exec cp {} "fuzz/corpus/$t/" \;
	echo "fuzz: corpus/$t: $(ls "fuzz/corpus/$t" | wc -l) inputs, $(cat "fuzz/corpus/$t"/* | wc -c) bytes"
done
