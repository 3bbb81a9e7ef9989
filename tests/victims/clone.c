/* clone.c: a file-static function gcc -O2 clones (scale.isra.0 or
 * scale.constprop.0: an argument is unused, the other callers' constant),
 * called by a function whose own bytes do not change when the clone does.
 *
 * Output: "pid=P" first, then every ~15 ms "pid=P tick=N value=V" where
 * V = compute(N) = scale(N) + 1; the original scale is N*2.
 *
 * Tests edit a copy of this file at the marker comments. */
#include <stdio.h>
#include <unistd.h>

static __attribute__((noinline)) int scale(int n, int unused)
{
	(void)unused;
	return n * 2; /* @SCALE */
}

__attribute__((noinline)) int compute(int tick)
{
	return scale(tick, 7) + 1;
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	alarm(240);	/* safety net: never outlive the test suite */
	printf("pid=%d\n", (int)getpid());
	for (int tick = 1;; tick++) {
		printf("pid=%d tick=%d value=%d\n", (int)getpid(), tick, compute(tick));
		usleep(15000);
	}
}
