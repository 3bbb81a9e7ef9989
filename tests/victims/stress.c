/* stress.c: patching a function that 8 threads call in a tight loop.
 *
 * Exercises: compute() is patched back and forth (x*7+1 <-> x*7+2) many
 * times while 8 threads call it without pause; every result must be one that
 * some version computes, and the program must not crash
 * (e2e "patch under 8 busy threads").
 *
 * The workers run at nice 19: they still spin and are preempted anywhere,
 * but leave the CPU to the agent, to rewire and to the other tests when they
 * need it (on 2 cores, 8 spinning threads at nice 0 make every apply slow).
 *
 * Output: "pid=P" first, then every ~20 ms
 * "calls=C a=A b=B invalid=I": calls made, results of version A (x*7+1),
 * of version B (x*7+2), and results that are neither. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#define THREADS 8

/* Per-thread counters, each written by its own thread only. */
static volatile unsigned long calls[THREADS], seen_a[THREADS], seen_b[THREADS], invalid[THREADS];

__attribute__((noinline)) long compute(long x)
{
	return x * 7 + 1; /* @BODY */
}

static void *worker(void *arg)
{
	long id = (long)arg;

	setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 19);
	for (unsigned long i = (unsigned long)id;; i += THREADS) {
		long x = (long)(i & 0xfffff);
		long r = compute(x);

		if (r == x * 7 + 1)
			seen_a[id]++;
		else if (r == x * 7 + 2)
			seen_b[id]++;
		else
			invalid[id]++;
		calls[id]++;
	}
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t t[THREADS];

	setvbuf(stdout, NULL, _IOLBF, 0);
	/* safety net: never outlive the test suite (argument: its seconds) */
	alarm(argc > 1 ? (unsigned)atoi(argv[1]) : 240);
	printf("pid=%d\n", (int)getpid());
	for (long i = 0; i < THREADS; i++)
		pthread_create(&t[i], NULL, worker, (void *)i);
	for (;;) {
		unsigned long c = 0, a = 0, b = 0, bad = 0;

		for (int i = 0; i < THREADS; i++) {
			c += calls[i];
			a += seen_a[i];
			b += seen_b[i];
			bad += invalid[i];
		}
		printf("calls=%lu a=%lu b=%lu invalid=%lu\n", c, a, b, bad);
		usleep(20000);
	}
}
