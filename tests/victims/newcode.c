/* newcode.c: a patch that brings new things.
 *
 * Exercises: the patched tick() calls a new function, which updates a new
 * initialised global and a new zero-initialised file static, and prints a
 * new string literal (e2e "new function, global and string").
 *
 * Output: "pid=P" first, then every ~15 ms "tick=N". */
#include <stdio.h>
#include <unistd.h>

/* @DECLS */

__attribute__((noinline)) void tick(int n)
{
	printf("tick=%d\n", n); /* @BODY */
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	alarm(240);	/* safety net: never outlive the test suite */
	printf("pid=%d\n", (int)getpid());
	for (int n = 1;; n++) {
		tick(n);
		usleep(15000);
	}
}
