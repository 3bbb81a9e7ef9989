# tests/e2e/oracle.sh: the oracle's short form (tests/oracle/oracle.py): a
# few seeded edits of each real program, each saved while it runs under
# `rewire run`; the output after rewire's verdict must equal a fresh build's.
# `make oracle` runs many more. The first run fetches and builds the programs
# (Debian source packages) into build/oracle/.

# oracle_short PROGRAM EDITS SEED: run the oracle; its PASS/FAIL line is ours.
oracle_short() {
	local out=$W/oracle.out line
	python3 "$RW_TESTS/oracle/oracle.py" --short --programs "$1" --edits "$2" --seed "$3" \
		>"$out" 2>"$W/oracle.err"
	line=$(grep -m1 -E '^(PASS|FAIL) ' "$out")
	[[ -n $line ]] || { APPLY_OUT=$W/oracle.err APPLY_RC=-; fail "the oracle printed no verdict"; }
	if [[ $line == PASS* ]]; then
		pass
	fi
	grep -vE '^(PASS|FAIL) ' "$out" | head -n 60 | sed 's/^/    | /'
	fail "${line#FAIL oracle: }"
}

e2e_test t_oracle_bc "oracle: GNU bc, 3 edits compared with a fresh build" once heavy timeout=900
t_oracle_bc() { oracle_short bc 3 1; }

# The others take longer to set up and run (Lua, the C++ and the Rust
# program: minutes each): RW_ORACLE=1 tests/run.sh -k oracle runs them too.
[[ ${RW_ORACLE:-0} == 1 ]] || return 0

e2e_test t_oracle_lua "oracle: Lua 5.4, 4 edits compared with a fresh build" once heavy timeout=900
t_oracle_lua() { oracle_short lua 4 1; }

e2e_test t_oracle_muparser "oracle: muparser (C++), 4 edits compared with a fresh build" once heavy timeout=900
t_oracle_muparser() { oracle_short muparser 4 1; }

e2e_test t_oracle_rust "oracle: a serde_json program (Rust), 3 edits compared with a fresh build" once heavy timeout=900
t_oracle_rust() { oracle_short rust-json 3 1; }
