/* A reload, in the dylib reload API (lib.c): one transaction over the
 * library and every library that needs it, ordered dependencies first by
 * what each is about to be; every new version is loaded and accepted by
 * its load hook before any trampoline moves; on a failure, none is. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "lib.h"

unsigned long ntxn;

/* ------------------------------------------------------- dependencies */

/* x (described by xi) needs y: names its soname, or imports what y
 * defines and nothing global does. */
static int needs(const struct image_info *xi, const struct rewire_lib *y)
{
	const struct image_info *yi = y->cur ? &y->cur->info : NULL;
	if (!yi)
		return 0;
	for (size_t i = 0; yi->soname && i < xi->nneeded; i++)
		if (!strcmp(xi->needed[i], yi->soname))
			return 1;
	for (size_t i = 0; i < xi->nundefs; i++)
		if (lib_info_defines(yi, xi->undefs[i]) && !dlsym(RTLD_DEFAULT, xi->undefs[i]))
			return 1;
	return 0;
}

size_t lib_count_libs(void)
{
	size_t n = 0;
	for (struct rewire_lib *l = libs; l; l = l->next)
		n++;
	return n;
}

static int member(struct rewire_lib **set, size_t n, const struct rewire_lib *l)
{
	for (size_t i = 0; i < n; i++)
		if (set[i] == l)
			return 1;
	return 0;
}

/* lib and every library that needs it, directly or not. */
static size_t dependents(struct rewire_lib *lib, struct rewire_lib **set)
{
	size_t n = 0;
	set[n++] = lib;
	for (int grew = 1; grew;) {
		grew = 0;
		for (struct rewire_lib *l = libs; l; l = l->next)
			for (size_t i = 0; i < n && !member(set, n, l); i++)
				if (l->cur && needs(&l->cur->info, set[i]))
					set[n++] = l, grew = 1;
	}
	return n;
}

/* set ordered so that each library comes after those it needs (by
 * infos[i], what set[i] will be). -1 on a cycle. */
static int topo_visit(struct rewire_lib **set, const struct image_info **infos, size_t n, size_t i,
		      char *mark, struct rewire_lib **out, size_t *nout)
{
	if (mark[i] == 2)
		return 0;
	if (mark[i] == 1)
		return lib_fail(set[i], "%s: its libraries depend on each other in a cycle: cannot "
				"reload them in order", set[i]->name);
	mark[i] = 1;
	for (size_t k = 0; k < n; k++)
		if (k != i && needs(infos[i], set[k]) &&
		    topo_visit(set, infos, n, k, mark, out, nout) < 0)
			return -1;
	mark[i] = 2;
	out[(*nout)++] = set[i];
	return 0;
}

int lib_topo_sort(struct rewire_lib **set, const struct image_info **infos, size_t n,
		  struct rewire_lib **out)
{
	char *mark = calloc(n + 1, 1);
	size_t nout = 0;
	int rc = 0;
	if (!mark)
		return lib_fail(set[0], "out of memory");
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = topo_visit(set, infos, n, i, mark, out, &nout);
	free(mark);
	return rc;
}

/* --------------------------------------------------------- transactions */


void lib_txn_free(struct txn *t)
{
	for (size_t i = 0; t->src && i < t->n; i++)
		free(t->src[i].b);
	free(t->set), free(t->src), free(t->fresh), free(t->nv), free(t->old);
}

int lib_txn_alloc(struct txn *t, size_t n)
{
	memset(t, 0, sizeof *t);
	t->set = calloc(n, sizeof *t->set);
	t->src = calloc(n, sizeof *t->src);
	t->fresh = calloc(n, sizeof *t->fresh);
	t->nv = calloc(n, sizeof *t->nv);
	t->old = calloc(n, sizeof *t->old);
	return t->set && t->src && t->fresh && t->nv && t->old ? 0 : -1;
}

/* Undo a transaction that failed at step `done`: the versions it loaded
 * go (their unload hooks run first: their load hooks had accepted). */
static void txn_abort(struct txn *t, size_t done)
{
	while (done-- > 0) {
		lib_run_unload_hook(t->nv[done]);
		lib_version_release(t->nv[done]);
	}
}

static void txn_commit(struct txn *t)
{
	for (size_t i = 0; i < t->n; i++) {
		struct rewire_lib *l = t->set[i];
		struct version *v = t->nv[i];
		lib_retarget(l, v);
		lib_set_current(l->cur, 0);
		lib_set_current(v, 1);
		t->old[i] = l->cur;
		v->older = l->versions;
		l->versions = l->cur = v;
		l->next_num = v->num + 1;
		atomic_store(&l->version, v->num);
		if (t->fresh[i])
			l->seen = t->src[i].st;
	}
	for (size_t i = t->n; i-- > 0;)
		if (t->old[i])
			lib_run_unload_hook(t->old[i]);
}

