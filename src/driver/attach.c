/* `rewire attach PID`: take a program that was started without rewire.
 *
 * The agent is loaded the way a debugger calls a function: rewire traces
 * one thread of the process (PTRACE_SEIZE, then PTRACE_INTERRUPT), saves
 * its registers and its FPU/vector state, and makes it call dlopen (in
 * libc since glibc 2.34, else in a loaded libdl) on the agent's path,
 * then the agent's rewire_agent_attach(dir), which listens as the agent
 * of `rewire run` does. Each call returns to address 0: the fault (SIGSEGV
 * at pc 0) tells that it returned, and is never delivered. Then the thread
 * gets its registers back exactly (an interrupted system call restarts as
 * before) and is let go. The strings go on its stack below the red zone.
 *
 * The thread is taken where it holds none of the C library's locks that
 * dlopen needs: in a system call (a read, a sleep, a wait: where programs
 * spend their time), but not one of malloc's (brk, mmap...), or in the
 * program's own code; found inside libc or the dynamic linker, it runs on
 * a little and is stopped again. Other threads keep running throughout.
 *
 * Whatever fails, the thread is given back as it was and released, and
 * the reason said; rewire's own signals wait until it is. The processes
 * the program forked before (a pre-fork server's workers) run the same
 * executable: each gets an agent the same way. Those forked after have
 * one through fork (agent.c). Then the session runs as under `rewire
 * run` (src/session/), and ends when the program ends or rewire is told to
 * stop (Ctrl-C, SIGTERM, SIGHUP); the program runs on, with its patches
 * and its agents, which `rewire apply --pid` still reaches. */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>
#include "driver.h"
#include "procs.h"
#include "front/cargo.h"
#include "front/cc.h"

#define CALL_TIMEOUT_MS 10000
#define SAFE_TRIES 250

/* --- x86-64 ----------------------------------------------------------------
 * Everything that knows the machine: registers, the calling convention,
 * the system calls malloc makes. One section per machine the driver runs
 * on; it attaches to programs of its own machine only. */
#if defined(__x86_64__)
#include <sys/user.h>

typedef struct user_regs_struct arch_regs;
#define ARCH_MACHINE EM_X86_64
#define ARCH_NAME "x86-64"
#define ARCH_XSTATE NT_X86_XSTATE
#define RED_ZONE 128

static uint64_t arch_pc(const arch_regs *r) { return r->rip; }
static uint64_t arch_sp(const arch_regs *r) { return r->rsp; }
static uint64_t arch_ret(const arch_regs *r) { return r->rax; }
/* The system call the thread was stopped in, or -1. */
static long arch_syscall(const arch_regs *r) { return (long)r->orig_rax; }

/* fn(a0, a1) with the return address at sp (sp+8 16-byte aligned, as at
 * any function's entry). orig_rax -1: the kernel must not take the call
 * for an interrupted system call and restart it. */
static void arch_set_call(arch_regs *r, uint64_t fn, uint64_t a0, uint64_t a1, uint64_t sp)
{
	r->rip = fn;
	r->rdi = a0;
	r->rsi = a1;
	r->rsp = sp;
	r->rax = 0;	/* no vector registers for a variadic callee */
	r->orig_rax = (unsigned long long)-1;
}

/* malloc holds its arena's lock around these: dlopen would wait on it. */
static int arch_in_malloc_call(long nr)
{
	return nr == 9 /* mmap */ || nr == 10 /* mprotect */ || nr == 11 /* munmap */ ||
	       nr == 12 /* brk */ || nr == 25 /* mremap */ || nr == 28 /* madvise */;
}

static int arch_get(int tid, arch_regs *r)
{
	return ptrace(PTRACE_GETREGS, tid, 0, r);
}

static int arch_set(int tid, const arch_regs *r)
{
	return ptrace(PTRACE_SETREGS, tid, 0, r);
}
/* --- aarch64 -------------------------------------------------------------- */
#elif defined(__aarch64__)
#include <asm/ptrace.h>
#include <elf.h>

/* The general registers, and the system call the thread is stopped in
 * (not among them: its own regset). */
typedef struct {
	struct user_pt_regs r;
	int syscallno;
} arch_regs;
#define ARCH_MACHINE EM_AARCH64
#define ARCH_NAME "aarch64"
#define ARCH_XSTATE NT_ARM_SVE
#define RED_ZONE 0	/* none in the AAPCS64 */
#ifndef NT_ARM_SYSTEM_CALL
#define NT_ARM_SYSTEM_CALL 0x404
#endif

