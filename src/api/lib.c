/* The dylib reload API (include/rewire_lib.h), part of librewire-api.a.
 * A library is loaded as a private copy, reached through trampolines that
 * a reload retargets, and replaced only by versions that loaded, resolved
 * and accepted completely. It needs nothing of rewire's agent.
 *
 * What it relies on (glibc's loader):
 *  - glibc takes a file for an object it has already loaded when the path,
 *    the DT_SONAME or the device and inode match. So each version is a new
 *    file in a private directory, under a name never reused; it stays on
 *    disk while its image is mapped (debuggers and profilers read symbols
 *    from that path). The original file is never mapped: a build
 *    rewriting it in place would change the running code under the
 *    program, or SIGBUS it.
 *  - A dependent's DT_NEEDED names its dependency by DT_SONAME, and glibc
 *    binds it to the first loaded object with that soname: with two
 *    versions of the dependency loaded, the old one. RTLD_GLOBAL does not
 *    help (the old version stays first in the global scope; worse, every
 *    later version's calls to its own exported functions would bind to the
 *    old one). So copies are loaded RTLD_LOCAL, each copy's soname is
 *    rewritten in place to a name of the same length that no other object
 *    has ("~" and a process-wide counter over its first four bytes), and a
 *    dependent's copy gets that name in its DT_NEEDED: glibc binds it to
 *    exactly that copy, already loaded.
 *  - dlclose may leave an image mapped (-z nodelete, thread_local
 *    destructors, STB_GNU_UNIQUE symbols, a dependent still loaded):
 *    whether it left is read back with dl_iterate_phdr.
 *
 * What it hands on: trampolines (16 bytes: endbr64; jmp *slot(%rip)) in
 * read+exec pages whose slots, in the next page, are all a reload writes:
 * one atomic store each. Every reload is a transaction: new versions of
 * the library and its dependents are loaded, resolved and accepted by
 * their load hooks, dependencies first; then all trampolines move; then
 * the old versions' unload hooks run. A crash in library code inside
 * rewire_lib_call (own signal handlers, chained to the program's) rolls
 * the transaction that loaded the crashing version back. */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>
#include "../../include/rewire_lib.h"
#include "../guard/guard.h"

#pragma GCC poison exit abort

#define ERRLEN 1024
#define RECENT_MS 100	/* a file modified this recently may still be written: */
#define SETTLE_MS 5	/* stat it again this much later */
#define QUIET_MS 5000	/* incomplete, and seen unchanged this long: broken, not being written */
#define HEAD 4		/* bytes of a soname rewritten: "~" and three base-62 digits */
#define MAX_EXEC 4	/* executable segments recorded per image */
#define MAX_RANGES 4096	/* executable ranges the fault handler knows */
#define TRAMP 16	/* bytes per trampoline */

#if defined(__x86_64__)
#define HOST_MACHINE EM_X86_64
#elif defined(__aarch64__)
#define HOST_MACHINE EM_AARCH64
#else
#error "rewire_lib: unsupported architecture"
#endif

struct range {
	uintptr_t lo, hi;
};

/* What a file says about itself, read from its bytes as built. */
struct image_info {
	char *strs;			/* a copy of .dynstr: the names below point into it */
	const char *soname;		/* NULL: none */
	const char **needed;
	size_t nneeded;
	const char **defs;		/* exported names, sorted */
	size_t ndefs;
	const char **undefs;		/* imported names (non-weak) */
	size_t nundefs;
	int nodelete, tls_dtors, unique;
	struct range exec[MAX_EXEC];	/* link-time addresses */
	int nexec;
	struct range image;
};

/* Bytes of a copy changed from the file: undone to get the file back. */
struct patch {
	uint64_t off;
	char orig[HEAD];
};

enum vstate {
	V_LIVE,		/* loaded: current, or something to roll back to */
	V_BAD,		/* crashed inside rewire_lib_call */
	V_ROLLED,	/* undone with a version that crashed */
	V_KEPT,		/* dlclosed, but glibc kept the image */
};

struct version {
	struct rewire_lib *lib;
	int num;
	unsigned long txn;		/* the transaction that loaded it */
	enum vstate state;
	void *handle;
	uintptr_t base;
	char *copy;			/* its file in the private directory */
	pid_t pid;			/* the process that made that file */
	char *token;			/* its rewritten soname, NULL if none */
	struct patch *patches;
	size_t npatches;
	struct version **bound;		/* the versions of dependencies it binds to */
	size_t nbound;
	struct image_info info;
	void **addr;			/* per symbol handed out (lib->syms) */
	size_t naddr;
	int slots[MAX_EXEC];		/* in the fault handler's table */
	struct version *older;
};

struct sym {
	char *name;
	_Atomic uintptr_t *slot;
	void *tramp;
};

struct chunk {
	unsigned char *code;		/* read+exec; the slots are the next page */
	size_t used;
	struct chunk *next;
};

struct rewire_lib {
	char *path;			/* absolute */
	char *name;			/* as the program gave it, for messages */
	void *state;
	struct stat seen;		/* the file as last tried */
	struct stat partial;		/* the file as first seen incomplete, */
	struct timespec partial_since;	/* when (CLOCK_MONOTONIC) */
	struct version *cur, *versions;	/* versions: every one held, newest first */
	int next_num;
	_Atomic int version;
	struct sym *syms;
	size_t nsyms, capsyms;
	struct chunk *chunks;
	char err[ERRLEN];
	struct rewire_lib *next;
};

static pthread_mutex_t big = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;
static struct rewire_lib *libs;
static unsigned long ntxn, ntokens, ncopies;
static __thread char last_err[ERRLEN];

/* ------------------------------------------------------------------ errors */

static int vfail(struct rewire_lib *lib, const char *fmt, va_list ap)
{
	vsnprintf(last_err, sizeof last_err, fmt, ap);
	if (lib)
		memcpy(lib->err, last_err, sizeof lib->err);
	return -1;
}

static int fail(struct rewire_lib *lib, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfail(lib, fmt, ap);
	va_end(ap);
	return -1;
}

static const char *base_name(const char *p)
{
	const char *s = strrchr(p, '/');
	return s ? s + 1 : p;
}

static long ms_since(clockid_t clock, const struct timespec *t)
{
	struct timespec now;
	clock_gettime(clock, &now);
	return (now.tv_sec - t->tv_sec) * 1000 + (now.tv_nsec - t->tv_nsec) / 1000000;
}

static int same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* ----------------------------------------------------------- ELF reading
 * The bytes are input, not trusted: every offset is checked against the
 * file's size before it is read. */

struct elf {
	unsigned char *b;
	size_t n;
	const Elf64_Ehdr *eh;
	const Elf64_Phdr *ph;
	Elf64_Dyn *dyn;
	size_t ndyn;
	uint64_t str, strsz;		/* .dynstr: file offset, size */
	const Elf64_Sym *sym;
	size_t nsym;
};

static int in_file(size_t n, uint64_t off, uint64_t len)
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
		if (!in_file(n, ph[i].p_offset, ph[i].p_filesz))
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
		    !in_file(n, sh[i].sh_offset, sh[i].sh_size))
			return "a section ends past the end of the file";
	return NULL;
}

/* Why the bytes are not a complete shared object for this machine, or
 * NULL. A file being written fails here: linkers write the headers last
 * (the section headers sit at the end of the file), or seek past holes. */
static const char *elf_incomplete(const unsigned char *b, size_t n)
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
	    !in_file(n, eh->e_phoff, (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr)))
		return "program headers past the end of the file";
	if (eh->e_shoff && (eh->e_shentsize != sizeof(Elf64_Shdr) || eh->e_shoff % 8 ||
			    !in_file(n, eh->e_shoff, (uint64_t)eh->e_shnum * sizeof(Elf64_Shdr))))
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

static uint64_t dyn_val(const struct elf *e, int64_t tag, uint64_t dflt)
{
	for (size_t i = 0; i < e->ndyn; i++)
		if (e->dyn[i].d_tag == tag)
			return e->dyn[i].d_un.d_val;
	return dflt;
}

/* A NUL-terminated string inside .dynstr, or NULL. */
static const char *elf_str(const struct elf *e, uint64_t off)
{
	if (off >= e->strsz)
		return NULL;
	const char *s = (const char *)e->b + e->str + off;
	return memchr(s, 0, e->strsz - off) ? s : NULL;
}

