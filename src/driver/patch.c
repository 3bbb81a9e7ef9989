/* Apply objects to a running process: the link and apply stages, shared
 * by `rewire apply` and the `rewire run` session.
 *
 * Connect and ask the agent about the process; read the executable
 * (exactly the file that is mapped: build-ids must agree) and the objects;
 * plan; look up dynamic symbols; allocate; lay out and relocate; apply.
 * Any failure before the agent's answer to APPLY leaves the process
 * untouched: the agent gives the allocation back when the connection ends. */
#include <elf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "driver.h"

static int open_exe(struct rw_process *p)
{
	const struct rw_module *m = &p->mods[0];
	char alt[64];
	if (rw_image_open(&p->exe, m->path) == 0 && p->exe.build_id_len == m->build_id_len &&
	    !memcmp(p->exe.build_id, m->build_id, m->build_id_len))
		return 0;
	/* The file was replaced since: the kernel still has the one it mapped. */
	if (p->exe.map)
		rw_image_close(&p->exe);
	snprintf(alt, sizeof alt, "/proc/%d/exe", p->pid);
	if (rw_image_open(&p->exe, alt) == 0 && p->exe.build_id_len == m->build_id_len &&
	    !memcmp(p->exe.build_id, m->build_id, m->build_id_len))
		return 0;
	if (p->exe.map)
		rw_image_close(&p->exe);
	return rw_fail("%s: the file on disk is not the one process %d runs (build-ids differ): "
		       "was it rebuilt after the program started?", m->path, p->pid);
}

/* The executable's whole mapping, which a patch must reach. */
static void exe_extent(const struct rw_process *p, uint64_t *lo, uint64_t *hi)
{
	*lo = UINT64_MAX;
	*hi = 0;
	for (size_t i = 1; i < p->exe.nsections; i++) {
		const struct rw_section *s = &p->exe.sections[i];
		if (!(s->flags & SHF_ALLOC) || (s->flags & SHF_TLS))
			continue;
		if (s->addr < *lo)
			*lo = s->addr;
		if (s->addr + s->size > *hi)
			*hi = s->addr + s->size;
	}
	*lo += p->mods[0].base;
	*hi += p->mods[0].base;
}

static void describe(struct link *l, struct patch_result *res)
{
	size_t len = 0, shown = 0;
	res->names[0] = 0;
	for (size_t i = 0; i < l->nredirs && len < sizeof res->names - 64; i++, shown++)
		len += (size_t)snprintf(res->names + len, sizeof res->names - len, "%s%s",
					i ? ", " : "", rw_demangle(l->redirs[i].name));
	if (shown < l->nredirs)
		snprintf(res->names + len, sizeof res->names - len, " and %zu more",
			 l->nredirs - shown);
	res->nchanged = l->nredirs;
	res->nnew = l->nfuncs_new;
}

static int link_and_apply(struct rw_process *p, struct link *l, struct patch_result *res)
{
	uint64_t t0 = rw_now_ns(), lo, hi, base;
	struct rw_buf msg = {0};
	if (link_plan(l) < 0 || rw_lookup(p, l) < 0 || link_check_dynamic(l) < 0)
		return -1;
	exe_extent(p, &lo, &hi);
	if (rw_alloc(p, lo, hi, link_size(l), &base) < 0 || link_layout(l, base) < 0 ||
	    link_relocate(l) < 0)
		return -1;
	link_encode(l, &msg);
	res->link_ns = rw_now_ns() - t0;
	int rc = rw_apply(p, &msg, &res->times);
	rw_buf_free(&msg);
	if (rc == 0)
		describe(l, res);
	return rc;
}

int rw_patch(int pid, char **files, int nfiles, const struct patch_filter *filter,
	     struct patch_result *res)
{
	int rc = EXIT_REFUSED;
	struct rw_process proc = {.fd = -1};
	struct link l = {.proc = &proc, .nobjs = (size_t)nfiles};
	memset(res, 0, sizeof *res);
	if (filter)
		l.changed = filter->changed, l.changed_ctx = filter->ctx;
	l.objs = rw_calloc((size_t)nfiles, sizeof *l.objs);
	for (int i = 0; i < nfiles; i++)
		if (rw_object_open(&l.objs[i], files[i]) < 0) {
			rc = EXIT_BADINPUT;
			goto out;
		}
	proc.fd = rw_connect(pid, 2000);
	if (proc.fd < 0 || rw_hello(&proc) < 0) {
		rc = EXIT_NOPROC;
		goto out;
	}
	if (open_exe(&proc) < 0 || link_and_apply(&proc, &l, res) < 0) {
		char why[2048];
		snprintf(why, sizeof why, "%s", rw_error());
		rw_fail("%s; nothing was applied", why);
		goto out;
	}
	rc = 0;
out:
	link_free(&l);
	for (int i = 0; i < nfiles; i++)
		if (l.objs[i].map)
			rw_object_close(&l.objs[i]);
	free(l.objs);
	if (proc.exe.map)
		rw_image_close(&proc.exe);
	if (proc.fd >= 0)
		close(proc.fd);
	return rc;
}