static uint64_t arch_pc(const arch_regs *r) { return r->r.pc; }
static uint64_t arch_sp(const arch_regs *r) { return r->r.sp; }
static uint64_t arch_ret(const arch_regs *r) { return r->r.regs[0]; }
static long arch_syscall(const arch_regs *r) { return r->syscallno; }

/* fn(a0, a1) returning to address 0 (x30), sp 16-byte aligned. The
 * system call number -1: no restart of an interrupted one. */
static void arch_set_call(arch_regs *r, uint64_t fn, uint64_t a0, uint64_t a1, uint64_t sp)
{
	r->r.pc = fn;
	r->r.regs[0] = a0;
	r->r.regs[1] = a1;
	r->r.regs[30] = 0;
	r->r.sp = sp & ~15ull;
	r->syscallno = -1;
}

static int arch_in_malloc_call(long nr)
{
	return nr == 222 /* mmap */ || nr == 226 /* mprotect */ || nr == 215 /* munmap */ ||
	       nr == 214 /* brk */ || nr == 216 /* mremap */ || nr == 233 /* madvise */;
}

static int arch_get(int tid, arch_regs *r)
{
	struct iovec gp = {&r->r, sizeof r->r}, sc = {&r->syscallno, sizeof r->syscallno};
	if (ptrace(PTRACE_GETREGSET, tid, NT_PRSTATUS, &gp) < 0)
		return -1;
	if (ptrace(PTRACE_GETREGSET, tid, NT_ARM_SYSTEM_CALL, &sc) < 0)
		r->syscallno = -1;
	return 0;
}

static int arch_set(int tid, const arch_regs *r)
{
	struct iovec gp = {(void *)&r->r, sizeof r->r};
	struct iovec sc = {(void *)&r->syscallno, sizeof r->syscallno};
	if (ptrace(PTRACE_SETREGSET, tid, NT_ARM_SYSTEM_CALL, &sc) < 0 && errno != EINVAL)
		return -1;
	return (int)ptrace(PTRACE_SETREGSET, tid, NT_PRSTATUS, &gp);
}
#else
#error "rewire attach: no arch section for this machine"
#endif

/* --- what the process is ------------------------------------------------- */

/* The value of "Key:" in /proc/PID/status. */
static int status_field(int pid, const char *key, char *out, size_t cap)
{
	char path[64], line[512];
	size_t n = strlen(key);
	snprintf(path, sizeof path, "/proc/%d/status", pid);
	FILE *f = fopen(path, "r");
	int found = 0;
	while (f && !found && fgets(line, sizeof line, f))
		if (!strncmp(line, key, n) && line[n] == ':') {
			snprintf(out, cap, "%s", line + n + 1 + strspn(line + n + 1, " \t"));
			out[strcspn(out, "\n")] = 0;
			found = 1;
		}
	if (f)
		fclose(f);
	return found ? 0 : -1;
}

static void comm_of(int pid, char *out, size_t cap)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/comm", pid);
	FILE *f = fopen(path, "r");
	if (!f || !fgets(out, (int)cap, f))
		snprintf(out, cap, "?");
	out[strcspn(out, "\n")] = 0;
	if (f)
		fclose(f);
}

static const char *user_name(unsigned uid)
{
	struct passwd *pw = getpwuid(uid);
	return pw ? pw->pw_name : "?";
}

/* A process has one tracer at a time: name the one it has. */
static int check_tracer(int pid)
{
	char v[32], comm[64];
	if (status_field(pid, "TracerPid", v, sizeof v) < 0)
		return rw_fail("no process %d", pid);
	int tracer = atoi(v);
	if (!tracer)
		return 0;
	comm_of(tracer, comm, sizeof comm);
	return rw_fail("it is traced by process %d (%s), and a process has one tracer at a time: "
		       "end or detach that one first (gdb: detach)", tracer, comm);
}

/* EPERM from ptrace, or EACCES on /proc/PID: another user's process, or
 * the kernel's ptrace policy (Yama). Say which, and the way out. */
