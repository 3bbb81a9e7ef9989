# tests/e2e/patch.sh: patches that must take effect in a running program.
# Each test runs in each of the 8 configs (see run.sh). Helpers: lib.sh.

e2e_test t_body "function body change"
t_body() {
	build_victim body
	variant body v2 BODY 'return tick * 3;'
	start_victim body
	wait_lines "$LOG" 4 5 1 || fail "the victim printed fewer than 4 lines in 5 s"
	check_all 1 'v["value"] == v["tick"] * 2 && v["pid"] == pid' "before the patch"

	local from
	from=$(lines "$LOG")
	apply_ok "$OBJ"
	check_after "$from" 'v["value"] == v["tick"] * 3 && v["pid"] == pid' "after the patch"
	# The same process went on: same pid (checked per line above, and here
	# with its start time), and its loop counter never restarted.
	assert_alive "after the patch"
	check_steps 1 tick 1
	pass
}

e2e_test t_state "state kept (file static, global, local static)"
t_state() {
	build_victim state
	variant state v2 PRINT 'printf("v=2 file=%d global=%d local=%d\n", file_count, global_count, local_count);'
	start_victim state
	wait_lines "$LOG" 4 5 1 || fail "the victim printed fewer than 4 lines in 5 s"
	check_all 1 'v["v"] == 1' "before the patch"
	# The counters start where the source says: the test reads them right.
	check_all 1 'NR > 1 || (v["file"] == 101 && v["global"] == 1 && v["local"] == 5001)' "first line"

	local from
	from=$(lines "$LOG")
	apply_ok "$OBJ"
	check_after "$from" 'v["v"] == 2' "after the patch"
	# Each counter goes on from its value before the patch: +1 per line,
	# across the patch too (a fresh copy would restart at 101, 1, 5001).
	check_steps 1 file 1
	check_steps 1 global 1
	check_steps 1 local 1
	assert_alive "after the patch"
	pass
}

e2e_test t_renumbered "local static renumbered"
t_renumbered() {
	build_victim state
	# A new function with a static of the same name, before tick(): gcc
	# numbers local statics in order (local_count.0 becomes the new one's).
	variant state v3 DECLS '__attribute__((noinline)) static int other(void)
{
	static int local_count = 70;

	return ++local_count;
}' EXTRA 'int other_count = other();' \
	   PRINT 'printf("v=3 file=%d global=%d local=%d other=%d\n", file_count, global_count, local_count, other_count);'
	start_victim state
	wait_lines "$LOG" 4 5 1 || fail "the victim printed fewer than 4 lines in 5 s"

	local from
	from=$(lines "$LOG")
	apply_ok "$OBJ"
	check_after "$from" 'v["v"] == 3' "after the patch"
	check_steps 1 local 1
	check_steps 1 file 1
	# The new static starts from its own initial value.
	check_all "$((FIRST_NEW - 1))" 'NR > 1 || v["other"] == 71' "first line of the new code"
	check_steps "$((FIRST_NEW - 1))" other 1
	assert_alive "after the patch"
	pass
}

e2e_test t_newcode "new function, global and string"
t_newcode() {
	build_victim newcode
	variant newcode v2 DECLS 'int new_global = 41;
static int new_zeroed;

__attribute__((noinline)) static void new_function(int n)
{
	new_global++;
	new_zeroed += 2;
	printf("tick=%d new_global=%d new_zeroed=%d msg=%s\n", n, new_global, new_zeroed, "hello-from-the-patch");
}' BODY 'new_function(n);'
	start_victim newcode
	wait_lines "$LOG" 4 5 1 || fail "the victim printed fewer than 4 lines in 5 s"

	local from
	from=$(lines "$LOG")
	apply_ok "$OBJ"
	check_after "$from" 'v["msg"] == "hello-from-the-patch"' "after the patch"
	# The new global starts from its initialiser, the new static from 0.
	check_all "$((FIRST_NEW - 1))" 'NR > 1 || (v["new_global"] == 42 && v["new_zeroed"] == 2)' \
		"first line of the new code"
	check_steps "$((FIRST_NEW - 1))" new_global 1
	check_steps "$((FIRST_NEW - 1))" new_zeroed 2
	check_steps 1 tick 1
	assert_alive "after the patch"
	pass
}

e2e_test t_fnptr "old function pointer reaches new code"
t_fnptr() {
	build_victim fnptr
	variant fnptr v2 EXTRA 'printf("same=%d\n", saved_fn == compute);' BODY 'return x + 200;'
	start_victim fnptr
	wait_lines "$LOG" 4 5 1 || fail "the victim printed fewer than 4 lines in 5 s"
	check_all 1 'v["result"] == v["tick"] + 100 && v["sresult"] == v["tick"] + 300' "before the patch"

	local from
	from=$(lines "$LOG")
	apply_ok "$OBJ"
	# The new compute prints same=1 (the pointer stored before the patch
	# equals &compute in the new code), then tick prints the new result.
	check_after "$from" '("same" in v) ? v["same"] == 1 : v["result"] == v["tick"] + 200 && v["sresult"] == v["tick"] + 300' \
		"after the patch" 6
	wait_cond "$from" 'v["result"] == v["tick"] + 200' 2 ||
		fail "the call through the old pointer does not reach the new code"
	wait_cond "$from" 'v["same"] == 1' 2 || fail "no same=1 line"
	assert_alive "after the patch"
	pass
}

