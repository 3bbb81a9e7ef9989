/* units_main.c and units_more.c: two units including config.h.
 *
 * Output: "pid=P" first, then every ~15 ms "tick=N a=A b=B" with
 * A = part_a(N) = N*FACTOR (this unit) and B = part_b(N) = N*FACTOR + 1000
 * (the other unit). */
#include <stdio.h>
#include <unistd.h>
#include "config.h"

int part_b(int n);

__attribute__((noinline)) int part_a(int n)
{
	return n * FACTOR;
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	alarm(240);
	printf("pid=%d\n", (int)getpid());
	for (int n = 1;; n++) {
		printf("tick=%d a=%d b=%d\n", n, part_a(n), part_b(n));
		usleep(15000);
	}
}
