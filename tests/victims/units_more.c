/* units_more.c: the second unit of units_main.c's program. */
#include "config.h"

int part_b(int n)
{
	return n * FACTOR + 1000;
}
