/* Compiling: the compilers the session runs, each unit with its own
 * command into the private cache. JOB_PATCH compiles a save and goes
 * first; JOB_BASE (a baseline) and JOB_DEPS (a unit's headers) run in the
 * background at idle priority. A unit's input hash is taken before its
 * compiler reads the files: a save during the compile is one to patch. */
#define _GNU_SOURCE
#include <json-c/json.h>
#include "session.h"

/* A save's compile never waits for background work: each kind has its
 * own share of the cores (the background runs at idle priority). */
static struct job *free_job(struct session *s, int kind)
{
	int busy = 0;
	for (size_t i = 0; i < s->njobs; i++)
		busy += s->jobs[i].running && (s->jobs[i].kind == JOB_PATCH) == (kind == JOB_PATCH);
	if (busy >= s->parallel)
		return NULL;
	/* A finished compile of the batch holds its slot until the batch is
	 * patched: the crates of a batch compile one after another. */
	for (size_t i = 0; i < s->njobs; i++)
		if (!s->jobs[i].running && !(s->jobs[i].kind == JOB_PATCH && s->u[s->jobs[i].unit].in_batch))
			return &s->jobs[i];
	return NULL;
}

/* Copy src to dst (an object the user's build wrote: read it once, whole,
 * so a build writing it again does not change what is being linked). A
 * crate's directory of objects: its files, hard-linked (never written). */
int session_copy_file(const char *src, const char *dst)
{
	return cgus_is(src) ? cgus_copy(src, dst) : rw_copy_file(src, dst);
}

int64_t session_wall_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* FNV-1a of the names of the unit's inputs: whether a compile found the
 * ones it started with. */
static uint64_t names_hash(const struct cc_unit *u)
{
	uint64_t h = RW_HASH64_BASIS;
	for (size_t i = 0; i <= u->ndeps; i++) {
		const char *name = i ? u->deps[i - 1] : u->src;
		h = rw_hash64(h, name, strlen(name) + 1);
	}
	return h;
}

/* Written at or after t: file times lag the clock by up to a tick. */
static int written_since(const struct cc_unit *u, int64_t t)
{
	t -= 20 * 1000000;
	if (session_mtime_ns(u->src) >= t)
		return 1;
	for (size_t i = 0; i < u->ndeps; i++)
		if (session_mtime_ns(u->deps[i]) >= t)
			return 1;
	return 0;
}

/* After the compile read its depfile: the hash of what it compiled. That
 * is the one taken when it started, when it found the inputs known then;
 * an edit saved while it ran is still to patch. When it found others (a
 * first depfile, a new #include), they are hashed now, unless one was
 * written since it started: then the hash is unknown (0), and the unit's
 * next save compiles it whatever its contents. */
uint64_t session_compiled_hash(struct session *s, const struct cc_unit *u,
			       const struct job *j)
{
	if (names_hash(u) == j->names)
		return j->hash;
	return written_since(u, j->started) ? 0 : cc_hash_inputs_memo(u, &s->hashes);
}

