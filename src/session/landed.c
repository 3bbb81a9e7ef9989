/* What the program has: the patches it took (or may have), each with
 * its units' baselines before it, kept so --restart can take one back
 * out; a baseline file lives as long as a patch or a unit refers to it. */
#define _GNU_SOURCE
#include "session.h"

static char *dup_or_null(const char *path)
{
	return path ? rw_strdup(path) : NULL;
}

static int is_used(struct session *s, const char *path)
{
	for (size_t i = 0; i < s->db.n; i++)
		if (s->db.units[i].base && !strcmp(s->db.units[i].base, path))
			return 1;
	for (size_t k = 0; k < s->nlanded; k++)
		for (size_t i = 0; i < s->landed[k].n; i++)
			if (s->landed[k].before[i] && !strcmp(s->landed[k].before[i], path))
				return 1;
	return 0;
}

/* A baseline no longer held: its file goes when it is one of rewire's
 * (never the user's build's objects, nor the copies in orig/). */
void session_forget_base(struct session *s, char *path)
{
	char dir[sizeof s->objs + 8];
	snprintf(dir, sizeof dir, "%s/base/", s->objs);
	if (path && !strncmp(path, dir, strlen(dir)) && !is_used(s, path))
		cgus_remove(path);	/* a file, or a crate's directory */
	free(path);
}

void session_drop_landed(struct session *s, size_t k)
{
	struct landed l = s->landed[k];
	memmove(&s->landed[k], &s->landed[k + 1], (s->nlanded - k - 1) * sizeof l);
	s->nlanded--;
	for (size_t i = 0; i < l.n; i++)
		session_forget_base(s, l.before[i]);
	free(l.units);
	free(l.before);
	free(l.was_patched);
}

/* A patch of these units went in (or may have): note it with their
 * baselines before it (from_orig: the ones the program started with). */
void session_note_landed(struct session *s, const size_t *units, size_t n,
			 const struct patch_result *res, const char *files, int from_orig, uint32_t gen)
{
	if (s->nlanded == KEEP_LANDED)
		session_drop_landed(s, 0);
	struct landed *l = &s->landed[s->nlanded++];
	l->version = res->version;
	l->gen = gen;
	l->from_orig = from_orig;
	l->n = n;
	l->units = rw_calloc(n, sizeof *l->units);
	l->before = rw_calloc(n, sizeof *l->before);
	l->was_patched = rw_calloc(n, 1);
	for (size_t i = 0; i < n; i++) {
		size_t u = units[i];
		l->units[i] = u;
		l->before[i] = dup_or_null(from_orig ? s->u[u].orig : s->db.units[u].base);
		l->was_patched[i] = from_orig ? 0 : s->u[u].patched;
	}
	snprintf(l->what, sizeof l->what, "%s (%s)", res->nchanged ? res->names : "new code", files);
}

struct landed *session_find_landed(struct session *s, int version)
{
	for (size_t k = 0; version > 0 && k < s->nlanded; k++)
		if (s->landed[k].version == version)
			return &s->landed[k];
	return NULL;
}

/* The program starts again without patch l: its units are back on their
 * baselines before it (their later patches were made on top of it: they
 * go too), their next saves compile them, and a save lost with the
 * crash is not tried again. */
void session_leave_out(struct session *s, const struct landed *l)
{
	for (size_t k = 0; k < l->n; k++) {
		size_t i = l->units[k];
		char *old = s->db.units[i].base;
		s->db.units[i].base = dup_or_null(l->before[k]);
		session_forget_base(s, old);
		s->db.units[i].hash = 0;
		s->u[i].patched = l->was_patched[k];
		s->u[i].lost = 0;
	}
}