static int not_permitted(int pid, int err)
{
	char v[128];
	unsigned uid = 0;
	FILE *f = fopen("/proc/sys/kernel/yama/ptrace_scope", "r");
	int scope = -1;
	if (f && fscanf(f, "%d", &scope) != 1)
		scope = -1;
	if (f)
		fclose(f);
	if (status_field(pid, "Uid", v, sizeof v) == 0 && sscanf(v, "%*u %u", &uid) == 1 &&
	    uid != geteuid() && geteuid() != 0) {
		char theirs[64];
		snprintf(theirs, sizeof theirs, "%s", user_name(uid));	/* getpwuid's buffer is reused */
		return rw_fail("it runs as user %s (uid %u), rewire as %s (uid %u): run rewire attach "
			       "as that user, or as root", theirs, uid, user_name(geteuid()),
			       (unsigned)geteuid());
	}
	if (scope > 0)
		return rw_fail("ptrace is not permitted (%s): kernel.yama.ptrace_scope is %d; allow it "
			       "with `sysctl kernel.yama.ptrace_scope=0`, or run rewire attach as root",
			       strerror(err), scope);
	return rw_fail("ptrace is not permitted (%s): run rewire attach as root, or give it "
		       "CAP_SYS_PTRACE", strerror(err));
}

/* A mapped module: its file, load base, and the span of its mappings. */
struct module {
	char path[PATH_MAX];
	uint64_t base, lo, hi;
};

/* The first module whose file name starts with prefix ("libc.so"). */
static int find_module(int pid, const char *prefix, struct module *m)
{
	char maps[64], line[PATH_MAX + 128];
	snprintf(maps, sizeof maps, "/proc/%d/maps", pid);
	FILE *f = fopen(maps, "r");
	if (!f)
		return -1;
	memset(m, 0, sizeof *m);
	while (fgets(line, sizeof line, f)) {
		unsigned long long lo, hi, off;
		int name = 0;
		if (sscanf(line, "%llx-%llx %*s %llx %*s %*s %n", &lo, &hi, &off, &name) < 3 || !name)
			continue;
		line[strcspn(line, "\n")] = 0;
		const char *path = line + name;
		if (path[0] != '/' || strncmp(rw_basename(path), prefix, strlen(prefix)))
			continue;
		if (!m->path[0]) {
			snprintf(m->path, sizeof m->path, "%s", path);
			m->base = lo - off;
			m->lo = lo;
		} else if (strcmp(m->path, path)) {
			continue;
		}
		m->hi = hi;
	}
	fclose(f);
	return m->path[0] ? 0 : -1;
}

/* The address of name in module m of the process, 0 when it has none. */
static uint64_t module_symbol(const struct module *m, const char *name)
{
	struct elf_image img;
	if (elf_image_open(&img, m->path) < 0)
		return 0;
	const struct elf_symbol *s = elf_image_find(&img, name, NULL);
	uint64_t addr = s && s->type == STT_FUNC ? m->base + s->value : 0;
	elf_image_close(&img);
	return addr;
}

/* An emulator (qemu-user) running a program of another machine: its
 * executable is the emulator's, of this machine, and a dlopen there would
 * load the agent into the emulator, not into the program. Told by an ELF
 * file of another machine in its mappings (qemu-img, of this machine
 * only, is a program like another). */
static int check_emulator(int pid, const char *path)
{
	char exe[4096], guest[4096];
	ssize_t n = readlink(path, exe, sizeof exe - 1);
	if (n <= 0)
		return 0;	/* check_exe says why */
	exe[n] = 0;
	if (!procs_emulated(pid, guest, sizeof guest))
		return 0;
	return rw_fail("it runs under an emulator (%s): rewire attaches to programs of its own "
		       "machine only; start it with `rewire run`, which runs an aarch64 program "
		       "under qemu with the agent in", rw_basename(exe));
}

/* The executable is a 64-bit ELF of this machine; reading it needs the same
 * rights as tracing the process. */
static int check_exe(int pid)
{
	char path[64];
	Elf64_Ehdr eh;
	snprintf(path, sizeof path, "/proc/%d/exe", pid);
	if (check_emulator(pid, path) < 0)
		return -1;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == EACCES || errno == EPERM ? not_permitted(pid, errno) :
		       rw_fail("cannot read its executable: %s", strerror(errno));
	ssize_t n = read(fd, &eh, sizeof eh);
	close(fd);
	if (n < EI_NIDENT + 4 || memcmp(eh.e_ident, ELFMAG, SELFMAG))
		return rw_fail("its executable is not an ELF file");
	if (eh.e_ident[EI_CLASS] != ELFCLASS64)
		return rw_fail("it is a 32-bit program: rewire attaches to 64-bit programs only");
	if (eh.e_machine != ARCH_MACHINE)
		return rw_fail("it is a program for another machine (ELF machine %u): rewire attaches "
			       "to programs of its own machine (%s) only", eh.e_machine, ARCH_NAME);
	return 0;
}

