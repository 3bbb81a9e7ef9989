# tests/e2e/api.sh: programs that use include/rewire.h: safe points, hooks
# and guarded calls. Helpers: lib.sh.

# build_api_victim: victims/api.c, built against the API library.
build_api_victim() {
	CFLAGS+=(-I"$RW_ROOT/include")
	VICTIM_LIBS=$RW_ROOT/build/librewire-api.a
	[[ -f $VICTIM_LIBS ]] || fail "$VICTIM_LIBS not found (run make)"
	build_victim api
}

# rewire's API library is built as rewire asks programs to be: a program
# built so that links it is not warned of -fipa-ra because of rewire's code.
e2e_test t_api_ipa_ra "a program built with -fno-ipa-ra that links the API is not warned of -fipa-ra"
t_api_ipa_ra() {
	[[ $RW_CC == gcc ]] && CFLAGS+=(-fno-ipa-ra)
	build_api_victim
	start_victim api
	wait_lines "$LOG" 2 5 1 || fail "the victim printed fewer than 2 lines in 5 s"
	! grep -q 'without -fno-ipa-ra' "${LOG%.log}.err" ||
		fail "warned: $(grep -m1 'without -fno-ipa-ra' "${LOG%.log}.err")"
	assert_alive "after start"
	pass
}

e2e_test t_poll "rewire_poll: patches only at the safe point"
t_poll() {
	build_api_victim
	variant api v2 BODY 'return n * 3;'
	cp "$OBJ" "$W/v2.o"
	variant api v3 BODY 'return n * 4;'
	cp "$OBJ" "$W/v3.o"
	start_victim api
	wait_lines "$LOG" 4 5 1 || fail "the victim printed fewer than 4 lines in 5 s"
	local i
	for i in 1 2 3 4 5 6 7 8 9 10; do
		apply_ok "$W/v$((2 + i % 2)).o"
	done
	local from
	from=$(lines "$LOG")
	wait_lines "$LOG" 4 5 "$from" || fail "the program stopped printing"
	# Between the two calls of one tick the program does not poll: a patch
	# landing there would make them differ.
	check_all 1 'v["a"] == v["b"]' "every tick's two calls ran one version"
	check_all "$from" 'v["a"] == 3 * v["tick"] && v["hooks"] == 10 && v["version"] == 10 && v["inpoll"] == 1' \
		"after 10 patches (the hook ran 10 times, inside rewire_poll)"
	check_all "$from" 'v["named"] == 1' "the hook was told compute's name"
	check_steps 1 tick 1
	assert_alive "after the patches"
	pass
}

e2e_test t_call "rewire_call rolls back a crashing patch"
t_call() {
	build_api_victim
	variant api v2 BODY 'return n * 3;'
	cp "$OBJ" "$W/v2.o"
	variant api v3 BODY 'if (n > 0) *(volatile int *)(long)(n - n) = n; return n * 5;'
	cp "$OBJ" "$W/v3.o"
	variant api v4 BODY 'if (n > 0) abort(); return n * 6;'
	cp "$OBJ" "$W/v4.o"
	variant api v5 BODY 'return n * 7;'
	cp "$OBJ" "$W/v5.o"
	start_victim api
	wait_lines "$LOG" 4 5 1 || fail "the victim printed fewer than 4 lines in 5 s"
	local from bad
	apply_ok "$W/v2.o"
	from=$(lines "$LOG")
	check_after "$from" 'v["a"] == 3 * v["tick"] && v["crashed"] == 0' "after a good patch"
	for bad in v3 v4; do
		from=$(lines "$LOG")
		apply_ok "$W/$bad.o"
		wait_cond "$from" 'v["crashed"] == 1' 5 || fail "$bad: no call reported the crash"
		from=$(kv_lines "$from" 'v["crashed"] == 1' | head -n 1 | cut -d: -f1)
		wait_lines "$LOG" 5 5 "$from" || fail "$bad: the program stopped after the crash"
		check_all "$from" 'v["a"] == 3 * v["tick"] && v["crashed"] == 0' \
			"$bad: after the rollback (the previous version runs)"
	done
	grep -q 'SIGSEGV in patched code: compute' "${LOG%.log}.err" ||
		fail "the NULL dereference was not reported by name: $(tail -n 3 "${LOG%.log}.err" | tr '\n' ' ')"
	grep -q 'SIGABRT in patched code' "${LOG%.log}.err" || fail "the abort was not reported"
	grep -q 'rolled back: the previous version runs' "${LOG%.log}.err" || fail "no rollback reported"
	from=$(lines "$LOG")
	apply_ok "$W/v5.o"
	check_after "$from" 'v["a"] == 7 * v["tick"] && v["crashed"] == 0' "a good patch after the rollbacks"
	check_steps 1 tick 1
	assert_alive "after the patches"
	pass
}
