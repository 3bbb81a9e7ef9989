/* compile_commands.json: which units make the program, and how each one
 * is compiled.
 *
 * Each entry has a directory, a file and either "arguments" (an array) or
 * "command" (a shell string, split here with the shell's quoting rules for
 * quotes and backslashes). rewire replays a unit's own command with its
 * output options replaced: the object goes to rewire's private cache, never
 * to the user's build directory, and a depfile names the headers to watch.
 * Units that are not part of the running executable (tests, other
 * programs of the project) are dropped: the executable's STT_FILE symbols
 * name the sources it was built from. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "cc.h"
#include "util.h"

static int exists_in(const char *dir, char *out, size_t cap)
{
	snprintf(out, cap, "%s/compile_commands.json", dir);
	return access(out, R_OK) == 0;
}

/* dir and its parents. */
static int search_up(const char *start, char *out, size_t cap)
{
	char dir[PATH_MAX];
	if (!realpath(start, dir))
		return 0;
	for (;;) {
		if (exists_in(dir, out, cap))
			return 1;
		char *slash = strrchr(dir, '/');
		if (!slash || slash == dir)
			return exists_in("/", out, cap);
		*slash = 0;
	}
}

int cc_find_db(const char *dir, const char *exe, char *out, size_t cap)
{
	char exedir[PATH_MAX];
	if (dir)
		return exists_in(dir, out, cap) ? 0 :
		       rw_fail("no compile_commands.json in %s", dir);
	if (search_up(".", out, cap))
		return 0;
	snprintf(exedir, sizeof exedir, "%s", exe);
	char *slash = strrchr(exedir, '/');
	if (slash) {
		*slash = 0;
		if (search_up(exedir[0] ? exedir : "/", out, cap))
			return 0;
	}
	return rw_fail("no compile_commands.json here, in a parent directory or beside %s", exe);
}

/* Split a shell command line: words, '...', "...", backslashes. */
static char **split_command(const char *cmd, int *argc)
{
	size_t cap = 0, n = 0, len = strlen(cmd);
	char **argv = NULL;
	char *word = rw_malloc(len + 1);
	for (const char *p = cmd; *p;) {
		while (*p == ' ' || *p == '\t' || *p == '\n')
			p++;
		if (!*p)
			break;
		size_t w = 0;
		char quote = 0;
		for (; *p && (quote || (*p != ' ' && *p != '\t' && *p != '\n')); p++) {
			if (quote == '\'' && *p == '\'') quote = 0;
			else if (quote == '"' && *p == '"') quote = 0;
			else if (!quote && (*p == '\'' || *p == '"')) quote = *p;
			else if (*p == '\\' && quote != '\'' && p[1]) word[w++] = *++p;
			else word[w++] = *p;
		}
		word[w] = 0;
		argv = rw_grow(argv, &cap, n, sizeof *argv);
		argv[n++] = rw_strdup(word);
	}
	argv = rw_grow(argv, &cap, n, sizeof *argv);
	argv[n] = NULL;
	free(word);
	*argc = (int)n;
	return argv;
}

static char *joined(const char *dir, const char *path)
{
	char buf[PATH_MAX * 2];
	if (path[0] == '/')
		snprintf(buf, sizeof buf, "%s", path);
	else
		snprintf(buf, sizeof buf, "%s/%s", dir, path);
	return rw_strdup(buf);
}

static char *absolute(const char *dir, const char *path)
{
	char real[PATH_MAX], *named = joined(dir, path);
	if (!realpath(named, real))
		return named;
	free(named);
	return rw_strdup(real);
}

/* The depfile of the user's build: -MF's, or with -MD or -MMD alone the
 * object's name with ".d" for its suffix (gcc's and clang's default). */
static void note_build_deps(struct cc_unit *u, const char *mf, int md)
{
	if (mf) {
		u->build_deps = absolute(u->dir, mf);
	} else if (md && u->out) {
		const char *dot = strrchr(u->out, '.'), *slash = strrchr(u->out, '/');
		size_t stem = dot && (!slash || dot > slash) ? (size_t)(dot - u->out) : strlen(u->out);
		u->build_deps = rw_malloc(stem + 3);
		memcpy(u->build_deps, u->out, stem);
		memcpy(u->build_deps + stem, ".d", 3);
	}
}

