/* The program's side of the agent (include/rewire.h, through the API
 * library or a language binding that finds these by name):
 *
 *  - rewire_agent_poll: once a program calls it, a patch that arrives is
 *    handed to the next call and applied there, on the program's thread at
 *    its quiescent moment; the agent's thread waits for it (10 s at most,
 *    then the patch is refused and nothing is applied);
 *  - rewire_agent_on_patch: hooks run after each patch, in the thread that
 *    applied it (the polling thread, else the agent's);
 *  - rewire_agent_call: fn(arg) with a guard. The fault handlers (SIGSEGV,
 *    SIGBUS, SIGILL, SIGFPE, SIGABRT, on an alternate stack so that a stack
 *    overflow is caught too) look at where it happened: in patch code, or
 *    with patch code on the stack between the fault and the guard (abort,
 *    a libc function given a bad pointer), it is the patch's fault; the
 *    handler jumps back to the guard, which rolls that patch (and later
 *    ones) back and returns REWIRE_CRASHED. Outside a guard, a crash in
 *    patch code is reported by name and noted for the session (a restart
 *    leaves that patch out); then, as for every fault that is not a
 *    patch's, the program's own handler runs, or the default action;
 *  - rewire_agent_panicking, rewire_agent_unwound: the same guard for a
 *    Rust panic, which is no signal. The Rust binding's panic hook calls
 *    the first while the panicking stack is whole: each guard of the
 *    thread remembers whether patch code is on the stack between the panic
 *    and it. The binding's trampoline catches the unwinding (it may not
 *    cross the guard's C frame) and calls the second, and the guard then
 *    blames, reports and rolls back as for a signal. A panic without patch
 *    code on the stack is not a patch's: the binding lets it go on. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <unwind.h>
#include "agent.h"
#include "guard/guard.h"

#define EXPORT __attribute__((visibility("default")))
#define POLL_WAIT_S 10
#define MAX_HOOKS 16
#define REWIRE_CRASHED (-2)

/* --- hooks ------------------------------------------------------------------ */

struct patch_info {	/* struct rewire_patch_info */
	int version;
	size_t nfuncs;
	const char *const *funcs;
	const char *const *names;
};
typedef void (*hook_fn)(const struct patch_info *, void *);

static struct { _Atomic(hook_fn) fn; void *ctx; } hooks[MAX_HOOKS];
static _Atomic int nhooks;
static pthread_mutex_t hooks_lock = PTHREAD_MUTEX_INITIALIZER;

EXPORT int rewire_agent_on_patch(hook_fn fn, void *ctx)
{
	pthread_mutex_lock(&hooks_lock);
	int n = atomic_load(&nhooks), rc = -1;
	if (n < MAX_HOOKS) {
		hooks[n].ctx = ctx;
		atomic_store(&hooks[n].fn, fn);
		atomic_store(&nhooks, n + 1);
		rc = 0;
	}
	pthread_mutex_unlock(&hooks_lock);
	return rc;
}

static void run_hooks(const struct api_note *note)
{
	struct patch_info info = {note->version, note->nfuncs, note->funcs, note->names};
	int n = atomic_load(&nhooks);
	for (int i = 0; i < n; i++)
		atomic_load(&hooks[i].fn)(&info, hooks[i].ctx);
}

/* --- safe points ------------------------------------------------------------ */

static const struct guard_ops patch_ops;

enum { HAND_NONE, HAND_PENDING, HAND_RUNNING, HAND_DONE };

static _Atomic int poll_mode;
static _Atomic int hand_state;
static pthread_mutex_t hand_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t hand_cond;
static struct {
	int (*run)(void *, struct api_note *, struct agent_err *);
	void *ctx;
	struct agent_err *e;
	int rc;
} hand;

static int run_now(int (*run)(void *, struct api_note *, struct agent_err *), void *ctx,
		   struct agent_err *e)
{
	struct api_note note = {0};
	/* Before the jumps: new code may crash the moment they are written,
	 * before the patch returns, and that crash is the patch's. */
	guard_install(&patch_ops);
	int rc = run(ctx, &note, e);
	if (rc == 0 && (note.version || note.nfuncs))	/* a revert to the code built: 0 */
		run_hooks(&note);
	return rc;
}