/* Everything that refuses before the process is touched. */
static int check_process(int pid, struct module *libc)
{
	if (check_tracer(pid) < 0 || check_exe(pid) < 0)
		return -1;
	if (procs_has_agent(pid))
		return rw_fail("it already has rewire's agent (it runs under `rewire run`, or was "
			       "attached before): patch it with `rewire apply --pid %d FILE.o`", pid);
	if (find_module(pid, "libc.so", libc) < 0 && find_module(pid, "libc-", libc) < 0)
		return rw_fail("it is a static executable (no C library is loaded): rewire's agent is "
			       "loaded with dlopen; link the program dynamically");
	return 0;
}

/* --- the traced thread --------------------------------------------------- */

struct tracee {
	int pid, tid;
	int seized, saved, gone;
	int mem;		/* /proc/PID/mem */
	arch_regs regs;		/* as it was stopped */
	uint8_t *xstate;	/* its FPU and vector registers */
	struct iovec xiov;
	int xtype;		/* ARCH_XSTATE, NT_PRFPREG, or 0: none saved */
	uint64_t sp;		/* where calls return from: the address 0 */
	struct module libc, ld;
};

static int thread_alive(int pid, int tid)
{
	char path[64];
	struct rw_proc_stat st;
	snprintf(path, sizeof path, "/proc/%d/task/%d/stat", pid, tid);
	return rw_stat_file(path, &st) == 0 && st.state != 'Z';
}

/* The main thread, unless it ended (pthread_exit): then another. */
static int pick_thread(int pid)
{
	char path[64];
	struct dirent *e;
	int tid = pid;
	snprintf(path, sizeof path, "/proc/%d/task", pid);
	DIR *d = thread_alive(pid, pid) ? NULL : opendir(path);
	while (d && (e = readdir(d)))
		if (atoi(e->d_name) > 0 && thread_alive(pid, atoi(e->d_name))) {
			tid = atoi(e->d_name);
			break;
		}
	if (d)
		closedir(d);
	return tid;
}

/* Wait for the thread's next stop: 0 a ptrace stop (PTRACE_INTERRUPT, a
 * group stop), else the signal it stopped with; -1 when it ended. */
static int next_stop(struct tracee *t, int timeout_ms)
{
	int st;
	for (int waited = 0;;) {
		pid_t r = waitpid(t->tid, &st, __WALL | WNOHANG);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 || (r > 0 && (WIFEXITED(st) || WIFSIGNALED(st)))) {
			t->gone = 1;
			return rw_fail("it ended while rewire's agent was being loaded");
		}
		if (r > 0)
			return st >> 16 == PTRACE_EVENT_STOP ? 0 : WSTOPSIG(st);
		if (waited >= timeout_ms)
			return -2;
		usleep(1000);
		waited++;
	}
}

/* Stopped by PTRACE_INTERRUPT: signals that come first go on to the
 * program as they would have. */
static int interrupt(struct tracee *t)
{
	if (ptrace(PTRACE_INTERRUPT, t->tid, 0, 0) < 0)
		return rw_fail("PTRACE_INTERRUPT: %s", strerror(errno));
	for (;;) {
		int sig = next_stop(t, 5000);
		if (sig == 0)
			return 0;
		if (sig == -1)
			return -1;
		if (sig == -2)
			return rw_fail("its thread %d does not stop", t->tid);
		ptrace(PTRACE_CONT, t->tid, 0, sig);
	}
}

/* Could the thread be holding a lock dlopen takes? */
static int at_unsafe_point(const struct tracee *t, const arch_regs *r)
{
	uint64_t pc = arch_pc(r);
	long nr = arch_syscall(r);
	if (nr >= 0)
		return arch_in_malloc_call(nr);
	return (pc >= t->libc.lo && pc < t->libc.hi) || (pc >= t->ld.lo && pc < t->ld.hi);
}

