/* Pair function-local statics that the compiler renumbered.
 *
 * gcc names function-local statics name.N, numbered in the order of the
 * translation unit: add a function with its own `static int count` before
 * another, and the other's count.0 becomes count.1. Binding by name would
 * hand one function another's counter. So a numbered static of the patch
 * is paired through the functions that use it: find the functions of the
 * patch that refer to it, decode the same functions in the running
 * executable, and see which of the program's name.M statics they address.
 * One answer: that storage. No running function refers to any: it is new.
 * Two answers: refused. (clang names them function.name: no ambiguity.) */
#include <elf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "linker.h"
#include "util.h"

#define MAX_NUMBER 64

static int numbered(const char *name, size_t *baselen)
{
	const char *dot = strrchr(name, '.');
	if (!dot || dot == name || !dot[1] || strspn(dot + 1, "0123456789") != strlen(dot + 1))
		return 0;
	*baselen = (size_t)(dot - name);
	return 1;
}

static const struct elf_symbol *exe_numbered(struct link *l, const struct elf_symbol *s,
					    size_t baselen, int m)
{
	char name[512];
	snprintf(name, sizeof name, "%.*s.%d", (int)baselen, s->name, m);
	return elf_image_find(l->proc->exe, name, s->file);
}

/* Does the program have statics of this base name in this unit? */
static int program_has_base(struct link *l, const struct elf_symbol *s, size_t baselen)
{
	for (int m = 0; m < MAX_NUMBER; m++)
		if (exe_numbered(l, s, baselen, m))
			return 1;
	return 0;
}

/* Which name.M the running function fn (link-time address) addresses
 * with RIP-relative operands: -1 none, -2 several, else M. */
static int used_by_running(struct link *l, const struct elf_symbol *fn, const struct elf_symbol *s,
			   size_t baselen)
{
	const struct elf_image *exe = l->proc->exe;
	int found = -1;
	for (size_t i = 1; i < exe->nsections; i++) {
		const struct elf_section *sec = &exe->sections[i];
		if (!sec->data || fn->value < sec->addr || fn->value + fn->size > sec->addr + sec->size)
			continue;
		const uint8_t *code = sec->data + (fn->value - sec->addr);
		for (uint64_t at = 0; at < fn->size;) {
			uint64_t targets[ARCH_MAX_TARGETS];
			int n, len = arch_next_insn(code + at, fn->size - at, fn->value + at, targets, &n);
			if (len < 0)
				return found;
			for (int k = 0; k < n; k++) {
				uint64_t target = targets[k];
				for (int m = 0; m < MAX_NUMBER; m++) {
					const struct elf_symbol *t = exe_numbered(l, s, baselen, m);
					if (t && target >= t->value && target < t->value + (t->size ? t->size : 1))
						found = found == -1 || found == m ? m : -2;
				}
			}
			at += (uint64_t)len;
		}
	}
	return found;
}

/* The static a relocation of the patch refers to, if any. */
static const struct elf_symbol *reloc_target(struct link *l, uint32_t oi, uint16_t si,
					    const struct elf_rela *r)
{
	const struct elf_object *o = &l->objs[oi];
	const struct elf_symbol *t = &o->symbols[r->sym];
	if (t->type != STT_SECTION)
		return t;
	int64_t off = r->addend;
	int known;
	int64_t tail = arch_pc_tail(l->secs[oi][si].starts, r->offset, o->sections[si].size, &known);
	if (known)
		off += tail;
	return off >= 0 ? elf_object_symbol_at(o, t->shndx, (uint64_t)off) : NULL;
}

/* Does the code at relocation r use s? What r refers to, or for an
 * address the code reaches other bytes from (gcc's section anchors), what
 * those accesses reach: the address itself may be another variable's. */
static int uses(struct link *l, uint32_t oi, uint16_t si, const struct elf_rela *r,
		const struct elf_symbol *s)
{
	const struct elf_object *o = &l->objs[oi];
	const struct elf_section *sec = &o->sections[si];
	const struct elf_symbol *t = &o->symbols[r->sym];
	int64_t offs[ARCH_MAX_ANCHORED];
	struct reloc_kind k;
	arch_reloc_kind(r->type, &k);
	if (k.page)
		return 0;
	int n = sec->data ? arch_anchor_offsets(sec->data, sec->size, r->offset, offs,
						 ARCH_MAX_ANCHORED) : 0;
	if (n < 0)
		return 1;	/* too many to tell: taken as a use, which asks the running code */
	if (!n)
		return reloc_target(l, oi, si, r) == s;
	int64_t base = (t->type == STT_SECTION ? 0 : (int64_t)t->value) + r->addend;
	for (int i = 0; i < n && t->shndx == s->shndx; i++)
		if (base + offs[i] >= (int64_t)s->value &&
		    base + offs[i] < (int64_t)(s->value + (s->size ? s->size : 1)))
			return 1;
	return 0;
}

