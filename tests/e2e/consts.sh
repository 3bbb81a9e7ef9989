# tests/e2e/consts.sh: read-only data is code, not state. An edit that only
# changes a constant (a string reached through a table, a floating-point
# literal, a static const, a switch's lookup table, a constant struct) must
# take effect, never "no code changed". Helpers: lib.sh.

# consts_save MARKER TEXT COND WHAT N: save the edit, wait for the N-th
# "patched" line, check the new value from then on.
consts_save() {
	local from
	from=$(lines "$LOG")
	save "${CONSTS_FILE:-consts.c}" "$1" "$(marked "$1" "$2")"
	wait_err '^rewire: (patched|.*no code changed|error)' "$5" ||
		fail "$4: rewire said nothing about the save"
	verdicts | tail -n 1 | grep -q '^rewire: patched' ||
		fail "$4: rewire said: $(verdicts | tail -n 1)"
	check_after "$from" "$3" "$4"
}

e2e_test t_consts "session: an edited constant takes effect (string table, float, switch table, struct)"
t_consts() {
	build_project consts consts.c
	start_session consts
	wait_lines "$LOG" 4 5 1 || fail "the program printed fewer than 4 lines in 5 s"
	check_all 1 'NR == 1 || (v["name"] == "alpha" && v["scaled"] == v["tick"] * 3 && v["price"] == 50)' \
		"before the edits"
	consts_save NAMES 'static const char *const names[] = {"ALPHA", "beta"};' \
		'v["name"] == "ALPHA"' "a string in a table of pointers" 1
	consts_save SCALE 'return tick * 2.5;' \
		'v["scaled"] == v["tick"] * 5 && v["name"] == "ALPHA"' "a floating-point literal" 2
	consts_save SPEED 'static const double speed = 100.0;' \
		'v["moved"] == v["tick"] * 200' "a static const double" 3
	consts_save PRICE 'case 3: return 500;' 'v["price"] == 500' "a switch's table" 4
	consts_save UNITS 'static const struct unit units[] = {{"g", 1}, {"KG", 1000}};' \
		'v["unit"] == "KG" && v["price"] == 500 && v["moved"] == v["tick"] * 200' \
		"a string in a constant struct" 5
	check_steps 1 count 1
	assert_alive "after the edits"
	pass
}

# rs_consts_save MARKER TEXT COND WHAT N: as consts_save, for src/main.rs.
rs_consts_save() {
	local from
	from=$(lines "$LOG")
	save_rs src/main.rs "$1" "$(marked "$1" "$2")"
	wait_err '^rewire: (patched|.*no code changed|error)' "$5" 60 ||
		fail "$4: rewire said nothing about the save"
	verdicts | tail -n 1 | grep -q '^rewire: patched' ||
		fail "$4: rewire said: $(verdicts | tail -n 1)"
	check_after "$from" "$3" "$4"
}

rs_consts() {
	start_cargo rust_consts "$@"
	check_all 1 'NR == 1 || (v["greet"] == "hello" && v["score"] == 50 && v["scaled"] == 3 * v["tick"])' \
		"before the edits"
	rs_consts_save SHOWN 'format!("{}-{}", n, show(&"second"))' \
		'index(v["shown"], "second") > 0' "a string literal passed by reference" 1
	rs_consts_save GREETING 'const GREETING: &str = "howdy";' 'v["greet"] == "howdy"' "a const &str" 2
	rs_consts_save NAME 'static NAME: &str = "bert";' 'v["name"] == "bert"' "an immutable static &str" 3
	rs_consts_save SCORE 'Bird::Duck => 500,' 'v["score"] == 500' "a match arm's value" 4
	rs_consts_save SCALED '(t as f64 * 2.5 * 2.0) as u64' \
		'v["scaled"] == 5 * v["tick"] && v["score"] == 500 && v["greet"] == "howdy"' "a float literal" 5
	check_steps 1 count 1
	assert_alive "after the edits"
	pass
}

e2e_test t_rs_consts "Rust: an edited constant takes effect (literal, const, static, match arm, float)" once timeout=300
t_rs_consts() { rs_consts; }

e2e_test t_rs_consts_rel "Rust --release: an edited constant takes effect (literal, const, static, match arm, float)" once timeout=300
t_rs_consts_rel() { rs_consts --release; }