int api_run(int (*run)(void *, struct api_note *, struct agent_err *), void *ctx,
	    struct agent_err *e)
{
	if (!atomic_load(&poll_mode))
		return run_now(run, ctx, e);
	struct timespec until;
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += POLL_WAIT_S;
	pthread_mutex_lock(&hand_lock);
	hand.run = run, hand.ctx = ctx, hand.e = e;
	atomic_store(&hand_state, HAND_PENDING);
	while (atomic_load(&hand_state) != HAND_DONE) {
		int w = pthread_cond_timedwait(&hand_cond, &hand_lock, &until);
		if (w == ETIMEDOUT && atomic_load(&hand_state) == HAND_PENDING) {
			atomic_store(&hand_state, HAND_NONE);
			pthread_mutex_unlock(&hand_lock);
			return agent_fail(e, "the program did not call rewire_poll() within %d s",
					  POLL_WAIT_S);
		}
	}
	int rc = hand.rc;
	atomic_store(&hand_state, HAND_NONE);
	pthread_mutex_unlock(&hand_lock);
	return rc;
}

EXPORT int rewire_agent_poll(void)
{
	if (!atomic_load_explicit(&poll_mode, memory_order_relaxed))
		atomic_store(&poll_mode, 1);
	if (atomic_load(&hand_state) != HAND_PENDING)
		return 0;
	pthread_mutex_lock(&hand_lock);
	int mine = atomic_load(&hand_state) == HAND_PENDING;
	if (mine)
		atomic_store(&hand_state, HAND_RUNNING);
	pthread_mutex_unlock(&hand_lock);
	if (!mine)
		return 0;
	int rc = run_now(hand.run, hand.ctx, hand.e);
	pthread_mutex_lock(&hand_lock);
	hand.rc = rc;
	atomic_store(&hand_state, HAND_DONE);
	pthread_cond_broadcast(&hand_cond);
	pthread_mutex_unlock(&hand_lock);
	return rc == 0;
}

/* --- guarded calls ---------------------------------------------------------- */

static void say(const char *s)
{
	if (write(2, s, strlen(s)) < 0) {}	/* in a fault handler: nothing else to do */
}

/* Patch code on the stack between the fault and the guard's frame: a
 * return address into it means patch code made the call that failed.
 * named: only in a function the patch replaced (not new code). */
static uint64_t patch_on_stack(uint64_t sp, uintptr_t top, int named)
{
	for (uint64_t p = (sp + 7) & ~7ull; p + 8 <= top; p += 8) {
		uint64_t v = *(const uint64_t *)p;
		int ver;
		/* v - 1: in the call; a noreturn call may end its function. */
		if (apply_is_patch_code(v - 1) && (!named || apply_name_at(v - 1, &ver, NULL)))
			return v - 1;
	}
	return 0;
}

/* Names as a person reads them, for the common case of a nested name
 * (_ZN 4core 3ptr 13read_volatile 17h<hash> E: Rust's legacy mangling, C++
 * without parameters): core::ptr::read_volatile. Anything else is shown as
 * it is. No allocation: this runs in a signal handler. */
static const char *readable(const char *m, char *out, size_t cap)
{
	size_t n = 0;
	if (!m || strncmp(m, "_ZN", 3))
		return m;
	for (const char *p = m + 3; *p != 'E';) {
		size_t len = 0;
		if (*p < '0' || *p > '9')
			return m;
		while (*p >= '0' && *p <= '9')
			len = len * 10 + (size_t)(*p++ - '0');
		if (strnlen(p, len) < len || n + len + 3 >= cap)
			return m;
		if (len == 17 && p[0] == 'h' && p[len] == 'E')
			break;	/* Rust's hash */
		if (n)
			out[n++] = ':', out[n++] = ':';
		memcpy(out + n, p, len);
		n += len;
		p += len;
	}
	out[n] = 0;
	return n ? out : m;
}

static void report(int sig, uint64_t at, const char *name, const void *addr, const char *what)
{
	char buf[1600], why[64] = "";
	int ver;
	uint32_t gen;
	const char *redirected = apply_name_at(at, &ver, &gen), *abbrev = sig ? sigabbrev_np(sig) : NULL;
	char nbuf[512];
	if (!name)
		name = redirected;
	name = readable(name, nbuf, sizeof nbuf);
	/* snprintf of strings and numbers takes no lock in glibc. */
	if (sig == SIGSEGV || sig == SIGBUS)
		snprintf(why, sizeof why, ", bad address %p", addr);
	if (!sig)	/* a Rust panic: its message is already on stderr */
		snprintf(buf, sizeof buf, "rewire: panic in patched code: %s (patch %d, at %#lx)%s\n",
			 name ? name : "new code", ver, (unsigned long)at, what);
	else
		snprintf(buf, sizeof buf, "rewire: SIG%s in patched code: %s (patch %d, at %#lx%s)%s\n",
			 abbrev ? abbrev : "?", name ? name : "new code", ver, (unsigned long)at, why,
			 what);
	agent_wait_said(gen);
	say(buf);
}