/* Drop the options that name outputs: rewire supplies its own. */
static void strip_outputs(struct cc_unit *u)
{
	int j = 0, md = 0;
	char *mf = NULL;
	for (int i = 0; i < u->argc; i++) {
		const char *a = u->argv[i];
		int takes = !strcmp(a, "-o") || !strcmp(a, "-MF") || !strcmp(a, "-MT") || !strcmp(a, "-MQ");
		if (takes && i + 1 < u->argc) {
			if (!strcmp(a, "-o"))
				u->out = absolute(u->dir, u->argv[i + 1]);
			if (!strcmp(a, "-MF")) {
				free(mf);
				mf = rw_strdup(u->argv[i + 1]);
			}
			free(u->argv[i]);
			free(u->argv[++i]);
			continue;
		}
		if (!strncmp(a, "-o", 2) && a[2]) {
			u->out = absolute(u->dir, a + 2);
			free(u->argv[i]);
			continue;
		}
		if (!strcmp(a, "-MD") || !strcmp(a, "-MMD") || !strcmp(a, "-M") || !strcmp(a, "-MM")) {
			md |= !strcmp(a, "-MD") || !strcmp(a, "-MMD");
			free(u->argv[i]);
			continue;
		}
		u->argv[j++] = u->argv[i];
	}
	u->argv[j] = NULL;
	u->argc = j;
	note_build_deps(u, mf, md);
	free(mf);
}

static int load_entry(struct cc_unit *u, json_object *e)
{
	json_object *dir, *file, *args, *cmd;
	if (!json_object_object_get_ex(e, "directory", &dir) ||
	    !json_object_object_get_ex(e, "file", &file))
		return -1;
	u->dir = rw_strdup(json_object_get_string(dir));
	u->src = absolute(u->dir, json_object_get_string(file));
	u->named = joined(u->dir, json_object_get_string(file));
	if (json_object_object_get_ex(e, "arguments", &args) &&
	    json_object_is_type(args, json_type_array)) {
		size_t n = json_object_array_length(args);
		u->argv = rw_calloc(n + 1, sizeof *u->argv);
		for (size_t i = 0; i < n; i++)
			u->argv[i] = rw_strdup(json_object_get_string(json_object_array_get_idx(args, i)));
		u->argc = (int)n;
	} else if (json_object_object_get_ex(e, "command", &cmd)) {
		u->argv = split_command(json_object_get_string(cmd), &u->argc);
	} else {
		return -1;
	}
	if (u->argc < 2)
		return -1;
	strip_outputs(u);
	return 0;
}

static void cc_unit_free(struct cc_unit *u);

/* A compiler's own inner step, as bear may record it beside the command
 * that ran it (clang -cc1, -cc1as): not a command a user runs. */
static int compiler_driver(const struct cc_unit *u)
{
	for (int i = 1; i < u->argc; i++)
		if (!strncmp(u->argv[i], "-cc1", 4))
			return 0;
	return 1;
}

/* The file has a command already: the first one stands (a build that
 * compiles a file twice records both). */
static int listed(const struct cc_db *db, const char *src)
{
	for (size_t i = 0; i < db->n; i++)
		if (!strcmp(db->units[i].src, src))
			return 1;
	return 0;
}

int cc_load(struct cc_db *db, const char *path)
{
	json_object *root = json_object_from_file(path);
	memset(db, 0, sizeof *db);
	db->path = rw_strdup(path);
	if (!root || !json_object_is_type(root, json_type_array)) {
		if (root)
			json_object_put(root);
		return rw_fail("%s: not a JSON array of compile commands (%s)", path,
			       json_util_get_last_err() ? json_util_get_last_err() : "bad format");
	}
	size_t n = json_object_array_length(root);
	db->units = rw_calloc(n, sizeof *db->units);
	db->cap = n;
	for (size_t i = 0; i < n; i++) {
		struct cc_unit *u = &db->units[db->n];
		memset(u, 0, sizeof *u);
		if (load_entry(u, json_object_array_get_idx(root, i)) < 0)
			fprintf(stderr, "rewire: %s: entry %zu has no usable command; skipped\n", path, i);
		else if (!compiler_driver(u) || listed(db, u->src))
			cc_unit_free(u);
		else
			db->n++;
	}
	json_object_put(root);
	return 0;
}

static int built_from(const struct elf_image *exe, const char *src)
{
	const char *base = rw_basename(src);
	int any = 0;
	for (size_t i = 1; i < exe->nsymbols; i++) {
		const struct elf_symbol *s = &exe->symbols[i];
		if (s->type != 4 /* STT_FILE */)
			continue;
		any = 1;
		if (!strcmp(rw_basename(s->name), base))
			return 1;
	}
	return !any;	/* no STT_FILE at all (stripped): keep every unit */
}

