/* rewire.h: what a program may ask of rewire while it runs under it.
 *
 * Link with -lrewire-api (pkg-config rewire). Every function is a no-op
 * when the program does not run under rewire (rewire_call then just calls
 * fn), so the calls can stay in release builds.
 *
 *   rewire_poll()       the program's quiescent moment (its tick): once a
 *                       program has called it, patches are applied only
 *                       inside this call, on the calling thread.
 *   rewire_on_patch()   fn(info, ctx) after each patch, to rebuild what
 *                       depends on code (caches of function pointers,
 *                       registrations); and after `rewire revert`, with
 *                       the version that runs now (0: as built) and the
 *                       functions taken back.
 *   rewire_call()       fn(arg), guarded: a crash (SIGSEGV, SIGBUS, SIGILL,
 *                       SIGFPE, abort) raised by patched code during the
 *                       call rolls that patch back and returns
 *                       REWIRE_CRASHED; the next call runs the previous
 *                       version.
 *   rewire_lib_*()      reload a plugin library (rewire_lib.h, docs/dylib.md). */
#ifndef REWIRE_H
#define REWIRE_H
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

struct rewire_patch_info {
	int version;			/* 1 for the first patch of the process; after
					 * `rewire revert`, the one that runs now */
	size_t nfuncs;
	const char *const *funcs;	/* linkage names of the replaced functions */
	const char *const *names;	/* the same functions' names for people
					 * (demangled: "Game::update(float)") */
};

typedef void (*rewire_patch_fn)(const struct rewire_patch_info *info, void *ctx);

#ifndef REWIRE_CRASHED
#define REWIRE_CRASHED (-2)
#endif

/* 1 when the process runs under rewire, else 0. */
int rewire_active(void);
/* Applies the patch waiting: 1 when it applied one, 0 when none waited (or
 * not under rewire). */
int rewire_poll(void);
/* 0, or -1 when too many functions are registered (16). Not under rewire:
 * 0, and fn never runs (there are no patches). */
int rewire_on_patch(rewire_patch_fn fn, void *ctx);
/* 0 when fn returned; REWIRE_CRASHED when patched code crashed in it and
 * its patch was rolled back (the reason is on stderr). */
int rewire_call(void (*fn)(void *), void *arg);

#ifdef __cplusplus
}
#endif

/* Reloading plugins (dynamic libraries): rewire_lib_open and the rest. */
#include "rewire_lib.h"
#endif
