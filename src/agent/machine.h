/* The agent's few lines that depend on the machine: the thread pointer, a
 * system call made without libc, a signal context's program counter, the
 * entry jumps it writes (arch/jump.h) and what follows a write of code.
 * For x86-64 and aarch64; relocations are the driver's (src/arch/). */
#ifndef RW_AGENT_MACHINE_H
#define RW_AGENT_MACHINE_H
#include <stdint.h>
#include <string.h>
#include <ucontext.h>
#include "arch/jump.h"

#if !defined(__x86_64__) && !defined(__aarch64__)
#error "rewire's agent is for x86-64 and aarch64"
#endif

#if defined(__x86_64__)
#define ARCH_JUMP_SIZE X86_JUMP_SIZE
#define ARCH_FAR_JUMP_SIZE X86_FAR_JUMP_SIZE
#define ARCH_SHORT_JUMP_SIZE X86_SHORT_JUMP_SIZE
#define arch_jump_size x86_jump_size
#define arch_encode_jump x86_encode_jump
/* Code is written through /proc/self/mem: the page stays executable. */
#define AGENT_WRITE_THROUGH_MEM 1
/* A patch within this of the program is reached by rel32 calls and jumps. */
#define AGENT_REACH (2ull << 30)
#define AGENT_RESERVE_SIZE (256ull << 20)
/* A thread stopped at a site's first byte counts as inside it. */
#define AGENT_ENTRY_PC_OK 0
#else
#define ARCH_JUMP_SIZE A64_JUMP_SIZE
#define ARCH_FAR_JUMP_SIZE A64_FAR_JUMP_SIZE
#define ARCH_SHORT_JUMP_SIZE A64_SHORT_JUMP_SIZE
#define arch_jump_size a64_jump_size
#define arch_encode_jump a64_encode_jump
/* Code is written through /proc/self/mem too (the kernel keeps the
 * instruction cache coherent for such a write), except under an emulator
 * (agent_emulated: qemu-user sees only the guest's own stores, and would
 * run its translation of the old code): there the agent stores the bytes
 * itself, the page writable for that time, every other thread stopped. */
#define AGENT_WRITE_THROUGH_MEM 0
/* B and BL reach +-128 MiB; ADRP, which reaches data, +-4 GiB. */
#define AGENT_REACH (128ull << 20)
#define AGENT_DATA_REACH (4ull << 30)
#define AGENT_RESERVE_SIZE (32ull << 20)
/* A thread stopped at a site's first instruction resumes there after the
 * write, through an exception return (context synchronizing): it runs
 * the new instructions whole. Only one stopped after it is inside. */
#define AGENT_ENTRY_PC_OK 1
#endif

/* After code was written at [at, at + n): the instruction cache sees it
 * (aarch64's is not coherent with the data cache; x86-64's is). */
static inline void agent_code_written(uint64_t at, uint64_t n)
{
	__builtin___clear_cache((char *)at, (char *)(at + n));
}

static inline void *agent_thread_pointer(void)
{
	void *tp;
#if defined(__x86_64__)
	__asm__("mov %%fs:0, %0" : "=r"(tp));
#else
	__asm__("mrs %0, tpidr_el0" : "=r"(tp));
#endif
	return tp;
}

/* Without libc: while the world is stopped, the page being written may
 * hold the very libc code a wrapper would run. Returns -errno on error. */
static inline long agent_syscall4(long nr, long a, long b, long c, long d)
{
#if defined(__x86_64__)
	long ret;
	register long r10 __asm__("r10") = d;
	__asm__ volatile("syscall" : "=a"(ret) : "0"(nr), "D"(a), "S"(b), "d"(c), "r"(r10)
			 : "rcx", "r11", "memory");
	return ret;
#else
	register long x8 __asm__("x8") = nr;
	register long x0 __asm__("x0") = a;
	register long x1 __asm__("x1") = b;
	register long x2 __asm__("x2") = c;
	register long x3 __asm__("x3") = d;
	__asm__ volatile("svc #0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3) : "memory");
	return x0;
#endif
}

/* Is a module's TLS block at tpoff from the thread pointer the static
 * one, every thread's at the same offset? x86-64 puts it below the
 * thread pointer (TLS variant II), aarch64 above (variant I). */
static inline int agent_tls_is_static(int64_t tpoff)
{
#if defined(__x86_64__)
	return tpoff < 0 && tpoff > -(int64_t)(64u << 20);
#else
	return tpoff > 0 && tpoff < (int64_t)(64u << 20);
#endif
}

static inline uint64_t agent_context_pc(const ucontext_t *uc)
{
#if defined(__x86_64__)
	return (uint64_t)uc->uc_mcontext.gregs[16];	/* REG_RIP, a _GNU_SOURCE name */
#else
	return (uint64_t)uc->uc_mcontext.pc;
#endif
}

static inline uint64_t agent_context_sp(const ucontext_t *uc)
{
#if defined(__x86_64__)
	return (uint64_t)uc->uc_mcontext.gregs[15];	/* REG_RSP */
#else
	return (uint64_t)uc->uc_mcontext.sp;
#endif
}

/* The return address a call left in a register (aarch64's link register,
 * x30), 0 where calls push it (x86-64). */
static inline uint64_t agent_context_ret(const ucontext_t *uc)
{
#if defined(__x86_64__)
	(void)uc;
	return 0;
#else
	return (uint64_t)uc->uc_mcontext.regs[30];
#endif
}

/* Can a call among the n bytes of code at p (those an entry jump is
 * about to overwrite) return inside them, that is end before p + n? A
 * thread in such a call would come back into the middle of the jump.
 * x86-64: not decoded; any byte that may start a call (e8 rel32, ff /2 or
 * /3, with or without a prefix before it) ending in time says yes.
 * aarch64: bl, blr and their pointer-authenticating forms. */
static inline int agent_may_return_inside(const uint8_t *p, size_t n)
{
#if defined(__x86_64__)
	for (size_t k = 0; k + 2 < n; k++) {
		if (p[k] == 0xe8 && k + 5 < n)
			return 1;
		if (p[k] == 0xff && ((p[k + 1] >> 3) & 7) >= 2 && ((p[k + 1] >> 3) & 7) <= 3)
			return 1;
	}
	return 0;
#else
	for (size_t k = 0; k + 4 < n; k += 4) {
		uint32_t w;
		memcpy(&w, p + k, 4);
		if ((w & 0xfc000000u) == 0x94000000u || (w & 0xfffffc1fu) == 0xd63f0000u ||
		    (w & 0xfefff800u) == 0xd63f0800u)
			return 1;
	}
	return 0;
#endif
}

/* Return addresses are aligned to this (instructions are 4 bytes on
 * aarch64). */
#if defined(__x86_64__)
#define AGENT_RET_ALIGN 1
#else
#define AGENT_RET_ALIGN 4
#endif

#endif
