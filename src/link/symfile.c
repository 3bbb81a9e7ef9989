/* The symbol file of a patch: what a debugger reads to know the new code,
 * made for gdb's JIT interface (the agent registers it, agent/jit.c).
 *
 * It is the object the code came from, made to describe the process: a
 * relocatable ELF file whose loaded sections have the addresses the patch
 * gave them (gdb takes a JIT object's section addresses as they are, as
 * it does for LLVM's) and whose DWARF - line tables, functions, types,
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
 * Sections not loaded lose SHF_ALLOC (gdb must see none at address 0) and
 * every section its bytes except DWARF, the symbol table and .eh_frame
 * (the bytes the patch loaded, for gdb's unwinder): the code is read
 * from the process. Relocation and group sections become SHT_NULL, which
 * readers skip. Symbols of sections not loaded lose their names. */
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

static void relocate(struct link *l, uint32_t oi, const struct elf_section *s, uint8_t *data)
{
	for (size_t i = 0; i < s->nrelas_read; i++) {
		const struct elf_rela *r = &s->relas[i];
		struct reloc_kind k;
		arch_reloc_kind(r->type, &k);
		int width = arch_field_size(r->type);
		if (!width || r->offset > s->size || s->size - r->offset < (uint64_t)width)
			continue;
		uint8_t *loc = data + r->offset;
		uint64_t S = k.known && !k.tls && !k.got ? target_addr(l, oi, r->sym, r->addend) : 0;
		if (!S && is_range_list(s->name))
			S = 1;
		memset(loc, 0, (size_t)width);
		if (S || !k.pcrel) {
			struct relval v = {.S = S, .P = r->offset};
			if (arch_apply(r->type, loc, &v) < 0)
				memset(loc, 0, (size_t)width);
		}
	}
}

static int keeps_bytes(const struct elf_section *s, int dwarf)
{
	if (s->type == SHT_NOBITS || s->type == SHT_RELA || s->type == SHT_REL || s->type == SHT_GROUP)
		return 0;
	if (s->type == SHT_STRTAB || is_eh(s))
		return 1;
	return dwarf && !(s->flags & SHF_ALLOC);
}

static const uint8_t *loaded_bytes(const struct link *l, uint32_t oi, uint32_t si)
{
	uint64_t a = l->secs[oi][si].addr;
	int seg = l->secs[oi][si].load;
	if (a < l->seg_addr[seg] || a - l->seg_addr[seg] + l->objs[oi].sections[si].size > l->seg_size[seg])
		return NULL;
	return l->seg_data[seg] + (a - l->seg_addr[seg]);
}

/* The symbol table as it was, the names of symbols of sections not
 * loaded removed. */
static void put_symtab(struct out *out, const struct link *l, uint32_t oi, const Elf64_Shdr *in,
		       Elf64_Shdr *sh)
{
	const struct elf_object *o = &l->objs[oi];
	size_t n = in->sh_size / sizeof(Elf64_Sym);
	sh->sh_offset = out_put(out, (const uint8_t *)o->map + in->sh_offset, n * sizeof(Elf64_Sym), 8);
	Elf64_Sym *syms = (Elf64_Sym *)(out->buf + sh->sh_offset);
	for (size_t i = 1; i < n && i < o->nsymbols; i++) {
		uint32_t shndx = o->symbols[i].shndx;
		if (shndx && shndx < o->nsections && (o->sections[shndx].flags & SHF_ALLOC) &&
		    !is_loaded(l, oi, shndx))
			syms[i].st_name = 0;
	}
}

static void put_section(struct out *out, struct link *l, uint32_t oi, uint32_t si, int dwarf,
			Elf64_Shdr *sh)
{
	const struct elf_object *o = &l->objs[oi];
	const struct elf_section *s = &o->sections[si];
	const Elf64_Shdr *in = (const Elf64_Shdr *)((const uint8_t *)o->map +
						     ((const Elf64_Ehdr *)o->map)->e_shoff) + si;
	*sh = *in;
	sh->sh_flags &= ~(uint64_t)SHF_GROUP;
	if (s->type == SHT_RELA || s->type == SHT_REL || s->type == SHT_GROUP) {
		*sh = (Elf64_Shdr){.sh_name = in->sh_name, .sh_type = SHT_NULL};
		return;
	}
	if (s->flags & SHF_ALLOC) {
		if (is_loaded(l, oi, si))
			sh->sh_addr = l->secs[oi][si].addr;
		else
			sh->sh_flags &= ~(uint64_t)(SHF_ALLOC | SHF_EXECINSTR | SHF_WRITE | SHF_TLS);
	}
	if (s->type == SHT_SYMTAB) {
		put_symtab(out, l, oi, in, sh);
		return;
	}
	const uint8_t *data = s->data;
	if (s->flags & SHF_ALLOC)
		data = is_loaded(l, oi, si) ? loaded_bytes(l, oi, si) : NULL;
	if (!keeps_bytes(s, dwarf) || !data) {
		sh->sh_type = SHT_NOBITS;
		sh->sh_offset = out->size;
		return;
	}
	sh->sh_offset = out_put(out, data, s->size, s->align ? s->align : 1);
	if (!(s->flags & SHF_ALLOC))
		relocate(l, oi, s, out->buf + sh->sh_offset);
}

uint8_t *link_symfile(struct link *l, uint32_t oi, int dwarf, size_t *size)
{
	const struct elf_object *o = &l->objs[oi];
	struct out out = {0};
	Elf64_Ehdr eh = *(const Elf64_Ehdr *)o->map;
	out_put(&out, &eh, sizeof eh, 8);
	Elf64_Shdr *sh = rw_calloc(o->nsections, sizeof *sh);
	sh[0] = *(const Elf64_Shdr *)((const uint8_t *)o->map + eh.e_shoff);	/* extended counts */
	for (uint32_t si = 1; si < o->nsections; si++)
		put_section(&out, l, oi, si, dwarf, &sh[si]);
	size_t shoff = out_put(&out, sh, o->nsections * sizeof *sh, 8);
	free(sh);
	Elf64_Ehdr *h = (Elf64_Ehdr *)out.buf;
	h->e_shoff = shoff;
	h->e_phoff = 0, h->e_phnum = 0;
	*size = out.size;
	return out.buf;
}
