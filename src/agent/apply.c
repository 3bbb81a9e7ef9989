/* The agent's requests: describe the process, look up symbols, hand out
 * memory, and apply a patch as one transaction.
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
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "agent.h"
#include "proto/msg.h"

#define JMP_SIZE 5
#define FAR_JMP_SIZE 14
#define NAME_MAX_LEN 4096

/* What earlier patches defined: the driver binds new code to these. */
static struct rw_regsym *reg;
static size_t nreg, capreg;

/* Every version of each redirected function, by original entry. Each one
 * replaced jumps to the original entry, which jumps to the newest, so any
 * pointer or return address that still leads into an old version reaches
 * the newest code at its next call. */
struct versions {
	uint64_t orig;
	uint64_t *v;
	size_t n;
};
static struct versions *vers;
static size_t nvers, capvers;

static int version;	/* of the newest patch: patches are numbered from 1 */
/* The session's number of the newest patch the process has (0: none, or
 * patched by `rewire apply` only). A forked child inherits it: the
 * session then knows which of its patches the child still needs. */
static uint32_t generation;
/* One patch or rollback at a time: from the agent's thread, a thread in
 * rewire_poll() or one returning from a crash in rewire_call(). The
 * memory of a patch in progress changes under it too: fork() takes it. */
static pthread_mutex_t patch_lock = PTHREAD_MUTEX_INITIALIZER;

static void *grow(void *p, size_t *cap, size_t n, size_t size)
{
	if (n < *cap)
		return p;
	size_t c = *cap ? *cap * 2 : 64;
	void *q = realloc(p, c * size);
	if (q)
		*cap = c;
	return q;
}

/* --- HELLO ---------------------------------------------------------------- */

static void *thread_pointer(void)
{
	void *tp;
	__asm__("mov %%fs:0, %0" : "=r"(tp));
	return tp;
}

static void get_build_id(struct rw_module *m, struct dl_phdr_info *info)
{
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_NOTE)
			continue;
		const uint8_t *p = (const uint8_t *)(info->dlpi_addr + ph->p_vaddr);
		size_t off = 0, len = ph->p_memsz;
		while (len - off >= sizeof(ElfW(Nhdr))) {
			const ElfW(Nhdr) *n = (const void *)(p + off);
			size_t name = (n->n_namesz + 3) & ~3u, desc = (n->n_descsz + 3) & ~3u;
			off += sizeof *n;
			if (name > len - off || desc > len - off - name)
				break;
			if (n->n_type == NT_GNU_BUILD_ID && n->n_namesz == 4 && !memcmp(p + off, "GNU", 4)) {
				m->build_id_len = n->n_descsz < sizeof m->build_id ? n->n_descsz :
										     sizeof m->build_id;
				memcpy(m->build_id, p + off + name, m->build_id_len);
				return;
			}
			off += name + desc;
		}
	}
}

static void get_text_range(struct rw_module *m, struct dl_phdr_info *info)
{
	uint64_t lo = 0, hi = 0;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X))
			continue;
		uint64_t l = info->dlpi_addr + ph->p_vaddr, h = l + ph->p_memsz;
		if (!lo || l < lo)
			lo = l;
		if (h > hi)
			hi = h;
	}
	m->text_lo = lo;
	m->text_hi = hi;
}

/* The module's thread-locals: its module id, and when they sit in the
 * static TLS block, their fixed offset from the thread pointer. The offset
 * is the same in every thread; it is read here in the agent's own. */
static void get_tls(struct rw_module *m, struct dl_phdr_info *info)
{
	m->tls_modid = info->dlpi_tls_modid;
	if (info->dlpi_tls_modid && info->dlpi_tls_data) {
		m->tls_tpoff = (int64_t)((uint64_t)info->dlpi_tls_data - (uint64_t)thread_pointer());
		m->tls_static = m->tls_tpoff < 0 && m->tls_tpoff > -(int64_t)(64u << 20);
	}
}