e2e_test t_fnptr_static "old pointer to a static function"
t_fnptr_static() {
	build_victim fnptr
	variant fnptr v2 SEXTRA 'printf("ssame=%d\n", saved_static == scompute);' SBODY 'return x + 400;'
	start_victim fnptr
	wait_lines "$LOG" 4 5 1 || fail "the victim printed fewer than 4 lines in 5 s"

	local from
	from=$(lines "$LOG")
	apply_ok "$OBJ"
	# Reaching the new code is the first half; ssame=1 needs &scompute in new
	# code bound to the running scompute (in PIE builds, an `lea` to a local
	# symbol of the same section, which has no relocation).
	wait_cond "$from" 'v["sresult"] == v["tick"] + 400' 5 ||
		fail "the call through the old pointer does not reach the new code"
	check_after "$from" '("ssame" in v) ? v["ssame"] == 1 : v["result"] == v["tick"] + 100 && v["sresult"] == v["tick"] + 400' \
		"after the patch" 6
	assert_alive "after the patch"
	pass
}

e2e_test t_libc "new libc calls (strlen, memcpy: IFUNCs)"
t_libc() {
	build_victim libcall
	variant libcall v2 DECLS '#include <string.h>' BODY '	char copy[64];
	size_t len = strlen(name);

	memcpy(copy, name, len + 1);
	printf("tick=%d name=%s len=%zu copy=%s\n", n, name, len, copy);'
	# The test is only worth something if the program does not use them and
	# the compiler kept the calls.
	local sym
	for sym in strlen memcpy; do
		if nm "$VICTIM_BIN" | grep -qE "[[:space:]]U $sym(@|$)"; then
			fail "test invalid: the victim already references $sym"
		fi
		nm -u "$OBJ" | grep -qE "[[:space:]]U $sym$" ||
			fail "test invalid: $CC ${CFLAGS[*]} folded the call to $sym"
	done
	start_victim libcall
	wait_lines "$LOG" 4 5 1 || fail "the victim printed fewer than 4 lines in 5 s"

	local from
	from=$(lines "$LOG")
	apply_ok "$OBJ"
	check_after "$from" 'v["len"] == length(v["name"]) && v["copy"] == v["name"]' "after the patch"
	check_all 1 'v["name"] == (v["tick"] % 3 == 0 ? "alpha" : v["tick"] % 3 == 1 ? "be" : "gamma-delta-epsilon")' \
		"name check"
	check_steps 1 tick 1
	assert_alive "after the patch"
	pass
}

e2e_test t_tls "thread-locals kept per thread"
t_tls() {
	build_victim tls
	variant tls v2 PRINT 'printf("thread=%d count=%lu calls=%d v=2\n", id, tls_count, tls_calls);'
	start_victim tls
	local t
	for t in 0 1 2; do
		wait_cond 1 "v[\"thread\"] == $t && v[\"count\"] >= $((1000000 * (t + 1) + 3))" 5 ||
			fail "thread $t printed fewer than 3 lines in 5 s"
	done

	local from
	from=$(lines "$LOG")
	apply_ok "$OBJ"
	for t in 0 1 2; do
		wait_cond "$from" "v[\"thread\"] == $t && v[\"v\"] == 2" 5 ||
			fail "thread $t: no line of the new code within 5 s"
	done
	wait_lines "$LOG" 10 5 "$(lines "$LOG")" || fail "the program stopped printing"
	for t in 0 1 2; do
		local sel="(\"thread\" in v) && v[\"thread\"] == $t"
		# Each thread starts from its own values...
		check_all 1 "!($sel) || v[\"count\"] > $((1000000 * (t + 1))) && v[\"count\"] < $((1000000 * (t + 2))) && v[\"calls\"] > $((1000 * (t + 1))) && v[\"calls\"] < $((1000 * (t + 2)))" \
			"thread $t's values"
		# ... and goes on counting, +1 per line, across the patch.
		check_steps 1 count 1 "$sel"
		check_steps 1 calls 1 "$sel"
		# Once a thread ran the new code it never prints the old line again.
		local first
		first=$(kv_lines "$from" "$sel && v[\"v\"] == 2" | head -n 1 | cut -d: -f1)
		check_all "$((first - 1))" "!($sel) || v[\"v\"] == 2" "thread $t after the patch"
	done
	assert_alive "after the patch"
	pass
}

