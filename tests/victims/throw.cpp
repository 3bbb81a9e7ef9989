// throw.cpp: a C++ exception thrown by patched code and caught by unchanged
// code, through the unwind info (.eh_frame) rewire registers for new code.
//
// Exercises: risky() throws every third tick; tick() catches. The patch
// changes risky()'s result and its exception's message, so after it the
// caught messages must be the new ones (e2e "C++ exception through patched
// code"). A std::string global keeps its value (C++ static state).
//
// Output: "pid=P" first, then every ~15 ms "tick=N value=V" or
// "tick=N caught=vK" where K is the version that threw.
#include <cstdio>
#include <stdexcept>
#include <string>
#include <unistd.h>

static std::string label = "kept";

__attribute__((noinline)) int risky(int n)
{
	if (n % 3 == 0)
		throw std::runtime_error("v1"); /* @THROW */
	return n * 2; /* @BODY */
}

// Unchanged code: catches what the (new) risky() throws.
__attribute__((noinline)) static void tick(int n)
{
	try {
		int v = risky(n);
		printf("tick=%d value=%d label=%s\n", n, v, label.c_str());
	} catch (const std::exception &e) {
		printf("tick=%d caught=%s label=%s\n", n, e.what(), label.c_str());
	}
}

int main()
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	alarm(240);
	printf("pid=%d\n", (int)getpid());
	for (int n = 1;; n++) {
		tick(n);
		usleep(15000);
	}
}
