/* The processes of a program: the one `rewire run` started and every
 * process forked from it, at any depth.
 *
 * A forked child's agent listens on <dir>/<pid>.sock before fork()
 * returns in its parent (agent.c), so a child forked before its parent
 * took a patch is seen right after that patch. The session watches the
 * directory; a new socket's process is the program's when the program's
 * first process is among its ancestors, or when rewire is its parent:
 * rewire is the program's child subreaper, so a process whose parent
 * ended is rewire's, and still counts. Sockets of other sessions of the
 * same user, in the same directory, are not the program's. A process
 * forked after its parent became another user listens in the
 * subdirectory u<uid> (agent/user.c): watched too, as it appears. */
#define _GNU_SOURCE
#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include "procs.h"

/* The ELF machine of the file at path, 0 when it is not an ELF file. */
static unsigned elf_machine_of(const char *path)
{
	Elf64_Ehdr eh;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, &eh, sizeof eh);
	if (fd >= 0)
		close(fd);
	return n >= EI_NIDENT + 4 && !memcmp(eh.e_ident, ELFMAG, SELFMAG) ? eh.e_machine : 0;
}

int procs_emulated(int pid, char *guest, size_t cap)
{
#if defined(__x86_64__)
	const unsigned own = EM_X86_64;
#else
	const unsigned own = EM_AARCH64;
#endif
	char path[64], line[4352];
	snprintf(path, sizeof path, "/proc/%d/exe", pid);
	ssize_t n = readlink(path, line, sizeof line - 1);
	if (n <= 0)
		return 0;
	line[n] = 0;
	if (strncmp(rw_basename(line), "qemu-", 5))
		return 0;
	snprintf(path, sizeof path, "/proc/%d/maps", pid);
	FILE *f = fopen(path, "r");
	int found = 0;
	while (f && !found && fgets(line, sizeof line, f)) {
		unsigned long long off;
		char *file = strchr(line, '/');
		if (!file || sscanf(line, "%*s %*s %llx", &off) != 1 || off)
			continue;
		file[strcspn(file, "\n")] = 0;
		unsigned m = elf_machine_of(file);
		if (m && m != own)
			found = snprintf(guest, cap, "%s", file) > 0;
	}
	if (f)
		fclose(f);
	return found;
}

int procs_parent_of(int pid)
{
	struct rw_proc_stat st;
	return rw_proc_stat(pid, &st) == 0 ? st.ppid : -1;
}

static int is_ours(const struct procs *ps, int pid)
{
	int self = (int)getpid();
	for (int depth = 0; depth < 256 && pid > 1; depth++) {
		if (pid == ps->root)
			return 1;
		pid = procs_parent_of(pid);
		if (pid == self)
			return 1;
	}
	return 0;
}

struct proc *procs_find(struct procs *ps, int pid)
{
	for (size_t i = 0; i < ps->n; i++)
		if (ps->v[i].pid == pid)
			return &ps->v[i];
	return NULL;
}

/* The inode of <dir>/<pid>.sock (or of a user's subdirectory), or 0. */
static uint64_t socket_ino(const struct procs *ps, int pid)
{
	char path[512];
	struct stat st;
	if (chan_agent_file(ps->dir, pid, "sock", path, sizeof path) < 0 || lstat(path, &st) < 0)
		return 0;
	return (uint64_t)st.st_ino;
}

static void add(struct procs *ps, int pid, uint32_t gen)
{
	if (procs_find(ps, pid))
		return;
	ps->v = rw_grow(ps->v, &ps->cap, ps->n, sizeof *ps->v);
	ps->v[ps->n++] = (struct proc){.pid = pid, .gen = gen, .start = rw_proc_start(pid),
				       .sock_ino = socket_ino(ps, pid)};
	rw_trace("proc %d: appeared", pid);
}

/* "<pid>.sock": the pid, else 0. */
static int socket_pid(const char *name)
{
	char *end;
	long pid = strtol(name, &end, 10);
	return name[0] >= '1' && name[0] <= '9' && !strcmp(end, ".sock") && pid < (1l << 30) ?
	       (int)pid : 0;
}

/* A socket appears when a process of the program starts its agent: a
 * forked child, or a process that exec'd the program again (a known pid:
 * the program it runs now has none of the patches). */
static void on_socket(struct procs *ps, const char *name)
{
	int pid = socket_pid(name);
	struct proc *p = pid ? procs_find(ps, pid) : NULL;
	if (p && pid != ps->root && !procs_same(p)) {
		rw_trace("proc %d: its pid is another process's now", pid);
		procs_forget(ps, pid);	/* ended; another process has its pid */
		p = NULL;
	}
	if (p) {
		rw_trace("proc %d: a new agent (exec'd)", pid);
		*p = (struct proc){.pid = pid, .gen = PROC_GEN_UNKNOWN, .start = p->start,
				   .sock_ino = socket_ino(ps, pid)};
	} else if (pid && is_ours(ps, pid)) {
		add(ps, pid, PROC_GEN_UNKNOWN);
	}
}

/* The sockets of a directory, made before its watch began. */
static void scan(struct procs *ps, const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	while (d && (e = readdir(d)))
		on_socket(ps, e->d_name);
	if (d)
		closedir(d);
}

/* A user's subdirectory "u<uid>" of the socket directory: watched. */
static void on_subdir(struct procs *ps, const char *name)
{
	char path[sizeof ps->dir + 32];
	if (name[0] != 'u' || ps->nsub == PROCS_MAX_USERS)
		return;
	snprintf(path, sizeof path, "%s/%s", ps->dir, name);
	int wd = inotify_add_watch(ps->ino, path, IN_MOVED_TO | IN_ONLYDIR | IN_DONT_FOLLOW);
	if (wd < 0)
		return;
	for (int i = 0; i < ps->nsub; i++)
		if (ps->sub_wd[i] == wd)
			return;
	ps->sub_wd[ps->nsub++] = wd;
	scan(ps, path);
}

