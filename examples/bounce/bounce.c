/* bounce: a ball bouncing in a one-line court, 20 frames a second.
 *
 * Run it under rewire, edit draw() or physics() and save: the ball keeps
 * its position, speed and the frame count (all state lives in the globals
 * below), only the behaviour changes.
 *
 *   make && rewire run ./bounce
 *   # edit bounce.c in your editor and save
 */
#include <stdio.h>
#include <unistd.h>

#define WIDTH 40

static double pos = 1, speed = 0.9;	/* kept across patches */
static long frame;
int bounces;

static void physics(void)
{
	pos += speed;
	if (pos < 0 || pos >= WIDTH - 1) {
		speed = -speed;
		pos += 2 * speed;
		bounces++;
	}
}

static void draw(void)
{
	char court[WIDTH + 1];
	for (int i = 0; i < WIDTH; i++)
		court[i] = '.';
	court[WIDTH] = 0;
	court[(int)pos] = 'o';
	printf("frame %5ld  |%s|  bounces %d\n", frame, court, bounces);
	fflush(stdout);
}

__attribute__((noinline)) void tick(void)
{
	frame++;
	physics();
	draw();
}

int main(void)
{
	for (;;) {
		tick();
		usleep(50000);
	}
}
