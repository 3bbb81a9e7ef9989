/* The diff of one patch: every new object against its baseline, made once
 * before anything is linked. The session asks how much changed (nothing:
 * no patch to make) and which initial values changed (to say so); the
 * linker asks, per symbol, whether a function or constant changed (linker.h):
 * only those get entry jumps and new copies. */
#include <elf.h>
#include <stdlib.h>
#include <string.h>
#include "arch/arch.h"
#include "diff.h"
#include "util.h"

/* Functions, and global constants (which code of other files may read:
 * the link refuses that, naming it): what a patch is counted in. */
static int counts(const struct elf_object *o, const struct elf_symbol *f)
{
	return (f->type == STT_FUNC || (f->type == STT_OBJECT && f->bind != STB_LOCAL)) &&
	       f->shndx && f->shndx < o->nsections;
}

static const struct elf_section *section_named(const struct elf_object *o, const char *name)
{
	for (size_t i = 1; i < o->nsections; i++)
		if (!strcmp(o->sections[i].name, name))
			return &o->sections[i];
	return NULL;
}

/* The headers of the units of a .debug_info, in order; n is their count. */
static uint64_t *unit_headers(const struct elf_section *info, size_t *n)
{
	uint64_t *v = NULL;
	size_t cap = 0;
	*n = 0;
	for (uint64_t off = 0; off + 4 <= info->size;) {
		uint32_t len32;
		uint64_t len, hdr = 4;
		memcpy(&len32, info->data + off, 4);
		len = len32;
		if (len32 == 0xffffffff) {	/* 64-bit DWARF */
			if (off + 12 > info->size)
				break;
			memcpy(&len, info->data + off + 4, 8);
			hdr = 12;
		}
		if (len > info->size - off - hdr)
			break;
		v = rw_grow(v, &cap, *n, sizeof *v);
		v[(*n)++] = off;
		off += hdr + len;
	}
	return v;
}

/* The debug units of nw that describe a changed symbol: those with a
 * relocation (a subprogram's address, a variable's) into a section that
 * holds one. Code that did not change cannot have changed how it lays
 * out a type, so the other units need no check: in a Rust crate, one
 * unit per codegen unit, that is most of them. With DWARF 5's address
 * table (.debug_addr) the addresses are not in .debug_info: all units. */
static void touched_units(struct diff_entry *e, const struct elf_object *nw)
{
	const struct elf_section *info = section_named(nw, ".debug_info");
	e->all_units = 1;
	if (!info || !info->data || !info->nrelas || section_named(nw, ".debug_addr"))
		return;
	uint8_t *sec = rw_calloc(nw->nsections, 1);
	for (size_t k = 1; k < nw->nsymbols; k++)
		if (e->changed[k] && nw->symbols[k].shndx < nw->nsections)
			sec[nw->symbols[k].shndx] = 1;
	size_t nhdr;
	uint64_t *hdr = unit_headers(info, &nhdr);
	uint8_t *hit = rw_calloc(nhdr ? nhdr : 1, 1);
	for (size_t i = 0; i < info->nrelas; i++) {
		const struct elf_rela *r = &info->relas[i];
		if (r->sym >= nw->nsymbols || nw->symbols[r->sym].shndx >= nw->nsections ||
		    !sec[nw->symbols[r->sym].shndx])
			continue;
		size_t lo = 0, hi = nhdr;	/* the last unit starting at or before it */
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;
			if (hdr[mid] <= r->offset)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo)
			hit[lo - 1] = 1;
	}
	e->units = rw_calloc(nhdr ? nhdr : 1, sizeof *e->units);
	for (size_t i = 0; i < nhdr; i++)
		if (hit[i])
			e->units[e->nunits++] = hdr[i];
	e->all_units = 0;
	free(hit);
	free(hdr);
	free(sec);
}

static int same_file(const struct elf_object *a, const struct elf_object *b)
{
	return a->mapsize == b->mapsize && !memcmp(a->map, b->map, a->mapsize);
}

/* Only then can a function have lost its name to a new one. */
static int has_new_function(const struct diff_entry *e, const struct elf_object *nw)
{
	for (size_t k = 1; k < nw->nsymbols; k++)
		if (e->changed[k] == DIFF_NEW && nw->symbols[k].type == STT_FUNC)
			return 1;
	return 0;
}

