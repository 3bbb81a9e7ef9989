/* attached.c: a program started without rewire, which `rewire attach`
 * takes while it runs. argv[1] says where its threads are when it is
 * attached:
 *   sleep   the main thread prints every 15 ms, sleeping between (usleep)
 *   read    the main thread waits in read() on stdin; one line printed per
 *           line read
 *   thread  a worker thread prints every 15 ms; the main thread waits for
 *           it in pthread_join
 *
 * Output: "pid=P" first, then "pid=P tick=N value=V calls=C" where
 * V = compute(N) (N*2 as built) and C counts the calls of compute in a
 * static that a patch keeps counting. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int calls;

__attribute__((noinline)) int compute(int tick)
{
	calls++;
	return tick * 2; /* @BODY */
}

static void line(int tick)
{
	int v = compute(tick);
	printf("pid=%d tick=%d value=%d calls=%d\n", (int)getpid(), tick, v, calls);
}

static void *ticker(void *arg)
{
	(void)arg;
	for (int tick = 1;; tick++) {
		line(tick);
		usleep(15000);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "sleep";
	setvbuf(stdout, NULL, _IOLBF, 0);
	alarm(240);	/* safety net: never outlive the test suite */
	printf("pid=%d\n", (int)getpid());
	if (!strcmp(mode, "thread")) {
		pthread_t t;
		pthread_create(&t, NULL, ticker, NULL);
		pthread_join(t, NULL);
	} else if (!strcmp(mode, "read")) {
		char buf[256];
		for (int tick = 1; read(0, buf, sizeof buf) > 0; tick++)
			line(tick);
	} else {
		ticker(NULL);
	}
	return 0;
}
