/* running.c: a loop that runs until the program ends, and the function it
 * calls, both built with SCALE.
 *
 * Exercises: an edit of SCALE changes both; the call of loop() under way
 * keeps its old code (it never returns) while step() is new. rewire must say
 * that loop is running, and must not say it of step, whose calls are short
 * (e2e "running function").
 *
 * Output: "pid=P" first, then every ~15 ms
 * "pid=P tick=N value=V scale=S" where V = step(N) = N*SCALE (the new code
 * after a patch) and S is SCALE as loop() was built (the old code). */
#include <stdio.h>
#include <unistd.h>

#define SCALE 2 /* @SCALE */

__attribute__((noinline)) int step(int tick)
{
	return tick * SCALE; /* @STEP */
}

__attribute__((noinline)) void loop(void)
{
	for (int tick = 1;; tick++) {
		printf("pid=%d tick=%d value=%d scale=%d\n", (int)getpid(), tick, step(tick), SCALE);
		usleep(15000);
	}
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	alarm(240);	/* safety net: never outlive the test suite */
	printf("pid=%d\n", (int)getpid());
	loop();
}
