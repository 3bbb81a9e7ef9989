/* forkwalk.c: forks while rewire talks to its agent.
 *
 * Exercises (e2e "a fork while the agent walks the modules"): glibc's
 * fork() does not reset the loader lock dl_iterate_phdr() holds, so a child
 * forked while the agent thread walked the modules (to answer rewire's
 * HELLO) could never walk them again: its exceptions and backtraces, and
 * its own agent, would hang. Each child walks the modules once, under
 * alarm(2), and exits.
 *
 * Output: "pid=P" first, then every ~15 ms
 * "tick=N value=V forks=F hung=H": V = compute(N), F children forked so
 * far, H of them killed by the alarm while walking. */
#define _GNU_SOURCE
#include <link.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

__attribute__((noinline)) long compute(long tick)
{
	return tick * 2; /* @BODY */
}

static int count(struct dl_phdr_info *info, size_t size, void *data)
{
	(void)info, (void)size;
	++*(int *)data;
	return 0;
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	alarm(300);
	printf("pid=%d\n", (int)getpid());
	long forks = 0, hung = 0;
	for (long tick = 1;; tick++) {
		for (int k = 0; k < 15; k++) {
			pid_t c = fork();
			if (c == 0) {
				int n = 0;
				alarm(2);
				dl_iterate_phdr(count, &n);
				_exit(n > 0 ? 0 : 1);
			}
			if (c > 0)
				forks++;
			struct timespec t = {0, 1000000};
			nanosleep(&t, NULL);
			int st;
			pid_t r;
			while ((r = waitpid(-1, &st, WNOHANG)) > 0)
				if (WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM)
					hung++;
		}
		printf("tick=%ld value=%ld forks=%ld hung=%ld\n", tick, compute(tick), forks, hung);
	}
}
