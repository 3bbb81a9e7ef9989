/* host_deps.c: three plugins, C using B and A, B using A, opened
 * dependencies first and reloaded with rewire_lib_update_all.
 *
 * Usage: host_deps libA.so libB.so libC.so. Output: "pid=P", the hook
 * lines the libraries print ("hook=load lib=A version=1"...), and every
 * ~10 ms "tick=N a=A b=B c=C va=.. vb=.. vc=.. upd=U": the three functions
 * of N through rewire_lib_sym's pointers, the versions, and what
 * rewire_lib_update_all returned. "err: TEXT" on stderr on a failure. */
#include <stdio.h>
#include <unistd.h>
#include "rewire_lib.h"

typedef int (*fn)(int);

int main(int argc, char **argv)
{
	rewire_lib *lib[3];
	fn f[3];
	const char *names[3] = {"a_value", "b_value", "c_value"};
	setvbuf(stdout, NULL, _IOLBF, 0);
	alarm(120);
	if (argc != 4)
		return fprintf(stderr, "usage: host_deps libA.so libB.so libC.so\n"), 2;
	printf("pid=%d\n", (int)getpid());
	for (int i = 0; i < 3; i++) {
		if (!(lib[i] = rewire_lib_open(argv[i + 1], NULL)))
			return fprintf(stderr, "open: %s\n", rewire_lib_error(NULL)), 1;
		if (!(f[i] = (fn)rewire_lib_sym(lib[i], names[i])))
			return fprintf(stderr, "sym: %s\n", rewire_lib_error(lib[i])), 1;
	}
	for (int n = 1;; n++) {
		int upd = rewire_lib_update_all();
		if (upd < 0)
			fprintf(stderr, "err: %s\n", rewire_lib_error(NULL));
		printf("tick=%d a=%d b=%d c=%d va=%d vb=%d vc=%d upd=%d\n", n, f[0](n), f[1](n), f[2](n),
		       rewire_lib_version(lib[0]), rewire_lib_version(lib[1]),
		       rewire_lib_version(lib[2]), upd);
		usleep(10000);
	}
}
