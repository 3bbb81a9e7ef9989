/* `rewire revert`, served by the session: every process of the program
 * takes back the patches after session patch `to` (REVERT by the
 * session's numbers), and the units' baselines go back with them
 * (landed.c), so the next save of a file taken back diffs against the
 * code that runs and patches it again. The first process first: when it
 * refuses (a patch too old to take back, a thread it cannot stop),
 * nothing changes. The answer goes to the asking command as a file
 * (driver/revert.c), and is said here too. A process's agent asks the
 * same after it rolled patches back on a crash (rewire_call): the whole
 * program, and the baselines, follow it. */
#define _GNU_SOURCE
#include "session.h"

/* The answer: a status line, then the lines to print. */
static void answer(struct session *s, const char *request, int rc, const char *text)
{
	char path[sizeof s->procs.dir + 300], tmp[sizeof path + 8];
	size_t n = strlen(request) - strlen(REVERT_ASK);
	snprintf(path, sizeof path, "%s/%.*s%s", s->procs.dir, (int)n, request, REVERT_ANSWER);
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	if (!f)
		return;
	fprintf(f, "%d\n%s", rc, text);
	if (fclose(f) == 0)
		rename(tmp, path);
	unlink(tmp);
}

/* The first of the landed patches after `to`: the newest ones with a
 * higher number (and one whose answer was lost with the program: 0). */
static size_t first_after(struct session *s, uint32_t to)
{
	size_t k = s->nlanded;
	while (k > 0 && (s->landed[k - 1].gen > to || !s->landed[k - 1].gen))
		k--;
	return k;
}

/* Those patches, said as "what" of each, into out. */
static void describe(struct session *s, size_t from, char *out, size_t cap)
{
	size_t len = 0;
	out[0] = 0;
	for (size_t k = from; k < s->nlanded && len < cap; k++)
		len += (size_t)snprintf(out + len, cap - len, "%s%s", len ? "; " : "",
					s->landed[k].what);
}

/* Every process takes it back; the first one must. The number that
 * did, or -1 (the first refused: said in msg). */
static int revert_processes(struct session *s, uint32_t to, char *msg, size_t cap)
{
	int done = 0;
	size_t len = 0;
	for (size_t i = 0; i < s->procs.n; i++) {
		struct proc *p = &s->procs.v[i];
		struct msg_reverted out;
		if (chan_revert(p->pid, &(struct msg_revert){1, to}, &out) == 0) {
			p->gen = out.gen;
			done++;
			continue;
		}
		if (i == 0) {
			snprintf(msg, cap, "rewire: error: process %d: %s; nothing was taken back\n",
				 p->pid, rw_error());
			return -1;
		}
		/* It keeps the newer code: asked again which patch it has. */
		p->gen = PROC_GEN_UNKNOWN;
		len += (size_t)snprintf(msg + len, cap > len ? cap - len : 0,
					"rewire: error: process %d: %s; it runs the newer code\n",
					p->pid, rw_error());
	}
	return done;
}

static int revert_to(struct session *s, uint32_t to, const char *after, char *msg, size_t cap)
{
	char what[2048];
	if (to >= s->gen) {
		snprintf(msg, cap, "rewire: nothing to take back: the program runs %s\n",
			 s->gen ? "its newest patch" : "the code it was built with");
		return 0;
	}
	size_t from = first_after(s, to);
	/* Each patch after `to` is kept, or a restart's that holds them all. */
	const struct landed *oldest = from < s->nlanded ? &s->landed[from] : NULL;
	if (!oldest || (oldest->gen > to + 1 && !(oldest->from_orig && to == 0))) {
		snprintf(msg, cap, "rewire: error: patch %u is older than the patches rewire keeps (the "
			 "last %d): it cannot be taken back\n", to + 1, KEEP_LANDED);
		return EXIT_REFUSED;
	}
	describe(s, from, what, sizeof what);
	char errors[2048] = "";
	int done = revert_processes(s, to, errors, sizeof errors);
	if (done < 0) {
		snprintf(msg, cap, "%s", errors);
		return EXIT_REFUSED;
	}
	/* Newest first: each puts back the baselines before it. */
	while (s->nlanded > from) {
		session_leave_out(s, &s->landed[s->nlanded - 1]);
		session_drop_landed(s, s->nlanded - 1);
	}
	s->gen = to;
	char procs[64] = "";
	if (s->procs.n > 1)
		snprintf(procs, sizeof procs, done == (int)s->procs.n ? " in %d processes" :
			 " in %d of %zu processes", done, s->procs.n);
	char runs[64] = "the code it was built with";
	if (to)
		snprintf(runs, sizeof runs, "its code as of patch %u", to);
	size_t len = (size_t)snprintf(msg, cap, "%s", errors);
	snprintf(msg + len, cap > len ? cap - len : 0, "rewire: taken back%s: %s%s; the program runs %s; "
		 "the next save of a file taken back patches it again\n", after, what, procs, runs);
	return 0;
}

static void serve(struct session *s, const char *request)
{
	char path[sizeof s->procs.dir + 300], line[64] = "", msg[4096];
	snprintf(path, sizeof path, "%s/%s", s->procs.dir, request);
	FILE *f = fopen(path, "r");
	if (f && !fgets(line, sizeof line, f))
		line[0] = 0;
	if (f)
		fclose(f);
	unlink(path);
	unsigned to;
	int pid = 0, rc = EXIT_USAGE;
	char why[16] = "", after[64] = "";
	if (sscanf(line, "%u %d %15s", &to, &pid, why) < 1) {
		snprintf(msg, sizeof msg, "rewire: error: the session could not read the request\n");
	} else if (!strcmp(why, "crash")) {
		/* The agent of a process whose patch crashed rolled it back
		 * (rewire_call): the program follows; no one waits for an answer. */
		if (to >= s->gen)
			return;
		snprintf(after, sizeof after, " after the crash in process %d", pid);
		revert_to(s, (uint32_t)to, after, msg, sizeof msg);
		fputs(msg, stderr);
		return;
	} else {
		rc = revert_to(s, (uint32_t)to, "", msg, sizeof msg);
	}
	fputs(msg, stderr);
	answer(s, request, rc, msg);
}

void session_serve_requests(struct session *s)
{
	for (int i = 0; i < s->nrequests; i++) {
		serve(s, s->requests[i]);
		free(s->requests[i]);
	}
	s->nrequests = 0;
}
