/* libtls.c: thread-locals of a shared library, reached from a patch.
 *
 * Exercises: libcount is a __thread variable defined in libtlsvar.so (built
 * by the test); the program bumps it through the library. The patch reads
 * it directly, which the compiler does through the initial-exec model
 * (R_X86_64_GOTTPOFF) in executables: rewire must find the library's static
 * TLS block (e2e "thread-local of a shared library").
 *
 * Output: "pid=P" first, then every ~15 ms "tick=N lib=L" (L counts up
 * from 1000 in the library). */
#include <stdio.h>
#include <unistd.h>

extern __thread int libcount;
int lib_bump(void);

__attribute__((noinline)) void report(int n)
{
	printf("tick=%d lib=%d\n", n, lib_bump()); /* @PRINT */
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	alarm(240);
	printf("pid=%d\n", (int)getpid());
	for (int n = 1;; n++) {
		report(n);
		usleep(15000);
	}
}
