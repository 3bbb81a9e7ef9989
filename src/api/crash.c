/* Crashes in library code, in the dylib reload API (lib.c): the
 * executable ranges of every loaded version, which the fault handlers
 * (guard/guard.c) read without a lock to tell library code from the
 * program's; how a crash caught by rewire_lib_call is described; and the
 * rollback of the transaction that loaded the version that crashed. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include "lib.h"

#define MAX_RANGES 4096	/* executable ranges the fault handler knows */

/* --------------------------------------------------------- fault ranges
 * The executable ranges of every loaded version, for the fault handler,
 * which reads them without a lock: each entry has a sequence number, odd
 * while it is being written, and says whether its version is current. */

static struct {
	_Atomic unsigned seq;
	_Atomic uintptr_t lo, hi;
	_Atomic int cur;
} ranges[MAX_RANGES];
static _Atomic int nranges;

int lib_range_add(uintptr_t lo, uintptr_t hi)
{
	int n = atomic_load(&nranges), i;
	for (i = 0; i < n && atomic_load_explicit(&ranges[i].hi, memory_order_relaxed); i++)
		;
	if (i == MAX_RANGES)
		return -1;	/* this version's crashes are not caught */
	atomic_fetch_add(&ranges[i].seq, 1);
	atomic_store_explicit(&ranges[i].lo, lo, memory_order_relaxed);
	atomic_store_explicit(&ranges[i].hi, hi, memory_order_relaxed);
	atomic_fetch_add(&ranges[i].seq, 1);
	if (i == n)
		atomic_store(&nranges, n + 1);
	return i;
}

void lib_range_del(int i)
{
	if (i < 0)
		return;
	atomic_fetch_add(&ranges[i].seq, 1);
	atomic_store_explicit(&ranges[i].lo, 0, memory_order_relaxed);
	atomic_store_explicit(&ranges[i].hi, 0, memory_order_relaxed);
	atomic_store_explicit(&ranges[i].cur, 0, memory_order_relaxed);
	atomic_fetch_add(&ranges[i].seq, 1);
}

void lib_range_current(int i, int cur)
{
	if (i >= 0)
		atomic_store_explicit(&ranges[i].cur, cur, memory_order_relaxed);
}

/* 0: not library code; 1: code of a library version; 2: of a current
 * one. Async-signal-safe. */
static int lib_code(uintptr_t pc)
{
	int n = atomic_load(&nranges);
	for (int i = 0; i < n; i++) {
		unsigned s = atomic_load(&ranges[i].seq);
		uintptr_t lo = atomic_load_explicit(&ranges[i].lo, memory_order_relaxed);
		uintptr_t hi = atomic_load_explicit(&ranges[i].hi, memory_order_relaxed);
		int cur = atomic_load_explicit(&ranges[i].cur, memory_order_relaxed);
		if (!(s & 1) && s == atomic_load(&ranges[i].seq) && pc >= lo && pc < hi)
			return 1 + cur;
	}
	return 0;
}

/* ------------------------------------------------------ guarded calls */

/* A return address into library code between the fault and the guard's
 * frame: library code made the call that failed (abort, a libc function
 * given a bad pointer). Frames that returned leave their values below the
 * live ones (an earlier version that ran, or crashed, at the same depth):
 * one into a current version is taken first, else the innermost. */
static uintptr_t lib_on_stack(uintptr_t sp, uintptr_t top)
{
	uintptr_t first = 0;
	for (uintptr_t p = (sp + 7) & ~(uintptr_t)7; p + 8 <= top; p += 8) {
		uintptr_t v = *(const uintptr_t *)p;
		/* v - 1: inside the call (a noreturn call may end its function). */
		int code = lib_code(v - 1);
		if (code == 2)
			return v - 1;
		if (code && !first)
			first = v - 1;
	}
	return first;
}

static int is_lib_code(uintptr_t pc)
{
	return lib_code(pc) != 0;
}

/* The fault handlers (guard/guard.c) ask these what is library code. */
const struct guard_ops lib_ops = {is_lib_code, lib_on_stack, NULL, NULL};