/* The fault handlers (guard/guard.c) ask these what is patch code. */
static int is_patch_code(uintptr_t pc)
{
	return apply_is_patch_code(pc);
}

static uintptr_t patch_on_stack_any(uintptr_t sp, uintptr_t top)
{
	return patch_on_stack(sp, top, 0);
}

/* The replaced function that made the call, for the report. */
static void caught(struct guard *g, uintptr_t sp, int overflow)
{
	g->caller = overflow || sp >= g->frame ? 0 : patch_on_stack(sp, g->frame, 1);
}

static void unguarded(int sig, const siginfo_t *si, uintptr_t culprit)
{
	int ver;
	apply_name_at(culprit, &ver, NULL);
	report(sig, culprit, NULL, si->si_addr, "");
	/* Likely the end of the process (unless its own handler recovers): a
	 * restart can leave this patch out. */
	agent_note_crash(ver, sig);
}

/* The fault handlers go in when there is patch code to guard (just before
 * the first patch, or at the first guarded call), after the program
 * installed its own (Rust's stack-overflow handler only installs itself
 * over the default). */
static const struct guard_ops patch_ops = {is_patch_code, patch_on_stack_any, caught, unguarded};

/* The guard ended by a crash (sig) or by a panic of patch code (sig 0):
 * report it, roll its patch back. */
static int crashed(struct guard *g)
{
	struct agent_err e = {{0}};
	int first, last;
	char buf[AGENT_ERRLEN + 640];
	const char *name = apply_function_at(g->culprit), *caller = NULL;
	char cbuf[512];
	if (g->caller && (caller = apply_function_at(g->caller)) && name && !strcmp(caller, name))
		caller = NULL;
	caller = readable(caller, cbuf, sizeof cbuf);
	if (g->sig)
		snprintf(buf, sizeof buf, " during rewire_call()%s%.400s", caller ? ", called from " : "",
			 caller ? caller : "");
	else
		snprintf(buf, sizeof buf, " during rewire::call()%s%.400s",
			 caller ? ", called from " : "", caller ? caller : "");
	report(g->sig, g->culprit, name, g->addr, buf);
	if (apply_rollback(g->culprit, &first, &last, &e) < 0)
		snprintf(buf, sizeof buf, "rewire: cannot roll it back: %s\n", e.msg);
	else if (first == last)
		snprintf(buf, sizeof buf, "rewire: patch %d rolled back: the previous version runs\n",
			 first);
	else
		snprintf(buf, sizeof buf, "rewire: patches %d to %d rolled back: the version before "
			 "them runs\n", first, last);
	say(buf);
	if (last)
		agent_tell_rolled_back(apply_generation());
	return REWIRE_CRASHED;
}

EXPORT int rewire_agent_call(void (*fn)(void *), void *arg)
{
	struct guard g;
	if (guard_run(&patch_ops, &g, fn, arg))
		return crashed(&g);
	/* A panic the binding caught: the patch's when patch code was on the
	 * stack; otherwise not ours to handle. */
	return g.unwound && g.culprit ? crashed(&g) : 0;
}

/* The frames of the panicking stack, from the unwinder (libgcc_s, which a
 * Rust program has loaded; looked up, so the agent needs only libc): their
 * return addresses exactly, where a stack scan can take a stale word for
 * one. No unwinder, or more frames than fit: the scan. */
#define MAX_FRAMES 256

struct frames {
	uint64_t pc[MAX_FRAMES], cfa[MAX_FRAMES];
	size_t n;
	uintptr_t (*ip)(struct _Unwind_Context *), (*cfa_of)(struct _Unwind_Context *);
};
static __thread struct frames *frames_mem __attribute__((tls_model("initial-exec")));