e2e_test t_consts_cpp "session: an edited C++ constant takes effect (string, lambda's float, table, std::array, virtual)"
t_consts_cpp() {
	build_project consts_cpp consts_cpp.cpp
	start_session consts_cpp
	wait_lines "$LOG" 4 5 1 || fail "the program printed fewer than 4 lines in 5 s"
	check_all 1 'NR == 1 || (v["greet"] == "hello" && v["scaled"] == v["tick"] * 3 && v["price"] == 50)' \
		"before the edits"
	CONSTS_FILE=consts_cpp.cpp
	consts_save GREETING 'constexpr const char greeting[] = "howdy";' 'v["greet"] == "howdy"' \
		"a constexpr string" 1
	consts_save SCALE 'auto f = [](double x) { return x * 2.5; };' 'v["scaled"] == v["tick"] * 5' \
		"a lambda's float literal" 2
	consts_save PRICES 'constexpr int prices[] = {10, 20, 35, 500, 70};' 'v["price"] == 500' \
		"a constexpr table" 3
	consts_save LABELS 'constexpr std::array<const char *, 2> names = {{"small", "LARGE"}};' \
		'v["label"] == "LARGE"' "a constexpr std::array of strings" 4
	consts_save KIND 'const char *kind() const override { return "CAT"; }' \
		'v["kind"] == "CAT" && v["greet"] == "howdy" && v["price"] == 500' "a virtual's string" 5
	check_steps 1 count 1
	assert_alive "after the edits"
	pass
}

e2e_test t_consts_shared "session: a changed constant that another file reads is refused; one only its file reads is patched"
t_consts_shared() {
	build_project shared shared_main.c shared_more.c
	start_session shared
	wait_lines "$LOG" 4 5 1 || fail "the program printed fewer than 4 lines in 5 s"
	sleep 1	# both units' baselines
	local from
	from=$(lines "$LOG")
	save shared_more.c LEVELS "$(marked LEVELS 'const int levels[4] = {1, 2, 3, 40};')"
	wait_err '^rewire: (patched|.*no code changed|error)' 1 ||
		fail "rewire said nothing about the save"
	grep -qE "^rewire: error: .*levels: this constant changed, and level_a, which the patch does not replace, reads it too" "$ERR" ||
		fail "not refused as read by level_a: $(tail -n 1 "$ERR")"
	wait_lines "$LOG" $((from + 8)) 5 1 || fail "the program stopped after the refusal"
	check_all "$from" 'v["a"] == (v["tick"] % 4 + 1) * 10 + (v["tick"] % 2 ? 800 : 700) && v["b"] == v["tick"] % 4 + 1' \
		"after the refusal (the program as built)"
	# Put back, and change the constant only this file reads.
	from=$(lines "$LOG")
	save shared_more.c LEVELS "$(marked LEVELS 'const int levels[4] = {1, 2, 3, 4};')" \
		SOLO "$(marked SOLO 'const int solo[2] = {50, 60};')"
	wait_err '^rewire: patched solo_b' 1 || fail "the constant only its file reads was not patched: $(tail -n 1 "$ERR")"
	# A constant no function of its own file reads, but another file does.
	save shared_more.c ONLYMAIN "$(marked ONLYMAIN 'const int only_main[2] = {9, 8};')"
	wait_err '^rewire: (patched|.*no code changed|error)' 3 || fail "rewire said nothing about the third save"
	verdicts | tail -n 1 | grep -qE "^rewire: error: .*only_main: this constant changed, and level_a, which the patch does not replace, reads it too" ||
		fail "a constant only another file reads: $(tail -n 1 "$ERR")"
	check_after "$from" 'v["s"] == (v["tick"] % 2 ? 60 : 50) && v["a"] == (v["tick"] % 4 + 1) * 10 + (v["tick"] % 2 ? 800 : 700)' \
		"after the edit of solo"
	check_steps 1 count 1
	assert_alive "after the edits"
	pass
}

e2e_test t_consts_goto "session: a function dispatching through a table of its labels (computed goto)"
t_consts_goto() {
	build_project goto goto.c
	start_session goto
	wait_lines "$LOG" 4 5 1 || fail "the program printed fewer than 4 lines in 5 s"
	check_all 1 'NR == 1 || v["value"] == (v["tick"] + 1) * 3 + 1' "before the edit"
	CONSTS_FILE=goto.c
	consts_save ADD 'x += 2;' 'v["value"] == (v["tick"] + 2) * 3 + 2' "the new code with its own table" 1
	consts_save ADD 'x += 5;' 'v["value"] == (v["tick"] + 5) * 3 + 5' "a second patch" 2
	check_steps 1 count 1
	assert_alive "after the edits"
	pass
}