/* .dynsym's size: from its section header, else from DT_HASH. */
static void find_dynsym(struct elf *e)
{
	uint64_t va = dyn_val(e, DT_SYMTAB, 0), off, hoff;
	if (!va || va_off(e, va, sizeof(Elf64_Sym), &off) || off % 8)
		return;
	const Elf64_Shdr *sh = (const void *)(e->b + e->eh->e_shoff);
	for (int i = 0; e->eh->e_shoff && i < e->eh->e_shnum; i++)
		if (sh[i].sh_type == SHT_DYNSYM && sh[i].sh_offset == off)
			e->nsym = sh[i].sh_size / sizeof(Elf64_Sym);
	uint64_t hash = dyn_val(e, DT_HASH, 0);
	if (!e->nsym && hash && !va_off(e, hash, 8, &hoff) && hoff % 4 == 0)
		e->nsym = ((const uint32_t *)(e->b + hoff))[1];
	if (!in_file(e->n, off, (uint64_t)e->nsym * sizeof(Elf64_Sym)))
		e->nsym = 0;
	e->sym = (const void *)(e->b + off);
}

/* b must have passed elf_incomplete. NULL, or why it cannot be used. */
static const char *elf_parse(struct elf *e, unsigned char *b, size_t n)
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
	e->strsz = dyn_val(e, DT_STRSZ, 0);
	if (va_off(e, dyn_val(e, DT_STRTAB, 0), e->strsz, &e->str) || !e->strsz)
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
					? elf_str(e, e->dyn[i].d_un.d_val) : NULL;
		if (s && e->dyn[i].d_tag == DT_SONAME)
			in->soname = in->strs + (s - (const char *)e->b - e->str);
		else if (s)
			in->needed[in->nneeded++] = in->strs + (s - (const char *)e->b - e->str);
	}
	in->nodelete = !!(dyn_val(e, DT_FLAGS_1, 0) & DF_1_NODELETE);
}

static void read_symbols(struct image_info *in, const struct elf *e)
{
	for (size_t i = 1; i < e->nsym; i++) {
		const Elf64_Sym *s = &e->sym[i];
		const char *name = elf_str(e, s->st_name);
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

static void info_free(struct image_info *in)
{
	free(in->strs);
	free(in->needed);
	free(in->defs);
	free(in->undefs);
	memset(in, 0, sizeof *in);
}

static int info_read(struct image_info *in, const struct elf *e)
{
	memset(in, 0, sizeof *in);
	in->strs = malloc(e->strsz);
	in->needed = calloc(e->ndyn + 1, sizeof *in->needed);
	in->defs = calloc(e->nsym + 1, sizeof *in->defs);
	in->undefs = calloc(e->nsym + 1, sizeof *in->undefs);
	if (!in->strs || !in->needed || !in->defs || !in->undefs) {
		info_free(in);
		return -1;
	}
	memcpy(in->strs, e->b + e->str, e->strsz);
	read_dynamic(in, e);
	read_symbols(in, e);
	read_segments(in, e);
	return 0;
}

static int info_defines(const struct image_info *in, const char *name)
{
	return bsearch(&name, in->defs, in->ndefs, sizeof *in->defs, by_name) != NULL;
}

/* --------------------------------------------------------- reading files */

struct source {
	unsigned char *b;
	size_t n;
	struct stat st;
};

enum { SRC_OK, SRC_WAIT, SRC_ERR };

static int read_all(int fd, unsigned char *b, size_t n)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = pread(fd, b + got, n - got, (off_t)got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r == 0)
			errno = 0;	/* it shrank */
		if (r <= 0)
			return -1;
		got += (size_t)r;
	}
	return 0;
}

static void sleep_ms(long ms)
{
	struct timespec t = {0, ms * 1000000};
	while (nanosleep(&t, &t) < 0 && errno == EINTR)
		;
}

/* The file whole, if it stood still while read: a file modified in the
 * last RECENT_MS is looked at again SETTLE_MS later. */
static int read_settled(struct rewire_lib *lib, int fd, struct source *s)
{
	struct stat again;
	s->n = (size_t)s->st.st_size;
	if (!(s->b = malloc(s->n ? s->n : 1)))
		return fail(lib, "%s: out of memory for %zu bytes", lib->name, s->n), SRC_ERR;
	if (read_all(fd, s->b, s->n) < 0)
		return fail(lib, "%s: read: %s", lib->name,
			    errno ? strerror(errno) : "the file shrank"), SRC_WAIT;
	if (ms_since(CLOCK_REALTIME, &s->st.st_mtim) < RECENT_MS)
		sleep_ms(SETTLE_MS);
	if (fstat(fd, &again) < 0 || !same_file(&again, &s->st))
		return fail(lib, "%s: still being written; waiting", lib->name), SRC_WAIT;
	return SRC_OK;
}

/* Whether lib's file, incomplete as st says, has stood still QUIET_MS as
 * rewire watched it. Not from its time alone: a truncation sets the size
 * before the time, so a file emptied by a build that is about to write it
 * can look incomplete and long untouched, for a moment. */
static int incomplete_for_long(struct rewire_lib *lib, const struct stat *st)
{
	if (same_file(st, &lib->partial))
		return ms_since(CLOCK_MONOTONIC, &lib->partial_since) >= QUIET_MS;
	lib->partial = *st;
	clock_gettime(CLOCK_MONOTONIC, &lib->partial_since);
	return 0;
}

/* lib's file as it is now, complete: SRC_OK; SRC_WAIT while it looks
 * written to; SRC_ERR when it is not a usable shared object. */
static int read_source(struct rewire_lib *lib, struct source *s)
{
	memset(s, 0, sizeof *s);
	int fd = open(lib->path, O_RDONLY | O_CLOEXEC), rc, e = errno;
	if (fd < 0)	/* missing: between a build's unlink and its new file */
		return fail(lib, "%s: %s", lib->name, strerror(e)), e == ENOENT ? SRC_WAIT : SRC_ERR;
	if (fstat(fd, &s->st) < 0 || !S_ISREG(s->st.st_mode))
		rc = (fail(lib, "%s: not a regular file", lib->name), SRC_ERR);
	else
		rc = read_settled(lib, fd, s);
	close(fd);
	const char *why = rc == SRC_OK ? elf_incomplete(s->b, s->n) : NULL;
	if (why) {
		int quiet = incomplete_for_long(lib, &s->st);
		fail(lib, "%s: %s%s", lib->name, why,
		     quiet ? "" : " (still being written?); waiting");
		rc = quiet ? SRC_ERR : SRC_WAIT;
	}
	if (rc != SRC_OK)
		free(s->b), s->b = NULL;
	return rc;
}

/* The bytes of v's file as built: its copy, with rewire's patches undone. */
static int read_pristine(struct version *v, struct source *s)
{
	struct rewire_lib *lib = v->lib;
	memset(s, 0, sizeof *s);
	int fd = open(v->copy, O_RDONLY | O_CLOEXEC), rc = -1;
	if (fd < 0 || fstat(fd, &s->st) < 0)
		return fail(lib, "%s: %s: %s", lib->name, v->copy, strerror(errno));
	s->n = (size_t)s->st.st_size;
	if ((s->b = malloc(s->n ? s->n : 1)) && read_all(fd, s->b, s->n) == 0)
		rc = 0;
	close(fd);
	if (rc < 0) {
		free(s->b), s->b = NULL;
		return fail(lib, "%s: cannot read its copy %s", lib->name, v->copy);
	}
	for (size_t i = 0; i < v->npatches; i++) {
		if (!in_file(s->n, v->patches[i].off, HEAD)) {
			free(s->b), s->b = NULL;
			return fail(lib, "%s: its copy %s was changed", lib->name, v->copy);
		}
		memcpy(s->b + v->patches[i].off, v->patches[i].orig, HEAD);
	}
	return 0;
}

/* ------------------------------------------------------ private directory
 * $XDG_RUNTIME_DIR/rewire or /tmp/rewire-UID (0700, ours, checked as the
 * agent's channel does), then lib-PID-XXXXXX made by mkdtemp. The process
 * holds a lock on DIR/lock as long as it lives: a directory whose lock can
 * be taken belongs to a process that died without cleaning up (killed),
 * and is removed. A lock, not the pid: pids are reused, and mean nothing
 * in another pid namespace sharing /tmp. */

