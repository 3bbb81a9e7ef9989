/* Unit tests of the API library (librewire-api.a): the dylib reload API
 * (src/api/, include/rewire_lib.h) and the calls into the agent
 * (src/api/rewire.c, include/rewire.h), in a process with no agent.
 *
 * The library's files share hidden functions (src/api/lib.h), which the
 * archive's one object makes local; this test links the objects as they
 * are before that, and calls those functions: what a file's bytes say
 * (complete or still being written, soname, DT_NEEDED, exported and
 * imported names), the dependency order, a library's file and the bytes
 * of its copy. Then, through the public functions, real shared objects
 * compiled with cc at test time: the soname rewritten in each copy, the
 * copies' names, a dependent bound to its dependency's copy, versions, the
 * load and unload hooks, unloading old versions, and the refusals.
 *
 * Output: one line per check, "PASS api: <name>" or "FAIL api: <name>:
 * <why>". Exits 0 unless the harness cannot run. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <limits.h>
#include <link.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "../../include/rewire.h"
#include "api/lib.h"	/* last: it poisons exit and abort */

static char tmp[256];

static void pass(const char *name) { printf("PASS api: %s\n", name); }

static void fail(const char *name, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	printf("FAIL api: %s: ", name);
	vprintf(fmt, ap);
	printf("\n");
	va_end(ap);
}

#define CHECK(name, cond, ...) \
	do { if (cond) pass(name); else fail(name, __VA_ARGS__); } while (0)

/* A path in the temp dir; a few rotating buffers so calls can nest. */
static const char *at(const char *name)
{
	static char bufs[8][512];
	static int next;
	char *b = bufs[next++ % 8];
	snprintf(b, sizeof bufs[0], "%s/%s", tmp, name);
	return b;
}


/* Run a shell command in the temp dir; 0 when it exited 0. */
static int sh(const char *fmt, ...)
{
	char cmd[4096];
	int n = snprintf(cmd, sizeof cmd, "cd '%s' && ( ", tmp);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd + n, sizeof cmd - (size_t)n, fmt, ap);
	va_end(ap);
	strncat(cmd, " ) >>log 2>&1", sizeof cmd - strlen(cmd) - 1);
	return system(cmd) == 0 ? 0 : -1;
}

static int put(const char *name, const char *text)
{
	FILE *f = fopen(at(name), "w");
	return f && fputs(text, f) >= 0 && fclose(f) == 0 ? 0 : -1;
}

/* A file's bytes in a buffer of exactly its size (so that a sanitizer sees
 * a read past it), or NULL. */
static unsigned char *slurp(const char *path, size_t *n)
{
	struct stat st;
	FILE *f = fopen(path, "rb");
	unsigned char *b = NULL;
	if (f && fstat(fileno(f), &st) == 0 && (b = malloc(st.st_size ? (size_t)st.st_size : 1)) &&
	    fread(b, 1, (size_t)st.st_size, f) == (size_t)st.st_size)
		*n = (size_t)st.st_size;
	else
		free(b), b = NULL;
	if (f)
		fclose(f);
	return b;
}

static int has(const char *s, const char *part)
{
	return s && strstr(s, part) != NULL;
}

/* ------------------------------------------------------ the libraries */

/* dep: VALUE from dep_fn, and hooks that note the versions in the state
 * (int[2]: the last loaded, the last unloaded) and refuse with REFUSE. */
static const char dep_src[] =
	"int dep_data = 5;\n"
	"#ifndef NO_FN\n"
	"int dep_fn(void) { return VALUE; }\n"
	"#endif\n"
	"int rewire_lib_load(void *state, int version)\n"
	"{ ((int *)state)[0] = version; return REFUSE; }\n"
	"void rewire_lib_unload(void *state, int version) { ((int *)state)[1] = version; }\n";

/* The libraries it loads are built for the machine it was built for:
 * built for aarch64, "cc" and "g++" are aarch64-linux-gnu-gcc and -g++
 * when they are there (Debian's names of the native compilers on aarch64,
 * and of the cross compilers when the test runs under qemu-user). */
static int own_compilers(void)
{
#ifdef __aarch64__
	char path[8192];
	if (system("command -v aarch64-linux-gnu-gcc >/dev/null") != 0)
		return 0;
	if (mkdir(at("bin"), 0700) < 0 ||
	    put("bin/cc", "#!/bin/sh\nexec aarch64-linux-gnu-gcc \"$@\"\n") ||
	    put("bin/g++", "#!/bin/sh\nexec aarch64-linux-gnu-g++ \"$@\"\n") ||
	    chmod(at("bin/cc"), 0755) < 0 || chmod(at("bin/g++"), 0755) < 0)
		return -1;
	snprintf(path, sizeof path, "%s:%s", at("bin"), getenv("PATH") ? getenv("PATH") : "/usr/bin:/bin");
	return setenv("PATH", path, 1);
#else
	return 0;
#endif
}

static int build_dep(const char *out, int value, int refuse, const char *flags)
{
	/* Written under another name, then renamed: as a build would. */
	return sh("cc -shared -fPIC -DVALUE=%d -DREFUSE=%d %s -Wl,-soname,libdep.so "
		  "-Wl,--hash-style=both -o %s.tmp dep.c && mv %s.tmp %s",
		  value, refuse, flags, out, out, out);
}