void cc_keep_program_units(struct cc_db *db, const struct elf_image *exe)
{
	size_t j = 0;
	for (size_t i = 0; i < db->n; i++) {
		if (built_from(exe, db->units[i].src))
			db->units[j++] = db->units[i];
	}
	db->n = j;
}

/* How a compiler starts: argv, run in dir with the environment env (NULL:
 * rewire's own), its output to out and its messages to err. */
struct launch {
	char **argv;
	char **env;
	const char *dir;
	int out, err;
	int background;
	pid_t rewire;
	sigset_t mask;		/* rewire's, for the compiler */
};

/* A compiler in a group of its own (rewire can stop it and its children)
 * that ends with rewire, also when rewire is killed: no compiler
 * outlives the session. */
static void own_group(pid_t rewire)
{
	setpgid(0, 0);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != rewire)
		_exit(127);	/* rewire ended before the line above */
}

/* Background work takes the cores only when nothing else wants them: a
 * save's compile never waits for it. */
static void go_idle(void)
{
	struct sched_param sp = {0};
	sched_setscheduler(0, SCHED_IDLE, &sp);
}

/* The child, in rewire's memory until it execs (vfork): it changes only
 * what is its own (signal dispositions, mask, group, directory, files). A
 * signal caught by one of rewire's handlers now would run it here: the
 * compiler takes the default action instead, as after an exec. */
static void launch_child(const struct launch *l)
{
	struct sigaction dfl = {.sa_handler = SIG_DFL};
	for (int sig = 1; sig < NSIG; sig++) {
		struct sigaction sa;
		if (sigaction(sig, NULL, &sa) == 0 && sa.sa_handler != SIG_DFL &&
		    sa.sa_handler != SIG_IGN)
			sigaction(sig, &dfl, NULL);
	}
	sigprocmask(SIG_SETMASK, &l->mask, NULL);
	own_group(l->rewire);
	if (l->background)
		go_idle();
	if (chdir(l->dir) < 0) {
		dprintf(l->err, "rewire: error: %s: %s\n", l->dir, strerror(errno));
		_exit(127);
	}
	dup2(l->out, 1);
	dup2(l->err, 2);
	if (l->env)
		execve(l->argv[0], l->argv, l->env);
	else
		execvp(l->argv[0], l->argv);
	dprintf(l->err, "rewire: error: cannot run %s: %s\n", l->argv[0], strerror(errno));
	_exit(127);
}

/* vfork, not fork: a session keeps the program's symbols in memory
 * (exe_cache.c, hundreds of MB for a program of a million symbols), and a
 * fork would copy their page tables at every compile. No signal reaches
 * the child before it has reset the handlers. The child's pid, or -1. */
static pid_t launch(struct launch *l)
{
	sigset_t all;
	sigfillset(&all);
	l->rewire = getpid();
	pthread_sigmask(SIG_SETMASK, &all, &l->mask);
	pid_t pid = vfork();
	if (pid == 0)
		launch_child(l);
	pthread_sigmask(SIG_SETMASK, &l->mask, NULL);
	return pid;
}

/* A crate: its recorded rustc, in its recorded environment, through
 * rewire as the wrapper: rewire's linker combines the objects into obj
 * and writes nothing else. */
static pid_t spawn_rustc(const struct cc_unit *u, const char *obj, int errfd, int color,
			 int background)
{
	size_t n = 0;
	while (u->envp[n])
		n++;
	char **env = rw_calloc(n + 5, sizeof *env), **argv = rw_calloc((size_t)u->argc + 3, sizeof *argv);
	char *out = rw_malloc(strlen(obj) + 32), self[PATH_MAX];
	ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
	self[len > 0 ? len : 0] = 0;
	memcpy(env, u->envp, n * sizeof *env);
	sprintf(out, "REWIRE_LINK_OUT=%s", obj);
	env[n++] = out;
	env[n++] = "REWIRE_LINK_CAPTURE=1";
	env[n++] = "REWIRE_CARGO=1";
	argv[0] = self;
	memcpy(argv + 1, u->argv, (size_t)u->argc * sizeof *argv);
	int json = 0;	/* rustc refuses --color with --json */
	for (int i = 0; i < u->argc; i++)
		json |= !strncmp(u->argv[i], "--json", 6);
	if (color && !json)
		argv[u->argc + 1] = "--color=always";
	struct launch l = {.argv = argv, .env = env, .dir = u->dir, .out = errfd, .err = errfd,
			    .background = background};
	pid_t pid = launch(&l);
	free(env);
	free(argv);
	free(out);
	return pid;
}

