/* The agent's life: start, serve the driver, get out of the way.
 *
 * The driver starts the program with LD_PRELOAD=librewire.so and
 * REWIRE_DIR=<private 0700 directory>. Without REWIRE_DIR the agent does
 * nothing at all. With it, the constructor removes both variables from the
 * environment (so the program's children are not attached by accident),
 * binds <dir>/<pid>.sock, reserves memory near the executable while the
 * address space is still empty, and starts one thread that serves drivers
 * one connection at a time. A connection is a transaction: an allocation it
 * made and did not commit is given back when it ends.
 *
 * Only a peer of our own user is served (SO_PEERCRED). After fork() the
 * child has no agent thread: it closes the socket and stays inert. */
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
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include "agent.h"

static int listen_fd = -1;
static pid_t owner_pid;
static char sock_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
static char rewire_dir[128];	/* REWIRE_DIR: the session's, ours only (0700) */

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
	return cred.uid == geteuid();
}

static void reply_error(int fd, const char *msg)
{
	struct rw_buf b = {0};
	rw_put_str(&b, msg);
	rw_send(fd, RW_MSG_ERROR, &b);
	rw_buf_free(&b);
}

static int dispatch(uint16_t type, struct rw_reader *req, struct rw_buf *reply, struct agent_err *e)
{
	switch (type) {
	case RW_MSG_HELLO: return apply_hello(reply, e);
	case RW_MSG_LOOKUP: return apply_lookup(req, reply, e);
	case RW_MSG_ALLOC: return apply_alloc(req, reply, e);
	case RW_MSG_APPLY: return apply_patch(req, reply, e);
	}
	return agent_fail(e, "unknown request %u", type);
}

static void serve(int fd)
{
	for (;;) {
		uint16_t type;
		uint8_t *payload;
		uint32_t len;
		if (rw_recv(fd, &type, &payload, &len) < 0) {
			if (errno == EPROTO)
				reply_error(fd, "malformed frame (not a rewire driver of this version?)");
			return;
		}
		struct rw_reader req = {payload, len, 0, 0};
		struct rw_buf reply = {0};
		struct agent_err e = {{0}};
		int rc = dispatch(type, &req, &reply, &e);
		if (rc == 0 && !reply.err)
			rc = rw_send(fd, RW_MSG_OK, &reply);
		else
			reply_error(fd, e.msg[0] ? e.msg : "out of memory");
		rw_buf_free(&reply);
		free(payload);
		if (rc < 0)
			return;
	}
}

static void *agent_main(void *arg)
{
	/* Short waits while the world is stopped must be short. */
	prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
	for (;;) {
		int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EINTR && errno != ECONNABORTED)
				usleep(100000);
			continue;
		}
		/* A peer that stalls must not hold the agent forever. */
		struct timeval tv = {30, 0};
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
		if (peer_is_our_user(fd))
			serve(fd);
		apply_abort();
		close(fd);
	}
	return NULL;
}

static void after_fork_child(void)
{
	/* The agent thread did not come along: stay inert in the child. */
	if (listen_fd >= 0)
		close(listen_fd);
	listen_fd = -1;
}

static int open_socket(const char *dir)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int n = snprintf(sock_path, sizeof sock_path, "%s/%d.sock", dir, (int)getpid());
	if (n < 0 || (size_t)n >= sizeof sock_path)
		return -1;
	strcpy(sa.sun_path, sock_path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	unlink(sock_path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || chmod(sock_path, 0600) < 0 ||
	    listen(fd, 8) < 0) {
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
	if (rc == 0)
		pthread_setname_np(t, "rewire-agent");
	return rc == 0 ? 0 : -1;
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

__attribute__((constructor)) static void agent_start(void)
{
	const char *env = getenv("REWIRE_DIR");
	if (!env)
		return;
	char dir[sizeof rewire_dir];
	snprintf(dir, sizeof dir, "%s", env);
	unsetenv("REWIRE_DIR");
	strip_preload();

	struct agent_err e;
	uint64_t exe[2] = {0, 0};
	dl_iterate_phdr(find_exe_text, exe);
	if (stop_init(&e) < 0 || api_init(&e) < 0 || region_reserve_near(exe[0], exe[1], &e) < 0) {
		fprintf(stderr, "rewire: agent: %s; the program runs without rewire\n", e.msg);
		return;
	}
	listen_fd = open_socket(dir);
	if (listen_fd < 0) {
		fprintf(stderr, "rewire: agent: cannot listen on %s: %s; the program runs without rewire\n",
			sock_path, strerror(errno));
		return;
	}
	owner_pid = getpid();
	memcpy(rewire_dir, dir, sizeof rewire_dir);
	pthread_atfork(NULL, NULL, after_fork_child);
	if (start_thread() < 0) {
		fprintf(stderr, "rewire: agent: cannot start its thread; the program runs without rewire\n");
		close(listen_fd);
		listen_fd = -1;
		unlink(sock_path);
	}
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
	size_t n = strnlen(rewire_dir, sizeof rewire_dir - 1), len = 0;
	if (!n || version <= 0)
		return;
	memcpy(path, rewire_dir, n);
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
	ssize_t w = write(fd, line, len);
	(void)w;
	close(fd);
}

__attribute__((destructor)) static void agent_stop(void)
{
	if (owner_pid && owner_pid == getpid())
		unlink(sock_path);
}
