/* Helpers shared by the driver's stages (never linked into the agent).
 * Errors: a failing function records one message with rw_fail() and returns
 * -1 (or NULL); the caller that reports prints rw_error(). The driver is one
 * thread, so one buffer is enough. */
#ifndef RW_UTIL_H
#define RW_UTIL_H
#include <stddef.h>
#include <stdint.h>

int rw_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *rw_error(void);
/* What the user reads: "rewire: <line>" and "rewire: error: <line>". */
void rw_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void rw_say_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

void *rw_malloc(size_t n);
void *rw_calloc(size_t n, size_t size);
void *rw_realloc(void *p, size_t n);
/* The growable array: p, of *cap elements of size bytes, with room for at
 * least n + 1 (to push element n); doubled when full, *cap updated. */
void *rw_grow(void *p, size_t *cap, size_t n, size_t size);
char *rw_strdup(const char *s);
uint64_t rw_now_ns(void);
/* When process pid started (clock ticks after boot, /proc's field 22), or
 * 0 when there is no such process: with the pid, a process's identity. */
/* What /proc/PID/stat (or a task's stat file, path) says of a process:
 * -1 when it is gone (or the file unreadable). */
struct rw_proc_stat {
	char state;		/* R, S, Z, X... */
	int ppid;
	uint64_t start;		/* since boot, in clock ticks: with the pid, the process */
};
int rw_stat_file(const char *path, struct rw_proc_stat *st);
int rw_proc_stat(int pid, struct rw_proc_stat *st);
uint64_t rw_proc_start(int pid);
/* A signal a program dies of when it crashed (or aborted), not one it was sent to end. */
int rw_crash_signal(int sig);
const char *rw_basename(const char *path);
/* Copy the file src to dst (made 0600, or truncated): 0, or -1 (errno). */
int rw_copy_file(const char *src, const char *dst);
/* The demangled form of a C++ or Rust symbol name, else name itself. */
const char *rw_demangle(const char *name);
/* The same without C++ parameter lists: "Shape::area", not "Shape::area() const". */
const char *rw_demangle_short(const char *name);
/* -v: say everything (the patch line names every function). */
extern int rw_verbose;
/* The length of name without a trailing ".llvm.<digits>": LLVM's ThinLTO
 * gives a promoted local that suffix, with a number that changes from one
 * build to the next; the rest names the same function. */
size_t rw_name_len(const char *name);
/* Equal names, up to that suffix. */
int rw_name_eq(const char *a, const char *b);
/* FNV-1a, 32 bits: of n bytes, of a string. Inline: the image hashes a
 * million names. */
static inline uint32_t rw_hash_n(const void *p, size_t n)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < n; i++)
		h = (h ^ ((const uint8_t *)p)[i]) * 16777619u;
	return h;
}
uint32_t rw_hash(const char *s);
/* FNV-1a, 64 bits: h (RW_HASH64_BASIS to begin) continued over n bytes,
 * so that hashing a, then b, is hashing a and b joined. */
#define RW_HASH64_BASIS 14695981039346656037ull
uint64_t rw_hash64(uint64_t h, const void *p, size_t n);

/* An index of 32-bit values (the caller's: symbol numbers, array indexes)
 * by a 32-bit hash of their key. The caller keeps the keys and compares
 * them: a walk yields every value added under the hash, and maybe some of
 * other hashes, in no set order. A value may be added more than once, and
 * several under one key. Open addressing with linear probing, at most half
 * full: a slot holds value + 1, 0 when free. Zeroed is empty. */
struct rw_index {
	uint32_t *slots;
	size_t mask;		/* number of slots - 1 */
};
#define RW_INDEX_END UINT32_MAX
/* Empty, with room for n values; what x held before is not freed. */
void rw_index_init(struct rw_index *x, size_t n);
void rw_index_free(struct rw_index *x);
/* How many values x has room for. */
static inline size_t rw_index_room(const struct rw_index *x)
{
	return x->slots ? (x->mask + 1) / 2 : 0;
}
/* value < RW_INDEX_END, and at most room values in all. */
static inline void rw_index_add(struct rw_index *x, uint32_t hash, uint32_t value)
{
	size_t i = hash & x->mask;
	while (x->slots[i])
		i = (i + 1) & x->mask;
	x->slots[i] = value + 1;
}
/* Before adding many (a million symbols): the slot of one a few ahead. */
static inline void rw_index_prefetch(const struct rw_index *x, uint32_t hash)
{
	__builtin_prefetch(&x->slots[hash & x->mask], 1);
}
/* The walk of hash:
 *	size_t at;
 *	for (uint32_t v = rw_index_first(x, hash, &at); v != RW_INDEX_END;
 *	     v = rw_index_next(x, &at))
 */
static inline uint32_t rw_index_first(const struct rw_index *x, uint32_t hash, size_t *at)
{
	if (!x->slots)
		return RW_INDEX_END;
	*at = hash & x->mask;
	return x->slots[*at] - 1;
}
static inline uint32_t rw_index_next(const struct rw_index *x, size_t *at)
{
	*at = (*at + 1) & x->mask;
	return x->slots[*at] - 1;
}

/* A table of strings to pointers; zeroed is empty. Keys are copied. */
struct rw_table {
	char **keys;
	void **vals;
	size_t cap, n;
};
/* Where key's value is (until the next put into t); a key not there yet
 * is added, its value NULL (*added). */
void **rw_table_put(struct rw_table *t, const char *key, int *added);
/* free_val (when given) is called with each value. */
void rw_table_free(struct rw_table *t, void (*free_val)(void *));

#endif
