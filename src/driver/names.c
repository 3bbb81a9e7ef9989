/* The names a patch line shows: what the user changed, first. A Rust edit
 * also changes instances of library generics compiled into the crate
 * (tokio's spawn_inner for the edited closure), and gcc's -fipa-ra or
 * inlining changes callers: they are patched all the same, but the user
 * reads the functions of their own crates and files first, each once,
 * then "and N other instances" (every one with -v). C++ names come without
 * parameters unless two overloads need them to be told apart; several
 * instances of one Rust generic (legacy mangling names them alike) are
 * named by their arguments (from DWARF), else counted. gcc's clones of an
 * edited function (deposit.isra.0) are named as the function. A new function
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
	const char *name;	/* linkage name */
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

static void name_instances(struct shown *v, size_t n, size_t i);

/* gcc's clones of a function (deposit.isra.0, of its own calling
 * convention) get no entry jump: their callers are patched to call the
 * new one. One that the program has and whose code changed is a change
 * of the function the user edited: the names of those functions, *n. */
static char **changed_clones(struct link *l, size_t *n)
{
	char **names = NULL;
	size_t cap = 0;
	*n = 0;
	for (uint32_t oi = 0; oi < l->nobjs && !(l->lib && l->lib[oi]); oi++) {
		const struct elf_object *o = &l->objs[oi];
		for (size_t k = 1; k < o->nsymbols; k++) {
			const struct elf_symbol *s = &o->symbols[k];
			if (s->type != STT_FUNC || s->shndx == SHN_UNDEF || !diff_is_clone(s->name) ||
			    link_is_changed(l, oi, s) != DIFF_CHANGED)
				continue;
			names = rw_grow(names, &cap, *n, sizeof *names);
			names[*n] = rw_malloc(diff_clone_base_len(s->name) + 1);
			memcpy(names[*n], s->name, diff_clone_base_len(s->name));
			names[(*n)++][diff_clone_base_len(s->name)] = 0;
		}
	}
	return names;
}

/* The names to show, *n: the functions of changed clones, then the
 * replaced functions whose code changed, then those that changed only
 * for gcc's -fipa-ra (callers of the others). */
static const char **names_in_order(const struct link *l, char **clones, size_t nclones, size_t *n)
{
	const char **names = rw_calloc(nclones + l->nredirs + 1, sizeof *names);
	*n = 0;
	for (size_t i = 0; i < nclones; i++)
		names[(*n)++] = clones[i];
	uint8_t *ipa_ra = rw_calloc(l->nredirs + 1, 1);
	for (size_t i = 0; i < l->nredirs; i++)
		ipa_ra[i] = link_how_changed(l, &l->redirs[i]) == DIFF_IPA_RA;
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < l->nredirs; i++)
			if (ipa_ra[i] == pass)
				names[(*n)++] = l->redirs[i].name;
	free(ipa_ra);
	return names;
}

/* One entry per function named (names_in_order); each brief name counted
 * on its first. */
static struct shown *collect(const struct link *l, const struct patch_filter *f, size_t *n)
{
	size_t nclones;
	char **clones = changed_clones((struct link *)l, &nclones);
	const char **names = names_in_order(l, clones, nclones, n);
	struct shown *v = rw_calloc(*n + 1, sizeof *v);
	for (size_t i = 0; i < *n; i++) {
		v[i].name = names[i];
		v[i].brief = rw_strdup(rw_demangle_short(names[i]));
		v[i].full = rw_strdup(rw_demangle(names[i]));
		v[i].own = is_own(v[i].brief, f);
		v[i].count = 1;
		for (size_t j = 0; j < i; j++)
			if (v[j].count && !strcmp(v[j].brief, v[i].brief)) {
				/* Overloads: told apart by their parameters. */
				if (strcmp(v[j].full, v[i].full))
					continue;
				/* A clone's function that has an entry jump too
				 * is one function, not two instances. */
				v[j].count += j >= nclones, v[i].count = 0;
				break;
			}
	}
	for (size_t i = nclones; i < *n; i++)
		if (v[i].count > 1)
			name_instances(v, *n, i);
	for (size_t i = 0; i < *n; i++)
		v[i].name = NULL;	/* the clones' names go */
	for (size_t i = 0; i < nclones; i++)
		free(clones[i]);
	free(clones);
	free(names);
	return v;
}

/* Instances of one Rust generic, alike in legacy mangling: each by its
 * arguments (total<u32>, total<u64>), from the DWARF the type checks read.
 * Counted when any has none. */
static void name_instances(struct shown *v, size_t n, size_t i)
{
	for (size_t j = i; j < n; j++) {
		if (strcmp(v[j].brief, v[i].brief) || strcmp(v[j].full, v[i].full))
			continue;
		if (!types_generic_name(v[j].name))
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
		const char *g = types_generic_name(v[j].name);
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
	size_t len = 0, own = 0, others = 0, left = 0, n;
	struct shown *v = collect(l, f, &n);
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