/* The modules, as one walk meets them (the names of dl_iterate_phdr are
 * valid only during the walk: copied). */
struct module_list {
	struct rw_module *mods;
	size_t n, cap;
	int err;
};

static int add_module(struct dl_phdr_info *info, size_t size, void *data)
{
	struct module_list *l = data;
	char exe[4096];
	const char *path = info->dlpi_name;
	struct rw_module *q = grow(l->mods, &l->cap, l->n, sizeof *l->mods);
	if (!q) {
		l->err = 1;
		return 1;
	}
	l->mods = q;
	if (!path || !path[0]) {
		ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
		exe[n > 0 ? n : 0] = 0;
		path = exe;
	}
	struct rw_module *m = &l->mods[l->n];
	*m = (struct rw_module){.path = strdup(path), .base = info->dlpi_addr};
	if (!m->path) {
		l->err = 1;
		return 1;
	}
	l->n++;
	get_text_range(m, info);
	get_build_id(m, info);
	get_tls(m, info);
	return 0;
}

int apply_hello(struct rw_buf *reply, struct agent_err *e)
{
	/* One walk: a dlopen in another thread cannot make the count and the
	 * list disagree. */
	struct module_list l = {0};
	agent_dl_iterate(add_module, &l);
	struct msg_hello h = {
		.pid = (uint32_t)getpid(), .mods = l.mods, .nmods = (uint32_t)l.n,
		.reg = reg, .nreg = (uint32_t)nreg,
		.version = (uint32_t)version,	/* the next patch gets this number + 1 */
		.gen = generation, .held = (uint8_t)agent_is_held(),
	};
	if (!l.err)
		msg_put_hello(reply, &h);
	for (size_t i = 0; i < l.n; i++)
		free(l.mods[i].path);
	free(l.mods);
	return l.err ? agent_fail(e, "out of memory") : 0;
}

/* --- LOOKUP --------------------------------------------------------------- */

struct tls_find {
	uint64_t addr, modid, off;
};

/* dlsym of a thread-local gives its address in the calling thread: find
 * whose TLS block that is, to turn it into (module, offset). */
static int find_tls_block(struct dl_phdr_info *info, size_t size, void *data)
{
	struct tls_find *f = data;
	if (!info->dlpi_tls_modid || !info->dlpi_tls_data)
		return 0;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		uint64_t lo = (uint64_t)info->dlpi_tls_data;
		if (ph->p_type == PT_TLS && f->addr >= lo && f->addr < lo + ph->p_memsz) {
			f->modid = info->dlpi_tls_modid;
			f->off = f->addr - lo;
			return 1;
		}
	}
	return 0;
}

int apply_lookup(struct rw_reader *req, struct rw_buf *reply, struct agent_err *e)
{
	static char name[NAME_MAX_LEN];
	uint32_t n;
	if (msg_get_lookup_count(req, &n) < 0)
		return agent_fail(e, "malformed lookup request");
	rw_put_u32(reply, n);
	for (uint32_t i = 0; i < n; i++) {
		rw_get_str(req, name, sizeof name);
		if (req->err)
			return agent_fail(e, "malformed lookup request");
		void *p = dlsym(RTLD_DEFAULT, name);
		struct tls_find f = {(uint64_t)p, 0, 0};
		struct msg_found found = {RW_FOUND_ADDR, (uint64_t)p, 0};
		if (!p)
			found.found = RW_FOUND_NONE;
		else if (agent_dl_iterate(find_tls_block, &f))
			found = (struct msg_found){RW_FOUND_TLS, f.off, f.modid};
		msg_put_found(reply, &found);
	}
	return 0;
}

/* --- ALLOC ---------------------------------------------------------------- */

