/* A crate's objects as a directory of its codegen units (cgus.c). */
#ifndef RW_CGUS_H
#define RW_CGUS_H
#include <stddef.h>

/* Is path such a directory? */
int cgus_is(const char *path);
/* dir (replaced) with objs[0..n), hard-linked, one per codegen unit. */
int cgus_make(const char *dir, char *const *objs, int n);
/* A second directory of the same files. */
int cgus_copy(const char *from, const char *to);
/* The directory, or a file, gone. */
void cgus_remove(const char *path);

/* The codegen units that differ between two builds, as one object each
 * side: the CGU's own file, else `ld -r` of them into OUT.new.o and
 * OUT.base.o (owned: removed by cgus_pair_free). */
struct cgus_pair {
	char *nw, *base;
	int owned_nw, owned_base;
	size_t ncgus;		/* of the new build */
};

/* How many CGUs changed (0: none; p then holds one unchanged pair), or -1
 * (rw_error() says why). */
int cgus_changed(const char *nw, const char *base, const char *out, struct cgus_pair *p);
void cgus_pair_free(struct cgus_pair *p);

#endif
