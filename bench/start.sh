#!/bin/bash
# What a `rewire run` session costs at start, against the program's size,
# and how soon an edit saved right after the start runs.
#  - start cost: from `rewire run` until rewire watches and no child of
#    rewire but the program has run for a second (the compilers and
#    preprocessor passes of the start are over): the CPU time of rewire
#    and of the children it reaped (utime + stime + cutime + cstime of
#    /proc/PID/stat; the program, still running, is not counted), and the
#    wall time. Generated C programs of 25 to 200 units (bench/gen_c.py,
#    100 functions and 20 project headers a unit), GNU bc and nginx from
#    Debian's source (their own builds, which leave no depfiles).
#  - nginx, an edit of ngx_http_header_filter_module.c saved 1 s and 30 s
#    after `rewire run`: save to "patched", beside the compile of that
#    unit alone with its own command, after as long a pause (the first
#    compile after an idle spell is slower, whoever runs it).
#   bench/start.sh [N]    (N sessions a program and a moment, default 3)
#   BENCH_START_UNITS="25 50 100 200" (the default), BENCH_REAL=0 leaves
#   bc and nginx out.
set -eu
. "$(dirname "$0")/lib.sh"
n=${1:-3}
bench_begin start

# cpu_s PID: seconds of CPU of PID and of its reaped children.
cpu_s() {
	local st
	read -r -a st < <(sed 's/.*) //' "/proc/$1/stat")
	python3 -c "print(f'{(${st[11]} + ${st[12]} + ${st[13]} + ${st[14]}) / $(getconf CLK_TCK):.2f}')"
}

# others PID COMM: how many children of PID are not the program (COMM).
others() {
	local k c count=0
	for k in $(pgrep -P "$1"); do
		c=$(cat "/proc/$k/comm" 2>/dev/null) || continue
		[ "$c" = "$2" ] || count=$((count + 1))
	done
	echo "$count"
}

# start_cost NAME DIR CMD...: n sessions of `rewire run -- CMD` in DIR;
# series NAME.start_cpu (s) and NAME.start_idle (s, to the last compiler).
start_cost() {
	local name=$1 dir=$2 cpu=() idle=() i t0 quiet last
	shift 2
	local comm
	comm=$(basename "$1" | cut -c1-15)
	for i in $(seq "$n"); do
		t0=$(now_us)
		session_start "$name.$i" "$dir" "$@"
		quiet=0 last=$(now_us)
		while ((quiet < 20)); do
			if [ "$(others "$session_pid" "$comm")" = 0 ]; then
				quiet=$((quiet + 1))
			else
				quiet=0 last=$(now_us)
			fi
			sleep 0.05
		done
		cpu+=("$(cpu_s "$session_pid")")
		idle+=("$(python3 -c "print(f'{($last - $t0) / 1e6:.2f}')")")
		say "start: $name: session $i of $n: ${cpu[-1]} s of CPU, the last compiler ${idle[-1]} s after the start"
		session_stop
	done
	series "$name.start_cpu" s "${cpu[@]}"
	series "$name.start_idle" s "${idle[@]}"
}

session_stop() {
	kill "$session_pid"
	wait "$session_pid" 2>/dev/null || true
	sleep 0.5
}

units=()
for u in ${BENCH_START_UNITS:-25 50 100 200}; do
	say "start: gen_c: $u units, 100 functions and 20 headers each (make -j2)"
	python3 "$top/bench/gen_c.py" "$work/g$u" "$u" 100 20
	make -s -j2 -C "$work/g$u"
	units+=("$u")
	start_cost "g$u" "$work/g$u" ./prog
done
series start.units count "${units[@]}"

[ "${BENCH_REAL:-1}" = 0 ] && exit 0

# Debian's programs, each a copy of the pristine tree (rewire's cache and
# the edits stay out of the shared build).
real_tree() {
	local tree
	tree=$("$top/scripts/third_party.sh" "$1" 2>/dev/null) || return 1
	rm -rf "$work/$1"
	cp -a "$tree/../$1-pristine" "$work/$1"
	sed -i "s|$tree|$work/$1|g" "$work/$1/compile_commands.json"
}

if real_tree bc; then
	series bc.units count "$(grep -c '"file"' "$work/bc/compile_commands.json")"
	start_cost bc "$work/bc" bc/bc -q
else
	say "start: bc: cannot fetch or build Debian's bc source: skipped"
fi

real_tree nginx || { say "start: nginx: cannot fetch or build Debian's nginx source: skipped"; exit 0; }
ngx=$work/nginx
series nginx.units count "$(grep -c '"file"' "$ngx/compile_commands.json")"
mkdir -p "$work/ngx/html" "$work/ngx/logs"
echo hello >"$work/ngx/html/index.html"
cat >"$work/ngx/nginx.conf" <<CONF
daemon off;
master_process on;
worker_processes 2;
error_log $work/ngx/logs/error.log;
pid $work/ngx/logs/nginx.pid;
events { worker_connections 64; }
http {
	access_log off;
	server {
		listen 127.0.0.1:$((20000 + RANDOM % 20000));
		location / { root $work/ngx/html; }
	}
}
CONF
nginx_cmd=(objs/nginx -p "$work/ngx/" -c "$work/ngx/nginx.conf")
start_cost nginx "$ngx" "${nginx_cmd[@]}"

# The edit, and the unit's compile alone (its command, its object elsewhere).
src=src/http/ngx_http_header_filter_module.c
cp -p "$ngx/$src" "$work/header.orig"
sed 's/if (clcf->server_tokens == NGX_HTTP_SERVER_TOKENS_ON) {/if (clcf->server_tokens != NGX_HTTP_SERVER_TOKENS_ON) {/' \
	"$work/header.orig" >"$work/header.edit"
cmp -s "$work/header.orig" "$work/header.edit" && { echo "bench: start: the nginx edit changes nothing" >&2; exit 1; }
alone=$(python3 - "$ngx/compile_commands.json" "$src" "$work/alone.o" <<'PY'
import json, shlex, sys
for e in json.load(open(sys.argv[1])):
    if e["file"].endswith(sys.argv[2]):
        a = e.get("arguments") or shlex.split(e["command"])
        a[a.index("-o") + 1] = sys.argv[3]
        print(f"cd {shlex.quote(e['directory'])} && " + shlex.join(a))
        break
PY
)
[ -n "$alone" ] || { echo "bench: start: no command for $src" >&2; exit 1; }
for at in 1 30; do
	e2e=() comp=() cpu=()
	for i in $(seq "$n"); do
		session_start "nginx.at$at.$i" "$ngx" "${nginx_cmd[@]}"
		sleep "$at"
		session_save "nginx.at$at.$i" "$ngx/$src" "$work/header.edit"
		e2e+=($(us_to_ms "$save_us"))
		cpu+=("$(cpu_s "$session_pid")")
		say "start: nginx: edit saved ${at} s after the start ($i of $n): $save_line"
		session_stop
		cp -p "$work/header.orig" "$ngx/$src"
		sleep "$at"
		t0=$(now_us)
		(eval "$alone") >/dev/null 2>&1
		comp+=($(us_to_ms $(($(now_us) - t0))))
	done
	series "nginx.at$at.edit_to_running" ms "${e2e[@]}"
	series "nginx.at$at.compile_alone" ms "${comp[@]}"
	series "nginx.at$at.cpu" s "${cpu[@]}"
done
