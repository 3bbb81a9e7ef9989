#!/bin/bash
# Edit-to-running latency for Rust, on examples/rust-server (dev profile),
# three ways measured side by side in one run:
#  - rewire: `rewire run -- cargo run`, a one-function edit of handle()
#    saved (renamed into place), until rewire's "patched" line;
#  - the rustc replay alone: the "compile" figure of those same lines;
#  - what users do today: the same edit, `cargo build`, restart the server,
#    until it answers a request again.
#   bench/rust.sh [N]    (make bench)
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
rewire=$top/build/rewire
n=${1:-10}
PATH=$PATH:$HOME/.cargo/bin
command -v cargo >/dev/null || { echo "rust: cargo not found: skipped" >&2; exit 0; }
work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work"' EXIT

now_us() { echo "${EPOCHREALTIME/./}"; }
edit_a='s|hello from rewire: {}|hello A: {}|'
edit_b='s|hello from rewire: {}|hello B: {}|'
port=$((30000 + RANDOM % 20000))

answers() {	# PORT: the body of one answer, or nothing
	(exec 3<>"/dev/tcp/127.0.0.1/$1" && printf 'GET / HTTP/1.0\r\n\r\n' >&3 && tail -n 1 <&3) 2>/dev/null
}

# rewire
cp -r "$top/examples/rust-server" "$work/rw"
rm -rf "$work/rw/target"
mkfifo "$work/fifo"
(while IFS= read -r line; do echo "$(now_us) $line"; done <"$work/fifo" >"$work/stamps") &
pids+=($!)
(cd "$work/rw" && exec "$rewire" run -- cargo run --offline -- "127.0.0.1:$port" >/dev/null 2>"$work/fifo") &
pids+=($!)
until grep -q 'rewire: watching' "$work/stamps" 2>/dev/null; do sleep 0.05; done
cp "$work/rw/src/main.rs" "$work/orig.rs"
lat=()
for i in $(seq "$n"); do
	edit=$edit_a; [ $((i % 2)) = 0 ] && edit=$edit_b
	sed "$edit" "$work/orig.rs" >"$work/rw/src/.main.rs.swp"
	before=$(grep -c 'rewire: patched' "$work/stamps" || true)
	t0=$(now_us)
	mv "$work/rw/src/.main.rs.swp" "$work/rw/src/main.rs"
	until [ "$(grep -c 'rewire: patched' "$work/stamps" || true)" -gt "$before" ]; do
		grep -q 'rewire: error' "$work/stamps" && { echo "bench: $(grep 'rewire: error' "$work/stamps" | tail -1)" >&2; exit 1; }
		sleep 0.002
	done
	t1=$(grep 'rewire: patched' "$work/stamps" | tail -n 1 | cut -d' ' -f1)
	lat+=($((t1 - t0)))
	sleep 0.3
done
answers "$port" | grep -q 'hello [AB]' || { echo "bench: the patched server does not answer with the edit" >&2; exit 1; }
kill "${pids[@]}" 2>/dev/null || true
replay=$(grep 'rewire: patched' "$work/stamps" | sed -n 's/.*compile \([0-9.]*\).*/\1/p' | tr '\n' ' ')

# cargo build + restart
cp -r "$top/examples/rust-server" "$work/plain"
rm -rf "$work/plain/target"
(cd "$work/plain" && cargo build --offline -q)
port2=$((port + 1))
"$work/plain/target/debug/rust-server" "127.0.0.1:$port2" >/dev/null &
server=$!
restart=()
for i in $(seq "$n"); do
	edit=$edit_a; [ $((i % 2)) = 0 ] && edit=$edit_b
	want=A; [ $((i % 2)) = 0 ] && want=B
	sed "$edit" "$work/orig.rs" >"$work/plain/src/.main.rs.swp"
	t0=$(now_us)
	mv "$work/plain/src/.main.rs.swp" "$work/plain/src/main.rs"
	(cd "$work/plain" && cargo build --offline -q)
	kill "$server"; wait "$server" 2>/dev/null || true
	"$work/plain/target/debug/rust-server" "127.0.0.1:$port2" >/dev/null &
	server=$!
	until answers "$port2" | grep -q "hello $want"; do sleep 0.002; done
	restart+=($(($(now_us) - t0)))
	sleep 0.3
done
kill "$server" 2>/dev/null || true

python3 - "${lat[*]}" "$replay" "${restart[*]}" <<'PY'
import statistics, sys
lat = sorted(int(x) / 1000 for x in sys.argv[1].split())
rep = sorted(float(x) for x in sys.argv[2].split())
rst = sorted(int(x) / 1000 for x in sys.argv[3].split())
med = statistics.median
print(f"rust-server: edit-to-running {med(lat):.0f} ms (min {lat[0]:.0f}, max {lat[-1]:.0f}, {len(lat)} saves); "
      f"rustc replay alone {med(rep):.0f} ms (min {rep[0]:.0f}, max {rep[-1]:.0f}); "
      f"cargo build + restart until it answers {med(rst):.0f} ms (min {rst[0]:.0f}, max {rst[-1]:.0f})")
print(f"  ratios: edit-to-running / replay {med(lat) / med(rep):.2f}; "
      f"cargo build + restart / edit-to-running {med(rst) / med(lat):.2f}")
PY
