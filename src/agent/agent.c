/* The agent's life: start, serve the driver, get out of the way.
 *
 * The driver starts the program with LD_PRELOAD=librewire.so and
 * REWIRE_DIR=<private 0700 directory>. Without REWIRE_DIR the agent does
 * nothing at all. With it, the constructor removes both variables from the
 * environment (so the program's children are not attached by accident),
 * listens on <dir>/<pid>.sock, reserves memory near the executable while
 * the address space is still empty, and starts one thread that serves
 * drivers one connection at a time. A connection is a transaction: an
 * allocation it made and did not commit is given back when it ends.
 *
 * `rewire attach` loads the agent later, with dlopen, into a program that
 * runs, and calls rewire_agent_attach() with the directory: the same
 * start, once.
 *
 * A forked child is part of the program: it listens on a socket of its
 * own (made while it still has its parent's user, before a worker changes
 * user; a child of a process that changed user earlier makes it in that
 * user's subdirectory, user.c) and starts its own agent thread; the
 * session finds it there and patches it. Served is a peer of the user who
 * started the program, or root (SO_PEERCRED), whatever user the process
 * has become since. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include "agent.h"


uint64_t agent_page_size = 4096;
int agent_emulated;

/* qemu-user answers a readlink of /proc/self/exe with the guest program,
 * while a stat of it reaches the host's file: qemu itself. */
static int is_emulated(void)
{
	char path[4096];
	struct stat a, b;
	ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
	if (n <= 0 || stat("/proc/self/exe", &a) < 0)
		return 0;
	path[n] = 0;
	return stat(path, &b) == 0 && (a.st_dev != b.st_dev || a.st_ino != b.st_ino);
}
static int listen_fd = -1;
static int conn_fd = -1;	/* the connection being served */
/* A connection comes and goes under this lock: a fork() then knows
 * whether the child holds a copy of one (a driver waiting for its
 * parent's answer must see the channel close when the parent ends). */
static pthread_mutex_t conn_lock = PTHREAD_MUTEX_INITIALIZER;
static pid_t owner_pid;
static uid_t owner_uid;		/* who started the program */
static char sock_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
static char rewire_dir[128];	/* REWIRE_DIR: the session's, ours only (0700) */
static pthread_t agent_thread;

int agent_fail(struct agent_err *e, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof e->msg, fmt, ap);
	va_end(ap);
	return -1;
}

uint64_t agent_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Remove our own entry from LD_PRELOAD, keeping any others the user set. */
static void strip_preload(void)
{
	const char *v = getenv("LD_PRELOAD");
	if (!v)
		return;
	char *out = malloc(strlen(v) + 1), *copy = strdup(v);
	if (!out || !copy) {
		free(out);
		free(copy);
		return;
	}
	out[0] = 0;
	for (char *save, *tok = strtok_r(copy, ": ", &save); tok; tok = strtok_r(NULL, ": ", &save)) {
		const char *base = strrchr(tok, '/');
		if (!strcmp(base ? base + 1 : tok, "librewire.so"))
			continue;
		if (out[0])
			strcat(out, ":");
		strcat(out, tok);
	}
	if (out[0])
		setenv("LD_PRELOAD", out, 1);
	else
		unsetenv("LD_PRELOAD");
	free(out);
	free(copy);
}

static int peer_is_our_user(int fd)
{
	struct ucred cred;
	socklen_t len = sizeof cred;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return 0;
	return cred.uid == owner_uid || cred.uid == 0;
}

static void reply_error(int fd, const char *msg)
{
	struct proto_buf b = {0};
	proto_put_str(&b, msg);
	proto_send(fd, RW_MSG_ERROR, &b);
	proto_buf_free(&b);
}

/* A process exec'd from the program (follow.c), or started again by
 * `rewire run --restart`, starts with the patches the session has made so
 * far: its constructor waits here, before the program's own code runs,
 * until the session (REWIRE_HOLD is its pid) has brought it up to date
 * (GO), or has ended, or HOLD_MAX_S have passed (a session that lost
 * track of it must not keep the program from running for good). */
