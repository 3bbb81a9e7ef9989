/* Exec'd children: a process of the program that runs the program's
 * executable again (a supervisor restarting it, a server upgrading
 * itself, a wrapper script's `exec`) gets the agent; any other program a
 * process runs (a shell, a compiler, a helper) does not.
 *
 * The agent removes its variables from the environment at start-up, so
 * children do not inherit it. Instead it stands in for the exec family
 * (the agent is preloaded: the program's calls reach these first): when
 * the file about to run is the executable the session watches (same
 * device and inode, REWIRE_EXE), the variables go back into the new
 * environment; otherwise the call is passed on untouched. Nothing here
 * allocates: a child of vfork() may be the caller. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "agent.h"

#define EXPORT __attribute__((visibility("default")))
#define MAX_ENV 2048

extern char **environ;

static int following;
static dev_t exe_dev;
static ino_t exe_ino;
static char agent_path[4096];
static char dir_var[160];	/* "REWIRE_DIR=..." */
static char exe_var[64];	/* "REWIRE_EXE=dev:ino" */
static char session_var[40];	/* "REWIRE_SESSION=pid": a session patches it */
static char hold_var[40];
static pid_t session_pid;	/* read in fault handlers (api.c) */	/* "REWIRE_HOLD=pid": so it waits for that one */

void follow_set_session(pid_t session)
{
	session_var[0] = hold_var[0] = 0;
	session_pid = session > 0 ? session : 0;
	if (session <= 0)
		return;
	snprintf(session_var, sizeof session_var, "REWIRE_SESSION=%d", (int)session);
	snprintf(hold_var, sizeof hold_var, "REWIRE_HOLD=%d", (int)session);
}

pid_t follow_session(void)
{
	return session_pid;
}

int follow_init(const char *dir, const char *exe_id)
{
	unsigned long long dev, ino;
	Dl_info info;
	if (!exe_id || sscanf(exe_id, "%llu:%llu", &dev, &ino) != 2 ||
	    !dladdr((void *)follow_init, &info) || !info.dli_fname)
		return 0;
	if (snprintf(agent_path, sizeof agent_path, "%s", info.dli_fname) >= (int)sizeof agent_path ||
	    snprintf(dir_var, sizeof dir_var, "REWIRE_DIR=%s", dir) >= (int)sizeof dir_var)
		return 0;
	snprintf(exe_var, sizeof exe_var, "REWIRE_EXE=%llu:%llu", dev, ino);
	exe_dev = (dev_t)dev, exe_ino = (ino_t)ino;
	following = 1;
	return 1;
}

static int is_watched(const char *path)
{
	struct stat st;
	return following && path && stat(path, &st) == 0 && st.st_dev == exe_dev &&
	       st.st_ino == exe_ino;
}

/* Under an emulator (qemu-user), /proc/self/exe is the emulator's file to
 * stat, while its link names the program, as qemu answers for the guest. */
int follow_is_watched_exe(void)
{
	char path[4096];
	ssize_t n;
	if (is_watched("/proc/self/exe"))
		return 1;
	n = readlink("/proc/self/exe", path, sizeof path - 1);
	if (n <= 0)
		return 0;
	path[n] = 0;
	return is_watched(path);
}

static int starts(const char *s, const char *prefix)
{
	return !strncmp(s, prefix, strlen(prefix));
}

/* envp with the agent's variables, into out (and preload, its
 * LD_PRELOAD). NULL when it does not fit. */
static char **with_agent(char *const envp[], char **out, char *preload, size_t cap)
{
	const char *user = NULL;
	size_t n = 0;
	for (size_t i = 0; envp && envp[i]; i++) {
		if (starts(envp[i], "LD_PRELOAD="))
			user = envp[i] + 11;
		else if (!starts(envp[i], "REWIRE_DIR=") && !starts(envp[i], "REWIRE_EXE=") &&
			 !starts(envp[i], "REWIRE_HOLD=") && !starts(envp[i], "REWIRE_SESSION="))
			out[n++] = envp[i];
		if (n > MAX_ENV - 6)
			return NULL;
	}
	int len = snprintf(preload, cap, "LD_PRELOAD=%s%s%s", agent_path, user && user[0] ? ":" : "",
			   user ? user : "");
	if (len < 0 || (size_t)len >= cap)
		return NULL;
	out[n++] = preload;
	out[n++] = dir_var;
	out[n++] = exe_var;
	/* Exec'd: it waits for the session's patches (agent.c). */
	if (session_var[0]) {
		out[n++] = session_var;
		out[n++] = hold_var;
	}
	out[n] = NULL;
	return out;
}

