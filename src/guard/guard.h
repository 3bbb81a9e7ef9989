/* A call that survives a crash of some code it runs: the agent's guard
 * for patch code (rewire_call), the API library's for plugin code
 * (rewire_lib_call, load and unload hooks). One module, compiled into both:
 * each has its own handlers, guards and idea of which code is its own.
 *
 * The fault handlers (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, on an
 * alternate stack so that a stack overflow is caught too) ask the user's
 * ops whether the faulting pc is its code, or its code is on the stack
 * between the fault and the innermost guard (abort, a libc function given
 * a bad pointer): then the guard's call ends there (guard_run returns 1,
 * the guard says where and why). Any other fault goes to the handler the
 * program had, or to the default action, as if there were no guard. Only
 * libc; never exits: it runs inside other people's programs. */
#ifndef RW_GUARD_H
#define RW_GUARD_H
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>

#define GUARD_API __attribute__((visibility("hidden")))

struct guard {
	sigjmp_buf jb;
	struct guard *prev;
	uintptr_t frame;		/* the stack above this is the caller's */
	int sig;			/* the signal that ended the call */
	uintptr_t pc;			/* where it was raised */
	uintptr_t culprit;		/* the user's code found responsible */
	uintptr_t caller;		/* the agent's: a replaced function on the stack */
	void *addr;			/* the bad address of SIGSEGV and SIGBUS */
	int panic_seen, unwound;	/* the agent's: a Rust panic */
};

struct guard_ops {
	/* pc is the user's code. Async-signal-safe, as are the others. */
	int (*is_ours)(uintptr_t pc);
	/* The user's code among the return addresses in [sp, top), or 0. */
	uintptr_t (*on_stack)(uintptr_t sp, uintptr_t top);
	/* A guard's call ends by a crash of g->culprit; sp is the faulting
	 * stack's, overflow when it overflowed (optional). */
	void (*caught)(struct guard *g, uintptr_t sp, int overflow);
	/* The user's code crashed with no guard; the program's handler (or
	 * the default action) runs next (optional). */
	void (*unguarded)(int sig, const siginfo_t *si, uintptr_t culprit);
};

/* The handlers, once per process, over the program's own. ops stays. */
GUARD_API void guard_install(const struct guard_ops *ops);
/* fn(arg) guarded: 0 when it returned, 1 when it crashed (g says how).
 * Installs the handlers and the thread's alternate stack if not yet. */
GUARD_API int guard_run(const struct guard_ops *ops, struct guard *g, void (*fn)(void *),
			void *arg);
/* The thread's innermost guard, or NULL. */
GUARD_API struct guard *guard_top(void);

#endif
