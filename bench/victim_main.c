/* Benchmark victim: a loop calling compute() from another unit, so a patch
 * of compute.c is a one-function patch. */
#include <stdio.h>
#include <unistd.h>

int compute(int x);

int main(void)
{
	volatile long sum = 0;
	for (;;) {
		for (int i = 0; i < 1000; i++)
			sum += compute(i);
		usleep(1000);
	}
}
