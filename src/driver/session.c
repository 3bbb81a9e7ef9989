/* The `rewire run` session for C and C++: watch, build, diff, patch.
 *
 * One loop: inotify on the directories of every source and header of the
 * program's units, the running program (a pidfd), and the compilers rewire
 * started. A save marks the units that use the file; after a short
 * debounce, units whose inputs' contents really changed are compiled with
 * their own commands into the private cache (several at once), then diffed
 * against their baselines (the objects of the code that runs), and the
 * changed functions are patched in as one patch. A compile error is shown
 * as the compiler printed it and nothing else happens; the next good save
 * patches. After a patch, the new objects are the baselines.
 *
 * Baselines: a unit's own object when it is newer than its source and
 * older than the executable (it is what runs), else the object rewire
 * compiles at start-up; that compile also yields the unit's headers. */
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "driver.h"
#include "procs.h"
#include "front/cc.h"
#include "front/includes.h"
#include "patch/diff.h"

/* Editors save in one write or one rename; some write twice in a row. */
#define DEBOUNCE_NS (8ull * 1000000)
/* Compilers running at once, at most. */
#define MAX_JOBS 8

/* JOB_BASE compiles a unit whose object is not current (its baseline);
 * JOB_DEPS only preprocesses one whose object is, for the headers it
 * includes, when neither a depfile nor its #include lines tell them (it
 * includes a macro); both in the background. JOB_PATCH compiles a save. */
enum job_kind { JOB_BASE, JOB_PATCH, JOB_DEPS };

/* The patches --restart can take back out of a restarted program. */
#define KEEP_LANDED 32

/* A patch the running program has (or may have: it ended before the
 * agent answered), by the agent's number for it, with each unit's
 * baseline before it. When the agent blames it for a crash (agent.c),
 * --restart starts the program again without it. */
struct landed {
	int version;
	uint32_t gen;		/* the session's number for it; 0: in doubt */
	size_t n;
	size_t *units;
	char **before;		/* NULL: the unit had no baseline */
	uint8_t *was_patched;	/* the unit's `patched` before it */
	char what[640];		/* "compute (body.c)", for messages */
};

struct job {
	pid_t pid;
	int pidfd;		/* readable when the compiler exits, -1 if none */
	size_t unit;
	int kind;
	int status;
	int running;
	/* The unit's inputs when the compile started: what it read. */
	uint64_t hash, names;
	int64_t started;	/* CLOCK_REALTIME ns, as file times are */
	char obj[2048], dep[2048], log[2048];
};

/* What the session knows of one unit, beside its cc_unit. */
struct unit_state {
	uint64_t due;		/* when its debounce ends, 0 if not dirty */
	char *orig;		/* the baseline the program started with */
	uint8_t in_batch;	/* compiling for the current patch */
	uint8_t started;	/* its compile for the batch has started */
	uint8_t forced;		/* rebuild though its own inputs did not change */
	uint8_t deps_only;	/* its baseline is the build's object, only its
				 * headers are to learn (JOB_DEPS) */
	uint8_t patched;	/* its current baseline was patched in */
	uint8_t lost;		/* its patch failed as the program ended */
	uint8_t behind;		/* its last save did not compile or was refused */
};

struct session {
	pid_t child;
	int pidfd;
	int detach_fd;		/* attached: readable when rewire is told to detach; else -1 */
	struct cc_db db;
	char cache[1024];
	int ino;
	char **dirs;
	size_t ndirs;
	struct unit_state *u;	/* per unit of db */
	uint64_t batch_start;
	/* A slot per unit of the program, and MAX_JOBS more: a compile of
	 * the batch holds its slot until the whole batch is patched, and a
	 * batch may hold every unit (a header they all include). */
	struct job *jobs;
	size_t njobs;
	size_t *base_queue;	/* units still to compile for their baseline/deps */
	size_t nqueue, qnext;
	int64_t exe_time;	/* when the executable was built (file time) */
	int64_t start_wall;	/* when the session began (file time) */
	int color;
	int parallel;
	pid_t (*relaunch)(void *ctx);	/* --restart: start the program again */
	void *relaunch_ctx;
	uint64_t restarted_at;
	int restarts;
	struct landed landed[KEEP_LANDED];	/* the program's patches, oldest first */
	size_t nlanded;
	unsigned seq;		/* baselines are files of their own: landed[].before */
	struct procs procs;	/* the program's processes */
	uint32_t gen;		/* patches the program took (gen of the newest) */
	uint32_t batch;		/* patches tried (the number of the last); a process
				 * that did not answer in time is asked again in the
				 * next (proc.silent) */
	int procs_new;		/* a process may have appeared */
	struct exe_cache *images;	/* the program's files as patches read them */
};

static int64_t mtime_ns(const char *path)
{
	struct stat st;
	if (!path || stat(path, &st) < 0)
		return -1;
	return (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
}

/* --- watching ------------------------------------------------------------- */

static void watch_dir_of(struct session *s, const char *path)
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
		s->dirs = rw_realloc(s->dirs, ((size_t)wd + 1) * sizeof *s->dirs);
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
static void on_saved(struct session *s, const char *path)
{
	uint64_t due = rw_now_ns() + DEBOUNCE_NS;
	for (size_t i = 0; i < s->db.n; i++) {
		if (!unit_uses(&s->db.units[i], path))
			continue;
		s->u[i].due = due;
		for (size_t j = i + 1; s->db.units[i].rust && j < s->db.n; j++)
			if (s->db.units[j].rust)
				s->u[j].due = due, s->u[j].forced = 1;
	}
}

static void read_events(struct session *s)
{
	char buf[16384] __attribute__((aligned(8)));
	for (;;) {
		ssize_t n = read(s->ino, buf, sizeof buf);
		if (n <= 0)
			return;
		for (ssize_t off = 0; off < n;) {
			struct inotify_event *e = (struct inotify_event *)(buf + off);
			off += (ssize_t)sizeof *e + e->len;
			if (procs_event(&s->procs, e)) {
				s->procs_new = 1;
				continue;
			}
			if (!e->len || e->wd < 0 || (size_t)e->wd >= s->ndirs || !s->dirs[e->wd])
				continue;
			char path[PATH_MAX * 2];
			snprintf(path, sizeof path, "%s/%s", s->dirs[e->wd], e->name);
			on_saved(s, path);
		}
	}
}

/* --- compiling -------------------------------------------------------------- */

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
 * so a build writing it again does not change what is being linked). */
