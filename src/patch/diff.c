/* Diff: compare a function of the new object with its twin in the
 * baseline, the object of the code that runs now.
 *
 * Bytes are compared with relocation fields masked, and relocations by
 * what they refer to: a named symbol by name, a section+addend by the
 * symbol the offset falls in (exact, thanks to the decoded instruction
 * ends) or, for string literals, by the string itself. So a function whose
 * code only moved, or whose callee moved, is the same; one that calls
 * something else, or prints another string, changed. Inlining needs no
 * special case: a caller whose inlined callee changed has changed bytes.
 * Same-section calls and lea, which the assembler resolves itself, got
 * synthetic relocations in scan.c, so they compare by target too. */
#define _GNU_SOURCE
#include <elf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "diff.h"
#include "link/link.h"
#include "util.h"

static uint32_t name_hash(const char *name)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0, n = rw_name_len(name); i < n; i++)
		h = (h ^ (uint8_t)name[i]) * 16777619u;
	return h;
}

/* Twins are looked up by name for every function and datum: index once. */
static void index_names(struct diff_obj *d)
{
	const struct rw_objfile *o = d->obj;
	d->nslots = 64;
	while (d->nslots < 2 * o->nsymbols)
		d->nslots *= 2;
	d->byname = rw_calloc(d->nslots, sizeof *d->byname);
	for (size_t j = 1; j < o->nsymbols; j++) {
		const struct rw_symbol *s = &o->symbols[j];
		if (!s->name[0] || s->shndx == SHN_UNDEF || (s->type != STT_FUNC && s->type != STT_OBJECT))
			continue;
		size_t i = name_hash(s->name) & (d->nslots - 1);
		while (d->byname[i])
			i = (i + 1) & (d->nslots - 1);
		d->byname[i] = (uint32_t)j + 1;
	}
}

/* The first defined symbol of d of type type, bind class and name of s. */
static const struct rw_symbol *find_by_name(const struct diff_obj *d, const struct rw_symbol *s,
					    int type)
{
	const struct rw_objfile *o = d->obj;
	const struct rw_symbol *best = NULL;
	for (size_t i = name_hash(s->name) & (d->nslots - 1); d->byname[i]; i = (i + 1) & (d->nslots - 1)) {
		const struct rw_symbol *c = &o->symbols[d->byname[i] - 1];
		if (c->type == type && (c->bind == STB_LOCAL) == (s->bind == STB_LOCAL) &&
		    rw_name_eq(c->name, s->name) && (!best || c < best))
			best = c;
	}
	return best;
}

void diff_obj_init(struct diff_obj *d, struct rw_objfile *obj)
{
	d->obj = obj;
	index_names(d);
	d->nsections = obj->nsections;
	d->starts = rw_calloc(obj->nsections, sizeof *d->starts);
	for (uint16_t si = 1; si < obj->nsections; si++) {
		const struct rw_section *s = &obj->sections[si];
		if ((s->flags & SHF_EXECINSTR) && (s->flags & SHF_ALLOC) && s->data && s->size)
			d->starts[si] = link_scan_code(obj, si);
	}
}

void diff_obj_free(struct diff_obj *d)
{
	for (size_t si = 0; d->starts && si < d->nsections; si++)
		free(d->starts[si]);
	free(d->starts);
	free(d->byname);
	d->starts = NULL;
	d->byname = NULL;
}

static const struct rw_symbol *twin(const struct diff_obj *d, const struct rw_symbol *f)
{
	return find_by_name(d, f, STT_FUNC);
}

/* The relocations of section si that fall in [lo, hi), in offset order. */
static size_t relocs_in(const struct rw_section *sec, uint64_t lo, uint64_t hi,
			const struct rw_rela ***out)
{
	size_t n = 0;
	*out = rw_calloc(sec->nrelas, sizeof **out);
	for (size_t i = 0; i < sec->nrelas; i++)
		if (sec->relas[i].offset >= lo && sec->relas[i].offset < hi)
			(*out)[n++] = &sec->relas[i];
	for (size_t i = 1; i < n; i++)	/* insertion sort: usually in order already */
		for (size_t j = i; j > 0 && (*out)[j - 1]->offset > (*out)[j]->offset; j--) {
			const struct rw_rela *t = (*out)[j];
			(*out)[j] = (*out)[j - 1];
			(*out)[j - 1] = t;
		}
	return n;
}

