/* libcall.c: a patch calls libc functions the program never called.
 *
 * Exercises: the patched tick() calls strlen and memcpy, both glibc IFUNCs,
 * which this program does not reference at all (the test checks with nm -D)
 * (e2e "new libc calls"). The strings come from a writable global array so
 * the compiler cannot compute their lengths at compile time.
 *
 * Output: "pid=P" first, then every ~15 ms "tick=N name=S". */
#include <stdio.h>
#include <unistd.h>

/* @DECLS */

char *names[] = { "alpha", "be", "gamma-delta-epsilon" };

__attribute__((noinline)) void tick(int n)
{
	const char *name = names[n % 3];
	printf("tick=%d name=%s\n", n, name); /* @BODY */
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
