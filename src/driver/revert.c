/* `rewire revert PID [N]`: take back the newest patch of a running
 * program, or every patch after its patch N (the numbers `rewire status
 * PID` shows). With a session (`rewire run`, `rewire attach`), the session
 * does it, in every process of the program, and its baselines follow:
 * the next save of a file taken back diffs against the code that runs.
 * Without one, the process's agent does it alone. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "driver.h"
#include "procs.h"

/* The session answers within the time the agents have (a process in
 * sync mode takes a revert at its rewire_poll(), 30 s at most). */
#define ANSWER_WAIT_S 75

struct entry {
	uint32_t version, gen;
	int live;
};

/* The process's patches, from STATUS. */
static int read_patches(int pid, struct entry **out, uint32_t *n)
{
	struct proto_reader r;
	int fd = chan_connect(pid, 0);
	if (fd < 0)
		return -1;
	int rc = chan_request(fd, RW_MSG_STATUS, NULL, &r);
	close(fd);
	if (rc < 0)
		return -1;
	*n = proto_get_u32(&r);
	*out = rw_calloc(*n + 1, sizeof **out);
	for (uint32_t i = 0; i < *n && !r.err; i++) {
		(*out)[i].version = proto_get_u32(&r);
		(*out)[i].gen = proto_get_u32(&r);
		proto_get_u64(&r);
		(*out)[i].live = proto_get_u8(&r);
		for (uint32_t k = 0, nfn = proto_get_u32(&r); k < nfn && !r.err; k++)
			free(msg_get_strdup(&r));
	}
	free((void *)r.p);
	if (r.err) {
		free(*out);
		*out = NULL;
		return rw_fail("process %d: its answer to STATUS is malformed", pid);
	}
	return 0;
}

/* A session killed outright leaves its mark: its pid may be another
 * program's since. */
static int is_rewire(int pid)
{
	char path[64], comm[32] = "";
	snprintf(path, sizeof path, "/proc/%d/comm", pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, comm, sizeof comm - 1);
	if (fd >= 0)
		close(fd);
	return n > 0 && !strncmp(comm, "rewire", 6);
}

/* The session that patches pid: the one whose program's first process
 * is pid or an ancestor of it; 0 when none runs. */
static int find_session(const char *dir, int pid)
{
	for (int depth = 0; depth < 256 && pid > 1; depth++, pid = procs_parent_of(pid)) {
		char path[512], buf[32] = "";
		snprintf(path, sizeof path, "%s/%d.session", dir, pid);
		int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0)
			continue;
		ssize_t len = read(fd, buf, sizeof buf - 1);
		close(fd);
		buf[len > 0 ? len : 0] = 0;
		int session = atoi(buf);
		if (session > 0 && is_rewire(session))
			return session;
	}
	return 0;
}

static int write_file(const char *path, const char *text)
{
	char tmp[600];
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -1;
	int ok = write(fd, text, strlen(text)) == (ssize_t)strlen(text);
	close(fd);
	if (!ok || rename(tmp, path) < 0) {
		unlink(tmp);
		return -1;
	}
	return 0;
}

/* Ask the session; print its answer (its lines, as it said them). */
static int ask_session(const char *dir, int session, int pid, uint32_t to_gen)
{
	char ask[512], answer[512], text[64];
	snprintf(ask, sizeof ask, "%s/s%d.%d%s", dir, session, (int)getpid(), REVERT_ASK);
	snprintf(answer, sizeof answer, "%s/s%d.%d%s", dir, session, (int)getpid(), REVERT_ANSWER);
	snprintf(text, sizeof text, "%u %d\n", to_gen, pid);
	unlink(answer);
	if (write_file(ask, text) < 0)
		return rw_say_error("cannot ask the session (pid %d) in %s: %s", session, dir,
				    strerror(errno)), EXIT_NOPROC;
	for (int waited = 0; waited < ANSWER_WAIT_S * 50; waited++) {
		FILE *f = fopen(answer, "r");
		if (f) {
			char line[4096];
			int rc = fgets(line, sizeof line, f) ? atoi(line) : EXIT_NOPROC;
			while (fgets(line, sizeof line, f))
				fputs(line, stderr);
			fclose(f);
			unlink(answer);
			return rc;
		}
		if (kill(session, 0) < 0 && errno == ESRCH)
			break;
		usleep(20000);
	}
	unlink(ask);
	return rw_say_error("the session (pid %d) did not answer", session), EXIT_NOPROC;
}

/* No session: the process alone, by its own numbers. */
static int revert_alone(int pid, uint32_t to)
{
	struct msg_reverted out;
	if (chan_revert(pid, &(struct msg_revert){0, to}, &out) < 0)
		return rw_say_error("process %d: %s", pid, rw_error()), EXIT_REFUSED;
	if (out.first == out.last)
		rw_say("process %d: patch %u taken back; it runs the code before it (no session: its "
		       "sources' next saves are not patched)", pid, out.first);
	else
		rw_say("process %d: patches %u to %u taken back; it runs the code before them (no "
		       "session: its sources' next saves are not patched)", pid, out.first, out.last);
	return 0;
}

static int parse_number(const char *s, long max, long *out)
{
	char *end;
	*out = strtol(s, &end, 10);
	return s[0] && !*end && *out >= 0 && *out <= max ? 0 : -1;
}

int cmd_revert(int argc, char **argv)
{
	long pid, n = -1;
	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: rewire revert PID [N]\n");
		return EXIT_USAGE;
	}
	if (parse_number(argv[1], INT_MAX, &pid) < 0 || pid == 0)
		return rw_say_error("%s: not a process id", argv[1]), EXIT_USAGE;
	if (argc == 3 && parse_number(argv[2], INT_MAX, &n) < 0)
		return rw_say_error("%s: not a patch number (rewire status %ld lists them)", argv[2],
				    pid), EXIT_USAGE;
	struct entry *e;
	uint32_t count;
	if (read_patches((int)pid, &e, &count) < 0)
		return rw_say_error("process %ld: %s", pid, rw_error()), EXIT_NOPROC;
	/* Without N: every patch after the one before the newest live one. */
	uint32_t newest = 0, keep = 0, to_gen = 0, last_gen = 0;
	for (uint32_t i = 0; i < count; i++)
		if (e[i].live)
			keep = newest, newest = e[i].version;
	if (n >= 0)
		keep = (uint32_t)n;
	for (uint32_t i = 0; i < count; i++)
		if (e[i].live && e[i].version <= keep && e[i].gen)
			to_gen = e[i].gen;
		else if (e[i].live && e[i].version > keep)
			last_gen |= e[i].gen;
	free(e);
	if (newest <= keep) {
		rw_say("process %ld: nothing to take back: %s", pid, newest ? "no patch after it" :
		       "it has no patch");
		return 0;
	}
	char dir[256];
	if (chan_socket_dir(dir, sizeof dir) < 0)
		return rw_say_error("%s", rw_error()), EXIT_NOPROC;
	int session = last_gen ? find_session(dir, (int)pid) : 0;
	return session ? ask_session(dir, session, (int)pid, to_gen) : revert_alone((int)pid, keep);
}
