/* shared_more.c: the second file of shared_main.c's program. */
const int levels[4] = {1, 2, 3, 4}; /* @LEVELS */
const int solo[2] = {5, 6}; /* @SOLO */
const int only_main[2] = {7, 8}; /* @ONLYMAIN */

__attribute__((noinline)) int level_b(int n)
{
	return levels[n & 3];
}

__attribute__((noinline)) int solo_b(int n)
{
	return solo[n & 1];
}
