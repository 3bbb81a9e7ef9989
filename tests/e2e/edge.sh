# tests/e2e/edge.sh: code and programs that trip naive patching: jump
# tables, storage that grows, sigwait threads. Helpers: lib.sh.

e2e_test t_switch "switch with a jump table"
t_switch() {
	build_victim jumptable
	variant jumptable v2 CASE3 'case 3: return 33;' CASE5 'case 5: return 55;'
	start_victim jumptable
	wait_lines "$LOG" 4 5 1 || fail "the victim printed fewer than 4 lines in 5 s"
	local from
	apply_ok "$OBJ"
	# Most lines read the same before and after: start after the patch (a
	# line computed just before it may still be printed after it returns).
	from=$(($(lines "$LOG") + 1))
	wait_lines "$LOG" 16 5 "$from" || fail "the program stopped printing after the patch"
	check_after "$from" '(v["tick"] % 8 == 3 && v["value"] == 33) || (v["tick"] % 8 == 5 && v["value"] == 55) || (v["tick"] % 8 != 3 && v["tick"] % 8 != 5 && v["value"] == 10 + v["tick"] % 8)' "after the patch" 16
	assert_alive "after the patch"
	pass
}

e2e_test t_grow "growing static refused"
t_grow() {
	build_victim grow
	variant grow v2 SIZE 'static volatile int table[8];'
	start_victim grow
	wait_lines "$LOG" 4 5 1 || fail "the victim printed fewer than 4 lines in 5 s"
	apply "$OBJ"
	((APPLY_RC == 1)) || fail "rewire apply exited $APPLY_RC, expected 1 (refused): $(apply_msg)"
	grep -q 'table grew from 16 to 32 bytes' "$APPLY_OUT" || fail "the refusal does not say table grew: $(apply_msg)"
	local from
	from=$(lines "$LOG")
	wait_lines "$LOG" 4 5 "$from" || fail "the program stopped printing"
	check_all "$from" 'v["guard"] == 42 && v["sum"] == 4 * v["tick"] + 6' "after the refusal"
	assert_alive "after the refusal"
	pass
}

e2e_test t_sigwait "program with a sigwait thread"
t_sigwait() {
	build_victim sigwait
	variant sigwait v2 BODY 'return n + 1000;'
	start_victim sigwait
	wait_lines "$LOG" 4 5 1 || fail "the victim printed fewer than 4 lines in 5 s"
	local from
	from=$(lines "$LOG")
	apply_ok "$OBJ"
	check_after "$from" 'v["value"] == v["tick"] + 1000' "after the patch"
	grep -q '^signal=' "$LOG" && fail "the program's sigwait thread received a signal: $(grep -m1 '^signal=' "$LOG")"
	assert_alive "after the patch"
	pass
}

e2e_test t_newglobal "new C++ global with a constructor refused"
t_newglobal() {
	build_victim newglobal
	variant newglobal v2 DECLS 'static std::string added = "added";' \
		PRINT 'std::printf("tick=%d name=%s added=%s\n", n, name.c_str(), added.c_str());'
	start_victim newglobal
	wait_lines "$LOG" 4 5 1 || fail "the victim printed fewer than 4 lines in 5 s"
	apply "$OBJ"
	((APPLY_RC == 1)) || fail "rewire apply exited $APPLY_RC, expected 1 (refused): $(apply_msg)"
	grep -q 'added.* is new and has a dynamic initializer' "$APPLY_OUT" ||
		fail "the refusal does not name the new global: $(apply_msg)"
	local from
	from=$(lines "$LOG")
	wait_lines "$LOG" 4 5 "$from" || fail "the program stopped printing"
	grep -q 'added=' "$LOG" && fail "part of the refused patch ran"
	check_steps 1 tick 1
	assert_alive "after the refusal"
	pass
}

e2e_test t_samename "statics of two files with one name refused"
t_samename() {
	mkdir -p "$W/base/a" "$W/base/b" "$W/v2"
	printf 'static int count;\nint a_tick(void) { return ++count; }\n' >"$W/base/a/util.c"
	printf 'static int count = 5000;\n__attribute__((noinline)) int b_tick(void) { return ++count; }\n' \
		>"$W/base/b/util.c"
	cat >"$W/base/samename.c" <<'SRC'
#include <stdio.h>
#include <unistd.h>
int a_tick(void);
int b_tick(void);
int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	alarm(240);
	printf("pid=%d\n", (int)getpid());
	for (int n = 1;; n++) {
		printf("tick=%d a=%d b=%d\n", n, a_tick(), b_tick());
		usleep(15000);
	}
}
SRC
	(cd "$W/base" && "$CC" "${CFLAGS[@]}" -c a/util.c -o a.o && "$CC" "${CFLAGS[@]}" -c b/util.c -o b.o &&
		"$CC" "${CFLAGS[@]}" -c samename.c -o samename.o &&
		"$CC" "${LDFLAGS[@]}" samename.o a.o b.o -o samename) >"$W/base/cc.log" 2>&1 ||
		fail "cannot build the victim"
	sed 's/++count;/count += 2;/' "$W/base/b/util.c" >"$W/v2/util.c"
	compile_in "$W/v2" util
	start_victim samename
	wait_lines "$LOG" 4 5 1 || fail "the victim printed fewer than 4 lines in 5 s"
	apply "$W/v2/util.o"
	((APPLY_RC == 1)) || fail "rewire apply exited $APPLY_RC, expected 1 (refused): $(apply_msg)"
	grep -q 'several files named util.c' "$APPLY_OUT" || fail "the refusal does not say why: $(apply_msg)"
	local from
	from=$(lines "$LOG")
	wait_lines "$LOG" 4 5 "$from" || fail "the program stopped printing"
	check_steps 1 a 1
	check_steps 1 b 1
	assert_alive "after the refusal"
	pass
}

e2e_test t_types "changed type layout and signature refused (debug info)"
t_types() {
	build_victim types
	start_victim types
	wait_lines "$LOG" 4 5 1 || fail "the victim printed fewer than 4 lines in 5 s"
	variant types v2 FIELDS 'int armor;'
	apply "$OBJ"
	((APPLY_RC == 1)) || fail "a changed struct layout: rewire apply exited $APPLY_RC, expected 1: $(apply_msg)"
	grep -q 'type player (types.c) changed its layout' "$APPLY_OUT" || fail "the refusal does not name the struct: $(apply_msg)"
	variant types v3 PARAMS 'int hp, int extra' CALL 'int s = score(hero.hp, 3);'
	apply "$OBJ"
	((APPLY_RC == 1)) || fail "a changed signature: rewire apply exited $APPLY_RC, expected 1: $(apply_msg)"
	grep -q 'function score (types.c) changed its signature' "$APPLY_OUT" || fail "the refusal does not name the function: $(apply_msg)"
	local from
	from=$(lines "$LOG")
	variant types v4 SPARAMS 'long n, int k' SCALL 'int b = bonus(n, 10);' SBODY 'return (int)n + k;'
	apply_ok "$OBJ"
	check_after "$from" 'v["bonus"] == v["tick"] + 10 && v["score"] == 2 * v["hp"]' \
		"a file-local function's new parameters, with its caller"
	# A member renamed, nothing else of the layout: the same instance.
	from=$(lines "$LOG")
	variant types v5 XNAME 'float speed;' SBODY 'return n + 2;'
	apply_ok "$OBJ"
	check_after "$from" 'v["bonus"] == v["tick"] + 2 && v["score"] == 2 * v["hp"]' "a member renamed"
	check_steps 1 hp 1
	assert_alive "after the patches"
	pass
}
