// tls.cpp: a plugin with a thread_local object whose destructor is not
// trivial: using it registers the destructor with glibc
// (__cxa_thread_atexit), and glibc then keeps the library mapped after
// dlclose while the thread lives (tests/e2e/dylib.sh).
#include <string>

struct Counter {
	std::string name = "calls";
	int n = 0;
	~Counter() { name.clear(); }
};

static thread_local Counter counter;

extern "C" int step(void *, int n)
{
	counter.n++;
	return n * 2 + (counter.n > 0 ? 0 : 1); /* @BODY */
}
