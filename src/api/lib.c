/* The dylib reload API (include/rewire_lib.h), part of librewire-api.a.
 * A library is loaded as a private copy, reached through trampolines that
 * a reload retargets, and replaced only by versions that loaded, resolved
 * and accepted completely. It needs nothing of rewire's agent.
 *
 * What it relies on (glibc's loader):
 *  - glibc takes a file for an object it has already loaded when the path,
 *    the DT_SONAME or the device and inode match. So each version is a new
 *    file in a private directory, under a name never reused; it stays on
 *    disk while its image is mapped (debuggers and profilers read symbols
 *    from that path). The original file is never mapped: a build
 *    rewriting it in place would change the running code under the
 *    program, or SIGBUS it.
 *  - A dependent's DT_NEEDED names its dependency by DT_SONAME, and glibc
 *    binds it to the first loaded object with that soname: with two
 *    versions of the dependency loaded, the old one. RTLD_GLOBAL does not
 *    help (the old version stays first in the global scope; worse, every
 *    later version's calls to its own exported functions would bind to the
 *    old one). So copies are loaded RTLD_LOCAL, each copy's soname is
 *    rewritten in place to a name of the same length that no other object
 *    has ("~" and a process-wide counter over its first four bytes), and a
 *    dependent's copy gets that name in its DT_NEEDED: glibc binds it to
 *    exactly that copy, already loaded.
 *  - dlclose may leave an image mapped (-z nodelete, thread_local
 *    destructors, STB_GNU_UNIQUE symbols, a dependent still loaded):
 *    whether it left is read back with dl_iterate_phdr.
 *
 * What it hands on: trampolines (16 bytes: endbr64; jmp *slot(%rip)) in
 * read+exec pages whose slots, in the next page, are all a reload writes:
 * one atomic store each. Every reload is a transaction: new versions of
 * the library and its dependents are loaded, resolved and accepted by
 * their load hooks, dependencies first; then all trampolines move; then
 * the old versions' unload hooks run. A crash in library code inside
 * rewire_lib_call (own signal handlers, chained to the program's) rolls
 * the transaction that loaded the crashing version back.
 *
 * This file: the entry points, and the errors they leave. The parts are
 * next to it: image.c (what a file says about itself), files.c (reading
 * a library's file; the private directory of copies), version.c (loading
 * and unloading one version), calls.c (trampolines and hooks), reload.c
 * (dependencies and transactions), crash.c (fault ranges and rollback);
 * lib.h holds what they share. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <link.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "lib.h"
#include "../grow.h"

static pthread_mutex_t big = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;
struct rewire_lib *libs;
__thread char last_err[ERRLEN];

/* ------------------------------------------------------------------ errors */

static int vfail(struct rewire_lib *lib, const char *fmt, va_list ap)
{
	vsnprintf(last_err, sizeof last_err, fmt, ap);
	if (lib)
		memcpy(lib->err, last_err, sizeof lib->err);
	return -1;
}

int lib_fail(struct rewire_lib *lib, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfail(lib, fmt, ap);
	va_end(ap);
	return -1;
}

/* ------------------------------------------------------------ the API */

/* The original file must not be loaded already (the program linked
 * against it, or a library opened before it needs it): its symbols would
 * shadow every copy. */
struct same_inode {
	const struct stat *st;
	const char *name;
};

static int same_inode_cb(struct dl_phdr_info *info, size_t size, void *p)
{
	struct same_inode *s = p;
	struct stat st;
	if (info->dlpi_name && info->dlpi_name[0] && stat(info->dlpi_name, &st) == 0 &&
	    st.st_dev == s->st->st_dev && st.st_ino == s->st->st_ino)
		s->name = info->dlpi_name;
	return s->name != NULL;
}

static int check_not_loaded(struct rewire_lib *lib)
{
	struct stat st;
	struct same_inode s = {&st, NULL};
	if (stat(lib->path, &st) < 0)
		return lib_fail(lib, "%s: %s", lib->name, strerror(errno));
	dl_iterate_phdr(same_inode_cb, &s);
	if (s.name)
		return lib_fail(lib, "%s is already loaded in the process (as %s: the program or a "
				"library opened before it links against it): it would shadow every "
				"reloaded version", lib->name, s.name);
	return 0;
}

