/* jumptable.c: a switch the compiler turns into a jump table.
 *
 * Exercises: the table's entries point into the middle of classify(); in
 * the patch they must point into the new copy, never into the old body
 * (e2e "switch with a jump table"). At -O0 there may be no table: the test
 * holds all the same.
 *
 * Output: "pid=P" first, then every ~15 ms "tick=N value=V" with
 * V = classify(N) = 10 + N % 8 in the original. */
#include <stdio.h>
#include <unistd.h>

__attribute__((noinline)) int classify(int x)
{
	switch (x % 8) {
	case 0: return 10;
	case 1: return 11;
	case 2: return 12;
	case 3: return 13; /* @CASE3 */
	case 4: return 14;
	case 5: return 15; /* @CASE5 */
	case 6: return 16;
	case 7: return 17;
	}
	return -1;
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	alarm(240);
	printf("pid=%d\n", (int)getpid());
	for (int n = 1;; n++) {
		printf("tick=%d value=%d\n", n, classify(n));
		usleep(15000);
	}
}
