/* `rewire apply --pid PID FILE.o... [LIBRARY.a...]`: link objects into a
 * running process (see patch.c) and report it. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "driver.h"

static double ms(uint64_t ns)
{
	return (double)ns / 1e6;
}

static void report(const struct patch_result *r, char **files, int nfiles)
{
	const struct msg_apply_times *t = &r->times;
	fprintf(stderr, "rewire: patched %s (%s%s) in %.2f ms — link %.2f, apply %.2f "
		"(pause %.0f us, %u threads); %llu new functions\n",
		r->nchanged ? r->names : "nothing running", rw_basename(files[0]),
		nfiles > 1 ? ", ..." : "", ms(r->link_ns + t->total_ns), ms(r->link_ns),
		ms(t->total_ns), (double)t->pause_ns / 1e3, t->nthreads,
		(unsigned long long)r->nnew);
}

static int usage(void)
{
	fprintf(stderr, "usage: rewire apply --pid PID FILE.o... [LIBRARY.a|LIBRARY.rlib...]\n");
	return EXIT_USAGE;
}

/* PID as given: a positive number, else said (-1). */
static int pid_arg(const char *arg)
{
	char *end;
	long v = strtol(arg, &end, 10);
	if (!arg[0] || *end || v <= 0 || v > INT_MAX) {
		rw_say_error("%s: not a process id", arg);
		return -1;
	}
	return (int)v;
}

/* A static archive (ar's magic): members are taken from it as needed. */
static int is_archive(const char *path)
{
	char magic[8] = {0};
	FILE *f = fopen(path, "rb");
	int yes = f && fread(magic, 1, 8, f) == 8 && !memcmp(magic, "!<arch>\n", 8);
	if (f)
		fclose(f);
	return yes;
}

int cmd_apply(int argc, char **argv)
{
	int pid = 0, nfiles = 0, rc = 0;
	char **files = rw_calloc((size_t)argc, sizeof *files);
	struct patch_filter libs = {.archives = rw_calloc((size_t)argc, sizeof(char *))};
	for (int i = 1; i < argc && rc == 0; i++) {
		const char *arg = NULL;
		if (!strcmp(argv[i], "--pid") && i + 1 < argc)
			arg = argv[++i];
		else if (!strncmp(argv[i], "--pid=", 6))
			arg = argv[i] + 6;
		else if (argv[i][0] == '-')
			rc = usage();
		else if (is_archive(argv[i]))
			libs.archives[libs.narchives++] = argv[i];
		else
			files[nfiles++] = argv[i];
		if (arg && (pid = pid_arg(arg)) < 0)
			rc = EXIT_USAGE;
	}
	if (rc == 0 && (pid <= 0 || !nfiles))
		rc = usage();
	struct patch_result res;
	if (rc == 0) {
		rc = patch_run(pid, files, nfiles, libs.narchives ? &libs : NULL, &res);
		if (rc == 0)
			report(&res, files, nfiles);
		else
			rw_say_error("%s", rw_error());
	}
	free(files);
	free(libs.archives);
	return rc;
}
