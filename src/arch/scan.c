/* x86-64: decode the code of a new object: instruction boundaries, and the
 * references the assembler resolved without leaving a relocation.
 *
 * Two questions need instruction boundaries (x86_64_insn.c decodes them):
 * which offset a PC-relative `section+addend` means (the addend is the
 * offset minus the bytes from the field to the end of the instruction),
 * and where the assembler resolved a reference inside one section by
 * itself: `lea f(%rip)` and `call f` to a function of the same .text get
 * synthetic relocations here, so that they bind like any other reference
 * (an address to the original function, a call to the running version of
 * an unchanged one) and so that the diff compares them by target. Adding
 * them twice is harmless: a field that has a relocation gets no other. */
#include <elf.h>
#include <stdlib.h>
#include <string.h>
#include "arch.h"
#include "util.h"

/* Where the next function of the section starts after at: decoding
 * resumes there after bytes it does not understand. */
static uint64_t next_func(const uint64_t *funcs, size_t n, uint64_t at, uint64_t end)
{
	for (size_t i = 0; i < n; i++)
		if (funcs[i] > at)
			return funcs[i];
	return end;
}

/* cap: the room in sec->relas, nrelas when the scan begins. */
static void add_rela(struct elf_section *sec, size_t *cap, struct elf_rela r)
{
	sec->relas = rw_grow(sec->relas, cap, sec->nrelas, sizeof *sec->relas);
	sec->relas[sec->nrelas++] = r;
}

/* The function of section si whose entry the rel32 field at field (of the
 * instruction at..at+len) reaches, when the assembler left no relocation
 * there; NULL otherwise. */
static const struct elf_symbol *resolved_target(const struct elf_object *o, uint16_t si,
					       uint64_t at, uint8_t len, uint64_t field,
					       const uint8_t *has_reloc)
{
	const struct elf_section *sec = &o->sections[si];
	int32_t disp;
	if (has_reloc[field])
		return NULL;
	memcpy(&disp, sec->data + field, 4);
	int64_t target = (int64_t)(at + len) + disp;
	if (target < 0 || (uint64_t)target >= sec->size)
		return NULL;
	const struct elf_symbol *f = elf_object_symbol_at(o, si, (uint64_t)target);
	return f && f->type == STT_FUNC && f->value == (uint64_t)target ? f : NULL;
}

/* `lea f(%rip)` to a function of the same section has no relocation: the
 * assembler resolved it. Give it one, so the address binds like any other
 * (to the original f, when the program has it). */
static void add_lea_reloc(struct elf_object *o, uint16_t si, size_t *cap, uint64_t at,
			  const struct insn *in, const uint8_t *has_reloc)
{
	uint64_t field = at + (uint64_t)in->disp_at;
	const struct elf_symbol *f = resolved_target(o, si, at, in->len, field, has_reloc);
	if (f)
		add_rela(&o->sections[si], cap, (struct elf_rela){field, R_X86_64_PC32,
			 (uint32_t)(f - o->symbols), -(int64_t)(in->len - (uint8_t)in->disp_at)});
}

/* A call or jump to another function of the same section has no
 * relocation either: give it one, so that it can go to the running version
 * of a function that did not change (and a later patch of it reaches this
 * caller), and so that the diff compares it by target, not displacement. */
static void add_call_reloc(struct elf_object *o, uint16_t si, size_t *cap, uint64_t at,
			   const struct insn *in, const uint8_t *has_reloc)
{
	uint64_t field = at + in->len - 4;
	const struct elf_symbol *f = resolved_target(o, si, at, in->len, field, has_reloc);
	if (f && f != elf_object_symbol_at(o, si, at))
		add_rela(&o->sections[si], cap, (struct elf_rela){field, R_X86_64_PLT32,
			 (uint32_t)(f - o->symbols), -4});
}

uint8_t *x86_scan_code(struct elf_object *o, uint16_t si)
{
	struct elf_section *sec = &o->sections[si];
	uint8_t *starts = rw_calloc(sec->size + 1, 1), *has_reloc = rw_calloc(sec->size + 4, 1);
	/* The section's own symbols, by value: a Rust object has a section
	 * per function, so walking every symbol of the object for each
	 * section would cost sections x symbols. */
	const uint32_t *syms;
	size_t nsyms = elf_object_section_symbols(o, si, &syms);
	uint64_t *funcs = rw_calloc(nsyms + 1, sizeof *funcs);
	size_t nfuncs = 0, cap = sec->nrelas;
	for (size_t j = 0; j < nsyms; j++)
		if (o->symbols[syms[j]].type == STT_FUNC)
			funcs[nfuncs++] = o->symbols[syms[j]].value;
	for (size_t i = 0; i < sec->nrelas; i++)
		if (sec->relas[i].offset < sec->size)
			has_reloc[sec->relas[i].offset] = 1;
	for (uint64_t at = 0; at < sec->size;) {
		struct insn in;
		if (x86_decode(sec->data + at, sec->size - at, &in) < 0) {
			uint64_t next = next_func(funcs, nfuncs, at, sec->size);
			if (next > sec->size)	/* a symbol past its section: input is not trusted */
				next = sec->size;
			memset(starts + at, 2, next - at);
			at = next;
			continue;
		}
		starts[at] = 1;
		if (in.disp_at >= 0 && x86_takes_address(&in))
			add_lea_reloc(o, si, &cap, at, &in, has_reloc);
		else if (x86_is_rel32_branch(&in))
			add_call_reloc(o, si, &cap, at, &in, has_reloc);
		at += in.len;
	}
	starts[sec->size] = 1;
	free(has_reloc);
	free(funcs);
	return starts;
}
