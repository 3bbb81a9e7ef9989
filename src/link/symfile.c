/* The symbol file of a patch: what a debugger reads to know the new code,
 * made for gdb's JIT interface (the agent registers it, agent/jit.c).
 *
 * It is the object the code came from, made to describe the process: a
 * relocatable ELF file of the sections the patch loaded and the DWARF,
 * nothing else (a Rust crate has a section per function: most of them
 * are not in the patch). The loaded sections have the addresses the patch
 * gave them (gdb takes a JIT object's section addresses as they are, as
 * it does for LLVM's); the DWARF - line tables, functions, types,
 * variables - has every relocation already applied, so that gdb has
 * nothing left to relocate:
 *   - code and data the patch loaded: their addresses in the process;
 *   - a variable or constant bound to the running program's storage: the
 *     running address, so `print` in new code shows the program's state;
 *   - code not loaded (the unchanged functions of a Rust crate, which run
 *     in their old versions): address 0, which gdb takes for code a linker
 *     dropped - no line, no function, no breakpoint location for it. In
 *     .debug_ranges and .debug_loc, where 0,0 ends a list, 1,1: an empty
 *     range.
 * Of .debug_info, only the units that describe something loaded stay
 * (struct units). No section is at address 0 (gdb would take 0 for it).
 * Loaded sections
 * have no bytes but .eh_frame's (as the patch loaded them, for gdb's
 * unwinder): the code is read from the process. The symbols are the named
 * ones of the sections kept. */
#include <elf.h>
#include <stdlib.h>
#include <string.h>
#include "linker.h"
#include "util.h"

struct out {
	uint8_t *buf;
	size_t size, cap;
};

static size_t out_put(struct out *o, const void *data, size_t n, size_t align)
{
	size_t at = (o->size + align - 1) & ~(align - 1);
	while (at + n > o->cap) {
		o->cap = o->cap ? o->cap * 2 : 1 << 16;
		o->buf = rw_realloc(o->buf, o->cap);
	}
	memset(o->buf + o->size, 0, at - o->size);
	if (data)
		memcpy(o->buf + at, data, n);
	o->size = at + n;
	return at;
}

static int is_eh(const struct elf_section *s)
{
	return !strcmp(s->name, ".eh_frame") || s->type == SHT_X86_64_UNWIND;
}

static int is_loaded(const struct link *l, uint32_t oi, uint32_t si)
{
	return si < l->objs[oi].nsections && l->secs[oi][si].load;
}

/* Where symbol sym + addend is in the process; 0 when nowhere. */
static uint64_t target_addr(struct link *l, uint32_t oi, uint32_t sym, int64_t addend)
{
	const struct elf_object *o = &l->objs[oi];
	if (sym >= o->nsymbols)
		return 0;
	const struct elf_symbol *s = &o->symbols[sym];
	uint64_t off = s->value + (uint64_t)addend;
	if (!sym || s->shndx == SHN_ABS)
		return off;
	if (s->shndx == SHN_UNDEF || s->shndx >= o->nsections)
		return 0;
	if (!(o->sections[s->shndx].flags & SHF_ALLOC))
		return off;	/* into DWARF: an offset, the section is at 0 */
	if (is_loaded(l, oi, s->shndx))
		return l->secs[oi][s->shndx].addr + off;
	if (o->sections[s->shndx].flags & (SHF_EXECINSTR | SHF_TLS))
		return 0;
	const struct elf_symbol *named = s->type == STT_SECTION ? elf_object_symbol_at(o, s->shndx, off) : s;
	uint64_t addr;
	if (!named || !link_running_storage(l, oi, named, &addr))
		return 0;
	return addr + (off - named->value);
}

/* DWARF 4 lists end at an entry of two zeros: a dropped one must not. */
static int is_range_list(const char *name)
{
	return !strcmp(name, ".debug_ranges") || !strcmp(name, ".debug_loc");
}

/* .debug_info's units, and those kept: the ones with something the
 * patch loaded. A Rust crate's object has a unit per codegen unit, and a
 * patch loads code of few of them. A unit dropped takes shift bytes out
 * of the offsets after it; the indexes that name units by offset
 * (.debug_aranges, .debug_pubnames, ...) go: gdb reads the units. */
struct units {
	uint64_t *start;	/* [n + 1], start[n]: the section's size */
	uint64_t *shift;	/* bytes of the units before i dropped */
	uint8_t *keep;
	size_t n;
	uint32_t si;		/* .debug_info */
};

