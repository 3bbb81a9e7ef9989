# tests/e2e/errors.sh: what rewire must refuse, and how. Run once (one
# config), not per config: they test the driver's checks, not code generation.

# agent_socket PID: the path of the agent's listening socket in process PID.
# Where the lead put it: $XDG_RUNTIME_DIR/rewire/PID.sock, else
# /tmp/rewire-UID/PID.sock. Failing that, any listening Unix socket the
# process holds (from /proc/net/unix; "@name" is an abstract one).
agent_socket() {
	local c
	for c in ${XDG_RUNTIME_DIR:+"$XDG_RUNTIME_DIR/rewire/$1.sock"} "/tmp/rewire-$(id -u)/$1.sock"; do
		[[ -S $c ]] && { echo "$c"; return 0; }
	done
	python3 - "$1" <<'PY'
import os, sys
pid = sys.argv[1]
inodes = set()
for fd in os.listdir(f"/proc/{pid}/fd"):
    try:
        link = os.readlink(f"/proc/{pid}/fd/{fd}")
    except OSError:
        continue
    if link.startswith("socket:["):
        inodes.add(link[8:-1])
with open("/proc/net/unix") as f:
    next(f)
    for line in f:
        w = line.split()
        # Num RefCount Protocol Flags Type St Inode [Path]; Flags 00010000: listening
        if len(w) >= 8 and w[6] in inodes and int(w[3], 16) & 0x10000:
            print(w[7])
            sys.exit(0)
sys.exit(1)
PY
}

# send_garbage SOCKET: three bad clients: 64 random bytes; a frame header
# that claims a 4 GiB payload and hangs up; a connection closed at once.
send_garbage() {
	python3 - "$1" <<'PY'
import random, socket, struct, sys
path = sys.argv[1]
if path.startswith("@"):
    path = "\0" + path[1:]
def client(data):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(2)
    s.connect(path)
    if data:
        s.sendall(data)
        try:
            s.recv(4096)
        except OSError:
            pass
    s.close()
random.seed(64)
client(bytes(random.getrandbits(8) for _ in range(64)))
# magic "RWIR", version 2, type 5 (apply), length 0xfffffff0
client(struct.pack("<IHHI", 0x52495752, 2, 5, 0xFFFFFFF0))
client(b"")
PY
}

# still_old FROM WHAT: the victim runs on, with its old code.
still_old() {
	wait_lines "$LOG" 3 5 "$1" || fail "$2: the program stopped printing"
	check_all 1 'v["value"] == v["tick"] * 2 && v["pid"] == pid' "$2"
	assert_alive "$2"
}

