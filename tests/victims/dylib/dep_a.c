/* dep_a.c: the library dep_b.c and dep_c.c depend on (tests/e2e/dylib.sh). */
#include <stdio.h>

int a_value(int n)
{
	return n * 10; /* @A */
}

int rewire_lib_load(void *state, int version)
{
	printf("hook=load lib=A version=%d\n", version);
	return 0;
}

void rewire_lib_unload(void *state, int version)
{
	printf("hook=unload lib=A version=%d\n", version);
}
