/* The names a patch line shows: what the user changed, first. A Rust edit
 * also changes instances of library generics compiled into the crate
 * (tokio's spawn_inner for the edited closure), and gcc's -fipa-ra or
 * inlining changes callers: they are patched all the same, but the user
 * reads the functions of their own crates and files first, each once,
 * then "and N other instances" (every one with -v). C++ names come without
 * parameters unless two overloads need them to be told apart; several
 * instances of one Rust generic (legacy mangling names them alike) are
 * named by their arguments (from DWARF), else counted. A new function
 * that takes the place of a removed one of the same name (a C++ signature
 * change gives it another symbol) is said as such: the old one is no
 * longer called by the patched code. */
#include <elf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "driver.h"
#include "diff/types.h"
#include "link/linker.h"

struct shown {
	char *brief;	/* demangled, without C++ parameters */
	char *full;	/* with them */
	int own;	/* of the user's crates or files */
	int count;	/* instances of brief (the first of them only) */
};

/* A Rust crate of the patch is named by its path, as the type of an impl,
 * or as the trait an outside type implements for it. */
static int in_crate(const char *name, const char *crate)
{
	size_t n = strlen(crate);
	const char *p;
	if ((!strncmp(name, crate, n) && !strncmp(name + n, "::", 2)) ||
	    (name[0] == '<' && !strncmp(name + 1, crate, n) && !strncmp(name + 1 + n, "::", 2)))
		return 1;
	for (p = strstr(name, " as "); p; p = strstr(p + 4, " as "))
		if (!strncmp(p + 4, crate, n) && !strncmp(p + 4 + n, "::", 2))
			return 1;
	return 0;
}

static int is_own(const char *brief, const struct patch_filter *f)
{
	if (f && f->ncrates) {
		for (size_t i = 0; i < f->ncrates; i++)
			if (in_crate(brief, f->crates[i]))
				return 1;
		return 0;
	}
	/* C and C++: the unit's own functions, not the standard library's
	 * templates instantiated in it. */
	return strncmp(brief, "std::", 5) && strncmp(brief, "__gnu_cxx::", 11) &&
	       strncmp(brief, "__cxx", 5);
}

/* Room is kept for " and N more": what does not fit is counted there. */
#define ROOM 24

static int add(char *buf, size_t cap, size_t *len, const char *sep, const char *text)
{
	size_t need = strlen(*len ? sep : "") + strlen(text);
	if (*len + need + ROOM >= cap)
		return -1;
	snprintf(buf + *len, cap - *len, "%s%s", *len ? sep : "", text);
	*len += need;
	return 0;
}

static void name_instances(const struct link *l, struct shown *v, size_t n, size_t i);

/* One entry per replaced function; each brief name counted on its first. */
static struct shown *collect(const struct link *l, const struct patch_filter *f)
{
	struct shown *v = rw_calloc(l->nredirs + 1, sizeof *v);
	for (size_t i = 0; i < l->nredirs; i++) {
		v[i].brief = rw_strdup(rw_demangle_short(l->redirs[i].name));
		v[i].full = rw_strdup(rw_demangle(l->redirs[i].name));
		v[i].own = is_own(v[i].brief, f);
		v[i].count = 1;
		for (size_t j = 0; j < i; j++)
			if (v[j].count && !strcmp(v[j].brief, v[i].brief)) {
				/* Overloads: told apart by their parameters. */
				if (strcmp(v[j].full, v[i].full))
					continue;
				v[j].count++, v[i].count = 0;
				break;
			}
	}
	for (size_t i = 0; i < l->nredirs; i++)
		if (v[i].count > 1)
			name_instances(l, v, l->nredirs, i);
	return v;
}

/* Instances of one Rust generic, alike in legacy mangling: each by its
 * arguments (total<u32>, total<u64>), from the DWARF the type checks read.
 * Counted when any has none. */
static void name_instances(const struct link *l, struct shown *v, size_t n, size_t i)
{
	for (size_t j = i; j < n; j++) {
		if (strcmp(v[j].brief, v[i].brief) || strcmp(v[j].full, v[i].full))
			continue;
		if (!types_generic_name(l->redirs[j].name))
			return;
	}
	const char *last = NULL;
	for (const char *p = strstr(v[i].brief, "::"); p; p = strstr(p + 2, "::"))
		last = p;
	size_t keep = last ? (size_t)(last - v[i].brief) + 2 : 0;
	char *brief = rw_strdup(v[i].brief), *full = rw_strdup(v[i].full);
	for (size_t j = i; j < n; j++) {
		if (strcmp(v[j].brief, brief) || strcmp(v[j].full, full))
			continue;
		const char *g = types_generic_name(l->redirs[j].name);
		size_t len = keep + strlen(g) + 1;
		char *named = rw_calloc(len, 1);
		snprintf(named, len, "%.*s%s", (int)keep, brief, g);
		free(v[j].brief), free(v[j].full);
		v[j].brief = named, v[j].full = rw_strdup(named), v[j].count = 1;
	}
	free(brief), free(full);
}

