/* calls_fn.c: the functions bench/calls.c calls, in a unit of their own
 * (no inlining across units without LTO). */
__attribute__((noinline)) int target_plain(int x)
{
	return x + 1;
}

/* The model's original function and the "newest version" its table
 * points to. */
__attribute__((noinline)) int target_hot(int x)
{
	return x + 1;
}

__attribute__((noinline)) int target_hot_new(int x)
{
	return x + 2;
}
