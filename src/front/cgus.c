/* A crate's objects: rustc writes one object per codegen unit (CGU,
 * `CRATE-HASH.CGU.TAG.rcgu.o`) and, building incrementally, reuses the
 * object of every CGU whose code did not change: the very same file,
 * hard-linked from its incremental cache. rewire keeps a crate's build as
 * a directory of hard links to those files, one per CGU and named by it
 * (the TAG differs at every rustc run, the CGU name does not). A patch
 * then diffs only the CGUs whose file is another and whose bytes differ,
 * against the same CGUs of the baseline: nothing that grows with the
 * crate is read, combined or compared, and no linker runs for a
 * one-CGU change. A function or static moves between CGUs only when both
 * change, so the two sides still pair every symbol that changed.
 *
 * Hard links cost no copy and keep the files after rustc deletes its own
 * names; the directories live beside the crate's output (same file
 * system) for that. A file that cannot be linked is copied. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "cgus.h"
#include "util.h"

/* The CGU's name: the second of the dot-separated parts of rustc's
 * file name; other objects keep their own name. */
static void cgu_key(const char *path, char *out, size_t cap)
{
	const char *base = rw_basename(path), *a = strchr(base, '.');
	size_t len = strlen(base);
	const char *b = a ? strchr(a + 1, '.') : NULL;
	if (len > 7 && !strcmp(base + len - 7, ".rcgu.o") && a && b && b < base + len - 7)
		snprintf(out, cap, "%.*s.o", (int)(b - a - 1), a + 1);
	else
		snprintf(out, cap, "%s", base);
}

static int link_or_copy(const char *src, const char *dst)
{
	if (link(src, dst) == 0 || rw_copy_file(src, dst) == 0)
		return 0;
	return rw_fail("cannot keep %s as %s: %s", src, dst, strerror(errno));
}

int cgus_is(const char *path)
{
	struct stat st;
	return path && stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

void cgus_remove(const char *path)
{
	struct stat st;
	if (lstat(path, &st) < 0)
		return;
	if (!S_ISDIR(st.st_mode)) {
		unlink(path);
		return;
	}
	DIR *d = opendir(path);
	struct dirent *e;
	char sub[PATH_MAX];
	while (d && (e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
			snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
			unlink(sub);
		}
	if (d)
		closedir(d);
	rmdir(path);
}

int cgus_make(const char *dir, char *const *objs, int n)
{
	char key[256], dst[PATH_MAX];
	cgus_remove(dir);
	if (mkdir(dir, 0700) < 0)
		return rw_fail("cannot make %s: %s", dir, strerror(errno));
	for (int i = 0; i < n; i++) {
		/* rustc's list of the symbols to keep: it defines nothing. */
		if (!strcmp(rw_basename(objs[i]), "symbols.o"))
			continue;
		cgu_key(objs[i], key, sizeof key);
		snprintf(dst, sizeof dst, "%s/%s", dir, key);
		if (link_or_copy(objs[i], dst) < 0)
			return -1;
	}
	return 0;
}

/* ---------------------------------------------------------- listing */

struct list {
	char **v;
	size_t n, cap;
};

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void list_free(struct list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	memset(l, 0, sizeof *l);
}

static void list_add(struct list *l, const char *s)
{
	l->v = rw_grow(l->v, &l->cap, l->n, sizeof *l->v);
	l->v[l->n++] = rw_strdup(s);
}

/* The files of dir, sorted by name. */
static int list_dir(const char *dir, struct list *l)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	if (!d)
		return rw_fail("cannot read %s: %s", dir, strerror(errno));
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			list_add(l, e->d_name);
	closedir(d);
	if (l->n)
		qsort(l->v, l->n, sizeof *l->v, by_name);
	return 0;
}

int cgus_copy(const char *from, const char *to)
{
	struct list l = {0};
	char a[PATH_MAX], b[PATH_MAX];
	int rc = list_dir(from, &l);
	cgus_remove(to);
	if (rc == 0 && mkdir(to, 0700) < 0)
		rc = rw_fail("cannot make %s: %s", to, strerror(errno));
	for (size_t i = 0; rc == 0 && i < l.n; i++) {
		snprintf(a, sizeof a, "%s/%s", from, l.v[i]);
		snprintf(b, sizeof b, "%s/%s", to, l.v[i]);
		rc = link_or_copy(a, b);
	}
	list_free(&l);
	return rc;
}

/* ------------------------------------------------------ what changed */

static int same_bytes(const char *a, const char *b, const struct stat *sa)
{
	int fa = open(a, O_RDONLY | O_CLOEXEC), fb = open(b, O_RDONLY | O_CLOEXEC), same = 0;
	void *ma = MAP_FAILED, *mb = MAP_FAILED;
	size_t n = (size_t)sa->st_size;
	if (fa >= 0 && fb >= 0 && n) {
		ma = mmap(NULL, n, PROT_READ, MAP_PRIVATE, fa, 0);
		mb = mmap(NULL, n, PROT_READ, MAP_PRIVATE, fb, 0);
		same = ma != MAP_FAILED && mb != MAP_FAILED && !memcmp(ma, mb, n);
	}
	if (ma != MAP_FAILED)
		munmap(ma, n);
	if (mb != MAP_FAILED)
		munmap(mb, n);
	if (fa >= 0)
		close(fa);
	if (fb >= 0)
		close(fb);
	return same || (!n && fa >= 0 && fb >= 0);
}

/* The same CGU object: one file (rustc reused it), or the same bytes (a
 * CGU rustc compiled again to the same code). */
static int same_cgu(const char *a, const char *b)
{
	struct stat sa, sb;
	if (stat(a, &sa) < 0 || stat(b, &sb) < 0)
		return 0;
	if (sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino)
		return 1;
	return sa.st_size == sb.st_size && same_bytes(a, b, &sa);
}

/* `ld -r` of files into out, started (pid), or -1; one file needs none
 * (0: it is itself the result). */
static pid_t combine_start(struct list *files, const char *out)
{
	if (files->n == 1)
		return 0;
	char **argv = rw_calloc(files->n + 5, sizeof *argv);
	size_t n = 0;
	argv[n++] = "ld";
	argv[n++] = "-r";
	argv[n++] = "-o";
	argv[n++] = (char *)out;
	for (size_t i = 0; i < files->n; i++)
		argv[n++] = files->v[i];
	pid_t pid = fork();
	if (pid == 0) {
		execvp("ld", argv);
		_exit(127);
	}
	free(argv);
	return pid;
}

static int combine_end(pid_t pid, struct list *files, const char *out, char **result, int *owned)
{
	int status = -1;
	if (pid == 0) {
		*result = rw_strdup(files->v[0]);
		return 0;
	}
	if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status))
		return rw_fail("ld -r of the crate's %zu changed codegen units into %s failed", files->n,
			       out);
	*result = rw_strdup(out);
	*owned = 1;
	return 0;
}

