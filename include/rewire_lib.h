/* rewire_lib.h: reload shared libraries (plugins) while the program runs.
 *
 * Link with -lrewire-api (pkg-config rewire). Works without `rewire run`:
 * nothing here needs rewire's agent.
 *
 *   rewire_lib *lib = rewire_lib_open("./libgame.so", &state);
 *   int (*step)(struct state *) = (int (*)(struct state *))rewire_lib_sym(lib, "step");
 *   for (;;) {
 *       if (rewire_lib_update(lib) < 0)          // reloads when the file changed
 *           fprintf(stderr, "%s\n", rewire_lib_error(lib));
 *       step(&state);                          // always the newest version
 *   }
 *
 * - open loads a private copy of the file (never the file itself: a build
 *   rewriting it would change code under the running program), under a
 *   name that is never reused, in a private 0700 directory
 *   ($XDG_RUNTIME_DIR/rewire or /tmp/rewire-UID, then lib-PID-XXXXXX).
 * - sym returns a trampoline: a few bytes of code that jump to the current
 *   version of the function. It stays valid across reloads (until close),
 *   costs one indirect jump per call, and takes no lock. Functions only: a
 *   data symbol is refused (its address would be the old version's after a
 *   reload); export a function that returns the data instead.
 * - update reloads when the file changed and is completely written (a
 *   whole ELF shared object, not still growing). An incomplete file is
 *   awaited (update returns 0, the error says what it waits for) until
 *   update has seen it unchanged for 5 s: then it is refused, once
 *   (-1), as truncated. The new version is loaded, every symbol handed out
 *   by sym is found in it, and its rewire_lib_load hook accepts, before any
 *   trampoline moves; then all move at once, and the old version's
 *   rewire_lib_unload hook runs. Libraries that depend on
 *   it (DT_NEEDED, or symbols they import from it) are reloaded with it, in
 *   dependency order, as one transaction. Anything failing leaves the old
 *   versions in place. A file that failed is not tried again until it
 *   changes.
 * - Old versions stay mapped (a thread may still run in them, a pointer
 *   from dlsym may still point into them) until rewire_lib_unload_old.
 *
 * A library may define these hooks (both optional):
 *
 *   int  rewire_lib_load(void *state, int version);   // nonzero: refuse
 *   void rewire_lib_unload(void *state, int version);
 *
 * state is the pointer given to rewire_lib_open: the program owns it and
 * it outlives every version. version is 1 for the first load, and grows by
 * one for each version that replaced the one before; after a rollback the
 * version that comes back gets its load hook again, with its own (lower)
 * version.
 *
 * Dependencies between reloaded libraries: open a library before those
 * that use it, link the dependents against it (it appears in their
 * DT_NEEDED) and give it a DT_SONAME (-Wl,-soname,libfoo.so). Do not link
 * the program itself against a library it reloads.
 *
 * Errors: functions returning a pointer return NULL, those returning int a
 * negative value; rewire_lib_error(lib) says why (the file, the symbol, the
 * reason), rewire_lib_error(NULL) the last error of the calling thread. No
 * function exits or aborts the program. The functions may be called from
 * any thread; calls through trampolines never wait for them. */
#ifndef REWIRE_LIB_H
#define REWIRE_LIB_H

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rewire_lib rewire_lib;

#ifndef REWIRE_CRASHED
#define REWIRE_CRASHED (-2)
#endif

/* Loads a copy of path and runs its rewire_lib_load(state, 1). NULL on
 * failure: rewire_lib_error(NULL) says why. */
rewire_lib *rewire_lib_open(const char *path, void *state);

/* A pointer to the function name that always reaches its current version,
 * valid until rewire_lib_close; the same pointer for the same name. NULL
 * when the library does not define a function of that name. */
void *rewire_lib_sym(rewire_lib *lib, const char *name);

/* Reloads lib (and the libraries that depend on it) if its file changed
 * and is complete: 1 reloaded, 0 unchanged (or still being written), -1
 * refused or failed (the previous versions keep running). */
int rewire_lib_update(rewire_lib *lib);

/* rewire_lib_update for every open library, dependencies first: the
 * number of libraries reloaded, or -1 when one failed (each failing
 * library's error says why; the others were reloaded). */
int rewire_lib_update_all(void);

/* The current version: 1 after open, one more after each reload. */
int rewire_lib_version(const rewire_lib *lib);

/* Why the last call on lib failed ("" if none has), or with NULL why the
 * calling thread's last call failed. Valid until the next call on lib. */
const char *rewire_lib_error(const rewire_lib *lib);

/* fn(arg), guarded: when code of a library opened here crashes in it
 * (SIGSEGV, SIGBUS, SIGILL, SIGFPE, abort: at the fault or in a function
 * it called), the call returns REWIRE_CRASHED, and if the crashing version
 * is current, the reload that brought it in is rolled back: its libraries
 * go back to their versions before (marked bad, it is not loaded again
 * until its file changes). The error of lib (may be NULL), of the crashing
 * library and of the thread says which function, version and signal. What
 * fn's frames held (locks, memory) is not released. 0 when fn returned. */
int rewire_lib_call(rewire_lib *lib, void (*fn)(void *), void *arg);

/* Unloads the versions of lib that are not current (NULL: of every open
 * library, dependents first): use it only when no thread runs in them and
 * no pointer obtained otherwise than by rewire_lib_sym points into them.
 * glibc may keep an image mapped after dlclose (linked -z nodelete,
 * thread_local destructors registered, STB_GNU_UNIQUE symbols, a dependent
 * version still loaded): rewire checks. Returns the number of images that
 * glibc kept (0: all gone); the error names each and the likely reason. A
 * crash in the current version can then no longer be rolled back. */
int rewire_lib_unload_old(rewire_lib *lib);

/* Runs the current version's rewire_lib_unload, unloads every version and
 * frees lib: the pointers from rewire_lib_sym become invalid. Close the
 * libraries that depend on lib first. */
void rewire_lib_close(rewire_lib *lib);

/* The hooks a library may define (see above). */
int rewire_lib_load(void *state, int version);
void rewire_lib_unload(void *state, int version);

#ifdef __cplusplus
}
#endif
#endif
