/* Relocatable objects: the compiled patch. Sections, their relocations and
 * COMDAT groups, and symbols with their translation unit. */
#include "elf/read.h"
#include "util.h"
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <zlib.h>

/* The one SHT_SYMTAB, or 0 when the object has none. */
static int find_symtab(const struct elf_file *e, size_t *idx)
{
	*idx = 0;
	for (size_t i = 1; i < e->nsections; i++) {
		if (e->sections[i].type != SHT_SYMTAB)
			continue;
		if (*idx)
			return rw_fail("%s: has two symbol tables (%s and %s)", e->path,
				       e->sections[*idx].name, e->sections[i].name);
		*idx = i;
	}
	return 0;
}

static int read_symbols(struct elf_object *obj, const struct elf_file *e, size_t symtab)
{
	if (!symtab)
		elf_file_no_symbols(&obj->symbols, &obj->nsymbols);
	else if (elf_file_symbols(e, symtab, &obj->symbols, &obj->nsymbols))
		return -1;
	obj->file = "";
	for (size_t i = 0; i < obj->nsymbols; i++) {
		if (obj->symbols[i].type == STT_FILE) {
			obj->file = obj->symbols[i].name;
			break;
		}
	}
	return 0;
}

/* Checks shared by relocation and group sections: both name the symbol
 * table through sh_link. */
static int check_symtab_link(const struct elf_object *obj, const struct elf_section *s,
			     size_t symtab)
{
	if (!symtab)
		return rw_fail("%s: section %s needs a symbol table, but the object has none",
			       obj->path, s->name);
	if (s->link != symtab)
		return rw_fail("%s: section %s links to section %u, not the symbol table %zu",
			       obj->path, s->name, s->link, symtab);
	return 0;
}

static int read_relas(struct elf_object *obj, size_t idx, size_t symtab)
{
	const struct elf_section *r = &obj->sections[idx];
	if (check_symtab_link(obj, r, symtab))
		return -1;
	if (r->entsize != sizeof(Elf64_Rela) || r->size % sizeof(Elf64_Rela))
		return rw_fail("%s: relocation section %s has entry size %llu and size %llu, expected multiples of %zu",
			       obj->path, r->name, (unsigned long long)r->entsize,
			       (unsigned long long)r->size, sizeof(Elf64_Rela));
	if (r->info == 0 || r->info >= obj->nsections || r->info == idx)
		return rw_fail("%s: relocation section %s applies to section %u, which is not valid",
			       obj->path, r->name, r->info);
	struct elf_section *target = &obj->sections[r->info];
	if (target->type == SHT_NOBITS || target->type == SHT_NULL)
		return rw_fail("%s: relocation section %s applies to %s, which has no contents",
			       obj->path, r->name, target->name);
	if (target->relas)
		return rw_fail("%s: section %s has two relocation sections", obj->path, target->name);
	size_t n = r->size / sizeof(Elf64_Rela);
	struct elf_rela *out = rw_malloc(n * sizeof *out);
	for (size_t i = 0; i < n; i++) {
		Elf64_Rela er;
		memcpy(&er, r->data + i * sizeof er, sizeof er);
		out[i].offset = er.r_offset;
		out[i].type = (uint32_t)ELF64_R_TYPE(er.r_info);
		out[i].sym = (uint32_t)ELF64_R_SYM(er.r_info);
		out[i].addend = er.r_addend;
		if (out[i].sym >= obj->nsymbols) {
			uint32_t sym = out[i].sym;
			free(out);
			return rw_fail("%s: relocation %zu in %s refers to symbol %u, but there are only %zu",
				       obj->path, i, r->name, sym, obj->nsymbols);
		}
	}
	target->relas = out;
	target->nrelas = target->nrelas_read = n;
	return 0;
}

/* A group's data is a flag word (GRP_COMDAT) and its member sections. */
static int read_group(struct elf_object *obj, size_t idx, size_t symtab)
{
	const struct elf_section *g = &obj->sections[idx];
	if (check_symtab_link(obj, g, symtab))
		return -1;
	if (g->size < 4 || g->size % 4)
		return rw_fail("%s: group section %s has size %llu, not a multiple of 4 of at least 4",
			       obj->path, g->name, (unsigned long long)g->size);
	if (g->info >= obj->nsymbols)
		return rw_fail("%s: group section %s has signature symbol %u, but there are only %zu",
			       obj->path, g->name, g->info, obj->nsymbols);
	for (uint64_t off = 4; off < g->size; off += 4) {
		uint32_t m;
		memcpy(&m, g->data + off, 4);
		if (m == 0 || m >= obj->nsections || m == idx)
			return rw_fail("%s: group section %s has member %u, which is not a valid section",
				       obj->path, g->name, m);
		if (obj->sections[m].group)
			return rw_fail("%s: section %s is in two groups (%s and %s)", obj->path,
				       obj->sections[m].name,
				       obj->sections[obj->sections[m].group].name, g->name);
		obj->sections[m].group = (uint32_t)idx;
	}
	return 0;
}

