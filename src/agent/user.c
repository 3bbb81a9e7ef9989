/* A process that changes user: a server started as root that becomes
 * nobody before it forks its workers, or a worker that forks after it
 * did. The session's directory is the owner's alone (0700): a process of
 * another user can neither make its socket there nor search it. So, just
 * before a process of root's changes its user, while it still may, the
 * agent makes <dir>/u<uid>, that user's own (0700), and keeps it open.
 * The process's later children listen there, reached through
 * /proc/self/fd/N: that walk does not pass through the session's
 * directory, so no other process of that user, which cannot search
 * <dir>, can reach the sockets. The driver (root, the owner) finds them
 * in the subdirectory.
 *
 * The agent stands in for the set*uid calls (it is preloaded: the
 * program's calls reach these first) and passes each on unchanged. A
 * program that changes user by a raw system call, or into which
 * `rewire attach` loaded the agent, is not seen: its later children
 * cannot be patched, and say so. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
#include "agent.h"

#define EXPORT __attribute__((visibility("default")))

static char session_dir[128];
static uid_t owner;
static int dir_fd = -1;		/* <dir>/u<dir_uid>, open; inherited by children */
static uid_t dir_uid;
static char fd_dir[32];		/* "/proc/self/fd/<dir_fd>" */

void user_init(const char *dir, uid_t owner_uid)
{
	snprintf(session_dir, sizeof session_dir, "%s", dir);
	owner = owner_uid;
}

/* The process is about to become uid (its effective user). Nothing is
 * changed when the directory cannot be made: the call goes on as asked. */
static void prepare(uid_t uid)
{
	char path[sizeof session_dir + 24];
	struct stat st;
	if (!session_dir[0] || uid == (uid_t)-1 || uid == owner || geteuid() != 0 ||
	    (dir_fd >= 0 && dir_uid == uid))
		return;
	snprintf(path, sizeof path, "%s/u%u", session_dir, (unsigned)uid);
	int saved = errno;
	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		goto out;
	int fd = open(path, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	/* Made by us, or by an earlier process of the program: either way
	 * root's to give, in a directory no one else can write. */
	if (fd < 0 || fchownat(fd, "", uid, (gid_t)-1, AT_EMPTY_PATH) < 0 ||
	    fstat(fd, &st) < 0 || st.st_uid != uid || (st.st_mode & 077)) {
		if (fd >= 0)
			close(fd);
		goto out;
	}
	if (dir_fd >= 0)
		close(dir_fd);
	dir_fd = fd;
	dir_uid = uid;
	snprintf(fd_dir, sizeof fd_dir, "/proc/self/fd/%d", fd);
out:
	errno = saved;
}

/* Async-signal-safe: a crash note is written from a fault handler. */
const char *user_dir(void)
{
	if (geteuid() == owner || dir_fd < 0 || dir_uid != geteuid())
		return session_dir;
	return fd_dir;
}

static void *next(const char *name)
{
	return dlsym(RTLD_NEXT, name);
}

EXPORT int setuid(uid_t uid)
{
	int (*real)(uid_t) = (int (*)(uid_t))next("setuid");
	if (!real)
		return errno = ENOSYS, -1;
	prepare(uid);
	return real(uid);
}

EXPORT int seteuid(uid_t euid)
{
	int (*real)(uid_t) = (int (*)(uid_t))next("seteuid");
	if (!real)
		return errno = ENOSYS, -1;
	prepare(euid);
	return real(euid);
}

EXPORT int setreuid(uid_t ruid, uid_t euid)
{
	int (*real)(uid_t, uid_t) = (int (*)(uid_t, uid_t))next("setreuid");
	if (!real)
		return errno = ENOSYS, -1;
	prepare(euid);
	return real(ruid, euid);
}

EXPORT int setresuid(uid_t ruid, uid_t euid, uid_t suid)
{
	int (*real)(uid_t, uid_t, uid_t) = (int (*)(uid_t, uid_t, uid_t))next("setresuid");
	if (!real)
		return errno = ENOSYS, -1;
	prepare(euid);
	return real(ruid, euid, suid);
}
