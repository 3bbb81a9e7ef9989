/* calls.c: what one call costs (bench/calls.sh).
 *
 * Usage: calls GO OUT LIB.so. Waits until the file GO exists (the benchmark
 * patches target_patched meanwhile), then times, in rounds that take
 * turns so that a busy machine slows all alike, a loop of calls to a
 * one-line function (x = f(x): each call waits for the one before):
 *   direct     target_plain(), a direct call to a function never patched;
 *   patched    target_patched(), a direct call that the entry jump of a
 *              patch sends to the new version (when the run patched it);
 *   pointer    target_plain through a function pointer read each time;
 *   hashmap    a model of Subsecond's jump table: look the function's
 *              address up in a hash table (identity hash of the address,
 *              open addressing, 1,000 entries) and call what it gives;
 *   rwlock_dlsym  a model of hot-lib-reloader: take a read lock, dlsym()
 *              the name in the library, call, unlock.
 * The loops and models are noinline, each result goes to a volatile sink.
 * Writes to OUT lines "NAME ns V1 V2 ..." (ns per call, one per round)
 * and "patched_live 0|1" (does target_patched run its patched version). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define ROUNDS 21
#define CALLS 10000000L		/* per round; a tenth for rwlock_dlsym */
#define TABLE 2048		/* slots, a power of two */

int target_plain(int x);
int target_patched(int x);
int target_hot(int x);
int target_hot_new(int x);

typedef int (*fn)(int);
static volatile int sink;

/* The hash table of the model: function address -> newest version. */
struct slot {
	uintptr_t key, val;
};
static struct slot slots[TABLE];
static struct slot *_Atomic table;
static fn volatile hot_key = target_hot;	/* read each call: never hoisted */

static void table_init(void)
{
	static char dummies[1000];
	for (int i = 0; i <= 1000; i++) {
		uintptr_t k = i < 1000 ? (uintptr_t)&dummies[i] : (uintptr_t)target_hot;
		uintptr_t v = i < 1000 ? k : (uintptr_t)target_hot_new;
		size_t h = (k >> 4) & (TABLE - 1);
		while (slots[h].key)
			h = (h + 1) & (TABLE - 1);
		slots[h] = (struct slot){k, v};
	}
	atomic_store_explicit(&table, slots, memory_order_release);
}

__attribute__((noinline)) static int hot_call(int x)
{
	const struct slot *t = atomic_load_explicit(&table, memory_order_acquire);
	uintptr_t k = (uintptr_t)hot_key;
	fn f = hot_key;
	for (size_t h = (k >> 4) & (TABLE - 1); t[h].key; h = (h + 1) & (TABLE - 1))
		if (t[h].key == k) {
			f = (fn)t[h].val;
			break;
		}
	return f(x);
}

static pthread_rwlock_t lib_lock = PTHREAD_RWLOCK_INITIALIZER;
static void *lib;

__attribute__((noinline)) static int reload_call(int x)
{
	pthread_rwlock_rdlock(&lib_lock);
	fn f = (fn)dlsym(lib, "lib_fn");
	int r = f(x);
	pthread_rwlock_unlock(&lib_lock);
	return r;
}

static fn volatile pointer = target_plain;

#define LOOP(name, call)                                                \
	__attribute__((noinline)) static void loop_##name(long n)      \
	{                                                               \
		int x = 0;                                              \
		for (long i = 0; i < n; i++)                            \
			x = call;                                       \
		sink = x;                                               \
	}
LOOP(direct, target_plain(x))
LOOP(patched, target_patched(x))
LOOP(pointer, pointer(x))
LOOP(hashmap, hot_call(x))
LOOP(rwlock_dlsym, reload_call(x))

static double now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e9 + t.tv_nsec;
}

struct variant {
	const char *name;
	void (*loop)(long);
	long calls;
	double ns[ROUNDS];
};

int main(int argc, char **argv)
{
	if (argc != 4)
		return fprintf(stderr, "usage: calls GO OUT LIB.so\n"), 2;
	table_init();
	lib = dlopen(argv[3], RTLD_NOW | RTLD_LOCAL);
	if (!lib || !dlsym(lib, "lib_fn"))
		return fprintf(stderr, "calls: %s\n", dlerror()), 1;
	while (access(argv[1], F_OK) != 0)
		usleep(10000);
	struct variant v[] = {
		{"direct", loop_direct, CALLS, {0}},
		{"patched", loop_patched, CALLS, {0}},
		{"pointer", loop_pointer, CALLS, {0}},
		{"hashmap", loop_hashmap, CALLS, {0}},
		{"rwlock_dlsym", loop_rwlock_dlsym, CALLS / 10, {0}},
	};
	size_t nv = sizeof v / sizeof v[0];
	for (size_t i = 0; i < nv; i++)
		v[i].loop(v[i].calls / 10);	/* warm up */
	for (int r = 0; r < ROUNDS; r++)
		for (size_t i = 0; i < nv; i++) {
			double t0 = now_ns();
			v[i].loop(v[i].calls);
			v[i].ns[r] = (now_ns() - t0) / (double)v[i].calls;
		}
	FILE *out = fopen(argv[2], "w");
	if (!out)
		return perror(argv[2]), 1;
	for (size_t i = 0; i < nv; i++) {
		fprintf(out, "%s ns", v[i].name);
		for (int r = 0; r < ROUNDS; r++)
			fprintf(out, " %.3f", v[i].ns[r]);
		fprintf(out, "\n");
	}
	fprintf(out, "patched_live %d\n", target_patched(0) == 2);
	fclose(out);
	return 0;
}