/* Load every library of t in order; commit all, or none. */
int lib_txn_run(struct txn *t)
{
	t->id = ++ntxn;
	for (size_t i = 0; i < t->n; i++) {
		struct rewire_lib *l = t->set[i];
		char err[ERRLEN];
		if (!(t->nv[i] = lib_version_load(l, &t->src[i], t->id, t->nv, i))) {
			memcpy(err, last_err, sizeof err);
			txn_abort(t, i);
			for (size_t k = 0; k < t->n; k++)
				memcpy(t->set[k]->err, err, sizeof err);
			memcpy(last_err, err, sizeof err);
			return -1;
		}
	}
	for (size_t i = 0; i < t->n; i++)	/* an unload hook may still fail */
		t->set[i]->err[0] = 0;
	txn_commit(t);
	return 0;
}

/* Where each library of the set is loaded from: lib from the file read;
 * the others from their file when it changed and is complete, else from
 * the bytes their current version was made from. */
static int gather_sources(struct txn *t, struct rewire_lib **set, struct source *first)
{
	for (size_t i = 0; i < t->n; i++) {
		struct rewire_lib *l = set[i];
		struct stat st;
		t->set[i] = l;
		if (i == 0) {
			t->src[0] = *first, t->fresh[0] = 1;
			*first = (struct source){0};
		} else if (stat(l->path, &st) == 0 && !lib_same_file(&st, &l->seen) &&
			   lib_read_source(l, &t->src[i]) == SRC_OK) {
			t->fresh[i] = 1;
		} else if (lib_read_pristine(l->cur, &t->src[i]) < 0) {
			return -1;
		}
	}
	return 0;
}

static void txn_swap(struct txn *t, size_t i, size_t k)
{
	struct rewire_lib *l = t->set[i];
	struct source s = t->src[i];
	int f = t->fresh[i];
	t->set[i] = t->set[k], t->src[i] = t->src[k], t->fresh[i] = t->fresh[k];
	t->set[k] = l, t->src[k] = s, t->fresh[k] = f;
}

/* t->set in dependency order, by what each library is about to be. */
static int order(struct txn *t)
{
	const struct image_info **infos = calloc(t->n, sizeof *infos);
	struct rewire_lib **out = calloc(t->n, sizeof *out);
	struct image_info *tmp = calloc(t->n, sizeof *tmp);
	struct elf e;
	int rc = infos && out && tmp ? 0 : -1;
	for (size_t i = 0; rc == 0 && i < t->n; i++) {
		const char *why = lib_elf_parse(&e, t->src[i].b, t->src[i].n);
		if (why || lib_info_read(&tmp[i], &e) < 0)
			rc = lib_fail(t->set[i], "%s: %s", t->set[i]->name,
				      why ? why : "out of memory");
		infos[i] = &tmp[i];
	}
	if (rc == 0 && (rc = lib_topo_sort(t->set, infos, t->n, out)) == 0)
		for (size_t i = 0; i < t->n; i++)
			for (size_t k = i; k < t->n; k++)
				if (t->set[k] == out[i])
					txn_swap(t, i, k);
	for (size_t i = 0; tmp && i < t->n; i++)
		lib_info_free(&tmp[i]);
	free(infos), free(out), free(tmp);
	return rc;
}

/* Reload lib (from s, its file just read) and its dependents: 1, or -1. */
static int reload(struct rewire_lib *lib, struct source *s)
{
	struct txn t;
	int rc = -1;
	if (lib_txn_alloc(&t, lib_count_libs()) < 0) {
		lib_txn_free(&t);
		free(s->b);
		return lib_fail(lib, "%s: out of memory", lib->name);
	}
	struct rewire_lib **set = calloc(lib_count_libs(), sizeof *set);
	if (!set) {
		lib_fail(lib, "%s: out of memory", lib->name);
	} else {
		t.n = dependents(lib, set);
		if (gather_sources(&t, set, s) == 0 && order(&t) == 0)
			rc = lib_txn_run(&t) == 0 ? 1 : -1;
	}
	free(set);
	free(s->b);
	lib_txn_free(&t);
	return rc;
}

int lib_update_locked(struct rewire_lib *lib)
{
	struct stat st = {0};
	struct source s;
	if (stat(lib->path, &st) == 0 && lib_same_file(&st, &lib->seen))
		return 0;
	switch (lib_read_source(lib, &s)) {
	case SRC_WAIT:
		return 0;	/* the error says what is awaited */
	case SRC_ERR:
		lib->seen = s.st.st_ino ? s.st : st;
		return -1;
	}
	lib->seen = s.st;	/* tried: not again until it changes */
	return reload(lib, &s);
}