int apply_alloc(struct rw_reader *req, struct rw_buf *reply, struct agent_err *e)
{
	struct msg_alloc a;
	uint64_t addr;
	msg_get_alloc(req, &a);
	if (req->err || a.hi < a.lo)
		return agent_fail(e, "malformed alloc request");
	pthread_mutex_lock(&patch_lock);
	int rc = region_alloc(a.lo, a.hi, a.size, &addr, e);
	pthread_mutex_unlock(&patch_lock);
	if (rc < 0)
		return -1;
	rw_put_u64(reply, addr);
	return 0;
}

void apply_abort(void)
{
	pthread_mutex_lock(&patch_lock);
	region_rollback();
	pthread_mutex_unlock(&patch_lock);
}

/* --- APPLY ---------------------------------------------------------------- */

/* A jump to write: 5-byte jmp rel32, or for a function too short for it,
 * a 2-byte jmp rel8 to a jmp rel32 placed in the padding before it. A
 * patch placed far from the program (region.c) is reached by a 14-byte
 * jmp *0(%rip) followed by its address instead of the jmp rel32: it
 * changes no register, which matters where the caller's code assumes the
 * callee leaves some alone (gcc's -fipa-ra). The driver made sure each
 * place has room for the jump its distance needs (link/resolve.c). */
struct site {
	uint64_t at;
	uint8_t len;
	uint8_t bytes[FAR_JMP_SIZE];
	uint8_t old[FAR_JMP_SIZE];
	const char *name;
};

struct applied;

struct patch {
	struct msg_apply m;	/* as the driver sent it */
	struct site *sites;	/* every jump to write: entries and old versions */
	size_t nsites;
	const char **funcs;	/* per redirect: its linkage and display names, */
	const char **displays;	/* the arrays the hooks are given */
	int memfd;		/* /proc/self/mem, to write code without making it writable */
	int inits_ran;		/* constructors ran: the memory must stay, whatever follows */
	struct applied *entry;	/* its history entry, shown with the jumps */
};

/* Patches in the process, oldest first, for rollback and for telling
 * patch code from the program's in a signal handler: the array is fixed
 * (a handler cannot follow a realloc) and an entry, once published, only
 * changes its live flag. */
#define MAX_APPLIED 4096
/* Patches that can be rolled back: the newest ones (what each keeps is
 * small, but a process may see many thousands of patches). */
#define KEEP_UNDO 32
struct applied {
	uint64_t lo, hi;	/* its code */
	int version;
	_Atomic int live;	/* not rolled back */
	struct site *sites;	/* the jumps it wrote, with the bytes before */
	size_t nsites;
	struct msg_redirect *redirs;	/* replaced functions: new entries, names */
	const char **funcs, **displays;
	uint32_t nredirs;
	size_t nreg_before;	/* registry before it, to restore */
	struct rw_regsym *reg_before;
	size_t *reg_idx, nreg_changed;
};
static struct applied applied[MAX_APPLIED];
static _Atomic size_t napplied;
static struct applied unlisted;	/* the entry of a patch past MAX_APPLIED */
static struct api_note last_note;	/* of the newest patch, for the hooks */

static void patch_free(struct patch *p)
{
	msg_apply_free(&p->m);
	free(p->sites);
	free(p->funcs);
	free(p->displays);
	if (p->memfd >= 0)
		close(p->memfd);
}

static int parse_patch(struct rw_reader *r, struct patch *p, struct agent_err *e)
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

