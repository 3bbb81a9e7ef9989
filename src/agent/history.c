/* The patches in the process, oldest first: each numbered, its entry made
 * before its jumps and shown once they are written, so that the fault
 * handlers (api.c) can tell its code from the program's and name the
 * function it replaced, from the first moment a thread may run it; and
 * rollback: a patch and every later one undone, their entry jumps
 * written back as they were. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "apply.h"

int version;	/* of the newest patch: patches are numbered from 1 */
/* The session's number of the newest patch the process has (0: none, or
 * patched by `rewire apply` only). A forked child inherits it: the
 * session then knows which of its patches the child still needs. */
uint32_t generation;

/* Patches in the process, oldest first, for rollback and for telling
 * patch code from the program's in a signal handler: the array is fixed
 * (a handler cannot follow a realloc) and an entry, once published, only
 * changes its live flag. */
#define MAX_APPLIED 4096
/* Patches that can be rolled back: the newest ones (what each keeps is
 * small, but a process may see many thousands of patches). */
#define KEEP_UNDO 32
static struct applied applied[MAX_APPLIED];
static _Atomic size_t napplied;
static struct applied unlisted;	/* the entry of a patch past MAX_APPLIED */
struct api_note last_note;	/* of the newest patch, for the hooks */

/* While the world is stopped, right after the jumps: a fault from here on
 * in the new code is the patch's (atomic stores only). */
void apply_show_entry(struct applied *a)
{
	size_t n = atomic_load(&napplied);
	if (n >= MAX_APPLIED || a != &applied[n])
		return;	/* unlisted: not guarded */
	atomic_store(&a->live, 1);
	atomic_store(&napplied, n + 1);
}

/* The history entry, filled before the jumps: nothing may fail after, and
 * the fault handlers know the new code as the patch's from the moment a
 * thread can run it (apply_show_entry). It borrows the patch's entries and
 * names until apply_publish(). */
int apply_prepare_applied(struct patch *p)
{
	size_t n = atomic_load(&napplied);
	struct applied *a = n < MAX_APPLIED ? &applied[n] : &unlisted;
	memset(a, 0, sizeof *a);
	p->entry = a;
	a->version = version + 1;
	a->gen = p->m.gen;
	a->gen_before = generation;
	a->redirs = p->m.redirs, a->nredirs = p->m.nredirs;
	a->funcs = p->funcs, a->displays = p->displays;
	a->lo = UINT64_MAX;
	for (uint32_t i = 0; i < p->m.nsegs; i++)
		if (p->m.segs[i].prot == RW_PROT_RX) {
			if (p->m.segs[i].addr < a->lo)
				a->lo = p->m.segs[i].addr;
			if (p->m.segs[i].addr + p->m.segs[i].size > a->hi)
				a->hi = p->m.segs[i].addr + p->m.segs[i].size;
		}
	a->reg_before = calloc(p->m.nsyms ? p->m.nsyms : 1, sizeof *a->reg_before);
	a->reg_idx = calloc(p->m.nsyms ? p->m.nsyms : 1, sizeof *a->reg_idx);
	return a->reg_before && a->reg_idx ? 0 : -1;
}

/* The entry, shown since the jumps: the patch's sites, entries and names
 * move into it. */
void apply_publish(struct patch *p, struct applied *a)
{
	size_t n = atomic_load(&napplied) - 1;
	version = a->version;
	if (p->m.gen)
		generation = p->m.gen;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	a->when = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	a->sites = p->sites, a->nsites = p->nsites, p->sites = NULL;
	p->m.redirs = NULL, p->funcs = p->displays = NULL;
	last_note = (struct api_note){a->version, a->nredirs, a->funcs, a->displays};
	if (a == &unlisted) {
		free(a->sites);
		free(a->reg_before);
		free(a->reg_idx);
		return;	/* not guarded (its redirects and names stay: hooks use them) */
	}
	if (n >= KEEP_UNDO) {
		struct applied *old = &applied[n - KEEP_UNDO];
		free(old->sites);
		free(old->reg_before);
		free(old->reg_idx);
		old->sites = NULL, old->reg_before = NULL, old->reg_idx = NULL;
		old->nsites = old->nreg_changed = 0;
	}
}

/* The patch failed before its jumps: its entry was never shown. */
void apply_drop_entry(struct patch *p)
{
	if (!p->entry)
		return;
	free(p->entry->reg_before);
	free(p->entry->reg_idx);
	memset(p->entry, 0, sizeof *p->entry);
	p->entry = NULL;
}

/* --- crashes and rollback --------------------------------------------------- */

/* Async-signal-safe: the live patch whose code holds addr, or NULL. */
static const struct applied *applied_at(uint64_t addr)
{
	size_t n = atomic_load(&napplied);
	for (size_t i = n; i-- > 0;)
		if (addr >= applied[i].lo && addr < applied[i].hi)
			return &applied[i];
	return NULL;
}

int apply_is_patch_code(uint64_t addr)
{
	const struct applied *a = applied_at(addr);
	return a && atomic_load(&a->live);
}

