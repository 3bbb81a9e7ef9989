/* sigwait.c: a daemon whose main thread takes signals with sigwait().
 *
 * Exercises: every thread blocks all signals and main waits for them in
 * sigwait(); rewire's stop signal must never reach it (it would take it as
 * the program's and quit), and the worker must still be patched (e2e
 * "program with a sigwait thread").
 *
 * Output: "pid=P" first, then every ~15 ms "tick=N value=V" from the
 * worker, V = compute(N) = N + 1 in the original; "signal=S" if main
 * receives a signal. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

__attribute__((noinline)) int compute(int n)
{
	return n + 1; /* @BODY */
}

static void *worker(void *arg)
{
	for (int n = 1;; n++) {
		printf("tick=%d value=%d\n", n, compute(n));
		usleep(15000);
	}
	return arg;
}

int main(void)
{
	sigset_t all;
	pthread_t t;
	int sig;
	setvbuf(stdout, NULL, _IOLBF, 0);
	alarm(240);
	sigfillset(&all);
	sigdelset(&all, SIGALRM);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	printf("pid=%d\n", (int)getpid());
	pthread_create(&t, NULL, worker, NULL);
	for (;;) {
		sigwait(&all, &sig);
		printf("signal=%d\n", sig);
		if (sig == SIGTERM || sig == SIGINT)
			return 0;
	}
}
