/* Running functions: after a patch, which replaced function a thread is
 * still inside, in the code it had before.
 *
 * A patch sends calls made from then on to the new code; a call already
 * under way goes on in the old code until it returns. For most functions
 * that is a moment. For a loop that runs until the program ends (a parser,
 * an event or game loop) it is for good: its own changes never run, and it
 * passes what it knew before the patch to the new functions it calls. The
 * user must be told so, or "patched" is not true.
 *
 * The stacks are read, never stopped: a thread blocked in a system call
 * (a loop waiting for input, a timer or its next frame: where such loops
 * spend their time) does not move, and /proc/PID/task/TID/syscall gives its
 * stack and instruction pointers. elfutils' libdwfl unwinds from there by
 * the modules' call frame information (dwfl_attach_state with callbacks of
 * our own), reading the stack with process_vm_readv, which fails cleanly
 * where memory is gone. No ptrace: the program sees nothing (no stop, no
 * interrupted system call, no signal), and the driver's own waits for its
 * child are not disturbed. A thread running code at that moment (or
 * waiting for a CPU) is looked at again a few times, milliseconds apart;
 * one that computes all along is not seen; nor, past a frame that needs registers other than the stack
 * pointer (a frame pointer), are its callers; a frame in the patches' own
 * code (anonymous memory, no module) ends the walk too. Where the process
 * may not be read (another user, Yama) nothing is said: this check can
 * only add a warning.
 *
 * A call that happens to be under way at the patch returns soon: what is
 * found is looked for again a moment later, and only what is still there
 * is said. */
#define _GNU_SOURCE
#include <dirent.h>
#include <dwarf.h>
#include <elfutils/libdwfl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include "driver.h"

/* How long after the patch a call must still be under way to be said. */
#define RUNNING_RECHECK_MS 500
#define MAX_FRAMES 512
#define RECHECK_TRIES 10
/* A thread not blocked at the first look, looked at again so often, so
 * far apart: a loop between two waits (or waiting for a CPU on a busy
 * machine) is seen in one of them; a thread that computes costs the
 * patch no more than this. */
#define BUSY_TRIES 4
#define BUSY_WAIT_NS 2000000ull
#define BUSY_MAX 64
#define DWARF_RSP 7	/* x86-64 psABI's DWARF number of %rsp */

struct scan {
	const struct old_code *code;
	size_t ncode;
	struct patch_result *res;	/* where found ones go */
	int pid, tid, frames;
	DIR *tasks;			/* the first look: every thread */
	pid_t *busy, *again;		/* then: the ones that were running */
	size_t nbusy, nagain, next;
};

static int no_debuginfo(Dwfl_Module *mod, void **user, const char *name, Dwarf_Addr base,
			const char *file, const char *debuglink, GElf_Word crc, char **debuginfo)
{
	return -1;	/* .eh_frame is enough, and no lookup may go to the network */
}

static const Dwfl_Callbacks callbacks = {
	.find_elf = dwfl_linux_proc_find_elf,
	.find_debuginfo = no_debuginfo,
};

static pid_t next_thread(Dwfl *dwfl, void *arg, void **thread_arg)
{
	struct scan *s = arg;
	struct dirent *e;
	*thread_arg = s;
	if (!s->tasks)
		return s->next < s->nbusy ? s->busy[s->next++] : 0;
	while ((e = readdir(s->tasks)))
		if (e->d_name[0] >= '1' && e->d_name[0] <= '9')
			return (pid_t)atoi(e->d_name);
	return 0;
}

/* A thread blocked in a system call: its stack pointer and the address it
 * returns to, from /proc ("NR ARGS... SP PC"; "running" when it runs). */