static int is_readonly_data(const struct rw_section *t)
{
	return t && t->data && (t->flags & SHF_ALLOC) && !(t->flags & (SHF_WRITE | SHF_EXECINSTR));
}

/* Read-only data compares by contents: the symbol's bytes, or for an
 * unnamed literal the string at off. Constants have no state to keep: the
 * new code uses the new ones, and whoever uses them changed. */
static void content_key(const struct rw_section *t, const struct rw_symbol *in, int64_t off,
			char *key, size_t cap)
{
	key[0] = 0;
	if (!is_readonly_data(t) || off < 0 || (uint64_t)off >= t->size)
		return;
	if (in && in->size && in->value + in->size <= t->size) {
		uint64_t h = 14695981039346656037ull;
		for (uint64_t i = 0; i < in->size; i++)
			h = (h ^ t->data[in->value + i]) * 1099511628211ull;
		snprintf(key, cap, " =%016llx", (unsigned long long)h);
		return;
	}
	const char *str = (const char *)t->data + off;
	size_t len = strnlen(str, t->size - (uint64_t)off);
	snprintf(key, cap, " =\"%.*s\"", (int)(len < 900 ? len : 900), str);
}

/* Labels the assembler made (.LC0, .L.str): they name nothing the
 * program knows, only a place. */
static int is_local_label(const struct rw_symbol *s)
{
	return s->bind == STB_LOCAL && s->name[0] == '.' && s->name[1] == 'L';
}

/* What a relocation refers to, as text comparable across objects: the
 * symbol it falls in (by name, with the offset in it), and for constants
 * their contents. */
static void target_key(const struct diff_obj *d, uint16_t si, const struct rw_rela *r,
		       char *key, size_t cap)
{
	const struct rw_objfile *o = d->obj;
	const struct rw_symbol *s = &o->symbols[r->sym];
	struct reloc_kind k;
	char content[1024];
	int64_t off = r->addend, pc_tail = 0;
	arch_reloc_kind(r->type, &k);
	if (k.pcrel) {
		uint64_t end = link_insn_end(d->starts[si], r->offset, o->sections[si].size);
		pc_tail = end ? (int64_t)(end - r->offset) : 4;
		off += pc_tail;
	}
	if (s->type != STT_SECTION && !is_local_label(s)) {
		const struct rw_section *t = s->shndx < o->nsections ? &o->sections[s->shndx] : NULL;
		content_key(t, s, (int64_t)s->value + off, content, sizeof content);
		snprintf(key, cap, "%u %.*s%+lld tail %lld%s", r->type, (int)rw_name_len(s->name),
			 s->name, (long long)r->addend, (long long)pc_tail, content);
		return;
	}
	if (s->type != STT_SECTION)
		off += (int64_t)s->value;	/* a label: its place in its section */
	const struct rw_section *t = s->shndx < o->nsections ? &o->sections[s->shndx] : NULL;
	const struct rw_symbol *in = off >= 0 ? rw_object_symbol_at(o, s->shndx, (uint64_t)off) : NULL;
	if (in && is_local_label(in))
		in = NULL;
	content_key(t, in, off, content, sizeof content);
	if (in)
		snprintf(key, cap, "%u %.*s%+lld tail %lld%s", r->type, (int)rw_name_len(in->name),
			 in->name, (long long)(off - (int64_t)in->value), (long long)pc_tail, content);
	else if (content[0])
		snprintf(key, cap, "%u %s tail %lld%s", r->type, t ? t->name : "?", (long long)pc_tail,
			 content);
	else
		snprintf(key, cap, "%u %s%+lld", r->type, t ? t->name : "?", (long long)off);
}

