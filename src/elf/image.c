/* Images: the executable and libraries a process runs. What the linker
 * needs from them is where things are: symbols by name (with their
 * translation unit for statics), symbols by address, the build-id that
 * proves the file is the one mapped, and the TLS block layout. */
#include "elf/read.h"
#include "util.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static uint64_t align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

/* Walk the notes in [p, p+size) for the GNU build-id. The name and the
 * descriptor each start at a multiple of align from the start (4, or 8 in
 * 8-aligned note segments such as .note.gnu.property). */
static int read_notes(struct elf_image *img, const uint8_t *p, uint64_t size,
		      uint64_t align, const char *where)
{
	uint64_t off = 0;
	while (!img->build_id_len && size - off >= sizeof(Elf64_Nhdr)) {
		Elf64_Nhdr nh;
		memcpy(&nh, p + off, sizeof nh);
		uint64_t name = off + sizeof nh;
		uint64_t desc = align_up(name + nh.n_namesz, align);
		if (desc > size || nh.n_descsz > size - desc)
			return rw_fail("%s: note at offset %llu of %s runs past its end",
				       img->path, (unsigned long long)off, where);
		if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 &&
		    !memcmp(p + name, "GNU", 4)) {
			size_t n = nh.n_descsz < sizeof img->build_id ? nh.n_descsz : sizeof img->build_id;
			memcpy(img->build_id, p + desc, n);
			img->build_id_len = n;
		}
		off = align_up(desc + nh.n_descsz, align);
		if (off > size)
			break;
	}
	return 0;
}

static uint64_t note_align(uint64_t a)
{
	return a == 8 ? 8 : 4;
}

static int read_segment(struct elf_image *img, const Elf64_Phdr *ph, size_t i)
{
	if (ph->p_offset > img->mapsize || ph->p_filesz > img->mapsize - ph->p_offset)
		return rw_fail("%s: segment %zu at offset %#llx size %#llx runs past the end of the file (%zu bytes); truncated or corrupt",
			       img->path, i, (unsigned long long)ph->p_offset,
			       (unsigned long long)ph->p_filesz, img->mapsize);
	if (ph->p_align & (ph->p_align - 1))
		return rw_fail("%s: segment %zu has alignment %llu, not a power of two",
			       img->path, i, (unsigned long long)ph->p_align);
	if (ph->p_type == PT_TLS) {
		img->tls_align = ph->p_align ? ph->p_align : 1;
		img->tls_memsz = ph->p_memsz;
	}
	if (ph->p_type == PT_NOTE) {
		char where[32];
		snprintf(where, sizeof where, "segment %zu", i);
		return read_notes(img, (const uint8_t *)img->map + ph->p_offset,
				  ph->p_filesz, note_align(ph->p_align), where);
	}
	return 0;
}

static int read_segments(struct elf_image *img, const Elf64_Ehdr *eh)
{
	if (eh->e_phnum == 0)
		return 0;
	if (eh->e_phentsize != sizeof(Elf64_Phdr))
		return rw_fail("%s: program header size is %u, expected %zu",
			       img->path, eh->e_phentsize, sizeof(Elf64_Phdr));
	if (eh->e_phnum == PN_XNUM)
		return rw_fail("%s: too many program headers", img->path);
	uint64_t size = (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr);
	if (eh->e_phoff > img->mapsize || size > img->mapsize - eh->e_phoff)
		return rw_fail("%s: program headers (%u at %#llx) run past the end of the file (%zu bytes); truncated or corrupt",
			       img->path, eh->e_phnum, (unsigned long long)eh->e_phoff, img->mapsize);
	for (size_t i = 0; i < eh->e_phnum; i++) {
		Elf64_Phdr ph;
		memcpy(&ph, (const uint8_t *)img->map + eh->e_phoff + i * sizeof ph, sizeof ph);
		if (read_segment(img, &ph, i))
			return -1;
	}
	return 0;
}

/* Segments first (what the loader maps); a build-id only in a note
 * section is found too. */
static int read_build_id_sections(struct elf_image *img)
{
	for (size_t i = 1; !img->build_id_len && i < img->nsections; i++) {
		const struct elf_section *s = &img->sections[i];
		if (s->type == SHT_NOTE &&
		    read_notes(img, s->data, s->size, note_align(s->align), s->name))
			return -1;
	}
	return 0;
}

