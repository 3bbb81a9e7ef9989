/* Memory for patches, within reach of the code it works with.
 *
 * x86-64 code reaches other code and data with 32-bit PC-relative
 * displacements, so a patch must sit within +-2 GiB of the module it calls
 * into and whose data it uses; aarch64's B and BL reach +-128 MiB
 * (AGENT_REACH, machine.h: the numbers below scale with it). At start-up, while the address space is
 * still mostly empty, we reserve a large PROT_NONE range (no memory is
 * committed) near the executable; more ranges are reserved on demand near
 * other modules. Patches take whole pages from a range, first come first
 * served, never returned once committed: old code stays mapped because a
 * thread may still be running in it.
 *
 * The range is placed below the module when there is room, else 1 GiB
 * above its end, leaving the brk heap that follows the executable room to
 * grow. For a non-PIE executable (at 0x400000) the range also stays below
 * 2 GiB so that code compiled without -fPIE, which uses 32-bit absolute
 * addresses, can be placed there.
 *
 * An agent attached late in a program's life (`rewire attach`), or one
 * whose reservation patches have used up, may find every page within
 * reach of the program taken. Patches are then placed far: on aarch64
 * first within ADRP's +-4 GiB (AGENT_DATA_REACH), where they still reach
 * the program's data, else in a range reserved anywhere. The driver sees
 * from the address it is given that the patch is out of the calls' reach,
 * and links it to call the program through stubs and to be entered by
 * absolute jumps (link/). */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "agent.h"

#define RESERVE_SIZE AGENT_RESERVE_SIZE
#define MIN_RESERVE (4ull << 20)
#define REACH AGENT_REACH
#define MAX_RANGES 64
#define MAX_PENDING 16

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

struct range {
	uint64_t base, size, used;
};

static struct range ranges[MAX_RANGES];
static size_t nranges;

/* Allocations made by the patch in progress: (range, used before). */
static struct { struct range *r; uint64_t before, addr, size; } pending[MAX_PENDING];
static size_t npending;


static uint64_t page_size(void)
{
	return (uint64_t)sysconf(_SC_PAGESIZE);
}

static int within(uint64_t a_lo, uint64_t a_hi, uint64_t b_lo, uint64_t b_hi, uint64_t reach)
{
	uint64_t lo = a_lo < b_lo ? a_lo : b_lo;
	uint64_t hi = a_hi > b_hi ? a_hi : b_hi;
	return hi - lo < reach - (1u << 20);
}

static int reaches(uint64_t a_lo, uint64_t a_hi, uint64_t b_lo, uint64_t b_hi)
{
	return within(a_lo, a_hi, b_lo, b_hi, REACH);
}

