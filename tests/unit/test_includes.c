/* Unit tests of the include scanner (src/front/includes.c): small trees of
 * sources and headers, and the headers it finds for a unit.
 *
 * With arguments, test_includes DB.json...: for every unit of each
 * compile_commands.json, the scanner's headers against the compiler's own
 * (`cc -MM`): a header the compiler includes that the scanner misses is a
 * FAIL. The CPU time the scan of all units took is printed. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "front/cc.h"
#include "front/includes.h"
#include "util.h"

static char root[] = "/tmp/rewire-includes.XXXXXX";
static int failed;

static void put(const char *path, const char *text)
{
	char full[PATH_MAX], dir[PATH_MAX], cmd[PATH_MAX + 16];
	snprintf(full, sizeof full, "%s/%s", root, path);
	snprintf(dir, sizeof dir, "%s", full);
	*strrchr(dir, '/') = 0;
	snprintf(cmd, sizeof cmd, "mkdir -p %s", dir);
	if (system(cmd) != 0)
		printf("FAIL includes: cannot make %s\n", dir);
	FILE *f = fopen(full, "w");
	if (!f) {
		printf("FAIL includes: cannot write %s\n", full);
		return;
	}
	fputs(text, f);
	fclose(f);
}

/* A unit compiled in root/dir with args (space-separated), for src. */
static void unit_of(struct cc_unit *u, const char *dir, const char *args, const char *src)
{
	char line[PATH_MAX + 1024], path[PATH_MAX], *save = NULL;
	memset(u, 0, sizeof *u);
	snprintf(path, sizeof path, "%s/%s", root, dir);
	u->dir = rw_strdup(path);
	snprintf(path, sizeof path, "%s/%s", root, src);
	u->src = rw_strdup(path);
	snprintf(line, sizeof line, "cc %s -c %s", args, path);
	u->argv = rw_calloc(64, sizeof *u->argv);
	for (char *w = strtok_r(line, " ", &save); w && u->argc < 63; w = strtok_r(NULL, " ", &save))
		u->argv[u->argc++] = rw_strdup(w);
}

