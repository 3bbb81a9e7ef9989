/* --restart: the program crashed (or ended) and starts again. The new
 * process gets every patch but the one the agent blamed for the crash;
 * when it cannot take them, it runs as built, and the session's baselines
 * follow what runs. */
#define _GNU_SOURCE
#include "session.h"

/* The program runs as built again: the units' next saves are diffed
 * against what it started with, and patch all their changes. */
static void reset_to_orig(struct session *s)
{
	for (size_t i = 0; i < s->db.n; i++) {
		if (!s->u[i].patched || !s->u[i].orig)
			continue;
		char *old = s->db.units[i].base;
		s->db.units[i].base = rw_strdup(s->u[i].orig);
		session_forget_base(s, old);
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
	session_diff_ctx_init(&d, n);
	units = rw_calloc(n, sizeof *units);
	for (size_t i = 0, k = 0; i < s->db.n; i++) {
		if (!s->u[i].patched || !s->u[i].orig)
			continue;
		units[k] = i;
		d.paths[k] = s->db.units[i].base;
		d.bases[k] = s->u[i].orig;
		session_diff_ctx_name(s, &d, k, i);
		k++;
	}
	session_list_names(s, units, n, files, sizeof files);
	int rc = 0;
	if (session_count_changes(&d)) {
		struct patch_filter filter = {&d.set, s->db.archives, s->db.narchives, d.names,
					      s->gen, s->images, d.crates, d.ncrates, NULL};
		struct patch_result res;
		rc = patch_run(s->child, d.paths, (int)n, &filter, &res);
		if (rc == 0)
			rw_say("patched the restarted program: %s", res.nchanged ? res.names : "new code only");
		if (rc == 0 || res.in_doubt)
			session_note_landed(s, units, n, &res, files, 1, s->gen);
		/* patch_run's exit codes are positive: any of them is a failure,
		 * unless the patch may be in (kept as landed, as above). */
		rc = rc == 0 || res.in_doubt ? 0 : -1;
	}
	session_diff_ctx_free(&d);
	free(units);
	return rc;
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
		session_leave_out(s, bad);
	else if (blamed || again)
		reset_to_orig(s);
	while (s->nlanded)
		session_drop_landed(s, s->nlanded - 1);
	retry_lost(s);
	if (reapply(s) < 0) {
		rw_say_error("cannot patch the restarted program: %s; it runs as built", rw_error());
		reset_to_orig(s);
	}
}

/* The program died of a crash: start it again (see choose_patches).
 * 1 when it runs. */
int session_restart(struct session *s, int status)
{
	if (!s->relaunch || !WIFSIGNALED(status) || !rw_crash_signal(WTERMSIG(status)))
		return 0;
	int sig = WTERMSIG(status), blamed = s->blamed;
	struct landed *bad = session_find_landed(s, blamed);
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
	int fd = chan_connect(pid, 2000);
	if (fd >= 0)
		close(fd);
	chan_release(pid);
	s->procs.v[0].released = 1;
	return 1;
}
