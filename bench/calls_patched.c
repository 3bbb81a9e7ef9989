/* calls_patched.c: the function bench/calls.sh patches (VERSION 2 is the
 * patch): alone in its unit, so that the patch replaces it and nothing
 * else. */
#ifndef VERSION
#define VERSION 1
#endif

__attribute__((noinline)) int target_patched(int x)
{
	return x + VERSION;
}
