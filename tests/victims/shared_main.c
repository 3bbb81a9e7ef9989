/* shared_main.c and shared_more.c: global constants defined in one file,
 * one of them read by the other file too (e2e "a changed constant that
 * another file reads is refused").
 *
 * Output: "pid=P" first, then every ~15 ms "tick=N a=A b=B s=S count=K"
 * with A = level_a(N) (this file reads levels[] and only_main[]), B = level_b(N) (the other
 * file reads levels[]), S = solo_b(N) (only the other file reads solo[]). */
#include <stdio.h>
#include <unistd.h>

extern const int levels[4];
extern const int only_main[2];
int level_b(int n);
int solo_b(int n);
static int count;

__attribute__((noinline)) int level_a(int n)
{
	return levels[n & 3] * 10 + only_main[n & 1] * 100;
}

__attribute__((noinline)) void print_line(int n)
{
	printf("tick=%d a=%d b=%d s=%d count=%d\n", n, level_a(n), level_b(n), solo_b(n), ++count);
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	alarm(240);
	printf("pid=%d\n", (int)getpid());
	for (int n = 1;; n++) {
		print_line(n);
		usleep(15000);
	}
}