static int build_all(void)
{
	return put("dep.c", dep_src) || build_dep("libdep.so", 1, 0, "") ||
	       put("user.c", "int dep_fn(void);\nint user_fn(void) { return 10 * dep_fn(); }\n") ||
	       sh("cc -shared -fPIC -Wl,-soname,libuser.so -o libuser.so user.c -L. -ldep") ||
	       put("weak.c", "extern void maybe(void) __attribute__((weak));\n"
			     "void w(void) { if (maybe) maybe(); }\n") ||
	       sh("cc -shared -fPIC -o libweak.so weak.c") ||
	       put("plain.c", "int plain_fn(void) { return 3; }\n") ||
	       sh("cc -shared -fPIC -Wl,-z,nodelete -Wl,-soname,libnodel.so -o libnodel.so plain.c") ||
	       sh("cc -shared -fPIC -Wl,-soname,ab -o libab.so plain.c") ||
	       sh("cc -shared -fPIC -o libnos.so plain.c") ||
	       put("needs.c", "int plain_fn(void);\nint needs_fn(void) { return plain_fn(); }\n") ||
	       sh("cc -shared -fPIC -o libneedab.so needs.c ./libab.so") ||
	       sh("cc -shared -fPIC -o libneednos.so needs.c -L. -lnos") ||
	       put("tls.c", "extern int __cxa_thread_atexit_impl(void (*)(void *), void *, void *);\n"
			    "static void dtor(void *p) { (void)p; }\n"
			    "void reg(void) { __cxa_thread_atexit_impl(dtor, 0, 0); }\n") ||
	       sh("cc -shared -fPIC -o libtls.so tls.c") ||
	       sh("cc -c -fPIC -o dep.o dep.c -DVALUE=1 -DREFUSE=0");
}

/* ------------------------------------------------------- pure helpers */

static void test_helpers(void)
{
	CHECK("lib_in_file: ranges inside the file",
	      lib_in_file(10, 0, 10) && lib_in_file(10, 10, 0) && lib_in_file(10, 3, 7), "refused");
	CHECK("lib_in_file: ranges past the end, and ones that overflow", !lib_in_file(10, 11, 0) &&
	      !lib_in_file(10, 5, 6) && !lib_in_file(10, 5, UINT64_MAX) &&
	      !lib_in_file(10, UINT64_MAX, 1), "accepted");
	CHECK("lib_base_name", !strcmp(lib_base_name("/a/b/libx.so"), "libx.so") &&
	      !strcmp(lib_base_name("libx.so"), "libx.so") && !strcmp(lib_base_name("dir/"), ""),
	      "wrong name");
	struct stat a = {0}, b;
	a.st_dev = 1, a.st_ino = 2, a.st_size = 3, a.st_mtim.tv_sec = 4, a.st_mtim.tv_nsec = 5;
	b = a;
	int same = lib_same_file(&a, &b);
	b.st_mtim.tv_nsec = 6;
	int nsec = lib_same_file(&a, &b);
	b = a, b.st_ino = 7;
	int ino = lib_same_file(&a, &b);
	b = a, b.st_size = 8;
	CHECK("lib_same_file: device, inode, size and time to the nanosecond",
	      same && !nsec && !ino && !lib_same_file(&a, &b), "%d %d %d", same, nsec, ino);
}

/* ------------------------------------------------- what a file says */

/* The bytes, with one change, as lib_elf_incomplete sees them. */
static const char *damaged(const unsigned char *good, size_t n,
			   void (*edit)(unsigned char *, size_t))
{
	static unsigned char *b;
	free(b);
	b = malloc(n);
	memcpy(b, good, n);
	edit(b, n);
	return lib_elf_incomplete(b, n);
}

static void no_magic(unsigned char *b, size_t n) { b[1] = 'X'; }
static void class32(unsigned char *b, size_t n) { b[EI_CLASS] = ELFCLASS32; }
static void shoff_past(unsigned char *b, size_t n) { ((Elf64_Ehdr *)b)->e_shoff = n - 8; }
static void no_dynamic(unsigned char *b, size_t n)
{
	Elf64_Ehdr *eh = (Elf64_Ehdr *)b;
	Elf64_Phdr *ph = (Elf64_Phdr *)(b + eh->e_phoff);
	for (int i = 0; i < eh->e_phnum; i++)
		if (ph[i].p_type == PT_DYNAMIC)
			ph[i].p_type = PT_NULL;
}
static void seg_past(unsigned char *b, size_t n)
{
	Elf64_Ehdr *eh = (Elf64_Ehdr *)b;
	Elf64_Phdr *ph = (Elf64_Phdr *)(b + eh->e_phoff);
	for (int i = 0; i < eh->e_phnum; i++)
		if (ph[i].p_type == PT_LOAD)
			ph[i].p_filesz = n;
}
static void no_sections(unsigned char *b, size_t n)
{
	Elf64_Ehdr *eh = (Elf64_Ehdr *)b;
	eh->e_shoff = 0, eh->e_shnum = 0, eh->e_shstrndx = 0;
}

