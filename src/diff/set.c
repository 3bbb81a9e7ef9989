/* The diff of one patch: every new object against its baseline, made once
 * before anything is linked. The session asks how much changed (nothing:
 * no patch to make) and which initial values changed (to say so); the
 * linker asks, per symbol, whether a function or constant changed (linker.h):
 * only those get entry jumps and new copies. */
#include <elf.h>
#include <stdlib.h>
#include <string.h>
#include "diff.h"
#include "util.h"

/* Functions, and global constants (which code of other files may read:
 * the link refuses that, naming it): what a patch is counted in. */
static int counts(const struct elf_object *o, const struct elf_symbol *f)
{
	return (f->type == STT_FUNC || (f->type == STT_OBJECT && f->bind != STB_LOCAL)) &&
	       f->shndx && f->shndx < o->nsections;
}

static void diff_one(struct diff_entry *e)
{
	struct elf_object nw, base;
	struct diff_obj dn, db;
	int have_base = e->base && elf_object_open(&base, e->base) == 0;
	if (elf_object_open(&nw, e->path) < 0) {
		/* Unreadable: counted changed, so the link says why. */
		e->nchanged = 1;
		if (have_base)
			elf_object_close(&base);
		return;
	}
	diff_obj_init(&dn, &nw);
	if (have_base)
		diff_obj_init(&db, &base);
	e->nsymbols = nw.nsymbols;
	e->changed = rw_calloc(nw.nsymbols ? nw.nsymbols : 1, 1);
	diff_changed_set(have_base ? &db : NULL, &dn, e->changed);
	for (size_t k = 1; k < nw.nsymbols; k++)
		e->nchanged += counts(&nw, &nw.symbols[k]) && e->changed[k];
	if (have_base) {
		const char *names[DIFF_MAX_INITS];
		e->ninits = diff_changed_inits(&db, &dn, names, DIFF_MAX_INITS);
		for (size_t k = 0; k < e->ninits; k++)
			e->inits[k] = rw_strdup(names[k]);
		diff_obj_free(&db);
		elf_object_close(&base);
	}
	diff_obj_free(&dn);
	elf_object_close(&nw);
}

size_t diff_set_make(struct diff_set *d, char *const *paths, const char *const *bases, size_t n)
{
	size_t total = 0;
	d->n = n;
	d->v = rw_calloc(n ? n : 1, sizeof *d->v);
	for (size_t i = 0; i < n; i++) {
		d->v[i].path = paths[i];
		d->v[i].base = bases[i];
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

void diff_set_free(struct diff_set *d)
{
	for (size_t i = 0; i < d->n; i++) {
		free(d->v[i].changed);
		for (size_t k = 0; k < d->v[i].ninits; k++)
			free(d->v[i].inits[k]);
	}
	free(d->v);
	memset(d, 0, sizeof *d);
}
