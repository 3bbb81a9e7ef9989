/* What the patches so far leave for the next ones: the symbols they
 * defined, which the driver binds new code to (HELLO sends them), and
 * every version of each redirected function, so that the next patch of a
 * function also sends the version it replaces back to the original
 * entry. Recorded once a patch is in; restored when one is rolled back. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include "apply.h"

/* What earlier patches defined: the driver binds new code to these. */
struct msg_regsym *reg;
size_t nreg;
static size_t capreg;

static struct versions *vers;	/* by original entry */
static size_t nvers, capvers;

struct versions *apply_find_versions(uint64_t orig)
{
	for (size_t i = 0; i < nvers; i++)
		if (vers[i].orig == orig)
			return &vers[i];
	return NULL;
}

static int remember_version(uint64_t orig, uint64_t addr)
{
	struct versions *v = apply_find_versions(orig);
	if (!v) {
		struct versions *nv = rw_try_grow(vers, &capvers, nvers, sizeof *vers);
		if (!nv)
			return -1;
		vers = nv;
		v = &vers[nvers++];
		*v = (struct versions){orig, NULL, 0};
	}
	uint64_t *nvv = realloc(v->v, (v->n + 1) * sizeof *v->v);
	if (!nvv)
		return -1;
	v->v = nvv;
	v->v[v->n++] = addr;
	return 0;
}

static struct msg_regsym *find_reg(const char *scope, const char *name)
{
	for (size_t i = 0; i < nreg; i++)
		if (!strcmp(reg[i].name, name) && !strcmp(reg[i].scope, scope))
			return &reg[i];
	return NULL;
}

/* The patch is in: remember its versions and symbols. Memory is reserved
 * before the jumps, so that nothing can fail after them. */
int apply_reserve_records(const struct patch *p)
{
	void *q;
	for (size_t i = 0; i < p->m.nsyms; i++) {
		if (!(q = rw_try_grow(reg, &capreg, nreg + i, sizeof *reg)))
			return -1;
		reg = q;
	}
	for (size_t i = 0; i < p->m.nredirs; i++) {
		if (!(q = rw_try_grow(vers, &capvers, nvers + i, sizeof *vers)))
			return -1;
		vers = q;
	}
	return 0;
}

void apply_record(struct patch *p, struct applied *a)
{
	for (uint32_t i = 0; i < p->m.nredirs; i++)
		remember_version(p->m.redirs[i].from, p->m.redirs[i].to);
	a->nreg_before = nreg;
	for (uint32_t i = 0; i < p->m.nsyms; i++) {
		struct msg_regsym *s = &p->m.syms[i], *old = find_reg(s->scope, s->name);
		if (old && a->reg_before && (size_t)(old - reg) < a->nreg_before) {
			a->reg_idx[a->nreg_changed] = (size_t)(old - reg);
			a->reg_before[a->nreg_changed++] = *old;
		}
		if (old) {
			old->addr = s->addr;
			old->size = s->size;
			old->kind = s->kind;
			free(s->scope);
			free(s->name);
		} else {
			reg[nreg++] = *s;
		}
		s->scope = s->name = NULL;
	}
}

void apply_restore_registry(struct applied *a)
{
	for (size_t i = a->nreg_changed; i-- > 0;)
		reg[a->reg_idx[i]] = a->reg_before[i];
	for (size_t i = a->nreg_before; i < nreg; i++) {
		free(reg[i].scope);
		free(reg[i].name);
	}
	nreg = a->nreg_before;
	for (size_t i = 0; i < a->nredirs; i++) {
		struct versions *v = NULL;
		for (size_t j = 0; j < nvers && !v; j++)
			if (vers[j].n && vers[j].v[vers[j].n - 1] == a->redirs[i].to)
				v = &vers[j];
		if (v)
			v->n--;	/* its version is no longer one to send jumps from */
	}
}

/* The size of the function the registry has at addr (a patch's), or 0. */
uint64_t apply_func_size(uint64_t addr)
{
	for (size_t i = 0; i < nreg; i++)
		if (reg[i].kind == RW_KIND_FUNC && reg[i].addr == addr)
			return reg[i].size;
	return 0;
}