static void test_incomplete(void)
{
	size_t n, m;
	unsigned char *good = slurp(at("libdep.so"), &n), *obj = slurp(at("dep.o"), &m);
	if (!good || !obj) {
		fail("lib_elf_incomplete", "no test library");
		free(good), free(obj);
		return;
	}
	CHECK("a whole shared object is complete", !lib_elf_incomplete(good, n), "%s",
	      lib_elf_incomplete(good, n));
	size_t accepted = 0, first = 0;
	for (size_t len = 0; len < n; len++) {
		unsigned char *b = malloc(len ? len : 1);
		memcpy(b, good, len);
		if (!lib_elf_incomplete(b, len) && !accepted++)
			first = len;
		free(b);
	}
	CHECK("every prefix of a shared object is incomplete (a file being written)", !accepted,
	      "%zu accepted, the first %zu of %zu bytes", accepted, first, n);
	CHECK("a short file is named so",
	      has(lib_elf_incomplete(good, 20), "shorter than an ELF header"), "%s",
	      lib_elf_incomplete(good, 20));
	CHECK("no ELF magic", has(damaged(good, n, no_magic), "no ELF magic"), "%s",
	      damaged(good, n, no_magic));
	CHECK("a 32-bit file is not for this machine",
	      has(damaged(good, n, class32), "not an ELF object for this machine"), "%s",
	      damaged(good, n, class32));
	CHECK("a relocatable object is not a shared object",
	      has(lib_elf_incomplete(obj, m), "not a shared object"), "%s",
	      lib_elf_incomplete(obj, m));
	CHECK("section headers past the end",
	      has(damaged(good, n, shoff_past), "section headers past"), "%s",
	      damaged(good, n, shoff_past));
	CHECK("no dynamic segment", has(damaged(good, n, no_dynamic), "no dynamic segment"), "%s",
	      damaged(good, n, no_dynamic));
	CHECK("a segment past the end",
	      has(damaged(good, n, seg_past), "a segment ends past the end"), "%s",
	      damaged(good, n, seg_past));
	CHECK("a file without section headers (stripped of them) is complete",
	      !damaged(good, n, no_sections), "%s", damaged(good, n, no_sections));
	free(good), free(obj);
}

/* The info of a library's file; in->strs etc. owned by in. */
static int info_of(const char *name, struct image_info *in, void (*edit)(unsigned char *, size_t),
		   const char **why)
{
	size_t n;
	struct elf e;
	unsigned char *b = slurp(at(name), &n);
	*why = NULL;
	memset(in, 0, sizeof *in);
	if (!b)
		return *why = "cannot read it", -1;
	if (edit)
		edit(b, n);
	if ((*why = lib_elf_incomplete(b, n)) || (*why = lib_elf_parse(&e, b, n)) ||
	    lib_info_read(in, &e) < 0) {
		free(b);
		return -1;
	}
	free(b);	/* in holds a copy of the strings */
	return 0;
}

static int has_name(const char *const *v, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(v[i], name))
			return 1;
	return 0;
}

static int sorted(const char *const *v, size_t n)
{
	for (size_t i = 1; i < n; i++)
		if (strcmp(v[i - 1], v[i]) > 0)
			return 0;
	return 1;
}

static void test_info(void)
{
	struct image_info in;
	const char *why;
	if (info_of("libdep.so", &in, NULL, &why) == 0) {
		CHECK("the soname is read", in.soname && !strcmp(in.soname, "libdep.so"), "%s",
		      in.soname ? in.soname : "none");
		CHECK("the exported names are read, sorted",
		      has_name(in.defs, in.ndefs, "dep_fn") &&
		      has_name(in.defs, in.ndefs, "dep_data") &&
		      has_name(in.defs, in.ndefs, "rewire_lib_load") && sorted(in.defs, in.ndefs),
		      "%zu names", in.ndefs);
		CHECK("lib_info_defines", lib_info_defines(&in, "dep_fn") &&
		      !lib_info_defines(&in, "dep_f") && !lib_info_defines(&in, "dep_fn2") &&
		      !lib_info_defines(&in, ""), "wrong answer");
		CHECK("one executable segment, holding the code",
		      in.nexec >= 1 && in.image.lo == 0 && in.exec[0].lo < in.exec[0].hi &&
		      in.exec[0].hi <= in.image.hi, "%d segments", in.nexec);
		CHECK("a plain library has no flag that keeps it loaded", !in.nodelete &&
		      !in.tls_dtors && !in.unique, "%d %d %d", in.nodelete, in.tls_dtors,
		      in.unique);
		lib_info_free(&in);
	} else {
		fail("info of libdep.so", "%s", why);
	}
	if (info_of("libuser.so", &in, NULL, &why) == 0) {
		CHECK("DT_NEEDED and the imported names are read",
		      has_name(in.needed, in.nneeded, "libdep.so") &&
		      has_name(in.undefs, in.nundefs, "dep_fn") &&
		      !has_name(in.defs, in.ndefs, "dep_fn"), "%zu needed, %zu imported",
		      in.nneeded, in.nundefs);
		lib_info_free(&in);
	} else {
		fail("info of libuser.so", "%s", why);
	}
	if (info_of("libweak.so", &in, NULL, &why) == 0) {
		CHECK("a weak undefined name is not an import",
		      !has_name(in.undefs, in.nundefs, "maybe") &&
		      !has_name(in.defs, in.ndefs, "maybe") && has_name(in.defs, in.ndefs, "w"),
		      "listed");
		lib_info_free(&in);
	}
	if (info_of("libnodel.so", &in, NULL, &why) == 0) {
		CHECK("-z nodelete is seen", in.nodelete, "not seen");
		lib_info_free(&in);
	}
	if (info_of("libtls.so", &in, NULL, &why) == 0) {
		CHECK("thread_local destructors are seen (__cxa_thread_atexit_impl)", in.tls_dtors,
		      "not seen");
		lib_info_free(&in);
	}
	if (sh("g++ --version") == 0) {
		put("uniq.cc", "inline int &ctr() { static int c; return c; }\n"
			       "int bump() { return ++ctr(); }\n");
		if (sh("g++ -shared -fPIC -o libuniq.so uniq.cc") == 0 &&
		    info_of("libuniq.so", &in, NULL, &why) == 0) {
			CHECK("STB_GNU_UNIQUE symbols are seen", in.unique, "not seen");
			lib_info_free(&in);
		} else {
			fail("STB_GNU_UNIQUE symbols are seen", "cannot build or read libuniq.so");
		}
	}
	/* Without section headers, .dynsym's size comes from DT_HASH. */
	if (info_of("libdep.so", &in, no_sections, &why) == 0) {
		CHECK("without section headers the names are found through DT_HASH",
		      has_name(in.defs, in.ndefs, "dep_fn"), "%zu names", in.ndefs);
		lib_info_free(&in);
	} else {
		fail("without section headers", "%s", why);
	}
}

