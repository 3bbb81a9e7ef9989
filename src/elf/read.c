#include "elf/read.h"
#include "util.h"
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static int map_file(struct elf_file *e, const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return rw_fail("%s: cannot open: %s", path, strerror(errno));
	struct stat st;
	if (fstat(fd, &st) < 0) {
		int err = errno;
		close(fd);
		return rw_fail("%s: cannot stat: %s", path, strerror(err));
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return rw_fail("%s: not a regular file", path);
	}
	if (st.st_size == 0) {
		close(fd);
		return rw_fail("%s: empty file, not an ELF file", path);
	}
	void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	int err = errno;
	close(fd);
	if (p == MAP_FAILED)
		return rw_fail("%s: cannot map: %s", path, strerror(err));
	e->map = p;
	e->mapsize = (size_t)st.st_size;
	return 0;
}

/* [off, off+size) lies inside the map, without overflowing. */
static int in_file(const struct elf_file *e, uint64_t off, uint64_t size)
{
	return off <= e->mapsize && size <= e->mapsize - off;
}

static const char *machine_name(unsigned m)
{
	switch (m) {
	case EM_386: return "i386";
	case EM_ARM: return "ARM";
	case EM_AARCH64: return "AArch64";
	case EM_RISCV: return "RISC-V";
	case EM_PPC: return "PowerPC";
	case EM_PPC64: return "PowerPC64";
	case EM_S390: return "S/390";
	case EM_MIPS: return "MIPS";
	case EM_SPARCV9: return "SPARC V9";
	case EM_IA_64: return "IA-64";
	case 258: return "LoongArch";	/* EM_LOONGARCH, newer than some <elf.h> */
	}
	return "unknown";
}

static int check_header(struct elf_file *e)
{
	const uint8_t *p = e->map;
	if (e->mapsize < SELFMAG || memcmp(p, ELFMAG, SELFMAG))
		return rw_fail("%s: not an ELF file", e->path);
	if (e->mapsize < EI_NIDENT)
		return rw_fail("%s: truncated ELF header (%zu bytes)", e->path, e->mapsize);
	if (p[EI_CLASS] != ELFCLASS64)
		return rw_fail("%s: is a %s ELF file, only 64-bit x86-64 and aarch64 are supported",
			       e->path, p[EI_CLASS] == ELFCLASS32 ? "32-bit" : "bad-class");
	if (p[EI_DATA] != ELFDATA2LSB)
		return rw_fail("%s: is not a little-endian ELF file", e->path);
	if (p[EI_VERSION] != EV_CURRENT)
		return rw_fail("%s: unknown ELF version %u", e->path, p[EI_VERSION]);
	if (e->mapsize < sizeof e->eh)
		return rw_fail("%s: truncated ELF header (%zu bytes)", e->path, e->mapsize);
	memcpy(&e->eh, p, sizeof e->eh);
	if (e->eh.e_machine != EM_X86_64 && e->eh.e_machine != EM_AARCH64)
		return rw_fail("%s: is an ELF %s for machine %u (%s), not x86-64 or aarch64",
			       e->path, e->eh.e_type == ET_REL ? "object" : "file",
			       e->eh.e_machine, machine_name(e->eh.e_machine));
	if (e->eh.e_ehsize < sizeof e->eh)
		return rw_fail("%s: ELF header size %u is too small", e->path, e->eh.e_ehsize);
	return 0;
}

/* The section count and the section name table index, following the
 * extended numbering kept in section 0 when the header fields overflow. */