#define HOLD_MAX_S 60
static pthread_mutex_t hold_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t hold_cond;
static int held;
static pid_t hold_session;

int agent_is_held(void)
{
	pthread_mutex_lock(&hold_lock);
	int h = held;
	pthread_mutex_unlock(&hold_lock);
	return h;
}

static int session_runs(void)
{
	return kill(hold_session, 0) == 0 || errno == EPERM;
}

static int release_hold(void)
{
	pthread_mutex_lock(&hold_lock);
	if (held) {
		held = 0;
		pthread_cond_signal(&hold_cond);
	}
	pthread_mutex_unlock(&hold_lock);
	return 0;
}

static void hold_start(pid_t session)
{
	hold_session = session;
	pthread_condattr_t attr;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&hold_cond, &attr);
	pthread_condattr_destroy(&attr);
	held = 1;
}

static void hold_wait(void)
{
	pthread_mutex_lock(&hold_lock);
	/* A tenth of a second at a time: then whether the session still runs. */
	for (int i = 0; held && i < HOLD_MAX_S * 10; i++) {
		struct timespec at;
		clock_gettime(CLOCK_MONOTONIC, &at);
		at.tv_nsec += 100000000;
		if (at.tv_nsec >= 1000000000)
			at.tv_sec++, at.tv_nsec -= 1000000000;
		while (held && pthread_cond_timedwait(&hold_cond, &hold_lock, &at) != ETIMEDOUT)
			;
		if (held && !session_runs())
			break;
	}
	held = 0;
	pthread_mutex_unlock(&hold_lock);
}

static int dispatch(uint16_t type, struct proto_reader *req, struct proto_buf *reply, struct agent_err *e)
{
	switch (type) {
	case RW_MSG_HELLO: return request_hello(reply, e);
	case RW_MSG_LOOKUP: return request_lookup(req, reply, e);
	case RW_MSG_ALLOC: return request_alloc(req, reply, e);
	case RW_MSG_APPLY: return apply_patch(req, reply, e);
	case RW_MSG_GO: return release_hold();
	case RW_MSG_STATUS: return request_status(reply, e);
	case RW_MSG_REVERT: return apply_revert(req, reply, e);
	}
	return agent_fail(e, "unknown request %u", type);
}

static void serve(int fd)
{
	for (;;) {
		uint16_t type;
		uint8_t *payload;
		uint32_t len;
		if (proto_recv(fd, &type, &payload, &len) < 0) {
			if (errno == EPROTO)
				reply_error(fd, "malformed frame (not a rewire driver of this version?)");
			return;
		}
		struct proto_reader req = {payload, len, 0, 0};
		struct proto_buf reply = {0};
		struct agent_err e = {{0}};
		int rc = dispatch(type, &req, &reply, &e);
		if (rc == 0 && !reply.err)
			rc = proto_send(fd, RW_MSG_OK, &reply);
		else
			reply_error(fd, e.msg[0] ? e.msg : "out of memory");
		proto_buf_free(&reply);
		free(payload);
		if (rc < 0)
			return;
	}
}

static void *agent_main(void *arg)
{
	/* Short waits while the world is stopped must be short. */
	prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
	int lfd = listen_fd;	/* ours: a fork() does not change it in this process */
	for (;;) {
		struct pollfd p = {lfd, POLLIN, 0};
		if (poll(&p, 1, -1) < 0) {
			if (errno != EINTR)
				usleep(100000);
			continue;
		}
		pthread_mutex_lock(&conn_lock);
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		conn_fd = fd;
		pthread_mutex_unlock(&conn_lock);
		if (fd < 0)
			continue;
		/* Blocking, but a peer that stalls must not hold the agent forever. */
		fcntl(fd, F_SETFL, 0);
		struct timeval tv = {30, 0};
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
		if (peer_is_our_user(fd))
			serve(fd);
		apply_abort();
		pthread_mutex_lock(&conn_lock);
		close(fd);
		conn_fd = -1;
		pthread_mutex_unlock(&conn_lock);
	}
	return NULL;
}