static char libdir[PATH_MAX];
static pid_t libdir_pid;
static int libdir_lock = -1;

static void remove_dir(int parent, const char *name)
{
	int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *d = fd < 0 ? NULL : fdopendir(fd);
	struct dirent *de;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			unlinkat(fd, de->d_name, 0);
	closedir(d);
	unlinkat(parent, name, AT_REMOVEDIR);
}

/* Whether lib-* under dir belongs to a process that is gone. */
static int abandoned(int dir, const char *name)
{
	char lock[NAME_MAX + 8];
	struct stat st;
	snprintf(lock, sizeof lock, "%s/lock", name);
	int fd = openat(dir, lock, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)	/* no lock: being made now, or long ago */
		return fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		       ms_since(CLOCK_REALTIME, &st.st_mtim) > 60 * 1000;
	int gone = flock(fd, LOCK_EX | LOCK_NB) == 0;
	close(fd);
	return gone;
}

static void sweep(const char *base)
{
	DIR *d = opendir(base);
	struct dirent *de;
	if (!d)
		return;
	while ((de = readdir(d)))
		if (!strncmp(de->d_name, "lib-", 4) && abandoned(dirfd(d), de->d_name))
			remove_dir(dirfd(d), de->d_name);
	closedir(d);
}

static int usable_base(const char *dir)
{
	struct stat st;
	struct statvfs vfs;
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return fail(NULL, "cannot create %s: %s", dir, strerror(errno));
	if (lstat(dir, &st) < 0)
		return fail(NULL, "%s: %s", dir, strerror(errno));
	if (!S_ISDIR(st.st_mode) || st.st_uid != getuid() || (st.st_mode & 077))
		return fail(NULL, "%s must be a directory owned by you with mode 0700: refusing to "
			    "use it", dir);
	if (statvfs(dir, &vfs) == 0 && (vfs.f_flag & ST_NOEXEC))
		return fail(NULL, "%s is on a noexec file system: libraries cannot be mapped "
			    "from it", dir);
	return 0;
}

static void remove_copies(void);

/* Held until the process ends (a child after fork shares it: harmless). */
static int take_lock(struct rewire_lib *lib)
{
	char path[PATH_MAX + 8];
	snprintf(path, sizeof path, "%s/lock", libdir);
	if (libdir_lock >= 0 && libdir_pid != getpid())
		close(libdir_lock);	/* the parent's, after fork */
	libdir_lock = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (libdir_lock < 0 || flock(libdir_lock, LOCK_EX) < 0) {
		fail(lib, "%s: cannot lock %s: %s", lib->name, path, strerror(errno));
		rmdir(libdir);
		libdir[0] = 0;
		return -1;
	}
	if (!libdir_pid)
		atexit(remove_copies);
	libdir_pid = getpid();
	return 0;
}

static int private_dir(struct rewire_lib *lib)
{
	char base[PATH_MAX - 32];
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	if (libdir[0] && libdir_pid == getpid())
		return 0;
	for (int i = 0; i < 2; i++) {
		if (i == 0 && !(xdg && xdg[0]))
			continue;
		if (i == 0)
			snprintf(base, sizeof base, "%s/rewire", xdg);
		else
			snprintf(base, sizeof base, "/tmp/rewire-%u", (unsigned)getuid());
		if (usable_base(base) < 0)
			continue;
		sweep(base);
		snprintf(libdir, sizeof libdir, "%s/lib-%d-XXXXXX", base, (int)getpid());
		if (!mkdtemp(libdir)) {
			fail(lib, "cannot create %s: %s", libdir, strerror(errno));
			libdir[0] = 0;
			return -1;
		}
		return take_lock(lib);
	}
	char why[ERRLEN];	/* why the last candidate was refused */
	memcpy(why, last_err, sizeof why);
	return fail(lib, "%s: no private directory for its copies: %s", lib->name, why);
}

static char *write_copy(struct rewire_lib *lib, const struct source *s)
{
	char path[PATH_MAX];
	if (private_dir(lib) < 0)
		return NULL;
	snprintf(path, sizeof path, "%s/%s.%lu", libdir, base_name(lib->path), ++ncopies);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		fail(lib, "%s: cannot create %s: %s", lib->name, path, strerror(errno));
		return NULL;
	}
	size_t done = 0;
	while (done < s->n) {
		ssize_t w = write(fd, s->b + done, s->n - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		done += (size_t)w;
	}
	if (close(fd) < 0 || done < s->n) {
		fail(lib, "%s: cannot write %s: %s", lib->name, path,
		     strerror(errno ? errno : EIO));
		unlink(path);
		return NULL;
	}
	return strdup(path);
}

/* --------------------------------------------------------- fault ranges
 * The executable ranges of every loaded version, for the fault handler,
 * which reads them without a lock: each entry has a sequence number, odd
 * while it is being written, and says whether its version is current. */

static struct {
	_Atomic unsigned seq;
	_Atomic uintptr_t lo, hi;
	_Atomic int cur;
} ranges[MAX_RANGES];
static _Atomic int nranges;

static int range_add(uintptr_t lo, uintptr_t hi)
{
	int n = atomic_load(&nranges), i;
	for (i = 0; i < n && atomic_load_explicit(&ranges[i].hi, memory_order_relaxed); i++)
		;
	if (i == MAX_RANGES)
		return -1;	/* this version's crashes are not caught */
	atomic_fetch_add(&ranges[i].seq, 1);
	atomic_store_explicit(&ranges[i].lo, lo, memory_order_relaxed);
	atomic_store_explicit(&ranges[i].hi, hi, memory_order_relaxed);
	atomic_fetch_add(&ranges[i].seq, 1);
	if (i == n)
		atomic_store(&nranges, n + 1);
	return i;
}

static void range_del(int i)
{
	if (i < 0)
		return;
	atomic_fetch_add(&ranges[i].seq, 1);
	atomic_store_explicit(&ranges[i].lo, 0, memory_order_relaxed);
	atomic_store_explicit(&ranges[i].hi, 0, memory_order_relaxed);
	atomic_store_explicit(&ranges[i].cur, 0, memory_order_relaxed);
	atomic_fetch_add(&ranges[i].seq, 1);
}

static void range_current(int i, int cur)
{
	if (i >= 0)
		atomic_store_explicit(&ranges[i].cur, cur, memory_order_relaxed);
}

/* 0: not library code; 1: code of a library version; 2: of a current
 * one. Async-signal-safe. */
static int lib_code(uintptr_t pc)
{
	int n = atomic_load(&nranges);
	for (int i = 0; i < n; i++) {
		unsigned s = atomic_load(&ranges[i].seq);
		uintptr_t lo = atomic_load_explicit(&ranges[i].lo, memory_order_relaxed);
		uintptr_t hi = atomic_load_explicit(&ranges[i].hi, memory_order_relaxed);
		int cur = atomic_load_explicit(&ranges[i].cur, memory_order_relaxed);
		if (!(s & 1) && s == atomic_load(&ranges[i].seq) && pc >= lo && pc < hi)
			return 1 + cur;
	}
	return 0;
}

/* ------------------------------------------------------ guarded calls */

/* A return address into library code between the fault and the guard's
 * frame: library code made the call that failed (abort, a libc function
 * given a bad pointer). Frames that returned leave their values below the
 * live ones (an earlier version that ran, or crashed, at the same depth):
 * one into a current version is taken first, else the innermost. */
static uintptr_t lib_on_stack(uintptr_t sp, uintptr_t top)
{
	uintptr_t first = 0;
	for (uintptr_t p = (sp + 7) & ~(uintptr_t)7; p + 8 <= top; p += 8) {
		uintptr_t v = *(const uintptr_t *)p;
		/* v - 1: inside the call (a noreturn call may end its function). */
		int code = lib_code(v - 1);
		if (code == 2)
			return v - 1;
		if (code && !first)
			first = v - 1;
	}
	return first;
}

static int is_lib_code(uintptr_t pc)
{
	return lib_code(pc) != 0;
}

/* The fault handlers (guard/guard.c) ask these what is library code. */
static const struct guard_ops lib_ops = {is_lib_code, lib_on_stack, NULL, NULL};

