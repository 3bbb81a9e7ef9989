#!/bin/bash
# The demo: run examples/bounce under rewire, edit its source twice while
# it runs, and apply each edit. The ball keeps its place, speed and frame
# count; only its behaviour changes.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
rewire=$top/build/rewire
work=$(mktemp -d)
trap 'kill $pid 2>/dev/null; rm -rf "$work"' EXIT
cd "$work"
cp "$top/examples/bounce/bounce.c" .
cc -g -O2 -o bounce bounce.c

say() { printf '\n\033[1m== %s\033[0m\n' "$*" >&2; }
patch() {
	sed -i "$1" bounce.c
	cc -g -O2 -c bounce.c -o bounce.o
	"$rewire" apply --pid "$pid" bounce.o
}

say "rewire run ./bounce  (the program as built)"
"$rewire" run ./bounce &
sleep 0.2
pid=$(pgrep -P $! bounce || true)
[ -n "$pid" ] || { echo "demo: the program did not start" >&2; exit 1; }
sleep 2

say "edit draw(): the ball becomes '@' on a blank court — applying to pid $pid"
patch "s/court\[(int)pos\] = 'o'/court[(int)pos] = '@'/; s/court\[i\] = '.'/court[i] = ' '/"
sleep 2

say "edit physics(): the ball goes twice as fast — same process, frame count goes on"
patch "s/pos += speed;/pos += 2 * speed;/"
sleep 2

say "done: pid $pid ran the whole time"
cat >&2 <<TXT

Try it by hand:
  cp $top/examples/bounce/bounce.c /tmp/ && cd /tmp && cc -g -O2 -o bounce bounce.c
  $rewire run ./bounce
  # in another terminal: edit /tmp/bounce.c, then
  cd /tmp && cc -g -O2 -c bounce.c -o bounce.o && $rewire apply --pid \$(pgrep -n bounce) bounce.o
TXT
