/* far_value.c: the function far.c prints the value of, patched from far.
 * It calls base_of(), a function of the program (from far: through a
 * stub). seed is a file static the program keeps but does not read: an
 * edit that reads it refers to the program's data by a 32-bit offset,
 * which a patch placed far cannot reach. */
int base_of(int tick);

static volatile int seed __attribute__((used)) = 4;

int value(int tick)
{
	volatile int k = 2; /* @K */
	return base_of(tick) * k;
}

/* @EXTRA */