static int copy_file(const char *src, const char *dst)
{
	int in = open(src, O_RDONLY | O_CLOEXEC), out = -1, rc = -1;
	char buf[65536];
	ssize_t n;
	if (in >= 0)
		out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (out >= 0) {
		while ((n = read(in, buf, sizeof buf)) > 0)
			if (write(out, buf, (size_t)n) != n)
				break;
		rc = n == 0 ? 0 : -1;
	}
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	return rc;
}

static int64_t wall_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* FNV-1a of the names of the unit's inputs: whether a compile found the
 * ones it started with. */
static uint64_t names_hash(const struct cc_unit *u)
{
	uint64_t h = 14695981039346656037ull;
	for (size_t i = 0; i <= u->ndeps; i++)
		for (const char *c = i ? u->deps[i - 1] : u->src; ; c++) {
			h = (h ^ (uint8_t)*c) * 1099511628211ull;
			if (!*c)
				break;
		}
	return h;
}

/* Written at or after t: file times lag the clock by up to a tick. */
static int written_since(const struct cc_unit *u, int64_t t)
{
	t -= 20 * 1000000;
	if (mtime_ns(u->src) >= t)
		return 1;
	for (size_t i = 0; i < u->ndeps; i++)
		if (mtime_ns(u->deps[i]) >= t)
			return 1;
	return 0;
}

/* After the compile read its depfile: the hash of what it compiled. That
 * is the one taken when it started, when it found the inputs known then;
 * an edit saved while it ran is still to patch. When it found others (a
 * first depfile, a new #include), they are hashed now, unless one was
 * written since it started: then the hash is unknown (0), and the unit's
 * next save compiles it whatever its contents. */
static uint64_t compiled_hash(const struct cc_unit *u, const struct job *j)
{
	if (names_hash(u) == j->names)
		return j->hash;
	return written_since(u, j->started) ? 0 : cc_hash_inputs(u);
}

