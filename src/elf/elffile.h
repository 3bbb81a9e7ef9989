/* ELF reading for the driver: relocatable objects (the code of a patch) and
 * images (the executable and libraries the running process mapped).
 *
 * Files are mmapped read-only and never trusted: every offset, size, index
 * and string read from them is bounds-checked, and a malformed file gives an
 * error naming the file and what is wrong, never a crash. Only ELF64
 * little-endian x86-64 is accepted for now (the arch is checked here so that
 * the linker never sees a foreign object).
 *
 * File-local symbols carry their translation unit: the name of the STT_FILE
 * symbol that precedes them in .symtab. That is how a `static int count` of
 * game.c in a patch finds the running `count` of game.c and not the one of
 * hud.c. */
#ifndef RW_ELF_H
#define RW_ELF_H
#include <stddef.h>
#include <stdint.h>
#include "util.h"

struct elf_rela {
	uint64_t offset;	/* within the section the relocations apply to */
	uint32_t type;		/* R_X86_64_* */
	uint32_t sym;		/* index into the file's symbols */
	int64_t addend;
};

struct elf_section {
	const char *name;
	uint32_t type;		/* SHT_* */
	uint64_t flags;		/* SHF_* */
	uint64_t addr;		/* images: link-time address */
	uint64_t size;
	uint64_t align;		/* at least 1 */
	uint64_t entsize;
	uint32_t link, info;
	uint32_t group;		/* objects: index of the SHT_GROUP that holds it, else 0 */
	const uint8_t *data;	/* NULL for SHT_NOBITS; else size bytes */
	struct elf_rela *relas;	/* objects: the SHT_RELA section applying to this one */
	size_t nrelas;
	size_t nrelas_read;	/* of them, those of the file (arch_scan_code adds more) */
};

struct elf_symbol {
	const char *name;	/* "" when unnamed */
	const char *file;	/* locals: STT_FILE name in force ("" if none); globals: NULL */
	uint64_t value;
	uint64_t size;
	uint16_t shndx;		/* SHN_* or section index */
	uint8_t type;		/* STT_* */
	uint8_t bind;		/* STB_* */
	uint8_t visibility;	/* STV_* */
};

struct elf_object {
	const char *path;
	void *map;
	size_t mapsize;
	int mapped;		/* map is an mmap of path, else the caller's buffer */
	struct elf_section *sections;	/* indexed by section index; [0] is SHN_UNDEF */
	size_t nsections;
	struct elf_symbol *symbols;	/* indexed by symbol index; [0] is the null symbol */
	size_t nsymbols;
	const char *file;	/* name of the first STT_FILE symbol, "" if none */
	uint16_t machine;	/* EM_X86_64 or EM_AARCH64 */
	/* private: named symbols ordered by (section, value), and for each the
	 * highest value+size so far in its section, for elf_object_symbol_at */
	uint32_t *bysec;
	uint64_t *bysec_end;
	size_t nbysec;
};

/* An image is an ET_EXEC or ET_DYN file as it was linked. Symbols come from
 * .symtab when present, else .dynsym. */
struct elf_image {
	const char *path;
	void *map;
	size_t mapsize;
	int mapped;		/* map is an mmap of path, else the caller's buffer */
	uint16_t e_type;		/* ET_EXEC or ET_DYN */
	uint16_t machine;	/* EM_X86_64 or EM_AARCH64 */
	struct elf_section *sections;
	size_t nsections;
	struct elf_symbol *symbols;
	size_t nsymbols;
	uint8_t build_id[64];
	size_t build_id_len;		/* 0 when the file has no NT_GNU_BUILD_ID */
	uint64_t tls_align;		/* PT_TLS p_align, 0 when no PT_TLS */
	uint64_t tls_memsz;
	/* private: name index and address order */
	struct rw_index names;		/* symbol indexes by name */
	uint32_t *byaddr;		/* indexes of defined symbols with a section, by value */
	size_t nbyaddr;
	uint32_t *suffixed;		/* see elf_image_suffixed */
	size_t nsuffixed;
	int suffixed_read;
};

int elf_object_open(struct elf_object *obj, const char *path);
/* The same for an object already in memory (an archive member, a test's
 * bytes): data stays the caller's and must outlive obj, which points into
 * it; close does not free it. name is used as the path in messages. */
int elf_object_open_mem(struct elf_object *obj, const char *name, const void *data, size_t size);
void elf_object_close(struct elf_object *obj);
/* The named symbol (FUNC, OBJECT, TLS or NOTYPE with a name, not FILE or
 * SECTION) of section shndx whose [value, value+size) covers offset, or
 * failing that one whose value equals offset; NULL when none. GNU as turns
 * references to file-local symbols into section+offset: this maps them back. */
const struct elf_symbol *elf_object_symbol_at(const struct elf_object *obj,
					    uint16_t shndx, uint64_t offset);
/* The named symbols (as above) of section shndx, by value: *list points at
 * their indexes; returns how many. */
size_t elf_object_section_symbols(const struct elf_object *obj, uint16_t shndx, const uint32_t **list);

/* Is the section constant data: read-only, or relocated once at start-up
 * and read-only after (.data.rel.ro*: tables of pointers, vtables, Rust's
 * statics without interior mutability)? Constants are code, not state. */
int elf_section_is_const(const struct elf_section *s);

/* The bytes of section s: its data, or, when it is compressed (-gz:
 * SHF_COMPRESSED, zlib), its data inflated into *owned (the caller frees
 * it). NULL when there is nothing to read; *size is their number. */
const uint8_t *elf_section_bytes(const struct elf_section *s, uint8_t **owned, size_t *size);

int elf_image_open(struct elf_image *img, const char *path);
/* As elf_object_open_mem, for an image. */
int elf_image_open_mem(struct elf_image *img, const char *name, const void *data, size_t size);
void elf_image_close(struct elf_image *img);
/* Defined symbol named name. file == NULL: a global (or weak) symbol; if no
 * global has that name, a hidden symbol the link made local is accepted when
 * exactly one local of any file has the name. file != NULL: a local of that
 * translation unit (compared by basename). NULL when none. */
const struct elf_symbol *elf_image_find(const struct elf_image *img,
				      const char *name, const char *file);
/* How many locals named name the units with file's basename define: more
 * than one when two files of the program share a name (a/util.c, b/util.c). */
size_t elf_image_count_locals(const struct elf_image *img, const char *name, const char *file);
/* The lowest value of a defined symbol (any type but FILE/SECTION) in the
 * same section strictly above addr; else the end of the section holding
 * addr; 0 when addr is in no section. For "is there room for a jump". */
uint64_t elf_image_next_boundary(const struct elf_image *img, uint64_t addr);
/* The end of the code or data before addr in its section (the furthest
 * end of the symbols below it, or the section's start): the bytes from
 * there to addr are padding. addr itself when a symbol of unknown size
 * precedes it or addr is in no section. */
uint64_t elf_image_prev_end(const struct elf_image *img, uint64_t addr);
/* The symbols whose names carry a ".llvm.<digits>" suffix (rw_name_len):
 * their indexes, *n of them. Found at the first call and kept with the
 * image, which a session keeps across patches. */
const uint32_t *elf_image_suffixed(struct elf_image *img, size_t *n);

#endif
