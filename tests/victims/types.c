/* types.c: changes a patch must refuse, found in the debug information.
 *
 * Exercises (e2e "changed type layout and signature refused"): a struct
 * whose layout a patch changes (its instance lives in the program); a
 * global function whose parameters a patch changes (callers in other units
 * would pass the old ones); a file-local function whose parameters change
 * with its only caller (allowed: every caller is in the patch); a member
 * renamed (allowed: the instance reads the same).
 *
 * Output: "pid=P" first, then every ~15 ms
 * "tick=N hp=H score=S bonus=B": hp grows by 1 per tick (state kept),
 * score = hp*2 and bonus = N+1 in the original. */
#include <stdio.h>
#include <unistd.h>

struct player {
	int hp;
	float x; /* @XNAME */
	/* @FIELDS */
};

static struct player hero = {100, 1.5f};

__attribute__((noinline)) int score(
	int hp /* @PARAMS */
)
{
	return hp * 2;
}

static __attribute__((noinline)) int bonus(
	int n /* @SPARAMS */
)
{
	return n + 1; /* @SBODY */
}

__attribute__((noinline)) void tick(int n)
{
	hero.hp++;
	int s = score(hero.hp); /* @CALL */
	int b = bonus(n); /* @SCALL */
	printf("tick=%d hp=%d score=%d bonus=%d\n", n, hero.hp, s, b);
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	alarm(240);
	printf("pid=%d\n", (int)getpid());
	for (int n = 1;; n++) {
		tick(n);
		usleep(15000);
	}
}