static size_t unit_of(const struct units *u, uint64_t off)
{
	size_t lo = 0, hi = u->n;
	while (hi - lo > 1) {
		size_t mid = (lo + hi) / 2;
		if (u->start[mid] <= off)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

/* off in .debug_info as it is in the symbol file; 0 when its unit went. */
static uint64_t unit_offset(const struct units *u, uint64_t off)
{
	size_t k = unit_of(u, off);
	return u->keep[k] ? off - u->shift[k] : 0;
}

static void relocate(struct link *l, uint32_t oi, const struct elf_section *s, uint8_t *data,
		     const struct units *u)
{
	int in_info = u && s == &l->objs[oi].sections[u->si];
	for (size_t i = 0; i < s->nrelas_read; i++) {
		const struct elf_rela *r = &s->relas[i];
		struct reloc_kind k;
		arch_reloc_kind(r->type, &k);
		int width = arch_field_size(r->type);
		uint64_t at = r->offset;
		if (!width || at > s->size || s->size - at < (uint64_t)width)
			continue;
		if (in_info) {
			size_t unit = unit_of(u, at);
			if (!u->keep[unit])
				continue;
			at -= u->shift[unit];
		}
		uint8_t *loc = data + at;
		uint64_t S = k.known && !k.tls && !k.got ? target_addr(l, oi, r->sym, r->addend) : 0;
		if (u && r->sym < l->objs[oi].nsymbols && l->objs[oi].symbols[r->sym].shndx == u->si)
			S = unit_offset(u, S);
		if (!S && is_range_list(s->name))
			S = 1;
		memset(loc, 0, (size_t)width);
		if (S || !k.pcrel) {
			struct relval v = {.S = S, .P = at};
			if (arch_apply(r->type, loc, &v) < 0)
				memset(loc, 0, (size_t)width);
		}
	}
}

/* The units of .debug_info si and those to keep; none (no pruning) when
 * there is one, the section does not read as units, or addresses are in
 * .debug_addr (DWARF 5's addrx: which unit uses which is not told by the
 * relocations of .debug_info). */
static int find_units(const struct link *l, uint32_t oi, uint32_t si, struct units *u)
{
	const struct elf_object *o = &l->objs[oi];
	const struct elf_section *s = &o->sections[si];
	memset(u, 0, sizeof *u);
	for (uint32_t k = 1; k < o->nsections; k++)
		if (!strcmp(o->sections[k].name, ".debug_addr"))
			return 0;
	size_t cap = 0;
	for (uint64_t off = 0; off < s->size;) {
		uint32_t len32;
		uint64_t len, hdr = 4;
		if (s->size - off < 4)
			goto bad;
		memcpy(&len32, s->data + off, 4);
		len = len32;
		if (len32 == 0xffffffffu) {
			if (s->size - off < 12)
				goto bad;
			memcpy(&len, s->data + off + 4, 8);
			hdr = 12;
		}
		if (len > s->size - off - hdr)
			goto bad;
		u->start = rw_grow(u->start, &cap, u->n + 1, sizeof *u->start);
		u->start[u->n++] = off;
		off += hdr + len;
	}
	if (u->n < 2)
		goto bad;
	u->start[u->n] = s->size;
	u->keep = rw_calloc(u->n, 1);
	u->shift = rw_calloc(u->n, sizeof *u->shift);
	u->si = si;
	for (size_t i = 0; i < s->nrelas_read; i++) {
		const struct elf_rela *r = &s->relas[i];
		if (r->sym < o->nsymbols && o->symbols[r->sym].shndx < o->nsections &&
		    is_loaded(l, oi, o->symbols[r->sym].shndx) && r->offset < s->size)
			u->keep[unit_of(u, r->offset)] = 1;
	}
	for (size_t i = 1; i < u->n; i++)
		u->shift[i] = u->shift[i - 1] + (u->keep[i - 1] ? 0 : u->start[i] - u->start[i - 1]);
	return 1;
bad:
	free(u->start);
	memset(u, 0, sizeof *u);
	return 0;
}

static void units_free(struct units *u)
{
	free(u->start), free(u->shift), free(u->keep);
}

/* The indexes of units by offset: of no use once units are dropped. */
static int is_unit_index(const char *name)
{
	static const char *const names[] = {".debug_aranges", ".debug_pubnames", ".debug_pubtypes",
					    ".debug_gnu_pubnames", ".debug_gnu_pubtypes", ".debug_names"};
	for (size_t i = 0; i < sizeof names / sizeof *names; i++)
		if (!strcmp(name, names[i]))
			return 1;
	return 0;
}

/* The sections kept: those the patch loaded, and its DWARF. */
static int is_kept(const struct link *l, uint32_t oi, uint32_t si, int dwarf, const struct units *u)
{
	const struct elf_section *s = &l->objs[oi].sections[si];
	if (s->flags & SHF_ALLOC)
		return is_loaded(l, oi, si);
	if (u->n && is_unit_index(s->name))
		return 0;
	/* Compressed (-gz) and not inflated (inflate_dwarf): without it. */
	return dwarf && s->type == SHT_PROGBITS && !strncmp(s->name, ".debug_", 7) && s->data &&
	       !(s->flags & SHF_COMPRESSED);
}

static const uint8_t *loaded_bytes(const struct link *l, uint32_t oi, uint32_t si)
{
	uint64_t a = l->secs[oi][si].addr;
	int seg = l->secs[oi][si].load;
	if (a < l->seg_addr[seg] || a - l->seg_addr[seg] + l->objs[oi].sections[si].size > l->seg_size[seg])
		return NULL;
	return l->seg_data[seg] + (a - l->seg_addr[seg]);
}

struct strtab {
	char *buf;
	size_t len, cap;
};

static uint32_t str_add(struct strtab *t, const char *s)
{
	size_t n = strlen(s) + 1;
	if (t->len + n > t->cap) {
		t->cap = (t->len + n) * 2;
		t->buf = rw_realloc(t->buf, t->cap);
	}
	memcpy(t->buf + t->len, s, n);
	t->len += n;
	return (uint32_t)(t->len - n);
}

/* A loaded section: its address, and only .eh_frame's bytes. */
static void put_loaded(struct out *out, const struct link *l, uint32_t oi, uint32_t si, Elf64_Shdr *sh)
{
	const struct elf_section *s = &l->objs[oi].sections[si];
	const uint8_t *data = is_eh(s) ? loaded_bytes(l, oi, si) : NULL;
	sh->sh_type = data ? SHT_PROGBITS : SHT_NOBITS;
	sh->sh_flags = s->flags & (SHF_ALLOC | SHF_WRITE | SHF_EXECINSTR | SHF_TLS);
	sh->sh_addr = l->secs[oi][si].addr;
	sh->sh_size = s->size;
	sh->sh_addralign = s->align;
	sh->sh_offset = data ? out_put(out, data, s->size, s->align) : out->size;
}

static void put_dwarf(struct out *out, struct link *l, uint32_t oi, uint32_t si, const struct units *u,
		      Elf64_Shdr *sh)
{
	const struct elf_section *s = &l->objs[oi].sections[si];
	sh->sh_type = SHT_PROGBITS;
	sh->sh_addralign = s->align;
	if (!u->n || si != u->si) {
		sh->sh_size = s->size;
		sh->sh_offset = out_put(out, s->data, s->size, s->align);
		relocate(l, oi, s, out->buf + sh->sh_offset, u->n ? u : NULL);
		return;
	}
	sh->sh_size = s->size - u->shift[u->n - 1] - (u->keep[u->n - 1] ? 0 : s->size - u->start[u->n - 1]);
	sh->sh_offset = out_put(out, NULL, sh->sh_size, s->align);
	for (size_t i = 0; i < u->n; i++)
		if (u->keep[i])
			memcpy(out->buf + sh->sh_offset + u->start[i] - u->shift[i], s->data + u->start[i],
			       u->start[i + 1] - u->start[i]);
	relocate(l, oi, s, out->buf + sh->sh_offset, u);
}

/* The named functions and data of the sections kept, locals first. */
static void put_symtab(struct out *out, const struct link *l, uint32_t oi, const uint32_t *newidx,
		       Elf64_Shdr *sh, struct strtab *names)
{
	const struct elf_object *o = &l->objs[oi];
	size_t start = out_put(out, NULL, sizeof(Elf64_Sym), 8), n = 1;
	for (int pass = 0; pass < 2; pass++) {
		if (pass == 1)
			sh->sh_info = (uint32_t)n;
		for (size_t i = 1; i < o->nsymbols; i++) {
			const struct elf_symbol *y = &o->symbols[i];
			if ((y->bind == STB_LOCAL) != !pass || !y->name[0] || y->shndx >= o->nsections ||
			    !newidx[y->shndx] || (y->type != STT_FUNC && y->type != STT_OBJECT &&
						  y->type != STT_NOTYPE && y->type != STT_TLS))
				continue;
			Elf64_Sym e = {.st_name = str_add(names, y->name),
				       .st_info = ELF64_ST_INFO(y->bind, y->type),
				       .st_other = y->visibility, .st_shndx = (uint16_t)newidx[y->shndx],
				       .st_value = y->value, .st_size = y->size};
			out_put(out, &e, sizeof e, 8);
			n++;
		}
	}
	sh->sh_type = SHT_SYMTAB;
	sh->sh_offset = start;
	sh->sh_size = n * sizeof(Elf64_Sym);
	sh->sh_addralign = 8;
	sh->sh_entsize = sizeof(Elf64_Sym);
}

static void put_strtab(struct out *out, Elf64_Shdr *sh, const struct strtab *t)
{
	sh->sh_type = SHT_STRTAB;
	sh->sh_offset = out_put(out, t->buf, t->len, 1);
	sh->sh_size = t->len;
	sh->sh_addralign = 1;
}

/* The object's sections as the symbol file needs them: its compressed
 * DWARF (-gz) inflated, as its relocations apply to the inflated bytes.
 * NULL when none is compressed; *owned holds the buffers to free. */
static struct elf_section *inflate_dwarf(const struct elf_object *o, uint8_t ***owned)
{
	struct elf_section *v = NULL;
	for (uint32_t si = 1; si < o->nsections; si++) {
		const struct elf_section *s = &o->sections[si];
		uint8_t *buf;
		size_t size;
		if (!(s->flags & SHF_COMPRESSED) || strncmp(s->name, ".debug_", 7))
			continue;
		if (!v) {
			v = rw_calloc(o->nsections, sizeof *v);
			memcpy(v, o->sections, o->nsections * sizeof *v);
			*owned = rw_calloc(o->nsections, sizeof **owned);
		}
		if (elf_section_bytes(s, &buf, &size) && buf) {
			v[si].data = buf, v[si].size = size, v[si].flags &= ~(uint64_t)SHF_COMPRESSED;
			(*owned)[si] = buf;
		}
	}
	return v;
}

static uint8_t *symfile_make(struct link *l, uint32_t oi, int dwarf, size_t *size);

uint8_t *link_symfile(struct link *l, uint32_t oi, int dwarf, size_t *size)
{
	struct elf_object *o = &l->objs[oi];
	struct elf_section *own = o->sections;
	uint8_t **owned = NULL;
	struct elf_section *inflated = dwarf ? inflate_dwarf(o, &owned) : NULL;
	if (inflated)
		o->sections = inflated;
	uint8_t *file = symfile_make(l, oi, dwarf, size);
	if (inflated) {
		o->sections = own;
		for (uint32_t si = 0; si < o->nsections; si++)
			free(owned[si]);
		free(owned);
		free(inflated);
	}
	return file;
}

static uint8_t *symfile_make(struct link *l, uint32_t oi, int dwarf, size_t *size)
{
	const struct elf_object *o = &l->objs[oi];
	struct out out = {0};
	struct strtab shstr = {0}, str = {0};
	uint32_t *newidx = rw_calloc(o->nsections + 1, sizeof *newidx), n = 1;
	str_add(&shstr, ""), str_add(&str, "");
	Elf64_Ehdr eh = *(const Elf64_Ehdr *)o->map;
	out_put(&out, &eh, sizeof eh, 8);
	struct units u = {0};
	for (uint32_t si = 1; si < o->nsections && dwarf; si++)
		if (!strcmp(o->sections[si].name, ".debug_info") && o->sections[si].data &&
		    !(o->sections[si].flags & SHF_COMPRESSED))
			find_units(l, oi, si, &u);
	for (uint32_t si = 1; si < o->nsections; si++)
		if (is_kept(l, oi, si, dwarf, &u) && n < SHN_LORESERVE - 3)
			newidx[si] = n++;
	Elf64_Shdr *sh = rw_calloc(n + 3, sizeof *sh);
	for (uint32_t si = 1; si < o->nsections; si++) {
		Elf64_Shdr *d = &sh[newidx[si]];
		if (!newidx[si])
			continue;
		d->sh_name = str_add(&shstr, o->sections[si].name);
		if (o->sections[si].flags & SHF_ALLOC)
			put_loaded(&out, l, oi, si, d);
		else
			put_dwarf(&out, l, oi, si, &u, d);
	}
	uint32_t symtab = n, strtab = n + 1, shstrtab = n + 2;
	sh[symtab].sh_name = str_add(&shstr, ".symtab");
	sh[symtab].sh_link = strtab;
	put_symtab(&out, l, oi, newidx, &sh[symtab], &str);
	sh[strtab].sh_name = str_add(&shstr, ".strtab");
	put_strtab(&out, &sh[strtab], &str);
	sh[shstrtab].sh_name = str_add(&shstr, ".shstrtab");
	put_strtab(&out, &sh[shstrtab], &shstr);
	size_t shoff = out_put(&out, sh, (n + 3) * sizeof *sh, 8);
	Elf64_Ehdr *h = (Elf64_Ehdr *)out.buf;
	h->e_shoff = shoff, h->e_shnum = (uint16_t)(n + 3), h->e_shstrndx = (uint16_t)shstrtab;
	h->e_phoff = 0, h->e_phnum = 0;
	free(sh), free(newidx), free(shstr.buf), free(str.buf);
	units_free(&u);
	*size = out.size;
	return out.buf;
}
