/* Other readers of a changed constant.
 *
 * A patch loads a changed constant anew and its new code reads the new
 * copy. That is the whole story for a file-local constant: every function
 * of its file is in the patch, and the diff marks every one that reaches
 * the constant as changed. A global constant may also be read by code of
 * other files, which the patch does not replace and which would keep
 * reading the old copy where a fresh build reads the new one. So before
 * such a patch, the running executable's code is searched for references
 * to the constant (RIP-relative operands; in a non-PIE executable also
 * 32-bit absolute addresses) outside the functions the patch redirects; one
 * found refuses the patch, naming the reader. */
#include <elf.h>
#include <string.h>
#include <stdlib.h>
#include "linker.h"
#include "util.h"

struct range {
	uint64_t lo, hi;	/* link-time addresses in the executable */
	const char *name;
};

struct ranges {
	struct range *r;
	size_t n, cap;
};

static int in_ranges(const struct ranges *rs, uint64_t a)
{
	for (size_t i = 0; i < rs->n; i++)
		if (a >= rs->r[i].lo && a < rs->r[i].hi)
			return 1;
	return 0;
}

static void add_range(struct ranges *rs, uint64_t lo, uint64_t hi, const char *name)
{
	rs->r = rw_grow(rs->r, &rs->cap, rs->n, sizeof *rs->r);
	rs->r[rs->n++] = (struct range){lo, hi, name};
}

/* The changed global constants of the patch that the executable has. */
static void changed_globals(struct link *l, struct ranges *consts)
{
	const struct elf_image *exe = l->proc->exe;
	for (uint32_t oi = 0; oi < l->nobjs; oi++) {
		const struct elf_object *o = &l->objs[oi];
		for (size_t j = 1; j < o->nsymbols && !(l->lib && l->lib[oi]); j++) {
			const struct elf_symbol *s = &o->symbols[j];
			if (s->type != STT_OBJECT || s->bind == STB_LOCAL || !s->name[0] ||
			    s->shndx == SHN_UNDEF || s->shndx >= o->nsections ||
			    !elf_section_is_const(&o->sections[s->shndx]) || !link_is_changed(l, oi, s))
				continue;
			const struct elf_symbol *e = elf_image_find(exe, s->name, NULL);
			if (e && e->type == STT_OBJECT && e->size)
				add_range(consts, e->value, e->value + e->size, s->name);
		}
	}
}

/* The functions the patch redirects: their references need no care. */
static void redirected(struct link *l, struct ranges *funcs)
{
	const struct elf_image *exe = l->proc->exe;
	uint64_t bias = l->proc->mods[l->proc->target].base;
	for (size_t i = 0; i < l->nredirs; i++) {
		uint64_t at = l->redirs[i].from - bias, end = elf_image_next_boundary(exe, at);
		add_range(funcs, at, end > at ? end : at + 1, l->redirs[i].name);
	}
}

/* The executable's function holding address a, for the message. */
static const char *function_at(const struct elf_image *exe, uint64_t a)
{
	const struct elf_symbol *best = NULL;
	for (size_t i = 1; i < exe->nsymbols; i++) {
		const struct elf_symbol *s = &exe->symbols[i];
		if (s->type == STT_FUNC && s->value <= a && (!best || s->value > best->value) &&
		    (a < s->value + s->size || !s->size))
			best = s;
	}
	return best ? best->name : "?";
}

static const struct range *range_of(const struct ranges *rs, uint64_t a)
{
	for (size_t i = 0; i < rs->n; i++)
		if (a >= rs->r[i].lo && a < rs->r[i].hi)
			return &rs->r[i];
	return NULL;
}

/* The first reference to a constant in the code of section sec outside
 * the redirected functions: its address, or 0. *what: the constant. */
static uint64_t find_reference(const struct elf_image *exe, const struct elf_section *sec,
			       const struct ranges *consts, const struct ranges *funcs,
			       const struct range **what)
{
	int absolute = exe->e_type == ET_EXEC;
	for (uint64_t off = 0; off < sec->size;) {
		uint64_t at = sec->addr + off, targets[ARCH_MAX_TARGETS];
		int n, len = arch_next_insn(sec->data + off, sec->size - off, at, targets, &n);
		if (len < 0) {
			off++;
			continue;
		}
		const struct range *hit = NULL;
		for (int i = 0; i < n && !hit; i++)
			hit = range_of(consts, targets[i]);
		/* x86-64 non-PIE code holds addresses as 32-bit immediates */
		for (int k = 1; absolute && !hit && k + 4 <= len; k++) {
			uint32_t v;
			memcpy(&v, sec->data + off + k, 4);
			hit = range_of(consts, v);
		}
		if (hit && !in_ranges(funcs, at)) {
			*what = hit;
			return at;
		}
		off += (uint64_t)len;
	}
	return 0;
}

int link_check_const_readers(struct link *l)
{
	const struct elf_image *exe = l->proc->exe;
	struct ranges consts = {0}, funcs = {0};
	int rc = 0;
	if (l->proc->target == 0 && exe->map)
		changed_globals(l, &consts);
	if (consts.n)
		redirected(l, &funcs);
	for (size_t i = 1; consts.n && i < exe->nsections && rc == 0; i++) {
		const struct elf_section *sec = &exe->sections[i];
		const struct range *what = NULL;
		if (!(sec->flags & SHF_EXECINSTR) || !sec->data)
			continue;
		uint64_t at = find_reference(exe, sec, &consts, &funcs, &what);
		if (at)
			rc = rw_fail("%s: this constant changed, and %s, which the patch does not replace, "
				     "reads it too: it would keep reading the old value (restart the "
				     "program for this change, or change the constant where only this "
				     "file reads it)", rw_demangle(what->name),
				     rw_demangle(function_at(exe, at)));
	}
	free(consts.r);
	free(funcs.r);
	return rc;
}