static void misalign_dynamic(unsigned char *b, size_t n)
{
	Elf64_Ehdr *eh = (Elf64_Ehdr *)b;
	Elf64_Phdr *ph = (Elf64_Phdr *)(b + eh->e_phoff);
	for (int i = 0; i < eh->e_phnum; i++)
		if (ph[i].p_type == PT_DYNAMIC)
			ph[i].p_offset += 4;
}

static void strtab_elsewhere(unsigned char *b, size_t n)
{
	Elf64_Ehdr *eh = (Elf64_Ehdr *)b;
	Elf64_Phdr *ph = (Elf64_Phdr *)(b + eh->e_phoff);
	for (int i = 0; i < eh->e_phnum; i++)
		if (ph[i].p_type == PT_DYNAMIC)
			for (Elf64_Dyn *d = (Elf64_Dyn *)(b + ph[i].p_offset); d->d_tag != DT_NULL; d++)
				if (d->d_tag == DT_STRTAB)
					d->d_un.d_ptr = 0x7fff0000;
}

static void test_parse(void)
{
	size_t n;
	unsigned char *good = slurp(at("libdep.so"), &n);
	struct elf e;
	if (!good || lib_elf_parse(&e, good, n)) {
		fail("lib_elf_parse", "cannot parse libdep.so");
		free(good);
		return;
	}
	CHECK("lib_elf_str: inside .dynstr, and not past it", lib_elf_str(&e, 0) &&
	      !strcmp(lib_elf_str(&e, 0), "") && lib_elf_str(&e, e.strsz - 1) &&
	      !lib_elf_str(&e, e.strsz) && !lib_elf_str(&e, UINT64_MAX), "wrong");
	CHECK("lib_dyn_val: a tag's value, or the default",
	      lib_dyn_val(&e, DT_STRSZ, 0) == e.strsz && lib_dyn_val(&e, DT_RPATH, 77) == 77,
	      "wrong");
	unsigned char *b = malloc(n);
	memcpy(b, good, n);
	misalign_dynamic(b, n);
	CHECK("a misaligned dynamic segment is refused", has(lib_elf_parse(&e, b, n), "misaligned"),
	      "accepted");
	memcpy(b, good, n);
	strtab_elsewhere(b, n);
	CHECK("a string table outside the file is refused",
	      has(lib_elf_parse(&e, b, n), "no dynamic string table inside the file"), "accepted");
	free(b);
	free(good);
}

/* --------------------------------------------------- dependency order */

/* A library's info as lib_info_read leaves it: arrays, maybe empty. */
static const char *none[1];

static void fake_info(struct image_info *in)
{
	in->needed = in->needed ? in->needed : none;
	in->defs = in->defs ? in->defs : none;
	in->undefs = in->undefs ? in->undefs : none;
}