/* Sort the CGUs of nw and base (sorted names) into the changed ones of
 * each side; an unchanged pair is kept aside as a witness. */
static void split_changed(const char *nw, const char *base, struct list *ln, struct list *lb,
			  struct list *cn, struct list *cb, char *witness[2])
{
	char a[PATH_MAX], b[PATH_MAX];
	size_t i = 0, k = 0;
	while (i < ln->n || k < lb->n) {
		int c = i == ln->n ? 1 : k == lb->n ? -1 : strcmp(ln->v[i], lb->v[k]);
		if (c <= 0)
			snprintf(a, sizeof a, "%s/%s", nw, ln->v[i]);
		if (c >= 0)
			snprintf(b, sizeof b, "%s/%s", base, lb->v[k]);
		if (c < 0) {
			list_add(cn, a);
		} else if (c > 0) {
			list_add(cb, b);
		} else if (!same_cgu(a, b)) {
			list_add(cn, a);
			list_add(cb, b);
		} else if (!witness[0]) {
			witness[0] = rw_strdup(a);
			witness[1] = rw_strdup(b);
		}
		i += c <= 0;
		k += c >= 0;
	}
}

int cgus_changed(const char *nw, const char *base, const char *out, struct cgus_pair *p)
{
	struct list ln = {0}, lb = {0}, cn = {0}, cb = {0};
	char *witness[2] = {NULL, NULL}, path[PATH_MAX], bpath[PATH_MAX];
	int rc = -1, changed = 0;
	memset(p, 0, sizeof *p);
	if (list_dir(nw, &ln) < 0 || list_dir(base, &lb) < 0)
		goto out;
	split_changed(nw, base, &ln, &lb, &cn, &cb, witness);
	changed = (int)(cn.n > cb.n ? cn.n : cb.n);
	/* A side with nothing (only new CGUs, or only CGUs gone; or no
	 * change at all) gets the unchanged pair: diffed, it is the same. */
	if ((!cn.n || !cb.n) && witness[0]) {
		list_add(&cn, witness[0]);
		list_add(&cb, witness[1]);
	}
	if (!cn.n || !cb.n) {
		rw_fail("%s: no object of the crate to compare with %s", nw, base);
		goto out;
	}
	/* Both sides at once: two linkers, each on its own core. */
	snprintf(path, sizeof path, "%s.new.o", out);
	snprintf(bpath, sizeof bpath, "%s.base.o", out);
	pid_t pn = combine_start(&cn, path), pb = combine_start(&cb, bpath);
	int rn = combine_end(pn, &cn, path, &p->nw, &p->owned_nw);
	if (combine_end(pb, &cb, bpath, &p->base, &p->owned_base) < 0 || rn < 0)
		goto out;
	p->ncgus = ln.n;
	rc = changed;
out:
	if (rc < 0)
		cgus_pair_free(p);
	free(witness[0]);
	free(witness[1]);
	list_free(&ln);
	list_free(&lb);
	list_free(&cn);
	list_free(&cb);
	return rc;
}

void cgus_pair_free(struct cgus_pair *p)
{
	if (p->owned_nw && p->nw)
		unlink(p->nw);
	if (p->owned_base && p->base)
		unlink(p->base);
	free(p->nw);
	free(p->base);
	memset(p, 0, sizeof *p);
}
