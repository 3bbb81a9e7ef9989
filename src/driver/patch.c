/* Apply objects to a running process: the link and apply stages, shared
 * by `rewire apply` and the `rewire run` session.
 *
 * Connect and ask the agent about the process; read the executable
 * (exactly the file that is mapped: build-ids must agree; a session keeps
 * it from one patch to the next, exe_cache.c) and the objects;
 * plan; look up dynamic symbols; allocate; lay out and relocate; apply.
 * Any failure before the agent's answer to APPLY leaves the process
 * untouched: the agent gives the allocation back when the connection ends. */
#include <elf.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "driver.h"
#include "elf/archive.h"
#include "diff/diff.h"
#include "diff/types.h"

/* Libraries of the system are not what a user rebuilds. */
static int is_system(const char *path)
{
	static const char *const dirs[] = {"/lib/", "/lib64/", "/usr/lib/", "/usr/lib64/",
					   "/usr/local/lib/rewire/"};
	if (!path[0] || !strcmp(rw_basename(path), "librewire.so"))
		return 1;
	for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++)
		if (!strncmp(path, dirs[i], strlen(dirs[i])))
			return 1;
	return 0;
}

/* How many functions the objects define that the image has. */
static size_t functions_in(const struct elf_image *img, const struct elf_object *objs, size_t n)
{
	size_t count = 0;
	for (size_t i = 0; i < n; i++)
		for (size_t j = 1; j < objs[i].nsymbols; j++) {
			const struct elf_symbol *s = &objs[i].symbols[j];
			if (s->type == STT_FUNC && s->shndx != SHN_UNDEF && s->name[0] &&
			    elf_image_find(img, s->name, s->bind == STB_LOCAL ? s->file : NULL))
				count++;
		}
	return count;
}

/* The module the objects patch: the executable, unless none of their
 * functions is in it and a library of the program (not of the system)
 * has them: then that library, patched in place where it is loaded. */
static void choose_target(struct link_process *p, struct exe_cache *c,
			  const struct elf_object *objs, size_t n)
{
	size_t best = 0;
	if (functions_in(p->exe, objs, n))
		return;
	for (size_t m = 1; m < p->nmods; m++) {
		/* The build the process runs, which the user's build may be
		 * writing again on disk right now (build-ids). */
		const struct elf_image *img = is_system(p->mods[m].path) ? NULL :
					     exe_cache_image(c, p, m, NULL);
		size_t count = img ? functions_in(img, objs, n) : 0;
		if (count > best)
			best = count, p->target = m;
	}
	if (p->target)
		p->exe = NULL;
}

/* The executable's whole mapping, which a patch must reach. */
static void exe_extent(const struct link_process *p, uint64_t *lo, uint64_t *hi)
{
	*lo = UINT64_MAX;
	*hi = 0;
	for (size_t i = 1; i < p->exe->nsections; i++) {
		const struct elf_section *s = &p->exe->sections[i];
		if (!(s->flags & SHF_ALLOC) || (s->flags & SHF_TLS))
			continue;
		if (s->addr < *lo)
			*lo = s->addr;
		if (s->addr + s->size > *hi)
			*hi = s->addr + s->size;
	}
	*lo += p->mods[p->target].base;
	*hi += p->mods[p->target].base;
}

/* Library members added to the patch: the archives, opened when first
 * needed, and which member of which archive each added object is. */
struct pull {
	char **paths;
	struct elf_archive *ar;
	size_t nar;
	int opened;
	size_t *from;		/* per added object: archive << 32 | member */
	void **bufs;
	uint8_t *lib;		/* per object of the link */
	size_t nadded, capfrom;
};

static int open_archives(struct pull *p)
{
	if (p->opened)
		return 0;
	p->opened = 1;
	p->ar = rw_calloc(p->nar ? p->nar : 1, sizeof *p->ar);
	for (size_t i = 0; i < p->nar; i++)
		if (elf_archive_open(&p->ar[i], p->paths[i]) < 0)
			return -1;
	return 0;
}

static int is_added(const struct pull *p, size_t key, size_t upto)
{
	for (size_t i = 0; i < upto; i++)
		if (p->from[i] == key)
			return 1;
	return 0;
}

/* The members of the program's archives defining what neither the program,
 * the patch nor the process's libraries have (code the static linker left
 * out), noted in p->from after the ones added. Returns how many. */