static void test_topo(void)
{
	struct version va = {0}, vb = {0}, vc = {0};
	struct rewire_lib A = {.name = "A", .cur = &va}, B = {.name = "B", .cur = &vb},
			  C = {.name = "C", .cur = &vc};
	const char *needs_a[] = {"libA.so"}, *b_defs[] = {"rw_test_only_b"},
		   *c_undefs[] = {"rw_test_only_b"};
	va.info.soname = "libA.so";
	vb.info.soname = "libB.so";
	vb.info.needed = needs_a, vb.info.nneeded = 1;
	vb.info.defs = b_defs, vb.info.ndefs = 1;
	vc.info.undefs = c_undefs, vc.info.nundefs = 1;
	fake_info(&va.info), fake_info(&vb.info), fake_info(&vc.info);
	struct rewire_lib *set[] = {&C, &B, &A}, *out[3] = {0};
	const struct image_info *infos[] = {&vc.info, &vb.info, &va.info};
	int rc = lib_topo_sort(set, infos, 3, out);
	CHECK("dependencies first: by DT_NEEDED and by imported names", rc == 0 && out[0] == &A &&
	      out[1] == &B && out[2] == &C, "rc %d: %s %s %s", rc, out[0] ? out[0]->name : "-",
	      out[1] ? out[1]->name : "-", out[2] ? out[2]->name : "-");

	/* An import that something global defines (libc's) is no dependency. */
	const char *puts_defs[] = {"puts"}, *puts_undefs[] = {"puts"};
	struct version vd = {0}, ve = {0};
	struct rewire_lib D = {.name = "D", .cur = &vd}, E = {.name = "E", .cur = &ve};
	vd.info.undefs = puts_undefs, vd.info.nundefs = 1;
	ve.info.defs = puts_defs, ve.info.ndefs = 1;
	fake_info(&vd.info), fake_info(&ve.info);
	struct rewire_lib *set2[] = {&D, &E}, *out2[2] = {0};
	const struct image_info *infos2[] = {&vd.info, &ve.info};
	rc = lib_topo_sort(set2, infos2, 2, out2);
	CHECK("an import the program's libraries define is no dependency",
	      rc == 0 && out2[0] == &D && out2[1] == &E, "rc %d", rc);

	/* A cycle, by what the libraries are about to be. */
	const char *needs_b[] = {"libB.so"};
	struct image_info a_next = va.info;
	a_next.needed = needs_b, a_next.nneeded = 1;
	const struct image_info *infos3[] = {&a_next, &vb.info};
	struct rewire_lib *set3[] = {&A, &B}, *out3[2];
	rc = lib_topo_sort(set3, infos3, 2, out3);
	CHECK("a cycle is refused", rc < 0 &&
	      has(rewire_lib_error(NULL), "depend on each other in a cycle"), "rc %d: %s", rc,
	      rewire_lib_error(NULL));
}

/* ------------------------------------------------------------ files */

static void test_source(void)
{
	struct rewire_lib lib = {0};
	struct source s;
	char path[512];
	lib.name = lib.path = path;
	snprintf(path, sizeof path, "%s", at("missing.so"));
	int rc = lib_read_source(&lib, &s);
	CHECK("a missing file is awaited (a build between unlink and write)",
	      rc == SRC_WAIT && has(lib.err, "No such file"), "%d: %s", rc, lib.err);
	snprintf(path, sizeof path, "%s", tmp);
	rc = lib_read_source(&lib, &s);
	CHECK("a directory is refused", rc == SRC_ERR && has(lib.err, "not a regular file"),
	      "%d: %s", rc, lib.err);
	snprintf(path, sizeof path, "%s", at("half.so"));
	sh("head -c 3000 libdep.so > half.so");
	rc = lib_read_source(&lib, &s);
	CHECK("an incomplete file is awaited", rc == SRC_WAIT &&
	      has(lib.err, "still being written?"), "%d: %s", rc, lib.err);
	lib.partial_since.tv_sec -= 6;	/* as if rewire had watched it stand still 6 s */
	rc = lib_read_source(&lib, &s);
	CHECK("an incomplete file that stood still is refused", rc == SRC_ERR &&
	      !has(lib.err, "waiting"), "%d: %s", rc, lib.err);
	snprintf(path, sizeof path, "%s", at("libdep.so"));
	size_t n;
	unsigned char *b = slurp(path, &n);
	rc = lib_read_source(&lib, &s);
	CHECK("a complete file is read whole", rc == SRC_OK && b && s.n == n && !memcmp(s.b, b, n),
	      "%d: %s", rc, lib.err);
	if (rc == SRC_OK)
		free(s.b);
	free(b);
}

static void test_pristine(void)
{
	struct rewire_lib lib = {.name = "fake"};
	struct patch p[] = {{4, {'a', 'b', 'c', 'd'}}};
	struct version v = {.lib = &lib, .patches = p, .npatches = 1};
	struct source s;
	char copy[512];
	snprintf(copy, sizeof copy, "%s", at("copy.bin"));
	put("copy.bin", "0123~xyz89");
	v.copy = copy;
	int rc = lib_read_pristine(&v, &s);
	CHECK("a copy's bytes with rewire's changes undone", rc == 0 && s.n == 10 &&
	      !memcmp(s.b, "0123abcd89", 10), "%d: %s", rc, lib.err);
	if (rc == 0)
		free(s.b);
	p[0].off = 8;
	rc = lib_read_pristine(&v, &s);
	CHECK("a copy shorter than its changes is refused", rc < 0 && has(lib.err, "was changed"),
	      "%d: %s", rc, lib.err);
	snprintf(copy, sizeof copy, "%s", at("gone.bin"));
	rc = lib_read_pristine(&v, &s);
	CHECK("a copy that is gone is refused, with its path", rc < 0 && has(lib.err, "gone.bin"),
	      "%d: %s", rc, lib.err);
}

/* ----------------------------------------------- the public functions */

/* The soname of the file at path, or with needed set its first DT_NEEDED
 * starting so; "" when none. */
static const char *name_in(const char *path, const char *needed, char *buf, size_t cap)
{
	struct image_info in;
	struct elf e;
	size_t n;
	unsigned char *b = slurp(path, &n);
	buf[0] = 0;
	if (b && !lib_elf_incomplete(b, n) && !lib_elf_parse(&e, b, n) &&
	    lib_info_read(&in, &e) == 0) {
		if (!needed && in.soname)
			snprintf(buf, cap, "%s", in.soname);
		for (size_t i = 0; needed && !buf[0] && i < in.nneeded; i++)
			if (!strncmp(in.needed[i], needed, strlen(needed)))
				snprintf(buf, cap, "%s", in.needed[i]);
		lib_info_free(&in);
	}
	free(b);
	return buf;
}

