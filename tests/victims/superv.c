/* superv.c: a supervisor that runs its own executable again, as servers
 * with a supervisor or a binary upgrade do.
 *
 *   superv          the supervisor: prints "pid=P", then forks a child
 *                   that execs this executable with "serve", and starts
 *                   another ("child=C" each time) whenever one ends
 *   superv serve    prints "pid=P" when started alone, then every ~15 ms
 *                   "serve=P tick=N value=V count=K": V = compute(N),
 *                   K a file static, +1 per line
 *
 * A wrapper script may exec "superv serve" too. */
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int count;

__attribute__((noinline)) long compute(long tick)
{
	return tick * 2; /* @BODY */
}

static void serve(int alone)
{
	if (alone)
		printf("pid=%d\n", (int)getpid());
	for (long tick = 1;; tick++) {
		count++;
		printf("serve=%d tick=%ld value=%ld count=%d\n", (int)getpid(), tick, compute(tick), count);
		fflush(stdout);
		struct timespec t = {0, 15000000};
		nanosleep(&t, NULL);
	}
}

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "serve"))
		serve(argc > 2);
	printf("pid=%d\n", (int)getpid());
	fflush(stdout);
	for (;;) {
		pid_t c = fork();
		if (c == 0) {
			execl(argv[0], argv[0], "serve", (char *)NULL);
			_exit(127);
		}
		printf("child=%d\n", (int)c);
		fflush(stdout);
		while (waitpid(c, NULL, 0) < 0)
			;
	}
}
