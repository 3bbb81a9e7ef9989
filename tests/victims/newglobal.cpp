// newglobal.cpp: a patch that adds a C++ global with a constructor.
//
// Exercises: the file's initializers ran when the program started; the new
// global's constructor cannot run alone, so the patch must be refused with
// its name, and the program go on (e2e "new C++ global with a constructor
// refused").
//
// Output: "pid=P" first, then every ~15 ms "tick=N name=old".
#include <cstdio>
#include <string>
#include <unistd.h>

static std::string name = "old";
/* @DECLS */

__attribute__((noinline)) void tick(int n)
{
	std::printf("tick=%d name=%s\n", n, name.c_str()); /* @PRINT */
}

int main()
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	alarm(240);
	std::printf("pid=%d\n", (int)getpid());
	for (int n = 1;; n++) {
		tick(n);
		usleep(15000);
	}
}
