/* What the files of the dylib reload API (lib.c, and the files named at
 * its top) share: the libraries, their versions and what a file says,
 * and the functions one file calls in another (lib_*). Those are hidden,
 * and local to the one object the Makefile makes of these files: a
 * program linking librewire-api.a sees rewire_lib_* only. How the whole
 * works is at the top of lib.c.
 *
 * Include after system headers: exit and abort are poisoned here. */
#ifndef RW_API_LIB_H
#define RW_API_LIB_H
#include <elf.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include "../../include/rewire_lib.h"
#include "../guard/guard.h"

#pragma GCC poison exit abort

#define ERRLEN 1024
#define HEAD 4		/* bytes of a soname rewritten: "~" and three base-62 digits */
#define MAX_EXEC 4	/* executable segments recorded per image */

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

/* A file's bytes, and where its dynamic tables are in them (image.c). */
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

/* A library's file as read (files.c). */
struct source {
	unsigned char *b;
	size_t n;
	struct stat st;
};

enum { SRC_OK, SRC_WAIT, SRC_ERR };

/* A reload (reload.c): the libraries it loads, in order, and from what. */
struct txn {
	unsigned long id;
	size_t n;
	struct rewire_lib **set;	/* in load order */
	struct source *src;
	int *fresh;			/* src read from the library's file (not a copy) */
	struct version **nv, **old;
};

#pragma GCC visibility push(hidden)

/* lib.c: the open libraries, newest first; the calling thread's last
 * error, which lib_fail sets (and lib's, when lib is not NULL) and then
 * returns -1. */
extern struct rewire_lib *libs;
extern __thread char last_err[ERRLEN];
int lib_fail(struct rewire_lib *lib, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* image.c: what a file's bytes say (struct elf over them, read into a
 * struct image_info). */
int lib_in_file(size_t n, uint64_t off, uint64_t len);
const char *lib_elf_incomplete(const unsigned char *b, size_t n);
uint64_t lib_dyn_val(const struct elf *e, int64_t tag, uint64_t dflt);
const char *lib_elf_str(const struct elf *e, uint64_t off);
const char *lib_elf_parse(struct elf *e, unsigned char *b, size_t n);
void lib_info_free(struct image_info *in);
int lib_info_read(struct image_info *in, const struct elf *e);
int lib_info_defines(const struct image_info *in, const char *name);

/* files.c: a library's file (SRC_OK, SRC_WAIT, SRC_ERR), a version's
 * bytes as built, and the copy a version is loaded from. */
const char *lib_base_name(const char *p);
int lib_same_file(const struct stat *a, const struct stat *b);
int lib_read_source(struct rewire_lib *lib, struct source *s);
int lib_read_pristine(struct version *v, struct source *s);
char *lib_write_copy(struct rewire_lib *lib, const struct source *s);

/* version.c: one version loaded, closed, freed. orphans: the copies of
 * images glibc kept, whose version is gone; their files go at exit. */
extern char **orphans;
extern size_t norphans;
void lib_set_current(struct version *v, int cur);
struct version *lib_version_load(struct rewire_lib *lib, struct source *s, unsigned long txn,
				 struct version **fresh, size_t nfresh);
void lib_version_release(struct version *v);
void lib_version_free(struct version *v);
int lib_version_close(struct version *v);
int lib_unload_old_one(struct rewire_lib *lib, char *msg, size_t cap);

/* calls.c: the hooks, run guarded; the trampolines and their slots. */
void *lib_own_sym(struct version *v, const char *name, int code);
int lib_run_load_hook(struct version *v);
void lib_run_unload_hook(struct version *v);
size_t lib_page_size(void);
int lib_tramp_new(struct rewire_lib *lib, struct sym *s);
void *lib_ver_addr(struct version *v, size_t i);
int lib_retarget(struct rewire_lib *lib, struct version *v);

/* reload.c: dependency order, and transactions (ntxn: the number of the
 * last one begun). */
extern unsigned long ntxn;
size_t lib_count_libs(void);
int lib_topo_sort(struct rewire_lib **set, const struct image_info **infos, size_t n,
		  struct rewire_lib **out);
void lib_txn_free(struct txn *t);
int lib_txn_alloc(struct txn *t, size_t n);
int lib_txn_run(struct txn *t);
int lib_update_locked(struct rewire_lib *lib);

/* crash.c: the ranges the fault handlers know, what is library code for
 * guard_run (lib_ops), and what a crash caught undoes. */
extern const struct guard_ops lib_ops;
int lib_range_add(uintptr_t lo, uintptr_t hi);
void lib_range_del(int i);
void lib_range_current(int i, int cur);
void lib_describe_crash(const struct guard *g, char *out, size_t cap);
void lib_on_crash(struct rewire_lib *lib, const struct guard *g);
#pragma GCC visibility pop

#endif