/* Pair one numbered static s of object oi: 0 and *m (-1: the functions
 * using it are new or use none of the program's; -2: nothing uses it). */
static int pair_one(struct link *l, uint32_t oi, const struct elf_symbol *s, size_t baselen, int *m)
{
	const struct elf_object *o = &l->objs[oi];
	int examined = 0;
	*m = -1;
	for (uint16_t si = 1; si < o->nsections; si++) {
		const struct elf_section *sec = &o->sections[si];
		if (!(sec->flags & SHF_EXECINSTR))
			continue;
		for (size_t ri = 0; ri < sec->nrelas; ri++) {
			if (!uses(l, oi, si, &sec->relas[ri], s))
				continue;
			const struct elf_symbol *f = elf_object_symbol_at(o, si, sec->relas[ri].offset);
			const struct elf_symbol *run = f && f->type == STT_FUNC ?
				elf_image_find(l->proc->exe, f->name, f->bind == STB_LOCAL ? f->file : NULL) : NULL;
			int used = run ? used_by_running(l, run, s, baselen) : -1;
			examined |= f != NULL;	/* a function the program lacks is new: so is its static */
			if (used == -2 || (used >= 0 && *m >= 0 && used != *m))
				return rw_fail("%s: %s: the running %s uses several statics named %.*s: "
					       "cannot tell which one this is", o->path, s->name, f->name,
					       (int)baselen, s->name);
			if (used >= 0)
				*m = used;
		}
	}
	if (!examined)
		*m = -2;
	return 0;
}

/* Do the patch and the program number this name's statics alike? */
static int same_numbering(struct link *l, const struct elf_object *o, const struct elf_symbol *s,
			  size_t baselen)
{
	char name[512];
	for (int m = 0; m < MAX_NUMBER; m++) {
		int in_obj = 0;
		snprintf(name, sizeof name, "%.*s.%d", (int)baselen, s->name, m);
		for (size_t j = 1; j < o->nsymbols && !in_obj; j++)
			in_obj = o->symbols[j].type == STT_OBJECT && o->symbols[j].bind == STB_LOCAL &&
				 !strcmp(o->symbols[j].name, name);
		if (in_obj != (exe_numbered(l, s, baselen, m) != NULL))
			return 0;
	}
	return 1;
}

static int already_paired(struct link *l, const char *exe_name)
{
	for (size_t i = 0; i < l->npairs; i++)
		if (l->pairs[i].exe_name && !strcmp(l->pairs[i].exe_name, exe_name))
			return 1;
	return 0;
}

int link_pair_statics(struct link *l)
{
	for (uint32_t oi = 0; oi < l->nobjs; oi++) {
		const struct elf_object *o = &l->objs[oi];
		for (size_t j = 1; j < o->nsymbols && !(l->lib && l->lib[oi]); j++) {
			const struct elf_symbol *s = &o->symbols[j];
			size_t baselen;
			int m;
			if (s->type != STT_OBJECT || s->bind != STB_LOCAL || !numbered(s->name, &baselen) ||
			    baselen > 400 || !program_has_base(l, s, baselen))
				continue;
			if (pair_one(l, oi, s, baselen, &m) < 0)
				return -1;
			/* No code uses it to ask: the name holds if nothing was
			 * renumbered. */
			if (m == -2 && same_numbering(l, o, s, baselen))
				continue;
			if (m == -2)
				return rw_fail("%s: the function-local statics named %.*s were renumbered "
					       "and no code shows which is which; restart the program for this "
					       "change", o->path, (int)baselen, s->name);
			char *name = NULL;
			if (m >= 0) {
				name = rw_malloc(baselen + 16);
				snprintf(name, baselen + 16, "%.*s.%d", (int)baselen, s->name, m);
				if (already_paired(l, name)) {
					free(name);
					return rw_fail("%s: two statics of the patch pair with the running %.*s.%d",
						       o->path, (int)baselen, s->name, m);
				}
			}
			l->pairs = rw_grow(l->pairs, &l->cappairs, l->npairs, sizeof *l->pairs);
			l->pairs[l->npairs++] = (struct pairing){s, name};
		}
	}
	return 0;
}

const char *link_paired_name(struct link *l, const struct elf_symbol *s, int *is_new)
{
	*is_new = 0;
	for (size_t i = 0; i < l->npairs; i++)
		if (l->pairs[i].sym == s) {
			*is_new = l->pairs[i].exe_name == NULL;
			return l->pairs[i].exe_name;
		}
	return NULL;
}
