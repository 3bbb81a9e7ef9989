/* One batch: the units whose saves changed their inputs are compiled
 * (session_start_batch, session_start_pending), then, all compiled, diffed
 * once against their baselines and patched into the program as one patch
 * (session_finish_batch, patch_batch); the new objects become the
 * baselines (adopt_batch), and what they read is learnt (learn_inputs). */
#define _GNU_SOURCE
#include "session.h"

void session_diff_ctx_init(struct diff_ctx *d, size_t n)
{
	memset(d, 0, sizeof *d);
	d->n = n;
	d->paths = rw_calloc(n ? n : 1, sizeof *d->paths);
	d->bases = rw_calloc(n ? n : 1, sizeof *d->bases);
	d->base_objs = rw_calloc(n ? n : 1, sizeof *d->base_objs);
	d->names = rw_calloc(n ? n : 1, sizeof *d->names);
	d->crates = rw_calloc(n ? n : 1, sizeof *d->crates);
	d->pairs = rw_calloc(n ? n : 1, sizeof *d->pairs);
}

/* Object k of the patch is unit's: named by its source in messages, and
 * a crate's functions are the user's (names.c). */
void session_diff_ctx_name(struct session *s, struct diff_ctx *d, size_t k, size_t unit)
{
	const struct cc_unit *u = &s->db.units[unit];
	d->names[k] = u->src;
	const char *crate = NULL;
	for (int i = 0; u->rust && i + 1 < u->argc && !crate; i++)
		if (!strcmp(u->argv[i], "--crate-name"))
			crate = u->argv[i + 1];
	for (size_t i = 0; crate && i < d->ncrates; i++)
		if (!strcmp(d->crates[i], crate))
			return;
	if (crate)
		d->crates[d->ncrates++] = crate;
}

void session_diff_ctx_free(struct diff_ctx *d)
{
	diff_set_free(&d->set);
	free(d->paths);
	free(d->bases);
	free(d->base_objs);
	free(d->names);
	free(d->crates);
	for (size_t i = 0; i < d->n; i++)
		cgus_pair_free(&d->pairs[i]);
	free(d->pairs);
}

/* A crate's build is a directory of its codegen units (cgus.c): what is
 * diffed, and linked, is the units that changed, against the same units
 * before. An error leaves the directory: unreadable, it counts as
 * changed and the link says why. */
static void crate_changes(struct diff_ctx *d)
{
	for (size_t i = 0; i < d->n; i++) {
		struct cgus_pair *p = &d->pairs[i];
		if (!cgus_is(d->paths[i]) || !d->bases[i] || !cgus_is(d->bases[i]))
			continue;
		if (cgus_changed(d->paths[i], d->bases[i], d->paths[i], p) < 0) {
			rw_say_error("%s: %s", rw_basename(d->names[i]), rw_error());
			continue;
		}
		rw_trace("%s: %zu codegen units, diffing %s against %s", rw_basename(d->names[i]),
			 p->ncgus, p->nw, p->base);
		d->paths[i] = p->nw;
		d->bases[i] = p->base;
		d->base_objs[i] = NULL;
	}
}

/* Diff the objects, once: what changed goes to the linker (filter); data
 * whose initial value changed keeps its running value: say so. Returns how
 * many functions and global constants changed: none, no patch to make. */
size_t session_count_changes(struct diff_ctx *d)
{
	crate_changes(d);
	size_t n = diff_set_make(&d->set, d->paths, d->bases, d->base_objs, d->n);
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

void session_list_names(struct session *s, const size_t *units, size_t n, char *out, size_t cap)
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
	session_list_names(s, units, n, out, cap);
	free(units);
}

/* A batch whose compile takes long (a big unit, a crate) is said once,
 * after a second: a save is never met by silence. The result follows as
 * usual. */
#define PROGRESS_AFTER_NS 1000000000ull

void session_say_progress(struct session *s)
{
	char files[1024];
	int compiling = 0;
	if (s->batch_said || rw_now_ns() - s->batch_start < PROGRESS_AFTER_NS)
		return;
	for (size_t i = 0; i < s->njobs; i++)
		compiling |= s->jobs[i].running && s->jobs[i].kind == JOB_PATCH;
	if (!compiling)
		return;
	s->batch_said = 1;
	list_files(s, files, sizeof files);
	rw_say("compiling %s…", files);
}

/* Ended (not reaped yet): a patch that failed now may have failed for it. */
int session_child_ended(struct session *s)
{
	struct pollfd p = {s->pidfd, POLLIN, 0};
	return s->pidfd >= 0 && poll(&p, 1, 0) > 0;
}

void session_forget_read(struct unit_state *u)
{
	if (u->base_read) {
		elf_object_close(u->base_read);
		free(u->base_read);
	}
	free(u->base_read_path);
	u->base_read = NULL;
	u->base_read_path = NULL;
}

/* The baseline of unit i as read already, while it is (NULL: read it). */
static struct elf_object *base_read(struct session *s, size_t i)
{
	struct unit_state *u = &s->u[i];
	const char *base = s->db.units[i].base;
	if (u->base_read && base && !strcmp(u->base_read_path, base))
		return u->base_read;
	session_forget_read(u);
	return NULL;
}

/* The new objects are the baselines; each in a file of its own, for the
 * patches noted (landed[].before) keep the ones before. The diff's reading
 * of each is kept for the next patch's diff (renaming moves no byte). */
