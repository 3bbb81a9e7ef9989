/* One version of a library, in the dylib reload API (lib.c): its copy,
 * with the soname rewritten to a name no other object has and each
 * DT_NEEDED of a library rewire reloads to the name of that library's
 * copy, loaded RTLD_LOCAL, checked to define every symbol the program was
 * handed, and accepted by its load hook; then closed, and freed when its
 * image left or kept (V_KEPT) when glibc kept it mapped. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "lib.h"

static unsigned long ntokens;

/* ------------------------------------------------- loading one version */

static struct version *version_of(struct rewire_lib *lib, struct version **fresh, size_t nfresh)
{
	for (size_t i = 0; i < nfresh; i++)
		if (fresh[i]->lib == lib)
			return fresh[i];
	return lib->cur;
}

static int add_patch(struct version *v, const struct elf *e, uint64_t stroff, const char *head)
{
	struct patch *p = realloc(v->patches, (v->npatches + 1) * sizeof *p);
	if (!p)
		return -1;
	v->patches = p;
	p = &p[v->npatches++];
	p->off = e->str + stroff;
	memcpy(p->orig, e->b + p->off, HEAD);
	memcpy(e->b + p->off, head, HEAD);
	return 0;
}

/* Rewriting the first bytes of the string at off would change another
 * name that is a suffix of it (linkers merge string tails). */
static int tail_shared(const struct elf *e, uint64_t off)
{
	for (size_t i = 0; i < e->ndyn; i++) {
		int64_t t = e->dyn[i].d_tag;
		uint64_t o = e->dyn[i].d_un.d_val;
		if ((t == DT_NEEDED || t == DT_SONAME || t == DT_RPATH || t == DT_RUNPATH) &&
		    o > off && o < off + HEAD)
			return 1;
	}
	for (size_t i = 0; i < e->nsym; i++)
		if (e->sym[i].st_name > off && e->sym[i].st_name < off + HEAD)
			return 1;
	return 0;
}

/* A soname no other object has: "~" and three base-62 digits over the
 * first bytes of the old one, so that its length stays. */
static int give_token(struct version *v, const struct elf *e)
{
	static const char digits[] = "0123456789abcdefghijklmnopqrstuvwxyz"
				     "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
	uint64_t so = lib_dyn_val(e, DT_SONAME, UINT64_MAX);
	const char *s = so == UINT64_MAX ? NULL : lib_elf_str(e, so);
	unsigned long k = ntokens;
	if (!s || strlen(s) < HEAD || tail_shared(e, so) || k >= 62 * 62 * 62)
		return 0;	/* no soname to rewrite: nothing can depend on it */
	char head[HEAD] = {'~', digits[k / 3844], digits[k / 62 % 62], digits[k % 62]};
	if (add_patch(v, e, so, head) < 0 || !(v->token = strdup(s)))
		return -1;
	memcpy(v->token, head, HEAD);
	ntokens++;
	return 0;
}

static struct rewire_lib *lib_by_soname(const char *name, const struct rewire_lib *self)
{
	for (struct rewire_lib *l = libs; l; l = l->next)
		if (l != self && l->cur && l->cur->info.soname &&
		    !strcmp(l->cur->info.soname, name))
			return l;
	return NULL;
}

static struct rewire_lib *lib_by_file(const char *name, const struct rewire_lib *self)
{
	for (struct rewire_lib *l = libs; l; l = l->next)
		if (l != self && !strcmp(lib_base_name(l->path), lib_base_name(name)))
			return l;
	return NULL;
}

static int bind_needed_one(struct version *v, const struct elf *e, size_t i,
			   struct version **fresh, size_t nfresh)
{
	struct rewire_lib *lib = v->lib, *dep;
	const char *name = lib_elf_str(e, e->dyn[i].d_un.d_val);
	if (!name || !(dep = lib_by_soname(name, lib))) {
		if (name && (dep = lib_by_file(name, lib)))
			return lib_fail(lib, "%s needs %s, which has no DT_SONAME (or another): "
					"link %s with -Wl,-soname,%s so that each version of %s "
					"can be bound to its copy", lib->name, name, dep->name,
					lib_base_name(name), lib->name);
		return 0;	/* not a library rewire reloads */
	}
	struct version *to = version_of(dep, fresh, nfresh);
	if (!to->token || strlen(to->token) != strlen(name))
		return lib_fail(lib, "%s needs %s, whose copy could not be given a name of its own",
				lib->name, dep->name);
	if (tail_shared(e, e->dyn[i].d_un.d_val))
		return lib_fail(lib, "%s: the name %s in its DT_NEEDED shares bytes with another "
				"name: cannot make it name the copy of %s", lib->name, name,
				dep->name);
	struct version **b = realloc(v->bound, (v->nbound + 1) * sizeof *b);
	if (!b || add_patch(v, e, e->dyn[i].d_un.d_val, to->token) < 0)
		return lib_fail(lib, "%s: out of memory", lib->name);
	v->bound = b;
	v->bound[v->nbound++] = to;
	return 0;
}