static int start_job(struct session *s, size_t unit, int kind)
{
	struct job *j = free_job(s, kind);
	if (!j)
		return -1;
	/* Before the compiler reads them: a save from now on is one to patch. */
	j->hash = cc_hash_inputs(&s->db.units[unit]);
	j->names = names_hash(&s->db.units[unit]);
	j->started = wall_ns();
	const char *dir = kind == JOB_PATCH ? "new" : "base";
	snprintf(j->obj, sizeof j->obj, "%s/%s/%zu-%s.o", s->cache, dir, unit, rw_basename(s->db.units[unit].src));
	if (s->db.units[unit].object_only) {
		/* Nothing to compile: the user's build made the object. */
		j->pid = 0;
		j->pidfd = -1;
		j->unit = unit;
		j->kind = kind;
		j->running = 0;
		j->status = copy_file(s->db.units[unit].src, j->obj) == 0 ? 0 : 1;
		snprintf(j->log, sizeof j->log, "/dev/null");
		return 0;
	}
	snprintf(j->dep, sizeof j->dep, "%s/%s/%zu.d", s->cache, dir, unit);
	snprintf(j->log, sizeof j->log, "%s/%s/%zu.log", s->cache, dir, unit);
	int fd = open(j->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	if (kind == JOB_DEPS)
		j->pid = cc_spawn_deps(&s->db.units[unit], j->dep, fd);
	else
		j->pid = cc_spawn(&s->db.units[unit], j->obj, j->dep, fd, s->color, kind == JOB_BASE);
	close(fd);
	if (j->pid < 0)
		return -1;
	j->pidfd = (int)syscall(SYS_pidfd_open, j->pid, 0);
	j->unit = unit;
	j->kind = kind;
	j->running = 1;
	return 0;
}

static void show_log(const char *path)
{
	char buf[4096];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;
	while (fd >= 0 && (n = read(fd, buf, sizeof buf)) > 0)
		if (write(2, buf, (size_t)n) < 0)
			break;
	if (fd >= 0)
		close(fd);
}

/* A copy of the unit's first baseline (later ones replace its file), for
 * a restarted program. */
static void record_orig(struct session *s, size_t i)
{
	const struct cc_unit *u = &s->db.units[i];
	char path[PATH_MAX + 16];
	if (!s->u || s->u[i].orig || !u->base)
		return;
	snprintf(path, sizeof path, "%s/orig/%zu-%s.o", s->cache, i, rw_basename(u->src));
	if (copy_file(u->base, path) == 0)
		s->u[i].orig = rw_strdup(path);
}

static void base_done(struct session *s, struct job *j)
{
	struct cc_unit *u = &s->db.units[j->unit];
	if (j->status != 0) {
		/* Not fatal: the unit is patched from its own object, or the
		 * first edit compiles it. */
		rw_say("%s does not compile as it is (%s); it is watched all the same",
		       rw_basename(u->src), j->log);
		return;
	}
	/* An input was saved before or while this compiled: the object may
	 * hold the edit, so it is no baseline, and the hash taken at start-up
	 * stays (the edit is still to patch). */
	int edited = j->hash != u->hash || cc_hash_inputs(u) != j->hash;
	cc_read_deps(u, u->depfile ? u->depfile : j->dep);
	for (size_t i = 0; i < u->ndeps; i++)
		watch_dir_of(s, u->deps[i]);
	uint64_t hash = edited ? 0 : compiled_hash(u, j);
	if (!hash)
		return;
	if (!u->base)
		u->base = rw_strdup(j->obj);
	record_orig(s, j->unit);
	u->hash = hash;
}

/* A header of unit i written after the program was built: what runs is
 * not what the headers say. Saved since the session began (before rewire
 * knew the unit includes it): an edit, patched now. Before: said, and the
 * next save patches every difference from the code that runs. */
static void check_headers(struct session *s, size_t i)
{
	struct cc_unit *u = &s->db.units[i];
	for (size_t k = 0; k < u->ndeps; k++) {
		int64_t t = mtime_ns(u->deps[k]);
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
	int edited = j->hash != u->hash || cc_hash_inputs(u) != j->hash;
	if (j->status != 0 || cc_read_deps(u, j->dep) < 0) {
		rw_say("%s does not preprocess as it is (%s); it is watched all the same, and its "
		       "headers are known once it compiles", rw_basename(u->src), j->log);
		u->hash = 0;
		return;
	}
	for (size_t i = 0; i < u->ndeps; i++)
		watch_dir_of(s, u->deps[i]);
	if (!edited)
		u->hash = compiled_hash(u, j);
	check_headers(s, j->unit);
}

static void reap_jobs(struct session *s)
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

/* --- what the program has ------------------------------------------------ */

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
static void forget_base(struct session *s, char *path)
{
	char dir[sizeof s->cache + 8];
	snprintf(dir, sizeof dir, "%s/base/", s->cache);
	if (path && !strncmp(path, dir, strlen(dir)) && !is_used(s, path))
		unlink(path);
	free(path);
}

static void drop_landed(struct session *s, size_t k)
{
	struct landed l = s->landed[k];
	memmove(&s->landed[k], &s->landed[k + 1], (s->nlanded - k - 1) * sizeof l);
	s->nlanded--;
	for (size_t i = 0; i < l.n; i++)
		forget_base(s, l.before[i]);
	free(l.units);
	free(l.before);
	free(l.was_patched);
}

/* A patch of these units went in (or may have): note it with their
 * baselines before it (from_orig: the ones the program started with). */
static void note_landed(struct session *s, const size_t *units, size_t n,
			const struct patch_result *res, const char *files, int from_orig, uint32_t gen)
{
	if (s->nlanded == KEEP_LANDED)
		drop_landed(s, 0);
	struct landed *l = &s->landed[s->nlanded++];
	l->version = res->version;
	l->gen = gen;
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

static struct landed *find_landed(struct session *s, int version)
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
static void leave_out(struct session *s, const struct landed *l)
{
	for (size_t k = 0; k < l->n; k++) {
		size_t i = l->units[k];
		char *old = s->db.units[i].base;
		s->db.units[i].base = dup_or_null(l->before[k]);
		forget_base(s, old);
		s->db.units[i].hash = 0;
		s->u[i].patched = l->was_patched[k];
		s->u[i].lost = 0;
	}
}

/* --- patching -------------------------------------------------------------- */

/* One patch's objects, their baselines and the diff of them (set.c). */
struct diff_ctx {
	size_t n;
	char **paths;			/* new objects */
	const char **bases;		/* their baselines, NULL: none */
	const char **names;		/* source file of each, for messages */
	struct diff_set set;
};

static void diff_ctx_init(struct diff_ctx *d, size_t n)
{
	memset(d, 0, sizeof *d);
	d->n = n;
	d->paths = rw_calloc(n ? n : 1, sizeof *d->paths);
	d->bases = rw_calloc(n ? n : 1, sizeof *d->bases);
	d->names = rw_calloc(n ? n : 1, sizeof *d->names);
}

static void diff_ctx_free(struct diff_ctx *d)
{
	diff_set_free(&d->set);
	free(d->paths);
	free(d->bases);
	free(d->names);
}

/* Diff the objects, once: what changed goes to the linker (filter); data
 * whose initial value changed keeps its running value: say so. Returns how
 * many functions and global constants changed: none, no patch to make. */
static size_t count_changes(struct diff_ctx *d)
{
	size_t n = diff_set_make(&d->set, d->paths, d->bases, d->n);
	for (size_t i = 0; i < d->set.n; i++)
		for (size_t k = 0; k < d->set.v[i].ninits; k++)
			rw_say("%s: the initial value of %s changed: the running program keeps its "
			       "current value", rw_basename(d->names[i]), rw_demangle(d->set.v[i].inits[k]));
	return n;
}

static double ms(uint64_t ns)
{
	return (double)ns / 1e6;
}

static void list_names(struct session *s, const size_t *units, size_t n, char *out, size_t cap)
{
	size_t len = 0;
	out[0] = 0;
	for (size_t i = 0; i < n && len < cap - 32; i++)
		len += (size_t)snprintf(out + len, cap - len, "%s%s", len ? ", " : "",
					rw_basename(s->db.units[units[i]].src));
}

static void list_files(struct session *s, char *out, size_t cap)
{
	size_t *units = rw_calloc(s->db.n ? s->db.n : 1, sizeof *units), n = 0;
	for (size_t i = 0; i < s->db.n; i++)
		if (s->u[i].in_batch)
			units[n++] = i;
	list_names(s, units, n, out, cap);
	free(units);
}

/* Ended (not reaped yet): a patch that failed now may have failed for it. */
static int child_ended(struct session *s)
{
	struct pollfd p = {s->pidfd, POLLIN, 0};
	return s->pidfd >= 0 && poll(&p, 1, 0) > 0;
}

/* The new objects are the baselines; each in a file of its own, for the
 * patches noted (landed[].before) keep the ones before. */
static void adopt_batch(struct session *s, struct job **jobs, size_t n)
{
	s->seq++;
	for (size_t i = 0; i < n; i++) {
		struct cc_unit *u = &s->db.units[jobs[i]->unit];
		char base[PATH_MAX + 32];
		snprintf(base, sizeof base, "%s/base/%zu-%u-%s.o", s->cache, jobs[i]->unit, s->seq,
			 rw_basename(u->src));
		if (rename(jobs[i]->obj, base) == 0) {
			char *old = u->base;
			u->base = rw_strdup(base);
			forget_base(s, old);
			s->u[jobs[i]->unit].patched = 1;
		}
		if (!u->object_only) {
			cc_read_deps(u, u->depfile ? u->depfile : jobs[i]->dep);
			for (size_t k = 0; k < u->ndeps; k++)
				watch_dir_of(s, u->deps[k]);
		}
		/* Not the inputs now: a save that came during the patch is
		 * still to compile (start_batch). */
		u->hash = compiled_hash(u, jobs[i]);
	}
}

static int patch_first(struct session *s, char **paths, size_t n, const struct patch_filter *f,
		       struct patch_result *res, int *first);
static void patch_others(struct session *s, char **paths, size_t n, const struct patch_filter *f,
			 struct patch_result *all);
static void missed(struct session *s, struct proc *p, const struct patch_result *r);
static void settle(struct session *s, struct patch_result *all);

static void patch_batch(struct session *s, struct job **jobs, size_t n, uint64_t compile_ns)
{
	struct diff_ctx d;
	char files[512];
	size_t *units = rw_calloc(n ? n : 1, sizeof *units);
	uint64_t t0 = rw_now_ns();
	for (size_t i = 0; i < n; i++)
		units[i] = jobs[i]->unit;
	list_names(s, units, n, files, sizeof files);
	diff_ctx_init(&d, n);
	for (size_t i = 0; i < n; i++) {
		d.paths[i] = jobs[i]->obj;
		d.bases[i] = s->db.units[jobs[i]->unit].base;
		d.names[i] = s->db.units[jobs[i]->unit].src;
	}
	size_t nchanged = count_changes(&d);
	uint64_t diff_ns = rw_now_ns() - t0;
	int was_behind = 0;
	for (size_t i = 0; i < n; i++)
		was_behind |= s->u[units[i]].behind;
	if (!nchanged) {
		/* After a save that failed: saved back to the code that runs. */
		if (was_behind)
			rw_say("%s: the program runs this code already", files);
		else
			rw_say("%s: no code changed", files);
		for (size_t i = 0; i < n; i++)
			s->u[units[i]].behind = 0;
		adopt_batch(s, jobs, n);
		diff_ctx_free(&d);
		free(units);
		return;
	}
	struct patch_filter filter = {&d.set, s->db.archives, s->db.narchives, d.names,
				      s->gen + 1, s->images};
	struct patch_result res = {0}, before = {0};
	int first = 0;
	/* Every process on the patch before this one (one that exec'd the
	 * program again has none), those that did not answer in the last
	 * batch asked again; then the first process (patch_first). */
	s->batch++;
	settle(s, &before);
	int rc = patch_first(s, d.paths, n, &filter, &res, &first);
	uint64_t patched = rw_now_ns();
	if (rc == 0) {
		struct patch_result all = res;
		struct proc *p = procs_find(&s->procs, first);
		s->gen++;
		if (p && res.in_doubt)
			missed(s, p, &res);
		else if (p)
			p->gen = s->gen;
		note_landed(s, units, n, &res, files, 0, s->gen);
		for (size_t i = 0; i < n; i++)
			s->u[units[i]].behind = 0;
		patch_others(s, d.paths, n, &filter, &all);
		adopt_batch(s, jobs, n);
		settle(s, &all);
		const struct msg_apply_times *t = &all.times;
		diff_ns += res.check_ns;
		/* Everything from the end of the debounce on: the stages said,
		 * and what lies between them (connecting, reading the program,
		 * the other processes). */
		uint64_t total = rw_now_ns() - s->batch_start;
		char procs[64] = "";
		int have = procs_count(&s->procs, s->gen);
		if (s->procs.n > 1)
			snprintf(procs, sizeof procs, have == (int)s->procs.n ? " in %d processes" :
				 " in %d of %zu processes", have, s->procs.n);
		/* None: the first one's answer was lost, and it was said. */
		if (have)
			rw_say("patched %s (%s)%s in %.0f ms — compile %.0f, diff %.1f, link %.1f, "
			       "apply %.1f", res.nchanged ? res.names : "new code only", files, procs,
			       ms(total), ms(compile_ns), ms(diff_ns), ms(all.link_ns), ms(t->total_ns));
		if (have)
			running_warn(&all, patched);
	} else {
		rw_say_error("%s: %s", files, rw_error());
		/* Its answer lost with the program: whether it is in, the agent's
		 * crash note tells (restart). */
		if (res.in_doubt && child_ended(s))
			note_landed(s, units, n, &res, files, 0, 0);
		for (size_t i = 0; i < n && child_ended(s); i++)
			s->u[units[i]].lost = 1;
		for (size_t i = 0; i < n; i++)
			s->u[units[i]].behind = 1;
	}
	diff_ctx_free(&d);
	free(units);
}

/* --- every process ------------------------------------------------------- */

static void add_times(struct patch_result *all, const struct patch_result *r)
{
	all->link_ns += r->link_ns;
	all->times.total_ns += r->times.total_ns;
	for (size_t i = 0; i < r->nrun && all->nrun < RW_MAX_RUNNING; i++)
		all->run[all->nrun++] = r->run[i];
}

/* A patch a process did not take: said, with why; it keeps the code it
 * had, and the session tries again with the next patch. */
static void say_missed(struct session *s, struct proc *p, const char *why)
{
	p->failed = s->gen;
	rw_say_error("process %d: %s; it keeps running the previous code", p->pid, why);
}

/* A process that runs did not take the patch (rw_error() says why). One
 * that did not answer in time is not asked again in this batch. One whose
 * answer to APPLY was lost may have it, or not: it is asked which patch it
 * has (HELLO's gen) before anything is patched in it again. */
static void missed(struct session *s, struct proc *p, const struct patch_result *r)
{
	if (r->no_answer)
		p->silent = s->batch;
	if (!r->in_doubt) {
		say_missed(s, p, rw_error());
		return;
	}
	p->gen = PROC_GEN_UNKNOWN;
	rw_say_error("process %d: %s; rewire asks it again before the next patch", p->pid,
		     rw_error());
}

/* The first process to take a batch's patch: the one rewire started or,
 * while processes do not answer in time, the next that has every patch
 * before this one. A refusal there (a symbol missing, a type changed)
 * holds for every process. 0: it took the patch, or may have (its answer
 * was lost, res->in_doubt, and it runs): its pid in *first. */
static int patch_first(struct session *s, char **paths, size_t n, const struct patch_filter *f,
		       struct patch_result *res, int *first)
{
	for (size_t i = 0; i < s->procs.n; i++) {
		struct proc *p = &s->procs.v[i];
		if (p->silent == s->batch || (i && p->gen != s->gen))
			continue;
		int rc = rw_patch(p->pid, paths, (int)n, f, res);
		int runs = i ? procs_has_agent(p->pid) : !child_ended(s);
		if (rc == 0 || (res->in_doubt && runs)) {
			*first = p->pid;
			return 0;
		}
		if (i && !runs && !res->in_doubt) {
			procs_forget(&s->procs, p->pid, 1);	/* ended, or exec'd */
			i--;	/* the last one moved here */
			continue;
		}
		/* Refused; or it ended during the patch: did the new code crash? */
		if (!res->no_answer || res->in_doubt)
			return -1;
		p->silent = s->batch;
		say_missed(s, p, rw_error());
	}
	return rw_fail("no process of the program answered; nothing was applied");
}

/* The others that had every patch but this one take it as the first did. */
static void patch_others(struct session *s, char **paths, size_t n, const struct patch_filter *f,
			 struct patch_result *all)
{
	for (size_t i = s->procs.n; i-- > 1;) {
		struct proc *p = &s->procs.v[i];
		struct patch_result r;
		if (p->gen != s->gen - 1 || p->silent == s->batch)
			continue;	/* asked and brought up to date by settle(), or silent */
		if (rw_patch(p->pid, paths, (int)n, f, &r) == 0) {
			p->gen = s->gen;
			add_times(all, &r);
		} else if (!procs_has_agent(p->pid)) {
			procs_forget(&s->procs, p->pid, 1);	/* ended, or exec'd */
		} else {
			missed(s, p, &r);
		}
	}
}

/* The units patched since session patch gen, each with the baseline a
 * process that has gen runs: the one before the first patch of it after
 * gen (landed[]), or for gen 0, the one the program started with. The
 * number of units, or -1 when rewire no longer keeps those patches. */
static long units_since(struct session *s, uint32_t gen, size_t *units, const char **from)
{
	size_t n = 0, k = 0;
	while (k < s->nlanded && s->landed[k].gen <= gen)
		k++;
	if (k == s->nlanded || s->landed[k].gen != gen + 1) {
		if (gen != 0)
			return -1;
		for (size_t i = 0; i < s->db.n; i++)
			if (s->u[i].patched && s->u[i].orig)
				units[n] = i, from[n++] = s->u[i].orig;
		return (long)n;
	}
	for (; k < s->nlanded; k++)
		for (size_t j = 0; j < s->landed[k].n; j++) {
			size_t u = s->landed[k].units[j], seen = 0;
			while (seen < n && units[seen] != u)
				seen++;
			if (s->landed[k].gen && seen == n)
				units[n] = u, from[n++] = s->landed[k].before[j];
		}
	return (long)n;
}

/* Patch p from the session patch it has to the newest, in one patch. */
static int catch_up(struct session *s, struct proc *p, struct patch_result *all)
{
	size_t *units = rw_calloc(s->db.n + 1, sizeof *units);
	const char **from = rw_calloc(s->db.n + 1, sizeof *from);
	long n = units_since(s, p->gen, units, from);
	int rc = -1;
	if (n < 0) {
		say_missed(s, p, "it lacks patches older than the ones rewire keeps");
		goto out;
	}
	struct diff_ctx d;
	diff_ctx_init(&d, (size_t)n);
	for (long k = 0; k < n; k++) {
		d.paths[k] = s->db.units[units[k]].base;
		d.bases[k] = from[k];
		d.names[k] = s->db.units[units[k]].src;
	}
	struct patch_filter f = {&d.set, s->db.archives, s->db.narchives, d.names, s->gen,
				 s->images};
	struct patch_result r;
	if (n == 0 || !count_changes(&d)) {
		p->gen = s->gen;	/* nothing it runs differs */
		rc = 0;
	} else if (rw_patch(p->pid, d.paths, (int)n, &f, &r) == 0) {
		p->gen = s->gen;
		add_times(all, &r);
		rc = 0;
	} else if (!procs_has_agent(p->pid)) {
		procs_forget(&s->procs, p->pid, 1);
	} else {
		missed(s, p, &r);
	}
	diff_ctx_free(&d);
out:
	free(units);
	free(from);
	return rc;
}

/* Every process of the program up to the newest patch: the ones that
 * appeared are asked which patch they have (a child has its parent's),
 * the ones behind are brought up to date. A child forked before a patch
 * reached its parent is seen here, right after it (agent.c): this runs
 * before "patched" is said, until no process appears. A process that did
 * not answer in time is left alone until the next batch. */
static void settle(struct session *s, struct patch_result *all)
{
	for (int round = 0; round < 1000; round++) {
		int changed = 0;
		read_events(s);
		s->procs_new = 0;
		for (size_t i = s->procs.n; i-- > 0;) {
			struct proc *p = &s->procs.v[i];
			if (i && kill(p->pid, 0) < 0 && errno == ESRCH) {
				procs_forget(&s->procs, p->pid, 1);
				continue;
			}
			if (p->silent == s->batch)
				continue;
			if (p->gen == PROC_GEN_UNKNOWN) {
				uint32_t gen;
				int held;
				if (rw_peek(p->pid, &gen, &held) == 0) {
					p->gen = gen;
					p->released = !held;	/* a forked one runs already */
				} else if (rw_no_answer()) {
					p->silent = s->batch;
					say_missed(s, p, rw_error());
					continue;
				} else if (i == 0) {
					continue;	/* starting (a patch waits for its agent) */
				} else if (!procs_has_agent(p->pid)) {
					procs_forget(&s->procs, p->pid, 1);
					continue;
				} else if (p->failed != PROC_GEN_UNKNOWN) {
					p->failed = PROC_GEN_UNKNOWN;
					rw_say_error("process %d of the program cannot be patched: %s", p->pid,
						     rw_error());
					continue;
				}
			}
			if (p->gen < s->gen && p->failed != s->gen && catch_up(s, p, all) == 0)
				changed = 1;
			/* Up to date, or told why not: an exec'd process may run on. */
			if (!p->released && p->silent != s->batch &&
			    (p->gen >= s->gen || p->failed == s->gen)) {
				p->released = 1;
				if (rw_release(p->pid) < 0 && rw_no_answer()) {
					p->silent = s->batch;
					rw_say_error("process %d: %s", p->pid, rw_error());
				}
			}
		}
		if (!changed && !s->procs_new)
			return;
	}
}

/* Units whose debounce ended and whose inputs changed: compile them. */
static void start_batch(struct session *s)
{
	uint64_t now = rw_now_ns();
	int any = 0;
	for (size_t i = 0; i < s->db.n; i++)
		if (s->u[i].in_batch)
			return;		/* one batch at a time */
	for (size_t i = 0; i < s->db.n; i++) {
		if (!s->u[i].due || s->u[i].due > now)
			continue;
		struct cc_unit *u = &s->db.units[i];
		if (!s->u[i].forced && cc_hash_inputs(u) == u->hash) {
			s->u[i].due = 0;	/* saved without a change */
			if (s->u[i].behind)	/* back to what runs, after a failed save */
				rw_say("%s: the program runs this code already", rw_basename(u->src));
			s->u[i].behind = 0;
			continue;
		}
		s->u[i].due = s->u[i].forced = 0;
		s->u[i].in_batch = 1;
		s->u[i].started = 0;
		any = 1;
	}
	if (any)
		s->batch_start = now;
}

static int rust_job_running(struct session *s)
{
	for (size_t i = 0; i < s->njobs; i++)
		if (s->jobs[i].running && s->db.units[s->jobs[i].unit].rust)
			return 1;
	return 0;
}

/* Start the batch's compiles as compilers are free; crates one after the
 * other, in order: each reads what the one before it wrote. */
static void start_pending(struct session *s)
{
	for (size_t i = 0; i < s->db.n; i++) {
		if (!s->u[i].in_batch || s->u[i].started)
			continue;
		if (s->db.units[i].rust && rust_job_running(s))
			return;
		if (start_job(s, i, JOB_PATCH) < 0)
			return;
		s->u[i].started = 1;
	}
}

static void finish_batch(struct session *s)
{
	struct job **done;
	size_t n = 0;
	int failed = 0;
	for (size_t i = 0; i < s->db.n; i++)
		if (s->u[i].in_batch && !s->u[i].started)
			return;
	for (size_t i = 0; i < s->njobs; i++)
		if (s->jobs[i].kind == JOB_PATCH && s->u[s->jobs[i].unit].in_batch && s->jobs[i].running)
			return;
	done = rw_calloc(s->njobs, sizeof *done);
	for (size_t i = 0; i < s->njobs; i++) {
		struct job *j = &s->jobs[i];
		if (j->kind != JOB_PATCH || !s->u[j->unit].in_batch)
			continue;
		done[n++] = j;
		failed |= j->status != 0;
	}
	if (!n) {
		free(done);
		return;
	}
	uint64_t compile_ns = rw_now_ns() - s->batch_start;
	char files[512];
	list_files(s, files, sizeof files);
	if (failed) {
		for (size_t i = 0; i < n; i++) {
			if (done[i]->status != 0)
				show_log(done[i]->log);
			s->u[done[i]->unit].behind = 1;
		}
		rw_say_error("%s: compile failed; the program keeps running the previous code", files);
	} else {
		patch_batch(s, done, n, compile_ns);
	}
	for (size_t i = 0; i < n; i++) {
		s->u[done[i]->unit].in_batch = 0;
		done[i]->kind = JOB_BASE;	/* consumed */
		done[i]->unit = 0;
	}
	free(done);
}

/* --- the loop -------------------------------------------------------------- */

static void start_baselines(struct session *s)
{
	while (s->qnext < s->nqueue) {
		size_t i = s->base_queue[s->qnext];
		if (start_job(s, i, s->u[i].deps_only ? JOB_DEPS : JOB_BASE) < 0)
			return;
		s->qnext++;
	}
}

static int next_timeout(struct session *s)
{
	uint64_t now = rw_now_ns(), soonest = UINT64_MAX;
	int busy = 0;
	for (size_t i = 0; i < s->njobs; i++)
		busy |= s->jobs[i].running;
	for (size_t i = 0; i < s->db.n; i++)
		if (s->u[i].due && s->u[i].due < soonest)
			soonest = s->u[i].due;
	if (busy)
		return 20;	/* the compilers' pidfds wake us; this is a safety net */
	if (soonest == UINT64_MAX)
		return s->pidfd >= 0 ? -1 : 100;
	return soonest <= now ? 0 : (int)((soonest - now) / 1000000) + 1;
}

/* An attached program is not rewire's child: its pidfd says it ended, and
 * its status goes to its own parent. */
static int child_exited(struct session *s, int *status)
{
	if (s->detach_fd < 0)
		return waitpid(s->child, status, WNOHANG) == s->child;
	*status = 0;
	return s->pidfd >= 0 ? child_ended(s) : kill(s->child, 0) < 0 && errno == ESRCH;
}

static int is_job(struct session *s, pid_t pid)
{
	for (size_t i = 0; i < s->njobs; i++)
		if (s->jobs[i].running && s->jobs[i].pid == pid)
			return 1;
	return 0;
}

/* Processes of the program whose parent ended are rewire's (procs.c):
 * reap them when they end. The program and the compilers are reaped by
 * their own. */
static void reap_orphans(struct session *s)
{
	for (;;) {
		siginfo_t si;
		memset(&si, 0, sizeof si);
		if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) < 0 || si.si_pid <= 0 ||
		    si.si_pid == s->child || is_job(s, si.si_pid))
			return;
		waitpid(si.si_pid, NULL, WNOHANG);
	}
}

/* --- --restart ----------------------------------------------------------- */

/* The program runs as built again: the units' next saves are diffed
 * against what it started with, and patch all their changes. */
static void reset_to_orig(struct session *s)
{
	for (size_t i = 0; i < s->db.n; i++) {
		if (!s->u[i].patched || !s->u[i].orig)
			continue;
		char *old = s->db.units[i].base;
		s->db.units[i].base = rw_strdup(s->u[i].orig);
		forget_base(s, old);
		s->db.units[i].hash = 0;
		s->u[i].patched = 0;
	}
}

/* Patch the restarted program with what was patched into the one that
 * crashed: each patched unit's newest object against the one it started
 * with. 0, or -1 when the restarted program cannot take them (rw_error()
 * says why). */
static int reapply(struct session *s)
{
	struct diff_ctx d;
	size_t n = 0, *units;
	char files[512];
	for (size_t i = 0; i < s->db.n; i++)
		n += s->u[i].patched && s->u[i].orig;
	if (!n)
		return 0;
	diff_ctx_init(&d, n);
	units = rw_calloc(n, sizeof *units);
	for (size_t i = 0, k = 0; i < s->db.n; i++) {
		if (!s->u[i].patched || !s->u[i].orig)
			continue;
		units[k] = i;
		d.paths[k] = s->db.units[i].base;
		d.bases[k] = s->u[i].orig;
		d.names[k] = s->db.units[i].src;
		k++;
	}
	list_names(s, units, n, files, sizeof files);
	int rc = 0;
	if (count_changes(&d)) {
		struct patch_filter filter = {&d.set, s->db.archives, s->db.narchives, d.names,
					      s->gen, s->images};
		struct patch_result res;
		rc = rw_patch(s->child, d.paths, (int)n, &filter, &res);
		if (rc == 0)
			rw_say("patched the restarted program: %s", res.nchanged ? res.names : "new code only");
		if (rc == 0 || res.in_doubt)
			note_landed(s, units, n, &res, files, 1, 0);
		/* rw_patch's exit codes are positive: any of them is a failure,
		 * unless the patch may be in (kept as landed, as above). */
		rc = rc == 0 || res.in_doubt ? 0 : -1;
	}
	diff_ctx_free(&d);
	free(units);
	return rc;
}

static int is_crash(int sig)
{
	return sig == SIGSEGV || sig == SIGBUS || sig == SIGILL || sig == SIGFPE || sig == SIGABRT;
}

/* Saves whose patch failed as the program ended: for the new one. */
static void retry_lost(struct session *s)
{
	for (size_t i = 0; i < s->db.n; i++)
		if (s->u[i].lost)
			s->u[i].due = rw_now_ns(), s->u[i].lost = 0;
}

/* What the new process starts with: all the patches, but the one the
 * agent blamed for the crash (bad); as built when the blamed one is no
 * longer known, or when it crashed again right after a restart in code
 * that is not a patch's. */
static void choose_patches(struct session *s, struct landed *bad, int blamed, int again)
{
	if (bad)
		leave_out(s, bad);
	else if (blamed || again)
		reset_to_orig(s);
	while (s->nlanded)
		drop_landed(s, s->nlanded - 1);
	retry_lost(s);
	if (reapply(s) < 0) {
		rw_say_error("cannot patch the restarted program: %s; it runs as built", rw_error());
		reset_to_orig(s);
	}
}

/* The program died of a crash: start it again (see choose_patches).
 * 1 when it runs. */
static int restart(struct session *s, int status)
{
	if (!s->relaunch || !WIFSIGNALED(status) || !is_crash(WTERMSIG(status)))
		return 0;
	int sig = WTERMSIG(status), blamed = rw_crash_blame(s->child, sig);
	struct landed *bad = find_landed(s, blamed);
	int again = s->restarted_at && rw_now_ns() - s->restarted_at < 5000000000ull;
	if (s->restarts == 20) {
		rw_say_error("the program crashed (%s) 20 times: not restarting it again", strsignal(sig));
		return 0;
	}
	pid_t pid = s->relaunch(s->relaunch_ctx);
	if (pid < 0)
		return 0;
	if (bad)
		rw_say("the program crashed (%s) in its patch of %s; restarted it (pid %d) without "
		       "that patch", strsignal(sig), bad->what, (int)pid);
	else
		rw_say("the program crashed (%s); restarted it (pid %d)%s", strsignal(sig), (int)pid,
		       blamed ? " as built: it crashed in a patch older than the ones rewire keeps" :
		       again ? " as built: it crashed again right after the last restart" : "");
	close(s->pidfd);
	s->child = pid;
	procs_restart(&s->procs, pid);
	s->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	s->restarts++;
	s->restarted_at = rw_now_ns();
	choose_patches(s, bad, blamed, again);
	/* It waits in its agent's constructor (run.c's relaunch): patched or
	 * not (said), it may run now. With no patch to take, its agent may
	 * not listen yet. */
	int fd = rw_connect(pid, 2000);
	if (fd >= 0)
		close(fd);
	rw_release(pid);
	s->procs.v[0].released = 1;
	return 1;
}

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
	if (copy_file(u->out, path) < 0)
		return -1;
	u->base = rw_strdup(path);
	s->u[i].orig = rw_strdup(path);
	return 0;
}

