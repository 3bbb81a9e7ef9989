/* api.c: a program that uses include/rewire.h.
 *
 * Exercises: rewire_poll() (e2e "rewire_poll: patches only at the safe
 * point"): each tick computes compute(N) twice, 3 ms apart, and a patch
 * must never land between the two; the rewire_on_patch() hook runs inside
 * rewire_poll(). rewire_call() ("rewire_call rolls back a crashing
 * patch"): compute(N) runs guarded; a patch that crashes in it (NULL
 * dereference, abort) is rolled back and the call reports it.
 *
 * Output: "pid=P" first, then every ~15 ms
 * "tick=N a=A b=B crashed=C hooks=H inpoll=I version=V" where A and B are
 * the two results (-1 when the call crashed), C 1 when rewire_call said so,
 * H the hook's runs, I whether the last one ran inside rewire_poll() and V
 * the version it was told, then " named=M": 1 when the last patch named
 * compute among its functions (a C name: the same linkage and display
 * name). The original computes N*2. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "rewire.h"

static int hooks, hook_in_poll = 1, last_version, named;
static volatile int in_poll;

/* @DECLS */

__attribute__((noinline)) int compute(int n)
{
	return n * 2; /* @BODY */
}

static void on_patch(const struct rewire_patch_info *info, void *ctx)
{
	hooks++;
	hook_in_poll &= in_poll;
	last_version = info->version;
	named = 0;
	for (size_t i = 0; i < info->nfuncs; i++)
		named |= !strcmp(info->funcs[i], "compute") && !strcmp(info->names[i], "compute");
}

struct work {
	int n, a, b;
};

static void work(void *arg)
{
	struct work *w = arg;
	w->a = compute(w->n);
	usleep(3000);
	w->b = compute(w->n);
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	alarm(240);
	printf("pid=%d\n", (int)getpid());
	rewire_on_patch(on_patch, NULL);
	for (int n = 1;; n++) {
		struct work w = {n, -1, -1};
		int crashed = rewire_call(work, &w) == REWIRE_CRASHED;
		printf("tick=%d a=%d b=%d crashed=%d hooks=%d inpoll=%d version=%d named=%d\n", n,
		       w.a, w.b, crashed, hooks, hook_in_poll, last_version, named);
		in_poll = 1;
		rewire_poll();
		in_poll = 0;
		usleep(12000);
	}
}