/* <dir>/<root>.session: this session's pid, for `rewire revert`. */
static void mark_session(struct procs *ps, int on)
{
	char path[sizeof ps->dir + 32], tmp[sizeof path + 8], pid[32];
	snprintf(path, sizeof path, "%s/%d.session", ps->dir, ps->root);
	if (!on) {
		unlink(path);
		return;
	}
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	int n = snprintf(pid, sizeof pid, "%d\n", (int)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd >= 0 && write(fd, pid, (size_t)n) == n)
		rename(tmp, path);
	if (fd >= 0)
		close(fd);
	unlink(tmp);
}

void procs_end(struct procs *ps)
{
	if (ps->dir[0])
		mark_session(ps, 0);
}

/* "s<our pid>.<client>.revert": a request to this session. */
static int is_request(const char *name)
{
	char prefix[32];
	size_t n = strlen(name), k = strlen(REVERT_ASK);
	snprintf(prefix, sizeof prefix, "s%d.", (int)getpid());
	return !strncmp(name, prefix, strlen(prefix)) && n > k && !strcmp(name + n - k, REVERT_ASK);
}

int procs_init(struct procs *ps, int root, int ino)
{
	memset(ps, 0, sizeof *ps);
	ps->root = root;
	ps->wd = -1;
	ps->ino = ino;
	add(ps, root, PROC_GEN_UNKNOWN);
	if (chan_socket_dir(ps->dir, sizeof ps->dir) < 0)
		return -1;
	/* A process whose parent ends is rewire's, not init's: still ours. */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	ps->wd = inotify_add_watch(ino, ps->dir, IN_MOVED_TO | IN_CREATE);
	if (ps->wd < 0)
		return rw_fail("cannot watch %s: %s", ps->dir, strerror(errno));
	scan(ps, ps->dir);
	mark_session(ps, 1);
	DIR *d = opendir(ps->dir);
	struct dirent *e;
	while (d && (e = readdir(d)))
		if (e->d_type == DT_DIR)
			on_subdir(ps, e->d_name);
	if (d)
		closedir(d);
	return 0;
}

int procs_event(struct procs *ps, const struct inotify_event *e)
{
	int ours = ps->wd >= 0 && e->wd == ps->wd;
	for (int i = 0; i < ps->nsub && !ours; i++)
		ours = e->wd == ps->sub_wd[i];
	if (!ours)
		return 0;
	if (e->len && (e->mask & IN_ISDIR))
		on_subdir(ps, e->name);
	else if (e->len && (e->mask & IN_MOVED_TO) && e->wd == ps->wd && is_request(e->name))
		return 2;
	else if (e->len && (e->mask & IN_MOVED_TO))
		on_socket(ps, e->name);
	return 1;
}

void procs_restart(struct procs *ps, int root)
{
	mark_session(ps, 0);
	ps->root = root;
	mark_session(ps, 1);
	ps->n = 0;
	add(ps, root, PROC_GEN_UNKNOWN);
}

void procs_forget(struct procs *ps, int pid)
{
	struct proc *p = procs_find(ps, pid);
	if (!p || pid == ps->root)
		return;
	char path[512];
	struct stat st;
	if (p->sock_ino && chan_agent_file(ps->dir, pid, "sock", path, sizeof path) == 0 &&
	    lstat(path, &st) == 0 && (uint64_t)st.st_ino == p->sock_ino)
		unlink(path);
	rw_trace("proc %d: forgotten", pid);
	*p = ps->v[--ps->n];
}

int procs_same(const struct proc *p)
{
	return p->start && rw_proc_start(p->pid) == p->start;
}

int procs_runs_agent(const struct proc *p)
{
	return procs_same(p) && procs_has_agent(p->pid);
}

/* Its environment as it was exec'd has REWIRE_HOLD (agent/follow.c):
 * the agent unsets the variable, but /proc shows what exec gave. */
int procs_held(int pid)
{
	char path[64], buf[65536];
	snprintf(path, sizeof path, "/proc/%d/environ", pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC), held = 0;
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof buf - 1);
	if (fd >= 0)
		close(fd);
	for (ssize_t i = 0; i < n && !held; i += (ssize_t)strlen(buf + i) + 1) {
		buf[n] = 0;
		held = !strncmp(buf + i, "REWIRE_HOLD=", 12);
	}
	return held;
}

uint64_t procs_retry_due(const struct procs *ps)
{
	uint64_t soonest = 0;
	for (size_t i = 0; i < ps->n; i++)
		if (ps->v[i].retry_at && (!soonest || ps->v[i].retry_at < soonest))
			soonest = ps->v[i].retry_at;
	return soonest;
}

int procs_count(const struct procs *ps, uint32_t gen)
{
	int n = 0;
	for (size_t i = 0; i < ps->n; i++)
		n += ps->v[i].gen == gen;
	return n;
}

/* Does the process still run with rewire's agent (not exec'd since)? */
int procs_has_agent(int pid)
{
	char path[64], line[4096];
	snprintf(path, sizeof path, "/proc/%d/maps", pid);
	FILE *f = fopen(path, "r");
	int found = 0;
	while (f && !found && fgets(line, sizeof line, f))
		found = strstr(line, "/librewire.so") != NULL;
	if (f)
		fclose(f);
	return found;
}
