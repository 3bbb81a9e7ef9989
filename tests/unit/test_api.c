/* Unit tests of the API library (librewire-api.a): the dylib reload API
 * (src/api/, include/rewire_lib.h), in a process with no agent.
 *
 * The library's files share hidden functions (src/api/lib.h), which the
 * archive's one object makes local; this test links the objects as they
 * are before that. Shared objects are compiled with cc at test time.
 *
 * Output: one line per check, "PASS api: <name>" or "FAIL api: <name>:
 * <why>". Exits 0 unless the harness cannot run. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <limits.h>
#include <link.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "../../include/rewire.h"
#include "api/lib.h"	/* last: it poisons exit and abort */

static char tmp[256];

static void pass(const char *name) { printf("PASS api: %s\n", name); }

static void fail(const char *name, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	printf("FAIL api: %s: ", name);
	vprintf(fmt, ap);
	printf("\n");
	va_end(ap);
}

#define CHECK(name, cond, ...) \
	do { if (cond) pass(name); else fail(name, __VA_ARGS__); } while (0)

/* A path in the temp dir; a few rotating buffers so calls can nest. */
static const char *at(const char *name)
{
	static char bufs[8][512];
	static int next;
	char *b = bufs[next++ % 8];
	snprintf(b, sizeof bufs[0], "%s/%s", tmp, name);
	return b;
}

/* Run a shell command in the temp dir; 0 when it exited 0. */
static int sh(const char *fmt, ...)
{
	char cmd[4096];
	int n = snprintf(cmd, sizeof cmd, "cd '%s' && ( ", tmp);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd + n, sizeof cmd - (size_t)n, fmt, ap);
	va_end(ap);
	strncat(cmd, " ) >>log 2>&1", sizeof cmd - strlen(cmd) - 1);
	return system(cmd) == 0 ? 0 : -1;
}

static int put(const char *name, const char *text)
{
	FILE *f = fopen(at(name), "w");
	return f && fputs(text, f) >= 0 && fclose(f) == 0 ? 0 : -1;
}

static int has(const char *s, const char *part)
{
	return s && strstr(s, part) != NULL;
}

/* ------------------------------------------------------ the libraries */

/* dep: VALUE from dep_fn, and hooks that note the versions in the state
 * (int[2]: the last loaded, the last unloaded) and refuse with REFUSE. */
static const char dep_src[] =
	"int dep_data = 5;\n"
	"#ifndef NO_FN\n"
	"int dep_fn(void) { return VALUE; }\n"
	"#endif\n"
	"int rewire_lib_load(void *state, int version)\n"
	"{ ((int *)state)[0] = version; return REFUSE; }\n"
	"void rewire_lib_unload(void *state, int version) { ((int *)state)[1] = version; }\n";

static int build_dep(const char *out, int value, int refuse, const char *flags)
{
	/* Written under another name, then renamed: as a build would. */
	return sh("cc -shared -fPIC -DVALUE=%d -DREFUSE=%d %s -Wl,-soname,libdep.so "
		  "-Wl,--hash-style=both -o %s.tmp dep.c && mv %s.tmp %s",
		  value, refuse, flags, out, out, out);
}

static int build_all(void)
{
	return put("dep.c", dep_src) || build_dep("libdep.so", 1, 0, "");
}

/* A copy whose path would be longer than PATH_MAX (a deep
 * $XDG_RUNTIME_DIR, a long file name) is refused, not made under a
 * truncated name that would do once and then collide with itself. In a
 * child: the private directory is made once per process. */
static void test_long_copy_path(void)
{
	char deep[PATH_MAX], name[300];
	snprintf(deep, sizeof deep, "%s", at("deep"));
	mkdir(deep, 0700);
	while (strlen(deep) < 3880) {
		size_t len = strlen(deep);
		snprintf(deep + len, sizeof deep - len, "/%0200d", 0);
		mkdir(deep, 0700);
	}
	snprintf(name, sizeof name, "lib%0200d.so", 0);
	if (sh("cp libdep.so %s", name) < 0) {
		fail("a copy path longer than PATH_MAX", "cannot copy libdep.so");
		return;
	}
	pid_t pid = fork();
	if (pid == 0) {
		int st[2];
		setenv("XDG_RUNTIME_DIR", deep, 1);
		rewire_lib *lib = rewire_lib_open(at(name), st);
		printf("# in the child: %s\n", lib ? lib_base_name(lib->cur->copy) : "refused");
		_exit(!lib && has(rewire_lib_error(NULL), "the path of its copy is too long (over 4096 "
				  "bytes): set XDG_RUNTIME_DIR to a shorter directory") ? 0 : 1);
	}
	int status = -1;
	waitpid(pid, &status, 0);
	CHECK("a copy path longer than PATH_MAX is refused, not truncated",
	      pid > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %#x", status);
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	const char *tmpdir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	snprintf(tmp, sizeof tmp, "%s/rewire-api-XXXXXX", tmpdir);
	if (!mkdtemp(tmp)) {
		fprintf(stderr, "test_api: mkdtemp failed\n");
		return 2;
	}
	/* The copies go to $XDG_RUNTIME_DIR/rewire: here, in the temp dir. */
	if (mkdir(at("xdg"), 0700) < 0 || setenv("XDG_RUNTIME_DIR", at("xdg"), 1) < 0 ||
	    build_all()) {
		fprintf(stderr, "test_api: cannot build the test libraries (see %s/log)\n", tmp);
		return 2;
	}
	test_long_copy_path();
	if (!getenv("KEEP_TMP"))
		sh("cd / && rm -rf '%s'", tmp);
	else
		printf("# files kept in %s\n", tmp);
	return 0;
}
