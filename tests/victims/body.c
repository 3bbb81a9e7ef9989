/* body.c: one function whose body changes while the program runs.
 *
 * Exercises: a changed function takes effect in a running loop with the same
 * pid (e2e "function body change"); a patch that references an unknown symbol
 * is refused and the old code keeps running ("unknown symbol refused"); bad
 * input files, bad pids and garbage on the agent's socket leave the program
 * unharmed ("bad input rejected").
 *
 * Output: "pid=P" first, then every ~15 ms "pid=P tick=N value=V" where
 * V = compute(N); the original computes N*2.
 *
 * Tests edit a copy of this file at the marker comments. */
#include <stdio.h>
#include <unistd.h>

/* @DECLS */

/* The running loop's own frame is never replaced: only calls made after a
 * patch reach new code, so the function the loop calls must not be inlined
 * into it. */
__attribute__((noinline)) int compute(int tick)
{
	return tick * 2; /* @BODY */
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