static _Unwind_Reason_Code one_frame(struct _Unwind_Context *c, void *arg)
{
	struct frames *f = arg;
	if (f->n == MAX_FRAMES)
		return _URC_END_OF_STACK;
	f->pc[f->n] = f->ip(c), f->cfa[f->n] = f->cfa_of(c);
	f->n++;
	return _URC_NO_REASON;
}

static int unwind_frames(struct frames *f)
{
	_Unwind_Reason_Code (*trace)(_Unwind_Trace_Fn, void *) =
		(_Unwind_Reason_Code (*)(_Unwind_Trace_Fn, void *))dlsym(RTLD_DEFAULT, "_Unwind_Backtrace");
	f->ip = (uintptr_t (*)(struct _Unwind_Context *))dlsym(RTLD_DEFAULT, "_Unwind_GetIP");
	f->cfa_of = (uintptr_t (*)(struct _Unwind_Context *))dlsym(RTLD_DEFAULT, "_Unwind_GetCFA");
	f->n = 0;
	if (!trace || !f->ip || !f->cfa_of)
		return -1;
	trace(one_frame, f);
	return 0;
}

/* Patch code among the return addresses of the frames below top (their
 * CFA is under it); named: in a function the patch replaced. */
static uint64_t patch_in_frames(const struct frames *f, uintptr_t top, int named)
{
	int ver;
	for (size_t i = 0; i < f->n && f->cfa[i] <= top; i++)
		if (apply_is_patch_code(f->pc[i] - 1) && (!named || apply_name_at(f->pc[i] - 1, &ver, NULL)))
			return f->pc[i] - 1;
	return 0;
}

/* A panic starts on this thread (from the Rust binding's panic hook, on
 * the panicking stack): every guard remembers the patch code between here
 * and its frame, as for an abort. A panic caught inside the guarded
 * function is remembered too, but only counts if it reaches the guard:
 * the binding says so with rewire_agent_unwound(). */
EXPORT void rewire_agent_panicking(void)
{
	uint64_t sp = (uint64_t)__builtin_frame_address(0);
	if (!guard_top())
		return;
	/* 4 KiB: not on a stack that may be short, nor in TLS (an agent
	 * loaded by `rewire attach` has a few dozen bytes of static TLS). */
	if (!frames_mem)
		frames_mem = malloc(sizeof *frames_mem);
	struct frames *f = frames_mem;
	int walked = f && unwind_frames(f) == 0;
	for (struct guard *g = guard_top(); g; g = g->prev) {
		g->sig = 0, g->pc = 0, g->addr = NULL, g->panic_seen = 1;
		if (walked && f->n && f->cfa[f->n - 1] > g->frame) {
			g->culprit = patch_in_frames(f, g->frame, 0);
			g->caller = g->culprit ? patch_in_frames(f, g->frame, 1) : 0;
		} else {
			g->culprit = sp < g->frame ? patch_on_stack(sp, g->frame, 0) : 0;
			g->caller = g->culprit ? patch_on_stack(sp, g->frame, 1) : 0;
		}
	}
}

/* The function of the innermost guard ended by unwinding (the binding
 * caught it). 1 when rewire_agent_panicking() saw the panic, 0 when it
 * did not (the program replaced the binding's panic hook, or no panic but
 * a resumed unwinding) or there is no guard. */
EXPORT int rewire_agent_unwound(void)
{
	struct guard *g = guard_top();
	if (!g)
		return 0;
	g->unwound = 1;
	return g->panic_seen;
}

static int make_cond(void)
{
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	int rc = pthread_cond_init(&hand_cond, &ca);
	pthread_condattr_destroy(&ca);
	return rc;
}

int api_init(struct agent_err *e)
{
	return make_cond() ? agent_fail(e, "cannot make a condition variable") : 0;
}

/* fork(): no hook is half registered and no hand-over half made in the
 * child. A patch handed to rewire_poll() stays the parent's: the child's
 * agent has no thread waiting for it (the session patches the child on
 * its own), and the condition's waiters did not come along. */
void api_fork_prepare(void)
{
	pthread_mutex_lock(&hooks_lock);
	pthread_mutex_lock(&hand_lock);
}

void api_fork_parent(void)
{
	pthread_mutex_unlock(&hand_lock);
	pthread_mutex_unlock(&hooks_lock);
}

void api_fork_child(void)
{
	atomic_store(&hand_state, HAND_NONE);
	make_cond();
	pthread_mutex_unlock(&hand_lock);
	pthread_mutex_unlock(&hooks_lock);
}