static int blocked_at(int pid, int tid, uint64_t *sp, uint64_t *pc)
{
	char path[64], buf[256];
	snprintf(path, sizeof path, "/proc/%d/task/%d/syscall", pid, tid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	int ok = fgets(buf, sizeof buf, f) && buf[0] != 'r';
	fclose(f);
	char *last = ok ? strrchr(buf, ' ') : NULL;
	if (!last || last == buf)
		return -1;
	*pc = strtoull(last + 1, NULL, 16);
	*last = 0;
	char *prev = strrchr(buf, ' ');
	if (!prev)
		return -1;
	*sp = strtoull(prev + 1, NULL, 16);
	return *sp && *pc ? 0 : -1;
}

/* A thread that runs: looked at again (BUSY_TRIES), if there is room. */
static void note_busy(struct scan *s, pid_t tid)
{
	if (s->nagain < BUSY_MAX)
		s->again[s->nagain++] = tid;
}

static bool initial_registers(Dwfl_Thread *thread, void *thread_arg)
{
	Dwfl *dwfl = dwfl_thread_dwfl(thread);
	struct scan *s = thread_arg;
	uint64_t sp, pc;
	if (blocked_at(dwfl_pid(dwfl), dwfl_thread_tid(thread), &sp, &pc) < 0) {
		note_busy(s, dwfl_thread_tid(thread));
		return false;	/* running: not seen now */
	}
	Dwarf_Word rsp = sp;
	if (!dwfl_thread_state_registers(thread, DWARF_RSP, 1, &rsp))
		return false;
	dwfl_thread_state_register_pc(thread, pc);
	return true;
}

static bool memory_read(Dwfl *dwfl, Dwarf_Addr addr, Dwarf_Word *result, void *arg)
{
	struct iovec local = {result, sizeof *result}, remote = {(void *)(uintptr_t)addr, sizeof *result};
	return process_vm_readv(dwfl_pid(dwfl), &local, 1, &remote, 1, 0) == (ssize_t)sizeof *result;
}

static const Dwfl_Thread_Callbacks thread_callbacks = {
	.next_thread = next_thread,
	.memory_read = memory_read,
	.set_initial_registers = initial_registers,
};

static int seen_before(const struct patch_result *r, int pid, const char *name)
{
	for (size_t i = 0; i < r->nrun; i++)
		if (r->run[i].pid == pid && !strcmp(r->run[i].name, name))
			return 1;
	return 0;
}

static void found(struct scan *s, const struct old_code *c)
{
	struct patch_result *r = s->res;
	if (r->nrun == RW_MAX_RUNNING || seen_before(r, s->pid, c->name))
		return;
	struct running_fn *f = &r->run[r->nrun++];
	f->pid = s->pid;
	f->tid = s->tid;
	f->lo = c->lo;
	f->hi = c->hi;
	f->ipa_ra = c->ipa_ra;
	snprintf(f->name, sizeof f->name, "%s", c->name);
}

static int frame_cb(Dwfl_Frame *frame, void *arg)
{
	struct scan *s = arg;
	Dwarf_Addr pc;
	bool activation;
	if (!dwfl_frame_pc(frame, &pc, &activation) || ++s->frames > MAX_FRAMES)
		return DWARF_CB_ABORT;
	/* A return address is past its call: the call is the byte before. */
	if (!activation)
		pc--;
	for (size_t i = 0; i < s->ncode; i++)
		if (pc >= s->code[i].lo && pc < s->code[i].hi)
			found(s, &s->code[i]);
	Dwfl *dwfl = dwfl_thread_dwfl(dwfl_frame_thread(frame));
	return dwfl_addrmodule(dwfl, pc) ? DWARF_CB_OK : DWARF_CB_ABORT;
}

static int thread_cb(Dwfl_Thread *thread, void *arg)
{
	struct scan *s = arg;
	s->tid = (int)dwfl_thread_tid(thread);
	s->frames = 0;
	dwfl_thread_getframes(thread, frame_cb, s);	/* a stack unwound in part is fine */
	return DWARF_CB_OK;
}

static void sleep_until(uint64_t ns);

void running_scan(int pid, const struct old_code *code, size_t n, struct patch_result *res)
{
	pid_t busy[BUSY_MAX], again[BUSY_MAX];
	struct scan s = {code, n, res, pid, 0, 0, NULL, busy, again, 0, 0, 0};
	char path[64];
	if (!n)
		return;
	Dwfl *dwfl = dwfl_begin(&callbacks);
	if (!dwfl)
		return;
	snprintf(path, sizeof path, "/proc/%d/task", pid);
	s.tasks = opendir(path);
	if (s.tasks && dwfl_linux_proc_report(dwfl, pid) == 0 &&
	    dwfl_report_end(dwfl, NULL, NULL) == 0 &&
	    dwfl_attach_state(dwfl, NULL, pid, &thread_callbacks, &s)) {
		dwfl_getthreads(dwfl, thread_cb, &s);
		closedir(s.tasks);
		s.tasks = NULL;
		for (int k = 0; k < BUSY_TRIES && s.nagain; k++) {
			pid_t *t = s.busy;
			s.busy = s.again, s.nbusy = s.nagain;
			s.again = t, s.nagain = 0, s.next = 0;
			sleep_until(rw_now_ns() + BUSY_WAIT_NS);
			dwfl_getthreads(dwfl, thread_cb, &s);
		}
	}
	dwfl_end(dwfl);
	if (s.tasks)
		closedir(s.tasks);
}

void running_later_add(struct running_later *l, int pid, struct old_code *code, size_t n,
		       char **names)
{
	l->v = rw_grow(l->v, &l->cap, l->n, sizeof *l->v);
	l->v[l->n++] = (struct later_scan){pid, code, n, names};
}

static void later_free_one(struct later_scan *s)
{
	for (size_t i = 0; s->names && s->names[i]; i++)
		free(s->names[i]);
	free(s->names);
	free(s->code);
}

void running_later_run(struct running_later *l, struct patch_result *res)
{
	for (size_t i = 0; i < l->n; i++)
		running_scan(l->v[i].pid, l->v[i].code, l->v[i].n, res);
	running_later_free(l);
}

void running_later_free(struct running_later *l)
{
	for (size_t i = 0; i < l->n; i++)
		later_free_one(&l->v[i]);
	free(l->v);
	memset(l, 0, sizeof *l);
}

static void sleep_until(uint64_t ns)
{
	uint64_t now = rw_now_ns();
	if (now < ns) {
		struct timespec ts = {(time_t)((ns - now) / 1000000000u),
				      (long)((ns - now) % 1000000000u)};
		nanosleep(&ts, NULL);
	}
}

void running_warn(const struct patch_result *res, uint64_t patched_ns)
{
	struct patch_result again = {0};
	if (!res->nrun)
		return;
	sleep_until(patched_ns + RUNNING_RECHECK_MS * 1000000ull);
	for (size_t i = 0; i < res->nrun; i++) {
		const struct running_fn *f = &res->run[i];
		struct old_code c = {f->lo, f->hi, f->name, f->ipa_ra};
		size_t before = again.nrun;
		/* Only a thread blocked in a system call is seen: look a few
		 * times, as a loop may be between two waits. */
		for (int k = 0; k < RECHECK_TRIES && again.nrun == before; k++) {
			if (k)
				sleep_until(rw_now_ns() + 20000000ull);
			running_scan(f->pid, &c, 1, &again);
		}
		if (again.nrun == before)
			continue;
		const struct running_fn *g = &again.run[before];
		if (g->ipa_ra)
			rw_say("warning: %s is running (process %d, thread %d) in code gcc built for "
			       "the registers its changed callees used (-fipa-ra): until it returns, "
			       "a value it keeps in a register across their calls may be lost; build "
			       "with -fno-ipa-ra", g->name, g->pid, g->tid);
		else
			rw_say("warning: %s is running (process %d, thread %d) and goes on in its old "
			       "code until it returns; calls made from now on run the new code",
			       g->name, g->pid, g->tid);
	}
}
