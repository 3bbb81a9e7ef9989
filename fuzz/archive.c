/* Fuzz target: the static archive reader (src/elf/archive.c), which reads
 * the .a and .rlib files a program was linked with: member headers, long
 * names, the symbol index, and each member as an object.
 *
 * The reader opens a path, so the input is written to a memfd and opened
 * as /proc/self/fd/N. Its mmap would let a read past the input go unseen
 * up to the page's end, so under libFuzzer the reader is compiled into
 * this file with mmap and munmap replaced: the file is read into a heap
 * buffer of exactly its size, where ASan sees every byte past it. In the
 * unit test (RW_FUZZ_REPLAY) the driver's own archive.o is used as it is.
 *
 * An accepted archive is checked: members inside the file, names and
 * symbols terminated, every indexed symbol found by elf_archive_find, and
 * each ELF member opened and checked as the object target does. */
#define _GNU_SOURCE
#include "fuzz.h"
#include "elf_check.h"
#include "util.h"
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifdef RW_FUZZ_REPLAY
#include "elf/archive.h"
#else
static void *archive_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	uint8_t *p = malloc(len ? len : 1);
	if (p && pread(fd, p, len, off) == (ssize_t)len)
		return p;
	free(p);
	return MAP_FAILED;
}

static int archive_munmap(void *addr, size_t len)
{
	free(addr);
	return 0;
}

#define mmap archive_mmap
#define munmap archive_munmap
#include "../src/elf/archive.c"
#undef mmap
#undef munmap
#endif

static int ar_memfd = -1;

/* A path whose file holds exactly the input. */
static const char *ar_file(const uint8_t *data, size_t size, char *path, size_t cap)
{
	if (ar_memfd < 0)
		ar_memfd = memfd_create("fuzz.a", MFD_CLOEXEC);
	FUZZ_CHECK(ar_memfd >= 0);
	FUZZ_CHECK(ftruncate(ar_memfd, 0) == 0);
	size_t done = 0;
	while (done < size) {
		ssize_t w = pwrite(ar_memfd, data + done, size - done, (off_t)done);
		FUZZ_CHECK(w > 0);
		done += (size_t)w;
	}
	snprintf(path, cap, "/proc/self/fd/%d", ar_memfd);
	return path;
}

static void ar_check(const struct elf_archive *a)
{
	FUZZ_CHECK(a->path && a->map);
	for (size_t i = 0; i < a->nmembers; i++) {
		const struct elf_member *m = &a->members[i];
		FUZZ_CHECK(m->name);
		elf_sink ^= (uint8_t)strlen(m->name);
		FUZZ_CHECK(m->off <= a->mapsize && m->size <= a->mapsize - m->off);
		elf_touch((const uint8_t *)a->map + m->off, m->size);
	}
	for (size_t i = 0; i < a->nsyms; i++) {
		const struct elf_arsym *s = &a->syms[i];
		FUZZ_CHECK(s->name && s->member < a->nmembers);
		FUZZ_CHECK(!i || strcmp(a->syms[i - 1].name, s->name) <= 0);
		long m = elf_archive_find(a, s->name);
		FUZZ_CHECK(m >= 0 && (size_t)m < a->nmembers);
	}
}

/* Members as objects, as the resolver takes them: a few per input. */
static void ar_members(const struct elf_archive *a)
{
	for (size_t i = 0, n = 0; i < a->nmembers && n < 8; i++) {
		struct elf_object o;
		void *buf;
		if (a->members[i].size < 4 || memcmp((const char *)a->map + a->members[i].off, "\177ELF", 4))
			continue;
		n++;
		if (elf_archive_object(a, i, &o, &buf) < 0) {
			FUZZ_CHECK(!buf);
			continue;
		}
		obj_check(&o);
		obj_queries(&o);
		elf_object_close(&o);
		free(buf);
	}
}

static int fuzz_archive(const uint8_t *data, size_t size)
{
	char path[64];
	struct elf_archive a;
	rw_fail("%s", "");
	if (elf_archive_open(&a, ar_file(data, size, path, sizeof path))) {
		FUZZ_CHECK(!strncmp(rw_error(), path, strlen(path)));
		FUZZ_CHECK(!a.map && !a.members && !a.syms && !a.path);
		return 0;
	}
	ar_check(&a);
	ar_members(&a);
	elf_archive_close(&a);
	return 1;
}

RW_FUZZ_ENTRY(fuzz_archive)
