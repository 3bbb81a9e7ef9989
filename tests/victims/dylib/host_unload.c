/* host_unload.c: asks rewire to unload the old versions of two plugins,
 * a plain C one and one with thread_local destructors.
 *
 * Usage: host_unload plain.so tls.so. Output: "pid=P", then every ~10 ms
 * "tick=N plain=V tls=W vplain=.. vtls=.." (step(N) of each, versions);
 * once both are at version 2: "unload plain=X tls=Y" with what
 * rewire_lib_unload_old returned for each (images glibc kept), and on
 * stderr "err: plain: TEXT" / "err: tls: TEXT". */
#include <stdio.h>
#include <unistd.h>
#include "rewire_lib.h"

typedef int (*step_fn)(void *, int);

int main(int argc, char **argv)
{
	static int state[4];
	setvbuf(stdout, NULL, _IOLBF, 0);
	alarm(120);
	if (argc != 3)
		return fprintf(stderr, "usage: host_unload plain.so tls.so\n"), 2;
	rewire_lib *plain = rewire_lib_open(argv[1], state), *tls = rewire_lib_open(argv[2], state);
	if (!plain || !tls)
		return fprintf(stderr, "open: %s\n", rewire_lib_error(NULL)), 1;
	step_fn p = (step_fn)rewire_lib_sym(plain, "step"), t = (step_fn)rewire_lib_sym(tls, "step");
	if (!p || !t)
		return fprintf(stderr, "sym: %s\n", rewire_lib_error(NULL)), 1;
	printf("pid=%d\n", (int)getpid());
	for (int n = 1, done = 0;; n++) {
		if (rewire_lib_update(plain) < 0 || rewire_lib_update(tls) < 0)
			fprintf(stderr, "err: update: %s\n", rewire_lib_error(NULL));
		printf("tick=%d plain=%d tls=%d vplain=%d vtls=%d\n", n, p(state, n), t(state, n),
		       rewire_lib_version(plain), rewire_lib_version(tls));
		if (!done && rewire_lib_version(plain) == 2 && rewire_lib_version(tls) == 2) {
			int a = rewire_lib_unload_old(plain), b = rewire_lib_unload_old(tls);
			fprintf(stderr, "err: plain: %s\nerr: tls: %s\n", rewire_lib_error(plain),
				rewire_lib_error(tls));
			printf("unload plain=%d tls=%d\n", a, b);
			done = 1;
		}
		usleep(10000);
	}
}
