/* The Rust front-end: cargo builds, rewire records, replays and patches.
 *
 * `rewire run -- cargo run ARGS` runs `cargo build ARGS` with RUSTC set to
 * rewire itself (the real rustc in REWIRE_RUSTC). Not a rustc wrapper:
 * cargo hashes a wrapper into each crate's metadata, so the symbols, and the
 * binary, would differ from a plain `cargo build`; with RUSTC they are the
 * same, byte for byte, and a program built without rewire can be attached.
 * As rustc, rewire records each local crate's (a bin or lib of a path
 * package: cargo caps the lints of the others) rustc command line,
 * environment and directory (in <target>/<profile>/rewire/<crate>/), and
 * adds `-C linker=rewire` to a binary crate. As the linker, rewire keeps
 * the crate's .rcgu.o objects, one per codegen unit (cgus.c): at the real
 * build they are the baseline (then the real linker runs), at a replay
 * the patch, and nothing else is written. rewire then starts the built
 * binary under the agent and watches the crate's sources (its dep-info); a
 * save replays the recorded rustc and patches what changed.
 *
 * The records live in the target directory, so a binary cargo finds fresh
 * (no rustc run) still has them from the build that made it. A record older
 * than its crate's output (a build without rewire since) is stale: rewire
 * removes cargo's fingerprint of the crate, and cargo builds it again. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "cargo.h"
#include "cgus.h"
#include "util.h"

extern char **environ;

static void mkdirs(const char *path)
{
	char buf[PATH_MAX * 2];
	snprintf(buf, sizeof buf, "%s", path);
	for (char *p = buf + 1; *p; p++)
		if (*p == '/') {
			*p = 0;
			mkdir(buf, 0755);
			*p = '/';
		}
	mkdir(buf, 0755);
}

/* NUL-separated strings, one file each: argv, environ. */
static int write_list(const char *path, char **list)
{
	FILE *f = fopen(path, "w");
	if (!f)
		return -1;
	for (; *list; list++)
		fwrite(*list, 1, strlen(*list) + 1, f);
	return fclose(f);
}

/* The crate's environment as rustc sees it without rewire: no RUSTC
 * pointing at rewire, none of rewire's own variables. */
static int write_env(const char *path)
{
	FILE *f = fopen(path, "w");
	if (!f)
		return -1;
	for (char **e = environ; *e; e++)
		if (strncmp(*e, "RUSTC=", 6) && strncmp(*e, "REWIRE_", 7))
			fwrite(*e, 1, strlen(*e) + 1, f);
	return fclose(f);
}

static char **read_list(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return NULL;
	size_t n = 0, cap = 0, len = 0;
	char **out = NULL, *line = NULL;
	ssize_t got;
	while ((got = getdelim(&line, &len, 0, f)) > 0) {
		out = rw_grow(out, &cap, n, sizeof *out);
		out[n++] = rw_strdup(line);
	}
	free(line);
	fclose(f);
	out = rw_grow(out, &cap, n, sizeof *out);
	out[n] = NULL;
	return out;
}

static const char *arg_after(char **argv, const char *flag)
{
	for (int i = 0; argv[i]; i++)
		if (!strcmp(argv[i], flag) && argv[i + 1])
			return argv[i + 1];
	return NULL;
}

/* -C name=value, either as "-C" "name=value" or "-Cname=value". */
static const char *codegen_opt(char **argv, const char *name)
{
	size_t n = strlen(name);
	for (int i = 0; argv[i]; i++) {
		const char *v = !strcmp(argv[i], "-C") ? argv[i + 1] :
				!strncmp(argv[i], "-C", 2) ? argv[i] + 2 : NULL;
		if (v && !strncmp(v, name, n) && v[n] == '=')
			return v + n + 1;
	}
	return NULL;
}

/* A crate of a path package, the user's own: cargo caps the lints of
 * every other (registry, git) crate. */
static int is_local(char **argv)
{
	const char *emit = arg_after(argv, "--emit");
	if (!emit) {
		for (int i = 0; argv[i] && !emit; i++)
			if (!strncmp(argv[i], "--emit=", 7))
				emit = argv[i] + 7;
	}
	/* A build script's probe (autocfg) compiles, but links nothing. */
	return arg_after(argv, "--cap-lints") == NULL && emit && strstr(emit, "link");
}