/* .symtab when present (it has the statics), else .dynsym. */
static int find_symtab(const struct elf_file *e, uint32_t type, size_t *idx)
{
	*idx = 0;
	for (size_t i = 1; i < e->nsections; i++) {
		if (e->sections[i].type != type)
			continue;
		if (*idx)
			return rw_fail("%s: has two symbol tables (%s and %s)", e->path,
				       e->sections[*idx].name, e->sections[i].name);
		*idx = i;
	}
	return 0;
}

static int read_symbols(struct elf_image *img, const struct elf_file *e)
{
	size_t idx;
	if (find_symtab(e, SHT_SYMTAB, &idx))
		return -1;
	if (!idx && find_symtab(e, SHT_DYNSYM, &idx))
		return -1;
	if (!idx) {
		elf_file_no_symbols(&img->symbols, &img->nsymbols);
		return 0;
	}
	return elf_file_symbols(e, idx, &img->symbols, &img->nsymbols);
}

static int is_indexed(const struct elf_symbol *s)
{
	return s->name[0] && s->shndx != SHN_UNDEF && s->type != STT_SECTION &&
	       s->type != STT_FILE;
}

struct entry {
	uint32_t hash, sym;
};

/* Names may repeat (statics of several files), so each symbol gets its own
 * slot and a lookup walks the probe run comparing names. ld writes
 * copy-relocated and versioned definitions as "name@VERSION" in .symtab;
 * they are also filed under the bare name. */
static size_t hash_names(const struct elf_image *img, struct entry *out)
{
	size_t n = 0;
	for (size_t i = 0; i < img->nsymbols; i++) {
		const struct elf_symbol *s = &img->symbols[i];
		if (!is_indexed(s))
			continue;
		size_t len = strlen(s->name);
		out[n++] = (struct entry){ rw_hash_n(s->name, len), (uint32_t)i };
		const char *at = memchr(s->name + 1, '@', len - 1);
		if (at)
			out[n++] = (struct entry){ rw_hash_n(s->name, (size_t)(at - s->name)), (uint32_t)i };
	}
	return n;
}

/* With a million names the table is far bigger than the cache and each
 * insertion would wait for memory: the hashes are computed first so the
 * slot of an entry a few ahead can be prefetched. */
static void index_names(struct elf_image *img)
{
	struct entry *e = rw_malloc(2 * img->nsymbols * sizeof *e);
	size_t n = hash_names(img, e);
	rw_index_init(&img->names, n);
	for (size_t k = 0; k < n; k++) {
		if (k + 16 < n)
			rw_index_prefetch(&img->names, e[k + 16].hash);
		rw_index_add(&img->names, e[k].hash, e[k].sym);
	}
	free(e);
}

/* Symbols whose value is an address in the file's layout: TLS symbols
 * hold offsets in the TLS block, absolute ones are not in a section. */
static int has_address(const struct elf_image *img, const struct elf_symbol *s)
{
	return s->shndx != SHN_UNDEF && s->shndx < img->nsections &&
	       (img->sections[s->shndx].flags & SHF_ALLOC) && s->type != STT_SECTION &&
	       s->type != STT_FILE && s->type != STT_TLS;
}

struct key {
	uint64_t value;
	uint32_t sym;
};

/* LSD radix sort on value, a byte at a time, skipping the bytes all keys
 * share (addresses of one file differ only in their low bytes): several
 * times faster than qsort on a million symbols. Stable, so symbols at
 * the same address stay in symbol table order. */
static void sort_keys(struct key *keys, size_t n)
{
	struct key *tmp = rw_malloc(n * sizeof *tmp), *src = keys, *dst = tmp;
	for (int shift = 0; n > 1 && shift < 64; shift += 8) {
		size_t count[256] = {0};
		for (size_t i = 0; i < n; i++)
			count[(src[i].value >> shift) & 0xff]++;
		if (count[(src[0].value >> shift) & 0xff] == n)
			continue;
		size_t pos = 0;
		for (int d = 0; d < 256; d++) {
			size_t c = count[d];
			count[d] = pos;
			pos += c;
		}
		for (size_t i = 0; i < n; i++)
			dst[count[(src[i].value >> shift) & 0xff]++] = src[i];
		struct key *t = src;
		src = dst;
		dst = t;
	}
	if (src != keys)
		memcpy(keys, src, n * sizeof *keys);
	free(tmp);
}

