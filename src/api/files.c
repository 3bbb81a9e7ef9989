/* A library's file and the copies made of it, in the dylib reload API
 * (lib.c): the file read whole once a build has finished writing it, or
 * found broken; the bytes a version was made from, read back from its
 * copy; and the private directory where each version's copy is written
 * under a name never reused, removed at exit, or by a later process when
 * this one died without cleaning up. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>
#include "lib.h"

#define RECENT_MS 100	/* a file modified this recently may still be written: */
#define SETTLE_MS 5	/* stat it again this much later */
#define QUIET_MS 5000	/* incomplete, and seen unchanged this long: broken, not being written */

static unsigned long ncopies;

const char *lib_base_name(const char *p)
{
	const char *s = strrchr(p, '/');
	return s ? s + 1 : p;
}

static long ms_since(clockid_t clock, const struct timespec *t)
{
	struct timespec now;
	clock_gettime(clock, &now);
	return (now.tv_sec - t->tv_sec) * 1000 + (now.tv_nsec - t->tv_nsec) / 1000000;
}

int lib_same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* --------------------------------------------------------- reading files */

static int read_all(int fd, unsigned char *b, size_t n)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = pread(fd, b + got, n - got, (off_t)got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r == 0)
			errno = 0;	/* it shrank */
		if (r <= 0)
			return -1;
		got += (size_t)r;
	}
	return 0;
}

static void sleep_ms(long ms)
{
	struct timespec t = {0, ms * 1000000};
	while (nanosleep(&t, &t) < 0 && errno == EINTR)
		;
}

/* The file whole, if it stood still while read: a file modified in the
 * last RECENT_MS is looked at again SETTLE_MS later. */
static int read_settled(struct rewire_lib *lib, int fd, struct source *s)
{
	struct stat again;
	s->n = (size_t)s->st.st_size;
	if (!(s->b = malloc(s->n ? s->n : 1)))
		return lib_fail(lib, "%s: out of memory for %zu bytes", lib->name, s->n), SRC_ERR;
	if (read_all(fd, s->b, s->n) < 0)
		return lib_fail(lib, "%s: read: %s", lib->name,
				errno ? strerror(errno) : "the file shrank"), SRC_WAIT;
	if (ms_since(CLOCK_REALTIME, &s->st.st_mtim) < RECENT_MS)
		sleep_ms(SETTLE_MS);
	if (fstat(fd, &again) < 0 || !lib_same_file(&again, &s->st))
		return lib_fail(lib, "%s: still being written; waiting", lib->name), SRC_WAIT;
	return SRC_OK;
}

/* Whether lib's file, incomplete as st says, has stood still QUIET_MS as
 * rewire watched it. Not from its time alone: a truncation sets the size
 * before the time, so a file emptied by a build that is about to write it
 * can look incomplete and long untouched, for a moment. */
static int incomplete_for_long(struct rewire_lib *lib, const struct stat *st)
{
	if (lib_same_file(st, &lib->partial))
		return ms_since(CLOCK_MONOTONIC, &lib->partial_since) >= QUIET_MS;
	lib->partial = *st;
	clock_gettime(CLOCK_MONOTONIC, &lib->partial_since);
	return 0;
}

/* lib's file as it is now, complete: SRC_OK; SRC_WAIT while it looks
 * written to; SRC_ERR when it is not a usable shared object. */
int lib_read_source(struct rewire_lib *lib, struct source *s)
{
	memset(s, 0, sizeof *s);
	int fd = open(lib->path, O_RDONLY | O_CLOEXEC), rc, e = errno;
	if (fd < 0)	/* missing: between a build's unlink and its new file */
		return lib_fail(lib, "%s: %s", lib->name, strerror(e)),
		       e == ENOENT ? SRC_WAIT : SRC_ERR;
	if (fstat(fd, &s->st) < 0 || !S_ISREG(s->st.st_mode))
		rc = (lib_fail(lib, "%s: not a regular file", lib->name), SRC_ERR);
	else
		rc = read_settled(lib, fd, s);
	close(fd);
	const char *why = rc == SRC_OK ? lib_elf_incomplete(s->b, s->n) : NULL;
	if (why) {
		int quiet = incomplete_for_long(lib, &s->st);
		lib_fail(lib, "%s: %s%s", lib->name, why,
			 quiet ? "" : " (still being written?); waiting");
		rc = quiet ? SRC_ERR : SRC_WAIT;
	}
	if (rc != SRC_OK)
		free(s->b), s->b = NULL;
	return rc;
}

