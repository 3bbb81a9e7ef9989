/* exitcode.c: `rewire run` passes the program's output and exit status
 * through (e2e "run passes status and output through").
 *
 * Prints its arguments and some bytes that are not text (no final newline)
 * to stdout, one line to stderr, then exits 7, or with argument "signal"
 * kills itself with SIGTERM (so `rewire run` must exit 128+15). */
#include <signal.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
	printf("out: %d args\n", argc - 1);
	for (int i = 1; i < argc; i++)
		printf("arg[%d]=<%s>\n", i, argv[i]);
	fprintf(stderr, "err: a line on stderr\n");
	fwrite("bin\001\377\000end", 1, 9, stdout);
	fflush(stdout);
	if (argc > 1 && strcmp(argv[1], "signal") == 0)
		raise(SIGTERM);
	return 7;
}