/* Each DT_NEEDED naming a library rewire reloads now names the copy of
 * its current version (or of the version this transaction loads). */
static int bind_needed(struct version *v, const struct elf *e, struct version **fresh,
		       size_t nfresh)
{
	for (size_t i = 0; i < e->ndyn; i++)
		if (e->dyn[i].d_tag == DT_NEEDED && bind_needed_one(v, e, i, fresh, nfresh) < 0)
			return -1;
	return 0;
}

/* When the loader finds no definition of a name that another reloaded
 * library defines, that library is not in v's DT_NEEDED: copies are not
 * global, so nothing else makes the name visible. The fix, for the error. */
static void import_hint(struct version *v, char *out, size_t cap)
{
	struct rewire_lib *lib = v->lib;
	out[0] = 0;
	for (size_t i = 0; i < v->info.nundefs; i++) {
		const char *u = v->info.undefs[i];
		for (struct rewire_lib *l = libs; l; l = l->next) {
			int named = 0;
			if (l == lib || !l->cur || !lib_info_defines(&l->cur->info, u))
				continue;
			for (size_t k = 0; k < v->nbound; k++)
				named |= v->bound[k] && v->bound[k]->lib == l;
			if (!named) {
				snprintf(out, cap, " (%s uses %s of %s without naming it in "
					 "DT_NEEDED: link %s against %s)", lib->name, u, l->name,
					 lib->name, l->name);
				return;
			}
		}
	}
}

static int record_ranges(struct version *v)
{
	struct link_map *lm;
	if (dlinfo(v->handle, RTLD_DI_LINKMAP, &lm) < 0 || strcmp(lm->l_name, v->copy))
		return lib_fail(v->lib, "%s: the loader did not load the copy %s as a new object",
				v->lib->name, v->copy);
	v->base = lm->l_addr;
	for (int i = 0; i < v->info.nexec; i++)
		v->slots[i] = lib_range_add(v->base + v->info.exec[i].lo,
					    v->base + v->info.exec[i].hi);
	return 0;
}

/* Every symbol handed out by rewire_lib_sym must be in the new version. */
static int resolve_all(struct version *v)
{
	struct rewire_lib *lib = v->lib;
	for (size_t i = 0; i < lib->nsyms; i++)
		if (!lib_ver_addr(v, i))
			return lib_fail(lib, "%s: version %d does not define %s, which the program "
					"uses: refused", lib->name, v->num, lib->syms[i].name);
	return 0;
}

void lib_set_current(struct version *v, int cur)
{
	for (int i = 0; v && i < v->info.nexec; i++)
		lib_range_current(v->slots[i], cur);
}

static int prepare(struct version *v, struct source *s, struct version **fresh, size_t nfresh)
{
	struct rewire_lib *lib = v->lib;
	struct elf e;
	const char *why = lib_elf_parse(&e, s->b, s->n);
	if (why)
		return lib_fail(lib, "%s: %s", lib->name, why);
	if (lib_info_read(&v->info, &e) < 0)
		return lib_fail(lib, "%s: out of memory", lib->name);
	if (bind_needed(v, &e, fresh, nfresh) < 0)
		return -1;
	if (give_token(v, &e) < 0)
		return lib_fail(lib, "%s: out of memory", lib->name);
	return (v->copy = lib_write_copy(lib, s)) ? 0 : -1;
}

/* A new version of lib from s, loaded, resolved and accepted by its load
 * hook; not yet current. NULL, with the error set, when any step fails. */
struct version *lib_version_load(struct rewire_lib *lib, struct source *s, unsigned long txn,
				 struct version **fresh, size_t nfresh)
{
	struct version *v = calloc(1, sizeof *v);
	if (!v) {
		lib_fail(lib, "%s: out of memory", lib->name);
		return NULL;
	}
	v->lib = lib, v->num = lib->next_num, v->txn = txn, v->pid = getpid();
	for (int i = 0; i < MAX_EXEC; i++)
		v->slots[i] = -1;
	if (prepare(v, s, fresh, nfresh) < 0)
		goto undo;
	if (!(v->handle = dlopen(v->copy, RTLD_NOW | RTLD_LOCAL))) {
		char hint[512];
		const char *why = dlerror();
		import_hint(v, hint, sizeof hint);
		lib_fail(lib, "%s: version %d: %s%s", lib->name, v->num,
			 why ? why : "dlopen failed", hint);
		goto undo;
	}
	if (record_ranges(v) < 0 || resolve_all(v) < 0 || lib_run_load_hook(v) < 0)
		goto undo;
	return v;
undo:
	lib_version_release(v);
	return NULL;
}

