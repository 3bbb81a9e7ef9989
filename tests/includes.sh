#!/usr/bin/env bash
# tests/includes.sh [DB.json...]: the include scanner (src/front/includes.c)
# on real programs: for every unit of each compile_commands.json, the
# headers it finds must hold every one the compiler lists (`cc -MM`).
# Without arguments, the programs scripts/third_party.sh built (nginx, GNU
# bc). Runs one compiler at a time. Needs the unit tests built (make units;
# B=DIR when they were built elsewhere).
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
bin=${B:-$top/build}/unit/test_includes
[[ -x $bin ]] || { echo "includes.sh: $bin not found (make units)" >&2; exit 2; }
if (($# == 0)); then
	for db in "$top"/build/third_party/{nginx,bc}-src/compile_commands.json; do
		[[ -f $db ]] && set -- "$@" "$db"
	done
	(($#)) || { echo "includes.sh: no program built (scripts/third_party.sh nginx)" >&2; exit 2; }
fi
exec "$bin" "$@"