static void diff_one(struct diff_entry *e)
{
	struct elf_object opened, *nw = rw_calloc(1, sizeof *nw);
	struct diff_obj dn, db;
	/* The base as a session keeps it from the patch before, else read. */
	struct elf_object *kept = e->base_obj, *base = kept ? kept : &opened;
	int have_base = kept || (e->base && elf_object_open(&opened, e->base) == 0);
	if (elf_object_open(nw, e->path) < 0) {
		free(nw);
		/* Unreadable: counted changed, so the link says why. */
		e->nchanged = 1;
		e->all_units = 1;
		if (have_base)
			if (!kept)
			elf_object_close(base);
		return;
	}
	e->obj = nw;	/* kept open for the type checks */
	arch_select(nw->machine);	/* the reader took only machines rewire patches */
	e->nsymbols = nw->nsymbols;
	e->changed = rw_calloc(nw->nsymbols ? nw->nsymbols : 1, 1);
	if (have_base && same_file(nw, base)) {
		/* Made again the same (a crate replayed for another's change):
		 * nothing changed, no unit to check. */
		if (!kept)
			elf_object_close(base);
		return;
	}
	diff_obj_init(&dn, nw);
	if (have_base)
		diff_obj_init(&db, base);
	diff_changed_set(have_base ? &db : NULL, &dn, e->changed);
	for (size_t k = 1; k < nw->nsymbols; k++)
		e->nchanged += counts(nw, &nw->symbols[k]) && e->changed[k];
	if (have_base)
		touched_units(e, nw);
	else
		e->all_units = 1;
	if (have_base) {
		const char *names[DIFF_MAX_INITS];
		e->ninits = diff_changed_inits(&db, &dn, names, DIFF_MAX_INITS);
		for (size_t k = 0; k < e->ninits; k++)
			e->inits[k] = rw_strdup(names[k]);
		e->has_base = 1;
		if (has_new_function(e, nw)) {
			e->nremoved = diff_removed_functions(&db, &dn, names, DIFF_MAX_INITS);
			for (size_t k = 0; k < e->nremoved; k++)
				e->removed[k] = rw_strdup(names[k]);
		}
		diff_obj_free(&db);
		if (!kept)
			elf_object_close(base);
	}
	diff_obj_free(&dn);
}

size_t diff_set_make(struct diff_set *d, char *const *paths, const char *const *bases,
		     struct elf_object *const *base_objs, size_t n)
{
	size_t total = 0;
	d->n = n;
	d->v = rw_calloc(n ? n : 1, sizeof *d->v);
	for (size_t i = 0; i < n; i++) {
		d->v[i].path = paths[i];
		d->v[i].base = bases[i];
		d->v[i].base_obj = base_objs ? base_objs[i] : NULL;
		diff_one(&d->v[i]);
		total += d->v[i].nchanged;
	}
	return total;
}

int diff_set_changed(const struct diff_set *d, size_t oi, const struct elf_object *o,
		     const struct elf_symbol *s)
{
	if (!d || oi >= d->n || strcmp(d->v[oi].path, o->path) || !d->v[oi].changed)
		return 1;
	size_t k = (size_t)(s - o->symbols);
	return k < d->v[oi].nsymbols ? d->v[oi].changed[k] : 1;
}

const struct elf_object *diff_set_object(const struct diff_set *d, size_t oi, const char *path)
{
	return d && oi < d->n && d->v[oi].obj && !strcmp(d->v[oi].path, path) ? d->v[oi].obj : NULL;
}

struct elf_object *diff_set_take(struct diff_set *d, size_t oi)
{
	struct elf_object *o = oi < d->n ? d->v[oi].obj : NULL;
	if (o)
		d->v[oi].obj = NULL;
	return o;
}

void diff_set_free(struct diff_set *d)
{
	for (size_t i = 0; i < d->n; i++) {
		free(d->v[i].changed);
		free(d->v[i].units);
		if (d->v[i].obj)
			elf_object_close(d->v[i].obj);
		free(d->v[i].obj);
		for (size_t k = 0; k < d->v[i].ninits; k++)
			free(d->v[i].inits[k]);
		for (size_t k = 0; k < d->v[i].nremoved; k++)
			free(d->v[i].removed[k]);
	}
	free(d->v);
	memset(d, 0, sizeof *d);
}
