/* dylib.c: what the dylib reload API costs (bench/dylib.sh).
 *
 * Usage: dylib PLUGIN.so A.so B.so N. A.so and B.so are two builds of
 * dylib_plugin.c; PLUGIN.so is renamed over by one and then the other, N
 * times, and each rewire_lib_update is timed: once with files last written
 * long ago, once just written (rewire then stats the file a second time a
 * few ms later, to see that it stopped changing). For comparison: the bare
 * loader work a reload cannot avoid (copy the file, dlopen RTLD_NOW, dlsym,
 * dlclose). Then the cost of one call to add() three ways: through the
 * pointer rewire_lib_sym gave (a trampoline), directly (the pointer dlsym
 * gives), and dlsym before every call.
 *
 * Output: lines "NAME us=X X X..." (one value per run), read by dylib.sh. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "rewire_lib.h"

#define CALLS 2000000
#define ROUNDS 21

typedef int (*add_fn)(int);

static double now_us(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

/* Put src in place as a build does: a new name, renamed over dst. */
static void install(const char *src, const char *dst, int fresh)
{
	char tmp[4096];
	snprintf(tmp, sizeof tmp, "%s.tmp", dst);
	unlink(tmp);
	if (link(src, tmp) < 0 || rename(tmp, dst) < 0)
		perror("install"), exit(1);
	struct timespec t[2];
	clock_gettime(CLOCK_REALTIME, &t[0]);
	if (!fresh)
		t[0].tv_sec -= 10;
	t[1] = t[0];
	utimensat(AT_FDCWD, dst, t, 0);
}

static void reloads(rewire_lib *lib, const char *path, char **alt, int n, int fresh)
{
	printf("%s us=", fresh ? "reload_fresh" : "reload");
	for (int i = 0; i < n; i++) {
		install(alt[i % 2], path, fresh);
		double t0 = now_us();
		int rc = rewire_lib_update(lib);
		double t1 = now_us();
		if (rc != 1)
			fprintf(stderr, "update returned %d: %s\n", rc, rewire_lib_error(lib)), exit(1);
		printf("%.1f ", t1 - t0);
	}
	printf("\n");
}

/* What any reload does at least: copy, dlopen RTLD_NOW, dlsym, dlclose. */
static void bare_loads(const char *src, int n)
{
	char copy[] = "/tmp/rewire-bench-XXXXXX";
	printf("bare_load us=");
	for (int i = 0; i < n; i++) {
		double t0 = now_us();
		int fd = mkstemp(copy), in = open(src, O_RDONLY);
		struct stat st;
		fstat(in, &st);
		char *buf = malloc(st.st_size);
		if (read(in, buf, st.st_size) != st.st_size || write(fd, buf, st.st_size) != st.st_size)
			perror("copy"), exit(1);
		close(in), close(fd), free(buf);
		void *h = dlopen(copy, RTLD_NOW | RTLD_LOCAL);
		if (!h || !dlsym(h, "add"))
			fprintf(stderr, "dlopen: %s\n", dlerror()), exit(1);
		dlclose(h);
		double t1 = now_us();
		unlink(copy);
		strcpy(copy, "/tmp/rewire-bench-XXXXXX");
		printf("%.1f ", t1 - t0);
	}
	printf("\n");
}

/* ns per call of fp, ROUNDS times. volatile: a call each time, no inlining. */
static void calls(const char *name, add_fn f)
{
	add_fn volatile fp = f;
	printf("%s ns=", name);
	for (int r = 0; r < ROUNDS; r++) {
		int x = 0;
		double t0 = now_us();
		for (int i = 0; i < CALLS; i++)
			x = fp(x);
		double t1 = now_us();
		if (x == 42)
			printf(" ");
		printf("%.3f ", (t1 - t0) * 1e3 / CALLS);
	}
	printf("\n");
}

static void dlsym_calls(void *h)
{
	printf("dlsym_each ns=");
	for (int r = 0; r < ROUNDS; r++) {
		int x = 0;
		double t0 = now_us();
		for (int i = 0; i < CALLS / 10; i++)
			x = ((add_fn)dlsym(h, "add"))(x);
		double t1 = now_us();
		if (x == 42)
			printf(" ");
		printf("%.3f ", (t1 - t0) * 1e3 / (CALLS / 10));
	}
	printf("\n");
}

int main(int argc, char **argv)
{
	if (argc != 5)
		return fprintf(stderr, "usage: dylib PLUGIN.so A.so B.so N\n"), 2;
	int n = atoi(argv[4]);
	static int state;
	install(argv[2], argv[1], 0);
	rewire_lib *lib = rewire_lib_open(argv[1], &state);
	add_fn tramp = lib ? (add_fn)rewire_lib_sym(lib, "add") : NULL;
	if (!tramp)
		return fprintf(stderr, "%s\n", rewire_lib_error(lib)), 1;
	reloads(lib, argv[1], argv + 2, n, 0);
	reloads(lib, argv[1], argv + 2, n, 1);
	bare_loads(argv[2], n);
	void *h = dlopen(argv[3], RTLD_NOW | RTLD_LOCAL);
	add_fn direct = h ? (add_fn)dlsym(h, "add") : NULL;
	if (!direct)
		return fprintf(stderr, "dlopen: %s\n", dlerror()), 1;
	calls("direct", direct);
	calls("trampoline", tramp);
	dlsym_calls(h);
	struct stat st;
	stat(argv[2], &st);
	printf("plugin bytes=%lld\n", (long long)st.st_size);
	rewire_lib_close(lib);
	return 0;
}
