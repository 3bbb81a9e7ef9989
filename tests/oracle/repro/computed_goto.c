/* A silent miss the oracle found in Lua (luaV_execute dispatches through
 * ljumptab.h's `static const void *const disptab[]` of label addresses):
 * a computed-goto interpreter. Run it under `rewire run` (gcc -g -O2, with a
 * compile_commands.json), change `x += 1` to `x += 2` and save: rewire says
 * "patched run, main" but value stays 3*tick + 4 instead of 3*tick + 8: the
 * old code's behaviour (as if the new run() jumped through the running
 * program's table of label addresses, into the old code).
 * In Lua, where the old and new code differ in their registers, it crashes. */
#include <stdio.h>
#include <unistd.h>
__attribute__((noinline)) static int run(const unsigned char *code, int x)
{
	static const void *const disp[] = { &&op_add, &&op_mul, &&op_end };
	const unsigned char *pc = code;
	goto *disp[*pc++];
op_add:
	x += 1;
	goto *disp[*pc++];
op_mul:
	x *= 3;
	goto *disp[*pc++];
op_end:
	return x;
}

int main(void)
{
	static const unsigned char code[] = {0, 1, 0, 2};
	printf("pid=%d\n", getpid());
	for (int tick = 0;; tick++) {
		printf("tick=%d value=%d\n", tick, run(code, tick));
		fflush(stdout);
		usleep(200000);
	}
}