static int same_relocs(const struct diff_obj *a, uint16_t sa, const struct rw_symbol *fa,
		       const struct diff_obj *b, uint16_t sb, const struct rw_symbol *fb,
		       const struct rw_rela **ra, const struct rw_rela **rb, size_t n)
{
	char ka[2048], kb[2048];
	for (size_t i = 0; i < n; i++) {
		if (ra[i]->offset - fa->value != rb[i]->offset - fb->value || ra[i]->type != rb[i]->type)
			return 0;
		target_key(a, sa, ra[i], ka, sizeof ka);
		target_key(b, sb, rb[i], kb, sizeof kb);
		if (strcmp(ka, kb))
			return 0;
	}
	return 1;
}

static void mask_fields(uint8_t *mask, uint64_t size, uint64_t start, const struct rw_rela **r,
			size_t n)
{
	for (size_t i = 0; i < n; i++)
		for (int j = 0; j < arch_field_size(r[i]->type); j++)
			if (r[i]->offset - start + (uint64_t)j < size)
				mask[r[i]->offset - start + (uint64_t)j] = 1;
}

/* Bytes a (function at fa) and b (at gb) outside every relocation field. */
static int same_bytes(const uint8_t *a, const uint8_t *b, uint64_t size, uint64_t fa, uint64_t gb,
		      const struct rw_rela **ra, size_t na, const struct rw_rela **rb, size_t nb)
{
	uint8_t *mask = rw_calloc(size, 1);
	mask_fields(mask, size, fa, ra, na);
	mask_fields(mask, size, gb, rb, nb);
	int same = 1;
	for (uint64_t i = 0; i < size && same; i++)
		same = mask[i] || a[i] == b[i];
	free(mask);
	return same;
}

int diff_function_changed(const struct diff_obj *base, const struct diff_obj *nw,
			  const struct rw_symbol *f)
{
	const struct rw_symbol *g = twin(base, f);
	if (!g || g->size != f->size || g->shndx >= base->obj->nsections ||
	    f->shndx >= nw->obj->nsections)
		return 1;
	const struct rw_section *sf = &nw->obj->sections[f->shndx], *sg = &base->obj->sections[g->shndx];
	if (!sf->data || !sg->data || f->value + f->size > sf->size || g->value + g->size > sg->size)
		return 1;
	const struct rw_rela **rf, **rg;
	size_t nf = relocs_in(sf, f->value, f->value + f->size, &rf);
	size_t ng = relocs_in(sg, g->value, g->value + g->size, &rg);
	int same = nf == ng &&
		   same_bytes(sf->data + f->value, sg->data + g->value, f->size, f->value, g->value,
			      rf, nf, rg, ng) &&
		   same_relocs(nw, f->shndx, f, base, g->shndx, g, rf, rg, nf);
	free(rf);
	free(rg);
	return !same;
}

/* The function of nw a call relocation r (in section si) goes to. */
static const struct rw_symbol *callee(const struct diff_obj *nw, uint16_t si, const struct rw_rela *r)
{
	const struct rw_objfile *o = nw->obj;
	const struct rw_symbol *s = &o->symbols[r->sym];
	struct reloc_kind k;
	arch_reloc_kind(r->type, &k);
	if (!k.pcrel || k.got)
		return NULL;
	if (s->type != STT_SECTION)
		return s->type == STT_FUNC ? s : NULL;
	uint64_t end = link_insn_end(nw->starts[si], r->offset, o->sections[si].size);
	int64_t off = r->addend + (int64_t)(end ? end - r->offset : 4);
	const struct rw_symbol *f = off >= 0 ? rw_object_symbol_at(o, s->shndx, (uint64_t)off) : NULL;
	return f && f->type == STT_FUNC && f->value == (uint64_t)off ? f : NULL;
}

