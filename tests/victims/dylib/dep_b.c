/* dep_b.c: calls dep_a.c's a_value (linked against libA.so). */
#include <stdio.h>

int a_value(int n);

int b_value(int n)
{
	return a_value(n) + 1; /* @B */
}

int rewire_lib_load(void *state, int version)
{
	printf("hook=load lib=B version=%d\n", version);
	return 0;
}

void rewire_lib_unload(void *state, int version)
{
	printf("hook=unload lib=B version=%d\n", version);
}
