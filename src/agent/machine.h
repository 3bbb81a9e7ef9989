/* The agent's few lines that depend on the machine: the thread pointer, a
 * system call made without libc, a signal context's program counter. For
 * x86-64 and aarch64; what else differs between them (the entry jumps,
 * relocations) is the driver's (src/arch/). */
#ifndef RW_AGENT_MACHINE_H
#define RW_AGENT_MACHINE_H
#include <stdint.h>
#include <ucontext.h>

#if !defined(__x86_64__) && !defined(__aarch64__)
#error "rewire's agent is for x86-64 and aarch64"
#endif

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

static inline uint64_t agent_context_pc(const ucontext_t *uc)
{
#if defined(__x86_64__)
	return (uint64_t)uc->uc_mcontext.gregs[16];	/* REG_RIP, a _GNU_SOURCE name */
#else
	return (uint64_t)uc->uc_mcontext.pc;
#endif
}

#endif
