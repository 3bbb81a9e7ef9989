/* The APPLY request: a patch applied as one transaction. HELLO, LOOKUP
 * and ALLOC are in requests.c; what a patch leaves for the next ones in
 * registry.c; the patches in the process, and rollback, in history.c.
 *
 * A patch arrives fully linked: segments of bytes for addresses the agent
 * handed out (ALLOC), the address of its .eh_frame, constructors to run,
 * the entry jumps to write (original entry -> newest version) and the
 * symbols it defines, remembered so that the next patch binds to them.
 * Applying it: check every address, write the segments with their final
 * protection (never writable and executable at once), register unwind
 * info, run constructors, then stop the world and write the jumps: at the
 * original entry to the new version, and at the version it replaces to the
 * original entry. Anything
 * failing before the jumps are all written undoes what was done. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "apply.h"

/* One patch or rollback at a time: from the agent's thread, a thread in
 * rewire_poll() or one returning from a crash in rewire_call(). The
 * memory of a patch in progress changes under it too: fork() takes it. */
pthread_mutex_t patch_lock = PTHREAD_MUTEX_INITIALIZER;

static void patch_free(struct patch *p)
{
	msg_apply_free(&p->m);
	free(p->sites);
	free(p->funcs);
	free(p->displays);
	if (p->memfd >= 0)
		close(p->memfd);
}

static int parse_patch(struct proto_reader *r, struct patch *p, struct agent_err *e)
{
	if (msg_get_apply(r, &p->m) < 0)
		return agent_fail(e, "malformed patch message");
	uint32_t n = p->m.nredirs;
	p->funcs = calloc(n ? n : 1, sizeof *p->funcs);
	p->displays = calloc(n ? n : 1, sizeof *p->displays);
	if (!p->funcs || !p->displays)
		return agent_fail(e, "out of memory");
	for (uint32_t i = 0; i < n; i++) {
		p->funcs[i] = p->m.redirs[i].name;
		p->displays[i] = p->m.redirs[i].display;
	}
	return 0;
}

struct text_find {
	uint64_t lo, hi;
	int found;
};

static int find_text(struct dl_phdr_info *info, size_t size, void *data)
{
	struct text_find *f = data;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		uint64_t lo = info->dlpi_addr + ph->p_vaddr, size = f->hi - f->lo;
		if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X) && f->lo >= lo &&
		    size <= ph->p_filesz && f->lo - lo <= ph->p_filesz - size)
			return f->found = 1;
	}
	return 0;
}

static int in_module_text(uint64_t addr, uint64_t size)
{
	struct text_find f = {addr, addr + size, 0};
	if (addr + size < addr)
		return 0;	/* a hostile message's wrapped range */
	agent_dl_iterate(find_text, &f);
	return f.found;
}

static int is_new_code(const struct patch *p, uint64_t addr)
{
	for (uint32_t i = 0; i < p->m.nsegs; i++)
		if (p->m.segs[i].prot == RW_PROT_RX && addr >= p->m.segs[i].addr &&
		    addr < p->m.segs[i].addr + p->m.segs[i].size)
			return 1;
	return 0;
}

