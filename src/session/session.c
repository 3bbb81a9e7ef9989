/* The `rewire run` session (C, C++ and Rust): watch, build, diff, patch.
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
 * This file is the loop; session.h lists the files of each stage.
 * Baselines: a unit's own object when it is newer than its source and
 * older than the executable (it is what runs), else the object rewire
 * compiles in the background after the start (start.c). */
#define _GNU_SOURCE
#include "session.h"

static int next_timeout(struct session *s)
{
	uint64_t now = rw_now_ns(), soonest = UINT64_MAX;
	int busy = 0;
	for (size_t i = 0; i < s->njobs; i++)
		busy |= s->jobs[i].running;
	for (size_t i = 0; i < s->db.n; i++)
		if (s->u[i].due && s->u[i].due < soonest)
			soonest = s->u[i].due;
	uint64_t retry = procs_retry_due(&s->procs);
	if (retry && retry < soonest)
		soonest = retry;	/* a process that waits for rewire, asked again */
	if (s->procs_new || s->nrequests)
		return 0;	/* processes found before the watch began: no event will come */
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
	siginfo_t si;
	memset(&si, 0, sizeof si);
	if (s->detach_fd < 0) {
		if (waitid(P_PID, (id_t)s->child, &si, WEXITED | WNOHANG | WNOWAIT) < 0 ||
		    si.si_pid != s->child)
			return 0;
		/* Its crash note is read while it is a zombie: once it is
		 * reaped its pid is free, and a rewire starting meanwhile
		 * removes the notes of pids that do not exist (run.c). */
		if (s->relaunch && (si.si_code == CLD_KILLED || si.si_code == CLD_DUMPED))
			s->blamed = chan_crash_blame(s->child, si.si_status);
		return waitpid(s->child, status, WNOHANG) == s->child;
	}
	*status = 0;
	return s->pidfd >= 0 ? session_child_ended(s) : kill(s->child, 0) < 0 && errno == ESRCH;
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

/* The program's executable read (symbols, index, types) before the first
 * save needs it, so that its patch is as quick as the later ones: once,
 * when the first process has answered and no save waits. */
static void warm_images(struct session *s)
{
	if (s->warmed || !s->procs.n || s->procs.v[0].gen == PROC_GEN_UNKNOWN)
		return;
	for (size_t i = 0; i < s->db.n; i++)
		if (s->u[i].in_batch || s->u[i].due)
			return;
	s->warmed = 1;
	uint64_t t0 = rw_now_ns();
	int rc = patch_warm(s->procs.v[0].pid, s->images);
	rw_trace("read the program ahead of the first patch: %s, %.1f ms", rc == 0 ? "done" : rw_error(),
		 (double)(rw_now_ns() - t0) / 1e6);
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
	if (s.ino < 0 || session_make_cache(&s) < 0 || procs_init(&s.procs, child, s.ino) < 0) {
		rw_say_error("cannot watch sources: %s", s.ino < 0 ? strerror(errno) : rw_error());
		if (detach_fd < 0)
			waitpid(child, &status, 0);
		return status;
	}
	/* The processes procs_init found already listening are asked at once:
	 * an exec'd one (a wrapper script's `exec`) waits for the session's GO,
	 * and no event will come for a socket made before the watch began. */
	s.procs_new = 1;
	session_setup_baselines(&s, exe);
	s.images = exe_cache_new();
	for (size_t i = 0; i < db->n; i++)
		session_record_orig(&s, i);
	rw_say("watching %zu %s%s of %s (pid %d)", db->n,
	       db->n && db->units[0].object_only ? "object" : "source", db->n == 1 ? "" : "s", exe,
	       (int)child);
	for (;;) {
		struct pollfd fds[3 + 2 * MAX_JOBS] = {{s.ino, POLLIN, 0}, {s.pidfd, POLLIN, 0},
						       {detach_fd, POLLIN, 0}};
		nfds_t nfds = 3;
		session_start_baselines(&s);
		for (size_t i = 0; i < s.njobs && nfds < 3 + 2 * MAX_JOBS; i++)
			if (s.jobs[i].running && s.jobs[i].pidfd >= 0)
				fds[nfds++] = (struct pollfd){s.jobs[i].pidfd, POLLIN, 0};
		poll(fds, nfds, next_timeout(&s));
		if (child_exited(&s, &status)) {
			if (session_restart(&s, status))
				continue;
			break;
		}
		if (fds[2].revents) {
			status = SESSION_DETACHED;
			break;
		}
		if (fds[0].revents)
			session_read_events(&s);
		uint64_t retry = procs_retry_due(&s.procs);
		if (s.procs_new || (retry && retry <= rw_now_ns())) {
			struct patch_result all = {0};
			session_settle(&s, &all, 0);
		}
		warm_images(&s);
		session_serve_requests(&s);
		session_reap_jobs(&s);
		session_say_progress(&s);
		reap_orphans(&s);
		session_start_pending(&s);
		session_finish_batch(&s);
		session_start_batch(&s);
		session_start_pending(&s);
		session_finish_batch(&s);	/* objects to patch from need no compiler */
	}
	for (size_t i = 0; i < s.njobs; i++)
		if (s.jobs[i].running && s.jobs[i].pid > 0)
			kill(-s.jobs[i].pid, SIGKILL), waitpid(s.jobs[i].pid, NULL, 0);
	free(s.jobs);
	free(s.base_queue);
	for (size_t i = 0; i < db->n; i++) {
		free(s.u[i].orig);
		session_forget_read(&s.u[i]);
	}
	free(s.u);
	while (s.nlanded)
		session_drop_landed(&s, s.nlanded - 1);
	procs_end(&s.procs);
	while (s.nrequests)
		free(s.requests[--s.nrequests]);
	free(s.procs.v);
	exe_cache_free(s.images);
	rw_table_free(&s.hashes, free);
	session_end_cache(&s);
	*db = s.db;
	return status;
}
