/* `rewire run [--] PROGRAM [ARGS...]`: start a program with the agent.
 *
 * The program inherits our terminal, stdout and stderr untouched; it gets
 * LD_PRELOAD=librewire.so and REWIRE_DIR, which the agent removes from its
 * environment at once. rewire waits for it and exits with its status
 * (128+N when a signal N killed it), as a shell would. Ctrl-C reaches the
 * program through the terminal; rewire itself outlives it to report. */
#define _GNU_SOURCE
#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "driver.h"
#include "diff/diff.h"
#include "diff/types.h"
#include "front/cargo.h"
#include "front/cc.h"

static pid_t child;

/* The agent sits beside the rewire binary (build tree) or in
 * ../lib/rewire/ (installed); REWIRE_AGENT overrides both. */
int run_find_agent(char *out, size_t cap)
{
	const char *env = getenv("REWIRE_AGENT");
	char self[2048];
	if (env && env[0]) {
		snprintf(out, cap, "%s", env);
		return access(out, R_OK) == 0 ? 0 : rw_fail("REWIRE_AGENT=%s: %s", env, strerror(errno));
	}
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n <= 0)
		return rw_fail("cannot find rewire's own path: %s", strerror(errno));
	self[n] = 0;
	*strrchr(self, '/') = 0;
	snprintf(out, cap, "%s/librewire.so", self);
	if (access(out, R_OK) == 0)
		return 0;
	snprintf(out, cap, "%s/../lib/rewire/librewire.so", self);
	if (access(out, R_OK) == 0)
		return 0;
	return rw_fail("cannot find librewire.so beside %s or in %s/../lib/rewire", self, self);
}

/* Sockets (and crash notes, agent.c) of processes that died without
 * removing theirs (killed by a signal): remove them, so the directory does
 * not grow and a reused pid never meets a stale one. */
static void remove_stale_sockets(const char *dir, int depth)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char path[512];
	while (d && (e = readdir(d))) {
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		if (depth == 0 && e->d_name[0] == 'u' && e->d_type == DT_DIR) {
			remove_stale_sockets(path, 1);	/* a user's (agent/user.c) */
			continue;
		}
		int pid = atoi(e->d_name);
		if (pid <= 0 || (!strstr(e->d_name, ".sock") && !strstr(e->d_name, ".crash") &&
				 !strstr(e->d_name, ".said")) ||
		    kill(pid, 0) == 0 || errno != ESRCH)
			continue;
		unlink(path);
	}
	if (d)
		closedir(d);
}

static void forward(int sig)
{
	if (child > 0)
		kill(child, sig);
}

static int resolve_program(const char *prog, char *out, size_t cap);

#if defined(__x86_64__)
/* The ELF machine of the program's file, 0 when not an ELF file. */
static int program_machine(const char *prog)
{
	char path[PATH_MAX];
	unsigned char h[20];
	int fd = resolve_program(prog, path, sizeof path) < 0 ? -1 : open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, h, sizeof h);
	if (fd >= 0)
		close(fd);
	if (n != (ssize_t)sizeof h || memcmp(h, ELFMAG, SELFMAG))
		return 0;
	return h[18] | h[19] << 8;	/* e_machine, little-endian */
}

/* An aarch64 program on an x86-64 machine runs under qemu-user, with the
 * aarch64 agent (aarch64/ beside the x86-64 one) preloaded in the guest
 * only, and rewire's variables set there: qemu's own environment keeps
 * none of them (no agent must load into qemu itself; a preload of the
 * user's, built for x86-64, could not load into the guest). The guest's
 * libraries: $QEMU_LD_PREFIX, else Debian's cross sysroot. */
