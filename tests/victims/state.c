/* state.c: state survives a patch.
 *
 * Exercises: a file-static counter, a global counter and a function-local
 * static counter keep counting across a patch of the function that updates
 * them (e2e "state kept"); a patch that adds a new function with a
 * function-local static of the same name, defined before tick(), so that gcc
 * renumbers the statics (local_count.0 -> local_count.1) (e2e "local static
 * renumbered").
 *
 * Output: "pid=P" first, then every ~15 ms
 * "v=1 file=F global=G local=L": each counter grows by exactly 1 per line.
 * The counters start at different values so that a counter bound to a fresh
 * copy, or to the wrong variable, shows. */
#include <stdio.h>
#include <unistd.h>

static int file_count = 100;	/* file-static, in .data */
int global_count;		/* global, in .bss */

/* @DECLS */

__attribute__((noinline)) void tick(void)
{
	static int local_count = 5000;	/* function-local static */

	file_count++;
	global_count++;
	local_count++;
	/* @EXTRA */
	printf("v=1 file=%d global=%d local=%d\n", file_count, global_count, local_count); /* @PRINT */
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	alarm(240);	/* safety net: never outlive the test suite */
	printf("pid=%d\n", (int)getpid());
	for (;;) {
		tick();
		usleep(15000);
	}
}
