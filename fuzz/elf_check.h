/* What src/elf promises about a file it accepted (elf.h, read.h), checked
 * by the object, image and archive targets: every section's data lies
 * inside the file, every link is a section index, every name is a
 * terminated string in the file, every symbol's section index is valid,
 * no allocated section or symbol in a section wraps around, and for objects every relocation's symbol exists and
 * elf_object_symbol_at answers as documented. The ends of each range are
 * read, so that ASan reports a range leaving the input. */
#ifndef RW_FUZZ_ELF_CHECK_H
#define RW_FUZZ_ELF_CHECK_H
#include "fuzz.h"
#include "elf/elffile.h"
#include <elf.h>
#include <string.h>

static volatile uint8_t elf_sink;

static inline void elf_touch(const uint8_t *p, uint64_t n)
{
	if (n)
		elf_sink ^= p[0] ^ p[n - 1];
}

/* [p, p+n) inside the file. */
static inline int elf_in(const void *map, size_t mapsize, const void *p, uint64_t n)
{
	const uint8_t *m = map, *q = p;
	return q >= m && (size_t)(q - m) <= mapsize && n <= mapsize - (size_t)(q - m);
}

/* In the file, or the reader's own "" for what has no name. */
static inline void elf_check_name(const char *name, const void *map, size_t mapsize)
{
	FUZZ_CHECK(name);
	size_t n = strlen(name);
	FUZZ_CHECK(n == 0 || elf_in(map, mapsize, name, n + 1));
}

static inline void elf_check_sections(const struct elf_section *secs, size_t n,
			       const void *map, size_t mapsize)
{
	FUZZ_CHECK(secs && n >= 1 && n < SHN_LORESERVE);
	FUZZ_CHECK(secs[0].type == SHT_NULL && !secs[0].data && !secs[0].size);
	for (size_t i = 0; i < n; i++) {
		const struct elf_section *s = &secs[i];
		elf_check_name(s->name, map, mapsize);
		FUZZ_CHECK(s->align >= 1 && !(s->align & (s->align - 1)));
		if (s->type == SHT_NULL) {
			FUZZ_CHECK(!s->data && !s->size);
			continue;
		}
		FUZZ_CHECK(s->link < n);
		FUZZ_CHECK(!(s->flags & SHF_ALLOC) || s->addr + s->size >= s->addr);
		FUZZ_CHECK(!(s->flags & SHF_INFO_LINK) || s->info < n);
		if (s->type == SHT_NOBITS) {
			FUZZ_CHECK(!s->data);
			continue;
		}
		FUZZ_CHECK(s->data && elf_in(map, mapsize, s->data, s->size));
		elf_touch(s->data, s->size);
	}
}

static inline void elf_check_symbols(const struct elf_symbol *syms, size_t n, size_t nsections,
			      const void *map, size_t mapsize)
{
	FUZZ_CHECK(syms && n >= 1 && n < UINT32_MAX);
	for (size_t i = 0; i < n; i++) {
		const struct elf_symbol *s = &syms[i];
		elf_check_name(s->name, map, mapsize);
		if (s->bind == STB_LOCAL) {
			FUZZ_CHECK(s->file);
			elf_check_name(s->file, map, mapsize);
		} else {
			FUZZ_CHECK(!s->file);
		}
		FUZZ_CHECK(s->shndx < nsections || s->shndx == SHN_ABS || s->shndx == SHN_COMMON);
		if (s->shndx != SHN_UNDEF && s->shndx < nsections)
			FUZZ_CHECK(s->value + s->size >= s->value);
		FUZZ_CHECK(s->type < 16 && s->bind < 16 && s->visibility < 4);
	}
}

/* What elf_object_symbol_at may answer for (shndx, offset). */
static inline int obj_matches(const struct elf_symbol *s, uint16_t shndx, uint64_t offset)
{
	if (!s->name[0] || s->shndx != shndx || s->type == STT_SECTION || s->type == STT_FILE)
		return 0;
	return offset >= s->value && (offset == s->value || offset - s->value < s->size);
}

static inline int obj_is_candidate(const struct elf_symbol *s)
{
	switch (s->type) {
	case STT_NOTYPE: case STT_FUNC: case STT_OBJECT: case STT_TLS: case STT_GNU_IFUNC:
		return 1;
	}
	return 0;
}

/* The answer is a symbol that matches, and there is one whenever some
 * candidate matches (checked by brute force on small tables). */
static inline void obj_query(const struct elf_object *o, uint16_t shndx, uint64_t offset)
{
	const struct elf_symbol *s = elf_object_symbol_at(o, shndx, offset);
	if (s) {
		FUZZ_CHECK(s >= o->symbols && s < o->symbols + o->nsymbols);
		FUZZ_CHECK(obj_is_candidate(s) && obj_matches(s, shndx, offset));
		return;
	}
	if (o->nsymbols > 256 || shndx == SHN_UNDEF)
		return;
	for (size_t i = 0; i < o->nsymbols; i++) {
		const struct elf_symbol *c = &o->symbols[i];
		FUZZ_CHECK(!(obj_is_candidate(c) && obj_matches(c, shndx, offset)));
	}
}

static inline void obj_check(const struct elf_object *o)
{
	FUZZ_CHECK(o->path && o->map && !o->mapped);
	elf_check_sections(o->sections, o->nsections, o->map, o->mapsize);
	elf_check_symbols(o->symbols, o->nsymbols, o->nsections, o->map, o->mapsize);
	elf_check_name(o->file, o->map, o->mapsize);
	for (size_t i = 0; i < o->nsections; i++) {
		const struct elf_section *s = &o->sections[i];
		FUZZ_CHECK(s->group < o->nsections);
		FUZZ_CHECK(!s->nrelas || s->relas);
		for (size_t r = 0; r < s->nrelas; r++)
			FUZZ_CHECK(s->relas[r].sym < o->nsymbols);
	}
	FUZZ_CHECK(o->nbysec <= o->nsymbols);
	for (size_t i = 0; i < o->nbysec; i++)
		FUZZ_CHECK(o->bysec[i] < o->nsymbols);
}

static inline void obj_queries(const struct elf_object *o)
{
	size_t budget = 4096;	/* queries per input: keep each run short */
	for (size_t i = 0; i < o->nsymbols && budget; i++, budget--) {
		const struct elf_symbol *s = &o->symbols[i];
		if (s->shndx >= o->nsections)
			continue;
		obj_query(o, s->shndx, s->value);
		if (s->size)
			obj_query(o, s->shndx, s->value + s->size - 1);
		obj_query(o, s->shndx, s->value + s->size);
	}
	for (size_t i = 1; i < o->nsections; i++) {
		const struct elf_section *s = &o->sections[i];
		for (size_t r = 0; r < s->nrelas && budget; r++, budget--)
			obj_query(o, (uint16_t)i, s->relas[r].offset);
	}
}

#endif
