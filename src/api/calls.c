/* Calls into a library version, in the dylib reload API (lib.c): the
 * trampolines the program calls through, whose slots a reload retargets,
 * and the load and unload hooks, which rewire calls under the guard. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "lib.h"

#define TRAMP 16	/* bytes per trampoline */

/* ---------------------------------------------------------- hooks */

struct hook_call {
	void *fn;
	void *state;
	int version, rc;
};

static void call_load(void *p)
{
	struct hook_call *h = p;
	h->rc = ((int (*)(void *, int))h->fn)(h->state, h->version);
}

static void call_unload(void *p)
{
	struct hook_call *h = p;
	((void (*)(void *, int))h->fn)(h->state, h->version);
}

/* name, defined by v itself (dlsym also finds what its dependencies
 * define): its address, else NULL. */
void *lib_own_sym(struct version *v, const char *name, int code)
{
	void *p = dlsym(v->handle, name);
	uintptr_t a = (uintptr_t)p - v->base;
	if (!p)
		return NULL;
	if (!code)
		return a >= v->info.image.lo && a < v->info.image.hi ? p : NULL;
	for (int i = 0; i < v->info.nexec; i++)
		if (a >= v->info.exec[i].lo && a < v->info.exec[i].hi)
			return p;
	return NULL;
}

/* 0 accepted (or no hook), else -1 with the error set. */
int lib_run_load_hook(struct version *v)
{
	struct rewire_lib *lib = v->lib;
	struct hook_call h = {lib_own_sym(v, "rewire_lib_load", 1), lib->state, v->num, 0};
	struct guard g;
	char why[512];
	if (!h.fn)
		return 0;
	if (guard_run(&lib_ops, &g, call_load, &h)) {
		lib_describe_crash(&g, why, sizeof why);
		return lib_fail(lib, "%s: version %d: rewire_lib_load crashed: %s", lib->name,
				v->num, why);
	}
	if (h.rc)
		return lib_fail(lib, "%s: version %d: rewire_lib_load refused it (returned %d)",
				lib->name, v->num, h.rc);
	return 0;
}

void lib_run_unload_hook(struct version *v)
{
	struct hook_call h = {lib_own_sym(v, "rewire_lib_unload", 1), v->lib->state, v->num, 0};
	struct guard g;
	char why[512];
	if (h.fn && guard_run(&lib_ops, &g, call_unload, &h)) {
		lib_describe_crash(&g, why, sizeof why);
		lib_fail(v->lib, "%s: version %d: rewire_lib_unload crashed: %s", v->lib->name,
			 v->num, why);
	}
}

/* -------------------------------------------------------- trampolines
 * Each jumps through its slot in the page after the code page:
 *   x86-64:  endbr64 (a no-op without CET); jmp *slot(%rip)
 *   aarch64: bti c (a no-op without BTI); ldr x16, slot; br x16 (x16 is
 *            the register the psABI gives veneers)
 * Written while the page is only writable, then made read+exec: never
 * both. */

size_t lib_page_size(void)
{
	return (size_t)sysconf(_SC_PAGESIZE);
}

#if defined(__x86_64__)
static void write_tramp(unsigned char *t, size_t i, size_t pg)
{
	int32_t disp = (int32_t)(pg + i * 8 - (i * TRAMP + 10));
	memcpy(t, "\xf3\x0f\x1e\xfa\xff\x25", 6);
	memcpy(t + 6, &disp, 4);
	memset(t + 10, 0xcc, TRAMP - 10);
}
#elif defined(__aarch64__)
static void write_tramp(unsigned char *t, size_t i, size_t pg)
{
	/* The ldr's literal is a word offset of 19 bits: slots are within
	 * a page of a 64 KiB page at most. */
	uint32_t off = (uint32_t)(pg + i * 8 - (i * TRAMP + 4)) / 4;
	uint32_t insn[4] = {0xd503245f, 0x58000010 | (off & 0x7ffff) << 5, 0xd61f0200, 0};
	memcpy(t, insn, sizeof insn);
}
#endif

static struct chunk *chunk_new(struct rewire_lib *lib)
{
#if defined(__x86_64__) || defined(__aarch64__)
	size_t pg = lib_page_size();
	struct chunk *c = calloc(1, sizeof *c);
	unsigned char *m = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
				-1, 0);
	if (!c || m == MAP_FAILED) {
		lib_fail(lib, "%s: no memory for trampolines: %s", lib->name, strerror(errno));
		if (m != MAP_FAILED)
			munmap(m, 2 * pg);
		free(c);
		return NULL;
	}
	for (size_t i = 0; i < pg / TRAMP; i++)
		write_tramp(m + i * TRAMP, i, pg);
	/* aarch64's instruction cache does not see stores: clean and
	 * invalidate it over the new code (nothing to do on x86-64). */
	__builtin___clear_cache((char *)m, (char *)m + pg);
	if (mprotect(m, pg, PROT_READ | PROT_EXEC) < 0) {
		munmap(m, 2 * pg);
		free(c);
		lib_fail(lib, "%s: cannot make trampolines executable: %s", lib->name,
			 strerror(errno));
		return NULL;
	}
	c->code = m;
	return c;
#else
	lib_fail(lib, "%s: trampolines are made on x86-64 and aarch64 only", lib->name);
	return NULL;
#endif
}

int lib_tramp_new(struct rewire_lib *lib, struct sym *s)
{
	size_t pg = lib_page_size();
	struct chunk *c = lib->chunks;
	if (!c || c->used == pg / TRAMP) {
		if (!(c = chunk_new(lib)))
			return -1;
		c->next = lib->chunks;
		lib->chunks = c;
	}
	s->tramp = c->code + c->used * TRAMP;
	s->slot = (_Atomic uintptr_t *)(c->code + pg + c->used * 8);
	c->used++;
	return 0;
}

/* The address of symbol i in v (found when first needed). */
void *lib_ver_addr(struct version *v, size_t i)
{
	struct rewire_lib *lib = v->lib;
	if (i >= v->naddr) {
		void **a = realloc(v->addr, lib->capsyms * sizeof *a);
		if (!a)
			return NULL;
		for (size_t k = v->naddr; k < lib->capsyms; k++)
			a[k] = NULL;
		v->addr = a, v->naddr = lib->capsyms;
	}
	if (!v->addr[i])
		v->addr[i] = lib_own_sym(v, lib->syms[i].name, 1);
	return v->addr[i];
}

/* Every trampoline of lib to v. 0, or the number of symbols v lacks
 * (only when going back to a version older than the symbol). */
int lib_retarget(struct rewire_lib *lib, struct version *v)
{
	int missing = 0;
	for (size_t i = 0; i < lib->nsyms; i++) {
		void *a = lib_ver_addr(v, i);
		if (a)
			atomic_store_explicit(lib->syms[i].slot, (uintptr_t)a,
					      memory_order_release);
		else
			missing++;
	}
	return missing;
}
