/* retjump.c (x86-64): a thread waits, nearly always, in a call that
 * wait_loop makes from its second byte (push %rax; call *%rdi: how clang
 * aligns the stack for an indirect call). The 5-byte jump rewire writes
 * at wait_loop's entry would cover the call's return address: a patch of
 * wait_loop must wait for the call to return, or be refused. Prints every
 * 20 ms "pid=P tick=N value=V waits=W" with V = compute(N) (N * 2 as
 * built) and W the calls the thread made; the first line is "pid=P". */
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

static volatile int waits;

/* Returns its argument: wait_loop calls it again with what it returns. */
void *sleeper(void *self)
{
	usleep(20000);
	waits++;
	return self;
}

__asm__(".text\n.globl wait_loop\n.type wait_loop, @function\n.p2align 4\nwait_loop:\n\tpush %rax\n\tcall *%rdi\n\tmov %rax, %rdi\n\tpop %rcx\n\tjmp wait_loop\n.size wait_loop, .-wait_loop\n"); /* @LOOP */
void wait_loop(void *(*fn)(void *));

static void *waiter(void *arg)
{
	wait_loop(sleeper);
	return arg;
}

__attribute__((noinline)) int compute(int tick)
{
	return tick * 2; /* @BODY */
}

int main(void)
{
	pthread_t t;
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (pthread_create(&t, NULL, waiter, NULL) != 0)
		return 1;
	printf("pid=%d\n", (int)getpid());
	for (int tick = 1;; tick++) {
		printf("pid=%d tick=%d value=%d waits=%d\n", (int)getpid(), tick, compute(tick), waits);
		usleep(20000);
	}
}
