/* The driver's side of the channel: find the agent of a process, and the
 * requests it answers.
 *
 * Agents listen in a private directory, $XDG_RUNTIME_DIR/rewire or
 * /tmp/rewire-UID, which must be ours and mode 0700: no other user can
 * reach a socket there, and no other user can plant one for us.
 *
 * Every wait for an agent has a limit: a process that is stopped (SIGSTOP,
 * a debugger) or whose agent is stuck must not hold up a session of many
 * processes. HELLO, LOOKUP, ALLOC and GO take an agent milliseconds; 10 s
 * leaves room for a loaded machine. APPLY may wait for the program's safe
 * point (10 s at most, api.c) and runs the new code's constructors and the
 * program's hooks: it has 6 times as long. The limit holds for each wait
 * (a connection in a full backlog, each write, each read), not for the
 * whole request. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>
#include "driver.h"

#define REPLY_LIMIT_MS 10000
#define APPLY_LIMIT_TIMES 6

/* The last request's process did not answer in time. */
static int no_answer;

/* REWIRE_REPLY_TIMEOUT_MS replaces the 10 s: the tests shorten it to see a
 * process that does not answer in seconds. It is not for users. */
static int limit_ms(uint16_t type)
{
	static int ms;
	if (!ms) {
		const char *env = getenv("REWIRE_REPLY_TIMEOUT_MS");
		ms = env && atoi(env) > 0 ? atoi(env) : REPLY_LIMIT_MS;
	}
	return type == RW_MSG_APPLY ? ms * APPLY_LIMIT_TIMES : ms;
}

static void set_limit(int fd, int optname, int ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
	setsockopt(fd, SOL_SOCKET, optname, &tv, sizeof tv);
}

static const char *request_name(uint16_t type)
{
	switch (type) {
	case RW_MSG_HELLO: return "HELLO";
	case RW_MSG_LOOKUP: return "LOOKUP";
	case RW_MSG_ALLOC: return "ALLOC";
	case RW_MSG_APPLY: return "APPLY";
	case RW_MSG_GO: return "GO";
	case RW_MSG_REVERT: return "REVERT";
	case RW_MSG_STATUS: return "STATUS";
	}
	return "connect";
}

static int fail_no_answer(uint16_t type)
{
	no_answer = 1;
	return rw_fail("the agent did not answer within %g s (%s)", limit_ms(type) / 1000.0,
		       request_name(type));
}

int chan_no_answer(void)
{
	return no_answer;
}

int chan_socket_dir(char *out, size_t cap)
{
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	struct stat st;
	if (xdg && xdg[0])
		snprintf(out, cap, "%s/rewire", xdg);
	else
		snprintf(out, cap, "/tmp/rewire-%u", (unsigned)getuid());
	if (mkdir(out, 0700) < 0 && errno != EEXIST)
		return rw_fail("cannot create %s: %s", out, strerror(errno));
	if (lstat(out, &st) < 0)
		return rw_fail("%s: %s", out, strerror(errno));
	if (!S_ISDIR(st.st_mode) || st.st_uid != getuid() || (st.st_mode & 077))
		return rw_fail("%s must be a directory owned by you with mode 0700: refusing to "
			       "use it", out);
	return 0;
}

int chan_agent_file(const char *dir, int pid, const char *name, char *out, size_t cap)
{
	struct stat st;
	snprintf(out, cap, "%s/%d.%s", dir, pid, name);
	if (lstat(out, &st) == 0)
		return 0;
	DIR *d = opendir(dir);
	struct dirent *e;
	int found = 0;
	while (d && !found && (e = readdir(d))) {
		if (e->d_name[0] != 'u' || e->d_type != DT_DIR)
			continue;
		snprintf(out, cap, "%s/%s/%d.%s", dir, e->d_name, pid, name);
		found = lstat(out, &st) == 0;
	}
	if (d)
		closedir(d);
	if (!found)
		snprintf(out, cap, "%s/%d.%s", dir, pid, name);
	return found ? 0 : -1;
}