static void describe_crash(const struct guard *g, char *out, size_t cap)
{
	Dl_info di;
	const char *abbrev = sigabbrev_np(g->sig);
	char where[320] = "";
	if (!dladdr((void *)g->culprit, &di))
		di.dli_fname = NULL;
	if (di.dli_fname && di.dli_sname)
		snprintf(where, sizeof where, " in %.256s+%#lx", di.dli_sname,
			 (unsigned long)(g->culprit - (uintptr_t)di.dli_saddr));
	else if (di.dli_fname)	/* not inside an exported function (foo.cold...) */
		snprintf(where, sizeof where, " at offset %#lx of its file",
			 (unsigned long)(g->culprit - (uintptr_t)di.dli_fbase));
	snprintf(out, cap, "SIG%s%s%s", abbrev ? abbrev : "?", where,
		 g->sig == SIGSEGV || g->sig == SIGBUS ? ", bad address " : "");
	if (g->sig == SIGSEGV || g->sig == SIGBUS)
		snprintf(out + strlen(out), cap - strlen(out), "%p", g->addr);
}

/* ---------------------------------------------------------- hooks */

struct hook_call {
	void *fn;
	void *state;
	int version, rc;
};

static void call_load(void *p)
{
	struct hook_call *h = p;
	h->rc = ((int (*)(void *, int))h->fn)(h->state, h->version);
}

static void call_unload(void *p)
{
	struct hook_call *h = p;
	((void (*)(void *, int))h->fn)(h->state, h->version);
}

/* name, defined by v itself (dlsym also finds what its dependencies
 * define): its address, else NULL. */
static void *own_sym(struct version *v, const char *name, int code)
{
	void *p = dlsym(v->handle, name);
	uintptr_t a = (uintptr_t)p - v->base;
	if (!p)
		return NULL;
	if (!code)
		return a >= v->info.image.lo && a < v->info.image.hi ? p : NULL;
	for (int i = 0; i < v->info.nexec; i++)
		if (a >= v->info.exec[i].lo && a < v->info.exec[i].hi)
			return p;
	return NULL;
}

/* 0 accepted (or no hook), else -1 with the error set. */
static int run_load_hook(struct version *v)
{
	struct rewire_lib *lib = v->lib;
	struct hook_call h = {own_sym(v, "rewire_lib_load", 1), lib->state, v->num, 0};
	struct guard g;
	char why[512];
	if (!h.fn)
		return 0;
	if (guard_run(&lib_ops, &g, call_load, &h)) {
		describe_crash(&g, why, sizeof why);
		return fail(lib, "%s: version %d: rewire_lib_load crashed: %s", lib->name, v->num,
			    why);
	}
	if (h.rc)
		return fail(lib, "%s: version %d: rewire_lib_load refused it (returned %d)",
			    lib->name, v->num, h.rc);
	return 0;
}

static void run_unload_hook(struct version *v)
{
	struct hook_call h = {own_sym(v, "rewire_lib_unload", 1), v->lib->state, v->num, 0};
	struct guard g;
	char why[512];
	if (h.fn && guard_run(&lib_ops, &g, call_unload, &h)) {
		describe_crash(&g, why, sizeof why);
		fail(v->lib, "%s: version %d: rewire_lib_unload crashed: %s", v->lib->name, v->num,
		     why);
	}
}

/* -------------------------------------------------------- trampolines
 * endbr64 (a no-op without CET), then jmp *slot(%rip) to the slot in the
 * page after the code page. Written while the page is only writable, then
 * made read+exec: never both. */

static size_t page_size(void)
{
	return (size_t)sysconf(_SC_PAGESIZE);
}

static struct chunk *chunk_new(struct rewire_lib *lib)
{
#if defined(__x86_64__)
	size_t pg = page_size();
	struct chunk *c = calloc(1, sizeof *c);
	unsigned char *m = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
				-1, 0);
	if (!c || m == MAP_FAILED) {
		fail(lib, "%s: no memory for trampolines: %s", lib->name, strerror(errno));
		if (m != MAP_FAILED)
			munmap(m, 2 * pg);
		free(c);
		return NULL;
	}
	for (size_t i = 0; i < pg / TRAMP; i++) {
		unsigned char *t = m + i * TRAMP;
		int32_t disp = (int32_t)(pg + i * 8 - (i * TRAMP + 10));
		memcpy(t, "\xf3\x0f\x1e\xfa\xff\x25", 6);
		memcpy(t + 6, &disp, 4);
		memset(t + 10, 0xcc, TRAMP - 10);
	}
	if (mprotect(m, pg, PROT_READ | PROT_EXEC) < 0) {
		munmap(m, 2 * pg);
		free(c);
		fail(lib, "%s: cannot make trampolines executable: %s", lib->name, strerror(errno));
		return NULL;
	}
	c->code = m;
	return c;
#else
	fail(lib, "%s: trampolines are made on x86-64 only", lib->name);
	return NULL;
#endif
}

static int tramp_new(struct rewire_lib *lib, struct sym *s)
{
	size_t pg = page_size();
	struct chunk *c = lib->chunks;
	if (!c || c->used == pg / TRAMP) {
		if (!(c = chunk_new(lib)))
			return -1;
		c->next = lib->chunks;
		lib->chunks = c;
	}
	s->tramp = c->code + c->used * TRAMP;
	s->slot = (_Atomic uintptr_t *)(c->code + pg + c->used * 8);
	c->used++;
	return 0;
}

/* The address of symbol i in v (found when first needed). */
static void *ver_addr(struct version *v, size_t i)
{
	struct rewire_lib *lib = v->lib;
	if (i >= v->naddr) {
		void **a = realloc(v->addr, lib->capsyms * sizeof *a);
		if (!a)
			return NULL;
		for (size_t k = v->naddr; k < lib->capsyms; k++)
			a[k] = NULL;
		v->addr = a, v->naddr = lib->capsyms;
	}
	if (!v->addr[i])
		v->addr[i] = own_sym(v, lib->syms[i].name, 1);
	return v->addr[i];
}

/* Every trampoline of lib to v. 0, or the number of symbols v lacks
 * (only when going back to a version older than the symbol). */
static int retarget(struct rewire_lib *lib, struct version *v)
{
	int missing = 0;
	for (size_t i = 0; i < lib->nsyms; i++) {
		void *a = ver_addr(v, i);
		if (a)
			atomic_store_explicit(lib->syms[i].slot, (uintptr_t)a,
					      memory_order_release);
		else
			missing++;
	}
	return missing;
}

/* ------------------------------------------------- loading one version */

static struct version *version_of(struct rewire_lib *lib, struct version **fresh, size_t nfresh)
{
	for (size_t i = 0; i < nfresh; i++)
		if (fresh[i]->lib == lib)
			return fresh[i];
	return lib->cur;
}

static int add_patch(struct version *v, const struct elf *e, uint64_t stroff, const char *head)
{
	struct patch *p = realloc(v->patches, (v->npatches + 1) * sizeof *p);
	if (!p)
		return -1;
	v->patches = p;
	p = &p[v->npatches++];
	p->off = e->str + stroff;
	memcpy(p->orig, e->b + p->off, HEAD);
	memcpy(e->b + p->off, head, HEAD);
	return 0;
}

/* Rewriting the first bytes of the string at off would change another
 * name that is a suffix of it (linkers merge string tails). */
static int tail_shared(const struct elf *e, uint64_t off)
{
	for (size_t i = 0; i < e->ndyn; i++) {
		int64_t t = e->dyn[i].d_tag;
		uint64_t o = e->dyn[i].d_un.d_val;
		if ((t == DT_NEEDED || t == DT_SONAME || t == DT_RPATH || t == DT_RUNPATH) &&
		    o > off && o < off + HEAD)
			return 1;
	}
	for (size_t i = 0; i < e->nsym; i++)
		if (e->sym[i].st_name > off && e->sym[i].st_name < off + HEAD)
			return 1;
	return 0;
}

/* A soname no other object has: "~" and three base-62 digits over the
 * first bytes of the old one, so that its length stays. */