static int is_lib_crate(char **argv)
{
	const char *type = arg_after(argv, "--crate-type");
	const char *name = arg_after(argv, "--crate-name");
	return type && (!strcmp(type, "lib") || !strcmp(type, "rlib")) && name && strcmp(name, "___");
}

static int is_bin_crate(char **argv)
{
	const char *type = arg_after(argv, "--crate-type");
	const char *name = arg_after(argv, "--crate-name");
	return type && !strcmp(type, "bin") && name && strcmp(name, "build_script_build") &&
	       strcmp(name, "___");
}

static void record(char **args, const char *dir)
{
	char path[PATH_MAX + 1024], cwd[PATH_MAX];
	mkdirs(dir);
	snprintf(path, sizeof path, "%s/args", dir);
	write_list(path, args);
	snprintf(path, sizeof path, "%s/env", dir);
	write_env(path);
	snprintf(path, sizeof path, "%s/cwd", dir);
	FILE *f = fopen(path, "w");
	if (f && getcwd(cwd, sizeof cwd))
		fputs(cwd, f);
	if (f)
		fclose(f);
}

static int run_wait(char **argv);

/* A library crate's objects are members of its .rlib: taken out into the
 * directory out, one file per codegen unit (cgus.c). */
static int rlib_objects(char **args, const char *out)
{
	const char *outdir = arg_after(args, "--out-dir"), *name = arg_after(args, "--crate-name");
	const char *extra = codegen_opt(args, "extra-filename");
	char *rlib, *tmp, *cmd;
	if (asprintf(&rlib, "%s/lib%s%s.rlib", outdir, name, extra ? extra : "") < 0 ||
	    asprintf(&tmp, "%s.d", out) < 0 ||
	    asprintf(&cmd, "rm -rf '%s' && mkdir -p '%s' && cd '%s' && ar x '%s'", tmp, tmp, tmp,
		     rlib) < 0)
		return -1;
	char *sh[] = {"sh", "-c", cmd, NULL};
	int rc = run_wait(sh) == 0 ? 0 : -1;
	glob_t g;
	char pattern[PATH_MAX + 16];
	snprintf(pattern, sizeof pattern, "%s/*.o", tmp);
	if (rc == 0 && glob(pattern, 0, NULL, &g) == 0) {
		rc = cgus_make(out, g.gl_pathv, (int)g.gl_pathc);
		globfree(&g);
	} else {
		rc = -1;
	}
	cgus_remove(tmp);
	free(rlib);
	free(tmp);
	free(cmd);
	return rc;
}

/* args: RUSTC ARGS... At a build (cargo's) it records the crate and makes
 * the baseline; at a replay (REWIRE_LINK_CAPTURE, rewire's session) it makes
 * the patch object REWIRE_LINK_OUT. Queries (rustc -vV) and other crates
 * pass through. */
static int wrap(char **args, int n)
{
	int replay = getenv("REWIRE_LINK_CAPTURE") != NULL;
	const char *outdir = arg_after(args, "--out-dir");
	char dir[PATH_MAX + 512], base[PATH_MAX + 600];
	static char linker[PATH_MAX + 16], out[PATH_MAX + 640];
	if (outdir && is_local(args) && (is_bin_crate(args) || is_lib_crate(args))) {
		char self[PATH_MAX];
		ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
		self[len > 0 ? len : 0] = 0;
		snprintf(dir, sizeof dir, "%s/../rewire/%s", outdir, arg_after(args, "--crate-name"));
		snprintf(base, sizeof base, "%s/base", dir);
		snprintf(out, sizeof out, "%s", replay ? getenv("REWIRE_LINK_OUT") : base);
		if (is_bin_crate(args) && !replay) {
			snprintf(linker, sizeof linker, "linker=%s", self);
			args[n++] = "-C";
			args[n++] = linker;
			args[n] = NULL;
		}
		if (!replay)
			record(args, dir);
		if (is_lib_crate(args)) {
			/* rustc makes the .rlib; its objects are the crate's code. */
			unsetenv("REWIRE_CARGO");
			unsetenv("REWIRE_RUSTC");
			unsetenv("REWIRE_LINK_OUT");
			unsetenv("REWIRE_LINK_CAPTURE");
			int rc = run_wait(args);
			if (rc == 0 && rlib_objects(args, out) < 0) {
				fprintf(stderr, "rewire: error: cannot take the objects out of %s's rlib\n",
					arg_after(args, "--crate-name"));
				return replay ? 1 : 0;
			}
			return rc;
		}
		setenv("REWIRE_LINK_OUT", out, 1);	/* the link makes the object */
	}
	unsetenv("REWIRE_CARGO");
	unsetenv("REWIRE_RUSTC");
	execvp(args[0], args);
	fprintf(stderr, "rewire: error: cannot run %s: %s\n", args[0], strerror(errno));
	return 127;
}