/* file as execvp finds it on PATH, into buf; NULL when it is not found. */
static const char *on_path(const char *file, char *buf, size_t cap)
{
	if (!file || !file[0])
		return NULL;
	if (strchr(file, '/'))
		return file;
	const char *path = getenv("PATH");
	for (const char *p = path ? path : "/bin:/usr/bin"; *p;) {
		size_t n = strcspn(p, ":");
		int len = snprintf(buf, cap, "%.*s%s%s", (int)n, p, n ? "/" : "", file);
		if (len > 0 && (size_t)len < cap && access(buf, X_OK) == 0)
			return buf;
		p += n + (p[n] == ':');
	}
	return NULL;
}

static void *next(const char *name)
{
	return dlsym(RTLD_NEXT, name);
}

typedef int (*execve_fn)(const char *, char *const[], char *const[]);
typedef int (*execvpe_fn)(const char *, char *const[], char *const[]);
typedef int (*spawn_fn)(pid_t *, const char *, const posix_spawn_file_actions_t *,
			const posix_spawnattr_t *, char *const[], char *const[]);

EXPORT int execve(const char *path, char *const argv[], char *const envp[])
{
	execve_fn real = (execve_fn)next("execve");
	char *env[MAX_ENV], preload[8192];
	if (!real)
		return errno = ENOSYS, -1;
	if (is_watched(path) && with_agent(envp, env, preload, sizeof preload))
		return real(path, argv, env);
	return real(path, argv, envp);
}

EXPORT int execv(const char *path, char *const argv[])
{
	return execve(path, argv, environ);
}

EXPORT int execvpe(const char *file, char *const argv[], char *const envp[])
{
	char buf[4096];
	const char *path = following ? on_path(file, buf, sizeof buf) : NULL;
	if (is_watched(path))
		return execve(path, argv, envp);
	execvpe_fn real = (execvpe_fn)next("execvpe");
	return real ? real(file, argv, envp) : (errno = ENOSYS, -1);
}

EXPORT int execvp(const char *file, char *const argv[])
{
	return execvpe(file, argv, environ);
}

/* The arguments of execl, execlp and execle, as an argv. */
#define COLLECT_ARGS(argv, arg0, ap)                                            \
	do {                                                                    \
		size_t n_ = 0;                                                  \
		argv[n_++] = (char *)(arg0);                                    \
		while (argv[n_ - 1] && n_ < sizeof argv / sizeof *argv)         \
			argv[n_++] = va_arg(ap, char *);                        \
		if (argv[n_ - 1]) {                                             \
			va_end(ap);                                             \
			return errno = E2BIG, -1;                               \
		}                                                               \
	} while (0)

EXPORT int execl(const char *path, const char *arg, ...)
{
	char *argv[1024];
	va_list ap;
	va_start(ap, arg);
	COLLECT_ARGS(argv, arg, ap);
	va_end(ap);
	return execve(path, argv, environ);
}

EXPORT int execlp(const char *file, const char *arg, ...)
{
	char *argv[1024];
	va_list ap;
	va_start(ap, arg);
	COLLECT_ARGS(argv, arg, ap);
	va_end(ap);
	return execvpe(file, argv, environ);
}

EXPORT int execle(const char *path, const char *arg, ...)
{
	char *argv[1024];
	va_list ap;
	va_start(ap, arg);
	COLLECT_ARGS(argv, arg, ap);
	char *const *envp = va_arg(ap, char *const *);
	va_end(ap);
	return execve(path, argv, envp);
}

static int spawn(const char *name, pid_t *pid, const char *file, const char *path,
		 const posix_spawn_file_actions_t *fa, const posix_spawnattr_t *attr,
		 char *const argv[], char *const envp[])
{
	spawn_fn real = (spawn_fn)next(name);
	char *env[MAX_ENV], preload[8192];
	if (!real)
		return ENOSYS;
	if (is_watched(path) && with_agent(envp, env, preload, sizeof preload))
		return real(pid, file, fa, attr, argv, env);
	return real(pid, file, fa, attr, argv, envp);
}

EXPORT int posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *fa,
		       const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
	return spawn("posix_spawn", pid, path, path, fa, attr, argv, envp);
}

EXPORT int posix_spawnp(pid_t *pid, const char *file, const posix_spawn_file_actions_t *fa,
			const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
	char buf[4096];
	return spawn("posix_spawnp", pid, file, following ? on_path(file, buf, sizeof buf) : NULL,
		     fa, attr, argv, envp);
}