static int stop_safely(struct tracee *t)
{
	for (int tries = 0;; tries++) {
		if (interrupt(t) < 0)
			return -1;
		if (arch_get(t->tid, &t->regs) < 0)
			return rw_fail("cannot read its registers: %s", strerror(errno));
		if (!at_unsafe_point(t, &t->regs))
			return 0;
		if (tries == SAFE_TRIES)
			return rw_fail("its thread %d stayed inside the C library (at %#llx) for %d tries: "
				       "try again", t->tid, (unsigned long long)arch_pc(&t->regs), tries);
		ptrace(PTRACE_CONT, t->tid, 0, 0);
		usleep(2000);
	}
}

/* The FPU and vector registers: the code called may use any of them. */
static void save_xstate(struct tracee *t)
{
	static const int types[] = {ARCH_XSTATE, NT_PRFPREG};
	t->xstate = rw_malloc(1 << 16);
	for (size_t i = 0; i < sizeof types / sizeof *types; i++) {
		t->xiov = (struct iovec){t->xstate, 1 << 16};
		if (ptrace(PTRACE_GETREGSET, t->tid, types[i], &t->xiov) == 0) {
			t->xtype = types[i];
			return;
		}
	}
}

/* The thread as it was, released. Refusals before the stop come here too. */
static void release(struct tracee *t)
{
	if (t->saved && !t->gone) {
		arch_set(t->tid, &t->regs);
		if (t->xtype)
			ptrace(PTRACE_SETREGSET, t->tid, t->xtype, &t->xiov);
	}
	if (t->seized && !t->gone)
		ptrace(PTRACE_DETACH, t->tid, 0, 0);
	if (t->mem >= 0)
		close(t->mem);
	free(t->xstate);
	t->xstate = NULL;
}

static int mem_write(struct tracee *t, uint64_t addr, const void *p, size_t n)
{
	if (pwrite(t->mem, p, n, (off_t)addr) != (ssize_t)n)
		return rw_fail("cannot write its stack at %#llx: %s", (unsigned long long)addr,
			       strerror(errno));
	return 0;
}

/* The string at addr, cut at cap. */
static void mem_string(struct tracee *t, uint64_t addr, char *out, size_t cap)
{
	ssize_t n = addr ? pread(t->mem, out, cap - 1, (off_t)addr) : -1;
	out[n > 0 ? n : 0] = 0;
}

static int is_crash(int sig)
{
	return sig == SIGSEGV || sig == SIGBUS || sig == SIGILL || sig == SIGFPE || sig == SIGABRT;
}

/* fn(a0, a1) on the stopped thread; its result. It returns to address 0:
 * the fault there is the return, kept from the program. Other signals
 * reach the program as usual. */
static int call(struct tracee *t, uint64_t fn, uint64_t a0, uint64_t a1, const char *what,
		uint64_t *ret)
{
	arch_regs r = t->regs;
	arch_set_call(&r, fn, a0, a1, t->sp);
	if (arch_set(t->tid, &r) < 0 || ptrace(PTRACE_CONT, t->tid, 0, 0) < 0)
		return rw_fail("cannot make its thread call %s: %s", what, strerror(errno));
	for (;;) {
		int sig = next_stop(t, CALL_TIMEOUT_MS);
		if (sig == -1)
			return -1;
		if (sig == -2) {
			interrupt(t);
			return rw_fail("%s did not return within %d s (a lock its thread held?); the "
				       "thread was put back where it was", what, CALL_TIMEOUT_MS / 1000);
		}
		if (sig == 0) {
			ptrace(PTRACE_CONT, t->tid, 0, 0);
			continue;
		}
		if (arch_get(t->tid, &r) < 0)
			return rw_fail("cannot read its registers: %s", strerror(errno));
		if (sig == SIGSEGV && arch_pc(&r) == 0) {
			*ret = arch_ret(&r);
			return 0;
		}
		if (is_crash(sig))
			return rw_fail("%s crashed (%s at %#llx); the thread was put back where it was",
				       what, strsignal(sig), (unsigned long long)arch_pc(&r));
		ptrace(PTRACE_CONT, t->tid, 0, sig);
	}
}

/* The strings the calls take, below the thread's red zone; the return
 * address 0 below them. Their addresses in at[]. */
static int push_strings(struct tracee *t, const char *const *s, size_t n, uint64_t *at)
{
	uint64_t top = arch_sp(&t->regs) - RED_ZONE, p = top;
	for (size_t i = 0; i < n; i++) {
		p -= strlen(s[i]) + 1;
		at[i] = p;
		if (mem_write(t, p, s[i], strlen(s[i]) + 1) < 0)
			return -1;
	}
	uint64_t zero = 0;
	t->sp = (p & ~15ull) - 8;
	return mem_write(t, t->sp, &zero, sizeof zero);
}