static int try_reserve(uint64_t at, uint64_t size)
{
	if (at < (1u << 20) || nranges == MAX_RANGES)
		return -1;
	void *p = mmap((void *)at, size, PROT_NONE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
	if (p == MAP_FAILED)
		return -1;
	if ((uint64_t)p != at) {	/* a kernel without MAP_FIXED_NOREPLACE */
		munmap(p, size);
		return -1;
	}
	ranges[nranges++] = (struct range){at, size, 0};
	return 0;
}

static int reserve_sized(uint64_t lo, uint64_t hi, uint64_t size)
{
	const uint64_t align = 2u << 20;
	uint64_t above = (hi + REACH / 2 + align - 1) & ~(align - 1);
	/* Below, stepping down; then above, stepping up. */
	for (uint64_t step = REACH / 32; step < REACH; step += size) {
		if (lo > step + size) {
			uint64_t at = (lo - step - size) & ~(align - 1);
			if (reaches(lo, hi, at, at + size) && try_reserve(at, size) == 0)
				return 0;
		}
	}
	for (uint64_t at = above; reaches(lo, hi, at, at + size); at += size)
		if (try_reserve(at, size) == 0)
			return 0;
	for (uint64_t at = (hi + align - 1) & ~(align - 1); reaches(lo, hi, at, at + size); at += align)
		if (try_reserve(at, size) == 0)
			return 0;
	return -1;
}

static int reserve_near(uint64_t lo, uint64_t hi)
{
	for (uint64_t size = RESERVE_SIZE; size >= MIN_RESERVE; size /= 4)
		if (reserve_sized(lo, hi, size) == 0)
			return 0;
	return -1;
}

/* Beyond the calls' reach, within the data's (AGENT_DATA_REACH: aarch64's
 * adrp reaches +-4 GiB where its bl reaches 128 MiB): a patch placed there
 * calls the program through stubs, and still reads and writes its data. */
static int reserve_data_reach(uint64_t lo, uint64_t hi)
{
#ifdef AGENT_DATA_REACH
	const uint64_t align = 2u << 20;
	for (uint64_t size = RESERVE_SIZE; size >= MIN_RESERVE; size /= 4) {
		for (uint64_t step = REACH; step + size < AGENT_DATA_REACH; step += size) {
			uint64_t below = (lo - step - size) & ~(align - 1);
			uint64_t above = (hi + step + align - 1) & ~(align - 1);
			if (lo > step + size + align && within(lo, hi, below, below + size, AGENT_DATA_REACH) &&
			    try_reserve(below, size) == 0)
				return 0;
			if (within(lo, hi, above, above + size, AGENT_DATA_REACH) && try_reserve(above, size) == 0)
				return 0;
		}
	}
#endif
	return -1;
}

/* Anywhere the kernel has room: for patches placed far. */
static int reserve_far(void)
{
	for (uint64_t size = RESERVE_SIZE; size >= MIN_RESERVE && nranges < MAX_RANGES; size /= 4) {
		void *p = mmap(NULL, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (p != MAP_FAILED) {
			ranges[nranges++] = (struct range){(uint64_t)p, size, 0};
			return 0;
		}
	}
	return -1;
}

/* At start-up the whole reservation fits. An agent attached late in a
 * program's life (`rewire attach`) may find the space near it taken by
 * its heap and mappings: a smaller range then, down to 4 MiB (a patch
 * that needs more reserves another one, region_alloc), and when none is
 * free, a range anywhere for patches placed far. */
int region_reserve_near(uint64_t lo, uint64_t hi, struct agent_err *e)
{
	if (reserve_near(lo, hi) == 0 || reserve_data_reach(lo, hi) == 0 || reserve_far() == 0)
		return 0;
	return agent_fail(e, "no free address range of 4 MiB for patches: the address space is "
			  "full");
}

/* libgcc's unwinder ignores a registered FDE whose function starts at an
 * address with the low 32 bits zero: it takes it for a discarded link-once
 * function (pc_begin is 4-byte PC-relative, so it cannot tell NULL from a
 * 4 GiB boundary), and an exception thrown through that function ends in
 * std::terminate. So no allocation covers a 4 GiB boundary: it starts one
 * page after it instead (the page at the boundary stays PROT_NONE). */
#define BOUNDARY (4ull << 30)

static uint64_t alloc_start(const struct range *r, uint64_t size)
{
	uint64_t at = r->base + r->used;
	uint64_t b = (at + BOUNDARY - 1) & ~(BOUNDARY - 1);	/* first boundary >= at */
	return b - at < size ? b + page_size() : at;
}

/* A range with size bytes free within reach of lo-hi (REACH: near;
 * UINT64_MAX: anywhere). */
static struct range *find_range(uint64_t lo, uint64_t hi, uint64_t reach, uint64_t size, uint64_t *addr)
{
	for (size_t i = 0; i < nranges; i++) {
		struct range *r = &ranges[i];
		uint64_t at = alloc_start(r, size), end = r->base + r->size;
		if (at <= end && end - at >= size &&
		    (reach == UINT64_MAX || within(lo, hi, at, at + size, reach))) {
			*addr = at;
			return r;
		}
	}
	return NULL;
}

/* Near lo-hi when there is room (reserving more if need be), else far:
 * the caller tells them apart by the address. */
int region_alloc(uint64_t lo, uint64_t hi, uint64_t size, uint64_t *addr, struct agent_err *e)
{
	uint64_t ps = page_size();
	size = (size + ps - 1) & ~(ps - 1);
	if (!size || size > RESERVE_SIZE)
		return agent_fail(e, "cannot allocate %lu bytes for a patch (limit %llu)",
				  (unsigned long)size, RESERVE_SIZE);
	if (npending == MAX_PENDING)
		return agent_fail(e, "too many allocations in one patch");
	struct range *r = find_range(lo, hi, REACH, size, addr);
	if (!r && reserve_near(lo, hi) == 0)
		r = find_range(lo, hi, REACH, size, addr);
#ifdef AGENT_DATA_REACH
	if (!r)
		r = find_range(lo, hi, AGENT_DATA_REACH, size, addr);
	if (!r && reserve_data_reach(lo, hi) == 0)
		r = find_range(lo, hi, AGENT_DATA_REACH, size, addr);
#endif
	if (!r)
		r = find_range(lo, hi, UINT64_MAX, size, addr);
	if (!r && reserve_far() == 0)
		r = find_range(lo, hi, UINT64_MAX, size, addr);
	if (!r)
		return agent_fail(e, "no free address range of %lu bytes for a patch: the address "
				  "space is full", (unsigned long)size);
	pending[npending++] = (typeof(pending[0])){r, r->used, *addr, size};
	r->used = *addr + size - r->base;
	return 0;
}

int region_is_pending(uint64_t addr, uint64_t size)
{
	for (size_t i = 0; i < npending; i++)
		if (addr >= pending[i].addr && size <= pending[i].size &&
		    addr - pending[i].addr <= pending[i].size - size)
			return 1;
	return 0;
}

/* Memory of committed patches: a redirect may start there (an earlier
 * version of a function). */
int region_is_committed(uint64_t addr, uint64_t size)
{
	if (region_is_pending(addr, size))
		return 0;
	for (size_t i = 0; i < nranges; i++)
		if (addr >= ranges[i].base && size <= ranges[i].used &&
		    addr - ranges[i].base <= ranges[i].used - size)
			return 1;	/* (no addr + size: a hostile message could wrap it) */
	return 0;
}

void region_commit(void)
{
	npending = 0;
}

/* Give back what the failed patch took: its pages become PROT_NONE again
 * (dropping their contents) and the range's cursor moves back. Ranges are
 * used in order, so the pending allocations are undone last first. */
void region_rollback(void)
{
	while (npending) {
		typeof(pending[0]) *p = &pending[--npending];
		mmap((void *)p->addr, p->size, PROT_NONE,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
		p->r->used = p->before;
	}
}

/* The memory patches took (committed or being written) and the memory
 * reserved for them, in bytes. */
void region_usage(uint64_t *used, uint64_t *reserved)
{
	*used = *reserved = 0;
	for (size_t i = 0; i < nranges; i++)
		*used += ranges[i].used, *reserved += ranges[i].size;
}
