/* busy.c: a function that takes nearly all the program's time, for
 * profilers (perf reads the names of patched code from perf-PID.map).
 *
 * Output: "pid=P" first, then about every 20 ms "pid=P tick=N value=V"
 * where V = compute(N) (N*2 as built). */
#include <stdio.h>
#include <time.h>
#include <unistd.h>

__attribute__((noinline)) int compute(int tick)
{
	volatile unsigned spin = 0;
	for (int i = 0; i < 200000; i++)
		spin += (unsigned)i;
	return tick * 2; /* @BODY */
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	alarm(240);	/* safety net: never outlive the test suite */
	printf("pid=%d\n", (int)getpid());
	double last = now();
	for (int tick = 1;; tick++) {
		int v = compute(tick);
		if (now() - last >= 0.02) {
			printf("pid=%d tick=%d value=%d\n", (int)getpid(), tick, v);
			last = now();
		}
	}
}