pid_t cc_spawn(const struct cc_unit *u, const char *obj, const char *dep, int errfd, int color,
	       int background)
{
	if (u->rust)
		return spawn_rustc(u, obj, errfd, color, background);
	char **argv = rw_calloc((size_t)u->argc + 8, sizeof *argv);
	int n = 0;
	for (int i = 0; i < u->argc; i++)
		argv[n++] = u->argv[i];
	argv[n++] = "-o";
	argv[n++] = (char *)obj;
	argv[n++] = "-MD";
	argv[n++] = "-MF";
	argv[n++] = (char *)dep;
	if (color)
		argv[n++] = "-fdiagnostics-color=always";
	argv[n] = NULL;
	struct launch l = {.argv = argv, .dir = u->dir, .out = errfd, .err = errfd,
			    .background = background};
	pid_t pid = launch(&l);
	free(argv);
	return pid;
}

static void clear_deps(struct cc_unit *u)
{
	for (size_t i = 0; i < u->ndeps; i++)
		free(u->deps[i]);
	free(u->deps);
	u->deps = NULL;
	u->ndeps = 0;
}

pid_t cc_spawn_deps(const struct cc_unit *u, const char *dep, int errfd)
{
	char **argv = rw_calloc((size_t)u->argc + 8, sizeof *argv);
	int n = 0, null = open("/dev/null", O_WRONLY | O_CLOEXEC);
	for (int i = 0; i < u->argc; i++)
		argv[n++] = u->argv[i];
	/* -M: preprocess only, the dependencies to -MF; nothing else is
	 * written (-o would name the depfile). */
	argv[n++] = "-M";
	argv[n++] = "-MF";
	argv[n++] = (char *)dep;
	argv[n] = NULL;
	struct launch l = {.argv = argv, .dir = u->dir, .out = null >= 0 ? null : errfd, .err = errfd,
			    .background = 1};
	pid_t pid = launch(&l);
	if (null >= 0)
		close(null);
	free(argv);
	return pid;
}

/* A make-style depfile: "out: src hdr1 hdr2 \\\n hdr3". */
int cc_read_deps(struct cc_unit *u, const char *dep)
{
	FILE *f = fopen(dep, "r");
	if (!f)
		return rw_fail("%s: %s", dep, strerror(errno));
	char word[PATH_MAX];
	size_t w = 0, cap = 0;
	int c, seen_colon = 0;
	clear_deps(u);
	do {
		c = fgetc(f);
		if (c == '\\') {
			int d = fgetc(f);
			if (d == '\n')
				continue;
			if (w < sizeof word - 1)
				word[w++] = (char)d;
			continue;
		}
		if (c == EOF || c == ' ' || c == '\n' || c == '\t') {
			word[w] = 0;
			if (w && seen_colon && word[w - 1] != ':') {
				char *abs = absolute(u->dir, word);
				if (strcmp(abs, u->src)) {
					u->deps = rw_grow(u->deps, &cap, u->ndeps, sizeof *u->deps);
					u->deps[u->ndeps++] = abs;
				} else {
					free(abs);
				}
			}
			if (w && word[w - 1] == ':')
				seen_colon = 1;
			w = 0;
			continue;
		}
		if (c == ':' && !seen_colon) {
			seen_colon = 1;
			w = 0;
			continue;
		}
		if (w < sizeof word - 1)
			word[w++] = (char)c;
	} while (c != EOF);
	fclose(f);
	return 0;
}

static int64_t mtime_of(const char *path)
{
	struct stat st;
	if (stat(path, &st) < 0)
		return -1;
	return (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
}

/* Automake's rules write .deps/x.Tpo and rename it .deps/x.Po. */
static int64_t build_deps_path(const struct cc_unit *u, char *out, size_t cap)
{
	size_t n = strlen(u->build_deps);
	snprintf(out, cap, "%s", u->build_deps);
	if (mtime_of(out) < 0 && n > 4 && !strcmp(u->build_deps + n - 4, ".Tpo"))
		snprintf(out, cap, "%.*s.Po", (int)(n - 4), u->build_deps);
	return mtime_of(out);
}

int cc_read_build_deps(struct cc_unit *u)
{
	char path[PATH_MAX];
	if (!u->build_deps || !u->out)
		return -1;
	int64_t made = build_deps_path(u, path, sizeof path), src = mtime_of(u->src);
	/* Written with the object, from the source as it is: else it may
	 * miss an #include added since. */
	if (made < 0 || src < 0 || src > made || mtime_of(u->out) < src)
		return -1;
	if (cc_read_deps(u, path) < 0)
		return -1;
	/* And no header changed since: one that did may include others now. */
	for (size_t i = 0; i < u->ndeps; i++) {
		int64_t t = mtime_of(u->deps[i]);
		if (t < 0 || t > made) {
			clear_deps(u);
			return -1;
		}
	}
	return 0;
}

static uint64_t hash_file(const char *path)
{
	uint64_t h = RW_HASH64_BASIS;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		if (fd >= 0)
			close(fd);
		return 0x9e3779b97f4a7c15ull;
	}
	const uint8_t *p = st.st_size ? mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0) : NULL;
	close(fd);
	if (p == MAP_FAILED)
		return h;
	h = rw_hash64(h, p, (size_t)st.st_size);
	if (p)
		munmap((void *)p, (size_t)st.st_size);
	return h;
}

