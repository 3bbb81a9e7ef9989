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
#include "arch/arch.h"
#include "util.h"

static uint32_t name_hash(const char *name)
{
	return rw_hash_n(name, rw_name_len(name));
}

/* Twins are looked up by name for every function and datum: index once. */
static void index_names(struct diff_obj *d)
{
	const struct elf_object *o = d->obj;
	rw_index_init(&d->byname, o->nsymbols);
	for (size_t j = 1; j < o->nsymbols; j++) {
		const struct elf_symbol *s = &o->symbols[j];
		if (!s->name[0] || s->shndx == SHN_UNDEF || (s->type != STT_FUNC && s->type != STT_OBJECT))
			continue;
		rw_index_add(&d->byname, name_hash(s->name), (uint32_t)j);
	}
}

/* Names equal up to a .llvm.N suffix; most are equal outright. */
static int same_name(const char *a, const char *b)
{
	return a == b || !strcmp(a, b) || rw_name_eq(a, b);
}

/* The first defined symbol of d of type type, bind class and name of s. */
static const struct elf_symbol *find_by_name(const struct diff_obj *d, const struct elf_symbol *s,
					    int type)
{
	const struct elf_object *o = d->obj;
	const struct elf_symbol *best = NULL;
	size_t at;
	for (uint32_t i = rw_index_first(&d->byname, name_hash(s->name), &at); i != RW_INDEX_END;
	     i = rw_index_next(&d->byname, &at)) {
		const struct elf_symbol *c = &o->symbols[i];
		if (c->type == type && (c->bind == STB_LOCAL) == (s->bind == STB_LOCAL) &&
		    same_name(c->name, s->name) && (!best || c < best))
			best = c;
	}
	return best;
}

static const struct elf_symbol *twin(const struct diff_obj *d, const struct elf_symbol *f)
{
	return find_by_name(d, f, STT_FUNC);
}

/* --- relocations in offset order ----------------------------------------- */

static const struct elf_object *sort_obj;	/* for qsort: the driver is one thread */
static uint16_t sort_sec;

static int cmp_rela(const void *a, const void *b)
{
	const struct elf_rela *r = sort_obj->sections[sort_sec].relas;
	uint64_t x = r[*(const uint32_t *)a].offset, y = r[*(const uint32_t *)b].offset;
	return x < y ? -1 : x > y ? 1 : *(const uint32_t *)a < *(const uint32_t *)b ? -1 : 1;
}

/* Section si's relocations by offset: functions and constants look up
 * theirs by range. (The scan appended synthetic ones out of order.) */
static void sort_section(const struct diff_obj *d, uint16_t si)
{
	const struct elf_object *o = d->obj;
	size_t n = o->sections[si].nrelas;
	if (!n)
		return;
	d->rsorted[si] = rw_malloc(n * sizeof **d->rsorted);
	for (size_t i = 0; i < n; i++)
		d->rsorted[si][i] = (uint32_t)i;
	sort_obj = o, sort_sec = si;
	qsort(d->rsorted[si], n, sizeof **d->rsorted, cmp_rela);
	d->nrsorted[si] = n;
}

/* Section si made ready to compare, when first needed: its code decoded
 * (the scan adds relocations the assembler did not leave), then its
 * relocations sorted. */
static void prepare(const struct diff_obj *d, uint16_t si)
{
	if (si >= d->nsections || d->prepared[si])
		return;
	d->prepared[si] = 1;
	const struct elf_section *s = &d->obj->sections[si];
	if ((s->flags & SHF_EXECINSTR) && (s->flags & SHF_ALLOC) && s->data && s->size)
		d->starts[si] = arch_scan_code(d->obj, si);
	sort_section(d, si);
}

/* The relocations of section si that fall in [lo, hi), in offset order:
 * *first points at their indexes. */
static size_t relocs_in(const struct diff_obj *d, uint16_t si, uint64_t lo, uint64_t hi,
			const uint32_t **first)
{
	prepare(d, si);
	const struct elf_rela *r = d->obj->sections[si].relas;
	const uint32_t *idx = si < d->nsections ? d->rsorted[si] : NULL;
	size_t n = si < d->nsections ? d->nrsorted[si] : 0, a = 0, b = n;
	while (a < b) {
		size_t mid = a + (b - a) / 2;
		if (r[idx[mid]].offset < lo)
			a = mid + 1;
		else
			b = mid;
	}
	size_t end = a;
	while (end < n && r[idx[end]].offset < hi)
		end++;
	*first = idx ? idx + a : NULL;
	return end - a;
}

/* Labels the assembler made (.LC0, .L.str): they name nothing the
 * program knows, only a place. */
static int is_local_label(const struct elf_symbol *s)
{
	return s->bind == STB_LOCAL && s->name[0] == '.' && s->name[1] == 'L';
}

/* Bytes from a PC-relative field to the end of its instruction: the
 * addend is the offset meant minus these. In data there is no
 * instruction: the addend is the offset. */
static int64_t pc_tail(const struct diff_obj *d, uint16_t si, const struct elf_rela *rp)
{
	struct reloc_kind k;
	struct elf_rela rr = *rp, *r = &rr;	/* the scan may move the section's relocations */
	arch_reloc_kind(r->type, &k);
	prepare(d, si);
	if (!k.pcrel || si >= d->nsections || !d->starts[si])
		return 0;
	return arch_pc_tail(d->starts[si], r->offset, d->obj->sections[si].size, NULL);
}

