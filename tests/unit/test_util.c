/* Unit test of the shared helpers (src/util.c): the hashes are FNV-1a
 * (checked against the published values), and hashing in pieces is
 * hashing the whole. */
#include <stdio.h>
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

int main(void)
{
	test_hashes();
	return failed;
}
