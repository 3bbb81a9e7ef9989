/* host.c: a plugin host on include/rewire_lib.h, run without rewire.
 *
 * Usage: host PLUGIN.so. Exercises (tests/e2e/dylib.sh): a plugin rebuilt
 * by rename and in place is reloaded, the host keeps calling it through the
 * pointer rewire_lib_sym gave before, and the state it owns (given to
 * rewire_lib_open) goes on; a load hook that refuses and a version that
 * crashes inside rewire_lib_call leave the previous version running.
 *
 * Output: "pid=P", then every ~10 ms "tick=N value=V count=C loaded=L
 * loads=S version=R upd=U why=W crashed=K": V = step(N) (-1 when it
 * crashed), C the calls counted in the state by the plugin, L the version
 * its load hook last saw and S how many times it ran, R rewire_lib_version,
 * U what rewire_lib_update returned, W the length of rewire_lib_error just
 * after it, K 1 when rewire_lib_call said it crashed.
 * On stderr, "err: TEXT" each time rewire_lib_error changes. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "rewire_lib.h"

struct state {
	int count, loaded, loads;
};

struct work {
	int (*step)(struct state *, int);
	struct state *st;
	int n, value;
};

static void work(void *p)
{
	struct work *w = p;
	w->value = w->step(w->st, w->n);
}

static void show_error(const rewire_lib *lib)
{
	static char last[1024];
	const char *e = rewire_lib_error(lib);
	if (strcmp(e, last)) {
		snprintf(last, sizeof last, "%s", e);
		fprintf(stderr, "err: %s\n", e);
	}
}

int main(int argc, char **argv)
{
	static struct state st;
	setvbuf(stdout, NULL, _IOLBF, 0);
	alarm(120);
	if (argc != 2)
		return fprintf(stderr, "usage: host PLUGIN.so\n"), 2;
	rewire_lib *lib = rewire_lib_open(argv[1], &st);
	if (!lib)
		return fprintf(stderr, "open: %s\n", rewire_lib_error(NULL)), 1;
	int (*step)(struct state *, int) = (int (*)(struct state *, int))rewire_lib_sym(lib, "step");
	if (!step)
		return fprintf(stderr, "sym: %s\n", rewire_lib_error(lib)), 1;
	printf("pid=%d\n", (int)getpid());
	for (int n = 1;; n++) {
		int upd = rewire_lib_update(lib);
		size_t why = strlen(rewire_lib_error(lib));
		struct work w = {step, &st, n, -1};
		int crashed = rewire_lib_call(lib, work, &w) == REWIRE_CRASHED;
		show_error(lib);
		printf("tick=%d value=%d count=%d loaded=%d loads=%d version=%d upd=%d why=%zu "
		       "crashed=%d\n", n, w.value, st.count, st.loaded, st.loads,
		       rewire_lib_version(lib), upd, why, crashed);
		usleep(10000);
	}
}
