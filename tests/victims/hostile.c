/* hostile.c: a program doing what makes patching around it hard.
 *
 * Exercises (e2e "blocked read, fork, driver killed", "a thread blocking
 * the stop signal", "another user's connection"):
 *  - a thread blocked in read() on a pipe: rewire's stop signal must never
 *    make it see EINTR (counted);
 *  - fork() every 3rd tick: the child calls compute() and exits 0 when the
 *    result is one a version computes (a multiple of N), 3 otherwise;
 *  - with argument "blocker": a thread that blocks every signal and spins;
 *  - with argument "ticks=N": it exits 0 by itself after N ticks (~15 ms
 *    each), printing "done".
 *
 * Output: "pid=P" first, then every ~15 ms
 * "tick=N value=V eintr=E reads=R children=C badchildren=B", where
 * V = compute(N); the original computes N*2. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int fds[2];
static volatile long eintr, reads, spins;

__attribute__((noinline)) long compute(long n)
{
	return n * 2; /* @BODY */
}

static void *reader(void *arg)
{
	for (;;) {
		char c;
		ssize_t r = read(fds[0], &c, 1);
		if (r < 0 && errno == EINTR)
			eintr++;
		else if (r == 1)
			reads++;
	}
	return NULL;
}

static void *blocker(void *arg)
{
	sigset_t all;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, NULL);
	for (;;)
		spins++;
	return NULL;
}

static int child_ok(long n)
{
	pid_t c = fork();
	if (c == 0)
		_exit(compute(n) % n == 0 ? 0 : 3);
	int st;
	return c > 0 && waitpid(c, &st, 0) == c && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

int main(int argc, char **argv)
{
	pthread_t t;
	long children = 0, bad = 0;
	setvbuf(stdout, NULL, _IOLBF, 0);
	alarm(240);
	if (pipe(fds) < 0 || pthread_create(&t, NULL, reader, NULL))
		return 1;
	long ticks = -1;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "blocker") && pthread_create(&t, NULL, blocker, NULL))
			return 1;
		if (!strncmp(argv[i], "ticks=", 6))
			ticks = atol(argv[i] + 6);
	}
	printf("pid=%d\n", (int)getpid());
	for (long n = 1; n != ticks + 1; n++) {
		if (write(fds[1], "x", 1) != 1)
			return 1;
		if (n % 3 == 0) {
			children++;
			bad += !child_ok(n);
		}
		printf("tick=%ld value=%ld eintr=%ld reads=%ld children=%ld badchildren=%ld\n", n,
		       compute(n), eintr, reads, children, bad);
		usleep(15000);
	}
	printf("done\n");
	return 0;
}
