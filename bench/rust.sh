#!/bin/bash
# Edit-to-running for Rust (dev profile, cargo, std only), three ways
# taking turns, save after save:
#  - rewire: `rewire run -- cargo run`, a one-function edit saved (renamed
#    into place) until rewire's "patched" line; its "compile" stage is the
#    rustc replay of the crate, what is left beside the stages is "watch";
#  - cargo build alone, of the same edit in a copy of the crate;
#  - what users do today: that cargo build, then the program stopped and
#    started again, until it shows the edit (answers a request, prints).
# On examples/rust-server (an HTTP server, std only: edit handle()),
# bench/rust-http (an HTTP server on tokio, hyper and serde_json, Debian's
# packaged crates: edit greeting()) and a generated crate of 50,000 lines
# (bench/gen_rust.py: edit mark()).
#   bench/rust.sh [N]    (N saves of the generated crate, 2N of the
#                         server, default 10; bench/run.sh)
set -eu
. "$(dirname "$0")/lib.sh"
n=${1:-10}
command -v cargo >/dev/null || { echo "bench: rust: cargo not found: skipped" >&2; exit 0; }
bench_begin rust
port=$((30000 + RANDOM % 20000))

answers() {	# PORT: the body of one answer, or nothing
	(exec 3<>"/dev/tcp/127.0.0.1/$1" && printf 'GET / HTTP/1.0\r\n\r\n' >&3 && tail -n 1 <&3) 2>/dev/null
}

# The servers' ports: NAME's under rewire, and its copy's (+1).
server_port() {
	case $1 in
	rust_server) echo "$port" ;;
	rust_http) echo $((port + 2)) ;;
	*) echo "" ;;
	esac
}

# shows NAME WANT: does the restarted copy of NAME show the edit WANT?
shows() {
	case $1 in
	rust_server | rust_http) answers $(($(server_port "$1") + 1)) | grep -q "hello $2" ;;
	*) grep -q "mark $2" "$work/$1.plain.out" ;;
	esac
}

# start_plain NAME: the copy's binary, started.
start_plain() {
	local args=()
	[ -n "$(server_port "$1")" ] && args=("127.0.0.1:$(($(server_port "$1") + 1))")
	"$work/$1.plain/target/debug/$2" "${args[@]}" >"$work/$1.plain.out" &
	server=$!
}

# measure NAME SRC FILE BIN EDIT_A WANT_A EDIT_B WANT_B [ARGS]: N saves of
# SRC/FILE (a crate, copied), alternating the sed edits EDIT_A and EDIT_B.
measure() {
	local name=$1 src=$2 file=$3 bin=$4 a=$5 want_a=$6 b=$7 want_b=$8 args=("${@:9}")
	local dir=$work/$name.rw plain=$work/$name.plain
	cp -r "$src" "$dir"
	rm -rf "$dir/target"
	cp "$dir/$file" "$work/$name.orig"
	sed "$a" "$work/$name.orig" >"$work/$name.a"
	sed "$b" "$work/$name.orig" >"$work/$name.b"
	cp -r "$dir" "$plain"
	say "$name: cargo build under rewire run"
	session_start "$name" "$dir" cargo run --offline -- "${args[@]}"
	sleep 1
	say "$name: cargo build of the copy"
	(cd "$plain" && cargo build --offline -q)
	start_plain "$name" "$bin"
	local e2e=() comp=() diff=() link=() apply=() watch=() build=() restart=()
	local i v t0 t1 s want
	for i in $(seq "${saves:-$n}"); do
		v=a want=$want_a
		[ $((i % 2)) = 0 ] && v=b want=$want_b
		session_save "$name" "$dir/$file" "$work/$name.$v"
		s=($(stages "$save_line"))
		e2e+=($(us_to_ms "$save_us"))
		comp+=("${s[0]}") diff+=("${s[1]}") link+=("${s[2]}") apply+=("${s[3]}")
		watch+=($(python3 -c "print(f'{$save_us / 1000 - ${s[0]} - ${s[1]} - ${s[2]} - ${s[3]}:.1f}')"))
		sleep 0.2
		cp "$work/$name.$v" "$plain/$(dirname "$file")/.swp"
		t0=$(now_us)
		mv "$plain/$(dirname "$file")/.swp" "$plain/$file"
		(cd "$plain" && cargo build --offline -q)
		t1=$(now_us)
		kill "$server"
		wait "$server" 2>/dev/null || true
		start_plain "$name" "$bin"
		local k=0
		until shows "$name" "$want"; do
			sleep 0.002
			k=$((k + 1))
			((k < 60000)) || { echo "bench: $name: the restarted program does not show the edit" >&2; exit 1; }
		done
		build+=($(us_to_ms $((t1 - t0))))
		restart+=($(us_to_ms $(($(now_us) - t0))))
		say "$name: save $i of ${saves:-$n}: $save_line"
		sleep 0.2
	done
	kill "$server"
	wait "$server" 2>/dev/null || true
	if [ -n "$(server_port "$name")" ]; then
		answers "$(server_port "$name")" | grep -q "hello $want" ||
			{ echo "bench: $name: the patched server does not answer with the edit" >&2; exit 1; }
	else
		tail -n 1 "$work/$name.out" | grep -q "mark $want" ||
			{ echo "bench: $name: the patched program does not print the edit" >&2; exit 1; }
	fi
	kill "$session_pid"
	wait "$session_pid" 2>/dev/null || true
	series "$name.edit_to_running" ms "${e2e[@]}"
	series "$name.watch" ms "${watch[@]}"
	series "$name.compile" ms "${comp[@]}"
	series "$name.diff" ms "${diff[@]}"
	series "$name.link" ms "${link[@]}"
	series "$name.apply" ms "${apply[@]}"
	series "$name.compile_alone" ms "${build[@]}"
	series "$name.restart" ms "${restart[@]}"
	rm -rf "$dir" "$plain"
}

saves=$((2 * n)) measure rust_server "$top/examples/rust-server" src/main.rs rust-server \
	's|hello from rewire: {}|hello A: {}|' A 's|hello from rewire: {}|hello B: {}|' B \
	"127.0.0.1:$port"

# Debian's crates, offline: the copy points cargo at their registry.
if "$top/bench/deps.sh" rust && [ -d /usr/share/cargo/registry ]; then
	cp -r "$top/bench/rust-http" "$work/rust_http.src"
	mkdir -p "$work/rust_http.src/.cargo"
	printf '[source.crates-io]\nreplace-with = "debian"\n\n[source.debian]\ndirectory = "%s"\n' \
		/usr/share/cargo/registry >"$work/rust_http.src/.cargo/config.toml"
	measure rust_http "$work/rust_http.src" src/main.rs rust-http \
		's|hello from rewire|hello A|' A 's|hello from rewire|hello B|' B \
		"127.0.0.1:$(server_port rust_http)"
else
	echo "bench: rust: Debian's tokio, hyper and serde_json crates missing: rust_http skipped" >&2
fi

say "gen_rust: generate a crate of 50,000 lines"
python3 "$top/bench/gen_rust.py" "$work/gen_rust.src"
series gen_rust.lines count "$(cat "$work"/gen_rust.src/src/*.rs | wc -l)"
measure gen_rust "$work/gen_rust.src" src/m25.rs genrs \
	's|1000 // MARK|1001 // MARK|' 1001 's|1000 // MARK|1002 // MARK|' 1002