static void unit_free(struct cc_unit *u)
{
	for (int i = 0; i < u->argc; i++)
		free(u->argv[i]);
	for (size_t i = 0; i < u->ndeps; i++)
		free(u->deps[i]);
	free(u->argv);
	free(u->deps);
	free(u->src);
	free(u->dir);
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The unit's headers, relative to root, sorted, comma-separated. */
static void deps_list(const struct cc_unit *u, char *out, size_t cap)
{
	size_t n = strlen(root);
	char **v = rw_calloc(u->ndeps + 1, sizeof *v);
	for (size_t i = 0; i < u->ndeps; i++)
		v[i] = u->deps[i];
	qsort(v, u->ndeps, sizeof *v, by_name);
	out[0] = 0;
	for (size_t i = 0; i < u->ndeps; i++) {
		const char *d = strncmp(v[i], root, n) ? v[i] : v[i] + n + 1;
		snprintf(out + strlen(out), cap - strlen(out), "%s%s", i ? "," : "", d);
	}
	free(v);
}

/* want: the sorted list, or NULL when the scan must say it cannot know. */
static void check(struct inc_cache *c, const char *title, const char *dir, const char *args,
		  const char *src, const char *want)
{
	struct cc_unit u;
	char got[4096];
	unit_of(&u, dir, args, src);
	int rc = inc_unit_deps(c, &u);
	deps_list(&u, got, sizeof got);
	if (!want && rc == 0)
		printf("FAIL includes: %s: found {%s}, expected 'cannot know'\n", title, got);
	else if (want && rc < 0)
		printf("FAIL includes: %s: 'cannot know', expected {%s}\n", title, want);
	else if (want && strcmp(got, want))
		printf("FAIL includes: %s: found {%s}, expected {%s}\n", title, got, want);
	else
		printf("PASS includes: %s\n", title);
	failed |= want ? rc < 0 || strcmp(got, want) : rc == 0;
	unit_free(&u);
}

static void tree(void)
{
	put("p/main.c", "#include \"a.h\"\n"
			"#include <stdio.h>\n"
			"#include <lib.h>\n"
			"#include \"sub/b.h\"\n"
			"#include \"nowhere.h\"\n"
			"#include <missing.h>\n");
	put("p/a.h", "#ifndef A\n#define A\n#include \"a.h\"\n#endif\n");
	put("p/sub/b.h", "#include \"c.h\"\n#include \"../d.h\"\n");
	put("p/sub/c.h", "#include \"b.h\"\n");	/* a cycle */
	put("p/d.h", "");
	put("p/inc/lib.h", "#include \"libpriv.h\"\n");
	put("p/inc/libpriv.h", "");
	put("p/q/only.h", "");
	put("p/quote.c", "#include \"only.h\"\n#include <only.h>\n");
	put("p/q2/angle.h", "");
	put("p/angle.c", "#include <angle.h>\n");
}

static void lexing(void)
{
	put("l/main.c", "const char *s = \"/*\";\n"
			"#include \"after_string.h\"\n"
			"char c = '\"'; /* \" */\n"
			"#include \"after_char.h\"\n"
			"/*\n#include \"in_comment.h\"\n*/\n"
			"// #include \"line_comment.h\"\n"
			"  #  /* x */ include\t\"spaced.h\"\n"
			"#inc\\\nlude \"spliced.h\"\n"
			"#if 0\n#include \"branch.h\"\n#else\n#include_next <next.h>\n#endif\n"
			"#import \"imported.h\"\n"
			"x = 1; #include \"not_at_line_start.h\"\n"
			"#define M \\\n  #include \"in_macro.h\"\n");
	const char *names[] = {"after_string", "after_char", "in_comment", "line_comment", "spaced",
			       "spliced", "branch", "imported", "not_at_line_start", "in_macro"};
	char path[64];
	for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
		snprintf(path, sizeof path, "l/%s.h", names[i]);
		put(path, "");
	}
	put("l/one/next.h", "#include_next <next.h>\n");
	put("l/two/next.h", "");
	put("l/cxx.cc", "int n = 1'000'000; const char *r = R\"x(\" /* )x\";\n"
			"#include \"after_raw.h\"\n");
	put("l/after_raw.h", "");
	put("l/computed.c", "#define H \"spaced.h\"\n#include H\n");
	put("l/indirect.c", "#include \"computes.h\"\n");
	put("l/computes.h", "#if 0\n#include SOMETHING\n#endif\n");
}

static void links_and_options(void)
{
	char target[PATH_MAX], link[PATH_MAX];
	put("k/src/real.h", "#include \"beside.h\"\n");
	put("k/include/beside.h", "");
	put("k/main.c", "#include \"include/real.h\"\n");
	snprintf(target, sizeof target, "../src/real.h");
	snprintf(link, sizeof link, "%s/k/include/real.h", root);
	if (symlink(target, link) < 0)
		printf("FAIL includes: cannot link %s\n", link);
	put("k/build/config.h", "#include \"conf2.h\"\n");
	put("k/build/conf2.h", "");
	put("k/build/macros.h", "");
	put("k/sys/s.h", "");
	put("k/after/t.h", "");
	put("k/opts.c", "#include <s.h>\n#include <t.h>\n");
}

/* compile_commands.json as bear writes it for a one-step `clang -g -O2 -o
 * f f.c`: the driver's command and clang's inner -cc1 step; and a file
 * compiled twice. One unit each, the first command. */
