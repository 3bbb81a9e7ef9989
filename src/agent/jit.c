/* Debuggers name patched code: each patch is registered through gdb's JIT
 * interface (gdb's manual, "JIT Compilation Interface") as a small ELF
 * object in memory, a relocatable file whose one section, .text (no bytes
 * of its own: the code is where the patch put it), has the address of the
 * patch's code and whose symbols are its functions. gdb puts a breakpoint
 * in __jit_debug_register_code and reads the list when it stops there, or
 * when it attaches. Symbols only: frames are named, `break NAME` and
 * `info symbol` reach the new code; no line table. Made before the patch
 * and registered after it is in, outside the stop of the world (both
 * allocate); a failure leaves the patch unnamed, never undone. */
#define _GNU_SOURCE
#include <elf.h>
#include <stdlib.h>
#include <string.h>
#include "apply.h"

struct jit_code_entry {
	struct jit_code_entry *next_entry, *prev_entry;
	const char *symfile_addr;
	uint64_t symfile_size;
};

struct jit_descriptor {
	uint32_t version;
	uint32_t action_flag;	/* 1: register relevant_entry */
	struct jit_code_entry *relevant_entry, *first_entry;
};

/* The names gdb looks for; a program that is a JIT itself shares them
 * with us (the agent comes first in the lookup: one list). */
__attribute__((visibility("default"), noinline)) void __jit_debug_register_code(void)
{
	__asm__ volatile("" ::: "memory");
}

__attribute__((visibility("default"))) struct jit_descriptor __jit_debug_descriptor = {1, 0, NULL, NULL};

enum { SEC_TEXT = 1, SEC_SYMTAB, SEC_STRTAB, SEC_SHSTRTAB, NSEC };

static const char shstrtab[] = "\0.text\0.symtab\0.strtab\0.shstrtab";

/* The object: header, section headers, symbols, their names. Made from
 * the patch as it came, before it is applied (applying moves the names
 * into the registry). */
char *apply_jit_build(const struct msg_apply *m, size_t *size)
{
	uint64_t lo = UINT64_MAX, hi = 0;
	size_t nsym = 1, strsz = 1;
	for (uint32_t i = 0; i < m->nsyms; i++) {
		const struct msg_regsym *s = &m->syms[i];
		if (s->kind != RW_KIND_FUNC || !s->size)
			continue;
		lo = s->addr < lo ? s->addr : lo;
		hi = s->addr + s->size > hi ? s->addr + s->size : hi;
		nsym++;
		strsz += strlen(s->name) + 1;
	}
	if (nsym == 1)
		return NULL;
	size_t off_sh = sizeof(Elf64_Ehdr), off_sym = off_sh + NSEC * sizeof(Elf64_Shdr);
	size_t off_str = off_sym + nsym * sizeof(Elf64_Sym), off_shstr = off_str + strsz;
	*size = off_shstr + sizeof shstrtab;
	char *b = calloc(1, *size);
	if (!b)
		return NULL;
	Elf64_Ehdr *eh = (Elf64_Ehdr *)b;
	memcpy(eh->e_ident, ELFMAG, SELFMAG);
	eh->e_ident[EI_CLASS] = ELFCLASS64, eh->e_ident[EI_DATA] = ELFDATA2LSB;
	eh->e_ident[EI_VERSION] = EV_CURRENT, eh->e_ident[EI_OSABI] = ELFOSABI_SYSV;
	eh->e_type = ET_REL, eh->e_machine = EM_X86_64, eh->e_version = EV_CURRENT;
	eh->e_ehsize = sizeof *eh, eh->e_shentsize = sizeof(Elf64_Shdr);
	eh->e_shoff = off_sh, eh->e_shnum = NSEC, eh->e_shstrndx = SEC_SHSTRTAB;
	Elf64_Shdr *sh = (Elf64_Shdr *)(b + off_sh);
	sh[SEC_TEXT] = (Elf64_Shdr){.sh_name = 1, .sh_type = SHT_NOBITS, .sh_flags = SHF_ALLOC | SHF_EXECINSTR,
				    .sh_addr = lo, .sh_size = hi - lo, .sh_addralign = 16};
	sh[SEC_SYMTAB] = (Elf64_Shdr){.sh_name = 7, .sh_type = SHT_SYMTAB, .sh_offset = off_sym,
				      .sh_size = nsym * sizeof(Elf64_Sym), .sh_link = SEC_STRTAB,
				      .sh_info = 1, .sh_addralign = 8, .sh_entsize = sizeof(Elf64_Sym)};
	sh[SEC_STRTAB] = (Elf64_Shdr){.sh_name = 15, .sh_type = SHT_STRTAB, .sh_offset = off_str,
				      .sh_size = strsz, .sh_addralign = 1};
	sh[SEC_SHSTRTAB] = (Elf64_Shdr){.sh_name = 23, .sh_type = SHT_STRTAB, .sh_offset = off_shstr,
					.sh_size = sizeof shstrtab, .sh_addralign = 1};
	memcpy(b + off_shstr, shstrtab, sizeof shstrtab);
	Elf64_Sym *sym = (Elf64_Sym *)(b + off_sym);
	size_t n = 1, at = 1;
	for (uint32_t i = 0; i < m->nsyms; i++) {
		const struct msg_regsym *s = &m->syms[i];
		if (s->kind != RW_KIND_FUNC || !s->size)
			continue;
		size_t len = strlen(s->name) + 1;
		memcpy(b + off_str + at, s->name, len);
		/* Section-relative, as in any relocatable file. */
		sym[n++] = (Elf64_Sym){.st_name = (uint32_t)at, .st_info = ELF64_ST_INFO(STB_GLOBAL, STT_FUNC),
				       .st_shndx = SEC_TEXT, .st_value = s->addr - lo, .st_size = s->size};
		at += len;
	}
	return b;
}

/* Once the patch is in; obj is the list's from now on. One thread at a
 * time: patches are applied one by one (patch_lock). */
void apply_jit_register(char *obj, size_t size)
{
	struct jit_code_entry *e = obj ? calloc(1, sizeof *e) : NULL;
	if (!e) {
		free(obj);
		return;
	}
	e->symfile_addr = obj, e->symfile_size = size;
	e->next_entry = __jit_debug_descriptor.first_entry;
	if (e->next_entry)
		e->next_entry->prev_entry = e;
	__jit_debug_descriptor.first_entry = e;
	__jit_debug_descriptor.relevant_entry = e;
	__jit_debug_descriptor.action_flag = 1;
	__jit_debug_register_code();
	__jit_debug_descriptor.action_flag = 0;
}