e2e_test t_twice "patched twice (existing function, pointer from patch 1)"
t_twice() {
	build_victim twice
	variant twice p1 DECLS '__attribute__((noinline)) static int helper(int n)
{
	return n + 1000;
}' STORE 'if (!saved) saved = helper;' BODY 'return n * 3;'
	local p1=$OBJ
	variant twice p2 DECLS '__attribute__((noinline)) static int helper(int n)
{
	return n + 2000;
}' STORE 'if (!saved) saved = helper;' BODY 'return n * 5;'
	local p2=$OBJ
	start_victim twice
	wait_lines "$LOG" 4 5 1 || fail "the victim printed fewer than 4 lines in 5 s"
	check_all 1 'v["compute"] == v["tick"] * 2 && v["saved"] == -1' "before the patches"

	local from
	from=$(lines "$LOG")
	apply_ok "$p1"
	check_after "$from" 'v["compute"] == v["tick"] * 3 && v["saved"] == v["tick"] + 1000' "after patch 1"

	from=$(lines "$LOG")
	apply_ok "$p2"
	# saved still holds &helper of patch 1: the call must reach patch 2's.
	check_after "$from" 'v["compute"] == v["tick"] * 5 && v["saved"] == v["tick"] + 2000' "after patch 2"
	check_steps 1 tick 1
	assert_alive "after the patches"
	pass
}

# A thread waits in a call made from wait_loop's second byte: the 5-byte
# entry jump would cover its return address (it would come back into the
# jump's displacement). A patch of wait_loop is refused, whole; one of
# another function goes in while the thread waits there.
e2e_test t_retjump "a thread that would return into the entry jump refuses the patch of that function (push; call *%rdi)" once
t_retjump() {
	build_victim retjump
	# (rewire apply replaces every function of the object: p1 has no
	# wait_loop of its own, p2 a new one)
	variant retjump p1 BODY 'return tick * 3;' LOOP ''
	local p1=$OBJ
	variant retjump p2 BODY 'return tick * 5;' LOOP 'void wait_loop(void *(*fn)(void *))
{
	for (;;)
		fn = (void *(*)(void *))fn((void *)fn);
}'
	local p2=$OBJ
	start_victim retjump
	wait_lines "$LOG" 4 5 1 || fail "the victim printed fewer than 4 lines in 5 s"
	local from
	from=$(lines "$LOG")
	apply_ok "$p1"
	check_after "$from" 'v["value"] == v["tick"] * 3 && v["pid"] == pid' "after patch 1"
	from=$(lines "$LOG")
	expect_error 1 "would return into the first bytes of wait_loop, which the jump to the patch overwrites" \
		apply --pid "$VPID" "$p2"
	wait_lines "$LOG" 4 5 "$from" || fail "the program stopped after the refusal"
	check_after "$from" 'v["value"] == v["tick"] * 3 && v["pid"] == pid' "after the refused patch (compute too)"
	wait_cond "$(lines "$LOG")" 'v["waits"] > 0' 5 || fail "the waiting thread stopped"
	local w0 w1
	w0=$(tail -n 1 "$LOG" | sed -n 's/.*waits=\([0-9]*\).*/\1/p')
	sleep 0.3
	w1=$(tail -n 1 "$LOG" | sed -n 's/.*waits=\([0-9]*\).*/\1/p')
	((w1 > w0)) || fail "the waiting thread stopped calling (waits $w0, then $w1)"
	assert_alive "after the refusal"
	check_steps 1 tick 1
	pass
}

e2e_test t_unknown "unknown symbol refused"
t_unknown() {
	build_victim body
	variant body bad DECLS 'extern int no_such_symbol_xyz(void);' \
		BODY 'return tick * 3 + no_such_symbol_xyz();'
	local bad=$OBJ
	# The changed function is fine; another (new, never called) function of
	# the same object is not: the patch must be refused as a whole.
	variant body bad2 DECLS 'extern int no_such_symbol_xyz(void);

__attribute__((noinline)) int uses_missing(void)
{
	return no_such_symbol_xyz();
}' BODY 'return tick * 3;'
	local bad2=$OBJ
	variant body v2 BODY 'return tick * 3;'
	local good=$OBJ
	start_victim body
	wait_lines "$LOG" 4 5 1 || fail "the victim printed fewer than 4 lines in 5 s"

	local from
	from=$(lines "$LOG")
	expect_error 1 no_such_symbol_xyz apply --pid "$VPID" "$bad"
	expect_error 1 no_such_symbol_xyz apply --pid "$VPID" "$bad2"
	# The program keeps running its old code.
	wait_lines "$LOG" 8 5 "$from" || fail "the program stopped printing after the refused patch"
	check_all 1 'v["value"] == v["tick"] * 2 && v["pid"] == pid' "after the refused patches"
	assert_alive "after the refused patches"
	# Nothing half-applied is in the way of a good patch.
	from=$(lines "$LOG")
	apply_ok "$good"
	check_after "$from" 'v["value"] == v["tick"] * 3 && v["pid"] == pid' "after the good patch"
	check_steps 1 tick 1
	pass
}