static int give_token(struct version *v, const struct elf *e)
{
	static const char digits[] = "0123456789abcdefghijklmnopqrstuvwxyz"
				     "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
	uint64_t so = dyn_val(e, DT_SONAME, UINT64_MAX);
	const char *s = so == UINT64_MAX ? NULL : elf_str(e, so);
	unsigned long k = ntokens;
	if (!s || strlen(s) < HEAD || tail_shared(e, so) || k >= 62 * 62 * 62)
		return 0;	/* no soname to rewrite: nothing can depend on it */
	char head[HEAD] = {'~', digits[k / 3844], digits[k / 62 % 62], digits[k % 62]};
	if (add_patch(v, e, so, head) < 0 || !(v->token = strdup(s)))
		return -1;
	memcpy(v->token, head, HEAD);
	ntokens++;
	return 0;
}

static struct rewire_lib *lib_by_soname(const char *name, const struct rewire_lib *self)
{
	for (struct rewire_lib *l = libs; l; l = l->next)
		if (l != self && l->cur && l->cur->info.soname &&
		    !strcmp(l->cur->info.soname, name))
			return l;
	return NULL;
}

static struct rewire_lib *lib_by_file(const char *name, const struct rewire_lib *self)
{
	for (struct rewire_lib *l = libs; l; l = l->next)
		if (l != self && !strcmp(base_name(l->path), base_name(name)))
			return l;
	return NULL;
}

static int bind_needed_one(struct version *v, const struct elf *e, size_t i,
			   struct version **fresh, size_t nfresh)
{
	struct rewire_lib *lib = v->lib, *dep;
	const char *name = elf_str(e, e->dyn[i].d_un.d_val);
	if (!name || !(dep = lib_by_soname(name, lib))) {
		if (name && (dep = lib_by_file(name, lib)))
			return fail(lib, "%s needs %s, which has no DT_SONAME (or another): link "
				    "%s with -Wl,-soname,%s so that each version of %s can be "
				    "bound to its copy", lib->name, name, dep->name,
				    base_name(name), lib->name);
		return 0;	/* not a library rewire reloads */
	}
	struct version *to = version_of(dep, fresh, nfresh);
	if (!to->token || strlen(to->token) != strlen(name))
		return fail(lib, "%s needs %s, whose copy could not be given a name of its own",
			    lib->name, dep->name);
	if (tail_shared(e, e->dyn[i].d_un.d_val))
		return fail(lib, "%s: the name %s in its DT_NEEDED shares bytes with another name: "
			    "cannot make it name the copy of %s", lib->name, name, dep->name);
	struct version **b = realloc(v->bound, (v->nbound + 1) * sizeof *b);
	if (!b || add_patch(v, e, e->dyn[i].d_un.d_val, to->token) < 0)
		return fail(lib, "%s: out of memory", lib->name);
	v->bound = b;
	v->bound[v->nbound++] = to;
	return 0;
}

/* Each DT_NEEDED naming a library rewire reloads now names the copy of
 * its current version (or of the version this transaction loads). */
static int bind_needed(struct version *v, const struct elf *e, struct version **fresh,
		       size_t nfresh)
{
	for (size_t i = 0; i < e->ndyn; i++)
		if (e->dyn[i].d_tag == DT_NEEDED && bind_needed_one(v, e, i, fresh, nfresh) < 0)
			return -1;
	return 0;
}

/* When the loader finds no definition of a name that another reloaded
 * library defines, that library is not in v's DT_NEEDED: copies are not
 * global, so nothing else makes the name visible. The fix, for the error. */
static void import_hint(struct version *v, char *out, size_t cap)
{
	struct rewire_lib *lib = v->lib;
	out[0] = 0;
	for (size_t i = 0; i < v->info.nundefs; i++) {
		const char *u = v->info.undefs[i];
		for (struct rewire_lib *l = libs; l; l = l->next) {
			int named = 0;
			if (l == lib || !l->cur || !info_defines(&l->cur->info, u))
				continue;
			for (size_t k = 0; k < v->nbound; k++)
				named |= v->bound[k] && v->bound[k]->lib == l;
			if (!named) {
				snprintf(out, cap, " (%s uses %s of %s without naming it in "
					 "DT_NEEDED: link %s against %s)", lib->name, u, l->name,
					 lib->name, l->name);
				return;
			}
		}
	}
}

static int record_ranges(struct version *v)
{
	struct link_map *lm;
	if (dlinfo(v->handle, RTLD_DI_LINKMAP, &lm) < 0 || strcmp(lm->l_name, v->copy))
		return fail(v->lib, "%s: the loader did not load the copy %s as a new object",
			    v->lib->name, v->copy);
	v->base = lm->l_addr;
	for (int i = 0; i < v->info.nexec; i++)
		v->slots[i] = range_add(v->base + v->info.exec[i].lo, v->base + v->info.exec[i].hi);
	return 0;
}

/* Every symbol handed out by rewire_lib_sym must be in the new version. */
static int resolve_all(struct version *v)
{
	struct rewire_lib *lib = v->lib;
	for (size_t i = 0; i < lib->nsyms; i++)
		if (!ver_addr(v, i))
			return fail(lib, "%s: version %d does not define %s, which the program "
				    "uses: refused", lib->name, v->num, lib->syms[i].name);
	return 0;
}

static void version_release(struct version *v);

static void set_current(struct version *v, int cur)
{
	for (int i = 0; v && i < v->info.nexec; i++)
		range_current(v->slots[i], cur);
}

static int prepare(struct version *v, struct source *s, struct version **fresh, size_t nfresh)
{
	struct rewire_lib *lib = v->lib;
	struct elf e;
	const char *why = elf_parse(&e, s->b, s->n);
	if (why)
		return fail(lib, "%s: %s", lib->name, why);
	if (info_read(&v->info, &e) < 0)
		return fail(lib, "%s: out of memory", lib->name);
	if (bind_needed(v, &e, fresh, nfresh) < 0)
		return -1;
	if (give_token(v, &e) < 0)
		return fail(lib, "%s: out of memory", lib->name);
	return (v->copy = write_copy(lib, s)) ? 0 : -1;
}

/* A new version of lib from s, loaded, resolved and accepted by its load
 * hook; not yet current. NULL, with the error set, when any step fails. */
static struct version *version_load(struct rewire_lib *lib, struct source *s, unsigned long txn,
				    struct version **fresh, size_t nfresh)
{
	struct version *v = calloc(1, sizeof *v);
	if (!v) {
		fail(lib, "%s: out of memory", lib->name);
		return NULL;
	}
	v->lib = lib, v->num = lib->next_num, v->txn = txn, v->pid = getpid();
	for (int i = 0; i < MAX_EXEC; i++)
		v->slots[i] = -1;
	if (prepare(v, s, fresh, nfresh) < 0)
		goto undo;
	if (!(v->handle = dlopen(v->copy, RTLD_NOW | RTLD_LOCAL))) {
		char hint[512];
		const char *why = dlerror();
		import_hint(v, hint, sizeof hint);
		fail(lib, "%s: version %d: %s%s", lib->name, v->num, why ? why : "dlopen failed",
		     hint);
		goto undo;
	}
	if (record_ranges(v) < 0 || resolve_all(v) < 0 || run_load_hook(v) < 0)
		goto undo;
	return v;
undo:
	version_release(v);
	return NULL;
}

/* ------------------------------------------------------ unloading */

struct find_name {
	const char *name;
	int found;
};

static int find_cb(struct dl_phdr_info *info, size_t size, void *p)
{
	struct find_name *f = p;
	if (info->dlpi_name && !strcmp(info->dlpi_name, f->name))
		f->found = 1;
	return f->found;
}

/* Whether the loader still has the copy mapped. */
static int image_mapped(const char *copy)
{
	struct find_name f = {copy, 0};
	dl_iterate_phdr(find_cb, &f);
	return f.found;
}

/* Forget every pointer to v (other versions bound to it). */
static void unbind(struct version *v)
{
	for (struct rewire_lib *l = libs; l; l = l->next)
		for (struct version *w = l->versions; w; w = w->older)
			for (size_t i = 0; i < w->nbound; i++)
				if (w->bound[i] == v)
					w->bound[i] = NULL;
}

/* Copies of images glibc kept, whose version is gone (the library was
 * closed): their files stay until exit. */
static char **orphans;
static size_t norphans;

