/* Growable arrays for the code that runs inside programs (the agent, the
 * API library), which must never exit on an allocation that fails:
 * p grown to hold at least n + 1 elements of size bytes (capacity *cap,
 * doubled), or NULL with p and *cap unchanged. The driver's rw_grow()
 * (util.c) is the same, and ends rewire instead. Header only: the agent
 * and the API library link nothing of the driver's. */
#ifndef RW_GROW_H
#define RW_GROW_H
#include <stdint.h>
#include <stdlib.h>

static inline void *rw_try_grow(void *p, size_t *cap, size_t n, size_t size)
{
	if (n < *cap)
		return p;
	size_t c = *cap ? *cap : 8;
	while (c <= n && c <= SIZE_MAX / 2)
		c *= 2;
	if (c <= n || c > SIZE_MAX / size)
		return NULL;
	void *q = realloc(p, c * size);
	if (q)
		*cap = c;
	return q;
}

#endif
