/* REWIRE_TRACE=FILE: the session's dealings with the program's
 * processes, one line each, appended to FILE — for finding out why a
 * process was or was not patched or let run. Not for everyday use: the
 * user's messages are rw_say's. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include "driver.h"

void rw_trace(const char *fmt, ...)
{
	static int fd = -2;
	if (fd == -2) {
		const char *path = getenv("REWIRE_TRACE");
		fd = path && path[0] ? open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600) : -1;
	}
	if (fd < 0)
		return;
	char line[1024];
	struct timespec t;
	clock_gettime(CLOCK_REALTIME, &t);
	int n = snprintf(line, sizeof line, "%ld.%06ld %d ", (long)t.tv_sec, t.tv_nsec / 1000,
			 (int)getpid());
	va_list ap;
	va_start(ap, fmt);
	n += vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof line - 2)
		n = (int)sizeof line - 2;
	line[n++] = '\n';
	if (write(fd, line, (size_t)n) < 0) {}
}