/* The bytes of a jump from at to to: rel32 when it reaches, else absolute. */
static int jump_len(uint64_t at, uint64_t to)
{
	int64_t rel = (int64_t)(to - (at + JMP_SIZE));
	return rel == (int32_t)rel ? JMP_SIZE : FAR_JMP_SIZE;
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
		uint64_t len = d->via ? d->from + 2 - d->via : (uint64_t)jump_len(d->from, d->to);
		if (d->via && (d->via > d->from || d->from - d->via > 120 ||
			       (uint64_t)jump_len(d->via, d->to) > d->from - d->via))
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

static struct versions *find_versions(uint64_t orig)
{
	for (size_t i = 0; i < nvers; i++)
		if (vers[i].orig == orig)
			return &vers[i];
	return NULL;
}

/* A jump from at to to: rel8 (short, for the hop into the padding before
 * a short function), else rel32 or absolute by the distance. */
static int add_site(struct patch *p, uint64_t at, uint64_t to, int is_short, const char *name,
		    struct agent_err *e)
{
	int len = is_short ? 2 : jump_len(at, to);
	int64_t rel = (int64_t)(to - (at + (uint64_t)len));
	if (is_short && rel != (int8_t)rel)
		return agent_fail(e, "%s: new code at %#lx is out of jump range of %#lx", name,
				  (unsigned long)to, (unsigned long)at);
	struct site *s = &p->sites[p->nsites++];
	s->at = at;
	s->len = (uint8_t)len;
	s->name = name;
	if (len == FAR_JMP_SIZE) {
		static const uint8_t jmp_rip[6] = {0xff, 0x25, 0, 0, 0, 0};	/* jmp *0(%rip) */
		memcpy(s->bytes, jmp_rip, sizeof jmp_rip);
		memcpy(s->bytes + sizeof jmp_rip, &to, 8);
	} else {
		s->bytes[0] = is_short ? 0xeb : 0xe9;
		memcpy(s->bytes + 1, &rel, (size_t)len - 1);	/* little-endian: the low bytes */
	}
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
		struct versions *v = find_versions(d->from);
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

/* Raw system call: while the world is stopped the page being written may
 * hold the very libc code a wrapper would run. */
static long raw_mprotect(uint64_t addr, uint64_t len, long prot)
{
	long ret;
	__asm__ volatile("syscall" : "=a"(ret) : "0"(SYS_mprotect), "D"(addr), "S"(len), "d"(prot)
			 : "rcx", "r11", "memory");
	return ret;
}

static long raw_pwrite(int fd, const void *buf, uint64_t len, uint64_t off)
{
	long ret;
	register long r10 __asm__("r10") = (long)off;
	__asm__ volatile("syscall" : "=a"(ret) : "0"(SYS_pwrite64), "D"(fd), "S"(buf), "d"(len), "r"(r10)
			 : "rcx", "r11", "memory");
	return ret;
}

/* Write code bytes. /proc/self/mem writes through the page protection, so
 * the page never stops being executable for anyone; where the kernel does
 * not allow that, the page is made writable (not executable) for the time
 * of the copy: every other thread is stopped then. */
static int code_write(int memfd, uint64_t at, const uint8_t *bytes, size_t n)
{
	if (memfd >= 0 && raw_pwrite(memfd, bytes, n, at) == (long)n)
		return 0;
	uint64_t ps = 4096, lo = at & ~(ps - 1), hi = (at + n + ps - 1) & ~(ps - 1);
	if (raw_mprotect(lo, hi - lo, PROT_READ | PROT_WRITE) != 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		((volatile uint8_t *)at)[i] = bytes[i];
	return raw_mprotect(lo, hi - lo, PROT_READ | PROT_EXEC) == 0 ? 0 : -1;
}

/* While the world is stopped, right after the jumps: a fault from here on
 * in the new code is the patch's (atomic stores only). */
static void show_entry(struct applied *a)
{
	size_t n = atomic_load(&napplied);
	if (n >= MAX_APPLIED || a != &applied[n])
		return;	/* unlisted: not guarded */
	atomic_store(&a->live, 1);
	atomic_store(&napplied, n + 1);
}

static int write_jumps(void *ctx, struct agent_err *e)
{
	struct patch *p = ctx;
	for (size_t i = 0; i < p->nsites; i++) {
		struct site *s = &p->sites[i];
		if (code_write(p->memfd, s->at, s->bytes, s->len) < 0) {
			while (i--)
				code_write(p->memfd, p->sites[i].at, p->sites[i].old, p->sites[i].len);
			return agent_fail(e, "%s: cannot write the entry jump at %#lx", s->name,
					  (unsigned long)s->at);
		}
	}
	__builtin___clear_cache((char *)0, (char *)0);
	show_entry(p->entry);
	return 0;
}

static int remember_version(uint64_t orig, uint64_t addr)
{
	struct versions *v = find_versions(orig);
	if (!v) {
		struct versions *nv = grow(vers, &capvers, nvers, sizeof *vers);
		if (!nv)
			return -1;
		vers = nv;
		v = &vers[nvers++];
		*v = (struct versions){orig, NULL, 0};
	}
	uint64_t *nvv = realloc(v->v, (v->n + 1) * sizeof *v->v);
	if (!nvv)
		return -1;
	v->v = nvv;
	v->v[v->n++] = addr;
	return 0;
}

static struct rw_regsym *find_reg(const char *scope, const char *name)
{
	for (size_t i = 0; i < nreg; i++)
		if (!strcmp(reg[i].name, name) && !strcmp(reg[i].scope, scope))
			return &reg[i];
	return NULL;
}

/* The patch is in: remember its versions and symbols. Memory is reserved
 * before the jumps, so that nothing can fail after them. */
static int reserve_records(const struct patch *p)
{
	void *q;
	for (size_t i = 0; i < p->m.nsyms; i++) {
		if (!(q = grow(reg, &capreg, nreg + i, sizeof *reg)))
			return -1;
		reg = q;
	}
	for (size_t i = 0; i < p->m.nredirs; i++) {
		if (!(q = grow(vers, &capvers, nvers + i, sizeof *vers)))
			return -1;
		vers = q;
	}
	return 0;
}

static void record(struct patch *p, struct applied *a)
{
	for (uint32_t i = 0; i < p->m.nredirs; i++)
		remember_version(p->m.redirs[i].from, p->m.redirs[i].to);
	a->nreg_before = nreg;
	for (uint32_t i = 0; i < p->m.nsyms; i++) {
		struct rw_regsym *s = &p->m.syms[i], *old = find_reg(s->scope, s->name);
		if (old && a->reg_before && (size_t)(old - reg) < a->nreg_before) {
			a->reg_idx[a->nreg_changed] = (size_t)(old - reg);
			a->reg_before[a->nreg_changed++] = *old;
		}
		if (old) {
			old->addr = s->addr;
			old->size = s->size;
			old->kind = s->kind;
			free(s->scope);
			free(s->name);
		} else {
			reg[nreg++] = *s;
		}
		s->scope = s->name = NULL;
	}
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

/* The history entry, filled before the jumps: nothing may fail after, and
 * the fault handlers know the new code as the patch's from the moment a
 * thread can run it (show_entry). It borrows the patch's entries and
 * names until publish(). */
static int prepare_applied(struct patch *p)
{
	size_t n = atomic_load(&napplied);
	struct applied *a = n < MAX_APPLIED ? &applied[n] : &unlisted;
	memset(a, 0, sizeof *a);
	p->entry = a;
	a->version = version + 1;
	a->redirs = p->m.redirs, a->nredirs = p->m.nredirs;
	a->funcs = p->funcs, a->displays = p->displays;
	a->lo = UINT64_MAX;
	for (uint32_t i = 0; i < p->m.nsegs; i++)
		if (p->m.segs[i].prot == RW_PROT_RX) {
			if (p->m.segs[i].addr < a->lo)
				a->lo = p->m.segs[i].addr;
			if (p->m.segs[i].addr + p->m.segs[i].size > a->hi)
				a->hi = p->m.segs[i].addr + p->m.segs[i].size;
		}
	a->reg_before = calloc(p->m.nsyms ? p->m.nsyms : 1, sizeof *a->reg_before);
	a->reg_idx = calloc(p->m.nsyms ? p->m.nsyms : 1, sizeof *a->reg_idx);
	return a->reg_before && a->reg_idx ? 0 : -1;
}

/* The entry, shown since the jumps: the patch's sites, entries and names
 * move into it. */
static void publish(struct patch *p, struct applied *a)
{
	size_t n = atomic_load(&napplied) - 1;
	version = a->version;
	if (p->m.gen)
		generation = p->m.gen;
	a->sites = p->sites, a->nsites = p->nsites, p->sites = NULL;
	p->m.redirs = NULL, p->funcs = p->displays = NULL;
	last_note = (struct api_note){a->version, a->nredirs, a->funcs, a->displays};
	if (a == &unlisted) {
		free(a->sites);
		free(a->reg_before);
		free(a->reg_idx);
		return;	/* not guarded (its redirects and names stay: hooks use them) */
	}
	if (n >= KEEP_UNDO) {
		struct applied *old = &applied[n - KEEP_UNDO];
		free(old->sites);
		free(old->reg_before);
		free(old->reg_idx);
		old->sites = NULL, old->reg_before = NULL, old->reg_idx = NULL;
		old->nsites = old->nreg_changed = 0;
	}
}

/* The patch failed before its jumps: its entry was never shown. */
static void drop_entry(struct patch *p)
{
	if (!p->entry)
		return;
	free(p->entry->reg_before);
	free(p->entry->reg_idx);
	memset(p->entry, 0, sizeof *p->entry);
	p->entry = NULL;
}

static int run_patch(struct patch *p, struct rw_buf *reply, struct agent_err *e)
{
	uint64_t t0 = agent_now_ns(), pause = 0;
	uint32_t nthreads = 0;
	if (check_patch(p, e) < 0 || plan_sites(p, e) < 0 || write_segments(p, e) < 0)
		return -1;
	if (reserve_records(p) < 0 || prepare_applied(p) < 0) {
		drop_entry(p);
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
						p->sites[i].name};
	p->memfd = open("/proc/self/mem", O_RDWR | O_CLOEXEC);
	int rc = stop_world_and(ranges, p->nsites, write_jumps, p, &pause, &nthreads, e);
	free(ranges);
	if (rc < 0) {
		if (!p->inits_ran)
			unwind_frames(p->m.eh_frame, 0);
		drop_entry(p);
		return -1;
	}
	record(p, p->entry);
	publish(p, p->entry);
	region_commit();
	msg_put_apply_times(reply, &(struct msg_apply_times){t_write, pause,
							     agent_now_ns() - t0, nthreads});
	return 0;
}

struct run {
	struct patch *p;
	struct rw_buf *reply;
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

int apply_patch(struct rw_reader *req, struct rw_buf *reply, struct agent_err *e)
{
	struct patch p = {.memfd = -1};
	struct run r = {&p, reply};
	int rc = parse_patch(req, &p, e);
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
	}
	pthread_mutex_unlock(&patch_lock);
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

/* --- crashes and rollback --------------------------------------------------- */

/* Async-signal-safe: the live patch whose code holds addr, or NULL. */
static const struct applied *applied_at(uint64_t addr)
{
	size_t n = atomic_load(&napplied);
	for (size_t i = n; i-- > 0;)
		if (addr >= applied[i].lo && addr < applied[i].hi)
			return &applied[i];
	return NULL;
}

int apply_is_patch_code(uint64_t addr)
{
	const struct applied *a = applied_at(addr);
	return a && atomic_load(&a->live);
}

/* The replaced function of a patch whose new code holds addr (the nearest
 * entry below it): async-signal-safe. */
const char *apply_name_at(uint64_t addr, int *ver)
{
	const struct applied *a = applied_at(addr);
	const char *best = NULL;
	uint64_t at = 0;
	*ver = a ? a->version : 0;
	for (uint32_t i = 0; a && i < a->nredirs; i++)
		if (a->redirs[i].to <= addr && a->redirs[i].to >= at)
			at = a->redirs[i].to, best = a->redirs[i].display;
	return best;
}

struct undo {
	struct applied *a;
	int memfd;
};

static int write_back(void *ctx, struct agent_err *e)
{
	struct undo *u = ctx;
	for (size_t i = u->a->nsites; i-- > 0;) {
		const struct site *s = &u->a->sites[i];
		if (code_write(u->memfd, s->at, s->old, s->len) < 0)
			return agent_fail(e, "%s: cannot restore the entry at %#lx", s->name,
					  (unsigned long)s->at);
	}
	__builtin___clear_cache((char *)0, (char *)0);
	return 0;
}

static void restore_registry(struct applied *a)
{
	for (size_t i = a->nreg_changed; i-- > 0;)
		reg[a->reg_idx[i]] = a->reg_before[i];
	for (size_t i = a->nreg_before; i < nreg; i++) {
		free(reg[i].scope);
		free(reg[i].name);
	}
	nreg = a->nreg_before;
	for (size_t i = 0; i < a->nredirs; i++) {
		struct versions *v = NULL;
		for (size_t j = 0; j < nvers && !v; j++)
			if (vers[j].n && vers[j].v[vers[j].n - 1] == a->redirs[i].to)
				v = &vers[j];
		if (v)
			v->n--;	/* its version is no longer one to send jumps from */
	}
}

/* Every entry jump back as it was before a: the world stopped, no thread
 * inside the bytes written. Its code stays mapped (a thread may still run
 * in it until it returns). */
static int undo_one(struct applied *a, struct agent_err *e)
{
	struct stop_range *ranges = calloc(a->nsites ? a->nsites : 1, sizeof *ranges);
	uint64_t pause;
	uint32_t nthreads;
	if (!ranges)
		return agent_fail(e, "out of memory");
	for (size_t i = 0; i < a->nsites; i++)
		ranges[i] = (struct stop_range){a->sites[i].at, a->sites[i].at + a->sites[i].len,
						a->sites[i].name};
	struct undo u = {a, open("/proc/self/mem", O_RDWR | O_CLOEXEC)};
	int rc = stop_world_and(ranges, a->nsites, write_back, &u, &pause, &nthreads, e);
	free(ranges);
	if (u.memfd >= 0)
		close(u.memfd);
	if (rc == 0) {
		restore_registry(a);
		atomic_store(&a->live, 0);
	}
	return rc;
}

int apply_rollback(uint64_t culprit, int *first, int *last, struct agent_err *e)
{
	pthread_mutex_lock(&patch_lock);
	const struct applied *bad = applied_at(culprit);
	int rc = 0;
	*first = *last = 0;
	if (!bad || !atomic_load(&bad->live))
		rc = agent_fail(e, "the patch of the crashing code was already rolled back");
	else if (!bad->reg_before)
		rc = agent_fail(e, "patch %d is too old to roll back (rewire keeps the last %d)",
				bad->version, KEEP_UNDO);
	/* Newest first: each restores the bytes the one before it wrote. */
	for (size_t i = atomic_load(&napplied); rc == 0 && i-- > 0 && &applied[i] >= bad;) {
		if (!atomic_load(&applied[i].live))
			continue;
		rc = undo_one(&applied[i], e);
		if (rc == 0 && !*last)
			*last = applied[i].version;
		if (rc == 0)
			*first = applied[i].version;
	}
	pthread_mutex_unlock(&patch_lock);
	return rc;
}

/* The function of a patch holding addr, by the registry: new functions
 * too (not for a signal handler: it takes the lock). */
const char *apply_function_at(uint64_t addr)
{
	const char *name = NULL;
	pthread_mutex_lock(&patch_lock);
	for (size_t i = 0; i < nreg && !name; i++)
		if (reg[i].kind == RW_KIND_FUNC && addr >= reg[i].addr && addr < reg[i].addr + reg[i].size)
			name = reg[i].name;
	pthread_mutex_unlock(&patch_lock);
	if (!name) {
		int ver;
		name = apply_name_at(addr, &ver);
	}
	return name;
}