static void exec_emulated(char **argv, const char *agent, char **vars, int nvars)
{
	char a64[PATH_MAX + 32], prog[PATH_MAX], *dirend = strrchr(agent, '/');
	const char *sysroot = getenv("QEMU_LD_PREFIX");
	snprintf(a64, sizeof a64, "%.*s/aarch64/librewire.so", dirend ? (int)(dirend - agent) : 1,
		 dirend ? agent : ".");
	if (access(a64, R_OK) < 0) {
		fprintf(stderr, "rewire: error: %s is an aarch64 program, and rewire has no aarch64 "
			"agent (%s: %s): build rewire with aarch64-linux-gnu-gcc installed\n", argv[0], a64,
			strerror(errno));
		_exit(127);
	}
	/* qemu splits -E values at commas */
	for (int i = 0; i < nvars; i++)
		if (strchr(vars[i], ',') || strchr(a64, ',')) {
			fprintf(stderr, "rewire: error: %s: qemu-user cannot pass a value with a comma "
				"to the program: use a directory without one\n", strchr(a64, ',') ? a64 : vars[i]);
			_exit(127);
		}
	int argc = 0, n = 0;
	while (argv[argc])
		argc++;
	/* qemu does not search PATH: the program's path, argv[0] as given */
	if (resolve_program(argv[0], prog, sizeof prog) < 0)
		snprintf(prog, sizeof prog, "%s", argv[0]);
	char **qargv = rw_calloc((size_t)(nvars * 2 + argc + 10), sizeof *qargv), *pre;
	qargv[n++] = "qemu-aarch64";
	qargv[n++] = "-L";
	qargv[n++] = (char *)(sysroot && sysroot[0] ? sysroot : "/usr/aarch64-linux-gnu");
	qargv[n++] = "-0";
	qargv[n++] = argv[0];
	pre = rw_malloc(strlen(a64) + 16);
	sprintf(pre, "LD_PRELOAD=%s", a64);
	qargv[n++] = "-E";
	qargv[n++] = pre;
	for (int i = 0; i < nvars; i++) {
		qargv[n++] = "-E";
		qargv[n++] = vars[i];
	}
	qargv[n++] = prog;
	for (int i = 1; i < argc; i++)
		qargv[n++] = argv[i];
	execvp(qargv[0], qargv);
	fprintf(stderr, "rewire: error: %s is an aarch64 program; rewire runs it under qemu-aarch64, "
		"which cannot be run (%s): install qemu-user\n", argv[0], strerror(errno));
	_exit(127);
}
#endif

/* session: the pid of the session that patches it, 0 when none; hold:
 * the program waits for that session's patches before it runs. */