static int pick_members(struct link *l, struct pull *p)
{
	size_t n = p->nadded;
	for (size_t i = 0; i < l->ndyn && p->nar; i++) {
		const struct dynsym *d = &l->dyn[i];
		if (d->found != RW_FOUND_NONE || d->weak)
			continue;
		if (open_archives(p) < 0)
			return -1;
		for (size_t a = 0; a < p->nar; a++) {
			long m = elf_archive_find(&p->ar[a], d->name);
			if (m < 0)
				continue;
			/* Already added: the symbol is not what it looks for. */
			size_t key = a << 32 | (size_t)m;
			if (!is_added(p, key, n)) {
				p->from = rw_grow(p->from, &p->capfrom, n, sizeof *p->from);
				p->from[n++] = key;
			}
			break;
		}
	}
	return (int)(n - p->nadded);
}

/* Open the members pick_members() chose as library objects of the link. */
static int add_members(struct link *l, struct pull *p, int count)
{
	size_t total = p->nadded + (size_t)count;
	uint8_t *lib = rw_calloc(l->nobjs + (size_t)count, 1);
	if (p->lib)
		memcpy(lib, p->lib, l->nobjs);
	free(p->lib);
	p->lib = lib;
	p->bufs = rw_realloc(p->bufs, total * sizeof *p->bufs);
	l->objs = rw_realloc(l->objs, (l->nobjs + (size_t)count) * sizeof *l->objs);
	for (; p->nadded < total; p->nadded++) {
		size_t key = p->from[p->nadded];
		if (elf_archive_object(&p->ar[key >> 32], key & 0xffffffffu, &l->objs[l->nobjs],
				      &p->bufs[p->nadded]) < 0)
			return -1;
		p->lib[l->nobjs++] = 1;
	}
	return 0;
}

/* Plan and look up until nothing more comes from the archives. */
static int plan(struct link_process *proc, struct link *l, struct pull *p)
{
	for (int round = 0;; round++) {
		l->lib = p->lib;
		if (link_plan(l) < 0 || chan_lookup(proc, l) < 0)
			return -1;
		int count = round < 64 ? pick_members(l, p) : 0;
		if (count < 0)
			return -1;
		if (!count)
			return link_check_dynamic(l);
		struct link keep = *l;
		link_free(l);
		*l = (struct link){.proc = keep.proc, .objs = keep.objs, .nobjs = keep.nobjs,
				   .diff = keep.diff};
		if (add_members(l, p, count) < 0)
			return -1;
	}
}

/* Objects without debug information: their types were not checked. */
static void warn_unchecked(const struct link *l, const char *const *names)
{
	for (size_t i = 0; i < l->nobjs && !(l->lib && l->lib[i]); i++) {
		const struct elf_object *o = &l->objs[i];
		size_t k = 1;
		while (k < o->nsections && strcmp(o->sections[k].name, ".debug_info"))
			k++;
		if (k == o->nsections)
			rw_say("warning: %s has no debug information: the patch was applied without "
			       "checking that types kept their layout and functions their parameters",
			       rw_basename(names ? names[i] : o->path));
	}
}

/* Said once: every patch after the first is placed far too. */
static void warn_far(const struct link *l)
{
	static int said;
	if (l->far && !said++)
		rw_say("warning: no memory free within %s of the program: patches are placed far "
		       "and call it through stubs", rw_arch->reach);
}

/* Profilers name the patch's code: perf reads /tmp/perf-PID.map for code
 * that no file backs, as JIT compilers write it. Appended at each patch
 * (the old versions' code stays mapped, and so do their lines), and left
 * after the program ends, for `perf report`. A process's first patch
 * starts it anew: a file of an earlier process of that pid is not its. */
static void write_perf_map(const struct link *l, const struct link_process *p)
{
	char path[64];
	snprintf(path, sizeof path, "/tmp/perf-%d.map", p->pid);
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW |
			    (p->version ? 0 : O_TRUNC), 0644);
	FILE *f = fd < 0 ? NULL : fdopen(fd, "a");
	if (!f) {
		if (fd >= 0)
			close(fd);
		return;
	}
	link_perf_map(l, f);
	fclose(f);
}

