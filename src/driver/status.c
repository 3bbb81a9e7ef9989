/* `rewire status [PID]`: what a running program holds — its patches in
 * order (when, the functions each replaced, whether it was rolled back),
 * how many versions each function has had, the memory the patches use.
 * Without PID: every process of the user that runs rewire's agent. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "driver.h"
#include "procs.h"

struct counted {
	char *name;
	int versions;
};

static void count(struct counted **v, size_t *n, size_t *cap, const char *name)
{
	for (size_t i = 0; i < *n; i++)
		if (!strcmp((*v)[i].name, name)) {
			(*v)[i].versions++;
			return;
		}
	*v = rw_grow(*v, cap, *n, sizeof **v);
	(*v)[(*n)++] = (struct counted){rw_strdup(name), 1};
}

static void print_size(uint64_t bytes, char *out, size_t cap)
{
	if (bytes >= 10u << 20)
		snprintf(out, cap, "%llu MiB", (unsigned long long)(bytes >> 20));
	else
		snprintf(out, cap, "%llu KiB", (unsigned long long)((bytes + 1023) >> 10));
}

static void print_when(uint64_t ns, char *out, size_t cap)
{
	time_t t = (time_t)(ns / 1000000000u);
	struct tm tm;
	if (!localtime_r(&t, &tm) || !strftime(out, cap, "%H:%M:%S", &tm))
		snprintf(out, cap, "?");
}

/* One process's answer to STATUS, printed. */
static void show(int pid, struct proto_reader *r)
{
	struct counted *fns = NULL;
	size_t nfns = 0, cap = 0;
	uint32_t n = proto_get_u32(r);
	char exe[PATH_MAX] = "?", link[64], size[32], reserved[32];
	snprintf(link, sizeof link, "/proc/%d/exe", pid);
	ssize_t len = readlink(link, exe, sizeof exe - 1);
	exe[len > 0 ? len : 1] = 0;
	char guest[PATH_MAX], shown[PATH_MAX + 64];
	/* Under qemu-user the executable is qemu's: name the program it runs. */
	if (procs_emulated(pid, guest, sizeof guest))
		snprintf(shown, sizeof shown, "%s under %s", guest, rw_basename(exe));
	else
		snprintf(shown, sizeof shown, "%s", exe);
	printf("process %d (%s): %u patch%s\n", pid, shown, n, n == 1 ? "" : "es");
	for (uint32_t i = 0; i < n && !r->err; i++) {
		uint32_t version = proto_get_u32(r), gen = proto_get_u32(r);
		uint64_t when = proto_get_u64(r);
		int live = proto_get_u8(r);
		uint32_t nfn = proto_get_u32(r);
		char when_s[32];
		print_when(when, when_s, sizeof when_s);
		printf("  patch %u  %s  ", version, when_s);
		for (uint32_t k = 0; k < nfn && !r->err; k++) {
			char name[1024];
			proto_get_str(r, name, sizeof name);
			printf("%s%s", k ? ", " : "", name);
			if (live)
				count(&fns, &nfns, &cap, name);
		}
		printf("%s%s%s\n", nfn ? "" : "new code only", live ? "" : " (rolled back)",
		       gen ? "" : " (rewire apply)");
	}
	uint64_t used = proto_get_u64(r), res = proto_get_u64(r);
	if (nfns) {
		printf("  versions, the one built included:");
		for (size_t i = 0; i < nfns; i++) {
			printf("%s %s %d", i ? "," : "", fns[i].name, fns[i].versions + 1);
			free(fns[i].name);
		}
		printf("\n");
	}
	free(fns);
	print_size(used, size, sizeof size);
	print_size(res, reserved, sizeof reserved);
	printf("  memory: %s of patches (%s reserved near the program)\n", size, reserved);
	if (r->err)
		rw_say_error("process %d: its answer is malformed", pid);
}

static int status_of(int pid)
{
	struct proto_reader r;
	int fd = chan_connect(pid, 0);
	if (fd < 0)
		return rw_say_error("process %d: %s", pid, rw_error()), -1;
	int rc = chan_request(fd, RW_MSG_STATUS, NULL, &r);
	close(fd);
	if (rc < 0 && strstr(rw_error(), "unknown request"))
		return rw_say_error("process %d: its agent is of an older rewire, which cannot say what it "
				    "holds", pid), -1;
	if (rc < 0)
		return rw_say_error("process %d: %s", pid, rw_error()), -1;
	show(pid, &r);
	free((void *)r.p);
	return 0;
}

/* The processes whose agent listens in the user's socket directory. */
static int status_all(void)
{
	char dir[256];
	int shown = 0, failed = 0;
	if (chan_socket_dir(dir, sizeof dir) < 0)
		return rw_say_error("%s", rw_error()), EXIT_NOPROC;
	DIR *d = opendir(dir);
	struct dirent *e;
	while (d && (e = readdir(d))) {
		int pid = atoi(e->d_name);
		if (pid <= 0 || !strstr(e->d_name, ".sock") || (kill(pid, 0) < 0 && errno == ESRCH))
			continue;
		failed |= status_of(pid) < 0;
		shown++;
	}
	if (d)
		closedir(d);
	if (!shown)
		rw_say("no process runs rewire's agent");
	return failed ? EXIT_NOPROC : 0;
}

int cmd_status(int argc, char **argv)
{
	if (argc > 2) {
		fprintf(stderr, "usage: rewire status [PID]\n");
		return EXIT_USAGE;
	}
	if (argc < 2)
		return status_all();
	char *end;
	long pid = strtol(argv[1], &end, 10);
	if (!argv[1][0] || *end || pid <= 0 || pid > INT_MAX) {
		rw_say_error("%s: not a process id", argv[1]);
		return EXIT_USAGE;
	}
	return status_of((int)pid) < 0 ? EXIT_NOPROC : 0;
}
