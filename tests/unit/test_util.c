/* Unit test of the shared helpers (src/util.c): the hashes are FNV-1a
 * (checked against the published values), and hashing in pieces is
 * hashing the whole; a walk of an index yields every value added under
 * its hash, repeats and colliding hashes included; a growable array keeps
 * its elements and grows by doubling. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "util.h"

static int failed;

static void check(int ok, const char *name)
{
	printf(ok ? "PASS util: %s\n" : "FAIL util: %s\n", name);
	failed |= !ok;
}

static void test_hashes(void)
{
	check(rw_hash("") == 0x811c9dc5u && rw_hash("a") == 0xe40c292cu &&
	      rw_hash("foobar") == 0xbf9cf968u, "rw_hash is FNV-1a");
	check(rw_hash_n("foobar!", 6) == rw_hash("foobar") && rw_hash_n(NULL, 0) == rw_hash(""),
	      "rw_hash_n hashes n bytes");
	check(rw_hash64(RW_HASH64_BASIS, "", 0) == 0xcbf29ce484222325ull &&
	      rw_hash64(RW_HASH64_BASIS, "a", 1) == 0xaf63dc4c8601ec8cull &&
	      rw_hash64(RW_HASH64_BASIS, "foobar", 6) == 0x85944171f73967e8ull,
	      "rw_hash64 is FNV-1a");
	check(rw_hash64(rw_hash64(RW_HASH64_BASIS, "foo", 3), "bar", 3) ==
	      rw_hash64(RW_HASH64_BASIS, "foobar", 6), "rw_hash64 continues a hash");
}

/* How many times the walk of hash yields value. */
static int walk_count(const struct rw_index *x, uint32_t hash, uint32_t value)
{
	size_t at;
	int n = 0;
	for (uint32_t v = rw_index_first(x, hash, &at); v != RW_INDEX_END; v = rw_index_next(x, &at))
		n += v == value;
	return n;
}

static void test_index(void)
{
	struct rw_index x = {0};
	check(walk_count(&x, 7, 0) == 0 && rw_index_room(&x) == 0, "a zeroed index is empty");
	enum { N = 1000 };
	rw_index_init(&x, N);
	check(rw_index_room(&x) >= N, "an index has the room asked for");
	/* hash i % 100, with 1 << 20 added: the same slots, other hashes */
	for (uint32_t i = 0; i < N; i++)
		rw_index_add(&x, i % 100 + (i & 1) * (1u << 20), i);
	rw_index_add(&x, 5, 5);
	int all = 1;
	for (uint32_t i = 0; i < N; i++)
		all &= walk_count(&x, i % 100 + (i & 1) * (1u << 20), i) == 1 + (i == 5);
	check(all, "every value is in the walk of its hash, once per add");
	size_t at;
	check(rw_index_first(&x, (uint32_t)x.mask, &at) == RW_INDEX_END,
	      "a walk stops at a free slot");	/* the values fill the first slots */
	rw_index_free(&x);
	check(!x.slots && walk_count(&x, 0, 0) == 0, "a freed index is empty");
}

static void test_grow(void)
{
	size_t *v = NULL, cap = 0, grew = 0, keep = 1;
	for (size_t n = 0; n < 100000; n++) {
		size_t old = cap;
		v = rw_grow(v, &cap, n, sizeof *v);
		grew += cap != old;
		keep &= cap > n && (cap == old || cap >= 2 * old);
		v[n] = n * 7;
	}
	for (size_t n = 0; n < 100000; n++)
		keep &= v[n] == n * 7;
	check(keep, "rw_grow keeps the elements and makes room for one more");
	check(grew <= 17, "rw_grow doubles");
	size_t *same = rw_grow(v, &cap, 5, sizeof *v);
	check(same == v, "rw_grow leaves an array with room as it is");
	free(v);
	cap = 0;
	v = rw_grow(NULL, &cap, 1000, sizeof *v);
	v[1000] = 1;
	check(cap > 1000, "rw_grow makes room for element n at once");
	free(v);
}

int main(void)
{
	test_hashes();
	test_index();
	test_grow();
	return failed;
}