/* A file's hash and its status when it was read. */
struct file_hash {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime, ctime;
	int64_t at;		/* when it was read (CLOCK_REALTIME ns, as file times) */
	uint64_t hash;
};

/* File times are coarse (a clock tick, seconds on some file systems): a
 * file changed this shortly before it was read may change again with the
 * same times, so its hash is not trusted later (git's "racily clean"). */
#define RACY_NS (2ll * 1000000000)

static int64_t ns_of(struct timespec t)
{
	return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static int same_status(const struct file_hash *f, const struct stat *st)
{
	return f->dev == st->st_dev && f->ino == st->st_ino && f->size == st->st_size &&
	       ns_of(f->mtime) == ns_of(st->st_mtim) && ns_of(f->ctime) == ns_of(st->st_ctim);
}

static uint64_t hash_once(const char *path, struct rw_table *memo)
{
	int added;
	struct stat st;
	if (!memo || stat(path, &st) < 0)
		return hash_file(path);
	void **v = rw_table_put(memo, path, &added);
	struct file_hash *f = *v;
	if (f && same_status(f, &st) && f->at - ns_of(st.st_ctim) > RACY_NS)
		return f->hash;
	if (!f)
		f = *v = rw_calloc(1, sizeof *f);
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	/* The status before the read: a write during it changes the times. */
	*f = (struct file_hash){st.st_dev, st.st_ino, st.st_size, st.st_mtim, st.st_ctim, ns_of(now),
				hash_file(path)};
	return f->hash;
}

/* File by file, so that a file's hash serves every unit that reads it:
 * the hash of the files' hashes (their bytes, low first). */
static uint64_t mix(uint64_t h, uint64_t v)
{
	uint8_t b[8];
	for (int i = 0; i < 8; i++, v >>= 8)
		b[i] = (uint8_t)v;
	return rw_hash64(h, b, sizeof b);
}

uint64_t cc_hash_inputs_memo(const struct cc_unit *u, struct rw_table *memo)
{
	uint64_t h = mix(RW_HASH64_BASIS, hash_once(u->src, memo));
	for (size_t i = 0; i < u->ndeps; i++)
		h = mix(h, hash_once(u->deps[i], memo));
	return h;
}

uint64_t cc_hash_inputs(const struct cc_unit *u)
{
	return cc_hash_inputs_memo(u, NULL);
}

void cc_add_object(struct cc_db *db, const char *path)
{
	char real[PATH_MAX];
	db->units = rw_grow(db->units, &db->cap, db->n, sizeof *db->units);
	struct cc_unit *u = &db->units[db->n++];
	memset(u, 0, sizeof *u);
	u->src = rw_strdup(realpath(path, real) ? real : path);
	u->dir = rw_strdup(".");
	u->object_only = 1;
}

static void cc_unit_free(struct cc_unit *u)
{
	for (int j = 0; j < u->argc; j++)
		free(u->argv[j]);
	for (size_t j = 0; j < u->ndeps; j++)
		free(u->deps[j]);
	for (size_t j = 0; u->envp && u->envp[j]; j++)
		free(u->envp[j]);
	free(u->envp);
	free(u->depfile);
	free(u->build_deps);
	free(u->argv);
	free(u->deps);
	free(u->src);
	free(u->named);
	free(u->dir);
	free(u->out);
	free(u->base);
	memset(u, 0, sizeof *u);
}

void cc_free(struct cc_db *db)
{
	for (int i = 0; i < db->narchives; i++)
		free(db->archives[i]);
	free(db->archives);
	for (size_t i = 0; i < db->n; i++)
		cc_unit_free(&db->units[i]);
	free(db->units);
	free(db->path);
}
