/* dylib_plugin.c: the plugin bench/dylib.c reloads and calls. STEP is
 * the build's variant (two builds alternate). */
#ifndef STEP
#define STEP 1
#endif

__attribute__((noinline)) int add(int x)
{
	return x + STEP;
}

int rewire_lib_load(void *state, int version)
{
	return 0;
}
