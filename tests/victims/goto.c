/* goto.c: a computed-goto interpreter, as Lua's luaV_execute dispatches:
 * a static table of label addresses (GNU C's &&label) inside the function
 * (e2e "a function dispatching through a table of its labels").
 *
 * Exercises: the table points into one version of the function; a patch of
 * the function must come with its own table, or the new code jumps into
 * the old. Output: "pid=P" first, then every ~15 ms
 * "pid=P tick=N value=V count=K" with V = run(N) = (N + 1) * 3 + 1. */
#include <stdio.h>
#include <unistd.h>

static int count;

__attribute__((noinline)) static int run(const unsigned char *code, int x)
{
	static const void *const disp[] = {&&op_add, &&op_mul, &&op_end};
	const unsigned char *pc = code;

	goto *disp[*pc++];
op_add:
	x += 1; /* @ADD */
	goto *disp[*pc++];
op_mul:
	x *= 3;
	goto *disp[*pc++];
op_end:
	return x;
}

__attribute__((noinline)) void print_line(int tick)
{
	static const unsigned char code[] = {0, 1, 0, 2};

	printf("pid=%d tick=%d value=%d count=%d\n", (int)getpid(), tick, run(code, tick), ++count);
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	alarm(240);	/* safety net: never outlive the test suite */
	printf("pid=%d\n", (int)getpid());
	for (int tick = 1;; tick++) {
		print_line(tick);
		usleep(15000);
	}
}
