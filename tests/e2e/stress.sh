# tests/e2e/stress.sh: many patches while 8 threads call the patched
# function in a tight loop. Runs in each of the 8 configs.

# Correctness, not speed (make bench measures that): on a loaded 2-core
# machine the 200 rewire apply runs took more than 180 s.
e2e_test t_stress "200 patches under 8 busy threads" heavy timeout=600
t_stress() {
	local n=${RW_STRESS_PATCHES:-200} i obj refused=0 last prev_calls=0 calls
	build_victim stress
	variant stress a BODY 'return x * 7 + 1;'
	local a=$OBJ
	variant stress b BODY 'return x * 7 + 2;'
	local b=$OBJ
	start_victim stress
	wait_lines "$LOG" 3 5 1 || fail "the victim printed fewer than 3 lines in 5 s"

	# A, B, A, B, ...: the last one applied is B.
	for ((i = 1; i <= n; i++)); do
		obj=$a
		((i % 2 == 0)) && obj=$b
		apply "$obj"
		if ((APPLY_RC == 1 && i == n && refused < 5)); then
			# The final state must be B: try the last one again.
			refused=$((refused + 1))
			i=$((i - 1))
			continue
		fi
		case $APPLY_RC in
		0) grep -q '^rewire: patched' "$APPLY_OUT" || fail "patch $i of $n: no 'rewire: patched' line" ;;
		1) refused=$((refused + 1)) ;;	# e.g. a thread stayed inside the entry bytes
		*) fail "patch $i of $n: rewire apply exited $APPLY_RC: $(apply_msg)" ;;
		esac
		if ((i % 20 == 0)); then
			assert_alive "after patch $i of $n"
			wait_lines "$LOG" 1 2 "$(lines "$LOG")" || fail "the program stopped printing after patch $i"
			last=$(last_line)
			calls=$(field "$last" calls)
			[[ $(field "$last" invalid) == 0 ]] || fail "after patch $i: invalid results: $last"
			((calls > prev_calls)) || fail "after patch $i: calls do not increase: $last"
			prev_calls=$calls
		fi
	done
	((refused <= 5)) || fail "$refused of $n patches were refused (last: $(apply_msg))"
	((refused == 0)) || echo "    note: $refused of $n patches were refused: $(apply_msg)"

	# Now only version B runs: results of A stop, results of B grow.
	sleep 0.3
	wait_lines "$LOG" 1 2 "$(lines "$LOG")" || fail "the program stopped printing"
	local l1 l2
	l1=$(last_line)
	sleep 0.5
	wait_lines "$LOG" 1 2 "$(lines "$LOG")" || fail "the program stopped printing"
	l2=$(last_line)
	check_all 1 'v["invalid"] == 0' "invalid results (neither version's)"
	local bad
	bad=$(kv_lines 1 1 | awk '{ split($0, w, /calls=/); split(w[2], x, / /); c = x[1] + 0
		if (NR > 1 && c < prev) { print; exit } prev = c }')
	[[ -z $bad ]] || fail "calls went down: $bad"
	(($(field "$l2" calls) > $(field "$l1" calls))) || fail "calls do not increase: $l1 -> $l2"
	(($(field "$l1" b) > 0)) || fail "version B never ran: $l1"
	(($(field "$l2" b) > $(field "$l1" b))) || fail "version B does not run after the last patch: $l1 -> $l2"
	(($(field "$l2" a) == $(field "$l1" a))) || fail "version A still runs after the last patch (B): $l1 -> $l2"
	assert_alive "after $n patches"
	pass
}

# private_kb PID: the process's private memory (smaps_rollup), in KiB.
private_kb() {
	awk '/^Private_(Clean|Dirty):/ { kb += $2 } END { print kb + 0 }' "/proc/$1/smaps_rollup"
}

e2e_test t_soak "soak: 1000 patches under 8 busy threads, memory bounded" once timeout=900
t_soak() {
	local n=1000 i refused=0 m100=0 m
	build_victim stress
	variant stress a BODY 'return x * 7 + 1;'
	local a=$OBJ
	variant stress b BODY 'return x * 7 + 2;'
	local b=$OBJ
	start_victim stress 900
	wait_lines "$LOG" 3 5 1 || fail "the victim printed fewer than 3 lines in 5 s"
	for ((i = 1; i <= n; i++)); do
		apply "$a"
		case $APPLY_RC in
		0) ;;
		1) refused=$((refused + 1)) ;;
		*) fail "patch $i of $n: rewire apply exited $APPLY_RC: $(apply_msg)" ;;
		esac
		local t=$a
		a=$b b=$t
		((i == 100)) && m100=$(private_kb "$VPID")
		((i % 100 == 0)) && { assert_alive "after patch $i"; check_all 1 'v["invalid"] == 0' "after patch $i"; }
	done
	m=$(private_kb "$VPID")
	((refused <= n / 100)) || fail "$refused of $n patches were refused (last: $(apply_msg))"
	local per=$(((m - m100) * 1024 / (n - 100)))
	echo "    note: private memory $m100 KiB after 100 patches, $m KiB after $n: $per bytes per patch; $refused refused"
	((per <= 32768)) || fail "memory grows by $per bytes per patch"
	wait_lines "$LOG" 2 5 "$(lines "$LOG")" || fail "the program stopped printing"
	check_all 1 'v["invalid"] == 0' "after $n patches"
	assert_alive "after $n patches"
	pass
}