/* Listen on <dir>/<pid>.sock. It is made under another name and renamed:
 * a session that sees the name appear can connect at once. */
static int open_socket(const char *dir)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int n = snprintf(sock_path, sizeof sock_path, "%s/%d.sock", dir, (int)getpid());
	if (n < 0 || (size_t)n + 4 >= sizeof sock_path)
		return -1;
	memcpy(sa.sun_path, sock_path, (size_t)n);
	memcpy(sa.sun_path + n, ".new", 5);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -1;
	unlink(sa.sun_path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || chmod(sa.sun_path, 0600) < 0 ||
	    listen(fd, 8) < 0 || rename(sa.sun_path, sock_path) < 0) {
		unlink(sa.sun_path);
		close(fd);
		return -1;
	}
	return fd;
}

static int start_thread(void)
{
	pthread_t t;
	pthread_attr_t attr;
	sigset_t all, old;
	/* The agent thread takes no signal of the program's, nor our own. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 256 << 10);
	int rc = pthread_create(&t, &attr, agent_main, NULL);
	pthread_attr_destroy(&attr);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc == 0) {
		agent_thread = t;
		pthread_setname_np(t, "rewire-agent");
	}
	return rc == 0 ? 0 : -1;
}

/* fork() returns in the parent once the child listens (or gave up), with
 * no patch begun in between: a session that patched the parent then
 * finds the child's socket, and patches it before it says "patched". */
static int fork_pipe[2] = {-1, -1};
static pthread_mutex_t walk_lock = PTHREAD_MUTEX_INITIALIZER;

int agent_dl_iterate(int (*cb)(struct dl_phdr_info *, size_t, void *), void *data)
{
	pthread_mutex_lock(&walk_lock);
	int rc = dl_iterate_phdr(cb, data);
	pthread_mutex_unlock(&walk_lock);
	return rc;
}

static void fork_prepare(void)
{
	apply_fork_prepare();
	api_fork_prepare();
	pthread_mutex_lock(&conn_lock);
	pthread_mutex_lock(&walk_lock);	/* last: a patch walks under its lock */
	if (listen_fd < 0 || pipe2(fork_pipe, O_CLOEXEC) < 0)
		fork_pipe[0] = fork_pipe[1] = -1;
}

static void fork_parent(void)
{
	if (fork_pipe[0] >= 0) {
		char c;
		close(fork_pipe[1]);
		struct pollfd p = {fork_pipe[0], POLLIN, 0};
		/* A child stopped at once (a debugger) must not hang the parent. */
		if (poll(&p, 1, 2000) > 0 && read(fork_pipe[0], &c, 1) < 0) {}
		close(fork_pipe[0]);
	}
	pthread_mutex_unlock(&walk_lock);
	pthread_mutex_unlock(&conn_lock);
	api_fork_parent();
	apply_fork_parent();
}

static void fork_told(void)
{
	if (fork_pipe[1] >= 0) {
		close(fork_pipe[0]);
		if (write(fork_pipe[1], "", 1) < 0) {}
		close(fork_pipe[1]);
	}
	fork_pipe[0] = fork_pipe[1] = -1;
}

/* The child has one thread: the one that forked. It gets an agent of its
 * own, unless its parent's was inert. */
static void fork_child(void)
{
	if (conn_fd >= 0)
		close(conn_fd);	/* the parent's driver, waiting for the parent */
	conn_fd = -1;
	pthread_mutex_unlock(&walk_lock);
	pthread_mutex_unlock(&conn_lock);
	api_fork_child();
	apply_fork_child();
	if (listen_fd < 0)
		return fork_told();
	close(listen_fd);
	/* An allocation of the parent's patch in progress is not ours. */
	region_rollback();
	owner_pid = getpid();
	listen_fd = open_socket(user_dir());
	if (listen_fd >= 0 && start_thread() == 0)
		return fork_told();
	fork_told();
	fprintf(stderr, "rewire: agent: process %d (forked from %d) cannot be patched: %s\n",
		(int)getpid(), (int)getppid(), listen_fd < 0 ? strerror(errno) : "no thread");
	if (listen_fd >= 0) {
		close(listen_fd);
		unlink(sock_path);
	}
	listen_fd = -1;
}

static int find_exe_text(struct dl_phdr_info *info, size_t size, void *data)
{
	uint64_t *range = data;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_LOAD)
			continue;
		uint64_t lo = info->dlpi_addr + ph->p_vaddr, hi = lo + ph->p_memsz;
		if (!range[0] || lo < range[0])
			range[0] = lo;
		if (hi > range[1])
			range[1] = hi;
	}
	return 1;	/* the first module is the executable */
}

