// account.cpp: a C++ method of several lines, for debuggers (e2e "gdb: a
// patched C++ method"): its edited line is neither its first nor inlined,
// so a breakpoint on that line has one place in the old code and one in
// the new, and the old one is never the entry rewire jumps from.
//
// Output: "pid=P" first, then every ~15 ms "tick=N balance=B added=A"
// where B grows by A, 1 as built.
#include <cstdio>
#include <unistd.h>

static long last;
static volatile long unit = 1;	// not a constant the optimiser can fold in

// Opaque to the optimiser (it may write any memory): the code of the
// lines after a call to it stays after it.
__attribute__((noinline)) static void note(long amount)
{
	last = amount;
	__asm__ volatile("" ::: "memory");
}

struct Account {
	const char *owner = "ada";
	long balance = 1000;

	__attribute__((noinline)) long deposit(long amount)
	{
		note(amount);
		balance += amount; /* @DEPOSIT */
		return balance - 1000;
	}
};

static Account account;

// Returns at each tick: a change gcc moves into it (inlining deposit, or
// not) reaches the program at the next tick, which main's loop would not.
__attribute__((noinline)) static void tick(int n)
{
	long before = account.balance;
	account.deposit(unit);
	std::printf("tick=%d balance=%ld added=%ld\n", n, account.balance, account.balance - before);
}

int main()
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	alarm(240);	// safety net: never outlive the test suite
	std::printf("pid=%d\n", (int)getpid());
	for (int n = 1;; n++) {
		tick(n);
		usleep(15000);
	}
}
