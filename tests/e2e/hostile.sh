# tests/e2e/hostile.sh: programs that make patching around them hard, and
# ways the driver can go away. Helpers: lib.sh.

# 1,500 ticks of 15 ms and 500 forks, each waiting for its child's agent:
# 40 s on a 2-core machine, over 80 s when it is loaded.
e2e_test t_hostile "blocked read, fork, driver killed" timeout=240
t_hostile() {
	build_victim hostile
	variant hostile v2 BODY 'return n * 3;'
	cp "$OBJ" "$W/v2.o"
	variant hostile v3 BODY 'return n * 4;'
	cp "$OBJ" "$W/v3.o"
	start_victim hostile ticks=1500
	wait_lines "$LOG" 4 5 1 || fail "the victim printed fewer than 4 lines in 5 s"
	local i from
	for i in 1 2 3 4 5 6 7 8 9 10; do
		apply_ok "$W/v$((2 + i % 2)).o"
	done
	from=$(lines "$LOG")
	check_after "$from" 'v["value"] == 3 * v["tick"]' "after 10 patches"
	check_all 1 'v["eintr"] == 0 && v["badchildren"] == 0' \
		"while patching (no EINTR in the blocked read(); every forked child ran)"
	# The driver dies: the program goes on, and ends as it would have.
	kill -KILL "$RUN_PID"
	wait "$RUN_PID" 2>/dev/null	# reaped here, without the shell's "Killed" line
	from=$(lines "$LOG")
	wait_lines "$LOG" 5 5 "$from" || fail "the program stopped when the driver was killed"
	check_all 1 'v["eintr"] == 0 && v["badchildren"] == 0' "after the driver was killed"
	wait_for "$LOG" '^done$' 180 || fail "the program did not run to its end after the driver was killed"
	grep -q '^tick=1500 ' "$LOG" || fail "the program did not reach its last tick"
	pass
}

e2e_test t_blocker "a thread blocking the stop signal: refused, never hangs"
t_blocker() {
	build_victim hostile
	variant hostile v2 BODY 'return n * 3;'
	start_victim hostile blocker
	wait_lines "$LOG" 4 5 1 || fail "the victim printed fewer than 4 lines in 5 s"
	local t0=$SECONDS
	apply "$OBJ"
	((APPLY_RC == 1)) || fail "rewire apply exited $APPLY_RC, expected 1 (refused): $(apply_msg)"
	grep -q 'blocks signal' "$APPLY_OUT" || fail "the refusal does not name the blocking thread: $(apply_msg)"
	((SECONDS - t0 < 20)) || fail "the refusal took $((SECONDS - t0)) s"
	local from
	from=$(lines "$LOG")
	wait_lines "$LOG" 4 5 "$from" || fail "the program stopped printing after the refusal"
	check_all 1 'v["value"] == 2 * v["tick"] && v["eintr"] == 0' "the program kept its code"
	assert_alive "after the refusal"
	pass
}

e2e_test t_otheruser "another user's connection is refused" once
t_otheruser() {
	(($(id -u) == 0)) || fail "this test switches to user nobody: run it as root"
	command -v setpriv >/dev/null || fail "setpriv (util-linux) is missing"
	[[ -x /usr/bin/python3 ]] || fail "/usr/bin/python3 is missing"
	build_victim hostile
	# A runtime directory of its own, outside the tests' private one, so
	# that user nobody can be let near the socket.
	local xdg
	xdg=$(mktemp -d /tmp/rewire-xdg.XXXXXX) || fail "mktemp"
	ln -s "$xdg" "$W/xdg"
	LOG=$W/hostile.log
	XDG_RUNTIME_DIR=$xdg "$REWIRE" run -- "$W/base/hostile" >"$LOG" 2>"$W/hostile.err" &
	RUN_PID=$!
	rw_track "$RUN_PID"
	wait_for "$LOG" '^pid=[0-9]+$' 10 || fail "the victim did not start"
	VPID=$(grep -m1 -E '^pid=' "$LOG" | cut -d= -f2)
	rw_track "$VPID"
	VSTART=$(proc_start "$VPID")
	local sock=$xdg/rewire/$VPID.sock
	[[ -S $sock ]] || fail "no socket at $sock"
	[[ $(stat -c %a "$xdg/rewire") == 700 ]] || fail "the socket directory is not 0700"
	[[ $(stat -c %a "$sock") == 600 ]] || fail "the socket is not 0600"
	# Open the way to the socket, so only SO_PEERCRED stands in between.
	chmod 711 "$xdg" "$xdg/rewire"
	chmod 666 "$sock"
	local out
	out=$(setpriv --reuid=65534 --regid=65534 --clear-groups /usr/bin/python3 - "$sock" <<'PY' 2>&1
import socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
s.settimeout(5)
try:
    s.sendall(struct.pack('<IHHI', 0x52495752, 2, 2, 0))   # HELLO
    print('reply' if s.recv(64) else 'closed')
except (BrokenPipeError, ConnectionResetError):
    print('closed')
PY
)
	[[ $out == closed ]] || fail "a connection from user nobody got: $out"
	# The same request from our user is answered.
	out=$(/usr/bin/python3 - "$sock" <<'PY' 2>&1
import socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
s.sendall(struct.pack('<IHHI', 0x52495752, 2, 2, 0))
s.settimeout(5)
print('reply' if s.recv(64) else 'closed')
PY
)
	[[ $out == reply ]] || fail "our own user's connection got: $out"
	assert_alive "after the connections"
	rm -rf "$xdg"
	pass
}

e2e_test t_forkwalk "a fork while the agent walks the modules: the child can still walk them"
t_forkwalk() {
	build_victim forkwalk
	variant forkwalk v2 BODY 'return tick * 3;'
	start_victim forkwalk
	wait_lines "$LOG" 4 5 1 || fail "the victim printed fewer than 4 lines in 5 s"
	local i from
	# Each apply asks the agent for the program's modules (HELLO) while
	# the program forks every millisecond.
	for i in $(seq 1 30); do
		apply_ok "$OBJ"
	done
	from=$(lines "$LOG")
	sleep 3	# the last children end (2 s alarm)
	wait_lines "$LOG" 3 20 "$from" || fail "the program stopped printing"
	check_after "$from" 'v["value"] == 3 * v["tick"]' "after the patches"
	check_all 1 'v["hung"] == 0' "children forked meanwhile (one hung walking its modules)"
	assert_alive "after the patches"
	pass
}
