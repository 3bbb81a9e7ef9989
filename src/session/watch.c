/* Watching: inotify on the directory of every source and header of the
 * program's units. A save marks the units that use the file, due after a
 * short debounce (editors save in one write or one rename; some write
 * twice in a row; a rename is whole at once). */
#define _GNU_SOURCE
#include "session.h"

int64_t session_mtime_ns(const char *path)
{
	struct stat st;
	if (!path || stat(path, &st) < 0)
		return -1;
	return (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
}

void session_watch_dir_of(struct session *s, const char *path)
{
	char dir[PATH_MAX];
	snprintf(dir, sizeof dir, "%s", path);
	char *slash = strrchr(dir, '/');
	if (!slash)
		return;
	*slash = 0;
	for (size_t i = 0; i < s->ndirs; i++)
		if (s->dirs[i] && !strcmp(s->dirs[i], dir))
			return;
	int wd = inotify_add_watch(s->ino, dir[0] ? dir : "/", IN_CLOSE_WRITE | IN_MOVED_TO);
	if (wd < 0)
		return;
	/* Watch descriptors are small integers handed out in order. */
	if ((size_t)wd >= s->ndirs) {
		s->dirs = rw_grow(s->dirs, &s->capdirs, (size_t)wd, sizeof *s->dirs);
		for (size_t i = s->ndirs; i <= (size_t)wd; i++)
			s->dirs[i] = NULL;
		s->ndirs = (size_t)wd + 1;
	}
	free(s->dirs[wd]);
	s->dirs[wd] = rw_strdup(dir);
}

static int unit_uses(const struct cc_unit *u, const char *path)
{
	if (!strcmp(u->src, path))
		return 1;
	for (size_t i = 0; i < u->ndeps; i++)
		if (!strcmp(u->deps[i], path))
			return 1;
	return 0;
}

/* A crate's change is also one of the crates after it, which use it
 * (cargo.c orders libraries before the binary): they are rebuilt too,
 * whatever their own sources say. */
static void on_saved(struct session *s, const char *path, int renamed)
{
	uint64_t due = rw_now_ns() + (renamed ? DEBOUNCE_RENAME_NS : DEBOUNCE_NS);
	for (size_t i = 0; i < s->db.n; i++) {
		if (!unit_uses(&s->db.units[i], path))
			continue;
		/* A write's wait is not cut short by a rename after it. */
		if (s->u[i].due < due)
			s->u[i].due = due;
		s->u[i].batch_hash = 0;	/* not what its compile will read */
		for (size_t j = i + 1; s->db.units[i].rust && j < s->db.n; j++)
			if (s->db.units[j].rust)
				s->u[j].due = s->u[j].due < due ? due : s->u[j].due,
				s->u[j].forced = 1;
	}
}

void session_read_events(struct session *s)
{
	char buf[16384] __attribute__((aligned(8)));
	for (;;) {
		ssize_t n = read(s->ino, buf, sizeof buf);
		if (n <= 0)
			return;
		for (ssize_t off = 0; off < n;) {
			struct inotify_event *e = (struct inotify_event *)(buf + off);
			off += (ssize_t)sizeof *e + e->len;
			int ours = procs_event(&s->procs, e);
			if (ours == 2 && s->nrequests < SESSION_MAX_REQUESTS)
				s->requests[s->nrequests++] = rw_strdup(e->name);
			if (ours) {
				s->procs_new |= ours == 1;
				continue;
			}
			if (!e->len || e->wd < 0 || (size_t)e->wd >= s->ndirs || !s->dirs[e->wd])
				continue;
			char path[PATH_MAX * 2];
			snprintf(path, sizeof path, "%s/%s", s->dirs[e->wd], e->name);
			on_saved(s, path, (e->mask & IN_MOVED_TO) != 0);
		}
	}
}
