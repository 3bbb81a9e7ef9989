/* twice.c: functions patched twice.
 *
 * Exercises: an existing function patched twice runs its newest version
 * (compute: N*2, then N*3, then N*5); patch 1 adds a new static function
 * helper() and code that stores &helper in the global `saved`; patch 2
 * changes helper(): the call through the pointer taken in patch 1 must reach
 * the second version (e2e "patched twice").
 *
 * Output: "pid=P" first, then every ~15 ms "tick=N compute=C saved=S" with
 * S = saved(N), or -1 while saved is NULL. */
#include <stdio.h>
#include <unistd.h>

int (*saved)(int);	/* set by code that only exists after patch 1 */

/* @DECLS */

__attribute__((noinline)) int compute(int n)
{
	return n * 2; /* @BODY */
}

__attribute__((noinline)) static int call_saved(int n)
{
	return saved ? saved(n) : -1;
}

__attribute__((noinline)) void tick(int n)
{
	/* @STORE */
	printf("tick=%d compute=%d saved=%d\n", n, compute(n), call_saved(n));
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