/* ------------------------------------------------------ unloading */

struct find_name {
	const char *name;
	int found;
};

static int find_cb(struct dl_phdr_info *info, size_t size, void *p)
{
	struct find_name *f = p;
	if (info->dlpi_name && !strcmp(info->dlpi_name, f->name))
		f->found = 1;
	return f->found;
}

/* Whether the loader still has the copy mapped. */
static int image_mapped(const char *copy)
{
	struct find_name f = {copy, 0};
	dl_iterate_phdr(find_cb, &f);
	return f.found;
}

/* Forget every pointer to v (other versions bound to it). */
static void unbind(struct version *v)
{
	for (struct rewire_lib *l = libs; l; l = l->next)
		for (struct version *w = l->versions; w; w = w->older)
			for (size_t i = 0; i < w->nbound; i++)
				if (w->bound[i] == v)
					w->bound[i] = NULL;
}

/* Copies of images glibc kept, whose version is gone (the library was
 * closed): their files stay until exit. */
char **orphans;
size_t norphans;

void lib_version_free(struct version *v)
{
	for (int i = 0; i < MAX_EXEC; i++)
		lib_range_del(v->slots[i]);
	if (v->copy && v->pid == getpid() && v->state != V_KEPT) {
		unlink(v->copy);
	} else if (v->copy && v->pid == getpid()) {
		char **o = realloc(orphans, (norphans + 1) * sizeof *o);
		if (o)
			orphans = o, orphans[norphans++] = v->copy, v->copy = NULL;
	}
	unbind(v);
	lib_info_free(&v->info);
	free(v->copy);
	free(v->token);
	free(v->patches);
	free(v->bound);
	free(v->addr);
	free(v);
}

static void unlink_version(struct version *v)
{
	struct version **p = &v->lib->versions;
	while (*p && *p != v)
		p = &(*p)->older;
	if (*p)
		*p = v->older;
}

/* dlclose v; free it if its image left, else keep it (and its file: see
 * the top of lib.c) as V_KEPT. 1 when glibc kept it. */
int lib_version_close(struct version *v)
{
	if (v->handle && v->state != V_KEPT)
		dlclose(v->handle);
	v->handle = NULL;
	if (v->copy && image_mapped(v->copy)) {
		v->state = V_KEPT;
		return 1;
	}
	if (v->state == V_KEPT)
		v->state = V_LIVE;	/* kept before, gone now: its file goes too */
	unlink_version(v);
	lib_version_free(v);
	return 0;
}

/* A version that never became current: gone, or kept as V_KEPT. */
void lib_version_release(struct version *v)
{
	if (lib_version_close(v)) {
		v->older = v->lib->versions;
		v->lib->versions = v;
	}
}

/* Why glibc kept v's image, as far as the file and rewire can tell. */
static const char *kept_why(struct version *v, char *buf, size_t cap)
{
	for (struct rewire_lib *l = libs; l; l = l->next)
		for (struct version *w = l->versions; w; w = w->older)
			for (size_t i = 0; w != v && i < w->nbound; i++)
				if (w->bound[i] == v) {
					snprintf(buf, cap, "%s version %d, still loaded, needs it",
						 l->name, w->num);
					return buf;
				}
	if (v->info.nodelete)
		return "it is linked with -z nodelete";
	if (v->info.tls_dtors)
		return "it registered thread_local destructors (__cxa_thread_atexit): glibc keeps "
		       "such a library while a thread that ran them lives";
	if (v->info.unique)
		return "it defines STB_GNU_UNIQUE symbols (C++ inline or template statics): glibc "
		       "never unloads such a library";
	return "something else holds it (a dlopen of its copy, a library that binds to it)";
}

int lib_unload_old_one(struct rewire_lib *lib, char *msg, size_t cap)
{
	int kept = 0;
	char why[256];
	for (struct version *v = lib->versions, *next; v; v = next) {
		next = v->older;
		if (v == lib->cur || !lib_version_close(v))
			continue;
		kept++;
		size_t len = strlen(msg);
		snprintf(msg + len, cap - len, "%s%s version %d stays mapped after dlclose: %s",
			 len ? "; " : "", lib->name, v->num, kept_why(v, why, sizeof why));
	}
	return kept;
}