int chan_crash_blame(int pid, int sig)
{
	char dir[256], path[320], buf[64];
	int version = 0, noted = 0;
	if (chan_socket_dir(dir, sizeof dir) < 0)
		return 0;
	chan_agent_file(dir, pid, "crash", path, sizeof path);
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	unlink(path);
	buf[n > 0 ? n : 0] = 0;
	/* Another signal: the patch's fault was handled, this one is not it. */
	if (sscanf(buf, "%d %d", &version, &noted) != 2 || noted != sig || version < 0)
		return 0;
	return version;
}

int chan_connect(int pid, int wait_ms)
{
	char dir[256];
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (chan_socket_dir(dir, sizeof dir) < 0)
		return -1;
	char path[512];
	no_answer = 0;
	for (int waited = 0;; waited += 20) {
		chan_agent_file(dir, pid, "sock", path, sizeof path);
		if (strlen(path) >= sizeof sa.sun_path)
			return rw_fail("socket path %s is too long", path);
		memcpy(sa.sun_path, path, strlen(path) + 1);
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return rw_fail("socket: %s", strerror(errno));
		/* An agent that accepts nothing fills its backlog: then connect
		 * waits, as long as this. */
		set_limit(fd, SO_SNDTIMEO, limit_ms(0));
		if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0)
			return fd;
		int e = errno;
		close(fd);
		if (e == EAGAIN)
			return fail_no_answer(0);
		if (waited >= wait_ms || kill(pid, 0) < 0) {
			if (kill(pid, 0) < 0)
				return rw_fail("process %d: %s", pid, strerror(errno == ESRCH ? ESRCH : errno));
			return rw_fail("process %d has no rewire agent (%s: %s); start it with "
				       "`rewire run`", pid, sa.sun_path, strerror(e));
		}
		usleep(20000);
	}
}

/* One request, one reply. An error reply becomes the error message; -2:
 * the channel ended without one, or the process did not answer in time
 * (chan_no_answer()): the request may have been carried out. A request not
 * sent whole in time is not (-1): the agent reads only whole frames. */
int chan_request(int fd, uint16_t type, const struct proto_buf *req, struct proto_reader *reply)
{
	uint16_t rtype;
	uint8_t *payload;
	uint32_t len;
	no_answer = 0;
	set_limit(fd, SO_SNDTIMEO, limit_ms(type));
	set_limit(fd, SO_RCVTIMEO, limit_ms(type));
	if (proto_send(fd, type, req) < 0) {
		if (errno == EAGAIN)
			return fail_no_answer(type);
		return rw_fail("the agent closed the channel: %s", strerror(errno));
	}
	if (proto_recv(fd, &rtype, &payload, &len) < 0) {
		if (errno == EAGAIN)
			fail_no_answer(type);
		else
			rw_fail("no answer from the agent: %s", errno ? strerror(errno) : "channel closed");
		return -2;
	}
	*reply = (struct proto_reader){payload, len, 0, 0};
	if (rtype == RW_MSG_OK)
		return 0;
	char msg[1024];
	proto_get_str(reply, msg, sizeof msg);
	free(payload);
	reply->p = NULL;
	return rw_fail("%s", rtype == RW_MSG_ERROR && !reply->err ? msg : "malformed reply");
}

int chan_hello(struct link_process *p)
{
	struct proto_reader r;
	struct msg_hello h;
	if (chan_request(p->fd, RW_MSG_HELLO, NULL, &r) < 0)
		return -1;
	int err = msg_get_hello(&r, &h);
	free((void *)r.p);
	if (err < 0) {
		msg_hello_free(&h);
		return rw_fail("malformed answer from the agent");
	}
	p->pid = (int)h.pid;
	p->mods = h.mods, p->nmods = h.nmods;
	p->reg = h.reg, p->nreg = h.nreg;
	p->version = (int)h.version;
	p->gen = h.gen;
	p->held = h.held;
	return 0;
}

