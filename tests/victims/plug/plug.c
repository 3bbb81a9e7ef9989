/* plug.c: a shared library the program links the ordinary way
 * (e2e "session: a rebuilt shared library patched in place"). Its
 * functions are patched where the library is loaded, from the object the
 * user's build makes; its static counter keeps counting. */
static int calls = 1000;

int plug_value(int n)
{
	return n * 2; /* @BODY */
}

int plug_calls(void)
{
	return ++calls;
}