static int section_count(struct elf_file *e, size_t *n, size_t *strndx)
{
	const Elf64_Ehdr *eh = &e->eh;
	if (eh->e_shentsize != sizeof(Elf64_Shdr))
		return rw_fail("%s: section header size is %u, expected %zu",
			       e->path, eh->e_shentsize, sizeof(Elf64_Shdr));
	if (!in_file(e, eh->e_shoff, sizeof(Elf64_Shdr)))
		return rw_fail("%s: section header table at offset %#llx is outside the file (%zu bytes); truncated or corrupt",
			       e->path, (unsigned long long)eh->e_shoff, e->mapsize);
	Elf64_Shdr sh0;
	memcpy(&sh0, (const uint8_t *)e->map + eh->e_shoff, sizeof sh0);
	uint64_t count = eh->e_shnum ? eh->e_shnum : sh0.sh_size;
	if (count == 0)
		return rw_fail("%s: section header table is empty", e->path);
	/* elf_symbol.shndx is 16 bits and above this are the reserved indexes. */
	if (count >= SHN_LORESERVE)
		return rw_fail("%s: has %llu sections, more than the %u supported",
			       e->path, (unsigned long long)count, SHN_LORESERVE - 1);
	if (!in_file(e, eh->e_shoff, count * sizeof(Elf64_Shdr)))
		return rw_fail("%s: section header table (%llu entries at %#llx) runs past the end of the file (%zu bytes); truncated or corrupt",
			       e->path, (unsigned long long)count,
			       (unsigned long long)eh->e_shoff, e->mapsize);
	*n = count;
	*strndx = eh->e_shstrndx == SHN_XINDEX ? sh0.sh_link : eh->e_shstrndx;
	if (*strndx >= count)
		return rw_fail("%s: section name table index %zu is not below the section count %zu",
			       e->path, *strndx, *n);
	return 0;
}

static void copy_header(struct elf_section *s, const Elf64_Shdr *sh)
{
	s->type = sh->sh_type;
	s->flags = sh->sh_flags;
	s->addr = sh->sh_addr;
	s->size = sh->sh_size;
	s->align = sh->sh_addralign ? sh->sh_addralign : 1;
	s->entsize = sh->sh_entsize;
	s->link = sh->sh_link;
	s->info = sh->sh_info;
}

/* Bounds and links of one section; its name is already set. */
static int check_section(struct elf_file *e, size_t i, uint64_t off)
{
	struct elf_section *s = &e->sections[i];
	if (s->type != SHT_NOBITS) {
		if (!in_file(e, off, s->size))
			return rw_fail("%s: section %zu (%s) at offset %#llx size %#llx runs past the end of the file (%zu bytes); truncated or corrupt",
				       e->path, i, s->name, (unsigned long long)off,
				       (unsigned long long)s->size, e->mapsize);
		s->data = (const uint8_t *)e->map + off;
	}
	if (s->align & (s->align - 1))
		return rw_fail("%s: section %s has alignment %llu, not a power of two",
			       e->path, s->name, (unsigned long long)s->align);
	/* Address arithmetic on sections (is addr inside?) must not wrap. */
	if ((s->flags & SHF_ALLOC) && s->addr + s->size < s->addr)
		return rw_fail("%s: section %s at %#llx size %#llx runs past the end of the address space",
			       e->path, s->name, (unsigned long long)s->addr,
			       (unsigned long long)s->size);
	if (s->link >= e->nsections)
		return rw_fail("%s: section %s links to section %u, but there are only %zu",
			       e->path, s->name, s->link, e->nsections);
	if ((s->flags & SHF_INFO_LINK) && s->info >= e->nsections)
		return rw_fail("%s: section %s refers to section %u, but there are only %zu",
			       e->path, s->name, s->info, e->nsections);
	return 0;
}

