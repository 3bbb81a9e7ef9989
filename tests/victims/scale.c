/* scale.c: a static function inlined into its caller at -O2.
 *
 * Exercises: scale() is static and small, so at -O2 it exists only inside
 * compute(); editing scale() must change compute() (e2e "inlined static
 * changes its caller"). The loop calls compute(), which is not inlined.
 *
 * Output: "pid=P" first, then every ~15 ms "tick=N value=V" with
 * V = compute(N) = scale(N) + 1 = N*2 + 1 in the original. */
#include <stdio.h>
#include <unistd.h>

static int scale(int x)
{
	return x * 2; /* @SCALE */
}

__attribute__((noinline)) int compute(int tick)
{
	return scale(tick) + 1;
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	alarm(240);
	printf("pid=%d\n", (int)getpid());
	for (int n = 1;; n++) {
		printf("tick=%d value=%d\n", n, compute(n));
		usleep(15000);
	}
}