static void index_addrs(struct elf_image *img)
{
	struct key *keys = rw_malloc(img->nsymbols * sizeof *keys);
	size_t n = 0;
	for (size_t i = 0; i < img->nsymbols; i++) {
		if (has_address(img, &img->symbols[i]))
			keys[n++] = (struct key){ img->symbols[i].value, (uint32_t)i };
	}
	sort_keys(keys, n);
	img->byaddr = rw_malloc(n * sizeof *img->byaddr);
	img->nbyaddr = n;
	for (size_t i = 0; i < n; i++)
		img->byaddr[i] = keys[i].sym;
	free(keys);
}

/* Takes over what e holds, whether the image is read or not. */
static int read_image(struct elf_image *img, const struct elf_file *e)
{
	img->path = e->path;
	img->map = e->map;
	img->mapsize = e->mapsize;
	img->mapped = e->mapped;
	img->e_type = e->eh.e_type;
	img->machine = e->eh.e_machine;
	img->sections = e->sections;
	img->nsections = e->nsections;
	int rc = 0;
	if (e->eh.e_type != ET_EXEC && e->eh.e_type != ET_DYN)
		rc = rw_fail("%s: not an executable or shared library (ELF type %u)",
			     e->path, e->eh.e_type);
	else if (read_segments(img, &e->eh) || read_build_id_sections(img) ||
		 read_symbols(img, e))
		rc = -1;
	if (rc) {
		elf_image_close(img);
		return -1;
	}
	index_names(img);
	index_addrs(img);
	return 0;
}

int elf_image_open(struct elf_image *img, const char *path)
{
	memset(img, 0, sizeof *img);
	struct elf_file e;
	if (elf_file_open(&e, path))
		return -1;
	return read_image(img, &e);
}

int elf_image_open_mem(struct elf_image *img, const char *name, const void *data, size_t size)
{
	memset(img, 0, sizeof *img);
	struct elf_file e;
	if (elf_file_open_mem(&e, name, data, size))
		return -1;
	return read_image(img, &e);
}

void elf_image_close(struct elf_image *img)
{
	if (img->map && img->mapped)
		munmap(img->map, img->mapsize);
	free(img->sections);
	free(img->symbols);
	rw_index_free(&img->names);
	free(img->byaddr);
	free(img->suffixed);
	memset(img, 0, sizeof *img);
}

/* How well a symbol's name matches the key: 3 exactly, 2 as the default
 * version "key@@V", 1 as another version "key@V", 0 not at all. */
static int name_match(const char *name, const char *key, size_t len)
{
	if (strncmp(name, key, len))
		return 0;
	if (name[len] == '\0')
		return 3;
	if (name[len] != '@')
		return 0;
	return name[len + 1] == '@' ? 2 : 1;
}

static int bind_rank(const struct elf_symbol *s)
{
	if (s->bind == STB_GLOBAL || s->bind == STB_GNU_UNIQUE)
		return 2;
	return s->bind == STB_WEAK;
}

const struct elf_symbol *elf_image_find(const struct elf_image *img,
				      const char *name, const char *file)
{
	if (!name[0])
		return NULL;
	size_t len = strlen(name), at;
	const char *base = file ? rw_basename(file) : NULL;
	const struct elf_symbol *best = NULL, *local = NULL;
	int bestrank = 0, ambiguous = 0;
	/* The probe run may hold a symbol twice (under its full and bare
	 * names) and in any order: compare by rank, then by index. */
	for (uint32_t i = rw_index_first(&img->names, rw_hash_n(name, len), &at); i != RW_INDEX_END;
	     i = rw_index_next(&img->names, &at)) {
		const struct elf_symbol *s = &img->symbols[i];
		int m = name_match(s->name, name, len);
		if (!m)
			continue;
		if (s->bind == STB_LOCAL) {
			if (file && s->file && !strcmp(rw_basename(s->file), base)) {
				if (!best || s < best)
					best = s;
			} else if (!file) {
				if (local && local != s)
					ambiguous = 1;
				local = s;
			}
			continue;
		}
		if (file)
			continue;
		int r = bind_rank(s) * 4 + m;
		if (r > bestrank || (r == bestrank && s < best)) {
			best = s;
			bestrank = r;
		}
	}
	/* A hidden symbol becomes local when linked into a shared library
	 * (and always with lld or gold), under whichever STT_FILE comes
	 * before it: accept it when the name is not ambiguous. */
	if (!best && !file && !ambiguous)
		return local;
	return best;
}

