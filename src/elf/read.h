/* What object.c and image.c share: mapping a file, checking the ELF header
 * and section table, and reading a symbol table. Private to src/elf.
 *
 * After elf_file_open succeeds, every non-NOBITS section's data lies inside
 * the map, every sh_link is a valid section index and every section has a
 * name, so callers only check what is particular to a section's type.
 * Inactive (SHT_NULL) sections keep only their name. Neither an allocated
 * section nor a symbol defined in a section wraps around the address
 * space, so addr+size and value+size can be computed. */
#ifndef RW_ELF_READ_H
#define RW_ELF_READ_H
#include "elf/elffile.h"
#include <elf.h>

struct elf_file {
	const char *path;
	void *map;
	size_t mapsize;
	int mapped;		/* map is an mmap of path, else the caller's buffer */
	Elf64_Ehdr eh;
	struct elf_section *sections;	/* [0] is the null section, always present */
	size_t nsections;
};

/* Map path and read its header and sections. On failure nothing is left
 * to free and rw_error() says why. */
int elf_file_open(struct elf_file *e, const char *path);
/* The same for a file already in memory: data stays the caller's, and must
 * outlive e and whatever is read from it; name is used in messages. */
int elf_file_open_mem(struct elf_file *e, const char *name, const void *data, size_t size);
void elf_file_close(struct elf_file *e);
/* Check that section idx is a string table that can be indexed safely:
 * user names the section that refers to it, for the message. */
int elf_file_strtab(const struct elf_file *e, size_t idx, const char *user);
/* Read the SHT_SYMTAB or SHT_DYNSYM section idx, giving each local the
 * name of the STT_FILE symbol in force. */
int elf_file_symbols(const struct elf_file *e, size_t idx,
		   struct elf_symbol **syms, size_t *nsyms);
/* A table holding only the null symbol, for files without one. */
void elf_file_no_symbols(struct elf_symbol **syms, size_t *nsyms);

#endif
