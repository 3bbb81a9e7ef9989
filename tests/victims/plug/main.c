/* main.c: calls into libplug.so (plug.c) in a loop.
 *
 * Output: "pid=P" first, then every ~15 ms "pid=P tick=N value=V calls=C"
 * with V = plug_value(N) (N*2 in the original) and C counting up by one. */
#include <stdio.h>
#include <unistd.h>

int plug_value(int n);
int plug_calls(void);

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	alarm(240);
	printf("pid=%d\n", (int)getpid());
	for (int n = 1;; n++) {
		printf("pid=%d tick=%d value=%d calls=%d\n", (int)getpid(), n, plug_value(n), plug_calls());
		usleep(15000);
	}
}
