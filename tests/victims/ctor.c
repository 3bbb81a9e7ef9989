/* ctor.c: a patch that brings a new translation unit with a constructor.
 *
 * Exercises: the patch adds extra.c (written by the test), whose
 * __attribute__((constructor)) must run exactly once, before the new code
 * calls into it; the edited report() calls extra_value()
 * (e2e "constructor of a new unit runs once").
 *
 * Output: "pid=P" first, then every ~15 ms "tick=N extra=E" (E = 0 before
 * the patch). */
#include <stdio.h>
#include <unistd.h>

/* @DECLS */

__attribute__((noinline)) void report(int n)
{
	printf("tick=%d extra=%d\n", n, 0); /* @PRINT */
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	alarm(240);
	printf("pid=%d\n", (int)getpid());
	for (int n = 1;; n++) {
		report(n);
		usleep(15000);
	}
}