static void version_free(struct version *v)
{
	for (int i = 0; i < MAX_EXEC; i++)
		range_del(v->slots[i]);
	if (v->copy && v->pid == getpid() && v->state != V_KEPT) {
		unlink(v->copy);
	} else if (v->copy && v->pid == getpid()) {
		char **o = realloc(orphans, (norphans + 1) * sizeof *o);
		if (o)
			orphans = o, orphans[norphans++] = v->copy, v->copy = NULL;
	}
	unbind(v);
	info_free(&v->info);
	free(v->copy);
	free(v->token);
	free(v->patches);
	free(v->bound);
	free(v->addr);
	free(v);
}

static void unlink_version(struct version *v)
{
	struct version **p = &v->lib->versions;
	while (*p && *p != v)
		p = &(*p)->older;
	if (*p)
		*p = v->older;
}

/* dlclose v; free it if its image left, else keep it (and its file: see
 * the top of this file) as V_KEPT. 1 when glibc kept it. */
static int version_close(struct version *v)
{
	if (v->handle && v->state != V_KEPT)
		dlclose(v->handle);
	v->handle = NULL;
	if (v->copy && image_mapped(v->copy)) {
		v->state = V_KEPT;
		return 1;
	}
	unlink_version(v);
	version_free(v);
	return 0;
}

/* A version that never became current: gone, or kept as V_KEPT. */
static void version_release(struct version *v)
{
	if (version_close(v)) {
		v->older = v->lib->versions;
		v->lib->versions = v;
	}
}

/* Why glibc kept v's image, as far as the file and rewire can tell. */
static const char *kept_why(struct version *v, char *buf, size_t cap)
{
	for (struct rewire_lib *l = libs; l; l = l->next)
		for (struct version *w = l->versions; w; w = w->older)
			for (size_t i = 0; w != v && i < w->nbound; i++)
				if (w->bound[i] == v) {
					snprintf(buf, cap, "%s version %d, still loaded, needs it",
						 l->name, w->num);
					return buf;
				}
	if (v->info.nodelete)
		return "it is linked with -z nodelete";
	if (v->info.tls_dtors)
		return "it registered thread_local destructors (__cxa_thread_atexit): glibc keeps "
		       "such a library while a thread that ran them lives";
	if (v->info.unique)
		return "it defines STB_GNU_UNIQUE symbols (C++ inline or template statics): glibc "
		       "never unloads such a library";
	return "something else holds it (a dlopen of its copy, a library that binds to it)";
}

static int unload_old_one(struct rewire_lib *lib, char *msg, size_t cap)
{
	int kept = 0;
	char why[256];
	for (struct version *v = lib->versions, *next; v; v = next) {
		next = v->older;
		if (v == lib->cur || !version_close(v))
			continue;
		kept++;
		size_t len = strlen(msg);
		snprintf(msg + len, cap - len, "%s%s version %d stays mapped after dlclose: %s",
			 len ? "; " : "", lib->name, v->num, kept_why(v, why, sizeof why));
	}
	return kept;
}

/* ------------------------------------------------------- dependencies */

/* x (described by xi) needs y: names its soname, or imports what y
 * defines and nothing global does. */
static int needs(const struct image_info *xi, const struct rewire_lib *y)
{
	const struct image_info *yi = y->cur ? &y->cur->info : NULL;
	if (!yi)
		return 0;
	for (size_t i = 0; yi->soname && i < xi->nneeded; i++)
		if (!strcmp(xi->needed[i], yi->soname))
			return 1;
	for (size_t i = 0; i < xi->nundefs; i++)
		if (info_defines(yi, xi->undefs[i]) && !dlsym(RTLD_DEFAULT, xi->undefs[i]))
			return 1;
	return 0;
}

static size_t count_libs(void)
{
	size_t n = 0;
	for (struct rewire_lib *l = libs; l; l = l->next)
		n++;
	return n;
}

static int member(struct rewire_lib **set, size_t n, const struct rewire_lib *l)
{
	for (size_t i = 0; i < n; i++)
		if (set[i] == l)
			return 1;
	return 0;
}

/* lib and every library that needs it, directly or not. */
static size_t dependents(struct rewire_lib *lib, struct rewire_lib **set)
{
	size_t n = 0;
	set[n++] = lib;
	for (int grew = 1; grew;) {
		grew = 0;
		for (struct rewire_lib *l = libs; l; l = l->next)
			for (size_t i = 0; i < n && !member(set, n, l); i++)
				if (l->cur && needs(&l->cur->info, set[i]))
					set[n++] = l, grew = 1;
	}
	return n;
}

/* set ordered so that each library comes after those it needs (by
 * infos[i], what set[i] will be). -1 on a cycle. */
static int topo_visit(struct rewire_lib **set, const struct image_info **infos, size_t n, size_t i,
		      char *mark, struct rewire_lib **out, size_t *nout)
{
	if (mark[i] == 2)
		return 0;
	if (mark[i] == 1)
		return fail(set[i], "%s: its libraries depend on each other in a cycle: cannot "
			    "reload them in order", set[i]->name);
	mark[i] = 1;
	for (size_t k = 0; k < n; k++)
		if (k != i && needs(infos[i], set[k]) &&
		    topo_visit(set, infos, n, k, mark, out, nout) < 0)
			return -1;
	mark[i] = 2;
	out[(*nout)++] = set[i];
	return 0;
}

static int topo_sort(struct rewire_lib **set, const struct image_info **infos, size_t n,
		     struct rewire_lib **out)
{
	char *mark = calloc(n + 1, 1);
	size_t nout = 0;
	int rc = 0;
	if (!mark)
		return fail(set[0], "out of memory");
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = topo_visit(set, infos, n, i, mark, out, &nout);
	free(mark);
	return rc;
}

/* --------------------------------------------------------- transactions */

struct txn {
	unsigned long id;
	size_t n;
	struct rewire_lib **set;	/* in load order */
	struct source *src;
	int *fresh;			/* src read from the library's file (not a copy) */
	struct version **nv, **old;
};

static void txn_free(struct txn *t)
{
	for (size_t i = 0; t->src && i < t->n; i++)
		free(t->src[i].b);
	free(t->set), free(t->src), free(t->fresh), free(t->nv), free(t->old);
}

static int txn_alloc(struct txn *t, size_t n)
{
	memset(t, 0, sizeof *t);
	t->set = calloc(n, sizeof *t->set);
	t->src = calloc(n, sizeof *t->src);
	t->fresh = calloc(n, sizeof *t->fresh);
	t->nv = calloc(n, sizeof *t->nv);
	t->old = calloc(n, sizeof *t->old);
	return t->set && t->src && t->fresh && t->nv && t->old ? 0 : -1;
}

/* Undo a transaction that failed at step `done`: the versions it loaded
 * go (their unload hooks run first: their load hooks had accepted). */
static void txn_abort(struct txn *t, size_t done)
{
	while (done-- > 0) {
		run_unload_hook(t->nv[done]);
		version_release(t->nv[done]);
	}
}

static void txn_commit(struct txn *t)
{
	for (size_t i = 0; i < t->n; i++) {
		struct rewire_lib *l = t->set[i];
		struct version *v = t->nv[i];
		retarget(l, v);
		set_current(l->cur, 0);
		set_current(v, 1);
		t->old[i] = l->cur;
		v->older = l->versions;
		l->versions = l->cur = v;
		l->next_num = v->num + 1;
		atomic_store(&l->version, v->num);
		if (t->fresh[i])
			l->seen = t->src[i].st;
	}
	for (size_t i = t->n; i-- > 0;)
		if (t->old[i])
			run_unload_hook(t->old[i]);
}

/* Load every library of t in order; commit all, or none. */
static int txn_run(struct txn *t)
{
	t->id = ++ntxn;
	for (size_t i = 0; i < t->n; i++) {
		struct rewire_lib *l = t->set[i];
		char err[ERRLEN];
		if (!(t->nv[i] = version_load(l, &t->src[i], t->id, t->nv, i))) {
			memcpy(err, last_err, sizeof err);
			txn_abort(t, i);
			for (size_t k = 0; k < t->n; k++)
				memcpy(t->set[k]->err, err, sizeof err);
			memcpy(last_err, err, sizeof err);
			return -1;
		}
	}
	for (size_t i = 0; i < t->n; i++)	/* an unload hook may still fail */
		t->set[i]->err[0] = 0;
	txn_commit(t);
	return 0;
}

