/* far.c: a program started without rewire that leaves no memory free
 * within 2 GiB of its executable before `rewire attach` takes it: at
 * start it maps every free page of that span PROT_NONE (the gaps between
 * its mappings too), so a patch can only be placed far from it. On
 * aarch64 the span is 160 MiB (bl reaches 128 MiB), and the program runs
 * with the agent from the start: its reservation near the program is
 * there before the fill, and patches go far once they have used it. Then it
 * prints, every 15 ms, "pid=P tick=N value=V calls=C" where V = value(N)
 * (far_value.c: N * 2 as built) and C counts the lines in a static.
 * The first line is "pid=P"; a failure to fill the span is said on
 * stderr instead, and the program ends. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

#ifdef __aarch64__
#define SPAN (160ull << 20)	/* each side: more than a bl reaches */
#else
#define SPAN (5ull << 29)	/* 2.5 GiB each side: more than a rel32 reaches */
#endif

int value(int tick);

static int calls;

/* Called by value(): a function of the program that patched code calls. */
int base_of(int tick)
{
	return tick;
}

#ifdef __aarch64__
/* wait_loop: a function whose first instruction is a call, run forever by
 * a thread that is nearly always asleep in it (in usleep, called by
 * sleeper). A jump to a patch placed far overwrites more than that call:
 * the thread would return into the middle of the jump. Padded with nops
 * so that the jump fits. */
void sleeper(void)
{
	usleep(20000);
}

__asm__(".text\n"
	".globl wait_loop\n"
	".type wait_loop, %function\n"
	".p2align 4\n"
	"wait_loop:\n"
	"	bl sleeper\n"
	"	b wait_loop\n"
	"	nop\n	nop\n	nop\n	nop\n"
	".size wait_loop, .-wait_loop\n");
void wait_loop(void);

static void *waiter(void *arg)
{
	(void)arg;
	wait_loop();
	return NULL;
}
#endif

/* The executable's extent, from its mappings. */
static int exe_extent(uint64_t *lo, uint64_t *hi)
{
	char exe[4096], line[4608];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	FILE *f = fopen("/proc/self/maps", "r");
	if (n <= 0 || !f)
		return -1;
	exe[n] = 0;
	*lo = UINT64_MAX, *hi = 0;
	while (fgets(line, sizeof line, f)) {
		unsigned long a, b;
		char *path = strchr(line, '/');
		if (sscanf(line, "%lx-%lx", &a, &b) != 2 || !path || strncmp(path, exe, (size_t)n))
			continue;
		if (a < *lo)
			*lo = a;
		if (b > *hi)
			*hi = b;
	}
	fclose(f);
	return *hi ? 0 : -1;
}

/* Map gap [a, b) PROT_NONE: no memory, only the addresses taken. */
static int take(uint64_t a, uint64_t b)
{
	void *p = mmap((void *)a, b - a, PROT_NONE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
	if (p == MAP_FAILED)
		return -1;
	if ((uint64_t)p != a) {		/* a kernel without MAP_FIXED_NOREPLACE */
		munmap(p, b - a);
		return -1;
	}
	return 0;
}

/* Every gap between the mappings within [lo, hi): 0 when none is left. */
static int fill(uint64_t lo, uint64_t hi, int *gaps)
{
	char line[4608];
	FILE *f = fopen("/proc/self/maps", "r");
	uint64_t at = lo;
	int failed = 0;
	if (!f)
		return -1;
	*gaps = 0;
	while (fgets(line, sizeof line, f) && at < hi) {
		unsigned long a, b;
		if (sscanf(line, "%lx-%lx", &a, &b) != 2)
			continue;
		if (a > at) {
			++*gaps;
			failed |= take(at, a < hi ? a : hi) < 0;
		}
		if (b > at)
			at = b;
	}
	fclose(f);
	if (at < hi) {
		++*gaps;
		failed |= take(at, hi) < 0;
	}
	return failed ? -1 : 0;
}

static int fill_near(void)
{
	uint64_t lo, hi, min_addr = 65536;
	FILE *f = fopen("/proc/sys/vm/mmap_min_addr", "r");
	if (f) {
		if (fscanf(f, "%lu", &min_addr) != 1)
			min_addr = 65536;
		fclose(f);
	}
	/* The agent takes nothing below 1 MiB (agent/region.c), and qemu-user
	 * does not map a guest's page there where it was asked to. */
	if (min_addr < (1u << 20))
		min_addr = 1u << 20;
	if (exe_extent(&lo, &hi) < 0)
		return -1;
	lo = lo > min_addr + SPAN ? lo - SPAN : min_addr;
	hi += SPAN;
	int gaps;
	if (fill(lo, hi, &gaps) < 0)
		return -1;
	/* Maps read while being changed: check again that nothing is left. */
	return fill(lo, hi, &gaps) < 0 || gaps ? -1 : 0;
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	alarm(240);	/* safety net: never outlive the test suite */
	if (fill_near() < 0) {
		fprintf(stderr, "far: cannot take the free memory near the program\n");
		return 1;
	}
#ifdef __aarch64__
	pthread_t t;
	if (pthread_create(&t, NULL, waiter, NULL) != 0) {
		fprintf(stderr, "far: cannot start the waiting thread\n");
		return 1;
	}
#endif
	printf("pid=%d\n", (int)getpid());
	for (int tick = 1;; tick++) {
		calls++;
		printf("pid=%d tick=%d value=%d calls=%d\n", (int)getpid(), tick, value(tick), calls);
		usleep(15000);
	}
	return 0;
}