static int is_copy_name(const char *copy, const char *base, unsigned long *num)
{
	const char *name = lib_base_name(copy);
	char *end;
	if (strncmp(name, base, strlen(base)) || name[strlen(base)] != '.')
		return 0;
	*num = strtoul(name + strlen(base) + 1, &end, 10);
	return !*end && *num > 0;
}

static int (*as_fn(void *p))(void)
{
	return (int (*)(void))p;
}

static void test_open_errors(void)
{
	CHECK("open without a path", !rewire_lib_open(NULL, NULL) &&
	      has(rewire_lib_error(NULL), "no path"), "%s", rewire_lib_error(NULL));
	CHECK("open of a missing file says why", !rewire_lib_open(at("nothing.so"), NULL) &&
	      has(rewire_lib_error(NULL), "nothing.so: No such file"), "%s",
	      rewire_lib_error(NULL));
	CHECK("open of a relocatable object is refused", !rewire_lib_open(at("dep.o"), NULL) &&
	      has(rewire_lib_error(NULL), "not a shared object"), "%s", rewire_lib_error(NULL));
	Dl_info di;
	if (dladdr((void *)printf, &di) && di.dli_fname) {
		char libc[512];
		snprintf(libc, sizeof libc, "%s", di.dli_fname);
		CHECK("open of a library the process has loaded is refused",
		      !rewire_lib_open(libc, NULL) &&
		      has(rewire_lib_error(NULL), "is already loaded in the process"), "%s",
		      rewire_lib_error(NULL));
	}
}

