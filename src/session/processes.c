/* Every process of the program: the first one takes a batch's patch,
 * then the others; a process that appeared (a fork, an exec) or fell
 * behind is brought up to the newest patch in one patch (catch_up), from
 * the baselines it runs (landed.c). */
#define _GNU_SOURCE
#include "session.h"

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
void session_missed(struct session *s, struct proc *p, const struct patch_result *r)
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
int session_patch_first(struct session *s, char **paths, size_t n, const struct patch_filter *f,
			struct patch_result *res, int *first)
{
	for (size_t i = 0; i < s->procs.n; i++) {
		struct proc *p = &s->procs.v[i];
		if (p->silent == s->batch || (i && p->gen != s->gen))
			continue;
		int rc = patch_run(p->pid, paths, (int)n, f, res);
		int runs = i ? procs_runs_agent(p) : !session_child_ended(s);
		rw_trace("proc %d: patch %u first: %s", p->pid, s->gen + 1,
			 rc == 0 ? "taken" : rw_error());
		if (rc == 0 || (res->in_doubt && runs)) {
			*first = p->pid;
			return 0;
		}
		if (i && !runs && !res->in_doubt) {
			procs_forget(&s->procs, p->pid);	/* ended, or exec'd */
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
void session_patch_others(struct session *s, char **paths, size_t n, const struct patch_filter *f,
			  struct patch_result *all)
{
	for (size_t i = s->procs.n; i-- > 1;) {
		struct proc *p = &s->procs.v[i];
		struct patch_result r;
		if (p->gen != s->gen - 1 || p->silent == s->batch)
			continue;	/* asked and brought up to date by session_settle(), or silent */
		int rc = patch_run(p->pid, paths, (int)n, f, &r);
		rw_trace("proc %d: patch %u: %s", p->pid, s->gen, rc == 0 ? "taken" : rw_error());
		if (rc == 0) {
			p->gen = s->gen;
			add_times(all, &r);
		} else if (!procs_runs_agent(p)) {
			procs_forget(&s->procs, p->pid);	/* ended, or exec'd */
		} else {
			session_missed(s, p, &r);
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
	int rc = -1, pid = p->pid;
	if (n < 0) {
		say_missed(s, p, "it lacks patches older than the ones rewire keeps");
		goto out;
	}
	struct diff_ctx d;
	session_diff_ctx_init(&d, (size_t)n);
	for (long k = 0; k < n; k++) {
		d.paths[k] = s->db.units[units[k]].base;
		d.bases[k] = from[k];
		session_diff_ctx_name(s, &d, (size_t)k, units[k]);
	}
	struct patch_filter f = {&d.set, s->db.archives, s->db.narchives, d.names, s->gen,
				 s->images, d.crates, d.ncrates, NULL};
	struct patch_result r;
	if (n == 0 || !session_count_changes(&d)) {
		p->gen = s->gen;	/* nothing it runs differs */
		rc = 0;
	} else if (patch_run(p->pid, d.paths, (int)n, &f, &r) == 0) {
		p->gen = s->gen;
		add_times(all, &r);
		rc = 0;
	} else if (!procs_runs_agent(p)) {
		procs_forget(&s->procs, p->pid);
	} else {
		session_missed(s, p, &r);
	}
	rw_trace("proc %d: caught up to patch %u: %s", pid, s->gen, rc == 0 ? "yes" : rw_error());
	session_diff_ctx_free(&d);
out:
	free(units);
	free(from);
	return rc;
}

/* A process that waits for rewire before it runs (exec'd: held in its
 * agent's constructor) and did not answer: said once, and asked again in
 * a moment, then less often — not only at the next patch. */
#define HELD_RETRY_NS 250000000ull
#define HELD_RETRY_MAX_NS 8000000000ull

static void held_silent(struct session *s, struct proc *p)
{
	if (!p->retry_ns)
		rw_say_error("process %d: %s; it waits for rewire before it runs: rewire asks it again",
			     p->pid, rw_error());
	p->retry_ns = p->retry_ns ? p->retry_ns * 2 : HELD_RETRY_NS;
	if (p->retry_ns > HELD_RETRY_MAX_NS)
		p->retry_ns = HELD_RETRY_MAX_NS;
	p->retry_at = rw_now_ns() + p->retry_ns;
}

/* A process that did not answer in time: not asked again in this batch. */
static void settle_silent(struct session *s, struct proc *p, int patching)
{
	int waits = !p->released && procs_held(p->pid);
	rw_trace("proc %d: no answer: %s", p->pid, rw_error());
	if (patching || !waits)
		p->silent = s->batch;
	if (waits)
		held_silent(s, p);
	else if (patching)
		say_missed(s, p, rw_error());
}

/* Ask a process that appeared (or exec'd) which patch it has. 0: known
 * now; 1: asked again soon (round again); -1: left for now, or gone. */
#define PEEK_RETRIES 20
#define PEEK_RETRY_US 10000

static int settle_peek(struct session *s, struct proc *p, size_t i, int patching)
{
	uint32_t gen;
	int held;
	rw_trace("proc %d: asked which patch it has", p->pid);
	if (chan_peek(p->pid, &gen, &held) == 0) {
		rw_trace("proc %d: has patch %u%s", p->pid, gen, held ? ", held" : "");
		p->gen = gen, p->retries = 0, p->retry_at = p->retry_ns = 0;
		p->released = !held;	/* a forked one runs already */
		return 0;
	}
	if (chan_no_answer()) {
		settle_silent(s, p, patching);
		return -1;
	}
	rw_trace("proc %d: not asked: %s", p->pid, rw_error());
	if (i == 0)
		return -1;	/* starting (a patch waits for its agent) */
	if (!procs_runs_agent(p)) {
		procs_forget(&s->procs, p->pid);
		return -1;
	}
	if (p->retries < PEEK_RETRIES) {
		/* Its agent went away while it answered: a child that exec'd
		 * the program again, whose new agent listens a moment later. */
		p->retries++;
		usleep(PEEK_RETRY_US);
		return 1;
	}
	if (p->failed != PROC_GEN_UNKNOWN) {
		p->failed = PROC_GEN_UNKNOWN;
		rw_say_error("process %d of the program cannot be patched: %s", p->pid, rw_error());
	}
	return -1;
}

/* Tell a process that waits for rewire that it may run. */
static void settle_release(struct session *s, struct proc *p, int patching)
{
	int rc = chan_release(p->pid);
	rw_trace("proc %d: told to run: %s", p->pid, rc == 0 ? "ok" : rw_error());
	p->released = rc == 0 || !chan_no_answer();
	if (p->released) {
		p->retry_at = p->retry_ns = 0;
		return;
	}
	if (patching)
		p->silent = s->batch;
	held_silent(s, p);
}

/* Every process of the program up to the newest patch: the ones that
 * appeared are asked which patch they have (a child has its parent's),
 * the ones behind are brought up to date. A child forked before a patch
 * reached its parent is seen here, right after it (agent.c): this runs
 * before "patched" is said, until no process appears. A process that did
 * not answer in time is left alone until the next batch; between patches
 * (not patching) that is not said: it missed nothing, and the next patch
 * asks it again and says so if it does not answer then. One that waits
 * for rewire before it runs is asked again in a moment (held_silent). */
void session_settle(struct session *s, struct patch_result *all, int patching)
{
	for (int round = 0; round < 1000; round++) {
		int changed = 0;
		uint64_t now = rw_now_ns();
		session_read_events(s);
		s->procs_new = 0;
		for (size_t i = s->procs.n; i-- > 0;) {
			struct proc *p = &s->procs.v[i];
			if (i && !procs_same(p)) {
				procs_forget(&s->procs, p->pid);	/* ended */
				continue;
			}
			/* Silent in this batch; between patches, a held one is
			 * asked again when its time comes. */
			if (patching || !p->retry_at ? p->silent == s->batch : p->retry_at > now)
				continue;
			if (p->gen == PROC_GEN_UNKNOWN) {
				int rc = settle_peek(s, p, i, patching);
				changed |= rc > 0;
				if (rc)
					continue;
			}
			int pid = p->pid;
			if (p->gen < s->gen && p->failed != s->gen && catch_up(s, p, all) == 0)
				changed = 1;
			if (i >= s->procs.n || s->procs.v[i].pid != pid)
				continue;	/* forgotten */
			/* Up to date, or told why not: an exec'd process may run on. */
			if (!p->released && p->silent != s->batch &&
			    (p->gen >= s->gen || p->failed == s->gen))
				settle_release(s, p, patching);
		}
		if (!changed && !s->procs_new)
			return;
	}
}