static int link_and_apply(struct link_process *p, struct link *l, struct pull *pl,
			  const struct patch_filter *f, struct patch_result *res)
{
	uint64_t t0 = rw_now_ns(), lo, hi, base;
	struct proto_buf msg = {0};
	if (plan(p, l, pl) < 0)
		return -1;
	exe_extent(p, &lo, &hi);
	if (chan_alloc(p, lo, hi, link_size(l), &base) < 0 || link_layout(l, base, lo, hi) < 0 ||
	    link_relocate(l) < 0)
		return -1;
	warn_far(l);
	link_encode(l, f ? f->gen : 0, &msg);
	res->link_ns = rw_now_ns() - t0;
	patch_describe(l, f, res);	/* an answer lost may still be a patch applied */
	int rc = chan_apply(p, &msg, &res->times);
	proto_buf_free(&msg);
	if (rc == 0) {
		warn_unchecked(l, f ? f->names : NULL);
		write_perf_map(l, p);
	}
	res->npulled = pl->nadded;
	return rc;
}

/* Which replaced functions a thread is still inside: their bodies in the
 * module, and their versions of the patch before (the registry of HELLO,
 * asked before this patch). */
static void scan_running(struct link_process *p, const struct link *l, const struct patch_filter *f,
			 struct patch_result *res)
{
	uint64_t bias = p->mods[p->target].base;
	size_t n = 0, cap = l->nredirs + p->nreg;
	struct old_code *code = rw_calloc(cap + 1, sizeof *code);
	char **names = rw_calloc(l->nredirs + 1, sizeof *names);
	for (size_t i = 0; i < l->nredirs; i++) {
		const struct redirect *r = &l->redirs[i];
		uint64_t at = r->from - bias, end = elf_image_next_boundary(p->exe, at);
		int ipa_ra = link_how_changed(l, r) == DIFF_IPA_RA;
		names[i] = rw_strdup(rw_demangle(r->name));
		if (end > at && n < cap)
			code[n++] = (struct old_code){r->from, end + bias, names[i], ipa_ra};
		/* Its version before: a patch's, or, for a function a patch
		 * added (not in the module: its entry is that code), that. */
		for (size_t k = 0; k < p->nreg && n < cap; k++) {
			const struct msg_regsym *g = &p->reg[k];
			if (g->kind == RW_KIND_FUNC && g->orig == r->from && g->size &&
			    (g->addr != r->from || end <= at))
				code[n++] = (struct old_code){g->addr, g->addr + g->size, names[i], ipa_ra};
		}
	}
	if (f && f->later) {
		running_later_add(f->later, p->pid, code, n, names);
		return;
	}
	running_scan(p->pid, code, n, res);
	for (size_t i = 0; names[i]; i++)
		free(names[i]);
	free(names);
	free(code);
}

static void pull_free(struct pull *p)
{
	for (size_t i = 0; p->ar && i < p->nar; i++)
		if (p->ar[i].map)
			elf_archive_close(&p->ar[i]);
	for (size_t i = 0; i < p->nadded; i++)
		free(p->bufs[i]);
	free(p->ar);
	free(p->from);
	free(p->bufs);
	free(p->lib);
}

/* Ended (or a zombie not yet reaped by `rewire run`)? */
static int process_gone(int pid)
{
	struct rw_proc_stat st;
	return rw_proc_stat(pid, &st) < 0 || st.state == 'Z' || st.state == 'X';
}

/* The channel closed unanswered: the kernel closes a dying process's files
 * before it is a zombie, so give it a moment to be seen as ended. */
static int ends_soon(int pid)
{
	for (int i = 0; i < 100; i++, usleep(10000))
		if (process_gone(pid))
			return 1;
	return 0;
}

int patch_warm(int pid, struct exe_cache *cache)
{
	struct link_process proc = {.fd = chan_connect(pid, 0)};
	struct types_prog *types = NULL;
	int rc = -1;
	if (proc.fd >= 0 && chan_hello(&proc) == 0 && proc.nmods)
		rc = exe_cache_image(cache, &proc, 0, &types) ? 0 : -1;
	if (proc.fd >= 0)
		close(proc.fd);
	chan_process_free(&proc);
	return rc;
}