e2e_test t_badinput "bad input rejected, program unharmed" once
t_badinput() {
	build_victim body
	variant body v2 BODY 'return tick * 3;'
	local good=$OBJ
	start_victim body
	wait_lines "$LOG" 3 5 1 || fail "the victim printed fewer than 3 lines in 5 s"
	local d=$W/bad from
	mkdir -p "$d"

	# Truncated object.
	head -c 200 "$good" >"$d/truncated.o"
	from=$(lines "$LOG")
	expect_error 3 truncated.o apply --pid "$VPID" "$d/truncated.o"
	still_old "$from" "after a truncated object"

	# Random bytes over the section header table (deterministic).
	cp "$good" "$d/corrupt.o"
	python3 - "$d/corrupt.o" <<'PY' || fail "cannot corrupt the object"
import random, struct, sys
with open(sys.argv[1], "r+b") as f:
    h = f.read(64)
    shoff, = struct.unpack_from("<Q", h, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", h, 0x3a)
    random.seed(1)
    f.seek(shoff)
    f.write(bytes(random.getrandbits(8) for _ in range(shentsize * shnum)))
PY
	from=$(lines "$LOG")
	expect_error 3 corrupt.o apply --pid "$VPID" "$d/corrupt.o"
	still_old "$from" "after a corrupt object"

	# Another architecture.
	printf 'int compute(int tick)\n{\n\treturn tick * 4;\n}\n' >"$d/arm.c"
	clang --target=aarch64-linux-gnu -c "$d/arm.c" -o "$d/arm.o" 2>"$d/arm.log" ||
		fail "cannot build an aarch64 object: $(head -c 200 "$d/arm.log")"
	from=$(lines "$LOG")
	expect_error 3 arm.o apply --pid "$VPID" "$d/arm.o"
	still_old "$from" "after an aarch64 object"

	# Not an object: empty, text, an executable.
	: >"$d/empty.o"
	echo "this is not an object file" >"$d/text.o"
	from=$(lines "$LOG")
	expect_error 3 empty.o apply --pid "$VPID" "$d/empty.o"
	expect_error 3 text.o apply --pid "$VPID" "$d/text.o"
	expect_error 3 body apply --pid "$VPID" "$VICTIM_BIN"
	# A bad file among good ones: nothing is applied.
	expect_error 3 truncated.o apply --pid "$VPID" "$good" "$d/truncated.o"
	still_old "$from" "after non-objects"

	# No agent there: a dead pid, and a live process without the agent.
	local dead
	sleep 0 &
	dead=$!
	wait "$dead"
	expect_error 4 "$dead" apply --pid "$dead" "$good"
	sleep 30 &
	local plain=$!
	rw_track "$plain"
	expect_error 4 "$plain" apply --pid "$plain" "$good"
	kill "$plain" 2>/dev/null

	# Garbage on the agent's socket.
	local sock
	sock=$(agent_socket "$VPID") || fail "cannot find the agent's socket for pid $VPID"
	from=$(lines "$LOG")
	send_garbage "$sock" >"$d/garbage.log" 2>&1 ||
		fail "cannot talk to the agent's socket $sock: $(tail -n 1 "$d/garbage.log")"
	sleep 0.2
	still_old "$from" "after garbage on the socket"

	# After all that, a good patch still works.
	from=$(lines "$LOG")
	apply_ok "$good"
	check_after "$from" 'v["value"] == v["tick"] * 3 && v["pid"] == pid' "good patch after the bad ones"
	check_steps 1 tick 1
	pass
}

# Help: all of it, or one command's, on stdout, exit 0.
e2e_test t_help "help: rewire help, --help, help COMMAND, COMMAND --help" once
t_help() {
	local args want out rc
	while IFS='|' read -r args want; do
		out=$(eval "timeout --foreground 10 \"\$REWIRE\" $args" 2>/dev/null </dev/null)
		rc=$?
		((rc == 0)) || fail "rewire $args exited $rc, expected 0"
		grep -q -- "$want" <<<"$out" || fail "rewire $args: no '$want' in: $(head -n 2 <<<"$out" | tr '\n' ' ')"
	done <<EOF2
--help|rewire attach PID -- cargo build
help|rewire apply --pid PID FILE.o
help run|--watch-objects FILE.o
run --help|Run PROGRAM with rewire's agent inside
run --restart -h|Run PROGRAM with rewire's agent inside
apply --help|Exit status: 0 applied
attach -h|Load rewire's agent into PID
EOF2
	# One command's help is that command's only.
	out=$("$REWIRE" help apply)
	! grep -q 'Run PROGRAM' <<<"$out" || fail "rewire help apply shows run's help too"
	# The program's own --help is the program's.
	out=$(cd "$W" && timeout --foreground 10 "$REWIRE" run -- /usr/bin/printf '[%s]\n' --help 2>/dev/null)
	grep -qx -- '\[--help\]' <<<"$out" || fail "rewire run -- printf … --help did not run printf: $out"
	timeout --foreground 10 "$REWIRE" help frobnicate >/dev/null 2>"$W/help.err"
	rc=$?
	((rc == 2)) || fail "rewire help frobnicate exited $rc, expected 2"
	grep -q "no command 'frobnicate'" "$W/help.err" || fail "rewire help frobnicate said: $(cat "$W/help.err")"
	pass
}

# Arguments that name something that is not there: said by name, and
# nothing runs.
e2e_test t_bad_args "usage: a pid that is not a number, a build directory that is not there" once
t_bad_args() {
	local rc
	timeout --foreground 10 "$REWIRE" apply --pid abc x.o >"$W/a.out" 2>&1
	rc=$?
	((rc == 2)) || fail "apply --pid abc exited $rc, expected 2"
	grep -qx 'rewire: error: abc: not a process id' "$W/a.out" || fail "apply --pid abc said: $(cat "$W/a.out")"
	timeout --foreground 10 "$REWIRE" run -p "$W/none" -- /bin/sh -c "touch '$W/ran'" >"$W/p.out" 2>&1
	rc=$?
	((rc == 3)) || fail "run -p (no such directory) exited $rc, expected 3: $(cat "$W/p.out")"
	grep -qx "rewire: error: -p $W/none: No such file or directory" "$W/p.out" ||
		fail "run -p (no such directory) said: $(cat "$W/p.out")"
	[[ ! -e $W/ran ]] || fail "run -p (no such directory) ran the program"
	mkdir -p "$W/empty"
	timeout --foreground 10 "$REWIRE" run -p "$W/empty" -- /bin/true >"$W/p.out" 2>&1
	rc=$?
	((rc == 3)) || fail "run -p (no compile_commands.json) exited $rc, expected 3: $(cat "$W/p.out")"
	grep -q "rewire: error: -p $W/empty: no compile_commands.json" "$W/p.out" ||
		fail "run -p (no compile_commands.json) said: $(cat "$W/p.out")"
	pass
}

e2e_test t_usage "usage errors exit 2" once
t_usage() {
	[[ -x $REWIRE ]] || fail "$REWIRE not found or not executable (run make)"
	local args
	echo 'int f(void) { return 1; }' >"$W/f.c"
	"$CC" "${CFLAGS[@]}" -c "$W/f.c" -o "$W/f.o" || fail "cannot compile f.c"
	# Each: the arguments, then what is wrong.
	while IFS='|' read -r args why; do
		APPLY_N=$((APPLY_N + 1))
		APPLY_OUT=$W/usage.$APPLY_N.out
		eval "timeout --foreground 10 \"\$REWIRE\" $args" >"$APPLY_OUT" 2>&1 </dev/null
		APPLY_RC=$?
		((APPLY_RC == 2)) || fail "rewire $args ($why) exited $APPLY_RC, expected 2: $(apply_msg)"
		[[ -s $APPLY_OUT ]] || fail "rewire $args ($why) printed nothing"
	done <<EOF2
|no command
frobnicate|unknown command
run|run without a program
apply|apply without --pid
apply --pid|--pid without a value
apply --pid notanumber "$W/f.o"|--pid not a number
apply --pid $$|apply without objects
apply --pid $$ --no-such-option "$W/f.o"|unknown option
attach|attach without a pid
attach notanumber|attach, the pid not a number
attach $$ --|attach, nothing after --
attach $$ -- cargo|attach, cargo without build
attach $$ -- cargo run|attach, cargo run (not build)
attach -p "$W" $$ -- cargo build|attach, -p and cargo together
EOF2
	pass
}
