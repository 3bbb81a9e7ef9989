/* Stop the world: hold every other thread still while entry jumps are
 * written, and know where each one is.
 *
 * A real-time signal goes to every thread of the process (listed from
 * /proc/self/task, again after the stop to catch threads created
 * meanwhile). Each handler records its thread's instruction pointer, says
 * it is stopped, and waits on a futex until released. The agent's own
 * thread blocks all signals and does the writing. The handler is installed
 * with SA_RESTART so that a thread stopped inside a restartable system call
 * (read on a pipe, say) does not see EINTR.
 *
 * Nothing here takes a lock a stopped thread may hold: no malloc, no stdio,
 * no dl* while threads are held; the task list is read with getdents64
 * into a buffer on the stack. A thread that does not answer in time (it
 * blocks the signal) makes the patch fail; it never hangs the program. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <sched.h>
#include <ucontext.h>
#include <unistd.h>
#include "agent.h"

#define MAX_THREADS 4096
#define STOP_TIMEOUT_NS (2000ull * 1000000)
#define RETRIES 100
/* How long a thread may keep the stop signal blocked while it runs before
 * the patch is refused. */
#define BLOCKED_WAIT_NS (1000ull * 1000000)

static int stop_sig;
static _Atomic int stopping;
static _Atomic int stop_seq;	/* which stop a signal belongs to: queued ones may be late */
static _Atomic uint32_t release_gen;
static _Atomic uint32_t acks;
static _Atomic uint32_t inside;
static _Atomic uint32_t nseen;
/* Where each stopped thread is: its instruction and stack pointers, and
 * the return address in its link register (aarch64; 0 on x86-64). */
static struct { _Atomic int tid, parked; _Atomic uint64_t ip, sp, ret; } seen[MAX_THREADS];

/* The wake-up comes from release_all(); the timeout is only a safety net. */
static void futex_wait(_Atomic uint32_t *addr, uint32_t val)
{
	struct timespec ts = {0, 50000000};
	syscall(SYS_futex, addr, FUTEX_WAIT_PRIVATE, val, &ts, NULL, 0);
}

static void futex_wake_all(_Atomic uint32_t *addr)
{
	syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, 0x7fffffff, NULL, NULL, 0);
}

static void stop_handler(int sig, siginfo_t *si, void *ucv)
{
	int saved_errno = errno;
	if (!atomic_load(&stopping) || si->si_code != SI_QUEUE || si->si_pid != getpid() ||
	    si->si_value.sival_int != atomic_load(&stop_seq))
		goto out;
	atomic_fetch_add(&inside, 1);
	uint32_t gen = atomic_load(&release_gen);
	uint32_t i = atomic_fetch_add(&nseen, 1);
	if (i < MAX_THREADS) {
		ucontext_t *uc = ucv;
		atomic_store(&seen[i].ip, agent_context_pc(uc));
		atomic_store(&seen[i].sp, agent_context_sp(uc));
		atomic_store(&seen[i].parked, 0);
		atomic_store(&seen[i].ret, agent_context_ret(uc));
		atomic_store(&seen[i].tid, (int)syscall(SYS_gettid));
	}
	atomic_fetch_add(&acks, 1);
	while (atomic_load(&release_gen) == gen)
		futex_wait(&release_gen, gen);
	atomic_fetch_sub(&inside, 1);
out:
	errno = saved_errno;
}

/* Can sig be sent to a thread? An emulator may have fewer real-time
 * signals than the system it emulates (qemu-user keeps some of the
 * host's for itself, and refuses the guest's highest ones with EINVAL):
 * queued to the caller, blocked, then taken back. */
static int deliverable(int sig)
{
	sigset_t one, old;
	siginfo_t si;
	struct timespec now = {0, 0};
	sigemptyset(&one);
	sigaddset(&one, sig);
	if (pthread_sigmask(SIG_BLOCK, &one, &old) != 0)
		return 0;
	memset(&si, 0, sizeof si);
	si.si_signo = sig;
	si.si_code = SI_QUEUE;
	si.si_pid = getpid();
	si.si_uid = getuid();
	int ok = syscall(SYS_rt_tgsigqueueinfo, getpid(), (int)syscall(SYS_gettid), sig, &si) == 0 &&
		 sigtimedwait(&one, NULL, &now) == sig;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return ok;
}

