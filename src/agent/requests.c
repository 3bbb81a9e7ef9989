/* The agent's requests before a patch: HELLO describes the process (its
 * modules, with their build-ids, code and thread-locals; what earlier
 * patches defined; the number of the newest patch), LOOKUP finds dynamic
 * symbols (thread-locals as module and offset), and ALLOC hands out
 * memory within reach of a module (region.c) for the patch to come. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "apply.h"

#define NAME_MAX_LEN 4096

/* --- HELLO ---------------------------------------------------------------- */

static void get_build_id(struct msg_module *m, struct dl_phdr_info *info)
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

static void get_text_range(struct msg_module *m, struct dl_phdr_info *info)
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
static void get_tls(struct msg_module *m, struct dl_phdr_info *info)
{
	m->tls_modid = info->dlpi_tls_modid;
	if (info->dlpi_tls_modid && info->dlpi_tls_data) {
		m->tls_tpoff = (int64_t)((uint64_t)info->dlpi_tls_data - (uint64_t)agent_thread_pointer());
		m->tls_static = agent_tls_is_static(m->tls_tpoff);
	}
}

/* The modules, as one walk meets them (the names of dl_iterate_phdr are
 * valid only during the walk: copied). */
struct module_list {
	struct msg_module *mods;
	size_t n, cap;
	int err;
};

static int add_module(struct dl_phdr_info *info, size_t size, void *data)
{
	struct module_list *l = data;
	char exe[4096];
	const char *path = info->dlpi_name;
	struct msg_module *q = rw_try_grow(l->mods, &l->cap, l->n, sizeof *l->mods);
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
	struct msg_module *m = &l->mods[l->n];
	*m = (struct msg_module){.path = strdup(path), .base = info->dlpi_addr};
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

int request_hello(struct proto_buf *reply, struct agent_err *e)
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

/* --- STATUS --------------------------------------------------------------- */

/* What the process holds: its patches (history.c), then u64 the memory
 * they use, u64 the memory reserved for them. */
int request_status(struct proto_buf *reply, struct agent_err *e)
{
	uint64_t used, reserved;
	apply_status(reply);
	region_usage(&used, &reserved);
	proto_put_u64(reply, used);
	proto_put_u64(reply, reserved);
	return reply->err ? agent_fail(e, "out of memory") : 0;
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

int request_lookup(struct proto_reader *req, struct proto_buf *reply, struct agent_err *e)
{
	static char name[NAME_MAX_LEN];
	uint32_t n;
	if (msg_get_lookup_count(req, &n) < 0)
		return agent_fail(e, "malformed lookup request");
	proto_put_u32(reply, n);
	for (uint32_t i = 0; i < n; i++) {
		proto_get_str(req, name, sizeof name);
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

int request_alloc(struct proto_reader *req, struct proto_buf *reply, struct agent_err *e)
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
	proto_put_u64(reply, addr);
	return 0;
}

void apply_abort(void)
{
	pthread_mutex_lock(&patch_lock);
	region_rollback();
	pthread_mutex_unlock(&patch_lock);
}