size_t elf_image_count_locals(const struct elf_image *img, const char *name, const char *file)
{
	if (!name[0])
		return 0;
	size_t len = strlen(name), n = 0, at;
	const char *base = rw_basename(file);
	const struct elf_symbol *seen[2] = {NULL, NULL};
	for (uint32_t i = rw_index_first(&img->names, rw_hash_n(name, len), &at); i != RW_INDEX_END;
	     i = rw_index_next(&img->names, &at)) {
		const struct elf_symbol *s = &img->symbols[i];
		if (s->bind != STB_LOCAL || !name_match(s->name, name, len) || !s->file ||
		    strcmp(rw_basename(s->file), base) || s == seen[0] || s == seen[1])
			continue;
		if (n < 2)
			seen[n] = s;
		n++;
	}
	return n;
}

/* The allocated section holding addr. .tbss takes no address space (its
 * addresses are the TLS template's, overlapping what follows). */
static const struct elf_section *section_at(const struct elf_image *img, uint64_t addr)
{
	for (size_t i = 1; i < img->nsections; i++) {
		const struct elf_section *s = &img->sections[i];
		if (!(s->flags & SHF_ALLOC) || (s->type == SHT_NOBITS && (s->flags & SHF_TLS)))
			continue;
		if (addr - s->addr < s->size)
			return s;
	}
	return NULL;
}

uint64_t elf_image_next_boundary(const struct elf_image *img, uint64_t addr)
{
	const struct elf_section *s = section_at(img, addr);
	if (!s)
		return 0;
	uint64_t end = s->addr + s->size;
	size_t lo = 0, hi = img->nbyaddr;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (img->symbols[img->byaddr[mid]].value <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	/* Sections do not overlap, so a symbol valued below the end is in
	 * this one whatever its shndx says (ld puts __bss_start and friends
	 * in a neighbouring section). */
	if (lo < img->nbyaddr && img->symbols[img->byaddr[lo]].value < end)
		return img->symbols[img->byaddr[lo]].value;
	return end;
}

uint64_t elf_image_prev_end(const struct elf_image *img, uint64_t addr)
{
	const struct elf_section *s = section_at(img, addr);
	if (!s)
		return addr;
	size_t lo = 0, hi = img->nbyaddr;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (img->symbols[img->byaddr[mid]].value < addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	/* Symbols before addr in this section: the furthest end wins; one of
	 * unknown size (0) may cover anything up to addr. */
	uint64_t end = s->addr;
	for (size_t i = lo; i-- > 0;) {
		const struct elf_symbol *p = &img->symbols[img->byaddr[i]];
		if (p->value < s->addr)
			break;
		if (!p->size)
			return addr;
		if (p->value + p->size > end)
			end = p->value + p->size;
		if (addr - p->value > 4096)
			break;
	}
	return end < addr ? end : addr;
}

const uint32_t *elf_image_suffixed(struct elf_image *img, size_t *n)
{
	if (!img->suffixed_read) {
		size_t cap = 0;
		img->suffixed_read = 1;
		for (size_t i = 1; i < img->nsymbols; i++) {
			const char *name = img->symbols[i].name;
			if (!name[0] || rw_name_len(name) == strlen(name))
				continue;
			img->suffixed = rw_grow(img->suffixed, &cap, img->nsuffixed, sizeof *img->suffixed);
			img->suffixed[img->nsuffixed++] = (uint32_t)i;
		}
	}
	*n = img->nsuffixed;
	return img->suffixed;
}
