/* Static archives: the member list and the symbol index.
 *
 * Format (System V / GNU ar, what binutils and rustc write): the magic
 * "!<arch>\n", then members, each a 60-byte header (name, date, ids, mode,
 * decimal size, "`\n") and its data padded to an even offset. Special
 * members: "/" is the symbol index (big-endian u32 count, count member
 * header offsets, count names), "/SYM64/" the same with u64, "//" the long
 * names that "/N" names point into. BSD's "#1/N" puts the name at the
 * start of the data. Thin archives (members elsewhere) are refused.
 * Every size and offset read is checked against the file. */
#include "elf/archive.h"
#include "util.h"
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define AR_HDR 60

static int map_archive(struct elf_archive *a, const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return rw_fail("%s: cannot open: %s", path, strerror(errno));
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size < 8) {
		close(fd);
		return rw_fail("%s: not an archive", path);
	}
	void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	int err = errno;
	close(fd);
	if (p == MAP_FAILED)
		return rw_fail("%s: cannot map: %s", path, strerror(err));
	a->map = p;
	a->mapsize = (size_t)st.st_size;
	return 0;
}

/* A decimal field of the header, space padded. */
static int field_num(const char *f, size_t len, uint64_t *out)
{
	uint64_t v = 0;
	size_t i = 0;
	while (i < len && f[i] == ' ')
		i++;
	if (i == len || f[i] < '0' || f[i] > '9')
		return -1;
	for (; i < len && f[i] >= '0' && f[i] <= '9'; i++) {
		if (v > (UINT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (uint64_t)(f[i] - '0');
	}
	for (; i < len; i++)
		if (f[i] != ' ')
			return -1;
	*out = v;
	return 0;
}

static uint64_t get_be(const uint8_t *p, int bytes)
{
	uint64_t v = 0;
	for (int i = 0; i < bytes; i++)
		v = v << 8 | p[i];
	return v;
}

struct scan {
	const char *longnames;
	uint64_t nlong;
	uint64_t index_off, index_size;	/* the symbol index member's data */
	int index_wide;			/* /SYM64/ */
	uint64_t *hdr_off;		/* per member: offset of its header */
	size_t members_cap, hdr_cap;	/* of a->members, of hdr_off */
};

/* The member's name: "name/" short, "/N" long, "#1/N" BSD (in the data). */
static char *member_name(struct elf_archive *a, const struct scan *sc, const char *raw,
			 uint64_t *data_off, uint64_t *size)
{
	char buf[17];
	memcpy(buf, raw, 16);
	buf[16] = 0;
	for (int i = 15; i >= 0 && buf[i] == ' '; i--)
		buf[i] = 0;
	uint64_t n;
	if (buf[0] == '/' && buf[1] >= '0' && buf[1] <= '9') {
		if (field_num(buf + 1, strlen(buf + 1), &n) < 0 || !sc->longnames || n >= sc->nlong)
			return NULL;
		const char *s = sc->longnames + n, *end = sc->longnames + sc->nlong;
		size_t len = 0;
		while (s + len < end && s[len] != '\n' && s[len] != 0)
			len++;
		if (len && s[len - 1] == '/')
			len--;
		return strndup(s, len);
	}
	if (!strncmp(buf, "#1/", 3)) {
		if (field_num(buf + 3, strlen(buf + 3), &n) < 0 || n > *size)
			return NULL;
		char *name = strndup((const char *)a->map + *data_off, n);
		*data_off += n;
		*size -= n;
		return name;
	}
	char *slash = strchr(buf, '/');
	if (slash)
		*slash = 0;
	return rw_strdup(buf);
}

static int add_member(struct elf_archive *a, struct scan *sc, char *name, uint64_t hdr,
		      uint64_t off, uint64_t size)
{
	if (!name)
		return rw_fail("%s: member at offset %llu has a malformed name", a->path,
			       (unsigned long long)hdr);
	a->members = rw_grow(a->members, &sc->members_cap, a->nmembers, sizeof *a->members);
	sc->hdr_off = rw_grow(sc->hdr_off, &sc->hdr_cap, a->nmembers, sizeof *sc->hdr_off);
	sc->hdr_off[a->nmembers] = hdr;
	a->members[a->nmembers++] = (struct elf_member){name, off, size};
	return 0;
}

static int read_members(struct elf_archive *a, struct scan *sc)
{
	for (uint64_t at = 8; at < a->mapsize; at += at & 1) {
		const char *h = (const char *)a->map + at;
		uint64_t size;
		if (a->mapsize - at < AR_HDR || memcmp(h + 58, "`\n", 2) ||
		    field_num(h + 48, 10, &size) < 0)
			return rw_fail("%s: malformed member header at offset %llu", a->path,
				       (unsigned long long)at);
		uint64_t off = at + AR_HDR;
		if (size > a->mapsize - off)
			return rw_fail("%s: member at offset %llu runs past the end of the file",
				       a->path, (unsigned long long)at);
		if (!memcmp(h, "/               ", 16) || !memcmp(h, "/SYM64/         ", 16)) {
			sc->index_off = off, sc->index_size = size, sc->index_wide = h[1] == 'S';
		} else if (!memcmp(h, "//              ", 16)) {
			sc->longnames = (const char *)a->map + off, sc->nlong = size;
		} else if (add_member(a, sc, member_name(a, sc, h, &off, &size), at, off, size) < 0) {
			return -1;
		}
		at = off + size;
		if (at > a->mapsize)
			break;
	}
	return 0;
}

static void add_sym(struct elf_archive *a, size_t *cap, const char *name, uint32_t member)
{
	a->syms = rw_grow(a->syms, cap, a->nsyms, sizeof *a->syms);
	a->syms[a->nsyms++] = (struct elf_arsym){rw_strdup(name), member};
}

static long member_at(const struct elf_archive *a, const struct scan *sc, uint64_t hdr)
{
	size_t lo = 0, hi = a->nmembers;	/* members are in file order */
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (sc->hdr_off[mid] == hdr)
			return (long)mid;
		if (sc->hdr_off[mid] < hdr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

static int read_index(struct elf_archive *a, const struct scan *sc)
{
	const uint8_t *p = (const uint8_t *)a->map + sc->index_off;
	uint64_t size = sc->index_size, w = sc->index_wide ? 8 : 4;
	size_t cap = 0;
	if (size < w)
		return rw_fail("%s: truncated symbol index", a->path);
	uint64_t n = get_be(p, (int)w);
	if (n > (size - w) / w)
		return rw_fail("%s: symbol index lists more symbols than it holds", a->path);
	const char *names = (const char *)p + w + n * w, *end = (const char *)p + size;
	for (uint64_t i = 0; i < n; i++) {
		size_t len = strnlen(names, (size_t)(end - names));
		if (names + len == end)
			return rw_fail("%s: symbol index names run past its end", a->path);
		long m = member_at(a, sc, get_be(p + w + i * w, (int)w));
		if (m >= 0)
			add_sym(a, &cap, names, (uint32_t)m);
		names += len + 1;
	}
	return 0;
}

static int is_elf(const struct elf_archive *a, const struct elf_member *m)
{
	return m->size >= 4 && !memcmp((const char *)a->map + m->off, "\177ELF", 4);
}

/* No index: the defined globals of each ELF member. */
static int read_member_symbols(struct elf_archive *a)
{
	size_t cap = 0;
	for (size_t i = 0; i < a->nmembers; i++) {
		struct elf_object o;
		void *buf;
		if (!is_elf(a, &a->members[i]))
			continue;
		if (elf_archive_object(a, i, &o, &buf) < 0)
			return -1;
		for (size_t j = 1; j < o.nsymbols; j++) {
			const struct elf_symbol *s = &o.symbols[j];
			if (s->bind != STB_LOCAL && s->shndx != SHN_UNDEF && s->name[0])
				add_sym(a, &cap, s->name, (uint32_t)i);
		}
		elf_object_close(&o);
		free(buf);
	}
	return 0;
}

static int cmp_sym(const void *x, const void *y)
{
	const struct elf_arsym *a = x, *b = y;
	int c = strcmp(a->name, b->name);
	return c ? c : (a->member > b->member) - (a->member < b->member);
}

int elf_archive_open(struct elf_archive *a, const char *path)
{
	struct scan sc = {0};
	memset(a, 0, sizeof *a);
	a->path = rw_strdup(path);
	int rc = map_archive(a, path);
	if (rc == 0 && !memcmp(a->map, "!<thin>\n", 8))
		rc = rw_fail("%s: a thin archive (its members live elsewhere) is not supported", path);
	else if (rc == 0 && memcmp(a->map, "!<arch>\n", 8))
		rc = rw_fail("%s: not an archive (no !<arch> magic)", path);
	if (rc == 0)
		rc = read_members(a, &sc);
	if (rc == 0)
		rc = sc.index_size ? read_index(a, &sc) : read_member_symbols(a);
	free(sc.hdr_off);
	if (rc < 0) {
		elf_archive_close(a);
		return -1;
	}
	if (a->nsyms)	/* qsort wants a real array, even of none */
		qsort(a->syms, a->nsyms, sizeof *a->syms, cmp_sym);
	return 0;
}

void elf_archive_close(struct elf_archive *a)
{
	if (a->map)
		munmap(a->map, a->mapsize);
	for (size_t i = 0; i < a->nmembers; i++)
		free(a->members[i].name);
	for (size_t i = 0; i < a->nsyms; i++)
		free((char *)a->syms[i].name);
	free(a->members);
	free(a->syms);
	free(a->path);
	memset(a, 0, sizeof *a);
}

long elf_archive_find(const struct elf_archive *a, const char *name)
{
	size_t lo = 0, hi = a->nsyms;
	while (lo < hi) {	/* the first entry with that name */
		size_t mid = (lo + hi) / 2;
		if (strcmp(a->syms[mid].name, name) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < a->nsyms && !strcmp(a->syms[lo].name, name) ? (long)a->syms[lo].member : -1;
}

int elf_archive_object(const struct elf_archive *a, size_t m, struct elf_object *obj, void **buf)
{
	const struct elf_member *mem = &a->members[m];
	size_t nlen = strlen(a->path) + strlen(mem->name) + 3;
	*buf = NULL;
	if (!is_elf(a, mem))
		return rw_fail("%s(%s): not an ELF object", a->path, mem->name);
	/* One block: the bytes, then the name the object's messages use. */
	char *b = rw_calloc(1, mem->size + nlen), *name = b + mem->size;
	memcpy(b, (const char *)a->map + mem->off, mem->size);
	snprintf(name, nlen, "%s(%s)", a->path, mem->name);
	if (elf_object_open_mem(obj, name, b, mem->size) < 0) {
		free(b);
		return -1;
	}
	*buf = b;
	return 0;
}