static int check_patch(const struct patch *p, struct agent_err *e)
{
	for (uint32_t i = 0; i < p->m.nsegs; i++) {
		const struct msg_segment *s = &p->m.segs[i];
		if (s->prot < RW_PROT_R || s->prot > RW_PROT_RX || s->len > s->size ||
		    !region_is_pending(s->addr, s->size) || s->addr % (uint64_t)sysconf(_SC_PAGESIZE))
			return agent_fail(e, "segment %u at %#lx is not memory given to this patch",
					  i, (unsigned long)s->addr);
	}
	for (uint32_t i = 0; i < p->m.nredirs; i++) {
		const struct msg_redirect *d = &p->m.redirs[i];
		uint64_t from = d->via ? d->via : d->from;
		uint64_t len = d->via ? d->from + 2 - d->via : (uint64_t)arch_jump_size(d->from, d->to);
		if (d->via && (d->via > d->from || d->from - d->via > 120 ||
			       (uint64_t)arch_jump_size(d->via, d->to) > d->from - d->via))
			return agent_fail(e, "%s: padding %#lx is not just before the entry",
					  d->display, (unsigned long)d->via);
		if (!in_module_text(from, len) && !region_is_committed(from, len))
			return agent_fail(e, "%s: entry %#lx is not in the program's code",
					  d->display, (unsigned long)d->from);
		if (!is_new_code(p, d->to))
			return agent_fail(e, "%s: target %#lx is not in the patch's code",
					  d->display, (unsigned long)d->to);
	}
	for (uint32_t i = 0; i < p->m.ninits; i++)
		if (!is_new_code(p, p->m.inits[i]))
			return agent_fail(e, "constructor %#lx is not in the patch's code",
					  (unsigned long)p->m.inits[i]);
	if (p->m.eh_frame && !region_is_pending(p->m.eh_frame, 4))
		return agent_fail(e, ".eh_frame at %#lx is not in the patch", (unsigned long)p->m.eh_frame);
	return 0;
}

/* A jump from at to to: rel8 (short, for the hop into the padding before
 * a short function), else rel32 or absolute by the distance. */
static int add_site(struct patch *p, uint64_t at, uint64_t to, int is_short, const char *name,
		    struct agent_err *e)
{
	int len = is_short ? ARCH_SHORT_JUMP_SIZE : arch_jump_size(at, to);
	struct site *s = &p->sites[p->nsites];
	if (arch_encode_jump(s->bytes, at, to, len) < 0)
		return agent_fail(e, "%s: new code at %#lx is out of jump range of %#lx", name,
				  (unsigned long)to, (unsigned long)at);
	p->nsites++;
	s->at = at;
	s->len = (uint8_t)len;
	s->name = name;
	memcpy(s->old, (const void *)at, (size_t)len);
	return 0;
}

static int plan_sites(struct patch *p, struct agent_err *e)
{
	size_t n = 3 * (size_t)p->m.nredirs;
	p->sites = calloc(n ? n : 1, sizeof *p->sites);
	if (!p->sites)
		return agent_fail(e, "out of memory");
	for (uint32_t i = 0; i < p->m.nredirs; i++) {
		const struct msg_redirect *d = &p->m.redirs[i];
		struct versions *v = apply_find_versions(d->from);
		const char *name = d->display;
		if (d->via ? add_site(p, d->via, d->to, 0, name, e) < 0 ||
			     add_site(p, d->from, d->via, 1, name, e) < 0
			   : add_site(p, d->from, d->to, 0, name, e) < 0)
			return -1;
		/* The version being replaced jumps to the original entry, which
		 * jumps to the newest: the ones before it already do. Two hops
		 * for a stale pointer into an old version, and a patch's work
		 * does not grow with the number of versions. */
		if (v && v->n && add_site(p, v->v[v->n - 1], d->from, 0, name, e) < 0)
			return -1;
	}
	return 0;
}

static int write_segments(const struct patch *p, struct agent_err *e)
{
	for (uint32_t i = 0; i < p->m.nsegs; i++) {
		const struct msg_segment *s = &p->m.segs[i];
		int prot = s->prot == RW_PROT_RX ? PROT_READ | PROT_EXEC :
			   s->prot == RW_PROT_RW ? PROT_READ | PROT_WRITE : PROT_READ;
		if (mprotect((void *)s->addr, s->size, PROT_READ | PROT_WRITE) < 0)
			return agent_fail(e, "mprotect %#lx: %s", (unsigned long)s->addr, strerror(errno));
		memcpy((void *)s->addr, s->data, s->len);
		if (s->prot == RW_PROT_RX)
			agent_code_written(s->addr, s->len);
		if (mprotect((void *)s->addr, s->size, prot) < 0)
			return agent_fail(e, "mprotect %#lx: %s", (unsigned long)s->addr, strerror(errno));
	}
	return 0;
}

