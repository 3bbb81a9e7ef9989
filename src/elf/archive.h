/* Static archives (`ar`: .a, Rust's .rlib): which member defines a symbol,
 * and that member as an object. A patch that calls a library function the
 * running program never contained (the static linker left it out) takes
 * the member from the archives the program was linked with. */
#ifndef RW_ELF_ARCHIVE_H
#define RW_ELF_ARCHIVE_H
#include <stddef.h>
#include <stdint.h>
#include "elf/elffile.h"

struct elf_member {
	char *name;
	uint64_t off, size;	/* of the data, in the archive file */
};

struct elf_archive {
	char *path;
	void *map;
	size_t mapsize;
	struct elf_member *members;
	size_t nmembers;
	/* Global symbols the archive's index lists, sorted by name. */
	struct elf_arsym { const char *name; uint32_t member; } *syms;
	size_t nsyms;
};

/* Map path and read its member list and symbol index (GNU or BSD-less SysV
 * format; without an index, the members' own symbol tables are read). On
 * failure nothing is left to free and rw_error() says why. */
int elf_archive_open(struct elf_archive *a, const char *path);
void elf_archive_close(struct elf_archive *a);
/* The member defining name, or -1. */
long elf_archive_find(const struct elf_archive *a, const char *name);
/* Member m as an object: its bytes are copied (ELF wants alignment the
 * archive does not give); *buf holds the copy and the object's name, to
 * free after closing obj. */
int elf_archive_object(const struct elf_archive *a, size_t m, struct elf_object *obj, void **buf);

#endif
