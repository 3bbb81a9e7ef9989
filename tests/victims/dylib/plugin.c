/* plugin.c: the plugin of host.c (tests/e2e/dylib.sh edits it at the
 * markers). step counts its calls in the host's state; the load hook
 * records the version it is given. */
#include <stdlib.h>
#include "rewire_lib.h"

struct state {
	int count, loaded, loads;
};

int step(struct state *s, int n)
{
	s->count++;
	return n * 2; /* @BODY */
}

int rewire_lib_load(void *state, int version)
{
	struct state *s = state;
	s->loaded = version;
	s->loads++;
	return 0; /* @LOAD */
}