/* Where each library of the set is loaded from: lib from the file read;
 * the others from their file when it changed and is complete, else from
 * the bytes their current version was made from. */
static int gather_sources(struct txn *t, struct rewire_lib **set, struct source *first)
{
	for (size_t i = 0; i < t->n; i++) {
		struct rewire_lib *l = set[i];
		struct stat st;
		t->set[i] = l;
		if (i == 0) {
			t->src[0] = *first, t->fresh[0] = 1;
			*first = (struct source){0};
		} else if (stat(l->path, &st) == 0 && !same_file(&st, &l->seen) &&
			   read_source(l, &t->src[i]) == SRC_OK) {
			t->fresh[i] = 1;
		} else if (read_pristine(l->cur, &t->src[i]) < 0) {
			return -1;
		}
	}
	return 0;
}

static void txn_swap(struct txn *t, size_t i, size_t k)
{
	struct rewire_lib *l = t->set[i];
	struct source s = t->src[i];
	int f = t->fresh[i];
	t->set[i] = t->set[k], t->src[i] = t->src[k], t->fresh[i] = t->fresh[k];
	t->set[k] = l, t->src[k] = s, t->fresh[k] = f;
}

/* t->set in dependency order, by what each library is about to be. */
static int order(struct txn *t)
{
	const struct image_info **infos = calloc(t->n, sizeof *infos);
	struct rewire_lib **out = calloc(t->n, sizeof *out);
	struct image_info *tmp = calloc(t->n, sizeof *tmp);
	struct elf e;
	int rc = infos && out && tmp ? 0 : -1;
	for (size_t i = 0; rc == 0 && i < t->n; i++) {
		const char *why = elf_parse(&e, t->src[i].b, t->src[i].n);
		if (why || info_read(&tmp[i], &e) < 0)
			rc = fail(t->set[i], "%s: %s", t->set[i]->name,
				  why ? why : "out of memory");
		infos[i] = &tmp[i];
	}
	if (rc == 0 && (rc = topo_sort(t->set, infos, t->n, out)) == 0)
		for (size_t i = 0; i < t->n; i++)
			for (size_t k = i; k < t->n; k++)
				if (t->set[k] == out[i])
					txn_swap(t, i, k);
	for (size_t i = 0; tmp && i < t->n; i++)
		info_free(&tmp[i]);
	free(infos), free(out), free(tmp);
	return rc;
}

/* Reload lib (from s, its file just read) and its dependents: 1, or -1. */
static int reload(struct rewire_lib *lib, struct source *s)
{
	struct txn t;
	int rc = -1;
	if (txn_alloc(&t, count_libs()) < 0) {
		txn_free(&t);
		free(s->b);
		return fail(lib, "%s: out of memory", lib->name);
	}
	struct rewire_lib **set = calloc(count_libs(), sizeof *set);
	if (!set) {
		fail(lib, "%s: out of memory", lib->name);
	} else {
		t.n = dependents(lib, set);
		if (gather_sources(&t, set, s) == 0 && order(&t) == 0)
			rc = txn_run(&t) == 0 ? 1 : -1;
	}
	free(set);
	free(s->b);
	txn_free(&t);
	return rc;
}

static int update_locked(struct rewire_lib *lib)
{
	struct stat st = {0};
	struct source s;
	if (stat(lib->path, &st) == 0 && same_file(&st, &lib->seen))
		return 0;
	switch (read_source(lib, &s)) {
	case SRC_WAIT:
		return 0;	/* the error says what is awaited */
	case SRC_ERR:
		lib->seen = s.st.st_ino ? s.st : st;
		return -1;
	}
	lib->seen = s.st;	/* tried: not again until it changes */
	return reload(lib, &s);
}

/* ------------------------------------------------------------- crashes */

static struct version *version_at(uintptr_t pc)
{
	for (struct rewire_lib *l = libs; l; l = l->next)
		for (struct version *v = l->versions; v; v = v->older)
			for (int i = 0; i < v->info.nexec; i++)
				if (pc - v->base >= v->info.exec[i].lo &&
				    pc - v->base < v->info.exec[i].hi)
					return v;
	return NULL;
}

static int bound_to(const struct version *v, enum vstate st)
{
	for (size_t i = 0; i < v->nbound; i++)
		if (v->bound[i] && v->bound[i]->state == st)
			return 1;
	return 0;
}

/* The newest version of l loaded before transaction txn that can run. */
static struct version *before(struct rewire_lib *l, unsigned long txn)
{
	for (struct version *v = l->versions; v; v = v->older)
		if (v->txn < txn && v->state == V_LIVE && v->handle)
			return v;
	return NULL;
}

/* Mark the current versions to undo: those of bad's transaction, and
 * those bound to one undone (until nothing changes). */
static void mark_undone(struct version *bad)
{
	bad->state = V_BAD;
	for (int more = 1; more;) {
		more = 0;
		for (struct rewire_lib *l = libs; l; l = l->next) {
			struct version *c = l->cur;
			if (c && c->state == V_LIVE &&
			    (c->txn == bad->txn || bound_to(c, V_BAD) || bound_to(c, V_ROLLED)))
				c->state = V_ROLLED, more = 1;
		}
	}
}

/* Roll back the transaction that brought bad in; say what happened in
 * msg. */
static void rollback(struct version *bad, char *msg, size_t cap)
{
	mark_undone(bad);
	for (struct rewire_lib *l = libs; l; l = l->next) {
		struct version *c = l->cur, *to;
		size_t len = strlen(msg);
		if (!c || (c->state != V_BAD && c->state != V_ROLLED))
			continue;
		if (!(to = before(l, bad->txn))) {
			snprintf(msg + len, cap - len, "; %s has no earlier version to go back to: "
				 "version %d stays", l->name, c->num);
			continue;
		}
		int missing = retarget(l, to);
		set_current(c, 0);
		set_current(to, 1);
		l->cur = to;
		atomic_store(&l->version, to->num);
		snprintf(msg + len, cap - len, "; %s rolled back to version %d%s", l->name, to->num,
			 missing ? " (some of its functions are newer: they stay)" : "");
		run_load_hook(to);
	}
}

static void on_crash(struct rewire_lib *lib, const struct guard *g)
{
	char why[512], msg[ERRLEN];
	struct version *v = version_at(g->culprit);
	describe_crash(g, why, sizeof why);
	if (!v) {
		fail(lib, "library code crashed: %s", why);
	} else {
		snprintf(msg, sizeof msg, "%s version %d crashed: %s", v->lib->name, v->num, why);
		if (v == v->lib->cur)
			rollback(v, msg, sizeof msg);
		else
			snprintf(msg + strlen(msg), sizeof msg - strlen(msg), " (not the current "
				 "version: nothing to roll back)");
		fail(v->lib, "%s", msg);
		if (lib)
			memcpy(lib->err, last_err, sizeof lib->err);
	}
	fprintf(stderr, "rewire: %s\n", last_err);
}

/* ------------------------------------------------------------ the API */

/* The original file must not be loaded already (the program linked
 * against it, or a library opened before it needs it): its symbols would
 * shadow every copy. */
struct same_inode {
	const struct stat *st;
	const char *name;
};

static int same_inode_cb(struct dl_phdr_info *info, size_t size, void *p)
{
	struct same_inode *s = p;
	struct stat st;
	if (info->dlpi_name && info->dlpi_name[0] && stat(info->dlpi_name, &st) == 0 &&
	    st.st_dev == s->st->st_dev && st.st_ino == s->st->st_ino)
		s->name = info->dlpi_name;
	return s->name != NULL;
}

static int check_not_loaded(struct rewire_lib *lib)
{
	struct stat st;
	struct same_inode s = {&st, NULL};
	if (stat(lib->path, &st) < 0)
		return fail(lib, "%s: %s", lib->name, strerror(errno));
	dl_iterate_phdr(same_inode_cb, &s);
	if (s.name)
		return fail(lib, "%s is already loaded in the process (as %s: the program or a "
			    "library opened before it links against it): it would shadow every "
			    "reloaded version", lib->name, s.name);
	return 0;
}

