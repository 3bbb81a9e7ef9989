/* Type checks from debug information (types.c): a patch must not change
 * the layout of types or the signature of functions the running program
 * has. */
#ifndef RW_TYPES_H
#define RW_TYPES_H
#include <stddef.h>

/* The program's side of the checks: its file (the executable, or the
 * library patched), opened now and kept open; its DWARF is read when a
 * check first needs it, and each check walks only the units it compares,
 * so a session keeps one across patches. NULL when the file cannot be
 * opened. */
struct types_prog;
struct types_prog *types_prog_open(const char *path);
void types_prog_free(struct types_prog *prog);

/* Compare the DWARF of the new objects with the program's, unit by unit
 * (prog NULL or without DWARF: nothing to compare). set (optional): the
 * diff of objs, in the same order: of each object only the units that
 * describe changed code are read (diff_entry.units). 0, or -1 with the type
 * or function and the change in rw_error(). */
struct diff_set;
int types_check(struct types_prog *prog, char *const *objs, size_t nobjs, const struct diff_set *set);
/* A Rust generic instance the last types_check() read: its name with its
 * arguments ("total<u32>") by its linkage name, or NULL. */
const char *types_generic_name(const char *linkage);

/* How many of the source files srcs have no compile unit in exe's debug
 * information (built without -g): their types and signatures cannot be
 * checked. *first: the first of them. */
size_t types_units_unchecked(const char *exe, char *const *srcs, size_t nsrcs, const char **first);

#endif