/* The replaced function of a patch whose new code holds addr (the nearest
 * entry below it): async-signal-safe. */
const char *apply_name_at(uint64_t addr, int *ver, uint32_t *gen)
{
	const struct applied *a = applied_at(addr);
	const char *best = NULL;
	uint64_t at = 0;
	*ver = a ? a->version : 0;
	if (gen)
		*gen = a ? a->gen : 0;
	for (uint32_t i = 0; a && i < a->nredirs; i++)
		if (a->redirs[i].to <= addr && a->redirs[i].to >= at)
			at = a->redirs[i].to, best = a->redirs[i].display;
	return best;
}

struct undo {
	struct applied *a;
	struct site *back;	/* the jumps out of the versions taken back */
	size_t nback;
	int memfd;
};

static int write_back(void *ctx, struct agent_err *e)
{
	struct undo *u = ctx;
	for (size_t i = u->a->nsites; i-- > 0;) {
		const struct site *s = &u->a->sites[i];
		if (apply_code_write(u->memfd, s->at, s->old, s->len) < 0)
			return agent_fail(e, "%s: cannot restore the entry at %#lx", s->name,
					  (unsigned long)s->at);
	}
	/* Not undone if they fail: the entries already lead back. */
	for (size_t i = 0; i < u->nback; i++)
		apply_code_write(u->memfd, u->back[i].at, u->back[i].bytes, u->back[i].len);
	return 0;
}

/* Code of the patch may still run (a loop that never returns), and it
 * calls the patch's functions directly, not through their original
 * entries: each version taken back jumps to its function's original
 * entry, which leads to the version that runs now. Where a rel32 reaches
 * and the function holds the jump. */
static size_t plan_back(const struct applied *a, struct site *out)
{
	size_t n = 0;
	for (uint32_t i = 0; i < a->nredirs; i++) {
		uint64_t at = a->redirs[i].to, to = a->redirs[i].from;
		struct site *s = &out[n];
		if (arch_jump_size(at, to) != ARCH_JUMP_SIZE ||
		    apply_func_size(at) < ARCH_JUMP_SIZE ||
		    arch_encode_jump(s->bytes, at, to, ARCH_JUMP_SIZE) < 0)
			continue;
		s->at = at, s->len = ARCH_JUMP_SIZE, s->name = a->redirs[i].display;
		n++;
	}
	return n;
}

/* Every entry jump back as it was before a: the world stopped, no thread
 * inside the bytes written. Its code stays mapped (a thread may still run
 * in it until it returns), its functions' entries jump back (plan_back). */
static int undo_one(struct applied *a, struct agent_err *e)
{
	size_t most = a->nsites + a->nredirs;
	struct stop_range *ranges = calloc(most ? most : 1, sizeof *ranges);
	struct undo u = {a, calloc(a->nredirs ? a->nredirs : 1, sizeof *u.back), 0, -1};
	uint64_t pause;
	uint32_t nthreads;
	if (!ranges || !u.back) {
		free(ranges);
		free(u.back);
		return agent_fail(e, "out of memory");
	}
	u.nback = plan_back(a, u.back);
	/* The sites get their original bytes back, into which a return is
	 * right; the jumps back replace what is there now. */
	for (size_t i = 0; i < a->nsites; i++)
		ranges[i] = (struct stop_range){a->sites[i].at, a->sites[i].at + a->sites[i].len,
						a->sites[i].name, 0};
	for (size_t i = 0; i < u.nback; i++)
		ranges[a->nsites + i] = (struct stop_range){
			u.back[i].at, u.back[i].at + u.back[i].len, u.back[i].name,
			agent_may_return_inside((const uint8_t *)u.back[i].at, u.back[i].len)};
	u.memfd = open("/proc/self/mem", O_RDWR | O_CLOEXEC);
	int rc = stop_world_and(ranges, a->nsites + u.nback, write_back, &u, &pause, &nthreads, e);
	free(ranges);
	free(u.back);
	if (u.memfd >= 0)
		close(u.memfd);
	if (rc == 0) {
		apply_restore_registry(a);
		atomic_store(&a->live, 0);
		apply_jit_unregister(a->version);
	}
	return rc;
}

/* Every live patch from index k on undone, newest first (each restores
 * the bytes the one before it wrote): all, or none when one is too old
 * to undo. Under patch_lock. The process then runs, and says it has, what
 * it had before the patch at k. */
static int undo_from(size_t k, int *first, int *last, struct agent_err *e)
{
	size_t n = atomic_load(&napplied);
	*first = *last = 0;
	for (size_t i = k; i < n; i++)
		if (atomic_load(&applied[i].live) && !applied[i].reg_before)
			return agent_fail(e, "patch %d is too old to take back (rewire keeps the last %d)",
					  applied[i].version, KEEP_UNDO);
	for (size_t i = n; i-- > k;) {
		if (!atomic_load(&applied[i].live))
			continue;
		if (undo_one(&applied[i], e) < 0)
			return -1;
		if (!*last)
			*last = applied[i].version;
		*first = applied[i].version;
		generation = applied[i].gen_before;
	}
	return 0;
}