static void start_child(char **argv, const char *agent, const char *dir, const char *exe_id,
			pid_t session, int hold)
{
	char pid[24];
	snprintf(pid, sizeof pid, "%d", (int)session);
	const char *old = getenv("LD_PRELOAD");
	char *preload = rw_malloc(strlen(agent) + (old ? strlen(old) : 0) + 2);
	strcpy(preload, agent);
	if (old && old[0])
		strcat(strcat(preload, ":"), old);
	setenv("LD_PRELOAD", preload, 1);
	setenv("REWIRE_DIR", dir, 1);
	if (exe_id)
		setenv("REWIRE_EXE", exe_id, 1);	/* follow its execs (agent/follow.c) */
	if (session)
		setenv("REWIRE_SESSION", pid, 1);	/* exec'd children wait for it (agent/follow.c) */
	if (session && hold)
		setenv("REWIRE_HOLD", pid, 1);	/* wait for the session's patches (agent.c) */
	/* The session ignores these for itself (a relaunch forks after it
	 * does): the program takes them as it would without rewire. */
	signal(SIGINT, SIG_DFL);
	signal(SIGQUIT, SIG_DFL);
#if defined(__x86_64__)
	if (program_machine(argv[0]) == EM_AARCH64) {
		static const char *const names[] = {"REWIRE_DIR", "REWIRE_EXE", "REWIRE_SESSION",
						    "REWIRE_HOLD"};
		char *vars[4];
		int nvars = 0;
		for (int i = 0; i < 4; i++) {
			const char *v = getenv(names[i]);
			if (v) {
				vars[nvars] = rw_malloc(strlen(names[i]) + strlen(v) + 2);
				sprintf(vars[nvars++], "%s=%s", names[i], v);
			}
			unsetenv(names[i]);
		}
		unsetenv("LD_PRELOAD");
		exec_emulated(argv, agent, vars, nvars);
	}
#endif
	execvp(argv[0], argv);
	fprintf(stderr, "rewire: error: cannot run %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

/* What --restart needs to start the program again. */
struct launch {
	char **argv;
	const char *agent, *dir, *exe_id;
};

static pid_t relaunch(void *ctx)
{
	struct launch *l = ctx;
	char sock[300];
	snprintf(sock, sizeof sock, "%s/%d.sock", l->dir, (int)child);
	unlink(sock);	/* the crashed program's */
	fflush(NULL);
	pid_t pid = fork();
	/* Held: none of its code runs before it has the patches (session_restart()
	 * says GO). */
	if (pid == 0)
		start_child(l->argv, l->agent, l->dir, l->exe_id, getppid(), 1);
	if (pid < 0) {
		rw_say_error("fork: %s", strerror(errno));
		return -1;
	}
	child = pid;
	return pid;
}

/* PROGRAM as execvp will find it. */
static int resolve_program(const char *prog, char *out, size_t cap)
{
	if (strchr(prog, '/'))
		return realpath(prog, out) ? 0 : -1;
	const char *path = getenv("PATH");
	char buf[PATH_MAX];
	for (const char *p = path ? path : "/usr/bin:/bin"; *p;) {
		size_t n = strcspn(p, ":");
		snprintf(buf, sizeof buf, "%.*s/%s", (int)n, p, prog);
		if (access(buf, X_OK) == 0 && realpath(buf, out))
			return 0;
		p += n + (p[n] == ':');
	}
	return -1;
}

/* -p BUILD_DIR names where the build is: without a compile_commands.json
 * there, nothing could be watched, and the user asked for it: an error,
 * said (EXIT_BADINPUT), not a session that watches nothing. */
int run_check_dbdir(const char *dbdir, const char *exe)
{
	char path[PATH_MAX + 32];
	struct stat st;
	if (!dbdir)
		return 0;
	if (stat(dbdir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		rw_say_error("-p %s: %s", dbdir, stat(dbdir, &st) < 0 ? strerror(errno) :
			     "not a directory");
		return EXIT_BADINPUT;
	}
	if (cc_find_db(dbdir, exe, path, sizeof path) < 0) {
		rw_say_error("-p %s: %s", dbdir, rw_error());
		return EXIT_BADINPUT;
	}
	return 0;
}

/* The program's units from compile_commands.json, or NULL (said why). */
struct cc_db *run_load_units(const char *dbdir, const char *exe)
{
	char path[PATH_MAX + 32];
	struct elf_image img = {0};
	static struct cc_db db;
	if (cc_find_db(dbdir, exe, path, sizeof path) < 0) {
		rw_say("%s; running without watching sources. Make one with "
		       "`cmake -DCMAKE_EXPORT_COMPILE_COMMANDS=ON`, Meson (it writes one), or "
		       "`bear -- make`; or use `rewire apply`", rw_error());
		return NULL;
	}
	if (cc_load(&db, path) < 0 || elf_image_open(&img, exe) < 0) {
		rw_say_error("%s; running without watching sources", rw_error());
		return NULL;
	}
	cc_keep_program_units(&db, &img);
	elf_image_close(&img);
	if (!db.n) {
		rw_say("%s lists no source of %s; running without watching sources", path, exe);
		return NULL;
	}
	return &db;
}

/* gcc at -O2 and above assumes (-fipa-ra) that a call to a function of
 * the same unit leaves alone the registers that function does not use. A
 * running caller (a loop) keeps relying on it when the callee is patched
 * with a version that uses more. The producer strings in .debug_str tell
 * how each unit was compiled. */
static void warn_ipa_ra(const char *exe)
{
	struct elf_image img = {0};
	if (elf_image_open(&img, exe) < 0)
		return;
	for (size_t i = 1; i < img.nsections; i++) {
		const struct elf_section *s = &img.sections[i];
		uint8_t *owned;
		size_t size;
		if (strcmp(s->name, ".debug_str"))
			continue;
		const char *d = (const char *)elf_section_bytes(s, &owned, &size);
		for (const char *p = d, *end = d + size; d && p < end;
		     p += strnlen(p, (size_t)(end - p)) + 1) {
			size_t n = strnlen(p, (size_t)(end - p));
			int flag;
			if (n < 6 || strncmp(p, "GNU C", 5) || !diff_producer_ipa_ra(p, p + n, &flag))
				continue;
			rw_say("warning: %s was built by gcc with optimisation and without -fno-ipa-ra: "
			       "a running caller may rely on registers a patched callee now uses; "
			       "build with -fno-ipa-ra for patching to be safe", rw_basename(exe));
			free(owned);
			elf_image_close(&img);
			return;
		}
		free(owned);
	}
	elf_image_close(&img);
}

/* Without debug information rewire cannot see that a patch changes a
 * struct's layout or a function's parameters: the new code would misread
 * the running program's memory with no error. Say so before the first
 * edit. */
static void warn_no_debug(const char *exe, const struct cc_db *db)
{
	char **srcs = rw_calloc(db->n + 1, sizeof *srcs);
	size_t n = 0;
	const char *first = NULL;
	for (size_t i = 0; i < db->n; i++)
		if (!db->units[i].object_only)
			srcs[n++] = db->units[i].src;
	size_t missing = n ? types_units_unchecked(exe, srcs, n, &first) : 0;
	if (missing == n && n)
		rw_say("warning: %s has no debug information: rewire cannot check that a patch keeps "
		       "the layout of types and the parameters of functions (build with -g; Rust: "
		       "debug = true in the profile)", rw_basename(exe));
	else if (missing)
		rw_say("warning: %s%s was built without debug information (-g): rewire cannot check "
		       "that a patch of it keeps the layout of types and the parameters of functions",
		       rw_basename(first), missing > 1 ? " and other files" : "");
	free(srcs);
}

void run_warn_build(const char *exe, const struct cc_db *db)
{
	warn_ipa_ra(exe);
	if (db)
		warn_no_debug(exe, db);
}

static int usage(void)
{
	fprintf(stderr, "usage: rewire run [-v] [--restart] [--no-follow] [--exe EXECUTABLE] "
		"[-p BUILD_DIR | --watch-objects FILE.o...] [--] PROGRAM [ARGS...]\n");
	return EXIT_USAGE;
}

/* "dev:ino" of the executable: a process of the program that runs it
 * again gets the agent (agent/follow.c). */
static const char *exe_identity(const char *exe)
{
	static char id[64];
	struct stat st;
	if (stat(exe, &st) < 0)
		return NULL;
	snprintf(id, sizeof id, "%llu:%llu", (unsigned long long)st.st_dev,
		 (unsigned long long)st.st_ino);
	return id;
}

/* An ELF file, not a script. */
static int is_elf(const char *path)
{
	char magic[4] = {0};
	FILE *f = fopen(path, "rb");
	if (f) {
		if (fread(magic, 1, 4, f) != 4)
			magic[0] = 0;
		fclose(f);
	}
	return !memcmp(magic, "\177ELF", 4);
}

int cmd_run(int argc, char **argv)
{
	char agent[4096], dir[256], sock[300], exe[PATH_MAX];
	const char *dbdir = NULL, *exe_opt = NULL;
	int i = 1, status, restart = 0, follow = 1;
	static struct cc_db objects;
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "--")) {
			i++;
			break;
		}
		if (!strcmp(argv[i], "--restart")) {
			restart = 1;
		} else if (!strcmp(argv[i], "--no-follow")) {
			follow = 0;
		} else if (!strcmp(argv[i], "-v") || !strcmp(argv[i], "--verbose")) {
			rw_verbose = 1;
		} else if (!strcmp(argv[i], "--exe") && i + 1 < argc) {
			exe_opt = argv[++i];
		} else if (!strcmp(argv[i], "-p") && i + 1 < argc) {
			dbdir = argv[++i];
		} else if (!strcmp(argv[i], "--watch-objects")) {
			/* Objects up to "--": the user's own build rewrites them. */
			for (; i + 1 < argc && strcmp(argv[i + 1], "--"); i++) {
				if (access(argv[i + 1], R_OK) < 0) {
					rw_say_error("%s: %s", argv[i + 1], strerror(errno));
					return EXIT_BADINPUT;
				}
				cc_add_object(&objects, argv[i + 1]);
			}
		} else {
			return usage();
		}
	}
	if (i >= argc)
		return usage();
	struct cc_db *db = NULL;
	static struct cc_db crate;
	if (!strcmp(rw_basename(argv[i]), "cargo") && i + 1 < argc && !strcmp(argv[i + 1], "run")) {
		/* cargo run [ARGS] [-- PROGRAM ARGS]: rewire builds, then runs the binary. */
		int j = i + 2, nargs;
		while (j < argc && strcmp(argv[j], "--"))
			j++;
		nargs = j - (i + 2);
		if (cargo_prepare(argv + i + 2, nargs, exe, sizeof exe, &crate) < 0) {
			rw_say_error("%s", rw_error());
			return EXIT_NOPROC;
		}
		db = &crate;
		argv[j < argc ? j : argc - 1] = exe;	/* the program, then its arguments */
		i = j < argc ? j : argc - 1;
		if (j >= argc) {
			static char *only[2];
			only[0] = exe;
			argv = only;
			argc = 1;
			i = 0;
		}
	} else if (resolve_program(argv[i], exe, sizeof exe) < 0) {
		rw_say_error("cannot run %s: not found", argv[i]);
		return 127;
	} else if (exe_opt && !realpath(exe_opt, exe)) {
		rw_say_error("--exe %s: %s", exe_opt, strerror(errno));
		return EXIT_BADINPUT;
	}
	if (!db && !is_elf(exe)) {
		rw_say_error("%s is not an executable file but a script: name the program it runs with "
			     "--exe (rewire run --exe build/server -- %s)", exe, argv[i]);
		return EXIT_BADINPUT;
	}
	if (!db && !objects.n && (status = run_check_dbdir(dbdir, exe)))
		return status;
	if (!db)
		db = objects.n ? &objects : run_load_units(dbdir, exe);
	run_warn_build(exe, db);
	if (run_find_agent(agent, sizeof agent) < 0 || chan_socket_dir(dir, sizeof dir) < 0) {
		rw_say_error("%s", rw_error());
		return EXIT_NOPROC;
	}
	remove_stale_sockets(dir, 0);
	fflush(NULL);
	child = fork();
	if (child < 0) {
		rw_say_error("fork: %s", strerror(errno));
		return EXIT_NOPROC;
	}
	const char *exe_id = follow ? exe_identity(exe) : NULL;
	if (child == 0)
		start_child(argv + i, agent, dir, exe_id, db ? getppid() : 0, 0);
	signal(SIGINT, SIG_IGN);
	signal(SIGQUIT, SIG_IGN);
	signal(SIGTERM, forward);
	signal(SIGHUP, forward);
	struct launch launch = {argv + i, agent, dir, exe_id};
	if (db) {
		status = session_run(child, db, exe, restart ? relaunch : NULL, &launch, -1);
		cc_free(db);
	} else {
		rw_say("running %s (pid %d); patch it with: rewire apply --pid %d FILE.o", argv[i],
		       (int)child, (int)child);
		while (waitpid(child, &status, 0) < 0)
			if (errno != EINTR)
				return EXIT_NOPROC;
	}
	snprintf(sock, sizeof sock, "%s/%d.sock", dir, (int)child);
	unlink(sock);
	snprintf(sock, sizeof sock, "%s/%d.crash", dir, (int)child);
	unlink(sock);
	if (WIFSIGNALED(status) && rw_crash_signal(WTERMSIG(status)))
		rw_say("the program ended (SIG%s); rewire exits with its status",
		       sigabbrev_np(WTERMSIG(status)));
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}