static void test_copies(void)
{
	int st[2] = {0, 0};
	char buf[256], buf2[256], first_copy[1024] = "";
	rewire_lib *dep = rewire_lib_open(at("libdep.so"), st);
	if (!dep) {
		fail("open libdep.so", "%s", rewire_lib_error(NULL));
		return;
	}
	struct version *v = dep->cur;
	unsigned long n1 = 0, n2 = 0;
	snprintf(first_copy, sizeof first_copy, "%s", v->copy);
	char dir[1024];
	snprintf(dir, sizeof dir, "%s", v->copy);
	*strrchr(dir, '/') = 0;
	struct stat ds;
	char want_dir[600];
	snprintf(want_dir, sizeof want_dir, "%s/rewire/lib-%d-", at("xdg"), (int)getpid());
	CHECK("the copy is in a private 0700 directory under $XDG_RUNTIME_DIR/rewire",
	      !strncmp(dir, want_dir, strlen(want_dir)) && stat(dir, &ds) == 0 &&
	      (ds.st_mode & 0777) == 0700 && access(at("xdg/rewire"), F_OK) == 0, "%s", dir);
	CHECK("the copy is named after the file, numbered", is_copy_name(v->copy, "libdep.so", &n1),
	      "%s", v->copy);
	CHECK("version 1 after open, and its load hook ran with it",
	      rewire_lib_version(dep) == 1 && st[0] == 1 && st[1] == 0, "version %d, hooks %d %d",
	      rewire_lib_version(dep), st[0], st[1]);
	const char *tok = v->token;
	CHECK("the copy's soname is rewritten: '~', three digits, the rest kept", tok &&
	      strlen(tok) == strlen("libdep.so") && tok[0] == '~' && !strcmp(tok + HEAD, "ep.so") &&
	      !strcmp(name_in(v->copy, NULL, buf, sizeof buf), tok), "token %s, copy's soname %s",
	      tok ? tok : "none", name_in(v->copy, NULL, buf, sizeof buf));
	size_t n;
	struct source s;
	unsigned char *orig = slurp(at("libdep.so"), &n);
	int rc = lib_read_pristine(v, &s);
	CHECK("the copy with its changes undone is the file as built", rc == 0 && orig &&
	      s.n == n && !memcmp(s.b, orig, n) && v->npatches == 1, "%d: %s", rc, dep->err);
	if (rc == 0)
		free(s.b);
	free(orig);

	/* Functions only, the library's own. */
	void *f = rewire_lib_sym(dep, "dep_fn");
	CHECK("a function's trampoline calls it", f && as_fn(f)() == 1, "%s", dep->err);
	if (!f) {
		rewire_lib_close(dep);
		return;
	}
	CHECK("the same name gives the same trampoline", f && rewire_lib_sym(dep, "dep_fn") == f,
	      "another");
	CHECK("data is refused", !rewire_lib_sym(dep, "dep_data") &&
	      has(dep->err, "dep_data is data, not a function"), "%s", dep->err);
	CHECK("a missing name is refused", !rewire_lib_sym(dep, "nope") &&
	      has(dep->err, "no symbol nope"), "%s", dep->err);

	/* A dependent's DT_NEEDED names the dependency's copy. */
	rewire_lib *user = rewire_lib_open(at("libuser.so"), NULL);
	void *uf = user ? rewire_lib_sym(user, "user_fn") : NULL;
	if (!user || !uf) {
		fail("open libuser.so", "%s", rewire_lib_error(NULL));
		rewire_lib_close(user);
		rewire_lib_close(dep);
		return;
	}
	CHECK("a dependency's function is refused", !rewire_lib_sym(user, "dep_fn") &&
	      has(user->err, "does not define dep_fn (one of its dependencies does)"), "%s",
	      user->err);
	CHECK("a dependent's copy needs the dependency's copy by its new soname",
	      !strcmp(name_in(user->cur->copy, "~", buf2, sizeof buf2), tok) &&
	      user->cur->nbound == 1 && user->cur->bound[0] == dep->cur && as_fn(uf)() == 10,
	      "needs %s, %zu bound", name_in(user->cur->copy, "~", buf2, sizeof buf2),
	      user->cur->nbound);
	CHECK("copies are numbered in order, never reused",
	      is_copy_name(user->cur->copy, "libuser.so", &n2) && n2 > n1, "%s after %s",
	      user->cur->copy, first_copy);

	/* A reload: the dependent comes along, bound to the new copy. */
	CHECK("an unchanged file is not reloaded", rewire_lib_update(dep) == 0, "%s", dep->err);
	build_dep("libdep.so", 2, 0, "");
	rc = rewire_lib_update(dep);
	CHECK("a rebuilt library reloads, and its dependent with it", rc == 1 &&
	      rewire_lib_version(dep) == 2 && rewire_lib_version(user) == 2 && as_fn(f)() == 2 &&
	      as_fn(uf)() == 20, "rc %d, versions %d %d: %s", rc, rewire_lib_version(dep),
	      rewire_lib_version(user), dep->err);
	CHECK("the new version's load hook ran, then the old one's unload hook", st[0] == 2 &&
	      st[1] == 1, "hooks %d %d", st[0], st[1]);
	CHECK("each version's copy has a soname of its own", dep->cur->token &&
	      strcmp(dep->cur->token, tok) &&
	      !strcmp(name_in(user->cur->copy, "~", buf2, sizeof buf2), dep->cur->token),
	      "%s and %s", dep->cur->token ? dep->cur->token : "none", tok);
	build_dep("libdep.so", 3, 7, "");
	rc = rewire_lib_update(dep);
	CHECK("a version its load hook refuses is not taken: the previous one goes on", rc < 0 &&
	      has(dep->err, "version 3: rewire_lib_load refused it (returned 7)") &&
	      rewire_lib_version(dep) == 2 && as_fn(f)() == 2 && rewire_lib_version(user) == 2,
	      "rc %d: %s", rc, dep->err);
	CHECK("a file that failed is not tried again until it changes", rewire_lib_update(dep) == 0,
	      "tried again");
	build_dep("libdep.so", 4, 0, "-DNO_FN");
	rc = rewire_lib_update(dep);
	CHECK("a version without a function the program was handed is refused",
	      rc < 0 && has(dep->err, "version 3 does not define dep_fn, which the program uses") &&
	      rewire_lib_version(dep) == 2 && as_fn(f)() == 2, "rc %d: %s", rc, dep->err);
	CHECK("update_all: nothing changed, nothing reloaded", rewire_lib_update_all() == 0, "%s",
	      rewire_lib_error(NULL));

	/* Old versions: dep's first is needed by user's first. */
	int kept = rewire_lib_unload_old(dep);
	CHECK("an old version a dependent's old version needs stays, and the error says why",
	      kept == 1 && has(dep->err, "version 1 stays mapped after dlclose") &&
	      has(dep->err, "libuser.so version 1, still loaded, needs it"), "%d: %s", kept,
	      dep->err);
	size_t orphans_before = norphans;
	kept = rewire_lib_unload_old(NULL);
	CHECK("unloading every library's old versions, dependents first, unloads them all",
	      kept == 0 && !dep->cur->older && dep->versions == dep->cur && !user->cur->older,
	      "%d kept: %s", kept, rewire_lib_error(NULL));
	CHECK("a version glibc kept takes its copy with it when it goes at last",
	      access(first_copy, F_OK) < 0 && norphans == orphans_before, "%s %s, %zu orphans",
	      first_copy, access(first_copy, F_OK) < 0 ? "gone" : "still there", norphans);

	char cur_copy[1024];
	snprintf(cur_copy, sizeof cur_copy, "%s", dep->cur->copy);
	st[1] = 0;
	rewire_lib_close(user);
	rewire_lib_close(dep);
	CHECK("close runs the unload hook and removes the copies", st[1] == 2 &&
	      access(cur_copy, F_OK) < 0, "hook %d, copy %s", st[1],
	      access(cur_copy, F_OK) < 0 ? "gone" : "still there");
	build_dep("libdep.so", 1, 0, "");
}