/* The patch's objects are code of one machine, the one that links them. */
static int same_machine(const struct link *l)
{
	for (size_t i = 1; i < l->nobjs; i++)
		if (l->objs[i].machine != l->objs[0].machine)
			return rw_fail("%s is %s code, %s is %s: a patch is for one machine",
				       l->objs[i].path, arch_machine_name(l->objs[i].machine),
				       l->objs[0].path, arch_machine_name(l->objs[0].machine));
	return arch_select(l->objs[0].machine);
}

int patch_run(int pid, char **files, int nfiles, const struct patch_filter *filter,
	     struct patch_result *res)
{
	int rc = EXIT_REFUSED;
	struct link_process proc = {.fd = -1};
	struct exe_cache *own = filter && filter->cache ? NULL : exe_cache_new();
	struct exe_cache *cache = own ? own : filter->cache;
	struct types_prog *types = NULL;
	struct link l = {.proc = &proc, .nobjs = (size_t)nfiles};
	struct pull pl = {0};
	uint8_t *borrowed = NULL;	/* objs[i] is the diff's: it closes it */
	memset(res, 0, sizeof *res);
	if (filter) {
		l.diff = filter->diff;
		pl.paths = filter->archives, pl.nar = (size_t)filter->narchives;
	}
	l.objs = rw_calloc((size_t)nfiles, sizeof *l.objs);
	borrowed = rw_calloc((size_t)nfiles + 1, 1);
	for (int i = 0; i < nfiles; i++) {
		/* The diff read it already: the same file, open still. */
		const struct elf_object *read = diff_set_object(l.diff, (size_t)i, files[i]);
		if (read)
			l.objs[i] = *read, borrowed[i] = 1;
		else if (elf_object_open(&l.objs[i], files[i]) < 0) {
			rc = EXIT_BADINPUT;
			goto out;
		}
	}
	if (nfiles && same_machine(&l) < 0) {
		rc = EXIT_BADINPUT;
		goto out;
	}
	proc.fd = chan_connect(pid, 2000);
	if (proc.fd < 0 || chan_hello(&proc) < 0) {
		res->no_answer = chan_no_answer();
		rc = EXIT_NOPROC;
		goto out;
	}
	res->version = proc.version + 1;	/* one connection at a time: no other patch meanwhile */
	proc.exe = exe_cache_image(cache, &proc, 0, &types);
	if (proc.exe)
		choose_target(&proc, cache, l.objs, l.nobjs);
	if (proc.target)
		proc.exe = exe_cache_image(cache, &proc, proc.target, &types);
	if (proc.exe && nfiles && proc.exe->machine != l.objs[0].machine) {
		rw_fail("%s is %s code, the program (%s) is %s; nothing was applied", files[0],
			arch_machine_name(l.objs[0].machine), proc.exe->path,
			arch_machine_name(proc.exe->machine));
		rc = EXIT_BADINPUT;
		goto out;
	}
	uint64_t t0 = rw_now_ns();
	int typed = !proc.exe ? -1 : types_check(types, files, (size_t)nfiles, l.diff);
	res->check_ns = rw_now_ns() - t0;
	int applied = typed < 0 ? -1 :
		      link_and_apply(&proc, &l, &pl, filter, res);
	if (applied < 0) {
		char why[2048];
		snprintf(why, sizeof why, "%s", rw_error());
		res->no_answer = chan_no_answer();
		res->in_doubt = applied == -2;
		if (proc.fd >= 0 && (applied == -2 && !res->no_answer ? ends_soon(pid) : process_gone(pid)))
			rw_fail("%s: the program ended during the patch (did the new code crash?)", why);
		else if (res->in_doubt)
			rw_fail("%s: the patch may have been applied", why);
		else
			rw_fail("%s; nothing was applied", why);
		goto out;
	}
	/* Without a diff (rewire apply) every function is replaced, changed or
	 * not: a running main would be named at every patch. */
	if (l.diff)
		scan_running(&proc, &l, filter, res);
	rc = 0;
out:
	link_free(&l);
	for (size_t i = 0; i < l.nobjs; i++)
		if (l.objs[i].map && !(i < (size_t)nfiles && borrowed[i]))
			elf_object_close(&l.objs[i]);
	free(l.objs);
	free(borrowed);
	pull_free(&pl);
	exe_cache_free(own);
	if (proc.fd >= 0)
		close(proc.fd);
	chan_process_free(&proc);
	return rc;
}
