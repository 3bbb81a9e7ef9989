/* consts.c: functions whose code is the same while a constant they read
 * changed: only read-only data differs between the builds.
 *
 * Exercises: a string reached through a constant table of pointers, a
 * floating-point literal (gcc and clang put it in .rodata.cst8, the code
 * is unchanged), a `static const double`, a switch turned into a lookup
 * table at -O2 (gcc's CSWTCH, clang's .Lswitch.table), a constant struct
 * holding pointers to other constants. Each edit must take effect.
 *
 * Output: "pid=P" first, then every ~15 ms
 * "pid=P tick=N name=S scaled=A moved=B price=C unit=U count=K" where
 * name=names[0], scaled=2*tick*1.5, moved=2*tick*speed, price=price(3),
 * unit=units[1].label, count=counter (file static, +1 per tick). */
#include <stdio.h>
#include <unistd.h>

static volatile int zero, three = 3, one = 1;
static int counter;

static const char *const names[] = {"alpha", "beta"}; /* @NAMES */

__attribute__((noinline)) const char *name(int i)
{
	return names[i & 1];
}

__attribute__((noinline)) double scaled(int tick)
{
	return tick * 1.5; /* @SCALE */
}

static const double speed = 1.5; /* @SPEED */

__attribute__((noinline)) double moved(int tick)
{
	return tick * speed;
}

__attribute__((noinline)) int price(int kind)
{
	switch (kind & 7) {
	case 0: return 10;
	case 1: return 20;
	case 2: return 35;
	case 3: return 50; /* @PRICE */
	case 4: return 70;
	case 5: return 90;
	case 6: return 110;
	default: return 130;
	}
}

struct unit { const char *label; int scale; };
static const char *const kilo = "kg"; /* @KILO */
static const struct unit units[] = {{"g", 1}, {"kg", 1000}}; /* @UNITS */

__attribute__((noinline)) const char *unit_label(int i)
{
	return units[i & 1].label;
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	alarm(240);	/* safety net: never outlive the test suite */
	printf("pid=%d\n", (int)getpid());
	for (int tick = 1;; tick++) {
		counter++;
		printf("pid=%d tick=%d name=%s scaled=%ld moved=%ld price=%d unit=%s count=%d\n",
		       (int)getpid(), tick, name(zero), (long)(2 * scaled(tick)),
		       (long)(2 * moved(tick)), price(three), unit_label(one), counter);
		usleep(15000);
	}
	(void)kilo;
}