int cargo_wrapper_main(int argc, char **argv)
{
	char **args = rw_calloc((size_t)argc + 4, sizeof *args);
	int n = 0;
	for (int i = 1; i < argc; i++)
		args[n++] = argv[i];
	return wrap(args, n);
}

int cargo_rustc_main(int argc, char **argv)
{
	char **args = rw_calloc((size_t)argc + 5, sizeof *args);
	int n = 0;
	args[n++] = getenv("REWIRE_RUSTC");
	for (int i = 1; i < argc; i++)
		args[n++] = argv[i];
	return wrap(args, n);
}

static int run_wait(char **argv)
{
	pid_t pid = fork();
	if (pid == 0) {
		execvp(argv[0], argv);
		_exit(127);
	}
	int status;
	if (pid < 0 || waitpid(pid, &status, 0) < 0)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* The static libraries of the link (std's and the crates' rlibs, .a files),
 * beside the baseline: a patch takes from them the library code the
 * binary does not contain. */
static void record_archives(int argc, char **argv, const char *out)
{
	char path[PATH_MAX + 16], real[PATH_MAX];
	char **list = rw_calloc((size_t)argc + 1, sizeof *list);
	int n = 0;
	for (int i = 1; i < argc; i++) {
		size_t len = strlen(argv[i]);
		if (argv[i][0] != '-' && ((len > 5 && !strcmp(argv[i] + len - 5, ".rlib")) ||
					  (len > 2 && !strcmp(argv[i] + len - 2, ".a"))))
			list[n++] = realpath(argv[i], real) ? rw_strdup(real) : rw_strdup(argv[i]);
	}
	snprintf(path, sizeof path, "%s", out);
	char *slash = strrchr(path, '/');
	snprintf(slash ? slash + 1 : path, sizeof path - (size_t)(slash ? slash + 1 - path : 0),
		 "archives");
	write_list(path, list);
	for (int i = 0; i < n; i++)
		free(list[i]);
	free(list);
}

int cargo_linker_main(int argc, char **argv)
{
	const char *out = getenv("REWIRE_LINK_OUT");
	int capture = getenv("REWIRE_LINK_CAPTURE") != NULL;
	char **objs = rw_calloc((size_t)argc, sizeof *objs);
	int n = 0;
	for (int i = 1; i < argc; i++) {
		size_t len = strlen(argv[i]);
		if (len > 2 && !strcmp(argv[i] + len - 2, ".o") && argv[i][0] != '-')
			objs[n++] = argv[i];
	}
	unsetenv("REWIRE_LINK_OUT");
	unsetenv("REWIRE_LINK_CAPTURE");
	int rc = cgus_make(out, objs, n);
	free(objs);
	if (rc < 0) {
		fprintf(stderr, "rewire: error: cannot keep the crate's objects: %s\n", rw_error());
		if (capture)
			return 1;
	}
	if (capture)
		return 0;	/* a replay: the binary on disk is never rewritten */
	record_archives(argc, argv, out);
	argv[0] = "cc";
	rc = run_wait(argv);
	if (rc == 127)
		fprintf(stderr, "rewire: error: cannot run the linker cc\n");
	/* The baseline is newer than the binary it was made for: a build
	 * without rewire makes a newer binary, and the record stale. */
	if (rc == 0)
		utimensat(AT_FDCWD, out, NULL, 0);
	return rc;
}

/* A local crate cargo built or found fresh: its target name, and the
 * file rewire's record must be newer than (the executable, the .rlib). */
struct artifact {
	char *name, *file;
	int bin;
};

struct artifacts {
	struct artifact *v;
	int n;
	size_t cap;
};

static void artifacts_free(struct artifacts *a)
{
	for (int i = 0; i < a->n; i++) {
		free(a->v[i].name);
		free(a->v[i].file);
	}
	free(a->v);
	memset(a, 0, sizeof *a);
}

/* One of cargo's JSON messages: the executable, and the local crates. */
static void take_message(json_object *msg, char *exe, size_t cap, struct artifacts *a)
{
	json_object *e, *pkg, *target, *name, *kinds, *files;
	if (json_object_object_get_ex(msg, "executable", &e) && json_object_get_string(e))
		snprintf(exe, cap, "%s", json_object_get_string(e));
	if (!json_object_object_get_ex(msg, "package_id", &pkg) ||
	    strncmp(json_object_get_string(pkg), "path+file://", 12) ||
	    !json_object_object_get_ex(msg, "target", &target) ||
	    !json_object_object_get_ex(target, "name", &name) ||
	    !json_object_object_get_ex(target, "kind", &kinds) ||
	    !json_object_object_get_ex(msg, "filenames", &files))
		return;
	const char *kind = json_object_get_string(json_object_array_get_idx(kinds, 0));
	const char *file = NULL;
	int bin = kind && !strcmp(kind, "bin");
	if (bin && json_object_object_get_ex(msg, "executable", &e))
		file = json_object_get_string(e);
	for (size_t i = 0; !bin && kind && (!strcmp(kind, "lib") || !strcmp(kind, "rlib")) &&
			   i < json_object_array_length(files); i++) {
		const char *f = json_object_get_string(json_object_array_get_idx(files, i));
		size_t len = f ? strlen(f) : 0;
		if (len > 5 && !strcmp(f + len - 5, ".rlib"))
			file = f;
	}
	if (!file)
		return;
	a->v = rw_grow(a->v, &a->cap, (size_t)a->n, sizeof *a->v);
	a->v[a->n].name = rw_strdup(json_object_get_string(name));
	a->v[a->n].file = rw_strdup(file);
	a->v[a->n++].bin = bin;
}

/* `cargo build` with rewire as rustc; the path of the binary cargo run
 * would start (the last executable artifact), and the local crates. */
static int build(char **cargo_args, int nargs, char *exe, size_t cap, struct artifacts *arts)
{
	char self[PATH_MAX];
	int fds[2];
	ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
	self[len > 0 ? len : 0] = 0;
	if (pipe(fds) < 0)
		return rw_fail("pipe: %s", strerror(errno));
	char **argv = rw_calloc((size_t)nargs + 4, sizeof *argv);
	int n = 0;
	argv[n++] = "cargo";
	argv[n++] = "build";
	argv[n++] = "--message-format=json-render-diagnostics";
	for (int i = 0; i < nargs; i++)
		argv[n++] = cargo_args[i];
	pid_t pid = fork();
	if (pid == 0) {
		dup2(fds[1], 1);
		close(fds[0]);
		close(fds[1]);
		const char *rustc = getenv("RUSTC");
		setenv("REWIRE_RUSTC", rustc && *rustc ? rustc : "rustc", 1);
		setenv("RUSTC", self, 1);
		setenv("REWIRE_CARGO", "1", 1);
		execvp("cargo", argv);
		fprintf(stderr, "rewire: error: cannot run cargo: %s\n", strerror(errno));
		_exit(127);
	}
	close(fds[1]);
	free(argv);
	FILE *f = fdopen(fds[0], "r");
	char *line = NULL;
	size_t lcap = 0;
	exe[0] = 0;
	artifacts_free(arts);
	while (f && getline(&line, &lcap, f) > 0) {
		json_object *msg = json_tokener_parse(line);
		if (msg)
			take_message(msg, exe, cap, arts);
		if (msg)
			json_object_put(msg);
	}
	free(line);
	if (f)
		fclose(f);
	int status;
	waitpid(pid, &status, 0);
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		return rw_fail("cargo build failed");
	if (!exe[0])
		return rw_fail("cargo built no executable");
	return 0;
}

/* The target profile's directory of a crate's output: the executable's
 * own, the .rlib's parent (deps/). */
static void profile_dir(const struct artifact *a, char *out, size_t cap)
{
	snprintf(out, cap, "%s", a->file);
	for (int up = a->bin ? 1 : 2; up > 0; up--) {
		char *slash = strrchr(out, '/');
		if (slash)
			*slash = 0;
	}
}

/* Is the record in dir (its rustc arguments) of the build cargo has now
 * for a? Its output, --out-dir and -C extra-filename, must be a's file: the
 * one cargo copies a binary from (hard-linked), or a library itself. An
 * earlier plain build (another extra-filename) that cargo finds fresh
 * again has an older mtime than the record: times alone cannot tell. */
static const char *dirname_of(const char *path, char *out, size_t cap)
{
	snprintf(out, cap, "%s", path);
	char *slash = strrchr(out, '/');
	if (slash)
		*slash = 0;
	return out;
}

static int record_is_of(const char *dir, const struct artifact *a, const char *crate)
{
	char path[PATH_MAX + 320], out[2 * PATH_MAX + 600];
	snprintf(path, sizeof path, "%s/args", dir);
	char **args = read_list(path);
	const char *outdir = args ? arg_after(args, "--out-dir") : NULL, *extra = NULL;
	for (int i = 0; args && args[i] && !extra; i++)
		if (!strncmp(args[i], "extra-filename=", 15))
			extra = args[i] + 15;
		else if (!strncmp(args[i], "-Cextra-filename=", 17))
			extra = args[i] + 17;
	int same = 1;	/* what cannot be told stays as the times say */
	if (outdir && extra) {
		struct stat sa, sr;
		snprintf(out, sizeof out, "%s/%s%s", outdir, crate, extra);
		if (a->bin)
			same = stat(a->file, &sa) == 0 && stat(out, &sr) == 0 &&
			       sa.st_dev == sr.st_dev && sa.st_ino == sr.st_ino;
		else
			same = strstr(rw_basename(a->file), extra) != NULL;
	}
	for (int i = 0; args && args[i]; i++)
		free(args[i]);
	free(args);
	return same;
}

/* A crate whose record is missing, older than its output, or of another
 * build than the one cargo has now was built without rewire: forget
 * cargo's fingerprint of it, so that the next build runs rustc (rewire) on
 * it again. The number of such crates. */
static int forget_unrecorded(const struct artifacts *arts)
{
	int stale = 0;
	for (int i = 0; i < arts->n; i++) {
		const struct artifact *a = &arts->v[i];
		char prof[PATH_MAX], base[PATH_MAX + 300], crate[256], pattern[PATH_MAX + 300];
		struct stat sb, so;
		profile_dir(a, prof, sizeof prof);
		snprintf(crate, sizeof crate, "%s", a->name);
		for (char *p = crate; *p; p++)
			if (*p == '-')
				*p = '_';
		snprintf(base, sizeof base, "%s/rewire/%s/base", prof, crate);
		if (stat(a->file, &so) < 0 ||
		    (stat(base, &sb) == 0 && (sb.st_mtim.tv_sec > so.st_mtim.tv_sec ||
					      (sb.st_mtim.tv_sec == so.st_mtim.tv_sec &&
					       sb.st_mtim.tv_nsec >= so.st_mtim.tv_nsec)) &&
		     record_is_of(dirname_of(base, pattern, sizeof pattern), a, crate)))
			continue;
		snprintf(pattern, sizeof pattern, "%s/.fingerprint/*/%s-%s", prof, a->bin ? "bin" : "lib",
			 a->name);
		glob_t g;
		if (glob(pattern, 0, NULL, &g) == 0) {
			for (size_t k = 0; k < g.gl_pathc; k++)
				unlink(g.gl_pathv[k]);
			stale++;
			fprintf(stderr, "rewire: %s was built without rewire: cargo builds it again, "
				"for rewire to record it\n", a->name);
		}
		globfree(&g);
	}
	return stale;
}

static char *crate_dir(const char *exe, char *out, size_t cap)
{
	char dir[PATH_MAX / 2];
	snprintf(dir, sizeof dir, "%s", exe);
	*strrchr(dir, '/') = 0;
	char name[256];
	snprintf(name, sizeof name, "%s", rw_basename(exe));
	for (char *p = name; *p; p++)
		if (*p == '-')
			*p = '_';
	snprintf(out, cap, "%s/rewire/%s", dir, name);
	return out;
}

/* The unit for the crate: its recorded command, environment and
 * directory; the dep-info rustc writes names its sources. */
static int load_unit(struct cc_unit *u, const char *dir)
{
	char path[PATH_MAX * 2 + 64], cwd[PATH_MAX] = "";
	snprintf(path, sizeof path, "%s/args", dir);
	u->argv = read_list(path);
	snprintf(path, sizeof path, "%s/env", dir);
	u->envp = read_list(path);
	snprintf(path, sizeof path, "%s/cwd", dir);
	FILE *f = fopen(path, "r");
	if (f && fgets(cwd, sizeof cwd, f)) {}
	if (f)
		fclose(f);
	if (!u->argv || !u->envp || !cwd[0])
		return rw_fail("%s: no record of the crate's build", dir);
	/* cargo's jobserver was for its own build: its descriptors are gone. */
	int k = 0;
	for (int i = 0; u->envp[i]; i++) {
		if (!strncmp(u->envp[i], "CARGO_MAKEFLAGS=", 16) || !strncmp(u->envp[i], "MAKEFLAGS=", 10) ||
		    !strncmp(u->envp[i], "MFLAGS=", 7)) {
			free(u->envp[i]);
			continue;
		}
		u->envp[k++] = u->envp[i];
	}
	u->envp[k] = NULL;
	u->dir = rw_strdup(cwd);
	for (u->argc = 0; u->argv[u->argc]; u->argc++)
		;
	/* cargo's --error-format=json --json=... stay: rustc's incremental
	 * state depends on them (session_show_log renders the diagnostics). */
	const char *outdir = arg_after(u->argv, "--out-dir"), *name = arg_after(u->argv, "--crate-name");
	const char *extra = codegen_opt(u->argv, "extra-filename");
	if (!outdir || !name)
		return rw_fail("%s: the recorded command has no --out-dir or --crate-name", dir);
	snprintf(path, sizeof path, "%s/%s%s.d", outdir, name, extra ? extra : "");
	u->depfile = rw_strdup(path);
	snprintf(path, sizeof path, "%s/base", dir);
	u->base = cgus_is(path) ? rw_strdup(path) : NULL;
	/* The crate root: the first argument that is a .rs file. */
	for (int i = 1; i < u->argc; i++) {
		size_t len = strlen(u->argv[i]);
		if (len > 3 && !strcmp(u->argv[i] + len - 3, ".rs")) {
			char buf[PATH_MAX * 2], real[PATH_MAX];
			snprintf(buf, sizeof buf, "%s/%s", u->dir, u->argv[i]);
			u->src = rw_strdup(u->argv[i][0] == '/' ? u->argv[i] : realpath(buf, real) ? real : buf);
			break;
		}
	}
	if (!u->src)
		return rw_fail("%s: the recorded command has no crate root", dir);
	u->rust = 1;
	cc_read_deps(u, u->depfile);
	return 0;
}

/* The workspace libraries the binary crate links (its --extern rlibs that
 * rewire recorded), in front of it: a library is replayed before the
 * crates that use it. */
static void add_libraries(struct cc_db *db, const struct cc_unit *bin)
{
	for (int i = 0; bin->argv[i]; i++) {
		if (strcmp(bin->argv[i], "--extern") || !bin->argv[i + 1])
			continue;
		const char *eq = strchr(bin->argv[i + 1], '='), *outdir = arg_after(bin->argv, "--out-dir");
		char dir[PATH_MAX + 512];
		if (!eq || !outdir)
			continue;
		snprintf(dir, sizeof dir, "%s/../rewire/%.*s", outdir, (int)(eq - bin->argv[i + 1]),
			 bin->argv[i + 1]);
		struct cc_unit u;
		memset(&u, 0, sizeof u);
		if (access(dir, R_OK) < 0 || load_unit(&u, dir) < 0 || !u.base)
			continue;	/* not a workspace crate (std, a registry dependency) */
		db->units = rw_grow(db->units, &db->cap, db->n, sizeof *db->units);
		db->units[db->n++] = u;
	}
}

int cargo_prepare(char **cargo_args, int nargs, char *exe, size_t cap, struct cc_db *db)
{
	char dir[PATH_MAX];
	struct cc_unit bin;
	struct artifacts arts = {0};
	int rc = build(cargo_args, nargs, exe, cap, &arts);
	if (rc == 0 && forget_unrecorded(&arts) > 0)
		rc = build(cargo_args, nargs, exe, cap, &arts);
	artifacts_free(&arts);
	if (rc < 0)
		return -1;
	crate_dir(exe, dir, sizeof dir);
	memset(db, 0, sizeof *db);
	memset(&bin, 0, sizeof bin);
	if (load_unit(&bin, dir) < 0)
		return -1;
	if (!bin.base)
		return rw_fail("%s: no baseline objects: `touch %s` and start rewire run again", dir,
			       bin.src);
	add_libraries(db, &bin);
	char path[PATH_MAX + 16];
	snprintf(path, sizeof path, "%s/archives", dir);
	db->archives = read_list(path);
	for (db->narchives = 0; db->archives && db->archives[db->narchives]; db->narchives++)
		;
	db->units = rw_grow(db->units, &db->cap, db->n, sizeof *db->units);
	db->units[db->n++] = bin;
	return 0;
}