/* The headers of a unit whose object is current, without a compiler: the
 * depfile the build wrote with that object, else the #include lines of
 * its files (includes.c). 0, or -1 when neither tells. */
static int known_headers(struct session *s, size_t i, struct inc_cache *inc,
			 struct rw_table *hashes)
{
	struct cc_unit *u = &s->db.units[i];
	if (cc_read_build_deps(u) < 0 && inc_unit_deps(inc, u) < 0)
		return -1;
	for (size_t k = 0; k < u->ndeps; k++)
		watch_dir_of(s, u->deps[k]);
	u->hash = cc_hash_inputs_memo(u, hashes);
	check_headers(s, i);
	return 0;
}

/* No compiler runs at start for a unit whose object is current: that
 * object is the baseline, and its headers come from the depfile the
 * build wrote with it, else from its #include lines, else (an #include
 * of a macro) from a preprocessor pass in the background. The others are
 * compiled in the background for their baselines. */
static void setup_baselines(struct session *s, const char *exe)
{
	struct inc_cache *inc = inc_new();
	/* The units share their headers: each is read once. A save from now
	 * on is seen (the directories are watched before the hash). */
	struct rw_table hashes = {0};
	int64_t exe_time = mtime_ns(exe);
	s->exe_time = exe_time;
	s->start_wall = wall_ns();
	s->base_queue = rw_calloc(s->db.n, sizeof *s->base_queue);
	for (size_t i = 0; i < s->db.n; i++) {
		struct cc_unit *u = &s->db.units[i];
		int64_t obj = mtime_ns(u->out), src = mtime_ns(u->src);
		watch_dir_of(s, u->src);
		for (size_t k = 0; k < u->ndeps; k++)
			watch_dir_of(s, u->deps[k]);
		u->hash = cc_hash_inputs_memo(u, &hashes);
		if (u->rust)
			continue;	/* its baseline is the build's own link (cargo.c) */
		if (u->object_only) {
			/* The object as it is now is the code that runs. */
			char base[2048];
			snprintf(base, sizeof base, "%s/base/%zu-%s.o", s->cache, i, rw_basename(u->src));
			if (copy_file(u->src, base) == 0)
				u->base = rw_strdup(base);
			continue;
		}
		note_stale_source(u, obj, src, exe_time);
		int current = obj >= 0 && obj <= exe_time;
		if (current && keep_build_object(s, i) < 0)
			u->base = rw_strdup(u->out);
		if (current && src <= obj && known_headers(s, i, inc, &hashes) == 0)
			continue;
		s->u[i].deps_only = current && src <= obj;
		s->base_queue[s->nqueue++] = i;
	}
	inc_free(inc);
	rw_table_free(&hashes, free);
}

