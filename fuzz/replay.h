/* Replaying the committed fuzz inputs without libFuzzer, for the unit
 * tests: every file of fuzz/corpus/<target>/ and fuzz/regress/<target>/
 * goes through the target's function in a child process, so that a crash
 * or a hang is a FAIL line naming the file rather than the end of the test.
 * Files named seed-* are valid inputs (real objects and images, messages
 * as the driver writes them): the reader must accept them.
 *
 * Paths are relative to the source root, where tests/run.sh runs the unit
 * tests. Include this before anything that poisons exit (the agent). */
#ifndef RW_FUZZ_REPLAY_H
#define RW_FUZZ_REPLAY_H
#include <dirent.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define REPLAY_TIMEOUT 10	/* seconds per input; libFuzzer's runs are far shorter */

typedef int (*replay_fn)(const uint8_t *data, size_t size);

struct replay_target {
	const char *name;		/* corpus/<name>, regress/<name> */
	replay_fn fn;
	const char *(*reason)(void);	/* why the reader rejected an input, or NULL */
};

static int replay_nfailed, replay_ninputs;

/* The whole file in a buffer of exactly its size: a read past its end is
 * one past the allocation, as under libFuzzer. */
static uint8_t *replay_load(const char *path, size_t *size)
{
	FILE *f = fopen(path, "rb");
	struct stat st;
	if (!f)
		return NULL;
	if (fstat(fileno(f), &st) < 0 || !S_ISREG(st.st_mode)) {
		fclose(f);
		return NULL;
	}
	*size = (size_t)st.st_size;
	uint8_t *p = malloc(*size ? *size : 1);
	if (p && *size && fread(p, 1, *size, f) != *size) {
		free(p);
		p = NULL;
	}
	fclose(f);
	return p;
}

static int replay_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names of the regular inputs in dir, sorted; *n = -1 when dir is
 * missing. */
static char **replay_list(const char *dir, int *n)
{
	DIR *d = opendir(dir);
	char **names = NULL;
	struct dirent *de;
	int cap = 0;
	*n = -1;
	if (!d)
		return NULL;
	*n = 0;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.' || !strcmp(de->d_name, "README"))
			continue;
		if (*n == cap) {
			cap = cap ? 2 * cap : 64;
			names = realloc(names, (size_t)cap * sizeof *names);
			if (!names)
				break;
		}
		names[(*n)++] = strdup(de->d_name);
	}
	closedir(d);
	if (names)
		qsort(names, (size_t)*n, sizeof *names, replay_cmp);
	return names;
}

/* Runs one input in a child: 0 accepted, 1 rejected, 2 a seed rejected
 * (the child says why), else how it died, in why. */
static int replay_one(const struct replay_target *t, const char *dir, const char *name,
		      char *why, size_t cap)
{
	char path[4096];
	size_t size = 0;
	snprintf(path, sizeof path, "%s/%s", dir, name);
	uint8_t *data = replay_load(path, &size);
	if (!data) {
		snprintf(why, cap, "cannot read it");
		return -1;
	}
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		alarm(REPLAY_TIMEOUT);
		if (t->fn(data, size))
			_exit(0);
		if (strncmp(name, "seed-", 5))
			_exit(1);
		printf("FAIL fuzz: %s: a valid input was rejected: %s\n", path,
		       t->reason ? t->reason() : "(no message)");
		fflush(stdout);
		_exit(2);
	}
	free(data);
	int st;
	if (pid < 0 || waitpid(pid, &st, 0) != pid) {
		snprintf(why, cap, "cannot run it");
		return -1;
	}
	if (WIFEXITED(st) && WEXITSTATUS(st) <= 2)
		return WEXITSTATUS(st);
	if (WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM)
		snprintf(why, cap, "still running after %d s", REPLAY_TIMEOUT);
	else if (WIFSIGNALED(st))
		snprintf(why, cap, "crashed (%s)", strsignal(WTERMSIG(st)));
	else
		snprintf(why, cap, "exited with status %d", WEXITSTATUS(st));
	return -1;
}

/* Replays fuzz/<kind>/<target>: a FAIL line per bad input, else one PASS
 * line. A missing or empty corpus is a failure (the test would pass by
 * testing nothing); a missing regress directory is not. */
static void replay_dir(const struct replay_target *t, const char *kind)
{
	char dir[512], why[256];
	int n, accepted = 0, failed = 0;
	snprintf(dir, sizeof dir, "fuzz/%s/%s", kind, t->name);
	char **names = replay_list(dir, &n);
	if (n <= 0 && !strcmp(kind, "corpus")) {
		printf("FAIL fuzz: %s: no inputs (the tests run from the source root)\n", dir);
		replay_nfailed++;
	}
	for (int i = 0; i < n; i++) {
		int rc = replay_one(t, dir, names[i], why, sizeof why);
		if (rc < 0)
			printf("FAIL fuzz: %s/%s: %s\n", dir, names[i], why);
		failed += rc < 0 || rc == 2;
		accepted += rc == 0;
		free(names[i]);
	}
	free(names);
	if (n > 0 && !failed)
		printf("PASS fuzz: %s: %d inputs, %d accepted, none crashed\n", dir, n, accepted);
	replay_ninputs += n > 0 ? n : 0;
	replay_nfailed += failed;
}

/* Both directories of each target, then a summary; the exit status. */
static int replay_main(const struct replay_target *targets, size_t n)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (size_t i = 0; i < n; i++) {
		replay_dir(&targets[i], "corpus");
		replay_dir(&targets[i], "regress");
	}
	printf("# fuzz: %d inputs replayed, %d failed\n", replay_ninputs, replay_nfailed);
	return replay_nfailed ? 1 : 0;
}

#endif