static struct rewire_lib *lib_new(const char *path, void *state)
{
	struct rewire_lib *lib = calloc(1, sizeof *lib);
	char cwd[PATH_MAX];
	if (!lib || !(lib->name = strdup(path)))
		return free(lib), NULL;
	if (path[0] == '/' || !getcwd(cwd, sizeof cwd))
		lib->path = strdup(path);
	else if (asprintf(&lib->path, "%s/%s", cwd, path) < 0)
		lib->path = NULL;
	if (!lib->path)
		return free(lib->name), free(lib), NULL;
	lib->state = state;
	lib->next_num = 1;
	return lib;
}

static void lib_free(struct rewire_lib *lib)
{
	size_t pg = lib_page_size();
	for (struct chunk *c = lib->chunks, *n; c; c = n) {
		n = c->next;
		munmap(c->code, 2 * pg);
		free(c);
	}
	for (size_t i = 0; i < lib->nsyms; i++)
		free(lib->syms[i].name);
	free(lib->syms);
	free(lib->path);
	free(lib->name);
	free(lib);
}

static int open_locked(struct rewire_lib *lib)
{
	struct source s;
	struct txn t;
	int rc = -1;
	if (check_not_loaded(lib) < 0)
		return -1;
	if (lib_read_source(lib, &s) != SRC_OK)
		return -1;
	lib->seen = s.st;
	if (lib_txn_alloc(&t, 1) == 0) {
		t.n = 1, t.set[0] = lib, t.src[0] = s, t.fresh[0] = 1;
		s.b = NULL;
		rc = lib_txn_run(&t);
	}
	free(s.b);
	lib_txn_free(&t);
	return rc;
}

rewire_lib *rewire_lib_open(const char *path, void *state)
{
	struct rewire_lib *lib;
	if (!path || !(lib = lib_new(path, state))) {
		lib_fail(NULL, "rewire_lib_open: %s", path ? "out of memory" : "no path");
		return NULL;
	}
	pthread_mutex_lock(&big);
	int rc = open_locked(lib);
	if (rc == 0)
		lib->next = libs, libs = lib;
	pthread_mutex_unlock(&big);
	if (rc < 0) {
		for (struct version *v = lib->versions, *next; v; v = next)
			next = v->older, lib_version_free(v);	/* kept by glibc */
		lib_free(lib);
		return NULL;
	}
	return lib;
}

/* Why name gives no trampoline. */
static void *sym_refused(struct rewire_lib *lib, const char *name)
{
	void *p = dlsym(lib->cur->handle, name);
	if (!p)
		lib_fail(lib, "%s: no symbol %s", lib->name, name);
	else if (lib_own_sym(lib->cur, name, 0))
		lib_fail(lib, "%s: %s is data, not a function: rewire_lib_sym gives functions only "
			 "(a pointer to data would stay on the old version after a reload)",
			 lib->name, name);
	else
		lib_fail(lib, "%s does not define %s (one of its dependencies does)", lib->name,
			 name);
	return NULL;
}

static void *sym_locked(struct rewire_lib *lib, const char *name)
{
	for (size_t i = 0; i < lib->nsyms; i++)
		if (!strcmp(lib->syms[i].name, name))
			return lib->syms[i].tramp;
	void *addr = lib_own_sym(lib->cur, name, 1);
	if (!addr)
		return sym_refused(lib, name);
	struct sym *grown = rw_try_grow(lib->syms, &lib->capsyms, lib->nsyms, sizeof *lib->syms);
	if (!grown)
		return lib_fail(lib, "%s: out of memory", lib->name), NULL;
	lib->syms = grown;
	struct sym *s = &lib->syms[lib->nsyms];
	if (!(s->name = strdup(name)) || lib_tramp_new(lib, s) < 0)
		return free(s->name), NULL;
	atomic_store_explicit(s->slot, (uintptr_t)addr, memory_order_release);
	lib->nsyms++;
	return s->tramp;
}

