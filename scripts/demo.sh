#!/bin/bash
# The demo: run examples/bounce under rewire, edit its source twice while
# it runs, and let rewire patch each save in. The ball keeps its place,
# speed and frame count; only its behaviour changes.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
rewire=$top/build/rewire
work=$(mktemp -d)
# Out of the directory before it goes: a shell left in it would say
# "getcwd() failed".
run=
trap '{ [ -z "$run" ] || { kill $run; wait $run; }; } 2>/dev/null || true; cd /; rm -rf "$work"' EXIT
cd "$work"
cp "$top/examples/bounce/bounce.c" .
# What a build system writes (CMake, Meson, bear): how to compile each file.
flags='"-g", "-O2", "-fno-ipa-ra"'
cat >compile_commands.json <<JSON
[{"directory": "$work", "file": "bounce.c", "output": "$work/bounce.o",
  "arguments": ["cc", $flags, "-c", "-o", "bounce.o", "bounce.c"]}]
JSON
cc -g -O2 -fno-ipa-ra -c -o bounce.o bounce.c && cc -o bounce bounce.o

say() { printf '\n\033[1m== %s\033[0m\n' "$*" >&2; }

say "rewire run ./bounce  (the program as built; rewire watches bounce.c)"
"$rewire" run ./bounce &
run=$!
sleep 2.5

say "editing draw() in bounce.c: the ball becomes '@' on a blank court — and saving (-O2 built draw() into tick(): rewire patches tick)"
sed -i "s/court\[(int)pos\] = 'o'/court[(int)pos] = '@'/; s/court\[i\] = '.'/court[i] = ' '/" bounce.c
sleep 2.5

say "editing physics(), also inside tick(): the ball goes twice as fast — same process, the frame count goes on"
sed -i "s/pos += speed;/pos += 2 * speed;/" bounce.c
sleep 2.5

say "done: one process ran the whole time"
cat >&2 <<TXT

Try it by hand:
  cp -r $top/examples/bounce /tmp/bounce && cd /tmp/bounce && make
  $rewire run ./bounce
  # then edit /tmp/bounce/bounce.c in your editor and save: rewire patches it in.
TXT