/* The agent's set-up, the same at start-up and on attach: 0, or -1 with
 * why in e. Nothing is left half made: the program then runs without us. */
static int start(const char *dir, struct agent_err *e)
{
	uint64_t exe[2] = {0, 0};
	agent_dl_iterate(find_exe_text, exe);
	agent_page_size = (uint64_t)sysconf(_SC_PAGESIZE);
	agent_emulated = is_emulated();
	if (stop_init(e) < 0 || api_init(e) < 0 || region_reserve_near(exe[0], exe[1], e) < 0)
		return -1;
	listen_fd = open_socket(dir);
	if (listen_fd < 0)
		return agent_fail(e, "cannot listen on %s: %s", sock_path, strerror(errno));
	owner_pid = getpid();
	owner_uid = geteuid();
	snprintf(rewire_dir, sizeof rewire_dir, "%s", dir);
	user_init(dir, owner_uid);
	pthread_atfork(fork_prepare, fork_parent, fork_child);
	if (start_thread() == 0)
		return 0;
	close(listen_fd);
	listen_fd = -1;
	unlink(sock_path);
	return agent_fail(e, "cannot start its thread");
}

__attribute__((constructor)) static void agent_start(void)
{
	const char *env = getenv("REWIRE_DIR");
	if (!env)
		return;
	char dir[sizeof rewire_dir];
	snprintf(dir, sizeof dir, "%s", env);
	/* With REWIRE_EXE, a process that runs another program (the shell of
	 * a wrapper script) only passes the agent on to the program. */
	int ours = !follow_init(dir, getenv("REWIRE_EXE")) || follow_is_watched_exe();
	const char *hold_env = getenv("REWIRE_HOLD"), *session_env = getenv("REWIRE_SESSION");
	pid_t hold = hold_env ? (pid_t)atoi(hold_env) : 0;
	follow_set_session(session_env ? (pid_t)atoi(session_env) : 0);
	unsetenv("REWIRE_DIR");
	unsetenv("REWIRE_EXE");
	unsetenv("REWIRE_HOLD");
	unsetenv("REWIRE_SESSION");
	strip_preload();
	if (!ours)
		return;
	struct agent_err e;
	if (hold > 0)
		hold_start(hold);	/* before the socket: a GO may come at once */
	if (start(dir, &e) < 0) {
		fprintf(stderr, "rewire: agent: %s; the program runs without rewire\n", e.msg);
		return;
	}
	if (hold > 0)
		hold_wait();
}

/* `rewire attach`: the driver loaded us with dlopen into a program that
 * was started without rewire, and calls this through ptrace on one of its
 * threads, which it stopped outside the C library's locks (src/driver/
 * attach.c). dir is the session's socket directory. NULL when the agent
 * listens; else why not, in a buffer that stays (the driver reads it out
 * of the process). Nothing printed: the program's output is its own. */