void *rewire_lib_sym(rewire_lib *lib, const char *name)
{
	if (!lib || !name)
		return lib_fail(lib, "rewire_lib_sym: no library or no name"), NULL;
	pthread_mutex_lock(&big);
	void *p = sym_locked(lib, name);
	pthread_mutex_unlock(&big);
	return p;
}

int rewire_lib_update(rewire_lib *lib)
{
	if (!lib)
		return lib_fail(NULL, "rewire_lib_update: no library");
	pthread_mutex_lock(&big);
	int rc = lib_update_locked(lib);
	pthread_mutex_unlock(&big);
	return rc;
}

/* Every library, dependencies first (by what they are now). */
static struct rewire_lib **all_in_order(size_t *n)
{
	*n = lib_count_libs();
	struct rewire_lib **set = calloc(*n + 1, sizeof *set), **out = calloc(*n + 1, sizeof *out);
	const struct image_info **infos = calloc(*n + 1, sizeof *infos);
	size_t i = 0;
	for (struct rewire_lib *l = libs; set && infos && l; l = l->next, i++)
		set[i] = l, infos[i] = &l->cur->info;
	if (!set || !out || !infos || (*n && lib_topo_sort(set, infos, *n, out) < 0)) {
		free(out);
		out = NULL;
	}
	free(set), free(infos);
	return out;
}

int rewire_lib_update_all(void)
{
	size_t n;
	int reloaded = 0, failed = 0;
	pthread_mutex_lock(&big);
	struct rewire_lib **all = all_in_order(&n);
	for (size_t i = 0; all && i < n; i++) {
		unsigned long before_txn = ntxn;
		int rc = lib_update_locked(all[i]);
		if (rc < 0)
			failed = 1;
		else if (rc > 0 && ntxn != before_txn)	/* its dependents came along */
			for (size_t k = 0; k < n; k++)
				reloaded += all[k]->cur && all[k]->cur->txn == ntxn;
	}
	pthread_mutex_unlock(&big);
	if (!all && n)
		return -1;
	free(all);
	return failed ? -1 : reloaded;
}

int rewire_lib_version(const rewire_lib *lib)
{
	return lib ? atomic_load(&((struct rewire_lib *)lib)->version) : 0;
}

const char *rewire_lib_error(const rewire_lib *lib)
{
	return lib ? lib->err : last_err;
}

int rewire_lib_call(rewire_lib *lib, void (*fn)(void *), void *arg)
{
	struct guard g;
	if (!fn)
		return lib_fail(lib, "rewire_lib_call: no function");
	if (!guard_run(&lib_ops, &g, fn, arg))
		return 0;
	pthread_mutex_lock(&big);
	lib_on_crash(lib, &g);
	pthread_mutex_unlock(&big);
	return REWIRE_CRASHED;
}

int rewire_lib_unload_old(rewire_lib *lib)
{
	char msg[ERRLEN] = "";
	int kept = 0;
	size_t n = 0;
	pthread_mutex_lock(&big);
	struct rewire_lib **all = lib ? NULL : all_in_order(&n);
	if (lib)
		kept = lib_unload_old_one(lib, msg, sizeof msg);
	else if (!all)
		n = 0;	/* a dependency cycle: the error says so */
	while (n-- > 0)	/* dependents first */
		kept += lib_unload_old_one(all[n], msg, sizeof msg);
	if (kept)
		lib_fail(lib, "%s", msg);
	pthread_mutex_unlock(&big);
	free(all);
	return kept;
}

void rewire_lib_close(rewire_lib *lib)
{
	if (!lib)
		return;
	pthread_mutex_lock(&big);
	struct rewire_lib **p = &libs;
	while (*p && *p != lib)
		p = &(*p)->next;
	if (*p)
		*p = lib->next;
	if (lib->cur)
		lib_run_unload_hook(lib->cur);
	lib->cur = NULL;
	for (struct version *v = lib->versions, *next; v; v = next) {
		next = v->older;
		if (lib_version_close(v))
			lib_version_free(v);	/* kept mapped: its file stays until exit */
	}
	lib->versions = NULL;
	pthread_mutex_unlock(&big);
	lib_free(lib);
}