/* Does f call a function marked in changed? */
static int calls_changed(const struct diff_obj *nw, const struct rw_symbol *f, const uint8_t *changed)
{
	const struct rw_objfile *o = nw->obj;
	const struct rw_section *sec = &o->sections[f->shndx];
	for (size_t i = 0; i < sec->nrelas; i++) {
		const struct rw_rela *r = &sec->relas[i];
		if (r->offset < f->value || r->offset >= f->value + f->size)
			continue;
		const struct rw_symbol *g = callee(nw, f->shndx, r);
		if (g && g != f && changed[g - o->symbols])
			return 1;
	}
	return 0;
}

/* gcc writes "GCC: (...) version" in .comment; clang and rustc their own. */
static int built_by_gcc(const struct rw_objfile *o)
{
	for (size_t i = 1; i < o->nsections; i++) {
		const struct rw_section *s = &o->sections[i];
		if (!strcmp(s->name, ".comment") && s->data &&
		    memmem(s->data, s->size, "GCC: ", 5))
			return 1;
	}
	return 0;
}

void diff_changed_set(const struct diff_obj *base, const struct diff_obj *nw, uint8_t *changed)
{
	const struct rw_objfile *o = nw->obj;
	for (size_t j = 1; j < o->nsymbols; j++) {
		const struct rw_symbol *f = &o->symbols[j];
		changed[j] = f->type == STT_FUNC && f->shndx != SHN_UNDEF && f->shndx < o->nsections &&
			     (!base || diff_function_changed(base, nw, f));
	}
	/* gcc's -fipa-ra lets a caller keep values in registers its callee of
	 * the same unit is known not to touch: a new callee may touch them. So
	 * the unit's callers of a changed function change with it. (LLVM does
	 * this only when asked, -enable-ipra: clang and rustc objects need not.) */
	for (int more = built_by_gcc(o); more;) {
		more = 0;
		for (size_t j = 1; j < o->nsymbols; j++) {
			const struct rw_symbol *f = &o->symbols[j];
			if (changed[j] || f->type != STT_FUNC || f->shndx == SHN_UNDEF ||
			    f->shndx >= o->nsections || !calls_changed(nw, f, changed))
				continue;
			changed[j] = more = 1;
		}
	}
}

static const struct rw_symbol *data_twin(const struct diff_obj *b, const struct rw_symbol *d)
{
	const struct rw_symbol *s = find_by_name(b, d, STT_OBJECT);
	return s && s->shndx < b->obj->nsections ? s : NULL;
}

/* Byte i of a data symbol's initial value (NOBITS: zero). */
static int init_byte(const struct rw_objfile *o, const struct rw_symbol *s, uint64_t i)
{
	const struct rw_section *sec = &o->sections[s->shndx];
	if (!sec->data || s->value + i >= sec->size)
		return 0;
	return sec->data[s->value + i];
}

size_t diff_changed_inits(const struct diff_obj *base, const struct diff_obj *nw,
			  const char **names, size_t cap)
{
	const struct rw_objfile *o = nw->obj, *b = base->obj;
	size_t n = 0;
	for (size_t j = 1; j < o->nsymbols && n < cap; j++) {
		const struct rw_symbol *d = &o->symbols[j], *t;
		if (d->type != STT_OBJECT || d->shndx == SHN_UNDEF || d->shndx >= o->nsections ||
		    !(o->sections[d->shndx].flags & SHF_WRITE) || !(t = data_twin(base, d)) ||
		    !(b->sections[t->shndx].flags & SHF_WRITE) || t->size != d->size)
			continue;
		/* Pointers (relocated fields) are not compared: their bytes are
		 * addends, and what they point to may only have moved. */
		const struct rw_section *sd = &o->sections[d->shndx];
		int differ = 0;
		for (uint64_t i = 0; i < d->size && !differ; i++) {
			int masked = 0;
			for (size_t r = 0; r < sd->nrelas && !masked; r++)
				masked = sd->relas[r].offset <= d->value + i &&
					 d->value + i < sd->relas[r].offset +
						(uint64_t)arch_field_size(sd->relas[r].type);
			differ = !masked && init_byte(o, d, i) != init_byte(b, t, i);
		}
		if (differ)
			names[n++] = d->name;
	}
	return n;
}