static int read_sections(struct elf_file *e)
{
	const Elf64_Ehdr *eh = &e->eh;
	/* A file may have no section table at all (e.g. sstripped): then it
	 * has just the null section, and no symbols. */
	if (eh->e_shoff == 0) {
		if (eh->e_shnum)
			return rw_fail("%s: %u section headers at offset 0", e->path, eh->e_shnum);
		e->sections = rw_calloc(1, sizeof *e->sections);
		e->sections[0].name = "";
		e->sections[0].align = 1;
		e->nsections = 1;
		return 0;
	}
	size_t n = 0, strndx = 0;
	if (section_count(e, &n, &strndx))
		return -1;
	e->sections = rw_calloc(n, sizeof *e->sections);
	e->nsections = n;
	uint64_t *offs = rw_calloc(n, sizeof *offs);
	uint32_t *names = rw_calloc(n, sizeof *names);
	const uint8_t *tab = (const uint8_t *)e->map + eh->e_shoff;
	/* Section 0 holds extended counts, not a section: keep it null. */
	e->sections[0].name = "";
	e->sections[0].align = 1;
	for (size_t i = 1; i < n; i++) {
		Elf64_Shdr sh;
		memcpy(&sh, tab + i * sizeof sh, sizeof sh);
		copy_header(&e->sections[i], &sh);
		offs[i] = sh.sh_offset;
		names[i] = sh.sh_name;
		e->sections[i].name = "";
	}
	int rc = 0;
	const struct elf_section *str = strndx ? &e->sections[strndx] : NULL;
	/* The name table first, so the other messages can name sections. */
	if (str) {
		e->sections[strndx].name = ".shstrtab";
		rc = check_section(e, strndx, offs[strndx]);
		if (!rc)
			rc = elf_file_strtab(e, strndx, "the ELF header");
	}
	for (size_t i = 1; !rc && i < n; i++) {
		if (str && names[i] >= str->size) {
			rc = rw_fail("%s: section %zu has name offset %u outside the section name table (%llu bytes)",
				     e->path, i, names[i], (unsigned long long)str->size);
			break;
		}
		e->sections[i].name = str ? (const char *)str->data + names[i] : "";
		/* Inactive sections have undefined contents and header fields:
		 * keep only the name, so that nothing places or follows them. */
		if (e->sections[i].type == SHT_NULL) {
			const char *name = e->sections[i].name;
			e->sections[i] = (struct elf_section){.name = name, .align = 1};
			continue;
		}
		rc = check_section(e, i, offs[i]);
	}
	free(offs);
	free(names);
	return rc;
}

static int read_elf(struct elf_file *e)
{
	if (check_header(e) || read_sections(e)) {
		elf_file_close(e);
		return -1;
	}
	return 0;
}

int elf_file_open(struct elf_file *e, const char *path)
{
	memset(e, 0, sizeof *e);
	e->path = path;
	if (map_file(e, path))
		return -1;
	e->mapped = 1;
	return read_elf(e);
}

int elf_file_open_mem(struct elf_file *e, const char *name, const void *data, size_t size)
{
	memset(e, 0, sizeof *e);
	e->path = name;
	if (size == 0)
		return rw_fail("%s: empty file, not an ELF file", name);
	/* Never written: the map is only ever read through const pointers. */
	e->map = (void *)data;
	e->mapsize = size;
	return read_elf(e);
}

void elf_file_close(struct elf_file *e)
{
	if (e->map && e->mapped)
		munmap(e->map, e->mapsize);
	free(e->sections);
	memset(e, 0, sizeof *e);
}

/* A table whose last byte is NUL makes every in-bounds offset a
 * terminated string, so each lookup needs only the offset check. */
int elf_file_strtab(const struct elf_file *e, size_t idx, const char *user)
{
	if (idx == 0 || idx >= e->nsections)
		return rw_fail("%s: %s refers to section %zu as its string table, which does not exist",
			       e->path, user, idx);
	const struct elf_section *s = &e->sections[idx];
	if (s->type != SHT_STRTAB)
		return rw_fail("%s: %s refers to section %s as its string table, but its type is %u",
			       e->path, user, s->name, s->type);
	if (s->size == 0 || s->data[s->size - 1] != '\0')
		return rw_fail("%s: string table %s does not end with a NUL", e->path, s->name);
	return 0;
}

void elf_file_no_symbols(struct elf_symbol **syms, size_t *nsyms)
{
	*syms = rw_calloc(1, sizeof **syms);
	(*syms)[0].name = "";
	(*syms)[0].file = "";
	*nsyms = 1;
}

static int check_shndx(const struct elf_file *e, const struct elf_section *tab,
		       size_t i, const char *name, unsigned shndx)
{
	if (shndx == SHN_XINDEX)
		return rw_fail("%s: symbol %zu (%s) in %s uses an extended section index (SHN_XINDEX), which is not supported",
			       e->path, i, name, tab->name);
	if (shndx >= SHN_LORESERVE) {
		if (shndx == SHN_ABS || shndx == SHN_COMMON)
			return 0;
		return rw_fail("%s: symbol %zu (%s) in %s has unsupported special section index %#x",
			       e->path, i, name, tab->name, shndx);
	}
	if (shndx >= e->nsections)
		return rw_fail("%s: symbol %zu (%s) in %s has section index %u, but there are only %zu sections",
			       e->path, i, name, tab->name, shndx, e->nsections);
	return 0;
}