/* The bytes of v's file as built: its copy, with rewire's patches undone. */
int lib_read_pristine(struct version *v, struct source *s)
{
	struct rewire_lib *lib = v->lib;
	memset(s, 0, sizeof *s);
	int fd = open(v->copy, O_RDONLY | O_CLOEXEC), rc = -1;
	if (fd < 0 || fstat(fd, &s->st) < 0)
		return lib_fail(lib, "%s: %s: %s", lib->name, v->copy, strerror(errno));
	s->n = (size_t)s->st.st_size;
	if ((s->b = malloc(s->n ? s->n : 1)) && read_all(fd, s->b, s->n) == 0)
		rc = 0;
	close(fd);
	if (rc < 0) {
		free(s->b), s->b = NULL;
		return lib_fail(lib, "%s: cannot read its copy %s", lib->name, v->copy);
	}
	for (size_t i = 0; i < v->npatches; i++) {
		if (!lib_in_file(s->n, v->patches[i].off, HEAD)) {
			free(s->b), s->b = NULL;
			return lib_fail(lib, "%s: its copy %s was changed", lib->name, v->copy);
		}
		memcpy(s->b + v->patches[i].off, v->patches[i].orig, HEAD);
	}
	return 0;
}

/* ------------------------------------------------------ private directory
 * $XDG_RUNTIME_DIR/rewire or /tmp/rewire-UID (0700, ours, checked as the
 * agent's channel does), then lib-PID-XXXXXX made by mkdtemp. The process
 * holds a lock on DIR/lock as long as it lives: a directory whose lock can
 * be taken belongs to a process that died without cleaning up (killed),
 * and is removed. A lock, not the pid: pids are reused, and mean nothing
 * in another pid namespace sharing /tmp. */

static char libdir[PATH_MAX];
static pid_t libdir_pid;
static int libdir_lock = -1;

static void remove_dir(int parent, const char *name)
{
	int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *d = fd < 0 ? NULL : fdopendir(fd);
	struct dirent *de;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			unlinkat(fd, de->d_name, 0);
	closedir(d);
	unlinkat(parent, name, AT_REMOVEDIR);
}

/* Whether lib-* under dir belongs to a process that is gone. */
static int abandoned(int dir, const char *name)
{
	char lock[NAME_MAX + 8];
	struct stat st;
	snprintf(lock, sizeof lock, "%s/lock", name);
	int fd = openat(dir, lock, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)	/* no lock: being made now, or long ago */
		return fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		       ms_since(CLOCK_REALTIME, &st.st_mtim) > 60 * 1000;
	int gone = flock(fd, LOCK_EX | LOCK_NB) == 0;
	close(fd);
	return gone;
}

static void sweep(const char *base)
{
	DIR *d = opendir(base);
	struct dirent *de;
	if (!d)
		return;
	while ((de = readdir(d)))
		if (!strncmp(de->d_name, "lib-", 4) && abandoned(dirfd(d), de->d_name))
			remove_dir(dirfd(d), de->d_name);
	closedir(d);
}

static int usable_base(const char *dir)
{
	struct stat st;
	struct statvfs vfs;
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return lib_fail(NULL, "cannot create %s: %s", dir, strerror(errno));
	if (lstat(dir, &st) < 0)
		return lib_fail(NULL, "%s: %s", dir, strerror(errno));
	if (!S_ISDIR(st.st_mode) || st.st_uid != getuid() || (st.st_mode & 077))
		return lib_fail(NULL, "%s must be a directory owned by you with mode 0700: "
				"refusing to use it", dir);
	if (statvfs(dir, &vfs) == 0 && (vfs.f_flag & ST_NOEXEC))
		return lib_fail(NULL, "%s is on a noexec file system: libraries cannot be mapped "
				"from it", dir);
	return 0;
}

