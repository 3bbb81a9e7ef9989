/* The C/C++ front-end: compile_commands.json (CMake, Meson, bear). */
#ifndef RW_CC_H
#define RW_CC_H
#include <stdint.h>
#include <sys/types.h>
#include "elf/elffile.h"
#include "util.h"

struct cc_unit {
	char *src;		/* absolute path of the source file */
	char *named;		/* src as the command names it (absolute, links kept), or NULL */
	char *dir;		/* the directory the command runs in */
	char **argv;		/* the command without its output options; NULL-ended */
	int argc;
	char *out;		/* the object the user's build writes (absolute), or NULL */
	char **deps;		/* headers it includes (absolute), from its depfile */
	size_t ndeps;
	char *base;		/* the baseline object: the code now running */
	uint64_t hash;		/* contents of src and deps the baseline was built from */
	int object_only;	/* src is an object the user's build writes: nothing to compile */
	int rust;		/* a crate: argv is rustc's, run in envp; see cargo.c */
	char **envp;		/* the environment to compile in, NULL: rewire's own */
	char *depfile;		/* where the compiler writes the dependencies, NULL: rewire says */
	char *build_deps;	/* the depfile the user's build wrote (-MD, -MMD, -MF), or NULL */
};

struct cc_db {
	char *path;
	struct cc_unit *units;
	size_t n, cap;
	char **archives;	/* static libraries of the program's link (Rust: rlibs) */
	int narchives;
};

/* compile_commands.json in dir (when given), else in the current directory
 * or its parents, else beside the executable or its parents. */
int cc_find_db(const char *dir, const char *exe, char *out, size_t cap);
int cc_load(struct cc_db *db, const char *path);
/* Keep the units the executable was built from (its STT_FILE names). */
void cc_keep_program_units(struct cc_db *db, const struct elf_image *exe);
/* Start the unit's compiler writing obj and the depfile dep, its messages
 * to errfd. The child's pid, or -1. */
pid_t cc_spawn(const struct cc_unit *u, const char *obj, const char *dep, int errfd, int color,
	       int background);
/* Start the unit's preprocessor alone, at idle priority, writing only the
 * depfile dep (what a unit whose object is current needs). */
pid_t cc_spawn_deps(const struct cc_unit *u, const char *dep, int errfd);
int cc_read_deps(struct cc_unit *u, const char *dep);
/* The headers of a unit whose object is current, from the depfile its
 * build wrote with that object: 0, or -1 when there is none to trust. */
int cc_read_build_deps(struct cc_unit *u);
/* FNV-1a of the contents of the unit's source and headers. */
uint64_t cc_hash_inputs(const struct cc_unit *u);
/* The same, with a memo of file hashes (empty at first; rw_table_free(memo,
 * free) after): a file whose inode, size and times are what they were when
 * it was hashed, and that had not changed for two seconds then, is not read
 * again. Units share headers, and most headers never change. */
uint64_t cc_hash_inputs_memo(const struct cc_unit *u, struct rw_table *memo);
/* A unit that is an object file rewritten by the user's own build. */
void cc_add_object(struct cc_db *db, const char *path);
void cc_free(struct cc_db *db);

#endif
