/* grow.c: a file-static array whose size a patch changes.
 *
 * Exercises: the running storage is 4 ints; a patch that makes it 8 must
 * be refused, naming it, and the program must go on with its own data
 * (e2e "growing static refused").
 *
 * (volatile: the optimiser must keep the stores.)
 *
 * Output: "pid=P" first, then every ~15 ms "tick=N sum=S guard=G" where
 * guard, a neighbour in memory, stays 42. */
#include <stdio.h>
#include <unistd.h>

static volatile int table[4]; /* @SIZE */
int guard = 42;

__attribute__((noinline)) int fill(int n)
{
	int sum = 0;
	for (unsigned i = 0; i < sizeof table / sizeof table[0]; i++)
		sum += table[i] = n + (int)i;
	return sum;
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	alarm(240);
	printf("pid=%d\n", (int)getpid());
	for (int n = 1;; n++) {
		printf("tick=%d sum=%d guard=%d\n", n, fill(n), guard);
		usleep(15000);
	}
}
