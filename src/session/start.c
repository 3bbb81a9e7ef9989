/* The start of a session: the cache directory, and each unit's baseline
 * and headers. No compiler runs for a unit whose object is current (the
 * build's object is the baseline, its headers come from the build's
 * depfile or its #include lines); the others are compiled in the
 * background. */
#define _GNU_SOURCE
#include <dirent.h>
#include "session.h"

/* A source saved after its object was built: the object (older than the
 * executable) is still what runs, and is the baseline, so the next save
 * patches every difference from it. Without such an object rewire can
 * only compile the source as it is now: what changed before is not in the
 * program and will not be patched. Either way, say so. */
static void note_stale_source(const struct cc_unit *u, int64_t obj, int64_t src, int64_t exe_time)
{
	if (obj >= 0 && obj <= exe_time && src > obj)
		rw_say("%s changed after the program was built: its next save patches every "
		       "difference from the code that runs", rw_basename(u->src));
	else if ((obj < 0 || obj > exe_time) && src > exe_time)
		rw_say("warning: %s changed after the program was built, and its object of that build "
		       "is gone: rewire compares later saves with it as it is now, so what changed "
		       "before is not in the program (restart it to run those changes)",
		       rw_basename(u->src));
}

/* The build's object is the baseline, as a copy: the user's build may
 * write it again (an editor that builds on save), and the next save must
 * be compared with what runs. */
static int keep_build_object(struct session *s, size_t i)
{
	struct cc_unit *u = &s->db.units[i];
	char path[PATH_MAX + 16];
	snprintf(path, sizeof path, "%s/orig/%zu-%s.o", s->cache, i, rw_basename(u->src));
	if (session_copy_file(u->out, path) < 0)
		return -1;
	u->base = rw_strdup(path);
	s->u[i].orig = rw_strdup(path);
	return 0;
}

/* The headers of a unit whose object is current, without a compiler: the
 * depfile the build wrote with that object, else the #include lines of
 * its files (includes.c). 0, or -1 when neither tells. */
static int known_headers(struct session *s, size_t i, struct inc_cache *inc)
{
	struct cc_unit *u = &s->db.units[i];
	if (cc_read_build_deps(u) < 0 && inc_unit_deps(inc, u) < 0)
		return -1;
	for (size_t k = 0; k < u->ndeps; k++)
		session_watch_dir_of(s, u->deps[k]);
	u->hash = cc_hash_inputs_memo(u, &s->hashes);
	session_check_headers(s, i);
	return 0;
}

/* No compiler runs at start for a unit whose object is current: that
 * object is the baseline, and its headers come from the depfile the
 * build wrote with it, else from its #include lines, else (an #include
 * of a macro) from a preprocessor pass in the background. The others are
 * compiled in the background for their baselines. */
void session_setup_baselines(struct session *s, const char *exe)
{
	struct inc_cache *inc = inc_new();
	/* The units share their headers: each is read once. A save from now
	 * on is seen (the directories are watched before the hash). */
	int64_t exe_time = session_mtime_ns(exe);
	s->exe_time = exe_time;
	s->start_wall = session_wall_ns();
	s->base_queue = rw_calloc(s->db.n, sizeof *s->base_queue);
	for (size_t i = 0; i < s->db.n; i++) {
		struct cc_unit *u = &s->db.units[i];
		int64_t obj = session_mtime_ns(u->out), src = session_mtime_ns(u->src);
		session_watch_dir_of(s, u->src);
		for (size_t k = 0; k < u->ndeps; k++)
			session_watch_dir_of(s, u->deps[k]);
		u->hash = cc_hash_inputs_memo(u, &s->hashes);
		if (u->rust)
			continue;	/* its baseline is the build's own link (cargo.c) */
		if (u->object_only) {
			/* The object as it is now is the code that runs. */
			char base[2048];
			snprintf(base, sizeof base, "%s/base/%zu-%s.o", s->cache, i, rw_basename(u->src));
			if (session_copy_file(u->src, base) == 0)
				u->base = rw_strdup(base);
			continue;
		}
		note_stale_source(u, obj, src, exe_time);
		int current = obj >= 0 && obj <= exe_time;
		if (current && keep_build_object(s, i) < 0)
			u->base = rw_strdup(u->out);
		if (current && src <= obj && known_headers(s, i, inc) == 0)
			continue;
		s->u[i].deps_only = current && src <= obj;
		s->base_queue[s->nqueue++] = i;
	}
	inc_free(inc);
}

/* Gone already, or changed in the last minute: a directory being made,
 * or being left by its session, is left alone. */
static int recent(const char *path)
{
	struct stat st;
	return stat(path, &st) < 0 || st.st_mtime > time(NULL) - 60;
}

/* Is the session that made cache directory path (its "owner": process
 * id and start time) still running? */
static int cache_owner_runs(const char *path)
{
	char owner[PATH_MAX + 16];
	int pid = 0;
	unsigned long long start = 0;
	snprintf(owner, sizeof owner, "%s/owner", path);
	FILE *f = fopen(owner, "re");
	if (!f) {
		/* Being made, or made by a rewire that wrote no owner: its
		 * program's process id is in its name. */
		const char *dash = strrchr(path, '-');
		return recent(path) || (dash && rw_proc_start(atoi(dash + 1)));
	}
	int ok = fscanf(f, "%d %llu", &pid, &start) == 2;
	fclose(f);
	return ok ? rw_proc_start(pid) == start : recent(path);
}