void chan_process_free(struct link_process *p)
{
	for (size_t i = 0; p->mods && i < p->nmods; i++)
		free(p->mods[i].path);
	for (size_t i = 0; p->reg && i < p->nreg; i++) {
		free(p->reg[i].scope);
		free(p->reg[i].name);
	}
	free(p->mods);
	free(p->reg);
	p->mods = NULL, p->reg = NULL, p->nmods = p->nreg = 0;
}

int chan_peek(int pid, uint32_t *gen, int *held)
{
	struct link_process p = {.fd = chan_connect(pid, 0)};
	if (p.fd < 0)
		return -1;
	int rc = chan_hello(&p);
	close(p.fd);
	*gen = p.gen;
	*held = p.held;
	chan_process_free(&p);
	return rc;
}

int chan_release(int pid)
{
	struct proto_reader r;
	int fd = chan_connect(pid, 0), rc = -1;
	if (fd >= 0 && (rc = chan_request(fd, RW_MSG_GO, NULL, &r)) == 0)
		free((void *)r.p);
	if (fd >= 0)
		close(fd);
	return rc;
}

int chan_revert(int pid, const struct msg_revert *rv, struct msg_reverted *out)
{
	struct proto_buf b = {0};
	struct proto_reader r;
	int fd = chan_connect(pid, 0), rc = -1;
	msg_put_revert(&b, rv);
	if (fd >= 0 && (rc = chan_request(fd, RW_MSG_REVERT, &b, &r)) == 0) {
		if (msg_get_reverted(&r, out) < 0)
			rc = rw_fail("process %d: its answer to REVERT is malformed", pid);
		free((void *)r.p);
	}
	if (fd >= 0)
		close(fd);
	proto_buf_free(&b);
	return rc;
}

int chan_lookup(struct link_process *p, struct link *l)
{
	struct proto_buf b = {0};
	struct proto_reader r;
	if (!l->ndyn)
		return 0;
	const char **names = rw_calloc(l->ndyn, sizeof *names);
	for (size_t i = 0; i < l->ndyn; i++)
		names[i] = l->dyn[i].name;
	msg_put_lookup(&b, names, (uint32_t)l->ndyn);
	free(names);
	int rc = chan_request(p->fd, RW_MSG_LOOKUP, &b, &r);
	proto_buf_free(&b);
	if (rc < 0)
		return -1;
	if (proto_get_u32(&r) != l->ndyn)
		r.err = 1;
	for (size_t i = 0; !r.err && i < l->ndyn; i++) {
		struct msg_found f;
		msg_get_found(&r, &f);
		l->dyn[i].found = f.found, l->dyn[i].addr = f.addr, l->dyn[i].modid = f.modid;
	}
	int err = r.err;
	free((void *)r.p);
	return err ? rw_fail("malformed answer from the agent") : 0;
}

int chan_alloc(struct link_process *p, uint64_t lo, uint64_t hi, uint64_t size, uint64_t *addr)
{
	struct proto_buf b = {0};
	struct proto_reader r;
	msg_put_alloc(&b, &(struct msg_alloc){lo, hi, size});
	int rc = chan_request(p->fd, RW_MSG_ALLOC, &b, &r);
	proto_buf_free(&b);
	if (rc < 0)
		return -1;
	*addr = proto_get_u64(&r);
	int err = r.err;
	free((void *)r.p);
	return err ? rw_fail("malformed answer from the agent") : 0;
}

int chan_apply(struct link_process *p, const struct proto_buf *patch, struct msg_apply_times *t)
{
	struct proto_reader r;
	int rc = chan_request(p->fd, RW_MSG_APPLY, patch, &r);
	if (rc < 0)
		return rc;
	msg_get_apply_times(&r, t);
	int err = r.err;
	free((void *)r.p);
	return err ? rw_fail("malformed answer from the agent") : 0;
}