static struct rewire_lib *lib_new(const char *path, void *state)
{
	struct rewire_lib *lib = calloc(1, sizeof *lib);
	char cwd[PATH_MAX];
	if (!lib || !(lib->name = strdup(path)))
		return free(lib), NULL;
	if (path[0] == '/' || !getcwd(cwd, sizeof cwd))
		lib->path = strdup(path);
	else if (asprintf(&lib->path, "%s/%s", cwd, path) < 0)
		lib->path = NULL;
	if (!lib->path)
		return free(lib->name), free(lib), NULL;
	lib->state = state;
	lib->next_num = 1;
	return lib;
}

static void lib_free(struct rewire_lib *lib)
{
	size_t pg = page_size();
	for (struct chunk *c = lib->chunks, *n; c; c = n) {
		n = c->next;
		munmap(c->code, 2 * pg);
		free(c);
	}
	for (size_t i = 0; i < lib->nsyms; i++)
		free(lib->syms[i].name);
	free(lib->syms);
	free(lib->path);
	free(lib->name);
	free(lib);
}

static int open_locked(struct rewire_lib *lib)
{
	struct source s;
	struct txn t;
	int rc = -1;
	if (check_not_loaded(lib) < 0)
		return -1;
	if (read_source(lib, &s) != SRC_OK)
		return -1;
	lib->seen = s.st;
	if (txn_alloc(&t, 1) == 0) {
		t.n = 1, t.set[0] = lib, t.src[0] = s, t.fresh[0] = 1;
		s.b = NULL;
		rc = txn_run(&t);
	}
	free(s.b);
	txn_free(&t);
	return rc;
}

rewire_lib *rewire_lib_open(const char *path, void *state)
{
	struct rewire_lib *lib;
	if (!path || !(lib = lib_new(path, state))) {
		fail(NULL, "rewire_lib_open: %s", path ? "out of memory" : "no path");
		return NULL;
	}
	pthread_mutex_lock(&big);
	int rc = open_locked(lib);
	if (rc == 0)
		lib->next = libs, libs = lib;
	pthread_mutex_unlock(&big);
	if (rc < 0) {
		for (struct version *v = lib->versions, *next; v; v = next)
			next = v->older, version_free(v);	/* kept by glibc */
		lib_free(lib);
		return NULL;
	}
	return lib;
}

/* Why name gives no trampoline. */
static void *sym_refused(struct rewire_lib *lib, const char *name)
{
	void *p = dlsym(lib->cur->handle, name);
	if (!p)
		fail(lib, "%s: no symbol %s", lib->name, name);
	else if (own_sym(lib->cur, name, 0))
		fail(lib, "%s: %s is data, not a function: rewire_lib_sym gives functions only "
		     "(a pointer to data would stay on the old version after a reload)", lib->name,
		     name);
	else
		fail(lib, "%s does not define %s (one of its dependencies does)", lib->name, name);
	return NULL;
}

static void *sym_locked(struct rewire_lib *lib, const char *name)
{
	for (size_t i = 0; i < lib->nsyms; i++)
		if (!strcmp(lib->syms[i].name, name))
			return lib->syms[i].tramp;
	void *addr = own_sym(lib->cur, name, 1);
	if (!addr)
		return sym_refused(lib, name);
	if (lib->nsyms == lib->capsyms) {
		size_t cap = lib->capsyms ? 2 * lib->capsyms : 16;
		struct sym *s = realloc(lib->syms, cap * sizeof *s);
		if (!s)
			return fail(lib, "%s: out of memory", lib->name), NULL;
		lib->syms = s, lib->capsyms = cap;
	}
	struct sym *s = &lib->syms[lib->nsyms];
	if (!(s->name = strdup(name)) || tramp_new(lib, s) < 0)
		return free(s->name), NULL;
	atomic_store_explicit(s->slot, (uintptr_t)addr, memory_order_release);
	lib->nsyms++;
	return s->tramp;
}

void *rewire_lib_sym(rewire_lib *lib, const char *name)
{
	if (!lib || !name)
		return fail(lib, "rewire_lib_sym: no library or no name"), NULL;
	pthread_mutex_lock(&big);
	void *p = sym_locked(lib, name);
	pthread_mutex_unlock(&big);
	return p;
}

int rewire_lib_update(rewire_lib *lib)
{
	if (!lib)
		return fail(NULL, "rewire_lib_update: no library");
	pthread_mutex_lock(&big);
	int rc = update_locked(lib);
	pthread_mutex_unlock(&big);
	return rc;
}

/* Every library, dependencies first (by what they are now). */
static struct rewire_lib **all_in_order(size_t *n)
{
	*n = count_libs();
	struct rewire_lib **set = calloc(*n + 1, sizeof *set), **out = calloc(*n + 1, sizeof *out);
	const struct image_info **infos = calloc(*n + 1, sizeof *infos);
	size_t i = 0;
	for (struct rewire_lib *l = libs; set && infos && l; l = l->next, i++)
		set[i] = l, infos[i] = &l->cur->info;
	if (!set || !out || !infos || (*n && topo_sort(set, infos, *n, out) < 0)) {
		free(out);
		out = NULL;
	}
	free(set), free(infos);
	return out;
}

int rewire_lib_update_all(void)
{
	size_t n;
	int reloaded = 0, failed = 0;
	pthread_mutex_lock(&big);
	struct rewire_lib **all = all_in_order(&n);
	for (size_t i = 0; all && i < n; i++) {
		unsigned long before_txn = ntxn;
		int rc = update_locked(all[i]);
		if (rc < 0)
			failed = 1;
		else if (rc > 0 && ntxn != before_txn)	/* its dependents came along */
			for (size_t k = 0; k < n; k++)
				reloaded += all[k]->cur && all[k]->cur->txn == ntxn;
	}
	pthread_mutex_unlock(&big);
	if (!all && n)
		return -1;
	free(all);
	return failed ? -1 : reloaded;
}

int rewire_lib_version(const rewire_lib *lib)
{
	return lib ? atomic_load(&((struct rewire_lib *)lib)->version) : 0;
}

const char *rewire_lib_error(const rewire_lib *lib)
{
	return lib ? lib->err : last_err;
}

int rewire_lib_call(rewire_lib *lib, void (*fn)(void *), void *arg)
{
	struct guard g;
	if (!fn)
		return fail(lib, "rewire_lib_call: no function");
	if (!guard_run(&lib_ops, &g, fn, arg))
		return 0;
	pthread_mutex_lock(&big);
	on_crash(lib, &g);
	pthread_mutex_unlock(&big);
	return REWIRE_CRASHED;
}

int rewire_lib_unload_old(rewire_lib *lib)
{
	char msg[ERRLEN] = "";
	int kept = 0;
	size_t n = 0;
	pthread_mutex_lock(&big);
	struct rewire_lib **all = lib ? NULL : all_in_order(&n);
	if (lib)
		kept = unload_old_one(lib, msg, sizeof msg);
	else if (!all)
		n = 0;	/* a dependency cycle: the error says so */
	while (n-- > 0)	/* dependents first */
		kept += unload_old_one(all[n], msg, sizeof msg);
	if (kept)
		fail(lib, "%s", msg);
	pthread_mutex_unlock(&big);
	free(all);
	return kept;
}

void rewire_lib_close(rewire_lib *lib)
{
	if (!lib)
		return;
	pthread_mutex_lock(&big);
	struct rewire_lib **p = &libs;
	while (*p && *p != lib)
		p = &(*p)->next;
	if (*p)
		*p = lib->next;
	if (lib->cur)
		run_unload_hook(lib->cur);
	lib->cur = NULL;
	for (struct version *v = lib->versions, *next; v; v = next) {
		next = v->older;
		if (version_close(v))
			version_free(v);	/* kept mapped: its file stays until exit */
	}
	lib->versions = NULL;
	pthread_mutex_unlock(&big);
	lib_free(lib);
}

/* At exit, the copies this process made: nothing will load them again. */
static void remove_copies(void)
{
	if (libdir_pid != getpid())
		return;
	for (struct rewire_lib *l = libs; l; l = l->next)
		for (struct version *v = l->versions; v; v = v->older)
			if (v->copy && v->pid == getpid())
				unlink(v->copy);
	for (size_t i = 0; i < norphans; i++)
		unlink(orphans[i]);
	char lock[PATH_MAX + 8];
	snprintf(lock, sizeof lock, "%s/lock", libdir);
	unlink(lock);
	rmdir(libdir);
}