/* An overload (same brief name, other parameters) is among the shown. */
static int overloaded(const struct shown *v, size_t n, size_t i)
{
	for (size_t j = 0; j < n; j++)
		if (j != i && v[j].count && !strcmp(v[j].brief, v[i].brief))
			return 1;
	return 0;
}

static void say_changed(const struct shown *v, size_t n, int own, char *buf, size_t cap, size_t *len,
			size_t *left)
{
	for (size_t i = 0; i < n; i++) {
		char one[600];
		if (!v[i].count || v[i].own != own)
			continue;
		const char *name = overloaded(v, n, i) ? v[i].full : v[i].brief;
		if (v[i].count > 1)
			snprintf(one, sizeof one, "%s (%d instances)", name, v[i].count);
		else
			snprintf(one, sizeof one, "%s", name);
		if (add(buf, cap, len, ", ", one) < 0)
			*left += (size_t)v[i].count;
	}
}

/* The functions of the patch's objects its baselines did not have; one
 * whose brief name a removed function had replaces it. */
static void say_new(const struct patch_filter *f, char *buf, size_t cap, size_t *len)
{
	const struct diff_set *d = f ? f->diff : NULL;
	size_t nnew = 0;
	char list[400] = "";
	size_t llen = 0;
	for (size_t oi = 0; d && oi < d->n; oi++) {
		const struct diff_entry *e = &d->v[oi];
		if (!e->has_base || !e->obj || !e->changed)
			continue;
		for (size_t k = 1; k < e->nsymbols; k++) {
			const struct elf_symbol *s = &e->obj->symbols[k];
			if (e->changed[k] != DIFF_NEW || s->type != STT_FUNC || s->shndx == SHN_UNDEF ||
			    diff_is_clone(s->name))
				continue;
			char brief[400], one[900];
			snprintf(brief, sizeof brief, "%s", rw_demangle_short(s->name));
			if (!is_own(brief, f))
				continue;
			const char *was = NULL;
			for (size_t r = 0; r < e->nremoved && !was; r++)
				if (!strcmp(rw_demangle_short(e->removed[r]), brief))
					was = e->removed[r];
			if (was) {
				snprintf(one, sizeof one, "%s", rw_demangle(s->name));
				snprintf(one + strlen(one), sizeof one - strlen(one), " replaces %s",
					 rw_demangle(was));
				add(buf, cap, len, "; ", one);
			} else if (add(list, sizeof list, &llen, ", ", brief) == 0) {
				nnew++;
			}
		}
	}
	if (nnew) {
		char one[460];
		snprintf(one, sizeof one, "new: %s", list);
		add(buf, cap, len, "; ", one);
	}
}

void patch_describe(const struct link *l, const struct patch_filter *f, struct patch_result *res)
{
	struct shown *v = collect(l, f);
	size_t len = 0, own = 0, others = 0, left = 0, n = l->nredirs;
	char *buf = res->names;
	const size_t cap = sizeof res->names;
	buf[0] = 0;
	for (size_t i = 0; i < n; i++)
		if (v[i].count)
			v[i].own ? own++ : (others += (size_t)v[i].count);
	say_changed(v, n, 1, buf, cap, &len, &left);
	if (others && (!own || rw_verbose))
		say_changed(v, n, 0, buf, cap, &len, &left);
	char more[64] = "";
	if (others && own && !rw_verbose)
		snprintf(more, sizeof more, " and %zu other instance%s", others + left,
			 others + left == 1 ? "" : "s");
	else if (left)
		snprintf(more, sizeof more, " and %zu more", left);
	/* Into the room add() kept. */
	snprintf(buf + len, cap - len, "%s", more);
	len += strlen(buf + len);
	say_new(f, buf, cap, &len);
	for (size_t i = 0; i < n; i++)
		free(v[i].brief), free(v[i].full);
	free(v);
	res->nchanged = l->nredirs;
	res->nnew = l->nfuncs_new;
}
