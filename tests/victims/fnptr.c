/* fnptr.c: old function pointers reach new code and keep their identity.
 *
 * Exercises: main() stores &compute (a global function) and &scompute (a
 * file-static one) in globals before any patch; tick(), which the patches do
 * not change, calls through them. After a patch the calls must run the new
 * code, and the new code compares the stored pointer with the address of the
 * function taken in the new code: it must print "same=1"
 * (e2e "old function pointer reaches new code") or "ssame=1"
 * (e2e "old pointer to a static function").
 *
 * Why two: in PIE builds the assembler resolves `lea scompute(%rip)` in the
 * new object itself (same section, local symbol): no relocation is left to
 * bind it to the running scompute. &compute (global) always has one.
 *
 * Output: "pid=P" first, then every ~15 ms "tick=N result=R sresult=S" with
 * R = N+100 and S = N+300 in the original. */
#include <stdio.h>
#include <unistd.h>

int (*saved_fn)(int);		/* &compute, set once before any patch */
int (*saved_static)(int);	/* &scompute, likewise */

int compute(int x)
{
	/* @EXTRA */
	return x + 100; /* @BODY */
}

static int scompute(int x)
{
	/* @SEXTRA */
	return x + 300; /* @SBODY */
}

/* Unchanged code that calls through the old pointers. */
__attribute__((noinline)) static void tick(int n)
{
	printf("tick=%d result=%d sresult=%d\n", n, saved_fn(n), saved_static(n));
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	alarm(240);	/* safety net: never outlive the test suite */
	saved_fn = compute;
	saved_static = scompute;
	printf("pid=%d\n", (int)getpid());
	for (int n = 1;; n++) {
		tick(n);
		usleep(15000);
	}
}