void lib_describe_crash(const struct guard *g, char *out, size_t cap)
{
	Dl_info di;
	const char *abbrev = sigabbrev_np(g->sig);
	char where[320] = "";
	if (!dladdr((void *)g->culprit, &di))
		di.dli_fname = NULL;
	if (di.dli_fname && di.dli_sname)
		snprintf(where, sizeof where, " in %.256s+%#lx", di.dli_sname,
			 (unsigned long)(g->culprit - (uintptr_t)di.dli_saddr));
	else if (di.dli_fname)	/* not inside an exported function (foo.cold...) */
		snprintf(where, sizeof where, " at offset %#lx of its file",
			 (unsigned long)(g->culprit - (uintptr_t)di.dli_fbase));
	snprintf(out, cap, "SIG%s%s%s", abbrev ? abbrev : "?", where,
		 g->sig == SIGSEGV || g->sig == SIGBUS ? ", bad address " : "");
	if (g->sig == SIGSEGV || g->sig == SIGBUS)
		snprintf(out + strlen(out), cap - strlen(out), "%p", g->addr);
}

/* ------------------------------------------------------------- crashes */

static struct version *version_at(uintptr_t pc)
{
	for (struct rewire_lib *l = libs; l; l = l->next)
		for (struct version *v = l->versions; v; v = v->older)
			for (int i = 0; i < v->info.nexec; i++)
				if (pc - v->base >= v->info.exec[i].lo &&
				    pc - v->base < v->info.exec[i].hi)
					return v;
	return NULL;
}

static int bound_to(const struct version *v, enum vstate st)
{
	for (size_t i = 0; i < v->nbound; i++)
		if (v->bound[i] && v->bound[i]->state == st)
			return 1;
	return 0;
}

/* The newest version of l loaded before transaction txn that can run. */
static struct version *before(struct rewire_lib *l, unsigned long txn)
{
	for (struct version *v = l->versions; v; v = v->older)
		if (v->txn < txn && v->state == V_LIVE && v->handle)
			return v;
	return NULL;
}

/* Mark the current versions to undo: those of bad's transaction, and
 * those bound to one undone (until nothing changes). */
static void mark_undone(struct version *bad)
{
	bad->state = V_BAD;
	for (int more = 1; more;) {
		more = 0;
		for (struct rewire_lib *l = libs; l; l = l->next) {
			struct version *c = l->cur;
			if (c && c->state == V_LIVE &&
			    (c->txn == bad->txn || bound_to(c, V_BAD) || bound_to(c, V_ROLLED)))
				c->state = V_ROLLED, more = 1;
		}
	}
}

/* Roll back the transaction that brought bad in; say what happened in
 * msg. */
static void rollback(struct version *bad, char *msg, size_t cap)
{
	mark_undone(bad);
	for (struct rewire_lib *l = libs; l; l = l->next) {
		struct version *c = l->cur, *to;
		size_t len = strlen(msg);
		if (!c || (c->state != V_BAD && c->state != V_ROLLED))
			continue;
		if (!(to = before(l, bad->txn))) {
			snprintf(msg + len, cap - len, "; %s has no earlier version to go back to: "
				 "version %d stays", l->name, c->num);
			continue;
		}
		int missing = lib_retarget(l, to);
		lib_set_current(c, 0);
		lib_set_current(to, 1);
		l->cur = to;
		atomic_store(&l->version, to->num);
		snprintf(msg + len, cap - len, "; %s rolled back to version %d%s", l->name, to->num,
			 missing ? " (some of its functions are newer: they stay)" : "");
		lib_run_load_hook(to);
	}
}

void lib_on_crash(struct rewire_lib *lib, const struct guard *g)
{
	char why[512], msg[ERRLEN];
	struct version *v = version_at(g->culprit);
	lib_describe_crash(g, why, sizeof why);
	if (!v) {
		lib_fail(lib, "library code crashed: %s", why);
	} else {
		snprintf(msg, sizeof msg, "%s version %d crashed: %s", v->lib->name, v->num, why);
		if (v == v->lib->cur)
			rollback(v, msg, sizeof msg);
		else
			snprintf(msg + strlen(msg), sizeof msg - strlen(msg), " (not the current "
				 "version: nothing to roll back)");
		lib_fail(v->lib, "%s", msg);
		if (lib)
			memcpy(lib->err, last_err, sizeof lib->err);
	}
	fprintf(stderr, "rewire: %s\n", last_err);
}