/* The bits of [start, start + size) that relocation fields cover, into
 * mask (one byte of bits per byte): x86-64 fields are whole bytes, an
 * aarch64 field is the immediate of an instruction whose other bits (its
 * registers, its operation) are compared. */
static void mask_fields(uint8_t *mask, uint64_t size, uint64_t start, const struct elf_rela *r,
			const uint32_t *idx, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint8_t bits[8];
		arch_field_bits(r[idx[i]].type, bits);
		for (int j = 0; j < arch_field_size(r[idx[i]].type); j++)
			if (r[idx[i]].offset - start + (uint64_t)j < size)
				mask[r[idx[i]].offset - start + (uint64_t)j] |= bits[j];
	}
}

/* --- constants --------------------------------------------------------------
 *
 * Read-only data is compared by what it says, not where it sits. A piece
 * of a constant section (a named object; a string of a merged string
 * section; an entry of a merged constant pool such as .rodata.cst8, where
 * compilers put floating-point literals; else the bytes from a referenced
 * offset to the next offset anything refers to or names) hashes its bytes
 * outside relocation fields and, for each relocation in it, what that
 * refers to: the contents again when it is another constant. So a table of
 * pointers to strings changes when one of the strings does, and every
 * function that reaches the table changes with it. */

struct memo_entry {
	uint64_t key, hi, hash;
	uint8_t state;		/* 0 empty, 1 being hashed, 2 done */
};

struct const_memo {
	struct memo_entry *e;
	size_t cap, n;
};

static struct memo_entry *memo_slot(struct const_memo *m, uint16_t si, uint64_t lo, uint64_t hi)
{
	if (2 * (m->n + 1) > m->cap) {
		struct const_memo bigger = {rw_calloc(m->cap ? 2 * m->cap : 256, sizeof *m->e),
					    m->cap ? 2 * m->cap : 256, 0};
		for (size_t i = 0; i < m->cap; i++)
			if (m->e[i].state) {
				struct memo_entry *s = memo_slot(&bigger, 0, m->e[i].key, m->e[i].hi);
				*s = m->e[i];
			}
		free(m->e);
		*m = bigger;
	}
	uint64_t key = (uint64_t)si << 48 ^ lo;
	size_t i = (size_t)((key ^ hi * 0x9e3779b97f4a7c15ull) * 0xff51afd7ed558ccdull >> 20) & (m->cap - 1);
	while (m->e[i].state && (m->e[i].key != key || m->e[i].hi != hi))
		i = (i + 1) & (m->cap - 1);
	if (!m->e[i].state) {
		m->e[i].key = key, m->e[i].hi = hi;
		m->n++;
	}
	return &m->e[i];
}

