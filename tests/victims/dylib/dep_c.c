/* dep_c.c: calls both dep_a.c and dep_b.c (linked against both). */
#include <stdio.h>

int a_value(int n);
int b_value(int n);

int c_value(int n)
{
	return b_value(n) + a_value(n); /* @C */
}

int rewire_lib_load(void *state, int version)
{
	printf("hook=load lib=C version=%d\n", version);
	return 0;
}

void rewire_lib_unload(void *state, int version)
{
	printf("hook=unload lib=C version=%d\n", version);
}
