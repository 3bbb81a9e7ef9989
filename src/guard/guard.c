#define _GNU_SOURCE
#include "guard.h"
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>

#if defined(__x86_64__)
#define UC_PC(uc) ((uintptr_t)(uc)->uc_mcontext.gregs[REG_RIP])
#define UC_SP(uc) ((uintptr_t)(uc)->uc_mcontext.gregs[REG_RSP])
#elif defined(__aarch64__)
#define UC_PC(uc) ((uintptr_t)(uc)->uc_mcontext.pc)
#define UC_SP(uc) ((uintptr_t)(uc)->uc_mcontext.sp)
#else
#error "guard: unsupported architecture"
#endif

#define ALT_STACK (64 << 10)

static __thread struct guard *top __attribute__((tls_model("initial-exec")));
static __thread void *alt_stack __attribute__((tls_model("initial-exec")));
static const int crash_sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
static struct sigaction prev_act[NSIG];
static const struct guard_ops *ops;
static pthread_once_t once = PTHREAD_ONCE_INIT;

struct guard *guard_top(void)
{
	return top;
}

/* Not the user's fault, or no guard: as if this handler were not there. */
static void chain(int sig, siginfo_t *si, void *uc)
{
	struct sigaction *old = &prev_act[sig];
	if (old->sa_flags & SA_SIGINFO) {
		old->sa_sigaction(sig, si, uc);
		return;
	}
	if (old->sa_handler != SIG_DFL && old->sa_handler != SIG_IGN) {
		old->sa_handler(sig);
		return;
	}
	/* Default: uninstall and let the fault happen again (or raise a
	 * signal that was sent, not caused). */
	signal(sig, SIG_DFL);
	if (si->si_code <= 0 || sig == SIGABRT)
		raise(sig);
}

static void on_fault(int sig, siginfo_t *si, void *ucv)
{
	ucontext_t *uc = ucv;
	uintptr_t pc = UC_PC(uc), sp = UC_SP(uc);
	struct guard *g = top;
	uintptr_t culprit = ops->is_ours(pc) ? pc : 0;
	/* A stack overflow faults next to sp: scan only a stack that is there. */
	int overflow = sig == SIGSEGV && (uintptr_t)si->si_addr + 4096 >= sp &&
		       (uintptr_t)si->si_addr <= sp + 4096;
	if (!culprit && g && !overflow && sp < g->frame)
		culprit = ops->on_stack(sp, g->frame);
	if (culprit && g) {
		g->sig = sig, g->pc = pc, g->culprit = culprit, g->addr = si->si_addr;
		if (ops->caught)
			ops->caught(g, sp, overflow);
		siglongjmp(g->jb, 1);
	}
	if (culprit && ops->unguarded)
		ops->unguarded(sig, si, culprit);
	chain(sig, si, ucv);
}

static void install(void)
{
	for (size_t i = 0; i < sizeof crash_sigs / sizeof *crash_sigs; i++) {
		struct sigaction sa;
		memset(&sa, 0, sizeof sa);
		sa.sa_sigaction = on_fault;
		sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
		sigemptyset(&sa.sa_mask);
		sigaction(crash_sigs[i], &sa, &prev_act[crash_sigs[i]]);
	}
}

void guard_install(const struct guard_ops *o)
{
	if (!ops)
		ops = o;
	pthread_once(&once, install);
}

/* A stack overflow is caught too, on a stack of its own per thread (the
 * thread's own, when it has one). */
static void ensure_alt_stack(void)
{
	stack_t cur;
	if (sigaltstack(NULL, &cur) == 0 && !(cur.ss_flags & SS_DISABLE))
		return;
	if (!alt_stack && !(alt_stack = malloc(ALT_STACK)))
		return;
	stack_t ss = {.ss_sp = alt_stack, .ss_size = ALT_STACK};
	sigaltstack(&ss, NULL);
}

int guard_run(const struct guard_ops *o, struct guard *g, void (*fn)(void *), void *arg)
{
	memset(g, 0, sizeof *g);
	g->prev = top;
	g->frame = (uintptr_t)__builtin_frame_address(0);
	guard_install(o);
	ensure_alt_stack();
	if (sigsetjmp(g->jb, 1) == 0) {
		top = g;
		fn(arg);
		top = g->prev;
		return 0;
	}
	top = g->prev;
	return 1;
}
