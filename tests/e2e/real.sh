# tests/e2e/real.sh: real programs nobody here wrote — GNU bc and nginx (a
# pre-fork server: a master and its workers), from Debian's source
# packages, each built by its own build system (with bear for
# compile_commands.json) — running under `rewire run` and patched by an
# edit of one of their source files. Helpers: lib.sh.

e2e_test t_real_bc "a real program: GNU bc from Debian's source, edited while it runs" once timeout=300
t_real_bc() {
	local tree top=$RW_TESTS/..
	tree=$("$top/scripts/third_party.sh" bc 2>"$W/tp.err") ||
		fail "cannot fetch or build bc: $(tail -n 3 "$W/tp.err" | tr '\n' ' ')"
	# The tree is shared by runs: start from the source as released.
	cp -p "$tree/../bc-pristine/bc/execute.c" "$tree/bc/execute.c"
	P=$tree LOG=$W/bc.log ERR=$W/bc.err
	mkfifo "$W/in"
	(cd "$tree" && exec "$REWIRE" run -- bc/bc -q <"$W/in") >"$LOG" 2>"$ERR" &
	RUN_PID=$!
	rw_track "$RUN_PID"
	exec 3>"$W/in"
	wait_for "$ERR" '^rewire: watching' 20 || fail "rewire does not watch bc's sources"
	VPID=$(pgrep -P "$RUN_PID" bc | head -n 1)
	[[ -n $VPID ]] || fail "bc is not running under rewire"
	rw_track "$VPID"
	VSTART=$(proc_start "$VPID")
	printf 'x = 42\nlength(12345)\n' >&3
	wait_for "$LOG" '^5$' 10 || fail "bc does not answer length(12345) = 5"
	sleep 1	# let the baselines settle
	# bc's interpreter: length() counts digits; make it count 1000 more.
	sed -i 's/+ ex_stack->s_num->n_scale);/+ ex_stack->s_num->n_scale + 1000);/' "$tree/bc/execute.c"
	grep -q 'n_scale + 1000' "$tree/bc/execute.c" || fail "the edit did not apply to execute.c"
	wait_err '^rewire: patched .*execute.c' 1 60 || fail "no patch of execute.c"
	printf 'length(12345)\nx\n' >&3
	wait_for "$LOG" '^1005$' 10 || fail "bc does not run the edited length(): $(tail -n 2 "$LOG" | tr '\n' ' ')"
	wait_for "$LOG" '^42$' 10 || fail "bc lost its variable x"
	assert_alive "after the patch"
	[[ $(pgrep -P "$RUN_PID" bc | head -n 1) == "$VPID" ]] || fail "bc's pid changed"
	exec 3>&-
	cp -p "$tree/../bc-pristine/bc/execute.c" "$tree/bc/execute.c"
	pass
}

# nginx_ask N: N requests; the Server header of each answer, one per line,
# in $W/last (and appended to $W/answers).
nginx_ask() {
	local i
	: >"$W/last"
	for ((i = 0; i < $1; i++)); do
		if exec 3<>"/dev/tcp/127.0.0.1/$PORT"; then
			printf 'GET / HTTP/1.0\r\n\r\n' >&3
			{ tr -d '\r' <&3 || echo "no answer"; } | grep -a -m1 -e '^Server:' -e '^no answer' >>"$W/last" ||
				echo "no Server header" >>"$W/last"
			exec 3<&-
		else
			echo "no connection" >>"$W/last"
		fi
	done
	cat "$W/last" >>"$W/answers"
}

e2e_test t_real_nginx "a real pre-fork server: nginx from Debian's source, its master and 3 workers (as nobody) patched by one save" once heavy timeout=900
t_real_nginx() {
	local tree top=$RW_TESTS/.. user= w
	tree=$("$top/scripts/third_party.sh" nginx 2>"$W/tp.err") ||
		fail "cannot fetch or build nginx: $(tail -n 3 "$W/tp.err" | tr '\n' ' ')"
	local src=src/http/ngx_http_header_filter_module.c
	cp -p "$tree/../nginx-pristine/$src" "$tree/$src"
	PORT=$((20000 + RANDOM % 20000))
	mkdir -p "$W/ngx/html" "$W/ngx/logs"
	echo hello >"$W/ngx/html/index.html"
	if ((EUID == 0)); then user="user nobody nogroup;"; fi
	cat >"$W/ngx/nginx.conf" <<CONF
daemon off;
master_process on;
worker_processes 3;
$user
error_log $W/ngx/logs/error.log;
pid $W/ngx/logs/nginx.pid;
events { worker_connections 64; }
http {
	access_log off;
	server {
		listen 127.0.0.1:$PORT;
		location / { root $W/ngx/html; }
	}
}
CONF
	P=$tree LOG=$W/nginx.log ERR=$W/nginx.err
	(cd "$tree" && exec "$REWIRE" run -- objs/nginx -p "$W/ngx/" -c "$W/ngx/nginx.conf") >"$LOG" 2>"$ERR" &
	RUN_PID=$!
	rw_track "$RUN_PID"
	wait_for "$ERR" '^rewire: watching' 20 || fail "rewire does not watch nginx's sources"
	VPID=$(pgrep -P "$RUN_PID" nginx | head -n 1)
	[[ -n $VPID ]] || fail "nginx is not running under rewire"
	rw_track "$VPID"
	VSTART=$(proc_start "$VPID")
	local end=$((SECONDS + 20))
	until (($(pgrep -c -P "$VPID" nginx) == 3)); do
		((SECONDS < end)) || fail "nginx did not start 3 workers: $(tail -n 3 "$W/ngx/logs/error.log" | tr '\n' ' ')"
		sleep 0.2
	done
	local workers
	workers=$(pgrep -P "$VPID" nginx | tr '\n' ' ')
	if ((EUID == 0)); then
		for w in $workers; do
			[[ $(stat -c %U "/proc/$w") == nobody ]] || fail "worker $w runs as $(stat -c %U "/proc/$w"), not nobody"
		done
	fi
	nginx_ask 6
	! grep -qv '^Server: nginx/' "$W/last" || fail "before the edit: $(sort "$W/last" | uniq -c | tr '\n' ' ')"
	sleep 1	# the baselines settle
	# server_tokens is on: the full "Server: nginx/1.22.1". The edit turns
	# the test around, and the answer says "Server: nginx".
	sed -i 's/if (clcf->server_tokens == NGX_HTTP_SERVER_TOKENS_ON) {/if (clcf->server_tokens != NGX_HTTP_SERVER_TOKENS_ON) {/' \
		"$tree/$src"
	(($(grep -c '!= NGX_HTTP_SERVER_TOKENS_ON' "$tree/$src") == 2)) || fail "the edit did not apply to $src"
	wait_err '^rewire: patched .*ngx_http_header_filter_module.c' 1 120 ||
		fail "no patch of ngx_http_header_filter_module.c: $(tail -n 2 "$ERR" | tr '\n' ' ')"
	grep -q '^rewire: patched .* in 4 processes ' "$ERR" ||
		fail "not the master and 3 workers: $(grep '^rewire: patched' "$ERR")"
	nginx_ask 15
	! grep -qv '^Server: nginx$' "$W/last" ||
		fail "an answer of the old code after 'patched': $(sort "$W/last" | uniq -c | tr '\n' ' ')"
	[[ $(pgrep -P "$VPID" nginx | tr '\n' ' ') == "$workers" ]] || fail "the workers changed: $workers, now $(pgrep -P "$VPID" nginx | tr '\n' ' ')"
	assert_alive "after the patch"
	cp -p "$tree/../nginx-pristine/$src" "$tree/$src"
	pass
}