int session_start_job(struct session *s, size_t unit, int kind)
{
	struct job *j = free_job(s, kind);
	if (!j)
		return -1;
	/* Before the compiler reads them: a save from now on is one to patch
	 * (a batch's unit: hashed when the batch began, start_batch). */
	j->hash = kind == JOB_PATCH && s->u[unit].batch_hash ? s->u[unit].batch_hash :
		  cc_hash_inputs_memo(&s->db.units[unit], &s->hashes);
	s->u[unit].batch_hash = 0;
	j->names = names_hash(&s->db.units[unit]);
	j->started = session_wall_ns();
	const char *dir = kind == JOB_PATCH ? "new" : "base";
	snprintf(j->obj, sizeof j->obj, "%s/%s/%zu-%s.o", s->objs, dir, unit, rw_basename(s->db.units[unit].src));
	if (s->db.units[unit].object_only) {
		/* Nothing to compile: the user's build made the object. */
		j->pid = 0;
		j->pidfd = -1;
		j->unit = unit;
		j->kind = kind;
		j->running = 0;
		j->status = session_copy_file(s->db.units[unit].src, j->obj) == 0 ? 0 : 1;
		snprintf(j->log, sizeof j->log, "/dev/null");
		return 0;
	}
	snprintf(j->dep, sizeof j->dep, "%s/%s/%zu.d", s->cache, dir, unit);
	snprintf(j->log, sizeof j->log, "%s/%s/%zu.log", s->cache, dir, unit);
	int fd = open(j->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return rw_fail("cannot write %s: %s", j->log, strerror(errno)), -2;
	if (kind == JOB_DEPS)
		j->pid = cc_spawn_deps(&s->db.units[unit], j->dep, fd);
	else
		j->pid = cc_spawn(&s->db.units[unit], j->obj, j->dep, fd, s->color, kind == JOB_BASE);
	close(fd);
	if (j->pid < 0)
		return rw_fail("cannot start the compiler: %s", strerror(errno)), -2;
	j->pidfd = (int)syscall(SYS_pidfd_open, j->pid, 0);
	j->unit = unit;
	j->kind = kind;
	j->running = 1;
	return 0;
}

/* Text without its ANSI colour sequences (ESC [ ... letter). */
static void put_plain(const char *t, int color)
{
	if (color) {
		fputs(t, stderr);
		return;
	}
	for (; *t; t++) {
		if (t[0] == '\033' && t[1] == '[') {
			t += 2;
			while (*t && !(*t >= '@' && *t <= '~'))
				t++;
			if (!*t)
				break;
			continue;
		}
		fputc(*t, stderr);
	}
}

/* A line of rustc's --error-format=json: its diagnostic as rustc would
 * print it ("rendered"); an artifact notice, nothing; anything else (the
 * linker's messages) as it is. */
static void show_json_line(const char *line, int color)
{
	json_object *o = line[0] == '{' ? json_tokener_parse(line) : NULL, *v;
	if (!o) {
		fprintf(stderr, "%s\n", line);
		return;
	}
	if (json_object_object_get_ex(o, "$message_type", &v) &&
	    !strcmp(json_object_get_string(v), "diagnostic") &&
	    json_object_object_get_ex(o, "rendered", &v) && json_object_get_string(v))
		put_plain(json_object_get_string(v), color);
	json_object_put(o);
}

/* A compile's messages. A crate is compiled with cargo's own
 * --error-format=json --json=... (rustc's incremental state depends on
 * them: without them, the first replay after a cargo build, and the next
 * cargo build, would compile the whole crate again): its diagnostics are
 * shown as rustc renders them. */
void session_show_log(const char *path, int json, int color)
{
	size_t len = 0, cap = 0;
	char *text = NULL, buf[4096];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;
	while (fd >= 0 && (n = read(fd, buf, sizeof buf)) > 0) {
		while (len + (size_t)n + 1 > cap)
			text = rw_grow(text, &cap, len + (size_t)n + 1, 1);
		memcpy(text + len, buf, (size_t)n);
		len += (size_t)n;
	}
	if (fd >= 0)
		close(fd);
	if (!text)
		return;
	text[len] = 0;
	if (!json) {
		fwrite(text, 1, len, stderr);
		free(text);
		return;
	}
	for (char *line = text, *end; line < text + len; line = end + 1) {
		end = strchr(line, '\n');
		if (!end)
			end = text + len;
		*end = 0;
		if (*line)
			show_json_line(line, color);
	}
	fflush(stderr);
	free(text);
}

/* A copy of the unit's first baseline (later ones replace its file), for
 * a restarted program. A crate's is its baseline from now on: another
 * `rewire run` of the crate records its own build where this one's was. */
void session_record_orig(struct session *s, size_t i)
{
	struct cc_unit *u = &s->db.units[i];
	char path[PATH_MAX + 16];
	if (!s->u || s->u[i].orig || !u->base)
		return;
	snprintf(path, sizeof path, "%s/orig/%zu-%s.o", s->objs, i, rw_basename(u->src));
	if (session_copy_file(u->base, path) == 0)
		s->u[i].orig = rw_strdup(path);
	if (u->rust && s->u[i].orig) {
		free(u->base);
		u->base = rw_strdup(path);
	}
}

static void base_done(struct session *s, struct job *j)
{
	struct cc_unit *u = &s->db.units[j->unit];
	if (j->status != 0) {
		/* Not fatal: the unit is patched from its own object, or the
		 * first edit compiles it. */
		rw_say("%s does not compile as it is (%s); it is watched all the same",
		       rw_basename(u->src), j->log);
		s->failed_logs++;
		return;
	}
	/* An input was saved before or while this compiled: the object may
	 * hold the edit, so it is no baseline, and the hash taken at start-up
	 * stays (the edit is still to patch). */
	int edited = j->hash != u->hash || cc_hash_inputs_memo(u, &s->hashes) != j->hash;
	cc_read_deps(u, u->depfile ? u->depfile : j->dep);
	for (size_t i = 0; i < u->ndeps; i++)
		session_watch_dir_of(s, u->deps[i]);
	uint64_t hash = edited ? 0 : session_compiled_hash(s, u, j);
	if (!hash)
		return;
	if (!u->base)
		u->base = rw_strdup(j->obj);
	session_record_orig(s, j->unit);
	u->hash = hash;
}

/* A header of unit i written after the program was built: what runs is
 * not what the headers say. Saved since the session began (before rewire
 * knew the unit includes it): an edit, patched now. Before: said, and the
 * next save patches every difference from the code that runs. */
void session_check_headers(struct session *s, size_t i)
{
	struct cc_unit *u = &s->db.units[i];
	for (size_t k = 0; k < u->ndeps; k++) {
		int64_t t = session_mtime_ns(u->deps[k]);
		if (t <= s->exe_time)
			continue;
		u->hash = 0;
		if (t >= s->start_wall) {
			s->u[i].due = rw_now_ns();
		} else {
			rw_say("%s changed after the program was built: the next save of %s patches "
			       "every difference from the code that runs", rw_basename(u->deps[k]),
			       rw_basename(u->src));
		}
		return;
	}
}

/* The headers of a unit whose baseline is the build's object. One
 * changed since that object was built: the object is not what the
 * source says now, so the next save compiles and patches, whatever it
 * changes (the diff is against the object that runs). */
static void deps_done(struct session *s, struct job *j)
{
	struct cc_unit *u = &s->db.units[j->unit];
	/* As base_done: a save of the source meanwhile is still to patch. */
	int edited = j->hash != u->hash || cc_hash_inputs_memo(u, &s->hashes) != j->hash;
	if (j->status != 0 || cc_read_deps(u, j->dep) < 0) {
		rw_say("%s does not preprocess as it is (%s); it is watched all the same, and its "
		       "headers are known once it compiles", rw_basename(u->src), j->log);
		s->failed_logs++;
		u->hash = 0;
		return;
	}
	for (size_t i = 0; i < u->ndeps; i++)
		session_watch_dir_of(s, u->deps[i]);
	if (!edited)
		u->hash = session_compiled_hash(s, u, j);
	session_check_headers(s, j->unit);
}

void session_reap_jobs(struct session *s)
{
	for (size_t i = 0; i < s->njobs; i++) {
		struct job *j = &s->jobs[i];
		if (!j->running || waitpid(j->pid, &j->status, WNOHANG) <= 0)
			continue;
		j->running = 0;
		if (j->pidfd >= 0)
			close(j->pidfd);
		j->pidfd = -1;
		if (j->kind == JOB_BASE)
			base_done(s, j);
		else if (j->kind == JOB_DEPS)
			deps_done(s, j);
	}
}

void session_start_baselines(struct session *s)
{
	while (s->qnext < s->nqueue) {
		size_t i = s->base_queue[s->qnext];
		if (session_start_job(s, i, s->u[i].deps_only ? JOB_DEPS : JOB_BASE) < 0)
			return;
		s->qnext++;
	}
}