/* Pick a real-time signal nobody handles: from SIGRTMAX down. */
int stop_init(struct agent_err *e)
{
	for (int sig = SIGRTMAX - 1; sig > SIGRTMIN + 3; sig--) {
		struct sigaction old, sa;
		if (sigaction(sig, NULL, &old) < 0 || old.sa_handler != SIG_DFL)
			continue;
		memset(&sa, 0, sizeof sa);
		sa.sa_sigaction = stop_handler;
		sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
		sigfillset(&sa.sa_mask);
		if (sigaction(sig, &sa, NULL) != 0)
			continue;
		/* Tried with our handler in: a test signal that got through
		 * is ignored by it (not stopping), not the default's death. */
		if (deliverable(sig)) {
			stop_sig = sig;
			return 0;
		}
		sigaction(sig, &old, NULL);
	}
	return agent_fail(e, "no free real-time signal to stop threads with");
}

static int handler_still_ours(void)
{
	struct sigaction cur;
	return sigaction(stop_sig, NULL, &cur) == 0 && cur.sa_sigaction == stop_handler;
}

/* Thread ids of the process but the caller, into tids; count or -1. */
static int list_threads(int *tids, int cap)
{
	int self = (int)syscall(SYS_gettid), n = 0;
	int fd = open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	char buf[4096];
	for (;;) {
		long len = syscall(SYS_getdents64, fd, buf, sizeof buf);
		if (len <= 0)
			break;
		for (long off = 0; off < len;) {
			struct dirent64 *d = (struct dirent64 *)(buf + off);
			off += d->d_reclen;
			int tid = 0;
			for (const char *c = d->d_name; *c >= '0' && *c <= '9'; c++)
				tid = tid * 10 + (*c - '0');
			if (tid > 0 && tid != self && n < cap)
				tids[n++] = tid;
		}
	}
	close(fd);
	return n;
}

static int was_signalled(const int *sent, int nsent, int tid)
{
	for (int i = 0; i < nsent; i++)
		if (sent[i] == tid)
			return 1;
	return 0;
}

static int has_acked(int tid)
{
	uint32_t n = atomic_load(&nseen);
	for (uint32_t i = 0; i < n && i < MAX_THREADS; i++)
		if (atomic_load(&seen[i].tid) == tid)
			return 1;
	return 0;
}

/* A thread that exits between the signal and its answer never answers:
 * those are not waited for. */
static uint32_t gone(const int *sent, int nsent)
{
	uint32_t n = 0;
	for (int i = 0; i < nsent; i++)
		if (!has_acked(sent[i]) && syscall(SYS_tgkill, getpid(), sent[i], 0) < 0 &&
		    errno == ESRCH)
			n++;
	return n;
}

/* Threads answer within microseconds when they run: yield first, sleep
 * only when it takes longer (a thread must first be scheduled). */
static void pause_briefly(int spin)
{
	if (spin < 200) {
		sched_yield();
		return;
	}
	struct timespec ts = {0, 20000};
	nanosleep(&ts, NULL);
}

static int wait_acks(const int *sent, int nsent, uint64_t deadline)
{
	for (int spin = 1; atomic_load(&acks) < (uint32_t)nsent; spin++) {
		if (spin % 256 == 0 && atomic_load(&acks) + gone(sent, nsent) >= (uint32_t)nsent)
			return 0;
		if (agent_now_ns() > deadline)
			return atomic_load(&acks) + gone(sent, nsent) >= (uint32_t)nsent ? 0 : -1;
		pause_briefly(spin);
	}
	return 0;
}

static void release_all(void)
{
	atomic_fetch_add(&release_gen, 1);
	futex_wake_all(&release_gen);
	uint64_t deadline = agent_now_ns() + STOP_TIMEOUT_NS;
	for (int spin = 0; atomic_load(&inside) && agent_now_ns() < deadline; spin++)
		pause_briefly(spin);
	atomic_store(&stopping, 0);
}

/* Read /proc/self/task/TID/<file> into buf, without malloc or stdio:
 * other threads may be stopped holding their locks. */
static ssize_t read_task_file(int tid, const char *file, char *buf, size_t cap)
{
	char path[96], digits[16];
	int n = 0, d = 0;
	for (const char *p = "/proc/self/task/"; *p; p++)
		path[n++] = *p;
	for (int t = tid; t > 0 && d < 15; t /= 10)
		digits[d++] = (char)('0' + t % 10);
	while (d)
		path[n++] = digits[--d];
	path[n++] = '/';
	for (const char *p = file; *p && n < 90; p++)
		path[n++] = *p;
	path[n] = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t len = read(fd, buf, cap - 1);
	close(fd);
	buf[len > 0 ? len : 0] = 0;
	return len;
}