static void add_bound(const struct diff_obj *d, uint16_t si, int64_t off, size_t *cap)
{
	if (off < 0 || (uint64_t)off >= d->obj->sections[si].size)
		return;
	d->bounds[si] = rw_grow(d->bounds[si], cap, d->nbounds[si], sizeof **d->bounds);
	d->bounds[si][d->nbounds[si]++] = (uint64_t)off;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Does relocation r point into a constant section by place (a section
 * symbol or a label), not by name? */
static int by_place_into_const(const struct elf_object *o, const struct elf_rela *r)
{
	const struct elf_symbol *s = &o->symbols[r->sym];
	return (s->type == STT_SECTION || is_local_label(s)) && s->shndx != SHN_UNDEF &&
	       s->shndx < o->nsections && elf_section_is_const(&o->sections[s->shndx]);
}

/* For every constant section, the relocations of loaded sections that
 * point into it by place: read once, when the first bounds are needed.
 * (Debug information points at named places, or at code.) */
static void read_incoming(struct diff_obj *d)
{
	const struct elf_object *o = d->obj;
	size_t *cap = rw_calloc(o->nsections, sizeof *cap);
	d->incoming_read = 1;
	for (uint16_t si = 1; si < o->nsections; si++) {
		if (!(o->sections[si].flags & SHF_ALLOC))
			continue;
		for (size_t i = 0; i < d->norig[si]; i++) {
			const struct elf_rela *r = &o->sections[si].relas[i];
			if (r->sym >= o->nsymbols || !by_place_into_const(o, r))
				continue;
			uint16_t ts = o->symbols[r->sym].shndx;
			d->incoming[ts] = rw_grow(d->incoming[ts], &cap[ts], d->nincoming[ts],
						  sizeof **d->incoming);
			d->incoming[ts][d->nincoming[ts]++] = (uint64_t)si << 32 | i;
		}
	}
	free(cap);
}

/* Where pieces of constant section ts may begin: every named place, and
 * every offset a relocation (section + addend, or a label) refers to. */
static void find_bounds(const struct diff_obj *d, uint16_t ts)
{
	const struct elf_object *o = d->obj;
	const uint32_t *syms;
	size_t cap = 0, nsyms = elf_object_section_symbols(o, ts, &syms);
	d->bounded[ts] = 1;
	if (!d->incoming_read)
		read_incoming((struct diff_obj *)d);	/* a cache of d's own */
	for (size_t j = 0; j < nsyms; j++)
		add_bound(d, ts, (int64_t)o->symbols[syms[j]].value, &cap);
	for (size_t k = 0; k < d->nincoming[ts]; k++) {
		uint16_t si = (uint16_t)(d->incoming[ts][k] >> 32);
		prepare(d, si);
		int64_t tail = pc_tail(d, si, &o->sections[si].relas[(uint32_t)d->incoming[ts][k]]);
		const struct elf_rela *r = &o->sections[si].relas[(uint32_t)d->incoming[ts][k]];
		const struct elf_symbol *s = &o->symbols[r->sym];
		add_bound(d, ts, r->addend + tail + (s->type == STT_SECTION ? 0 : (int64_t)s->value), &cap);
	}
	if (d->nbounds[ts])
		qsort(d->bounds[ts], d->nbounds[ts], sizeof **d->bounds, cmp_u64);
}

/* The first place a piece may begin after off, else the section's end. */
static uint64_t next_bound(const struct diff_obj *d, uint16_t si, uint64_t off)
{
	if (!d->bounded[si])
		find_bounds(d, si);
	const uint64_t *b = d->bounds[si];
	size_t lo = 0, hi = d->nbounds[si];
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (b[mid] <= off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < d->nbounds[si] ? b[lo] : d->obj->sections[si].size;
}

static int all_zero(const uint8_t *p, uint64_t n)
{
	for (uint64_t i = 0; i < n; i++)
		if (p[i])
			return 0;
	return 1;
}

/* The piece of constant section si that offset off belongs to: [*lo, *hi). */
static void piece_at(const struct diff_obj *d, uint16_t si, uint64_t off, uint64_t *lo, uint64_t *hi)
{
	const struct elf_section *t = &d->obj->sections[si];
	const struct elf_symbol *in = elf_object_symbol_at(d->obj, si, off);
	*lo = *hi = off;
	if (off >= t->size)
		return;
	if (in && !is_local_label(in) && in->size && in->value <= off && off - in->value < in->size &&
	    in->value + in->size <= t->size) {
		*lo = in->value, *hi = in->value + in->size;
	} else if ((t->flags & SHF_MERGE) && (t->flags & SHF_STRINGS)) {
		uint64_t es = t->entsize ? t->entsize : 1, i = off;
		while (i + es <= t->size && !all_zero(t->data + i, es))
			i += es;
		*hi = i + es <= t->size ? i + es : t->size;
	} else if ((t->flags & SHF_MERGE) && t->entsize) {
		*lo = off - off % t->entsize;
		*hi = *lo + t->entsize < t->size ? *lo + t->entsize : t->size;
	} else {
		*hi = next_bound(d, si, off);
	}
}

static void target_key(const struct diff_obj *d, uint16_t si, const struct elf_rela *r,
		       char *key, size_t cap, int depth);

/* Chains of constants deeper than this are taken as changed. */
#define MAX_CONST_DEPTH 48

/* The contents of the piece [lo, hi) of constant section si, as a hash
 * comparable across objects. */
static uint64_t piece_hash(const struct diff_obj *d, uint16_t si, uint64_t lo, uint64_t hi, int depth)
{
	static uint64_t unknown;
	if (depth > MAX_CONST_DEPTH)
		return ++unknown * 0x9e3779b97f4a7c15ull;	/* equal to nothing */
	struct memo_entry *m = memo_slot(d->memo, si, lo, hi);
	if (m->state == 2)
		return m->hash;
	if (m->state == 1)
		return 0x5bd1e9955bd1e995ull;	/* a cycle: the bytes on it count once */
	m->state = 1;
	const struct elf_section *t = &d->obj->sections[si];
	const uint32_t *idx;
	size_t n = relocs_in(d, si, lo, hi, &idx);
	uint8_t *mask = rw_calloc(hi - lo + 1, 1);
	uint64_t h = rw_hash64(RW_HASH64_BASIS, &(uint64_t){hi - lo}, 8);
	mask_fields(mask, hi - lo, lo, t->relas, idx, n);
	for (uint64_t i = lo; i < hi; i++)
		if (mask[i - lo] != 0xff)
			h = rw_hash64(h, &(uint8_t){t->data[i] & (uint8_t)~mask[i - lo]}, 1);
	free(mask);
	for (size_t i = 0; i < n; i++) {
		char k[1024];
		const struct elf_rela *r = &t->relas[idx[i]];
		target_key(d, si, r, k, sizeof k, depth + 1);
		h = rw_hash64(h, &(uint64_t){r->offset - lo}, 8);
		h = rw_hash64(h, k, strlen(k) + 1);
	}
	/* memo_slot may have grown the table meanwhile: look again */
	m = memo_slot(d->memo, si, lo, hi);
	m->hash = h;
	m->state = 2;
	return h;
}

/* --- an object, read once ------------------------------------------------- */

void diff_obj_init(struct diff_obj *d, struct elf_object *obj)
{
	size_t n = obj->nsections;
	memset(d, 0, sizeof *d);
	d->obj = obj;
	d->nsections = n;
	index_names(d);
	d->prepared = rw_calloc(n, 1);
	d->starts = rw_calloc(n, sizeof *d->starts);
	d->norig = rw_calloc(n, sizeof *d->norig);
	for (size_t si = 0; si < n; si++)
		d->norig[si] = obj->sections[si].nrelas_read;
	d->rsorted = rw_calloc(n, sizeof *d->rsorted);
	d->nrsorted = rw_calloc(n, sizeof *d->nrsorted);
	d->bounded = rw_calloc(n, 1);
	d->bounds = rw_calloc(n, sizeof *d->bounds);
	d->nbounds = rw_calloc(n, sizeof *d->nbounds);
	d->incoming = rw_calloc(n, sizeof *d->incoming);
	d->nincoming = rw_calloc(n, sizeof *d->nincoming);
	d->same = rw_calloc(n, 1);
	d->twins = rw_calloc(n, sizeof *d->twins);
	d->memo = rw_calloc(1, sizeof *d->memo);
}

void diff_obj_free(struct diff_obj *d)
{
	for (size_t si = 0; d->starts && si < d->nsections; si++) {
		free(d->starts[si]);
		free(d->rsorted[si]);
		free(d->bounds[si]);
		free(d->incoming[si]);
	}
	if (d->memo)
		free(d->memo->e);
	free(d->memo);
	free(d->prepared);
	free(d->norig);
	free(d->rsorted);
	free(d->nrsorted);
	free(d->bounded);
	free(d->bounds);
	free(d->nbounds);
	free(d->incoming);
	free(d->nincoming);
	free(d->same);
	free(d->twins);
	free(d->starts);
	rw_index_free(&d->byname);
	memset(d, 0, sizeof *d);
}

/* --- sections equal as a whole ---------------------------------------------
 *
 * Most sections of a new object are what they were: the same bytes, the
 * same relocations in the same order, to the same names, or to places in
 * sections that are themselves the same. Such a section is taken whole,
 * without decoding its code or hashing its pieces; only the others are
 * compared function by function: in a Rust or -ffunction-sections
 * object, a section per function and per constant, that is most of them. */

enum { SAME_UNKNOWN, SAME_BUSY, SAME_YES, SAME_NO };

static int section_same(const struct diff_obj *base, const struct diff_obj *nw, uint16_t si,
			uint16_t ti);

/* The one named symbol of a section, when it covers all of it. */
static const struct elf_symbol *sole_symbol(const struct elf_object *o, uint16_t si)
{
	const uint32_t *syms;
	if (elf_object_section_symbols(o, si, &syms) != 1)
		return NULL;
	const struct elf_symbol *s = &o->symbols[syms[0]];
	return s->value == 0 && s->size == o->sections[si].size ? s : NULL;
}

/* Relocation x of nw's section si and y of its twin go to the same place,
 * as target_key would find: a named symbol by name (and for a constant,
 * the same contents), a place in a section by what is there. */
static int same_target(const struct diff_obj *base, const struct diff_obj *nw, uint16_t si,
		       const struct elf_rela *x, const struct elf_rela *y)
{
	const struct elf_object *o = nw->obj, *b = base->obj;
	if (x->sym >= o->nsymbols || y->sym >= b->nsymbols)
		return 0;
	const struct elf_symbol *s = &o->symbols[x->sym], *t = &b->symbols[y->sym];
	int place = s->type == STT_SECTION || is_local_label(s);
	if (place != (t->type == STT_SECTION || is_local_label(t)) || s->type != t->type ||
	    (s->shndx == SHN_UNDEF) != (t->shndx == SHN_UNDEF))
		return 0;
	if (s->shndx == SHN_UNDEF || s->shndx >= o->nsections || t->shndx >= b->nsections)
		return !place && same_name(s->name, t->name);
	const struct elf_section *ts = &o->sections[s->shndx], *tt = &b->sections[t->shndx];
	int cons = elf_section_is_const(ts);
	if (cons != elf_section_is_const(tt) || strcmp(ts->name, tt->name))
		return 0;
	if (!place && (!same_name(s->name, t->name) ||
		       (cons && (s->value != t->value || s->size != t->size))))
		return 0;
	if (place && s->value != t->value)
		return 0;
	if (cons)
		return section_same(base, nw, s->shndx, t->shndx);
	if (!place)
		return 1;
	/* A place in code or data: the symbol there. With one symbol covering
	 * each section, and the same name, every offset the relocation may
	 * mean (the bytes to the end of its instruction are not known
	 * without decoding) falls in it on both sides. */
	const struct elf_symbol *a = sole_symbol(o, s->shndx), *c = sole_symbol(b, t->shndx);
	if (!a || !c || !same_name(a->name, c->name))
		return 0;
	struct reloc_kind k;
	arch_reloc_kind(x->type, &k);
	int code = (o->sections[si].flags & SHF_EXECINSTR) != 0;
	int64_t lo = x->addend + (int64_t)s->value, hi = lo;
	if (k.pcrel && code && rw_arch->pc_at_end)
		lo += arch_field_size(x->type), hi += 15;
	uint64_t size = ts->size < tt->size ? ts->size : tt->size;
	return lo >= 0 && hi < (int64_t)size;
}

/* Is section si of nw equal as a whole to section ti of base? Sections
 * pair through what refers to them (twin functions, relocations that
 * correspond), each with one other only. */
static int section_same(const struct diff_obj *base, const struct diff_obj *nw, uint16_t si,
			uint16_t ti)
{
	/* Constants reached through constants, deeper than the pieces' own
	 * limit: the piece by piece comparison decides, on a bounded stack. */
	static int depth;
	if (si >= nw->nsections || !ti || ti >= base->nsections)
		return 0;
	if (nw->twins[si] && nw->twins[si] != ti)
		return 0;
	if (nw->same[si] != SAME_UNKNOWN)
		return nw->same[si] != SAME_NO;	/* busy: on a cycle, the rest decides */
	if (depth > MAX_CONST_DEPTH)
		return 0;
	nw->twins[si] = ti;
	const struct elf_section *a = &nw->obj->sections[si], *b = &base->obj->sections[ti];
	int same = !strcmp(a->name, b->name) && a->type == b->type && a->flags == b->flags &&
		   a->size == b->size && a->entsize == b->entsize && !a->data == !b->data &&
		   (!a->data || !memcmp(a->data, b->data, a->size)) && nw->norig[si] == base->norig[ti];
	nw->same[si] = SAME_BUSY;
	depth++;
	for (size_t i = 0; same && i < nw->norig[si]; i++) {
		const struct elf_rela *x = &a->relas[i], *y = &b->relas[i];
		same = x->offset == y->offset && x->type == y->type && x->addend == y->addend &&
		       same_target(base, nw, si, x, y);
	}
	depth--;
	nw->same[si] = same ? SAME_YES : SAME_NO;
	return same;
}

/* Symbol f of nw is in a section equal to its twin's, at the same place
 * with the same size as g. */
static int in_same_section(const struct diff_obj *base, const struct diff_obj *nw,
			   const struct elf_symbol *f, const struct elf_symbol *g)
{
	return g->value == f->value && g->size == f->size &&
	       section_same(base, nw, f->shndx, g->shndx);
}

/* --- what a relocation refers to --------------------------------------------- */

/* What a relocation refers to, as text comparable across objects: the
 * symbol it falls in (by name, with the offset in it), and for constants
 * their contents (the piece's hash). An unnamed constant is known by its
 * contents alone: its section's name may carry a build's hash. */
/* The constants code reaches from the address relocation r forms (gcc's
 * section anchors, aarch64: one address, then loads at offsets from it):
 * the pieces of constant section ts that [off + lo, off + hi) covers
 * beyond the one at off, hashed; 0 when none. */
static uint64_t anchored_hash(const struct diff_obj *d, uint16_t si, const struct elf_rela *r,
			      uint16_t ts, int64_t off, int depth)
{
	const struct elf_section *code = &d->obj->sections[si];
	int64_t lo, hi;
	uint64_t h = 0, plo, phi;
	if (!(code->flags & SHF_EXECINSTR) || !code->data ||
	    !arch_anchor_span(code->data, code->size, r->offset, &lo, &hi))
		return 0;
	lo += off, hi += off;
	for (int64_t p = lo < 0 ? 0 : lo; p < hi && (uint64_t)p < d->obj->sections[ts].size;) {
		piece_at(d, ts, (uint64_t)p, &plo, &phi);
		h = rw_hash64(h ? h : RW_HASH64_BASIS, &(uint64_t){(uint64_t)(p - off)}, 8);
		h ^= piece_hash(d, ts, plo, phi, depth);
		p = phi > (uint64_t)p ? (int64_t)phi : p + 1;
	}
	return h;
}

static void target_key(const struct diff_obj *d, uint16_t si, const struct elf_rela *r,
		       char *key, size_t cap, int depth)
{
	const struct elf_object *o = d->obj;
	const struct elf_symbol *s = &o->symbols[r->sym];
	uint16_t ts = s->shndx;
	const struct elf_section *t = ts != SHN_UNDEF && ts < o->nsections ? &o->sections[ts] : NULL;
	int64_t tail = pc_tail(d, si, r), off = r->addend + tail;
	uint64_t lo, hi, h = 0;
	if (s->type != STT_SECTION && !is_local_label(s)) {
		if (elf_section_is_const(t)) {
			piece_at(d, ts, s->value, &lo, &hi);
			h = piece_hash(d, ts, lo, hi, depth) ^
			    anchored_hash(d, si, r, ts, (int64_t)s->value + r->addend, depth);
		}
		snprintf(key, cap, "%u %.*s%+lld tail %lld =%016llx", r->type, (int)rw_name_len(s->name),
			 s->name, (long long)r->addend, (long long)tail, (unsigned long long)h);
		return;
	}
	if (s->type != STT_SECTION)
		off += (int64_t)s->value;	/* a label: its place in its section */
	const struct elf_symbol *in = t && off >= 0 ? elf_object_symbol_at(o, ts, (uint64_t)off) : NULL;
	if (in && is_local_label(in))
		in = NULL;
	if (elf_section_is_const(t) && off >= 0) {
		piece_at(d, ts, (uint64_t)off, &lo, &hi);
		h = piece_hash(d, ts, lo, hi, depth) ^ anchored_hash(d, si, r, ts, off, depth);
		if (in && in->value == lo)
			snprintf(key, cap, "%u %.*s%+lld tail %lld =%016llx", r->type,
				 (int)rw_name_len(in->name), in->name, (long long)(off - (int64_t)lo),
				 (long long)tail, (unsigned long long)h);
		else
			snprintf(key, cap, "%u const%+lld tail %lld =%016llx", r->type,
				 (long long)(off - (int64_t)lo), (long long)tail, (unsigned long long)h);
	} else if (in) {
		snprintf(key, cap, "%u %.*s%+lld tail %lld", r->type, (int)rw_name_len(in->name),
			 in->name, (long long)(off - (int64_t)in->value), (long long)tail);
	} else {
		snprintf(key, cap, "%u %s%+lld", r->type, t ? t->name : "?", (long long)off);
	}
}

static int same_relocs(const struct diff_obj *a, uint16_t sa, const struct elf_symbol *fa,
		       const struct diff_obj *b, uint16_t sb, const struct elf_symbol *fb,
		       const uint32_t *ia, const uint32_t *ib, size_t n)
{
	char ka[2048], kb[2048];
	const struct elf_rela *ra = a->obj->sections[sa].relas, *rb = b->obj->sections[sb].relas;
	for (size_t i = 0; i < n; i++) {
		const struct elf_rela *x = &ra[ia[i]], *y = &rb[ib[i]];
		if (x->offset - fa->value != y->offset - fb->value || x->type != y->type)
			return 0;
		target_key(a, sa, x, ka, sizeof ka, 0);
		target_key(b, sb, y, kb, sizeof kb, 0);
		if (strcmp(ka, kb))
			return 0;
	}
	return 1;
}


/* Bytes a (function at fa) and b (at gb) outside every relocation field. */
static int same_bytes(const struct elf_section *sa, const struct elf_section *sb, uint64_t size,
		      uint64_t fa, uint64_t gb, const uint32_t *ia, size_t na, const uint32_t *ib,
		      size_t nb)
{
	uint8_t *mask = rw_calloc(size + 1, 1);
	mask_fields(mask, size, fa, sa->relas, ia, na);
	mask_fields(mask, size, gb, sb->relas, ib, nb);
	int same = 1;
	for (uint64_t i = 0; i < size && same; i++)
		same = ((sa->data[fa + i] ^ sb->data[gb + i]) & ~mask[i]) == 0;
	free(mask);
	return same;
}

int diff_function_changed(const struct diff_obj *base, const struct diff_obj *nw,
			  const struct elf_symbol *f)
{
	const struct elf_symbol *g = twin(base, f);
	if (!g || g->size != f->size || g->shndx >= base->obj->nsections ||
	    f->shndx >= nw->obj->nsections)
		return 1;
	if (in_same_section(base, nw, f, g))
		return 0;
	const struct elf_section *sf = &nw->obj->sections[f->shndx], *sg = &base->obj->sections[g->shndx];
	if (!sf->data || !sg->data || f->value + f->size > sf->size || g->value + g->size > sg->size)
		return 1;
	const uint32_t *rf, *rg;
	size_t nf = relocs_in(nw, f->shndx, f->value, f->value + f->size, &rf);
	size_t ng = relocs_in(base, g->shndx, g->value, g->value + g->size, &rg);
	return !(nf == ng && same_bytes(sf, sg, f->size, f->value, g->value, rf, nf, rg, ng) &&
		 same_relocs(nw, f->shndx, f, base, g->shndx, g, rf, rg, nf));
}

/* Is the constant object f of nw other than its twin in base (or new)? */
static int const_changed(const struct diff_obj *base, const struct diff_obj *nw,
			 const struct elf_symbol *f)
{
	const struct elf_symbol *g = find_by_name(base, f, STT_OBJECT);
	uint64_t flo, fhi, glo, ghi;
	if (!g || g->shndx >= base->obj->nsections ||
	    !elf_section_is_const(&base->obj->sections[g->shndx]))
		return 1;
	if (in_same_section(base, nw, f, g))
		return 0;
	piece_at(nw, f->shndx, f->value, &flo, &fhi);
	piece_at(base, g->shndx, g->value, &glo, &ghi);
	return fhi - flo != ghi - glo ||
	       piece_hash(nw, f->shndx, flo, fhi, 0) != piece_hash(base, g->shndx, glo, ghi, 0);
}

/* The function of nw a call relocation r (in section si) goes to. */
static const struct elf_symbol *callee(const struct diff_obj *nw, uint16_t si, const struct elf_rela *r)
{
	const struct elf_object *o = nw->obj;
	const struct elf_symbol *s = &o->symbols[r->sym];
	struct reloc_kind k;
	arch_reloc_kind(r->type, &k);
	if (!k.pcrel || k.got)
		return NULL;
	if (s->type != STT_SECTION)
		return s->type == STT_FUNC ? s : NULL;
	int64_t off = r->addend + pc_tail(nw, si, r);
	const struct elf_symbol *f = off >= 0 ? elf_object_symbol_at(o, s->shndx, (uint64_t)off) : NULL;
	return f && f->type == STT_FUNC && f->value == (uint64_t)off ? f : NULL;
}

size_t diff_clone_base_len(const char *name)
{
	static const char *const marks[] = {".cold", ".isra.", ".constprop.", ".part.",
					    ".lto_priv.", ".localalias", ".clone."};
	size_t len = strlen(name);
	for (size_t i = 0; i < sizeof marks / sizeof *marks; i++) {
		const char *at = strstr(name, marks[i]);
		if (at && (size_t)(at - name) < len)
			len = (size_t)(at - name);
	}
	return len;
}

int diff_is_clone(const char *name)
{
	return name[diff_clone_base_len(name)] != 0;
}

/* Does f call a function marked in changed? */
static int calls_changed(const struct diff_obj *nw, const struct elf_symbol *f, const uint8_t *changed)
{
	const struct elf_object *o = nw->obj;
	const uint32_t *idx;
	size_t n = relocs_in(nw, f->shndx, f->value, f->value + f->size, &idx);
	for (size_t i = 0; i < n; i++) {
		const struct elf_rela *r = &o->sections[f->shndx].relas[idx[i]];
		const struct elf_symbol *g = callee(nw, f->shndx, r);
		if (g && g != f && changed[g - o->symbols])
			return 1;
	}
	return 0;
}

/* Does f call, jump into (foo.cold) or take the address of a changed
 * clone? */
static int calls_changed_clone(const struct diff_obj *nw, const struct elf_symbol *f,
			       const uint8_t *changed)
{
	const struct elf_object *o = nw->obj;
	const uint32_t *idx;
	size_t n = relocs_in(nw, f->shndx, f->value, f->value + f->size, &idx);
	for (size_t i = 0; i < n; i++) {
		const struct elf_rela *r = &o->sections[f->shndx].relas[idx[i]];
		const struct elf_symbol *s = &o->symbols[r->sym], *g = s;
		struct reloc_kind k;
		arch_reloc_kind(r->type, &k);
		if (!k.pcrel || k.got || s->shndx == SHN_UNDEF || s->shndx >= o->nsections)
			continue;
		if (s->type == STT_SECTION) {
			int64_t off = r->addend + pc_tail(nw, f->shndx, r);
			g = off >= 0 ? elf_object_symbol_at(o, s->shndx, (uint64_t)off) : NULL;
		}
		if (g && g != f && g->type == STT_FUNC && changed[g - o->symbols] &&
		    diff_is_clone(g->name))
			return 1;
	}
	return 0;
}

/* gcc writes "GCC: (...) version" in .comment; clang and rustc their own. */
int diff_producer_ipa_ra(const char *p, const char *end, int *flag)
{
	int level = 0;
	*flag = -1;	/* -f[no-]ipa-ra wins over any -O */
	for (const char *t = p; t < end && *t; t++) {
		if (*t != '-' || (t > p && t[-1] != ' '))
			continue;
		size_t n = 0;
		while (t + n < end && t[n] && t[n] != ' ')
			n++;
		if (t[1] == 'O')
			level = !(n == 2 || (n == 3 && strchr("01g", t[2])));
		else if (n == 8 && !strncmp(t, "-fipa-ra", 8))
			*flag = 1;
		else if ((n == 11 && !strncmp(t, "-fno-ipa-ra", 11)) ||
			 (n >= 15 && !strncmp(t, "-flive-patching", 15)))
			*flag = 0;
	}
	return *flag >= 0 ? *flag : level;
}

/* May o's code rely on -fipa-ra? Any gcc object, unless its producer
 * strings (DW_AT_producer) say -fno-ipa-ra or -flive-patching: below -O2
 * gcc does not use it, but a function's optimize attribute or pragma can
 * turn it on, and the producer string does not show those. */
static int built_with_ipa_ra(const struct elf_object *o)
{
	int gcc = 0, producers = 0, off = 1;
	/* A .comment that names no gcc (rustc, clang): the debug strings,
	 * megabytes in a crate, are not searched. Without one (-fno-ident)
	 * the producers tell. */
	const struct elf_section *comment = NULL;
	for (size_t i = 1; i < o->nsections && !comment; i++)
		if (!strcmp(o->sections[i].name, ".comment") && o->sections[i].data)
			comment = &o->sections[i];
	if (comment && !memmem(comment->data, comment->size, "GCC: ", 5))
		return 0;
	gcc = comment != NULL;
	for (size_t i = 1; i < o->nsections; i++) {
		const struct elf_section *s = &o->sections[i];
		uint8_t *owned;
		size_t size;
		if (strcmp(s->name, ".debug_str") && strcmp(s->name, ".debug_info"))
			continue;
		const char *d = (const char *)elf_section_bytes(s, &owned, &size), *end = d + size;
		for (const char *p = d; d && (p = memmem(p, (size_t)(end - p), "GNU ", 4)); p += 4) {
			const char *e = memchr(p, 0, (size_t)(end - p));
			int flag;
			if ((s->name[7] == 's' && p > d && p[-1]) || !e ||
			    !memmem(p, (size_t)(e - p), " -", 2))
				continue;	/* not a whole string of flags */
			gcc |= !strncmp(p, "GNU C", 5);
			producers++;
			diff_producer_ipa_ra(p, e, &flag);
			off &= flag == 0;
		}
		free(owned);
	}
	return gcc && !(producers && off);
}

/* Does the constant f hold the address of a place inside (not the entry
 * of) a function marked changed? A table of labels (GNU C's &&label for
 * computed goto, as in Lua's dispatch table) points into one version of
 * its function: the new version needs the new table. */
static int points_into_changed(const struct diff_obj *nw, const struct elf_symbol *f,
			       const uint8_t *changed)
{
	const struct elf_object *o = nw->obj;
	const uint32_t *idx;
	size_t n = relocs_in(nw, f->shndx, f->value, f->value + f->size, &idx);
	for (size_t i = 0; i < n; i++) {
		const struct elf_rela *r = &o->sections[f->shndx].relas[idx[i]];
		const struct elf_symbol *s = &o->symbols[r->sym];
		if (s->shndx == SHN_UNDEF || s->shndx >= o->nsections ||
		    !(o->sections[s->shndx].flags & SHF_EXECINSTR))
			continue;
		int64_t off = r->addend + (s->type == STT_SECTION ? 0 : (int64_t)s->value);
		const struct elf_symbol *g = off >= 0 ? elf_object_symbol_at(o, s->shndx, (uint64_t)off) : NULL;
		if (g && g->type == STT_FUNC && g->value != (uint64_t)off && changed[g - o->symbols])
			return 1;
	}
	return 0;
}

void diff_changed_set(const struct diff_obj *base, const struct diff_obj *nw, uint8_t *changed)
{
	const struct elf_object *o = nw->obj;
	for (size_t j = 1; j < o->nsymbols; j++) {
		const struct elf_symbol *f = &o->symbols[j];
		int defined = f->shndx != SHN_UNDEF && f->shndx < o->nsections;
		if (f->type == STT_FUNC && defined && base && !twin(base, f))
			changed[j] = DIFF_NEW;
		else if (f->type == STT_FUNC)
			changed[j] = defined && (!base || diff_function_changed(base, nw, f));
		else if (f->type == STT_OBJECT && defined && elf_section_is_const(&o->sections[f->shndx]))
			changed[j] = !base || const_changed(base, nw, f);
		else
			changed[j] = 0;
	}
	/* A changed clone is reached only through its callers (it gets no
	 * entry jump, diff_is_clone): they change with it, though their own
	 * bytes are the same, or the new clone is never called. */
	int clones = 0;	/* none changed (Rust, mostly): no caller to look for */
	for (size_t j = 1; j < o->nsymbols && !clones; j++)
		clones = changed[j] && o->symbols[j].type == STT_FUNC && diff_is_clone(o->symbols[j].name);
	for (int more = clones; more;) {
		more = 0;
		for (size_t j = 1; j < o->nsymbols; j++) {
			const struct elf_symbol *f = &o->symbols[j];
			if (changed[j] || f->type != STT_FUNC || f->shndx == SHN_UNDEF ||
			    f->shndx >= o->nsections || !calls_changed_clone(nw, f, changed))
				continue;
			changed[j] = DIFF_CHANGED;
			more = 1;
		}
	}
	/* gcc's -fipa-ra lets a caller keep values in registers its callee of
	 * the same unit is known not to touch: a new callee may touch them. So
	 * the unit's callers of a changed function change with it (unless the
	 * running or the new object was built with -fno-ipa-ra). LLVM does this
	 * only when asked, -enable-ipra: clang and rustc objects need not. */
	for (int more = built_with_ipa_ra(o) || (base && built_with_ipa_ra(base->obj)); more;) {
		more = 0;
		for (size_t j = 1; j < o->nsymbols; j++) {
			const struct elf_symbol *f = &o->symbols[j];
			if (changed[j] || f->type != STT_FUNC || f->shndx == SHN_UNDEF ||
			    f->shndx >= o->nsections || !calls_changed(nw, f, changed))
				continue;
			changed[j] = DIFF_IPA_RA;
			more = 1;
		}
	}
	for (size_t j = 1; j < o->nsymbols; j++) {
		const struct elf_symbol *f = &o->symbols[j];
		if (!changed[j] && f->type == STT_OBJECT && f->shndx != SHN_UNDEF &&
		    f->shndx < o->nsections && elf_section_is_const(&o->sections[f->shndx]) &&
		    points_into_changed(nw, f, changed))
			changed[j] = 1;
	}
}

static const struct elf_symbol *data_twin(const struct diff_obj *b, const struct elf_symbol *d)
{
	const struct elf_symbol *s = find_by_name(b, d, STT_OBJECT);
	return s && s->shndx < b->obj->nsections ? s : NULL;
}

/* Byte i of a data symbol's initial value (NOBITS: zero). */
static int init_byte(const struct elf_object *o, const struct elf_symbol *s, uint64_t i)
{
	const struct elf_section *sec = &o->sections[s->shndx];
	if (!sec->data || s->value + i >= sec->size)
		return 0;
	return sec->data[s->value + i];
}

/* Does the initial value of data d (of nw) differ from that of its twin t?
 * Bytes outside relocation fields compare as bytes; a pointer compares by
 * what it points to (a string that changed is a changed initial value). */
static int init_differs(const struct diff_obj *base, const struct diff_obj *nw,
			const struct elf_symbol *d, const struct elf_symbol *t)
{
	const uint32_t *id, *it;
	size_t nd = relocs_in(nw, d->shndx, d->value, d->value + d->size, &id);
	size_t nt = relocs_in(base, t->shndx, t->value, t->value + t->size, &it);
	if (nd != nt)
		return 1;
	uint8_t *mask = rw_calloc(d->size + 1, 1);
	mask_fields(mask, d->size, d->value, nw->obj->sections[d->shndx].relas, id, nd);
	mask_fields(mask, d->size, t->value, base->obj->sections[t->shndx].relas, it, nt);
	int differ = 0;
	for (uint64_t i = 0; i < d->size && !differ; i++)
		differ = ((init_byte(nw->obj, d, i) ^ init_byte(base->obj, t, i)) & ~mask[i]) != 0;
	free(mask);
	return differ || !same_relocs(nw, d->shndx, d, base, t->shndx, t, id, it, nd);
}

size_t diff_changed_inits(const struct diff_obj *base, const struct diff_obj *nw,
			  const char **names, size_t cap)
{
	const struct elf_object *o = nw->obj, *b = base->obj;
	size_t n = 0;
	for (size_t j = 1; j < o->nsymbols && n < cap; j++) {
		const struct elf_symbol *d = &o->symbols[j], *t;
		if (d->type != STT_OBJECT || d->shndx == SHN_UNDEF || d->shndx >= o->nsections ||
		    !(o->sections[d->shndx].flags & SHF_WRITE) ||
		    elf_section_is_const(&o->sections[d->shndx]) || !(t = data_twin(base, d)) ||
		    !(b->sections[t->shndx].flags & SHF_WRITE) || t->size != d->size)
			continue;
		if (init_differs(base, nw, d, t))
			names[n++] = d->name;
	}
	return n;
}

size_t diff_removed_functions(const struct diff_obj *base, const struct diff_obj *nw,
			      const char **names, size_t cap)
{
	const struct elf_object *b = base->obj;
	size_t n = 0;
	for (size_t j = 1; j < b->nsymbols && n < cap; j++) {
		const struct elf_symbol *f = &b->symbols[j];
		if (f->type != STT_FUNC || f->shndx == SHN_UNDEF || !f->name[0] ||
		    diff_is_clone(f->name) || twin(nw, f))
			continue;
		names[n++] = f->name;
	}
	return n;
}
