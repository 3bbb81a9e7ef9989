/* What a shared object file says about itself, in the dylib reload API
 * (lib.c): that its bytes are a complete shared object for this machine
 * (a file being written is not); then its soname, DT_NEEDED, the names it
 * exports and imports, and its executable segments, read from the bytes
 * as built. */
#define _GNU_SOURCE
#include <elf.h>
#include <stdlib.h>
#include <string.h>
#include "lib.h"

#if defined(__x86_64__)
#define HOST_MACHINE EM_X86_64
#elif defined(__aarch64__)
#define HOST_MACHINE EM_AARCH64
#else
#error "rewire_lib: unsupported architecture"
#endif

/* ----------------------------------------------------------- ELF reading
 * The bytes are input, not trusted: every offset is checked against the
 * file's size before it is read. */

int lib_in_file(size_t n, uint64_t off, uint64_t len)
{
	return off <= n && len <= n - off;
}

static const char *check_segments(const unsigned char *b, size_t n, const Elf64_Ehdr *eh)
{
	const Elf64_Phdr *ph = (const void *)(b + eh->e_phoff);
	int dynamic = 0;
	for (int i = 0; i < eh->e_phnum; i++) {
		if (ph[i].p_type != PT_LOAD && ph[i].p_type != PT_DYNAMIC)
			continue;
		if (!lib_in_file(n, ph[i].p_offset, ph[i].p_filesz))
			return "a segment ends past the end of the file";
		dynamic |= ph[i].p_type == PT_DYNAMIC;
	}
	return dynamic ? NULL : "no dynamic segment";
}

static const char *check_sections(const unsigned char *b, size_t n, const Elf64_Ehdr *eh)
{
	const Elf64_Shdr *sh = (const void *)(b + eh->e_shoff);
	for (int i = 0; i < eh->e_shnum; i++)
		if (sh[i].sh_type != SHT_NOBITS && sh[i].sh_type != SHT_NULL &&
		    !lib_in_file(n, sh[i].sh_offset, sh[i].sh_size))
			return "a section ends past the end of the file";
	return NULL;
}

/* Why the bytes are not a complete shared object for this machine, or
 * NULL. A file being written fails here: linkers write the headers last
 * (the section headers sit at the end of the file), or seek past holes. */
const char *lib_elf_incomplete(const unsigned char *b, size_t n)
{
	const Elf64_Ehdr *eh = (const void *)b;
	if (n < sizeof *eh)
		return "shorter than an ELF header";
	if (memcmp(eh->e_ident, ELFMAG, SELFMAG))
		return "no ELF magic";
	if (eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_ident[EI_DATA] != ELFDATA2LSB ||
	    eh->e_machine != HOST_MACHINE)
		return "not an ELF object for this machine";
	if (eh->e_type != ET_DYN)
		return "not a shared object";
	if (eh->e_phentsize != sizeof(Elf64_Phdr) || eh->e_phoff % 8 ||
	    !lib_in_file(n, eh->e_phoff, (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr)))
		return "program headers past the end of the file";
	if (eh->e_shoff &&
	    (eh->e_shentsize != sizeof(Elf64_Shdr) || eh->e_shoff % 8 ||
	     !lib_in_file(n, eh->e_shoff, (uint64_t)eh->e_shnum * sizeof(Elf64_Shdr))))
		return "section headers past the end of the file";
	const char *why = check_segments(b, n, eh);
	return why ? why : eh->e_shoff ? check_sections(b, n, eh) : NULL;
}

/* The file offset of [va, va + len) when a PT_LOAD maps it from the file. */
static int va_off(const struct elf *e, uint64_t va, uint64_t len, uint64_t *off)
{
	for (int i = 0; i < e->eh->e_phnum; i++) {
		const Elf64_Phdr *p = &e->ph[i];
		if (p->p_type == PT_LOAD && va >= p->p_vaddr && va - p->p_vaddr <= p->p_filesz &&
		    len <= p->p_filesz - (va - p->p_vaddr)) {
			*off = p->p_offset + (va - p->p_vaddr);
			return 0;
		}
	}
	return -1;
}

uint64_t lib_dyn_val(const struct elf *e, int64_t tag, uint64_t dflt)
{
	for (size_t i = 0; i < e->ndyn; i++)
		if (e->dyn[i].d_tag == tag)
			return e->dyn[i].d_un.d_val;
	return dflt;
}

/* A NUL-terminated string inside .dynstr, or NULL. */
const char *lib_elf_str(const struct elf *e, uint64_t off)
{
	if (off >= e->strsz)
		return NULL;
	const char *s = (const char *)e->b + e->str + off;
	return memchr(s, 0, e->strsz - off) ? s : NULL;
}

/* .dynsym's size: from its section header, else from DT_HASH. */
static void find_dynsym(struct elf *e)
{
	uint64_t va = lib_dyn_val(e, DT_SYMTAB, 0), off, hoff;
	if (!va || va_off(e, va, sizeof(Elf64_Sym), &off) || off % 8)
		return;
	const Elf64_Shdr *sh = (const void *)(e->b + e->eh->e_shoff);
	for (int i = 0; e->eh->e_shoff && i < e->eh->e_shnum; i++)
		if (sh[i].sh_type == SHT_DYNSYM && sh[i].sh_offset == off)
			e->nsym = sh[i].sh_size / sizeof(Elf64_Sym);
	uint64_t hash = lib_dyn_val(e, DT_HASH, 0);
	if (!e->nsym && hash && !va_off(e, hash, 8, &hoff) && hoff % 4 == 0)
		e->nsym = ((const uint32_t *)(e->b + hoff))[1];
	if (!lib_in_file(e->n, off, (uint64_t)e->nsym * sizeof(Elf64_Sym)))
		e->nsym = 0;
	e->sym = (const void *)(e->b + off);
}