/* Relocations and groups, once the symbols they refer to are known. */
static int read_sections(struct elf_object *obj, size_t symtab)
{
	for (size_t i = 1; i < obj->nsections; i++) {
		const struct elf_section *s = &obj->sections[i];
		if (s->type == SHT_REL)
			return rw_fail("%s: section %s has SHT_REL relocations (no addend), which x86-64 objects do not use",
				       obj->path, s->name);
		if (s->type == SHT_RELA && read_relas(obj, i, symtab))
			return -1;
		if (s->type == SHT_GROUP && read_group(obj, i, symtab))
			return -1;
	}
	return 0;
}

/* Symbols elf_object_symbol_at can return. GNU_IFUNC counts as a function. */
static int is_candidate(const struct elf_object *obj, const struct elf_symbol *s)
{
	if (!s->name[0] || s->shndx == SHN_UNDEF || s->shndx >= obj->nsections)
		return 0;
	switch (s->type) {
	case STT_NOTYPE: case STT_FUNC: case STT_OBJECT: case STT_TLS: case STT_GNU_IFUNC:
		return 1;
	}
	return 0;
}

struct key {
	uint64_t value;
	uint32_t shndx, sym;
};

static int cmp_key(const void *a, const void *b)
{
	const struct key *x = a, *y = b;
	if (x->shndx != y->shndx)
		return x->shndx < y->shndx ? -1 : 1;
	if (x->value != y->value)
		return x->value < y->value ? -1 : 1;
	return x->sym < y->sym ? -1 : x->sym > y->sym;
}

/* Sort the candidates by (section, value) and record the running maximum
 * of value+size within each section: walking down from an offset, once
 * that maximum is at or below the offset no earlier symbol can cover it. */
static void index_symbols(struct elf_object *obj)
{
	struct key *keys = rw_malloc(obj->nsymbols * sizeof *keys);
	size_t n = 0;
	for (size_t i = 0; i < obj->nsymbols; i++) {
		const struct elf_symbol *s = &obj->symbols[i];
		if (is_candidate(obj, s))
			keys[n++] = (struct key){ s->value, s->shndx, (uint32_t)i };
	}
	qsort(keys, n, sizeof *keys, cmp_key);
	obj->bysec = rw_malloc(n * sizeof *obj->bysec);
	obj->bysec_end = rw_malloc(n * sizeof *obj->bysec_end);
	obj->nbysec = n;
	for (size_t i = 0; i < n; i++) {
		const struct elf_symbol *s = &obj->symbols[keys[i].sym];
		uint64_t end = s->value + s->size < s->value ? UINT64_MAX : s->value + s->size;
		if (i > 0 && keys[i - 1].shndx == keys[i].shndx && obj->bysec_end[i - 1] > end)
			end = obj->bysec_end[i - 1];
		obj->bysec[i] = keys[i].sym;
		obj->bysec_end[i] = end;
	}
	free(keys);
}
/* Is s an assembler label (.LANCHOR0, .L.str)? */
static int is_label(const struct elf_symbol *s)
{
	return s->bind == STB_LOCAL && (s->type == STT_NOTYPE || (s->type == STT_TLS && !s->size)) &&
	       s->name[0] == '.' && s->name[1] == 'L';
}

/* The named variable or function of section si holding offset off. */
static int32_t named_at(const struct elf_object *obj, uint16_t si, uint64_t off)
{
	const uint32_t *syms;
	size_t n = elf_object_section_symbols(obj, si, &syms);
	for (size_t i = 0; i < n; i++) {
		const struct elf_symbol *t = &obj->symbols[syms[i]];
		if (!is_label(t) && t->type != STT_NOTYPE && t->name[0] && t->value <= off &&
		    off < t->value + (t->size ? t->size : 1))
			return (int32_t)syms[i];
	}
	return -1;
}

/* A relocation against a label the assembler kept in the symbol table
 * (gcc's section anchors on aarch64: .LANCHOR0 + offset, where the
 * reference cannot be to the section, as for thread-locals) is one to
 * the variable at that offset: rewritten so, it binds like any other. */
static void labels_to_symbols(struct elf_object *obj)
{
	for (size_t i = 1; i < obj->nsections; i++) {
		struct elf_section *sec = &obj->sections[i];
		for (size_t k = 0; k < sec->nrelas; k++) {
			struct elf_rela *r = &sec->relas[k];
			const struct elf_symbol *s = r->sym < obj->nsymbols ? &obj->symbols[r->sym] : NULL;
			if (!s || !is_label(s) || s->shndx == SHN_UNDEF || s->shndx >= obj->nsections)
				continue;
			uint64_t off = s->value + (uint64_t)r->addend;
			int32_t t = named_at(obj, s->shndx, off);
			if (t >= 0) {
				r->sym = (uint32_t)t;
				r->addend = (int64_t)(off - obj->symbols[t].value);
			}
		}
	}
}