static uint64_t find_dlfn(struct tracee *t, int pid, const char *name)
{
	struct module dl;
	uint64_t a = module_symbol(&t->libc, name);
	if (!a && find_module(pid, "libdl.so", &dl) == 0)
		a = module_symbol(&dl, name);
	return a;
}

/* dlopen(agent), dlsym(rewire_agent_attach), then call it with dir. */
static int load_agent(struct tracee *t, const char *agent, const char *dir)
{
	const char *strs[] = {agent, dir, "rewire_agent_attach"};
	uint64_t at[3], handle, fn, msg;
	char why[1024];
	uint64_t dlopen_fn = find_dlfn(t, t->pid, "dlopen"), dlsym_fn = find_dlfn(t, t->pid, "dlsym");
	uint64_t dlerror_fn = find_dlfn(t, t->pid, "dlerror");
	if (!dlopen_fn || !dlsym_fn)
		return rw_fail("%s has no dlopen (a C library older than glibc 2.34, without libdl "
			       "loaded?)", t->libc.path);
	if (push_strings(t, strs, 3, at) < 0 || call(t, dlopen_fn, at[0], RTLD_NOW, "dlopen", &handle) < 0)
		return -1;
	if (!handle) {
		uint64_t err = 0;
		if (!dlerror_fn || call(t, dlerror_fn, 0, 0, "dlerror", &err) < 0)
			err = 0;
		mem_string(t, err, why, sizeof why);
		return rw_fail("dlopen of %s failed in it: %s", agent, why[0] ? why : "no reason given");
	}
	if (call(t, dlsym_fn, handle, at[2], "dlsym", &fn) < 0)
		return -1;
	if (!fn)
		return rw_fail("%s has no rewire_agent_attach: an agent of another rewire?", agent);
	if (call(t, fn, at[1], 0, "rewire_agent_attach", &msg) < 0)
		return -1;
	mem_string(t, msg, why, sizeof why);
	return msg ? rw_fail("the agent did not start: %s", why) : 0;
}

/* Load the agent into process pid: 0, or an exit code with the reason in
 * rw_error(). The process is as it was on any failure, but for the agent
 * library, loaded and idle, when only its start failed. */
static int attach_process(int pid, const char *agent, const char *dir)
{
	struct tracee t = {.pid = pid, .mem = -1};
	char path[64];
	if (check_process(pid, &t.libc) < 0)
		return kill(pid, 0) < 0 && errno == ESRCH ? EXIT_NOPROC : EXIT_REFUSED;
	if (find_module(pid, "ld-linux", &t.ld) < 0)
		find_module(pid, "ld-", &t.ld);
	t.tid = pick_thread(pid);
	if (ptrace(PTRACE_SEIZE, t.tid, 0, 0) < 0) {
		int e = errno;
		if (e == ESRCH) {
			rw_fail("no process %d", pid);
			return EXIT_NOPROC;
		}
		if (e == EPERM)
			not_permitted(pid, e);
		else
			rw_fail("ptrace: %s", strerror(e));
		return EXIT_REFUSED;
	}
	t.seized = 1;
	snprintf(path, sizeof path, "/proc/%d/mem", pid);
	int rc = -1;
	if (stop_safely(&t) == 0) {
		t.saved = 1;
		save_xstate(&t);
		t.mem = open(path, O_RDWR | O_CLOEXEC);
		rc = t.mem < 0 ? rw_fail("%s: %s", path, strerror(errno)) : load_agent(&t, agent, dir);
	}
	release(&t);
	if (rc == 0)
		return 0;
	return t.gone ? EXIT_NOPROC : EXIT_REFUSED;
}

/* --- the program's processes ---------------------------------------------- */

static int descends_from(int pid, int root)
{
	for (int depth = 0; depth < 256 && pid > 1; depth++)
		if ((pid = procs_parent_of(pid)) == root)
			return 1;
	return 0;
}

static int same_file(int pid, const struct stat *exe)
{
	char path[64];
	struct stat st;
	snprintf(path, sizeof path, "/proc/%d/exe", pid);
	return stat(path, &st) == 0 && st.st_dev == exe->st_dev && st.st_ino == exe->st_ino;
}