static void unwind_frames(uint64_t eh_frame, int add)
{
	void (*fn)(void *) = dlsym(RTLD_DEFAULT, add ? "__register_frame" : "__deregister_frame");
	if (fn && eh_frame)
		fn((void *)eh_frame);
}

/* Raw system calls (machine.h): while the world is stopped the page being
 * written may hold the very libc code a wrapper would run. */
static long raw_mprotect(uint64_t addr, uint64_t len, long prot)
{
	return agent_syscall4(SYS_mprotect, (long)addr, (long)len, prot, 0);
}

static long raw_pwrite(int fd, const void *buf, uint64_t len, uint64_t off)
{
	return agent_syscall4(SYS_pwrite64, fd, (long)buf, (long)len, (long)off);
}

/* Write code bytes. /proc/self/mem writes through the page protection, so
 * the page never stops being executable for anyone; where the kernel does
 * not allow that, the page is made writable (not executable) for the time
 * of the copy: every other thread is stopped then. */
int apply_code_write(int memfd, uint64_t at, const uint8_t *bytes, size_t n)
{
	if ((AGENT_WRITE_THROUGH_MEM || !agent_emulated) && memfd >= 0 &&
	    raw_pwrite(memfd, bytes, n, at) == (long)n) {
		agent_code_written(at, n);
		return 0;
	}
	/* The page size as the agent started with it (aarch64 kernels may
	 * have 16 or 64 KiB pages): no libc call while the world stops. */
	uint64_t ps = agent_page_size, lo = at & ~(ps - 1), hi = (at + n + ps - 1) & ~(ps - 1);
	if (raw_mprotect(lo, hi - lo, PROT_READ | PROT_WRITE) != 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		((volatile uint8_t *)at)[i] = bytes[i];
	agent_code_written(at, n);
	return raw_mprotect(lo, hi - lo, PROT_READ | PROT_EXEC) == 0 ? 0 : -1;
}

static int write_jumps(void *ctx, struct agent_err *e)
{
	struct patch *p = ctx;
	for (size_t i = 0; i < p->nsites; i++) {
		struct site *s = &p->sites[i];
		if (apply_code_write(p->memfd, s->at, s->bytes, s->len) < 0) {
			while (i--)
				apply_code_write(p->memfd, p->sites[i].at, p->sites[i].old,
						 p->sites[i].len);
			return agent_fail(e, "%s: cannot write the entry jump at %#lx", s->name,
					  (unsigned long)s->at);
		}
	}
	apply_show_entry(p->entry);
	return 0;
}

/* Constructors of new code run once, before the jumps make it reachable.
 * They run with the program's signals open, not the agent's closed mask
 * (threads they start inherit it). What they did cannot be undone: from
 * here on, a failed patch keeps its memory (nothing reaches it but what the
 * constructors registered). */
static void run_constructors(struct patch *p)
{
	sigset_t open, old;
	if (!p->m.ninits)
		return;
	sigemptyset(&open);
	pthread_sigmask(SIG_SETMASK, &open, &old);
	for (uint32_t i = 0; i < p->m.ninits; i++)
		((void (*)(void))p->m.inits[i])();
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	p->inits_ran = 1;
}

static int run_patch(struct patch *p, struct proto_buf *reply, struct agent_err *e)
{
	uint64_t t0 = agent_now_ns(), pause = 0;
	uint32_t nthreads = 0;
	if (check_patch(p, e) < 0 || plan_sites(p, e) < 0 || write_segments(p, e) < 0)
		return -1;
	if (apply_reserve_records(p) < 0 || apply_prepare_applied(p) < 0) {
		apply_drop_entry(p);
		return agent_fail(e, "out of memory");
	}
	uint64_t t_write = agent_now_ns() - t0;
	unwind_frames(p->m.eh_frame, 1);
	run_constructors(p);

	struct stop_range *ranges = calloc(p->nsites ? p->nsites : 1, sizeof *ranges);
	if (!ranges)
		return unwind_frames(p->m.eh_frame, 0), agent_fail(e, "out of memory");
	for (size_t i = 0; i < p->nsites; i++)
		ranges[i] = (struct stop_range){p->sites[i].at, p->sites[i].at + p->sites[i].len,
						p->sites[i].name,
						agent_may_return_inside(p->sites[i].old,
									p->sites[i].len)};
	p->memfd = open("/proc/self/mem", O_RDWR | O_CLOEXEC);
	int rc = stop_world_and(ranges, p->nsites, write_jumps, p, &pause, &nthreads, e);
	free(ranges);
	if (rc < 0) {
		if (!p->inits_ran)
			unwind_frames(p->m.eh_frame, 0);
		apply_drop_entry(p);
		return -1;
	}
	apply_record(p, p->entry);
	apply_publish(p, p->entry);
	region_commit();
	msg_put_apply_times(reply, &(struct msg_apply_times){t_write, pause,
							     agent_now_ns() - t0, nthreads});
	return 0;
}

struct run {
	struct patch *p;
	struct proto_buf *reply;
};

/* Where and when it runs is api.c's choice (here, or in rewire_poll). */
static int run_locked(void *ctx, struct api_note *note, struct agent_err *e)
{
	struct run *r = ctx;
	pthread_mutex_lock(&patch_lock);
	int rc = run_patch(r->p, r->reply, e);
	if (rc == 0)
		*note = last_note;
	pthread_mutex_unlock(&patch_lock);
	return rc;
}

int apply_patch(struct proto_reader *req, struct proto_buf *reply, struct agent_err *e)
{
	struct patch p = {.memfd = -1};
	struct run r = {&p, reply};
	int rc = parse_patch(req, &p, e);
	struct jit_entry *jit = rc == 0 ? apply_jit_build(&p.m) : NULL;
	if (rc == 0)
		rc = api_run(run_locked, &r, e);
	pthread_mutex_lock(&patch_lock);
	if (rc < 0 && p.inits_ran) {
		region_commit();
		size_t len = strlen(e->msg);
		snprintf(e->msg + len, sizeof e->msg - len, " (the new code's constructors had run: "
			 "its memory stays, unreachable but for what they registered)");
	} else if (rc < 0) {
		region_rollback();
	} else {
		apply_jit_register(jit, (uint32_t)last_note.version);	/* debuggers see it */
		jit = NULL;
	}
	pthread_mutex_unlock(&patch_lock);
	apply_jit_free(jit);
	patch_free(&p);
	return rc;
}

/* fork() waits for a patch in progress: the child has all of it or none
 * (its generation says which). */
void apply_fork_prepare(void)
{
	pthread_mutex_lock(&patch_lock);
}

void apply_fork_parent(void)
{
	pthread_mutex_unlock(&patch_lock);
}

void apply_fork_child(void)
{
	pthread_mutex_unlock(&patch_lock);
}

/* --- REVERT ------------------------------------------------------------------ */

struct revert_run {
	struct msg_revert rv;
	struct msg_reverted out;
};

static int run_revert(void *ctx, struct api_note *note, struct agent_err *e)
{
	struct revert_run *r = ctx;
	pthread_mutex_lock(&patch_lock);
	int rc = apply_revert_locked(&r->rv, &r->out, note, e);
	pthread_mutex_unlock(&patch_lock);
	return rc;
}

/* Where and when as a patch (api.c): at rewire_poll() in sync mode. */
int apply_revert(struct proto_reader *req, struct proto_buf *reply, struct agent_err *e)
{
	struct revert_run r = {0};
	if (msg_get_revert(req, &r.rv) < 0)
		return agent_fail(e, "malformed REVERT");
	/* Nothing to take back (the process that rolled back on a crash):
	 * answered at once, not at the program's next rewire_poll(). */
	struct api_note none;
	if (!apply_revert_needed(&r.rv))
		run_revert(&r, &none, e);
	else if (api_run(run_revert, &r, e) < 0)
		return -1;
	msg_put_reverted(reply, &r.out);
	return reply->err ? agent_fail(e, "out of memory") : 0;
}
