/* tls.c: thread-locals keep each thread's value across a patch.
 *
 * Exercises: three threads tick at different rates (every 10, 20, 30 ms);
 * each counts in a global _Thread_local and in a file-static _Thread_local,
 * starting from different values; the patch changes the function that counts
 * and prints, which must go on with each thread's own values
 * (e2e "thread-locals kept").
 *
 * Output: "pid=P" first, then "thread=T count=C calls=K v=1" lines; per
 * thread, C and K grow by exactly 1 per line. */
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

#define THREADS 3

_Thread_local unsigned long tls_count;	/* global thread-local */
static _Thread_local int tls_calls;	/* file-static thread-local */

__attribute__((noinline)) void thread_tick(int id)
{
	tls_count++;
	tls_calls++;
	printf("thread=%d count=%lu calls=%d v=1\n", id, tls_count, tls_calls); /* @PRINT */
}

static void *worker(void *arg)
{
	int id = (int)(long)arg;

	tls_count = 1000000ul * (unsigned long)(id + 1);
	tls_calls = 1000 * (id + 1);
	for (;;) {
		thread_tick(id);
		usleep(10000 * (id + 1));
	}
	return NULL;
}

int main(void)
{
	pthread_t t[THREADS];

	setvbuf(stdout, NULL, _IOLBF, 0);
	alarm(240);	/* safety net: never outlive the test suite */
	printf("pid=%d\n", (int)getpid());
	for (long i = 0; i < THREADS; i++)
		pthread_create(&t[i], NULL, worker, (void *)i);
	for (;;)
		pause();
}
