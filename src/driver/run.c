/* `rewire run [--] PROGRAM [ARGS...]`: start a program with the agent.
 *
 * The program inherits our terminal, stdout and stderr untouched; it gets
 * LD_PRELOAD=librewire.so and REWIRE_DIR, which the agent removes from its
 * environment at once. rewire waits for it and exits with its status
 * (128+N when a signal N killed it), as a shell would. Ctrl-C reaches the
 * program through the terminal; rewire itself outlives it to report. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "driver.h"

static pid_t child;

/* The agent sits beside the rewire binary (build tree) or in
 * ../lib/rewire/ (installed); REWIRE_AGENT overrides both. */
static int find_agent(char *out, size_t cap)
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

/* Sockets of processes that died without removing theirs (killed by a
 * signal): remove them, so the directory does not grow and a reused pid
 * never meets a stale socket. */
static void remove_stale_sockets(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char path[512];
	while (d && (e = readdir(d))) {
		int pid = atoi(e->d_name);
		if (pid <= 0 || !strstr(e->d_name, ".sock") || kill(pid, 0) == 0 || errno != ESRCH)
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
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

static void start_child(char **argv, const char *agent, const char *dir)
{
	const char *old = getenv("LD_PRELOAD");
	char *preload = rw_malloc(strlen(agent) + (old ? strlen(old) : 0) + 2);
	strcpy(preload, agent);
	if (old && old[0])
		strcat(strcat(preload, ":"), old);
	setenv("LD_PRELOAD", preload, 1);
	setenv("REWIRE_DIR", dir, 1);
	execvp(argv[0], argv);
	fprintf(stderr, "rewire: error: cannot run %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

int cmd_run(int argc, char **argv)
{
	char agent[4096], dir[256], sock[300];
	int i = 1, status;
	if (i < argc && !strcmp(argv[i], "--"))
		i++;
	if (i >= argc) {
		fprintf(stderr, "usage: rewire run [--] PROGRAM [ARGS...]\n");
		return EXIT_USAGE;
	}
	if (find_agent(agent, sizeof agent) < 0 || rw_socket_dir(dir, sizeof dir) < 0) {
		rw_say_error("%s", rw_error());
		return EXIT_NOPROC;
	}
	remove_stale_sockets(dir);
	fflush(NULL);
	child = fork();
	if (child < 0) {
		rw_say_error("fork: %s", strerror(errno));
		return EXIT_NOPROC;
	}
	if (child == 0)
		start_child(argv + i, agent, dir);
	signal(SIGINT, SIG_IGN);
	signal(SIGQUIT, SIG_IGN);
	signal(SIGTERM, forward);
	signal(SIGHUP, forward);
	rw_say("running %s (pid %d); patch it with: rewire apply --pid %d FILE.o", argv[i],
	       (int)child, (int)child);
	while (waitpid(child, &status, 0) < 0)
		if (errno != EINTR)
			return EXIT_NOPROC;
	snprintf(sock, sizeof sock, "%s/%d.sock", dir, (int)child);
	unlink(sock);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}