/* The processes the program forked before it was attached that run its
 * executable (a pre-fork server's workers) get agents too; those that
 * exec'd another program are not the program. How many were attached. */
static int attach_forked(int root, const char *agent, const char *dir)
{
	char path[64];
	struct stat exe;
	struct dirent *e;
	int n = 0;
	snprintf(path, sizeof path, "/proc/%d/exe", root);
	DIR *d = stat(path, &exe) == 0 ? opendir("/proc") : NULL;
	while (d && (e = readdir(d))) {
		int pid = atoi(e->d_name);
		if (pid <= 0 || pid == root || !descends_from(pid, root) || !same_file(pid, &exe) ||
		    procs_has_agent(pid))
			continue;
		if (attach_process(pid, agent, dir) == 0)
			n++;
		else if (kill(pid, 0) == 0)
			rw_say_error("process %d of the program cannot be patched: %s", pid, rw_error());
	}
	if (d)
		closedir(d);
	return n;
}

/* --- the command ------------------------------------------------------------ */

static int detach_pipe[2] = {-1, -1};

static void on_detach(int sig)
{
	if (write(detach_pipe[1], "", 1) < 0) {}
}

/* Ctrl-C, SIGTERM and SIGHUP end the session, not the program; they wait
 * (blocked) while a thread of the program is in rewire's hands. */
static int setup_signals(sigset_t *held)
{
	static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
	struct sigaction sa = {.sa_handler = on_detach};
	if (pipe2(detach_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
		return rw_fail("pipe: %s", strerror(errno));
	sigemptyset(held);
	for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++) {
		sigaddset(held, sigs[i]);
		sigaction(sigs[i], &sa, NULL);
	}
	return sigprocmask(SIG_BLOCK, held, NULL);
}

/* The program ended: its socket and crash note go, as `rewire run` does
 * (its agent's destructor did not run when a signal killed it). The
 * agents of processes that run on stay: `rewire apply` reaches them. */
static void forget_sockets(int pid)
{
	char dir[256], path[320];
	if (chan_socket_dir(dir, sizeof dir) < 0)
		return;
	if (chan_agent_file(dir, pid, "sock", path, sizeof path) == 0)
		unlink(path);
	if (chan_agent_file(dir, pid, "crash", path, sizeof path) == 0)
		unlink(path);
}

static int usage(void)
{
	fprintf(stderr, "usage: rewire attach [-p BUILD_DIR | --watch-objects FILE.o... --] PID "
			"[-- cargo build [CARGO ARGS]]\n");
	return EXIT_USAGE;
}

/* The program's path, as /proc tells it (a rebuilt one is " (deleted)"). */
static int exe_of(int pid, char *out, size_t cap)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/exe", pid);
	ssize_t n = readlink(path, out, cap - 1);
	if (n <= 0)
		return rw_fail("cannot read %s: %s", path, strerror(errno));
	out[n] = 0;
	char *del = strstr(out, " (deleted)");
	if (del && !del[10])
		*del = 0;
	return 0;
}

/* Attach to pid and its forked processes, say so. */
static int attach_all(int pid, const char *exe)
{
	char agent[PATH_MAX], dir[256];
	if (run_find_agent(agent, sizeof agent) < 0 || chan_socket_dir(dir, sizeof dir) < 0) {
		rw_say_error("%s", rw_error());
		return EXIT_NOPROC;
	}
	int rc = attach_process(pid, agent, dir);
	if (rc) {
		rw_say_error("cannot attach to process %d: %s", pid, rw_error());
		return rc;
	}
	int n = attach_forked(pid, agent, dir);
	if (n)
		rw_say("attached to %s (pid %d) and %d process%s it forked", rw_basename(exe), pid, n,
		       n == 1 ? "" : "es");
	else
		rw_say("attached to %s (pid %d)", rw_basename(exe), pid);
	return 0;
}

/* What to watch: a build directory, objects, or cargo's crates. */
struct attach_opts {
	const char *dbdir;
	struct cc_db objects;
	char **cargo;	/* cargo build's arguments, after "-- cargo build" */
	int ncargo, pid;
};

