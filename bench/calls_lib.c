/* calls_lib.c: the library bench/calls.c looks lib_fn up in with dlsym
 * (the model of hot-lib-reloader). */
__attribute__((noinline)) int lib_fn(int x)
{
	return x + 1;
}