/* The cache directories of sessions that could not clean up (killed):
 * their objects, megabytes for a crate, would stay until reboot. */
static void remove_stale_caches(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	while (d && (e = readdir(d))) {
		char path[PATH_MAX];
		if (strncmp(e->d_name, "cache-", 6) || e->d_type != DT_DIR)
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		if (!cache_owner_runs(path) && !strchr(path, '\'')) {
			char cmd[PATH_MAX + 32];
			snprintf(cmd, sizeof cmd, "rm -rf '%s' 2>/dev/null", path);
			if (system(cmd)) {}
		}
	}
	if (d)
		closedir(d);
}

/* A cache directory of this session, with its owner (whole or not at
 * all: another session's start reads it) and the places of objects. */
static void make_cache_dir(const char *path)
{
	char owner[PATH_MAX + 16], tmp[PATH_MAX + 16];
	mkdir(path, 0700);
	snprintf(tmp, sizeof tmp, "%s/owner.new", path);
	snprintf(owner, sizeof owner, "%s/owner", path);
	FILE *f = fopen(tmp, "we");
	if (f) {
		fprintf(f, "%d %llu\n", (int)getpid(), (unsigned long long)rw_proc_start((int)getpid()));
		if (fclose(f) == 0)
			rename(tmp, owner);
	}
	static const char *const subs[] = {"base", "new", "orig"};
	for (size_t i = 0; i < sizeof subs / sizeof *subs; i++) {
		snprintf(tmp, sizeof tmp, "%s/%s", path, subs[i]);
		mkdir(tmp, 0700);
	}
}

/* A crate's objects are hard links to rustc's (front/cgus.c): they go
 * beside its output, on its file system, in <profile>/rewire/cache-PID;
 * everything else in the cache. */
static void choose_objs_dir(struct session *s)
{
	snprintf(s->objs, sizeof s->objs, "%s", s->cache);
	for (size_t i = 0; i < s->db.n; i++) {
		const struct cc_unit *u = &s->db.units[i];
		char dir[sizeof s->objs - 32];
		if (!u->rust || !u->base)
			continue;
		snprintf(dir, sizeof dir, "%s", u->base);
		for (int up = 0; up < 2 && strrchr(dir, '/'); up++)
			*strrchr(dir, '/') = 0;
		remove_stale_caches(dir);
		snprintf(s->objs, sizeof s->objs, "%s/cache-%d", dir, (int)s->child);
		if (strcmp(s->objs, s->cache)) {
			session_remove_tree(s->objs);
			make_cache_dir(s->objs);
		}
		return;
	}
}

int session_make_cache(struct session *s)
{
	char dir[256];
	if (chan_socket_dir(dir, sizeof dir) < 0)
		return -1;
	remove_stale_caches(dir);
	snprintf(s->cache, sizeof s->cache, "%s/cache-%d", dir, (int)s->child);
	/* One left by a session that could not clean up (killed) whose
	 * program had this process id: its files are not this program's. */
	struct stat st;
	if (stat(s->cache, &st) == 0)
		session_remove_tree(s->cache);
	make_cache_dir(s->cache);
	session_said(0);
	choose_objs_dir(s);
	return 0;
}

void session_remove_tree(const char *path)
{
	char cmd[PATH_MAX + 32];
	if (!path[0] || strchr(path, '\''))
		return;
	snprintf(cmd, sizeof cmd, "rm -rf '%s' 2>/dev/null", path);
	if (system(cmd)) {}
}

void session_remove_cache(struct session *s)
{
	if (s->objs[0] && strcmp(s->objs, s->cache))
		session_remove_tree(s->objs);
	session_remove_tree(s->cache);
}

static void remove_said(void);

/* At the end of the session: a log a message named (a unit that did not
 * compile as it was) stays where the message said, so that the user can
 * read it after the program ended; the rest goes. The directory, without
 * its owner file, is swept by the next session that starts. */
void session_end_cache(struct session *s)
{
	char cmd[3 * PATH_MAX];
	remove_said();
	if (s->objs[0] && strcmp(s->objs, s->cache))
		session_remove_tree(s->objs);
	if (!s->failed_logs || !s->cache[0] || strchr(s->cache, '\'')) {
		session_remove_cache(s);
		return;
	}
	snprintf(cmd, sizeof cmd, "find '%s' -mindepth 1 -depth ! \\( -path '%s/base/*.log' -size +0 \\) "
		 "-delete 2>/dev/null", s->cache, s->cache);
	if (system(cmd)) {}
}

/* <dir>/<session>.said: the number of the last patch whose line was said.
 * The report of a crash of that patch's code, written by the program
 * itself, waits for it (agent_wait_said): "patched" comes first. Whole or
 * not at all: the agent reads it at any time. */
void session_said(uint32_t gen)
{
	char dir[256], path[320], tmp[330];
	if (chan_socket_dir(dir, sizeof dir) < 0)
		return;
	snprintf(path, sizeof path, "%s/%d.said", dir, (int)getpid());
	snprintf(tmp, sizeof tmp, "%s.new", path);
	FILE *f = fopen(tmp, "we");
	if (!f)
		return;
	fprintf(f, "%u\n", (unsigned)gen);
	if (fclose(f) == 0)
		rename(tmp, path);
}

static void remove_said(void)
{
	char dir[256], path[320];
	if (chan_socket_dir(dir, sizeof dir) < 0)
		return;
	snprintf(path, sizeof path, "%s/%d.said", dir, (int)getpid());
	unlink(path);
}