__attribute__((visibility("default"))) const char *rewire_agent_attach(const char *dir)
{
	static struct agent_err e;
	if (listen_fd >= 0 || rewire_dir[0])
		return "the agent already runs in this process";
	if (!dir || strlen(dir) >= sizeof rewire_dir)
		return "the socket directory's path is too long";
	return start(dir, &e) == 0 ? NULL : e.msg;
}

static size_t put_decimal(char *out, unsigned long v)
{
	char tmp[24];
	size_t n = 0, len = 0;
	do
		tmp[n++] = (char)('0' + v % 10);
	while ((v /= 10));
	while (n)
		out[len++] = tmp[--n];
	return len;
}

/* <dir>/<pid>.crash holds "VERSION SIGNAL\n": the driver reads it once
 * the process is gone (`rewire run --restart` leaves that patch out). Only
 * system calls and our own code: this runs in a fault handler. */
void agent_note_crash(int version, int sig)
{
	char path[sizeof rewire_dir + 40], line[48];
	const char *dir = user_dir();
	size_t n = strnlen(dir, sizeof rewire_dir - 1), len = 0;
	if (!n || version <= 0)
		return;
	memcpy(path, dir, n);
	path[n++] = '/';
	n += put_decimal(path + n, (unsigned long)getpid());
	memcpy(path + n, ".crash", sizeof ".crash");
	len += put_decimal(line, (unsigned long)version);
	line[len++] = ' ';
	len += put_decimal(line + len, (unsigned long)sig);
	line[len++] = '\n';
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return;
	if (write(fd, line, len) < 0) {}	/* a crash report: nothing to do if it fails */
	close(fd);
}

/* <dir>/<session>.said holds the number of the session's last patch said
 * to the user (session/batch.c). A crash of a patch's code at once races
 * the session's "patched" line: the agent's report, from the crashing
 * thread, waits for it, while this thread answers the patch. Not in this
 * thread (it would wait for itself), nor without a session saying
 * patches. Only system calls: this runs in a fault handler. */
void agent_wait_said(uint32_t gen)
{
	char path[sizeof rewire_dir + 40], buf[24];
	const char *dir = user_dir();
	size_t n = strnlen(dir, sizeof rewire_dir - 1);
	pid_t session = follow_session();
	if (!gen || !n || session <= 0 || pthread_equal(pthread_self(), agent_thread))
		return;
	memcpy(path, dir, n);
	path[n++] = '/';
	n += put_decimal(path + n, (unsigned long)session);
	memcpy(path + n, ".said", sizeof ".said");
	for (int waited = 0; waited < 3000; waited += 10) {
		int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0)
			return;
		ssize_t len = read(fd, buf, sizeof buf - 1);
		close(fd);
		unsigned long said = 0;
		for (ssize_t i = 0; i < len && buf[i] >= '0' && buf[i] <= '9'; i++)
			said = said * 10 + (unsigned long)(buf[i] - '0');
		if (len > 0 && said >= gen)
			return;
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
}

/* A request file as `rewire revert` writes it (driver/revert.c):
 * <dir>/s<session>.<pid>.revert, "GEN PID crash". */
void agent_tell_rolled_back(uint32_t gen)
{
	char path[sizeof rewire_dir + 64], tmp[sizeof path + 8], line[64];
	pid_t session = follow_session();
	if (session <= 0 || !rewire_dir[0])
		return;
	snprintf(path, sizeof path, "%s/s%d.%d.revert", rewire_dir, (int)session, (int)getpid());
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	size_t n = put_decimal(line, gen);
	line[n++] = ' ';
	n += put_decimal(line + n, (unsigned long)getpid());
	memcpy(line + n, " crash\n", sizeof " crash\n" - 1);
	n += sizeof " crash\n" - 1;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return;
	int ok = write(fd, line, n) == (ssize_t)n;
	close(fd);
	if (!ok || rename(tmp, path) < 0)
		unlink(tmp);
}

__attribute__((destructor)) static void agent_stop(void)
{
	if (owner_pid && owner_pid == getpid())
		unlink(sock_path);
}