/* A symbol in a section covers [value, value+size): callers compute the
 * end, so it must not wrap. */
static int check_extent(const struct elf_file *e, const struct elf_section *tab,
			size_t i, const char *name, const Elf64_Sym *es)
{
	if (es->st_shndx == SHN_UNDEF || es->st_shndx >= SHN_LORESERVE ||
	    es->st_value + es->st_size >= es->st_value)
		return 0;
	return rw_fail("%s: symbol %zu (%s) in %s at %#llx size %#llx runs past the end of the address space",
		       e->path, i, name, tab->name, (unsigned long long)es->st_value,
		       (unsigned long long)es->st_size);
}

/* aarch64's mapping symbols ($x before code, $d before data in code, and
 * $x.N, $d.N) mark what bytes are, for disassemblers: they name nothing
 * and are read as unnamed. */
static int is_mapping_symbol(const struct elf_file *e, const char *name, const Elf64_Sym *es)
{
	return e->eh.e_machine == EM_AARCH64 && ELF64_ST_BIND(es->st_info) == STB_LOCAL &&
	       (ELF64_ST_TYPE(es->st_info) == STT_NOTYPE || ELF64_ST_TYPE(es->st_info) == STT_TLS) &&
	       name[0] == '$' &&
	       (name[1] == 'x' || name[1] == 'd') && (!name[2] || name[2] == '.');
}

int elf_file_symbols(const struct elf_file *e, size_t idx,
		   struct elf_symbol **syms, size_t *nsyms)
{
	const struct elf_section *tab = &e->sections[idx];
	if (tab->entsize != sizeof(Elf64_Sym))
		return rw_fail("%s: symbol table %s has entry size %llu, expected %zu",
			       e->path, tab->name, (unsigned long long)tab->entsize, sizeof(Elf64_Sym));
	if (tab->size % sizeof(Elf64_Sym))
		return rw_fail("%s: symbol table %s size %llu is not a multiple of %zu",
			       e->path, tab->name, (unsigned long long)tab->size, sizeof(Elf64_Sym));
	size_t n = tab->size / sizeof(Elf64_Sym);
	if (n == 0) {
		elf_file_no_symbols(syms, nsyms);
		return 0;
	}
	/* Indexes travel as uint32_t (relocations, the name hash's index+1). */
	if (n >= UINT32_MAX)
		return rw_fail("%s: symbol table %s has too many symbols (%zu)", e->path, tab->name, n);
	if (tab->info > n)
		return rw_fail("%s: symbol table %s says its first global is %u, but it has %zu symbols",
			       e->path, tab->name, tab->info, n);
	if (elf_file_strtab(e, tab->link, tab->name))
		return -1;
	const struct elf_section *str = &e->sections[tab->link];
	struct elf_symbol *out = rw_malloc(n * sizeof *out);
	const char *file = "";
	for (size_t i = 0; i < n; i++) {
		Elf64_Sym es;
		memcpy(&es, tab->data + i * sizeof es, sizeof es);
		if (es.st_name >= str->size) {
			free(out);
			return rw_fail("%s: symbol %zu in %s has name offset %u outside its string table %s (%llu bytes)",
				       e->path, i, tab->name, es.st_name, str->name,
				       (unsigned long long)str->size);
		}
		const char *name = (const char *)str->data + es.st_name;
		if (check_shndx(e, tab, i, name, es.st_shndx) || check_extent(e, tab, i, name, &es)) {
			free(out);
			return -1;
		}
		struct elf_symbol *s = &out[i];
		s->name = is_mapping_symbol(e, name, &es) ? "" : name;
		s->value = es.st_value;
		s->size = es.st_size;
		s->shndx = es.st_shndx;
		s->type = ELF64_ST_TYPE(es.st_info);
		s->bind = ELF64_ST_BIND(es.st_info);
		s->visibility = ELF64_ST_VISIBILITY(es.st_other);
		/* The linker writes each input's locals after its STT_FILE
		 * (and an empty one before its own), so the last one seen is
		 * the translation unit of the locals that follow. */
		if (s->type == STT_FILE)
			file = name;
		s->file = s->bind == STB_LOCAL ? file : NULL;
	}
	*syms = out;
	*nsyms = n;
	return 0;
}
