/* names.cpp: what the patch line names (src/driver/names.c): two
 * overloads of one name, a function whose signature changes (another C++
 * symbol), and a standard template instantiated for a lambda of ours.
 *
 * Output: "pid=P" first, then every ~15 ms "pid=P tick=N a=A b=B c=C"
 * where A = scale(N), B = scale(double N), C = report(N). */
#include <algorithm>
#include <cstdio>
#include <unistd.h>
#include <vector>

__attribute__((noinline)) int scale(int x)
{
	return x * 2; /* @SCALE_INT */
}

__attribute__((noinline)) double scale(double x)
{
	return x * 2; /* @SCALE_DOUBLE */
}

__attribute__((noinline)) int helper(int x) /* @HELPER */
{
	return x + 1; /* @HELPER_BODY */
}

__attribute__((noinline)) int report(int tick)
{
	std::vector<int> v{tick % 7, 3, tick % 5, 1};
	std::sort(v.begin(), v.end(), [](int a, int b) { return a < b; /* @ORDER */ });
	return v[0] * 100 + helper(tick) /* @CALL */;
}

int main()
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	alarm(240);	/* safety net: never outlive the test suite */
	printf("pid=%d\n", (int)getpid());
	for (int tick = 1;; tick++) {
		printf("pid=%d tick=%d a=%d b=%d c=%d\n", (int)getpid(), tick, scale(tick),
		       (int)scale((double)tick), report(tick));
		usleep(15000);
	}
}
