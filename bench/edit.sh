#!/bin/bash
# Edit-to-running for C, three ways taking turns, save after save:
#  - rewire: `rewire run` of the program, an edited source renamed into
#    place (as editors save) until rewire's "patched ... — compile A, diff
#    B, link C, apply D" line; the line gives the stages, and what is left
#    (inotify, the debounce, reading the executable, the DWARF checks) is
#    counted as "watch";
#  - the compile of the same unit alone, with its own command;
#  - rebuild and restart: the same edit, make, the program stopped and
#    started again, until it prints the edit's effect.
# On examples/bounce, a generated program of 200 units and 100,000
# functions (bench/gen_c.py), and GNU bc (Debian's source, its own build;
# rewire and compile only: bc waits for input).
#   bench/edit.sh [N]    (N saves of the big program, 2N of the others,
#                         default 10; bench/run.sh)
#   BENCH_BC=0 leaves bc out.
set -eu
. "$(dirname "$0")/lib.sh"
n=${1:-10}
bench_begin edit

# measure NAME DIR FILE EDIT_A EDIT_B PROG WANT_A WANT_B COMPILE: N saves
# of DIR/FILE alternating two sed edits, with `rewire run PROG` in DIR; the
# compile of the unit (the shell command COMPILE, in DIR) after each; and,
# when WANT_A is set, a copy of DIR rebuilt (make) and PROG restarted
# until its output has a line matching WANT_A or WANT_B.
measure() {
	local name=$1 dir=$2 file=$3 a=$4 b=$5 prog=$6 want_a=$7 want_b=$8 compile=$9
	local orig=$work/$name.orig plain=$work/$name.plain
	cp "$dir/$file" "$orig"
	sed "$a" "$orig" >"$work/$name.a"
	sed "$b" "$orig" >"$work/$name.b"
	cmp -s "$orig" "$work/$name.a" && { echo "bench: $name: the edit changes nothing" >&2; exit 1; }
	[ -n "$want_a" ] && cp -a "$dir" "$plain"
	session_start "$name" "$dir" $prog
	sleep 1
	local e2e=() comp=() diff=() link=() apply=() watch=() alone=() restart=()
	local i v t0 s server=
	if [ -n "$want_a" ]; then
		(cd "$plain" && exec $prog >"$work/$name.plain.out") &
		server=$!
	fi
	for i in $(seq "${saves:-$n}"); do
		v=a; [ $((i % 2)) = 0 ] && v=b
		session_save "$name" "$dir/$file" "$work/$name.$v"
		s=($(stages "$save_line"))
		e2e+=($(us_to_ms "$save_us"))
		comp+=("${s[0]}") diff+=("${s[1]}") link+=("${s[2]}") apply+=("${s[3]}")
		watch+=($(python3 -c "print(f'{$save_us / 1000 - ${s[0]} - ${s[1]} - ${s[2]} - ${s[3]}:.1f}')"))
		sleep 0.2
		t0=$(now_us)
		(cd "$dir" && eval "$compile" >/dev/null 2>&1)
		alone+=($(us_to_ms $(($(now_us) - t0))))
		if [ -n "$want_a" ]; then
			local want=$want_a
			[ $v = b ] && want=$want_b
			cp "$work/$name.$v" "$plain/.$file.swp"
			t0=$(now_us)
			mv "$plain/.$file.swp" "$plain/$file"
			make -s -j2 -C "$plain" >/dev/null
			kill "$server"
			wait "$server" 2>/dev/null || true
			(cd "$plain" && exec $prog >"$work/$name.plain.out") &
			server=$!
			wait_output "$work/$name.plain.out" "$want"
			restart+=($(us_to_ms $(($(now_us) - t0))))
		fi
		say "$name: save $i of ${saves:-$n}: $save_line"
		sleep 0.2
	done
	[ -n "$server" ] && { kill "$server"; wait "$server" 2>/dev/null || true; }
	kill "$session_pid"
	wait "$session_pid" 2>/dev/null || true
	cp "$orig" "$dir/$file"
	series "$name.edit_to_running" ms "${e2e[@]}"
	series "$name.watch" ms "${watch[@]}"
	series "$name.compile" ms "${comp[@]}"
	series "$name.diff" ms "${diff[@]}"
	series "$name.link" ms "${link[@]}"
	series "$name.apply" ms "${apply[@]}"
	series "$name.compile_alone" ms "${alone[@]}"
	[ -n "$want_a" ] && series "$name.restart" ms "${restart[@]}"
	return 0
}

# The example.
say "bounce: build"
mkdir -p "$work/bounce"
cp "$top/examples/bounce/bounce.c" "$top/examples/bounce/Makefile" "$work/bounce/"
make -s -C "$work/bounce"
saves=$((2 * n)) measure bounce "$work/bounce" bounce.c \
	"s/court\[(int)pos\] = 'o'/court[(int)pos] = '@'/" "s/court\[(int)pos\] = 'o'/court[(int)pos] = '#'/" \
	./bounce '|.*@.*|' '|.*#.*|' \
	'cc -g -O2 -fno-ipa-ra -c -o $work/alone.o bounce.c'

# A big program: 200 units, 100,000 functions.
say "gen_c: generate and build 200 units, 100,000 functions (make -j2)"
python3 "$top/bench/gen_c.py" "$work/gen_c"
t0=$(now_us)
make -s -j2 -C "$work/gen_c"
series gen_c.build ms $(us_to_ms $(($(now_us) - t0)))
series gen_c.functions count "$(nm "$work/gen_c/prog" | grep -c ' [tT] ')"
series gen_c.lines count "$(cat "$work"/gen_c/*.c | wc -l)"
measure gen_c "$work/gen_c" f100.c \
	's|return 1000;\t/\* MARK|return 1001;\t/* MARK|' 's|return 1000;\t/\* MARK|return 1002;\t/* MARK|' \
	./prog 'mark 1001' 'mark 1002' \
	'cc -g -O2 -fno-ipa-ra -c -o $work/alone.o f100.c'

# A real program: GNU bc, its interpreter's execute.c.
if [ "${BENCH_BC:-1}" = 0 ]; then
	:
elif tree=$("$top/scripts/third_party.sh" bc 2>/dev/null); then
	# a copy: the tests use the tree itself
	cp -a "$tree/../bc-pristine" "$work/bc"
	sed -i "s|$tree|$work/bc|g" "$work/bc/compile_commands.json"
	saves=$((2 * n)) measure bc "$work/bc" bc/execute.c \
		's/+ ex_stack->s_num->n_scale);/+ ex_stack->s_num->n_scale + 1000);/' \
		's/+ ex_stack->s_num->n_scale);/+ ex_stack->s_num->n_scale + 2000);/' \
		"bc/bc -q" '' '' \
		'cd bc && gcc -DHAVE_CONFIG_H -I. -I.. -I./../h -g -O2 -fno-ipa-ra -Wall -funsigned-char -c -o $work/alone.o execute.c'
else
	echo "bench: bc: cannot fetch or build Debian's bc source: skipped" >&2
fi
