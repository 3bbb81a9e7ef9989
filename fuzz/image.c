/* Fuzz target: the image reader (src/elf/image.c), which reads the
 * executable and libraries of the running program: segments, build-id
 * notes, symbols and the indexes built over them. Opened from memory, so
 * that ASan sees any read past the input. An accepted image is checked
 * against the reader's promises and queried as the resolver and the
 * redirection do: each symbol by name (global, and local with its file),
 * and the boundaries around each symbol's address. */
#include "fuzz.h"
#include "elf_check.h"
#include "util.h"
#include <elf.h>
#include <string.h>

static void img_check(const struct elf_image *m)
{
	FUZZ_CHECK(m->path && m->map && !m->mapped);
	FUZZ_CHECK(m->e_type == ET_EXEC || m->e_type == ET_DYN);
	elf_check_sections(m->sections, m->nsections, m->map, m->mapsize);
	elf_check_symbols(m->symbols, m->nsymbols, m->nsections, m->map, m->mapsize);
	FUZZ_CHECK(m->build_id_len <= sizeof m->build_id);
	FUZZ_CHECK(!m->tls_align || !(m->tls_align & (m->tls_align - 1)));
	FUZZ_CHECK(m->names.slots && m->names.mask >= 15 && !((m->names.mask + 1) & m->names.mask));
	for (size_t i = 0; i <= m->names.mask; i++)
		FUZZ_CHECK(m->names.slots[i] <= m->nsymbols);
	FUZZ_CHECK(m->nbyaddr <= m->nsymbols);
	for (size_t i = 0; i < m->nbyaddr; i++) {
		FUZZ_CHECK(m->byaddr[i] < m->nsymbols);
		FUZZ_CHECK(!i || m->symbols[m->byaddr[i - 1]].value <= m->symbols[m->byaddr[i]].value);
	}
}

/* A symbol elf_image_find may answer for name: its own name, or a version
 * of it ("name@V", "name@@V"). */
static int img_named(const struct elf_symbol *s, const char *name)
{
	size_t n = strlen(name);
	return !strncmp(s->name, name, n) && (s->name[n] == '\0' || s->name[n] == '@');
}

static int img_indexed(const struct elf_symbol *s)
{
	return s->name[0] && s->shndx != SHN_UNDEF && s->type != STT_SECTION &&
	       s->type != STT_FILE;
}

static void img_find(const struct elf_image *m, const struct elf_symbol *s)
{
	const struct elf_symbol *f = elf_image_find(m, s->name, NULL);
	if (f)
		FUZZ_CHECK(f >= m->symbols && f < m->symbols + m->nsymbols &&
			   img_named(f, s->name) && img_indexed(f));
	/* A global is always found, though maybe another of its name. */
	if (s->bind != STB_LOCAL)
		FUZZ_CHECK(f && f->bind != STB_LOCAL);
	if (s->bind != STB_LOCAL)
		return;
	f = elf_image_find(m, s->name, s->file);
	FUZZ_CHECK(f && f->bind == STB_LOCAL && img_named(f, s->name));
	FUZZ_CHECK(elf_image_count_locals(m, s->name, s->file) >= 1);
}

static void img_bounds(const struct elf_image *m, uint64_t addr)
{
	uint64_t next = elf_image_next_boundary(m, addr);
	FUZZ_CHECK(next == 0 || next > addr);
	FUZZ_CHECK(elf_image_prev_end(m, addr) <= addr);
}

static void img_queries(const struct elf_image *m)
{
	size_t budget = 2048;	/* queries per input: keep each run short */
	for (size_t i = 0; i < m->nsymbols && budget; i++) {
		const struct elf_symbol *s = &m->symbols[i];
		if (!img_indexed(s))
			continue;
		budget--;
		img_find(m, s);
		img_bounds(m, s->value);
		img_bounds(m, s->value + s->size);
	}
	for (size_t i = 1; i < m->nsections && budget; i++, budget--) {
		img_bounds(m, m->sections[i].addr);
		img_bounds(m, m->sections[i].addr + m->sections[i].size - 1);
	}
	FUZZ_CHECK(!elf_image_find(m, "", NULL));
	elf_image_find(m, "main", NULL);
	elf_image_find(m, "main", "main.c");
}

static int fuzz_image(const uint8_t *data, size_t size)
{
	struct elf_image m;
	rw_fail("%s", "");
	if (elf_image_open_mem(&m, "fuzz.exe", data, size)) {
		FUZZ_CHECK(!strncmp(rw_error(), "fuzz.exe: ", 10));
		FUZZ_CHECK(!m.map && !m.sections && !m.symbols && !m.names.slots);
		return 0;
	}
	img_check(&m);
	img_queries(&m);
	elf_image_close(&m);
	return 1;
}

RW_FUZZ_ENTRY(fuzz_image)
