/* slowhello.c: an LD_PRELOAD library for the tests. In a process that
 * waits for rewire before it runs (exec'd by a process of the program:
 * REWIRE_HOLD in the environment exec gave it), the agent's first answer
 * comes SLOW_S seconds late, as on a machine so loaded that a process
 * does not answer in time: the session must ask it again, not leave it
 * waiting. It delays the first module walk of a thread other than the
 * main one (the agent's HELLO). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <link.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define SLOW_S 2

static int held(void)
{
	char buf[65536];
	int fd = open("/proc/self/environ", O_RDONLY | O_CLOEXEC), found = 0;
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof buf - 1);
	if (fd >= 0)
		close(fd);
	if (n > 0)
		buf[n] = 0;
	for (ssize_t i = 0; i < n && !found; i += (ssize_t)strlen(buf + i) + 1)
		found = !strncmp(buf + i, "REWIRE_HOLD=", 12);
	return found;
}

int dl_iterate_phdr(int (*cb)(struct dl_phdr_info *, size_t, void *), void *data)
{
	static int (*real)(int (*)(struct dl_phdr_info *, size_t, void *), void *);
	static int delayed;
	if (!real)
		real = (int (*)(int (*)(struct dl_phdr_info *, size_t, void *), void *))
			dlsym(RTLD_NEXT, "dl_iterate_phdr");
	if (!delayed && syscall(SYS_gettid) != getpid() && held()) {
		delayed = 1;
		sleep(SLOW_S);
	}
	return real(cb, data);
}
