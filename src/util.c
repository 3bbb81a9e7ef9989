#include "util.h"
#include "grow.h"
#include <fcntl.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <libiberty/demangle.h>

static char errbuf[2048];

int rw_fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(errbuf, sizeof errbuf, fmt, ap);
	va_end(ap);
	return -1;
}

const char *rw_error(void) { return errbuf; }

void rw_say(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("rewire: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

void rw_say_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("rewire: error: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static void *check(void *p)
{
	if (!p) {
		fprintf(stderr, "rewire: error: out of memory\n");
		exit(70);
	}
	return p;
}

void *rw_malloc(size_t n) { return check(malloc(n ? n : 1)); }
void *rw_calloc(size_t n, size_t size) { return check(calloc(n ? n : 1, size ? size : 1)); }
void *rw_realloc(void *p, size_t n) { return check(realloc(p, n ? n : 1)); }
char *rw_strdup(const char *s) { return check(strdup(s)); }

/* grow.h's, ending rewire when it cannot (no such size: as out of memory). */
void *rw_grow(void *p, size_t *cap, size_t n, size_t size)
{
	return check(rw_try_grow(p, cap, n, size));
}

uint64_t rw_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int rw_crash_signal(int sig)
{
	return sig == SIGSEGV || sig == SIGBUS || sig == SIGILL || sig == SIGFPE || sig == SIGABRT;
}

int rw_stat_file(const char *path, struct rw_proc_stat *st)
{
	char buf[1024];
	unsigned long long start = 0;
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	/* After the name, which may hold spaces and parentheses: the state,
	 * the parent, and 18 fields on (the 22nd of the line) the start. */
	const char *p = strrchr(buf, ')');
	if (!p || sscanf(p + 1, " %c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d "
			   "%*d %*d %*d %llu", &st->state, &st->ppid, &start) != 3)
		return -1;
	st->start = start;
	return 0;
}

int rw_proc_stat(int pid, struct rw_proc_stat *st)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/stat", pid);
	return rw_stat_file(path, st);
}

uint64_t rw_proc_start(int pid)
{
	struct rw_proc_stat st;
	return rw_proc_stat(pid, &st) == 0 ? st.start : 0;
}

int rw_copy_file(const char *src, const char *dst)
{
	int in = open(src, O_RDONLY | O_CLOEXEC), out = -1, rc = -1;
	char buf[65536];
	ssize_t n = -1;
	if (in >= 0)
		out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	while (out >= 0 && (n = read(in, buf, sizeof buf)) > 0)
		if (write(out, buf, (size_t)n) != n)
			break;
	rc = out >= 0 && n == 0 ? 0 : -1;
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	return rc;
}

const char *rw_basename(const char *path)
{
	const char *s = strrchr(path, '/');
	return s ? s + 1 : path;
}

uint32_t rw_hash(const char *s) { return rw_hash_n(s, strlen(s)); }

uint64_t rw_hash64(uint64_t h, const void *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		h = (h ^ ((const uint8_t *)p)[i]) * 1099511628211ull;
	return h;
}

void rw_index_init(struct rw_index *x, size_t n)
{
	size_t cap = 16;
	while (cap < 2 * n)
		cap *= 2;
	x->slots = rw_calloc(cap, sizeof *x->slots);
	x->mask = cap - 1;
}

void rw_index_free(struct rw_index *x)
{
	free(x->slots);
	memset(x, 0, sizeof *x);
}

static size_t table_slot(const struct rw_table *t, const char *key)
{
	size_t i = rw_hash(key) & (t->cap - 1);
	while (t->keys[i] && strcmp(t->keys[i], key))
		i = (i + 1) & (t->cap - 1);
	return i;
}

static void table_grow(struct rw_table *t)
{
	struct rw_table old = *t;
	t->cap = old.cap ? old.cap * 2 : 256;
	t->keys = rw_calloc(t->cap, sizeof *t->keys);
	t->vals = rw_calloc(t->cap, sizeof *t->vals);
	for (size_t i = 0; i < old.cap; i++) {
		if (!old.keys[i])
			continue;
		size_t j = table_slot(t, old.keys[i]);
		t->keys[j] = old.keys[i];
		t->vals[j] = old.vals[i];
	}
	free(old.keys);
	free(old.vals);
}

void **rw_table_put(struct rw_table *t, const char *key, int *added)
{
	if (2 * (t->n + 1) > t->cap)
		table_grow(t);
	size_t i = table_slot(t, key);
	*added = !t->keys[i];
	if (*added) {
		t->keys[i] = rw_strdup(key);
		t->n++;
	}
	return &t->vals[i];
}

void rw_table_free(struct rw_table *t, void (*free_val)(void *))
{
	for (size_t i = 0; i < t->cap; i++) {
		free(t->keys[i]);
		if (t->keys[i] && free_val)
			free_val(t->vals[i]);
	}
	free(t->keys);
	free(t->vals);
	memset(t, 0, sizeof *t);
}

/* C++ (Itanium) and Rust (legacy and v0) names, as people wrote them.
 * DMGL_AUTO lets libiberty tell Rust's legacy hashes from C++. The result
 * lives until the next call with the same slot of a small ring, so a
 * message can hold a few names. */
int rw_verbose;

static const char *demangle(const char *name, int params)
{
	static char *ring[8];
	static unsigned next;
	char *d = cplus_demangle(name, params | DMGL_ANSI | DMGL_AUTO);
	if (!d)
		d = rust_demangle(name, params | DMGL_ANSI);
	if (!d)
		return name;
	unsigned i = next++ % 8;
	free(ring[i]);
	ring[i] = d;
	return d;
}

const char *rw_demangle(const char *name)
{
	return demangle(name, DMGL_PARAMS);
}

const char *rw_demangle_short(const char *name)
{
	return demangle(name, 0);
}

size_t rw_name_len(const char *name)
{
	size_t len = strlen(name), i = len;
	while (i > 0 && name[i - 1] >= '0' && name[i - 1] <= '9')
		i--;
	if (i == len || i < 7 || memcmp(name + i - 6, ".llvm.", 6))
		return len;
	return i - 6;
}

int rw_name_eq(const char *a, const char *b)
{
	size_t la = rw_name_len(a);
	return la == rw_name_len(b) && !memcmp(a, b, la);
}