static int parse(int argc, char **argv, struct attach_opts *o)
{
	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "-p") && i + 1 < argc) {
			o->dbdir = argv[++i];
		} else if (!strcmp(argv[i], "--watch-objects")) {
			for (; i + 1 < argc && strcmp(argv[i + 1], "--"); i++) {
				if (access(argv[i + 1], R_OK) < 0) {
					rw_say_error("%s: %s", argv[i + 1], strerror(errno));
					return EXIT_BADINPUT;
				}
				cc_add_object(&o->objects, argv[i + 1]);
			}
			i++;	/* the "--" */
		} else if (strcmp(argv[i], "--")) {
			return usage();
		}
	}
	char *end;
	long v = i < argc ? strtol(argv[i], &end, 10) : 0;
	if (v <= 0 || *end || v > INT_MAX)
		return usage();
	o->pid = (int)v;
	if (i + 1 == argc)
		return 0;
	/* PID -- cargo build [ARGS]: a Rust program built with cargo. */
	if (i + 3 >= argc || strcmp(argv[i + 1], "--") || strcmp(rw_basename(argv[i + 2]), "cargo") ||
	    strcmp(argv[i + 3], "build") || o->dbdir || o->objects.n)
		return usage();
	o->cargo = argv + i + 4;
	o->ncargo = argc - (i + 4);
	return 0;
}

/* The same bytes: the program cargo builds now is the one pid runs. */
static int same_contents(const char *a, const char *b)
{
	FILE *fa = fopen(a, "r"), *fb = fopen(b, "r");
	int same = fa && fb;
	static char ba[1 << 16], bb[1 << 16];
	while (same) {
		size_t na = fread(ba, 1, sizeof ba, fa), nb = fread(bb, 1, sizeof bb, fb);
		same = na == nb && !memcmp(ba, bb, na);
		if (na < sizeof ba)
			break;
	}
	if (fa)
		fclose(fa);
	if (fb)
		fclose(fb);
	return same;
}

/* cargo build, recording the crates; refused unless what it builds is
 * what the process runs (else a patch would be diffed against other code). */
static int cargo_units(struct attach_opts *o, struct cc_db *crate)
{
	char built[PATH_MAX], running[64];
	if (cargo_prepare(o->cargo, o->ncargo, built, sizeof built, crate) < 0) {
		rw_say_error("%s", rw_error());
		return EXIT_NOPROC;
	}
	snprintf(running, sizeof running, "/proc/%d/exe", o->pid);
	if (!same_contents(running, built)) {
		rw_fail("it does not run what cargo builds now (%s): it was built from other sources "
			"or with other cargo arguments; give those (--release, --features ...), or "
			"restart it", built);
		rw_say_error("cannot attach to process %d: %s", o->pid, rw_error());
		cc_free(crate);
		return EXIT_REFUSED;
	}
	return 0;
}

int cmd_attach(int argc, char **argv)
{
	static struct attach_opts o;
	static struct cc_db crate;
	char exe[PATH_MAX];
	sigset_t held;
	int pid, rc = parse(argc, argv, &o);
	struct module libc;
	if (rc)
		return rc;
	pid = o.pid;
	/* Refusals first, before any work. */
	if (check_process(pid, &libc) < 0 || exe_of(pid, exe, sizeof exe) < 0) {
		rw_say_error("cannot attach to process %d: %s", pid, rw_error());
		return kill(pid, 0) < 0 && errno == ESRCH ? EXIT_NOPROC : EXIT_REFUSED;
	}
	struct cc_db *db;
	if (o.cargo) {
		if ((rc = cargo_units(&o, &crate)))
			return rc;
		db = &crate;
	} else {
		if (!o.objects.n && (rc = run_check_dbdir(o.dbdir, exe)))
			return rc;
		db = o.objects.n ? &o.objects : run_load_units(o.dbdir, exe);
		run_warn_build(exe, db);
	}
	if (setup_signals(&held) < 0) {
		rw_say_error("%s", rw_error());
		return EXIT_NOPROC;
	}
	rc = attach_all(pid, exe);
	sigprocmask(SIG_UNBLOCK, &held, NULL);
	if (rc)
		return rc;
	if (!db) {
		rw_say("patch it with: rewire apply --pid %d FILE.o", pid);
		return 0;
	}
	int how = session_run(pid, db, exe, NULL, NULL, detach_pipe[0]);
	cc_free(db);
	if (how == SESSION_DETACHED) {
		rw_say("detached from %s (pid %d): it runs on, with its patches", rw_basename(exe), pid);
		return 0;
	}
	forget_sockets(pid);
	rw_say("%s (pid %d) ended; rewire stops watching it", rw_basename(exe), pid);
	return 0;
}