/* Takes over what e holds, whether the object is read or not. */
static int read_object(struct elf_object *obj, const struct elf_file *e)
{
	obj->path = e->path;
	obj->map = e->map;
	obj->mapsize = e->mapsize;
	obj->mapped = e->mapped;
	obj->sections = e->sections;
	obj->nsections = e->nsections;
	obj->machine = e->eh.e_machine;
	size_t symtab;
	int rc = 0;
	if (e->eh.e_type != ET_REL)
		rc = rw_fail("%s: not a relocatable object (ELF type %u)", e->path, e->eh.e_type);
	else if (find_symtab(e, &symtab) || read_symbols(obj, e, symtab) ||
		 read_sections(obj, symtab))
		rc = -1;
	if (rc) {
		elf_object_close(obj);
		return -1;
	}
	index_symbols(obj);
	if (obj->machine == EM_AARCH64)
		labels_to_symbols(obj);
	return 0;
}

int elf_object_open(struct elf_object *obj, const char *path)
{
	memset(obj, 0, sizeof *obj);
	struct elf_file e;
	if (elf_file_open(&e, path))
		return -1;
	return read_object(obj, &e);
}

int elf_object_open_mem(struct elf_object *obj, const char *name, const void *data, size_t size)
{
	memset(obj, 0, sizeof *obj);
	struct elf_file e;
	if (elf_file_open_mem(&e, name, data, size))
		return -1;
	return read_object(obj, &e);
}

void elf_object_close(struct elf_object *obj)
{
	if (obj->map && obj->mapped)
		munmap(obj->map, obj->mapsize);
	for (size_t i = 0; obj->sections && i < obj->nsections; i++)
		free(obj->sections[i].relas);
	free(obj->sections);
	free(obj->symbols);
	free(obj->bysec);
	free(obj->bysec_end);
	memset(obj, 0, sizeof *obj);
}

static int is_typed(const struct elf_symbol *s)
{
	return s->type != STT_NOTYPE;
}

/* Better matches rank higher: covering before an exact value without a
 * size, and within each, a typed symbol before NOTYPE. 0: no match. */
static int rank(const struct elf_symbol *s, uint64_t offset)
{
	int covers = offset - s->value < s->size;
	if (!covers && s->value != offset)
		return 0;
	return 1 + covers + 2 * is_typed(s);
}

const struct elf_symbol *elf_object_symbol_at(const struct elf_object *obj,
					    uint16_t shndx, uint64_t offset)
{
	/* First position past (shndx, offset). */
	size_t lo = 0, hi = obj->nbysec;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct elf_symbol *s = &obj->symbols[obj->bysec[mid]];
		if (s->shndx < shndx || (s->shndx == shndx && s->value <= offset))
			lo = mid + 1;
		else
			hi = mid;
	}
	const struct elf_symbol *best = NULL;
	int bestrank = 0;
	for (size_t i = lo; i-- > 0;) {
		const struct elf_symbol *s = &obj->symbols[obj->bysec[i]];
		if (s->shndx != shndx || (s->value != offset && obj->bysec_end[i] <= offset))
			break;
		/* Walking down, values fall: on a tie the innermost symbol
		 * (highest value) was seen first; among equal values the
		 * lowest index comes last, so it wins equal ranks then. */
		int r = rank(s, offset);
		if (r > bestrank || (r && r == bestrank && s->value == best->value)) {
			best = s;
			bestrank = r;
		}
	}
	return best;
}

size_t elf_object_section_symbols(const struct elf_object *obj, uint16_t shndx, const uint32_t **list)
{
	size_t lo = 0, hi = obj->nbysec;
	while (lo < hi) {	/* first position of shndx */
		size_t mid = lo + (hi - lo) / 2;
		if (obj->symbols[obj->bysec[mid]].shndx < shndx)
			lo = mid + 1;
		else
			hi = mid;
	}
	size_t end = lo;
	while (end < obj->nbysec && obj->symbols[obj->bysec[end]].shndx == shndx)
		end++;
	*list = obj->bysec + lo;
	return end - lo;
}

const uint8_t *elf_section_bytes(const struct elf_section *s, uint8_t **owned, size_t *size)
{
	Elf64_Chdr ch;
	*owned = NULL;
	*size = 0;
	if (!s || !s->data)
		return NULL;
	if (!(s->flags & SHF_COMPRESSED)) {
		*size = s->size;
		return s->data;
	}
	if (s->size < sizeof ch)
		return NULL;
	memcpy(&ch, s->data, sizeof ch);
	/* Input, not trusted: no zstd, no size a reader would choke on. */
	if (ch.ch_type != ELFCOMPRESS_ZLIB || !ch.ch_size || ch.ch_size > ((uint64_t)1 << 32))
		return NULL;
	uLongf len = (uLongf)ch.ch_size;
	uint8_t *out = malloc(len);
	if (!out || uncompress(out, &len, s->data + sizeof ch, (uLong)(s->size - sizeof ch)) != Z_OK ||
	    len != ch.ch_size) {
		free(out);
		return NULL;
	}
	*owned = out;
	*size = len;
	return out;
}

int elf_section_is_const(const struct elf_section *s)
{
	if (!s || !(s->flags & SHF_ALLOC) || (s->flags & (SHF_EXECINSTR | SHF_TLS)) ||
	    s->type == SHT_NOBITS)
		return 0;
	return !(s->flags & SHF_WRITE) || !strncmp(s->name, ".data.rel.ro", 12);
}