int apply_rollback(uint64_t culprit, int *first, int *last, struct agent_err *e)
{
	pthread_mutex_lock(&patch_lock);
	const struct applied *bad = applied_at(culprit);
	int rc;
	*first = *last = 0;
	if (!bad || !atomic_load(&bad->live))
		rc = agent_fail(e, "the patch of the crashing code was already rolled back");
	else
		rc = undo_from((size_t)(bad - applied), first, last, e);
	pthread_mutex_unlock(&patch_lock);
	return rc;
}

uint32_t apply_generation(void)
{
	pthread_mutex_lock(&patch_lock);
	uint32_t gen = generation;
	pthread_mutex_unlock(&patch_lock);
	return gen;
}

/* The hooks' note of a revert: the version that runs now, and the
 * functions taken back (kept until the next revert: hooks may hold them). */
static const char **revert_funcs, **revert_names;

static void note_revert(size_t k, struct api_note *note)
{
	size_t n = atomic_load(&napplied), nf = 0;
	for (size_t i = k; i < n; i++)
		nf += applied[i].nredirs;
	free(revert_funcs);
	free(revert_names);
	revert_funcs = calloc(nf + 1, sizeof *revert_funcs);
	revert_names = calloc(nf + 1, sizeof *revert_names);
	nf = 0;
	for (size_t i = k; revert_funcs && revert_names && i < n; i++)
		for (uint32_t j = 0; j < applied[i].nredirs; j++, nf++) {
			revert_funcs[nf] = applied[i].funcs ? applied[i].funcs[j] : "";
			revert_names[nf] = applied[i].displays ? applied[i].displays[j] : "";
		}
	int now = 0;
	for (size_t i = 0; i < k; i++)
		if (atomic_load(&applied[i].live))
			now = applied[i].version;
	*note = (struct api_note){now, revert_funcs && revert_names ? nf : 0, revert_funcs,
				  revert_names};
}

static size_t first_after(const struct msg_revert *rv)
{
	size_t n = atomic_load(&napplied), k = 0;
	/* By the session's number, `rewire apply`'s patches (0) after the
	 * first one taken back go with it. */
	while (k < n && (rv->by_gen ? applied[k].gen <= rv->to : applied[k].version <= (int)rv->to))
		k++;
	return k;
}

int apply_revert_needed(const struct msg_revert *rv)
{
	pthread_mutex_lock(&patch_lock);
	size_t n = atomic_load(&napplied), k = first_after(rv);
	int live = 0;
	while (k < n && !live)
		live = atomic_load(&applied[k++].live);
	pthread_mutex_unlock(&patch_lock);
	return live;
}

/* REVERT, under patch_lock: the patches after rv->to taken back. */
int apply_revert_locked(const struct msg_revert *rv, struct msg_reverted *out, struct api_note *note,
			struct agent_err *e)
{
	size_t n = atomic_load(&napplied), k = first_after(rv);
	int first, last;
	int rc = undo_from(k, &first, &last, e);
	*out = (struct msg_reverted){(uint32_t)first, (uint32_t)last, 0, generation};
	for (size_t i = 0; i < n; i++)
		if (atomic_load(&applied[i].live))
			out->version = (uint32_t)applied[i].version;
	if (rc == 0 && last)
		note_revert(k, note);
	return rc;
}

/* The function of a patch holding addr, by the registry: new functions
 * too (not for a signal handler: it takes the lock). */
const char *apply_function_at(uint64_t addr)
{
	const char *name = NULL;
	pthread_mutex_lock(&patch_lock);
	for (size_t i = 0; i < nreg && !name; i++)
		if (reg[i].kind == RW_KIND_FUNC && addr >= reg[i].addr && addr < reg[i].addr + reg[i].size)
			name = reg[i].name;
	pthread_mutex_unlock(&patch_lock);
	if (!name) {
		int ver;
		name = apply_name_at(addr, &ver, NULL);
	}
	return name;
}

/* --- what the process holds (`rewire status`) --------------------------------- */

/* STATUS: u32 n, then per patch, oldest first: u32 version, u32 gen,
 * u64 when, u8 live, u32 n, n strings (the functions it replaced). Under
 * patch_lock: no patch changes the list meanwhile. */
void apply_status(struct proto_buf *b)
{
	pthread_mutex_lock(&patch_lock);
	size_t n = atomic_load(&napplied);
	proto_put_u32(b, (uint32_t)n);
	for (size_t i = 0; i < n; i++) {
		const struct applied *a = &applied[i];
		proto_put_u32(b, (uint32_t)a->version);
		proto_put_u32(b, a->gen);
		proto_put_u64(b, a->when);
		proto_put_u8(b, (uint8_t)atomic_load(&a->live));
		proto_put_u32(b, a->nredirs);
		for (uint32_t k = 0; k < a->nredirs; k++)
			proto_put_str(b, a->redirs[k].display ? a->redirs[k].display : "");
	}
	pthread_mutex_unlock(&patch_lock);
}