static int make_cache(struct session *s)
{
	char dir[256], sub[PATH_MAX + 8];
	if (rw_socket_dir(dir, sizeof dir) < 0)
		return -1;
	snprintf(s->cache, sizeof s->cache, "%s/cache-%d", dir, (int)s->child);
	mkdir(s->cache, 0700);
	snprintf(sub, sizeof sub, "%s/base", s->cache);
	mkdir(sub, 0700);
	snprintf(sub, sizeof sub, "%s/new", s->cache);
	mkdir(sub, 0700);
	snprintf(sub, sizeof sub, "%s/orig", s->cache);
	mkdir(sub, 0700);
	return 0;
}

static void remove_cache(struct session *s)
{
	char cmd[PATH_MAX + 32];
	if (!s->cache[0] || strchr(s->cache, '\''))
		return;
	snprintf(cmd, sizeof cmd, "rm -rf '%s' 2>/dev/null", s->cache);
	if (system(cmd)) {}
}

/* Run the session until the program exits (or, attached, until rewire is
 * told to detach); see driver.h. */
int session_run(pid_t child, struct cc_db *db, const char *exe, pid_t (*relaunch)(void *),
		void *ctx, int detach_fd)
{
	struct session s = {.child = child, .db = *db, .pidfd = -1, .relaunch = relaunch,
			    .relaunch_ctx = ctx, .detach_fd = detach_fd, .batch = 1};
	int status = 0;
	s.ino = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	s.pidfd = (int)syscall(SYS_pidfd_open, child, 0);
	s.u = rw_calloc(db->n ? db->n : 1, sizeof *s.u);
	s.njobs = db->n + 2 * MAX_JOBS;
	s.jobs = rw_calloc(s.njobs, sizeof *s.jobs);
	s.color = isatty(2) && !getenv("NO_COLOR");
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	s.parallel = ncpu < 1 ? 1 : ncpu > MAX_JOBS ? MAX_JOBS : (int)ncpu;
	if (s.ino < 0 || make_cache(&s) < 0 || procs_init(&s.procs, child, s.ino) < 0) {
		rw_say_error("cannot watch sources: %s", s.ino < 0 ? strerror(errno) : rw_error());
		if (detach_fd < 0)
			waitpid(child, &status, 0);
		return status;
	}
	setup_baselines(&s, exe);
	s.images = exe_cache_new();
	for (size_t i = 0; i < db->n; i++)
		record_orig(&s, i);
	rw_say("watching %zu %s%s of %s (pid %d)", db->n,
	       db->n && db->units[0].object_only ? "object" : "source", db->n == 1 ? "" : "s", exe,
	       (int)child);
	for (;;) {
		struct pollfd fds[3 + 2 * MAX_JOBS] = {{s.ino, POLLIN, 0}, {s.pidfd, POLLIN, 0},
						       {detach_fd, POLLIN, 0}};
		nfds_t nfds = 3;
		start_baselines(&s);
		for (size_t i = 0; i < s.njobs && nfds < 3 + 2 * MAX_JOBS; i++)
			if (s.jobs[i].running && s.jobs[i].pidfd >= 0)
				fds[nfds++] = (struct pollfd){s.jobs[i].pidfd, POLLIN, 0};
		poll(fds, nfds, next_timeout(&s));
		if (child_exited(&s, &status)) {
			if (restart(&s, status))
				continue;
			break;
		}
		if (fds[2].revents) {
			status = SESSION_DETACHED;
			break;
		}
		if (fds[0].revents)
			read_events(&s);
		if (s.procs_new) {
			struct patch_result all = {0};
			settle(&s, &all);
		}
		reap_jobs(&s);
		reap_orphans(&s);
		start_pending(&s);
		finish_batch(&s);
		start_batch(&s);
		start_pending(&s);
		finish_batch(&s);	/* objects to patch from need no compiler */
	}
	for (size_t i = 0; i < s.njobs; i++)
		if (s.jobs[i].running && s.jobs[i].pid > 0)
			kill(-s.jobs[i].pid, SIGKILL), waitpid(s.jobs[i].pid, NULL, 0);
	free(s.jobs);
	free(s.base_queue);
	for (size_t i = 0; i < db->n; i++)
		free(s.u[i].orig);
	free(s.u);
	while (s.nlanded)
		drop_landed(&s, s.nlanded - 1);
	free(s.procs.v);
	exe_cache_free(s.images);
	remove_cache(&s);
	*db = s.db;
	return status;
}
