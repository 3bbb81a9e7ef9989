/* Unit test of the agent's patch memory (src/agent/region.c): when the
 * space near a module is taken, memory comes from far; and no
 * allocation covers a 4 GiB boundary. libgcc's unwinder ignores a
 * registered FDE whose function starts at an address with the low 32 bits
 * zero (it takes it for a discarded link-once function), so a C++
 * exception thrown by new code placed there ends in std::terminate. */
#include <stdarg.h>
#include <stdio.h>
#include "agent/region.c"

#ifndef BOUNDARY
#define BOUNDARY (4ull << 30)
#endif

int agent_fail(struct agent_err *e, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof e->msg, fmt, ap);
	va_end(ap);
	return -1;
}

static int failed;

static void result(int ok, const char *name, const char *why)
{
	printf(ok ? "PASS region: %s\n" : "FAIL region: %s: %s\n", name, why);
	failed |= !ok;
}

static int covers_boundary(uint64_t addr, uint64_t size)
{
	uint64_t b = (addr + BOUNDARY - 1) & ~(BOUNDARY - 1);
	return b - addr < size;
}

static void reset(void)
{
	for (size_t i = 0; i < nranges; i++)
		munmap((void *)ranges[i].base, ranges[i].size);
	nranges = npending = 0;
}

/* A module at lo: its first range is reserved REACH / 32 + RESERVE_SIZE
 * below (64 MiB + 256 MiB on x86-64, 4 + 32 MiB on aarch64), at want
 * (placed on or just below a 4 GiB boundary). */
static int setup(uint64_t lo, uint64_t want, const char *name)
{
	struct agent_err e = {{0}};
	reset();
	int ok = region_reserve_near(lo, lo + 4096, &e) == 0 && ranges[0].base == want;
	if (!ok)
		result(0, name, "setup: the range is not where the test wants it (address in use?)");
	return ok;
}

/* Every page within REACH * 5 / 4 of a module at lo (2.5 GiB on x86-64)
 * is taken: reservation and allocation still succeed, far from it. */
static void test_far(uint64_t lo)
{
	struct agent_err e = {{0}};
	const uint64_t span = REACH / 4 * 5;
	uint64_t a = 0;
	reset();
	void *p = mmap((void *)(lo - span), 2 * span, PROT_NONE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
	if (p != (void *)(lo - span)) {
		result(0, "far: setup", "the span around the module is in use");
		if (p != MAP_FAILED)
			munmap(p, 2 * span);
		return;
	}
	int ok = region_reserve_near(lo, lo + 4096, &e) == 0;
	result(ok, "a full space near the program does not stop the agent", e.msg);
	ok = region_alloc(lo, lo + 4096, 4096, &a, &e) == 0;
	result(ok && !reaches(lo, lo + 4096, a, a + 4096), "memory then comes from far",
	       ok ? "it is near" : e.msg);
#ifdef AGENT_DATA_REACH
	/* aarch64: beyond bl's reach, within adrp's (the program's data). */
	result(ok && within(lo, lo + 4096, a, a + 4096, AGENT_DATA_REACH),
	       "memory from far is within the data's reach", ok ? "it is not" : e.msg);
#endif
	reset();
	munmap(p, 2 * span);
}

int main(void)
{
	struct agent_err e = {{0}};
	const uint64_t g = 0x3f0000000000ull, below = REACH / 32 + RESERVE_SIZE;
	uint64_t a = 0, b = 0;

	if (setup(g + below, g, "range at a boundary")) {
		int ok = region_alloc(g + below, g + below + 4096, 3 * 4096, &a, &e) == 0;
		result(ok && !covers_boundary(a, 3 * 4096), "an allocation does not start at a boundary",
		       ok ? "it does" : e.msg);
		ok = region_alloc(g + below, g + below + 4096, 4096, &b, &e) == 0;
		result(ok && b >= a + 3 * 4096, "the next allocation follows", ok ? "it overlaps" : e.msg);
		region_rollback();
		ok = region_alloc(g + below, g + below + 4096, 4096, &b, &e) == 0;
		result(ok && b == a, "a rolled back allocation is handed out again",
		       ok ? "another address" : e.msg);
	}
	/* The range starts 2 MiB below the boundary: 3 MiB would straddle it. */
	if (setup(g + below - (2u << 20), g - (2u << 20), "range across a boundary")) {
		uint64_t lo = g + below - (2u << 20);
		int ok = region_alloc(lo, lo + 4096, 3u << 20, &a, &e) == 0;
		result(ok && !covers_boundary(a, 3u << 20), "an allocation does not straddle a boundary",
		       ok ? "it does" : e.msg);
		ok = region_alloc(lo, lo + 4096, 1u << 20, &b, &e) == 0;
		result(ok && !covers_boundary(b, 1u << 20) && b >= a + (3u << 20),
		       "the next allocation follows", ok ? "it overlaps or straddles" : e.msg);
	}
	test_far(0x3e0000000000ull);
	reset();
	return failed;
}