static void db_entries(void)
{
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/cc.json", root);
	FILE *f = fopen(path, "w");
	fprintf(f, "[{\"directory\": \"%s\", \"file\": \"f.c\", \"arguments\": "
		   "[\"clang\", \"-g\", \"-O2\", \"-o\", \"f\", \"f.c\"]},\n"
		   " {\"directory\": \"%s\", \"file\": \"f.c\", \"arguments\": "
		   "[\"/usr/lib/llvm-14/bin/clang\", \"-cc1\", \"-triple\", \"x86_64-pc-linux-gnu\", "
		   "\"-emit-obj\", \"-o\", \"/tmp/f-1.o\", \"-x\", \"c\", \"f.c\"]},\n"
		   " {\"directory\": \"%s\", \"file\": \"g.c\", \"arguments\": "
		   "[\"gcc\", \"-O1\", \"-c\", \"g.c\"]},\n"
		   " {\"directory\": \"%s\", \"file\": \"g.c\", \"arguments\": "
		   "[\"gcc\", \"-O3\", \"-c\", \"g.c\"]}]\n", root, root, root, root);
	fclose(f);
	struct cc_db db;
	int ok = cc_load(&db, path) == 0 && db.n == 2 && !strcmp(rw_basename(db.units[0].src), "f.c") &&
		 !strcmp(db.units[0].argv[0], "clang") && !strcmp(rw_basename(db.units[1].src), "g.c") &&
		 !strcmp(db.units[1].argv[1], "-O1");
	printf("%s includes: compile_commands.json: clang's -cc1 step and a second command of a file "
	       "are left out\n", ok ? "PASS" : "FAIL");
	failed |= !ok;
	if (db.units)
		cc_free(&db);
}

static void unit_tests(void)
{
	struct inc_cache *c = inc_new();
	tree();
	db_entries();
	lexing();
	links_and_options();
	check(c, "quoted, bracketed, nested, a cycle; the compiler's own and missing ones left out",
	      "p", "-I inc", "p/main.c", "p/a.h,p/d.h,p/inc/lib.h,p/inc/libpriv.h,p/sub/b.h,p/sub/c.h");
	check(c, "the same files through another search path (-Iinc joined, cached reads)", "p",
	      "-Iinc -O2", "p/main.c", "p/a.h,p/d.h,p/inc/lib.h,p/inc/libpriv.h,p/sub/b.h,p/sub/c.h");
	check(c, "no -I: <lib.h> is not found", "p", "", "p/main.c", "p/a.h,p/d.h,p/sub/b.h,p/sub/c.h");
	check(c, "-iquote serves \"x\" only", "p", "-iquote q", "p/quote.c", "p/q/only.h");
	check(c, "-I serves <x>, relative to the command's directory", "p/q", "-I ../q2", "p/angle.c",
	      "p/q2/angle.h");
	check(c, "comments, literals, blanks, line splices, #if 0, #include_next, #import", "l",
	      "-I one -I two", "l/main.c",
	      "l/after_char.h,l/after_string.h,l/branch.h,l/imported.h,l/one/next.h,l/spaced.h,"
	      "l/spliced.h,l/two/next.h");
	check(c, "C++ digit separators and raw strings", "l", "", "l/cxx.cc", "l/after_raw.h");
	check(c, "an #include of a macro: cannot know", "l", "", "l/computed.c", NULL);
	check(c, "an #include of a macro in a header, in #if 0: cannot know", "l", "", "l/indirect.c",
	      NULL);
	check(c, "a header that is a link: \"x\" beside the link, the target listed", "k", "",
	      "k/main.c", "k/include/beside.h,k/src/real.h");
	check(c, "-include and -imacros (from the command's directory), -isystem, -idirafter", "k",
	      "-include build/config.h -imacros build/macros.h -isystem sys -idirafter after",
	      "k/opts.c", "k/after/t.h,k/build/conf2.h,k/build/config.h,k/build/macros.h,k/sys/s.h");
	check(c, "-include found along the \"x\" chain (-I)", "k", "-I build -include conf2.h",
	      "k/opts.c", "k/build/conf2.h");
	check(c, "options in a file (@FILE): cannot know", "k", "@build/flags", "k/opts.c", NULL);
	inc_free(c);
}

/* --- against the compiler ---------------------------------------------------- */

