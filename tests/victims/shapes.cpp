// shapes.cpp: C++ features a patch must reach.
//
// Exercises (e2e "C++ methods, virtuals, templates, lambdas, new class"):
// a virtual function called through a base pointer by unchanged code, a
// template instantiated in the unit, a member function of an object whose
// state must be kept, a lambda, an inline function from a header-like
// definition, and a patch that adds a class with virtual functions.
//
// Output: "pid=P" first, then every ~15 ms
// "tick=N area=A twice=T bump=B lam=L extra=E".
#include <cstdio>
#include <memory>
#include <unistd.h>

struct Shape {
	virtual ~Shape() {}
	virtual int area() const = 0;
};

struct Square : Shape {
	int s;
	explicit Square(int s) : s(s) {}
	int area() const override { return s * s; /* @AREA */ }
};

/* @CLASS */

template <typename T> T twice(T x) { return x * 2; /* @TWICE */ }

struct Counter {
	int n = 0;
	int bump() { return n += 1; /* @BUMP */ }
};

inline int offset() { return 100; /* @INLINE */ }

static Counter counter;
static std::unique_ptr<Shape> shape(new Square(3));

__attribute__((noinline)) static int extra() { return 0; /* @EXTRA */ }

// Unchanged by the patches: calls through the vtable, the template, the
// member, the lambda.
__attribute__((noinline)) static void tick(int n)
{
	auto lam = [n](int k) { return n + k; /* @LAMBDA */ };
	std::printf("tick=%d area=%d twice=%d bump=%d lam=%d inl=%d extra=%d\n", n, shape->area(),
		    twice(n), counter.bump(), lam(1), offset(), extra());
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
