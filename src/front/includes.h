/* The headers of a C/C++ unit, read from its sources without a compiler. */
#ifndef RW_INCLUDES_H
#define RW_INCLUDES_H
#include "cc.h"

/* What the scan learnt: each file read once, however many units include
 * it. */
struct inc_cache;

struct inc_cache *inc_new(void);
/* The unit's headers into u->deps (as cc_read_deps): every #include,
 * #include_next and #import of its source and of the headers they reach,
 * in every branch of #if, resolved as the compiler does through the
 * command's -iquote, -I, -isystem and -idirafter; a header found only in
 * the compiler's own directories is left out, and not read (as -MMD
 * does). A superset of what the compiler includes. 0, or -1 when the
 * scan cannot know (an #include of a macro, options in an @FILE, a file
 * it cannot read): u is then unchanged. */
int inc_unit_deps(struct inc_cache *c, struct cc_unit *u);
void inc_free(struct inc_cache *c);

#endif
