// consts_cpp.cpp: C++ functions whose code stays the same while a constant
// they read changes (e2e "an edited C++ constant takes effect").
//
// Exercises: a constexpr string, a lambda with a floating-point
// literal, a constexpr table, a static const std::array of C strings in a
// class, a string of a virtual function's class. A file static counts ticks.
//
// Output: "pid=P" first, then every ~15 ms
// "pid=P tick=N greet=G scaled=S price=C label=L kind=K count=K".
#include <array>
#include <cstdio>
#include <unistd.h>

static volatile int three = 3, one = 1;
static int counter;

constexpr const char greeting[] = "hello"; /* @GREETING */
constexpr int prices[] = {10, 20, 35, 50, 70}; /* @PRICES */

namespace labels {
constexpr std::array<const char *, 2> names = {{"small", "large"}}; /* @LABELS */
}

struct Animal {
	virtual const char *kind() const = 0;
	virtual ~Animal() = default;
};

struct Cat : Animal {
	const char *kind() const override { return "cat"; } /* @KIND */
};

__attribute__((noinline)) const char *greet() { return greeting; }

__attribute__((noinline)) long scaled(int tick)
{
	auto f = [](double x) { return x * 1.5; }; /* @SCALE */
	return (long)(2 * f(tick));
}

__attribute__((noinline)) int price(int i) { return prices[i % 5]; }

__attribute__((noinline)) const char *label(int i) { return labels::names[i & 1]; }

// Called anew each tick: gcc may inline (or speculatively devirtualize)
// the functions above into it, and a running loop keeps its own code.
__attribute__((noinline)) void print_line(int tick, Animal *a)
{
	counter++;
	std::printf("pid=%d tick=%d greet=%s scaled=%ld price=%d label=%s kind=%s count=%d\n",
		    (int)getpid(), tick, greet(), scaled(tick), price(three), label(one), a->kind(),
		    counter);
}

int main()
{
	setvbuf(stdout, nullptr, _IOLBF, 0);
	alarm(240);	// safety net: never outlive the test suite
	std::printf("pid=%d\n", (int)getpid());
	Cat cat;
	Animal *volatile a = &cat;
	for (int tick = 1;; tick++) {
		print_line(tick, a);
		usleep(15000);
	}
}