static uint64_t parse_hex(const char *p)
{
	uint64_t v = 0;
	if (p[0] == '0' && p[1] == 'x')
		p += 2;
	for (; (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'); p++)
		v = v << 4 | (uint64_t)(*p <= '9' ? *p - '0' : *p - 'a' + 10);
	return v;
}

/* The system call thread tid is blocked in, and the user address it will
 * return to; -1 when it is running (or not in a system call). */
static long task_syscall(int tid, uint64_t *pc, uint64_t *sp)
{
	char buf[512];
	if (read_task_file(tid, "syscall", buf, sizeof buf) <= 0 || buf[0] < '0' || buf[0] > '9')
		return -1;
	long nr = 0;
	for (const char *p = buf; *p >= '0' && *p <= '9'; p++)
		nr = nr * 10 + (*p - '0');
	/* "nr args... sp pc" */
	char *last = strrchr(buf, ' ');
	*pc = last ? parse_hex(last + 1) : 0;
	if (last)
		*last = 0;
	const char *before = strrchr(buf, ' ');
	*sp = before ? parse_hex(before + 1) : 0;
	return nr;
}

/* Does thread tid block sig? */
static int blocks_signal(int tid, int sig)
{
	char buf[2048];
	if (read_task_file(tid, "status", buf, sizeof buf) <= 0)
		return 0;
	const char *line = strstr(buf, "SigBlk:");
	if (!line)
		return 0;
	for (line += 7; *line == ' ' || *line == '\t'; line++)
		;
	return (parse_hex(line) >> (sig - 1)) & 1;
}

/* A thread that blocks the stop signal, or waits for signals in sigwait
 * (which would take ours as the program's), is not signalled. When it is
 * parked in a system call it cannot run code before it returns: it is
 * recorded as stopped where it will return to. */
static int park(int tid, uint64_t pc, uint64_t sp)
{
	uint32_t i = atomic_fetch_add(&nseen, 1);
	if (i >= MAX_THREADS)
		return -1;
	atomic_store(&seen[i].ip, pc);
	atomic_store(&seen[i].sp, sp);
	atomic_store(&seen[i].ret, 0);	/* not in /proc: its stack tells the rest */
	atomic_store(&seen[i].parked, 1);
	atomic_store(&seen[i].tid, tid);
	return 0;
}

static int send_stop(int tid)
{
	siginfo_t si;
	memset(&si, 0, sizeof si);
	si.si_signo = stop_sig;
	si.si_code = SI_QUEUE;
	si.si_pid = getpid();
	si.si_uid = getuid();
	si.si_value.sival_int = atomic_load(&stop_seq);
	return (int)syscall(SYS_rt_tgsigqueueinfo, getpid(), tid, stop_sig, &si);
}

/* A thread running with the stop signal blocked, or 0: looked for before
 * any thread is stopped, so that waiting for it holds nobody. */
static int running_blocker(void)
{
	int tids[MAX_THREADS];
	int n = list_threads(tids, MAX_THREADS);
	for (int i = 0; i < n; i++) {
		uint64_t pc, sp;
		if (blocks_signal(tids[i], stop_sig) && task_syscall(tids[i], &pc, &sp) < 0)
			return tids[i];
	}
	return 0;
}

/* Signal every thread not yet signalled, until the list is stable and all
 * have answered. Returns 0; 1 with *blocked set when a thread blocks the
 * signal (never signalled: a sigwait thread would take it as the
 * program's); -1 with the thread that did not answer. */
static int stop_all(int *sent, int *nsent, int *blocked, struct agent_err *e)
{
	int tids[MAX_THREADS];
	uint64_t deadline = agent_now_ns() + STOP_TIMEOUT_NS;
	for (;;) {
		int n = list_threads(tids, MAX_THREADS), added = 0;
		if (n < 0)
			return agent_fail(e, "cannot list threads (errno %d)", errno);
		for (int i = 0; i < n; i++) {
			if (was_signalled(sent, *nsent, tids[i]))
				continue;
			if (*nsent == MAX_THREADS)
				return agent_fail(e, "more than %d threads", MAX_THREADS);
			uint64_t pc = 0, sp = 0;
			long nr = task_syscall(tids[i], &pc, &sp);
			if (nr == SYS_rt_sigtimedwait || blocks_signal(tids[i], stop_sig)) {
				if (nr < 0) {
					*blocked = tids[i];
					return 1;
				}
				sent[(*nsent)++] = tids[i];	/* seen, not signalled */
				park(tids[i], pc, sp);
				atomic_fetch_add(&acks, 1);
				continue;
			}
			if (send_stop(tids[i]) == 0)
				sent[(*nsent)++] = tids[i], added++;
			else if (errno != ESRCH) {	/* gone is fine; running on is not */
				int err = errno;
				/* Those signalled answer first: one that came after the
				 * release would wait for the next stop. */
				wait_acks(sent, *nsent, deadline);
				return agent_fail(e, "cannot send signal %d to thread %d (errno %d): it "
						  "cannot be stopped", stop_sig, tids[i], err);
			}
		}
		if (!added)
			return 0;
		if (wait_acks(sent, *nsent, deadline) < 0) {
			for (int i = 0; i < *nsent; i++)
				if (!has_acked(sent[i]) && syscall(SYS_tgkill, getpid(), sent[i], 0) == 0)
					return agent_fail(e, "thread %d did not stop within %llu ms "
						"(it blocks signal %d, or is stopped)", sent[i],
						STOP_TIMEOUT_NS / 1000000, stop_sig);
			return agent_fail(e, "threads did not stop in time");
		}
	}
}

/* The name of the range a stopped thread is inside, or NULL. */
static const char *thread_inside(const struct stop_range *r, size_t n, int *tid)
{
	uint32_t count = atomic_load(&nseen);
	for (uint32_t i = 0; i < count && i < MAX_THREADS; i++) {
		uint64_t ip = atomic_load(&seen[i].ip);
		for (size_t j = 0; j < n; j++)
			if (ip >= r[j].lo + AGENT_ENTRY_PC_OK && ip < r[j].hi) {
				*tid = atomic_load(&seen[i].tid);
				return r[j].name;
			}
	}
	return NULL;
}

/* Is v a return address inside a range whose bytes hold a call? */
static const char *return_inside(const struct stop_range *r, size_t n, uint64_t v)
{
	for (size_t j = 0; j < n; j++)
		if (r[j].returns && v > r[j].lo && v < r[j].hi && v % AGENT_RET_ALIGN == 0)
			return r[j].name;
	return NULL;
}

static uint64_t hex(const char **p, const char *end)
{
	uint64_t v = 0;
	for (; *p < end; ++*p) {
		char c = **p;
		int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
		if (d < 0)
			break;
		v = v << 4 | (uint64_t)d;
	}
	return v;
}

/* ends[i]: the end of the mapping that holds sps[i] (a stack's top, past
 * its live frames), from /proc/self/maps read with plain system calls into
 * a static buffer (no stdio, no malloc: a stopped thread may hold their
 * locks). 0 where none does. -1 when the maps cannot be read. */
static int stack_ends(const uint64_t *sps, uint64_t *ends, uint32_t count)
{
	static char buf[1 << 16];
	size_t have = 0;
	int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
	memset(ends, 0, count * sizeof *ends);
	if (fd < 0)
		return -1;
	for (ssize_t got; (got = read(fd, buf + have, sizeof buf - have)) > 0;) {
		const char *line = buf, *end = buf + have + (size_t)got, *nl;
		while ((nl = memchr(line, '\n', (size_t)(end - line)))) {
			uint64_t lo = hex(&line, nl), hi = (line < nl && *line == '-') ? (line++, hex(&line, nl)) : 0;
			for (uint32_t i = 0; i < count; i++)
				if (sps[i] >= lo && sps[i] < hi)
					ends[i] = hi;
			line = nl + 1;
		}
		have = (size_t)(end - line);
		if (have == sizeof buf)	/* a line longer than the buffer: skip it */
			have = 0;
		memmove(buf, line, have);
	}
	close(fd);
	return 0;
}

/* Whose return address points inside a range that needs the check: a
 * thread's link register (aarch64), or a word of its stack from its stack
 * pointer to the top of the stack's mapping, read through /proc/self/mem.
 * The stopped threads, the parked ones (their stack pointer from
 * /proc/TID/syscall) and the caller itself (a program thread in
 * rewire_poll). A stale word that matches only makes the patch wait.
 * Sets *tid; *unreadable when a stack could not be read (the patch is
 * then refused: it cannot be known safe). */
static const char *thread_returns_into(const struct stop_range *r, size_t n, int *tid,
				       int *unreadable)
{
	static uint64_t buf[8192], sps[MAX_THREADS + 1], rets[MAX_THREADS + 1], ends[MAX_THREADS + 1];
	static int tids[MAX_THREADS + 1], parked[MAX_THREADS + 1];
	const char *name = NULL;
	int any = 0;
	*unreadable = 0;
	for (size_t j = 0; j < n; j++)
		any |= r[j].returns;
	if (!any)
		return NULL;
	uint32_t count = atomic_load(&nseen);
	if (count > MAX_THREADS)
		count = MAX_THREADS;
	for (uint32_t i = 0; i < count; i++) {
		sps[i] = atomic_load(&seen[i].sp);
		rets[i] = atomic_load(&seen[i].ret);
		tids[i] = atomic_load(&seen[i].tid);
		parked[i] = atomic_load(&seen[i].parked);
	}
	sps[count] = (uint64_t)__builtin_frame_address(0), rets[count] = 0;
	tids[count] = (int)syscall(SYS_gettid), parked[count] = 0;
	count++;
	int fd = stack_ends(sps, ends, count) < 0 ? -1 : open("/proc/self/mem", O_RDONLY | O_CLOEXEC);
	for (uint32_t i = 0; !name && i < count; i++) {
		*tid = tids[i];
		name = return_inside(r, n, rets[i]);
		uint64_t at = sps[i] & ~7ull;
		/* A parked thread's stack pointer in no mapping of ours: an
		 * emulator's (qemu-user tells its own registers there). */
		if (fd >= 0 && ends[i] <= at && parked[i])
			continue;
		if (fd < 0 || ends[i] <= at) {
			*unreadable = 1;
			break;
		}
		while (!name && at < ends[i]) {
			size_t want = ends[i] - at < sizeof buf ? (size_t)(ends[i] - at) : sizeof buf;
			ssize_t got = pread(fd, buf, want, (off_t)at);
			if (got <= 0) {
				*unreadable = 1;
				break;
			}
			for (size_t k = 0; !name && k < (size_t)got / 8; k++)
				name = return_inside(r, n, buf[k]);
			at += (uint64_t)got;
		}
		if (*unreadable)
			break;
	}
	if (fd >= 0)
		close(fd);
	return *unreadable ? r[0].name : name;
}

int stop_world_and(const struct stop_range *ranges, size_t nranges,
		   int (*write)(void *ctx, struct agent_err *e), void *ctx,
		   uint64_t *pause_ns, uint32_t *nthreads, struct agent_err *e)
{
	static int sent[MAX_THREADS];
	if (!handler_still_ours())
		return agent_fail(e, "the program replaced rewire's handler of signal %d", stop_sig);
	uint64_t start = agent_now_ns();
	for (int attempt = 0;; attempt++) {
		int nsent = 0, tid = 0, blocked = running_blocker();
		if (blocked) {
			/* Signals are blocked for a moment in many places (thread
			 * creation, a program's critical section): wait a while. */
			if (agent_now_ns() - start > BLOCKED_WAIT_NS)
				return agent_fail(e, "thread %d blocks signal %d while it runs (a sigwait "
						  "or signalfd thread?): rewire cannot stop it", blocked,
						  stop_sig);
			struct timespec ts = {0, 1000000};
			nanosleep(&ts, NULL);
			continue;
		}
		atomic_store(&acks, 0);
		atomic_store(&nseen, 0);
		atomic_fetch_add(&stop_seq, 1);
		atomic_store(&stopping, 1);
		uint64_t t0 = agent_now_ns();
		int rc0 = stop_all(sent, &nsent, &blocked, e);
		if (rc0 < 0) {
			release_all();
			return -1;
		}
		if (rc0 == 1) {
			/* One started blocking it since: as above. */
			release_all();
			if (attempt >= RETRIES || agent_now_ns() - start > BLOCKED_WAIT_NS)
				return agent_fail(e, "thread %d blocks signal %d (a sigwait or signalfd "
						  "thread?): rewire cannot stop it", blocked, stop_sig);
			struct timespec ts = {0, 2000000};
			nanosleep(&ts, NULL);
			continue;
		}
		const char *busy = thread_inside(ranges, nranges, &tid), *returns = NULL;
		int unreadable = 0;
		if (!busy)
			busy = returns = thread_returns_into(ranges, nranges, &tid, &unreadable);
		if (unreadable) {
			release_all();
			return agent_fail(e, "cannot read the stack of thread %d, to see that it will not "
					  "return into the first bytes of %s, which the patch overwrites: "
					  "%s", tid, busy, errno ? strerror(errno) : "no mapping holds it");
		}
		int rc = 0;
		if (!busy)
			rc = write(ctx, e);
		*pause_ns = agent_now_ns() - t0;
		release_all();
		*nthreads = (uint32_t)nsent;
		if (!busy)
			return rc;
		if (attempt == RETRIES && returns)
			return agent_fail(e, "thread %d would return into the first bytes of %s, which "
				"the jump to the patch overwrites (a call made there has not returned; "
				"tried %d times)", tid, busy, RETRIES);
		if (attempt == RETRIES)
			return agent_fail(e, "thread %d keeps executing the first bytes of %s "
				"(tried %d times)", tid, busy, RETRIES);
		struct timespec ts = {0, 2000000};
		nanosleep(&ts, NULL);
	}
}