static void adopt_batch(struct session *s, struct job **jobs, size_t n, struct diff_set *set)
{
	s->seq++;
	for (size_t i = 0; i < n; i++) {
		struct cc_unit *u = &s->db.units[jobs[i]->unit];
		char base[PATH_MAX + 32];
		snprintf(base, sizeof base, "%s/base/%zu-%u-%s.o", s->objs, jobs[i]->unit, s->seq,
			 rw_basename(u->src));
		if (rename(jobs[i]->obj, base) == 0) {
			char *old = u->base;
			struct unit_state *us = &s->u[jobs[i]->unit];
			u->base = rw_strdup(base);
			session_forget_base(s, old);
			us->patched = 1;
			session_forget_read(us);
			/* A crate's: the set read only the units that changed. */
			us->base_read = cgus_is(base) ? NULL : diff_set_take(set, i);
			if (us->base_read) {
				us->base_read_path = rw_strdup(base);
				us->base_read->path = us->base_read_path;
			}
		}
	}
}

/* What the compiles read: the headers their depfiles name (watched from
 * now on) and the hash of the inputs. After the patch is said: the
 * program runs the new code already, and a save that came meanwhile is
 * still to compile. */
static void learn_inputs(struct session *s, struct job **jobs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct cc_unit *u = &s->db.units[jobs[i]->unit];
		if (!u->object_only) {
			cc_read_deps(u, u->depfile ? u->depfile : jobs[i]->dep);
			for (size_t k = 0; k < u->ndeps; k++)
				session_watch_dir_of(s, u->deps[k]);
		}
		/* Not the inputs now: a save that came during the patch is
		 * still to compile (start_batch). */
		u->hash = session_compiled_hash(s, u, jobs[i]);
	}
}

static void patch_batch(struct session *s, struct job **jobs, size_t n, uint64_t compile_ns)
{
	struct diff_ctx d;
	char files[512];
	size_t *units = rw_calloc(n ? n : 1, sizeof *units);
	uint64_t t0 = rw_now_ns();
	for (size_t i = 0; i < n; i++)
		units[i] = jobs[i]->unit;
	session_list_names(s, units, n, files, sizeof files);
	session_diff_ctx_init(&d, n);
	for (size_t i = 0; i < n; i++) {
		d.paths[i] = jobs[i]->obj;
		d.bases[i] = s->db.units[jobs[i]->unit].base;
		d.base_objs[i] = base_read(s, jobs[i]->unit);
		session_diff_ctx_name(s, &d, i, jobs[i]->unit);
	}
	size_t nchanged = session_count_changes(&d);
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
		adopt_batch(s, jobs, n, &d.set);
		learn_inputs(s, jobs, n);
		session_diff_ctx_free(&d);
		free(units);
		return;
	}
	/* Threads inside replaced code are looked for after the patch line. */
	struct running_later later = {0};
	struct patch_filter filter = {&d.set, s->db.archives, s->db.narchives, d.names,
				      s->gen + 1, s->images, d.crates, d.ncrates, &later};
	struct patch_result res = {0}, before = {0};
	int first = 0;
	/* Every process on the patch before this one (one that exec'd the
	 * program again has none), those that did not answer in the last
	 * batch asked again; then the first process (patch_first). */
	s->batch++;
	session_settle(s, &before, 1);
	int rc = session_patch_first(s, d.paths, n, &filter, &res, &first);
	uint64_t patched = rw_now_ns();
	if (rc == 0) {
		struct patch_result all = res;
		struct proc *p = procs_find(&s->procs, first);
		s->gen++;
		if (p && res.in_doubt)
			session_missed(s, p, &res);
		else if (p)
			p->gen = s->gen;
		session_note_landed(s, units, n, &res, files, 0, s->gen);
		for (size_t i = 0; i < n; i++)
			s->u[units[i]].behind = 0;
		session_patch_others(s, d.paths, n, &filter, &all);
		adopt_batch(s, jobs, n, &d.set);
		session_settle(s, &all, 1);
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
		running_later_run(&later, &all);
		if (have)
			running_warn(&all, patched);
		session_said(filter.gen);
		learn_inputs(s, jobs, n);
	} else {
		rw_say_error("%s: %s", files, rw_error());
		session_said(filter.gen);
		/* Its answer lost with the program: whether it is in, the agent's
		 * crash note tells (restart). */
		if (res.in_doubt && session_child_ended(s))
			session_note_landed(s, units, n, &res, files, 0, 0);
		for (size_t i = 0; i < n && session_child_ended(s); i++)
			s->u[units[i]].lost = 1;
		for (size_t i = 0; i < n; i++)
			s->u[units[i]].behind = 1;
	}
	running_later_free(&later);
	session_diff_ctx_free(&d);
	free(units);
}

/* Units whose debounce ended and whose inputs changed: compile them. */
void session_start_batch(struct session *s)
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
		/* Its compile starts now or soon: it takes this hash for what
		 * it reads (start_job), and a save from now on is newer. */
		s->u[i].batch_hash = s->u[i].forced ? 0 : cc_hash_inputs_memo(u, &s->hashes);
		if (!s->u[i].forced && s->u[i].batch_hash == u->hash) {
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
		s->batch_start = now, s->batch_said = 0;
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
void session_start_pending(struct session *s)
{
	for (size_t i = 0; i < s->db.n; i++) {
		if (!s->u[i].in_batch || s->u[i].started)
			continue;
		if (s->db.units[i].rust && rust_job_running(s))
			return;
		int rc = session_start_job(s, i, JOB_PATCH);
		if (rc == -1)
			return;		/* a slot frees when a compiler ends */
		if (rc == -2) {
			/* Said, and the save is left behind: the batch does not
			 * wait for a compile that never starts. */
			rw_say_error("%s: %s", rw_basename(s->db.units[i].src), rw_error());
			s->u[i].in_batch = 0;
			s->u[i].behind = 1;
			continue;
		}
		s->u[i].started = 1;
	}
}

void session_finish_batch(struct session *s)
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
				session_show_log(done[i]->log, s->db.units[done[i]->unit].rust, s->color);
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