/* b must have passed lib_elf_incomplete. NULL, or why it cannot be used. */
const char *lib_elf_parse(struct elf *e, unsigned char *b, size_t n)
{
	memset(e, 0, sizeof *e);
	e->b = b, e->n = n, e->eh = (const void *)b;
	e->ph = (const void *)(b + e->eh->e_phoff);
	for (int i = 0; i < e->eh->e_phnum; i++)
		if (e->ph[i].p_type == PT_DYNAMIC) {
			if (e->ph[i].p_offset % 8)
				return "misaligned dynamic segment";
			e->dyn = (void *)(b + e->ph[i].p_offset);
			e->ndyn = e->ph[i].p_filesz / sizeof(Elf64_Dyn);
		}
	for (size_t i = 0; i < e->ndyn; i++)
		if (e->dyn[i].d_tag == DT_NULL)
			e->ndyn = i;
	e->strsz = lib_dyn_val(e, DT_STRSZ, 0);
	if (va_off(e, lib_dyn_val(e, DT_STRTAB, 0), e->strsz, &e->str) || !e->strsz)
		return "no dynamic string table inside the file";
	find_dynsym(e);
	return NULL;
}

/* ------------------------------------------------------ what a file says */

static int by_name(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void read_dynamic(struct image_info *in, const struct elf *e)
{
	for (size_t i = 0; i < e->ndyn; i++) {
		const char *s = e->dyn[i].d_tag == DT_NEEDED || e->dyn[i].d_tag == DT_SONAME
					? lib_elf_str(e, e->dyn[i].d_un.d_val) : NULL;
		if (s && e->dyn[i].d_tag == DT_SONAME)
			in->soname = in->strs + (s - (const char *)e->b - e->str);
		else if (s)
			in->needed[in->nneeded++] = in->strs + (s - (const char *)e->b - e->str);
	}
	in->nodelete = !!(lib_dyn_val(e, DT_FLAGS_1, 0) & DF_1_NODELETE);
}

static void read_symbols(struct image_info *in, const struct elf *e)
{
	for (size_t i = 1; i < e->nsym; i++) {
		const Elf64_Sym *s = &e->sym[i];
		const char *name = lib_elf_str(e, s->st_name);
		int bind = ELF64_ST_BIND(s->st_info);
		if (!name || !*name ||
		    (bind != STB_GLOBAL && bind != STB_WEAK && bind != STB_GNU_UNIQUE))
			continue;
		name = in->strs + (name - (const char *)e->b - e->str);
		if (s->st_shndx == SHN_UNDEF) {
			if (!strcmp(name, "__cxa_thread_atexit_impl") ||
			    !strcmp(name, "__cxa_thread_atexit"))
				in->tls_dtors = 1;
			if (bind != STB_WEAK)
				in->undefs[in->nundefs++] = name;
		} else {
			in->unique |= bind == STB_GNU_UNIQUE;
			in->defs[in->ndefs++] = name;
		}
	}
	qsort(in->defs, in->ndefs, sizeof *in->defs, by_name);
}

static void read_segments(struct image_info *in, const struct elf *e)
{
	in->image.lo = UINTPTR_MAX;
	for (int i = 0; i < e->eh->e_phnum; i++) {
		const Elf64_Phdr *p = &e->ph[i];
		if (p->p_type != PT_LOAD)
			continue;
		if (p->p_vaddr < in->image.lo)
			in->image.lo = p->p_vaddr;
		if (p->p_vaddr + p->p_memsz > in->image.hi)
			in->image.hi = p->p_vaddr + p->p_memsz;
		if ((p->p_flags & PF_X) && in->nexec < MAX_EXEC)
			in->exec[in->nexec++] = (struct range){p->p_vaddr, p->p_vaddr + p->p_memsz};
	}
}

void lib_info_free(struct image_info *in)
{
	free(in->strs);
	free(in->needed);
	free(in->defs);
	free(in->undefs);
	memset(in, 0, sizeof *in);
}

int lib_info_read(struct image_info *in, const struct elf *e)
{
	memset(in, 0, sizeof *in);
	in->strs = malloc(e->strsz);
	in->needed = calloc(e->ndyn + 1, sizeof *in->needed);
	in->defs = calloc(e->nsym + 1, sizeof *in->defs);
	in->undefs = calloc(e->nsym + 1, sizeof *in->undefs);
	if (!in->strs || !in->needed || !in->defs || !in->undefs) {
		lib_info_free(in);
		return -1;
	}
	memcpy(in->strs, e->b + e->str, e->strsz);
	read_dynamic(in, e);
	read_symbols(in, e);
	read_segments(in, e);
	return 0;
}

int lib_info_defines(const struct image_info *in, const char *name)
{
	return bsearch(&name, in->defs, in->ndefs, sizeof *in->defs, by_name) != NULL;
}