static void test_kept_and_refused(void)
{
	rewire_lib *nd = rewire_lib_open(at("libnodel.so"), NULL);
	if (nd) {
		sh("cc -shared -fPIC -Wl,-z,nodelete -Wl,-soname,libnodel.so -o libnodel.so.tmp plain.c "
		   "&& mv libnodel.so.tmp libnodel.so");
		int rc = rewire_lib_update(nd);
		int kept = rc == 1 ? rewire_lib_unload_old(nd) : -1;
		CHECK("an old version linked -z nodelete is kept, and the error says so",
		      kept == 1 && has(nd->err, "it is linked with -z nodelete"),
		      "rc %d, kept %d: %s", rc, kept, nd->err);
		rewire_lib_close(nd);
	} else {
		fail("open libnodel.so", "%s", rewire_lib_error(NULL));
	}
	rewire_lib *ab = rewire_lib_open(at("libab.so"), NULL);
	CHECK("a soname shorter than four bytes is not rewritten", ab && !ab->cur->token, "%s",
	      ab ? ab->cur->token : rewire_lib_error(NULL));
	rewire_lib *needab = rewire_lib_open(at("libneedab.so"), NULL);
	CHECK("a library needing one whose copy has no name of its own is refused", !needab &&
	      has(rewire_lib_error(NULL), "libab.so, whose copy could not be given a name of its own"),
	      "%s", rewire_lib_error(NULL));
	rewire_lib_close(needab);
	rewire_lib_close(ab);
	rewire_lib *nos = rewire_lib_open(at("libnos.so"), NULL);
	rewire_lib *neednos = rewire_lib_open(at("libneednos.so"), NULL);
	CHECK("a library needing one without DT_SONAME is refused, with the fix", nos && !neednos &&
	      has(rewire_lib_error(NULL), "needs libnos.so, which has no DT_SONAME") &&
	      has(rewire_lib_error(NULL), "-Wl,-soname,libnos.so"), "%s", rewire_lib_error(NULL));
	rewire_lib_close(neednos);
	rewire_lib_close(nos);
}

/* A copy whose path would be longer than PATH_MAX (a deep
 * $XDG_RUNTIME_DIR, a long file name) is refused, not made under a
 * truncated name that would do once and then collide with itself. In a
 * child: the private directory is made once per process. */
static void test_long_copy_path(void)
{
	char deep[PATH_MAX], name[300];
	snprintf(deep, sizeof deep, "%s", at("deep"));
	mkdir(deep, 0700);
	while (strlen(deep) < 3880) {
		size_t len = strlen(deep);
		snprintf(deep + len, sizeof deep - len, "/%0200d", 0);
		mkdir(deep, 0700);
	}
	snprintf(name, sizeof name, "lib%0200d.so", 0);
	if (sh("cp libdep.so %s", name) < 0) {
		fail("a copy path longer than PATH_MAX", "cannot copy libdep.so");
		return;
	}
	pid_t pid = fork();
	if (pid == 0) {
		int st[2];
		setenv("XDG_RUNTIME_DIR", deep, 1);
		rewire_lib *lib = rewire_lib_open(at(name), st);
		printf("# in the child: %s\n", lib ? lib_base_name(lib->cur->copy) : "refused");
		_exit(!lib && has(rewire_lib_error(NULL), "the path of its copy is too long (over 4096 "
				  "bytes): set XDG_RUNTIME_DIR to a shorter directory") ? 0 : 1);
	}
	int status = -1;
	waitpid(pid, &status, 0);
	CHECK("a copy path longer than PATH_MAX is refused, not truncated",
	      pid > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %#x", status);
}

static void set_flag(void *p) { *(int *)p = 1; }

static void test_calls(void)
{
	int flag = 0;
	CHECK("rewire_lib_call runs a function that returns: 0",
	      rewire_lib_call(NULL, set_flag, &flag) == 0 && flag == 1, "flag %d", flag);
	CHECK("rewire_lib_call without a function is refused",
	      rewire_lib_call(NULL, NULL, NULL) < 0 && has(rewire_lib_error(NULL), "no function"),
	      "%s", rewire_lib_error(NULL));
	CHECK("NULL libraries: version 0, errors, no crash", rewire_lib_version(NULL) == 0 &&
	      !rewire_lib_sym(NULL, "x") && rewire_lib_update(NULL) < 0 &&
	      has(rewire_lib_error(NULL), "no library"), "%s", rewire_lib_error(NULL));
	rewire_lib_close(NULL);

	/* No agent in this process: the calls into it do nothing, and
	 * rewire_call calls. */
	flag = 0;
	CHECK("without the agent: not active, poll and on_patch do nothing",
	      !rewire_active() && rewire_poll() == 0 && rewire_on_patch(NULL, NULL) == 0, "active");
	CHECK("without the agent: rewire_call calls the function",
	      rewire_call(set_flag, &flag) == 0 && flag == 1, "flag %d", flag);
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	const char *tmpdir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	snprintf(tmp, sizeof tmp, "%s/rewire-api-XXXXXX", tmpdir);
	if (!mkdtemp(tmp)) {
		fprintf(stderr, "test_api: mkdtemp failed\n");
		return 2;
	}
	/* The copies go to $XDG_RUNTIME_DIR/rewire: here, in the temp dir. */
	if (mkdir(at("xdg"), 0700) < 0 || setenv("XDG_RUNTIME_DIR", at("xdg"), 1) < 0 ||
	    own_compilers() || build_all()) {
		fprintf(stderr, "test_api: cannot build the test libraries (see %s/log)\n", tmp);
		return 2;
	}
	test_helpers();
	test_incomplete();
	test_info();
	test_parse();
	test_topo();
	test_source();
	test_pristine();
	test_open_errors();
	test_copies();
	test_kept_and_refused();
	test_long_copy_path();
	test_calls();
	if (!getenv("KEEP_TMP"))
		sh("cd / && rm -rf '%s'", tmp);
	else
		printf("# files kept in %s\n", tmp);
	return 0;
}