/* At exit, the copies this process made: nothing will load them again. */
static void remove_copies(void)
{
	if (libdir_pid != getpid())
		return;
	for (struct rewire_lib *l = libs; l; l = l->next)
		for (struct version *v = l->versions; v; v = v->older)
			if (v->copy && v->pid == getpid())
				unlink(v->copy);
	for (size_t i = 0; i < norphans; i++)
		unlink(orphans[i]);
	char lock[PATH_MAX + 8];
	snprintf(lock, sizeof lock, "%s/lock", libdir);
	unlink(lock);
	rmdir(libdir);
}

/* Held until the process ends (a child after fork shares it: harmless). */
static int take_lock(struct rewire_lib *lib)
{
	char path[PATH_MAX + 8];
	snprintf(path, sizeof path, "%s/lock", libdir);
	if (libdir_lock >= 0 && libdir_pid != getpid())
		close(libdir_lock);	/* the parent's, after fork */
	libdir_lock = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (libdir_lock < 0 || flock(libdir_lock, LOCK_EX) < 0) {
		lib_fail(lib, "%s: cannot lock %s: %s", lib->name, path, strerror(errno));
		rmdir(libdir);
		libdir[0] = 0;
		return -1;
	}
	if (!libdir_pid)
		atexit(remove_copies);
	libdir_pid = getpid();
	return 0;
}

static int private_dir(struct rewire_lib *lib)
{
	char base[PATH_MAX - 32];
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	if (libdir[0] && libdir_pid == getpid())
		return 0;
	for (int i = 0; i < 2; i++) {
		if (i == 0 && !(xdg && xdg[0]))
			continue;
		if (i == 0)
			snprintf(base, sizeof base, "%s/rewire", xdg);
		else
			snprintf(base, sizeof base, "/tmp/rewire-%u", (unsigned)getuid());
		if (usable_base(base) < 0)
			continue;
		sweep(base);
		snprintf(libdir, sizeof libdir, "%s/lib-%d-XXXXXX", base, (int)getpid());
		if (!mkdtemp(libdir)) {
			lib_fail(lib, "cannot create %s: %s", libdir, strerror(errno));
			libdir[0] = 0;
			return -1;
		}
		return take_lock(lib);
	}
	char why[ERRLEN];	/* why the last candidate was refused */
	memcpy(why, last_err, sizeof why);
	return lib_fail(lib, "%s: no private directory for its copies: %s", lib->name, why);
}

char *lib_write_copy(struct rewire_lib *lib, const struct source *s)
{
	char path[PATH_MAX];
	if (private_dir(lib) < 0)
		return NULL;
	/* Truncated, it would do once, then collide with itself. */
	if ((size_t)snprintf(path, sizeof path, "%s/%s.%lu", libdir, lib_base_name(lib->path),
			     ++ncopies) >= sizeof path) {
		lib_fail(lib, "%s: the path of its copy is too long (over %d bytes): set "
			 "XDG_RUNTIME_DIR to a shorter directory than %s", lib->name, PATH_MAX, libdir);
		return NULL;
	}
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		lib_fail(lib, "%s: cannot create %s: %s", lib->name, path, strerror(errno));
		return NULL;
	}
	size_t done = 0;
	while (done < s->n) {
		ssize_t w = write(fd, s->b + done, s->n - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		done += (size_t)w;
	}
	if (close(fd) < 0 || done < s->n) {
		lib_fail(lib, "%s: cannot write %s: %s", lib->name, path,
			 strerror(errno ? errno : EIO));
		unlink(path);
		return NULL;
	}
	return strdup(path);
}