/* The unit's headers as `cc -MM` lists them, into m (cc_read_deps). */
static int compiler_deps(const struct cc_unit *u, struct cc_unit *m, const char *depfile)
{
	pid_t pid = fork();
	if (pid == 0) {
		char **argv = rw_calloc((size_t)u->argc + 4, sizeof *argv);
		int n = 0, null = open("/dev/null", O_WRONLY);
		for (int i = 0; i < u->argc; i++)
			argv[n++] = u->argv[i];
		argv[n++] = "-MM";
		argv[n++] = "-MF";
		argv[n++] = (char *)depfile;
		dup2(null, 1);
		if (chdir(u->dir) == 0)
			execvp(argv[0], argv);
		_exit(127);
	}
	int status;
	if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status))
		return -1;
	memset(m, 0, sizeof *m);
	m->dir = u->dir;
	m->src = u->src;
	return cc_read_deps(m, depfile);
}

static int listed(const struct cc_unit *u, const char *path)
{
	for (size_t i = 0; i < u->ndeps; i++)
		if (!strcmp(u->deps[i], path))
			return 1;
	return 0;
}

/* Every header the compiler includes is one the scanner found. */
static void compare_unit(const struct cc_unit *u, const char *depfile, size_t *extra,
			 size_t *from_cc)
{
	struct cc_unit m;
	if (compiler_deps(u, &m, depfile) < 0) {
		printf("FAIL includes: %s: `%s -MM` failed\n", u->src, u->argv[0]);
		failed = 1;
		return;
	}
	for (size_t i = 0; i < m.ndeps; i++) {
		if (!listed(u, m.deps[i])) {
			printf("FAIL includes: %s: the scanner misses %s\n", u->src, m.deps[i]);
			failed = 1;
		}
	}
	for (size_t i = 0; i < u->ndeps; i++)
		*extra += !listed(&m, u->deps[i]);
	*from_cc += m.ndeps;
	for (size_t i = 0; i < m.ndeps; i++)
		free(m.deps[i]);
	free(m.deps);
}

/* CPU time: the machine may be busy. */
static uint64_t cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void against_compiler(const char *db_path)
{
	struct cc_db db;
	char depfile[PATH_MAX];
	size_t unknown = 0, scanned = 0, extra = 0, from_cc = 0;
	if (cc_load(&db, db_path) < 0) {
		printf("FAIL includes: %s\n", rw_error());
		failed = 1;
		return;
	}
	struct inc_cache *c = inc_new();
	uint64_t t0 = cpu_ns();
	int *rc = rw_calloc(db.n + 1, sizeof *rc);
	for (size_t i = 0; i < db.n; i++)
		rc[i] = inc_unit_deps(c, &db.units[i]);
	uint64_t took = cpu_ns() - t0;
	inc_free(c);
	snprintf(depfile, sizeof depfile, "%s/mm.d", root);
	for (size_t i = 0; i < db.n; i++) {
		if (rc[i] < 0) {
			unknown++;
			continue;
		}
		scanned += db.units[i].ndeps;
		compare_unit(&db.units[i], depfile, &extra, &from_cc);
	}
	printf("%s: %zu units scanned in %.1f ms of CPU (%zu cannot be known); %zu headers listed, "
	       "%zu by cc -MM, %zu more by the scanner\n", db_path, db.n, (double)took / 1e6, unknown,
	       scanned, from_cc, extra);
	printf("%s includes: %s: the scanner lists every header cc -MM does\n",
	       failed ? "FAIL" : "PASS", db_path);
	free(rc);
	cc_free(&db);
}

int main(int argc, char **argv)
{
	if (!mkdtemp(root)) {
		printf("FAIL includes: cannot make %s\n", root);
		return 1;
	}
	if (argc == 1)
		unit_tests();
	for (int i = 1; i < argc; i++)
		against_compiler(argv[i]);
	char cmd[PATH_MAX];
	snprintf(cmd, sizeof cmd, "rm -rf %s", root);
	if (system(cmd)) {}
	return failed;
}
