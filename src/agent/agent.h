/* The agent: librewire.so, loaded into the target process with LD_PRELOAD.
 *
 * It runs inside someone else's program, so it never exits, aborts or
 * asserts (poisoned below); every failure becomes an error message sent
 * back to the driver, and every patch is a transaction that either applies
 * whole or leaves the process as it was. It does only what needs to be in
 * the process: report the modules, reserve and write memory, look up
 * dynamic symbols, stop the world and write entry jumps. Everything heavy
 * (ELF, relocation) happens in the driver. */
#ifndef RW_AGENT_H
#define RW_AGENT_H
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "machine.h"
#include "proto/proto.h"

/* Include after system headers: they declare these. */
#pragma GCC poison exit abort _exit assert

#define AGENT_ERRLEN 512

struct agent_err {
	char msg[AGENT_ERRLEN];
};
int agent_fail(struct agent_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
struct dl_phdr_info;
/* dl_iterate_phdr, never across a fork(): glibc's fork does not reset the
 * loader lock it holds, so a child forked meanwhile could never walk its
 * modules again (nor unwind an exception). */
int agent_dl_iterate(int (*cb)(struct dl_phdr_info *, size_t, void *), void *data);

/* region.c: memory near modules, handed out page by page. An allocation is
 * pending until the patch that asked for it commits; a failed patch gives
 * it back. */
int region_reserve_near(uint64_t lo, uint64_t hi, struct agent_err *e);
int region_alloc(uint64_t lo, uint64_t hi, uint64_t size, uint64_t *addr, struct agent_err *e);
int region_is_pending(uint64_t addr, uint64_t size);
int region_is_committed(uint64_t addr, uint64_t size);
void region_commit(void);
void region_rollback(void);
void region_usage(uint64_t *used, uint64_t *reserved);

/* stop.c: stop every other thread, see where each one is, resume them. */
struct stop_range {
	uint64_t lo, hi;
	const char *name;
	/* A call among the bytes the write replaces may return inside them
	 * (agent_may_return_inside): return addresses are looked at too. */
	int returns;
};
int stop_init(struct agent_err *e);
/* Stops the world, checks no thread's instruction pointer is inside one of
 * ranges, calls write(ctx) while every other thread waits, and resumes.
 * Retries a while when a thread is inside; then refuses. *pause_ns is the
 * time the world was stopped. */
/* The system's page size, read once at start-up (agent.c). */
extern uint64_t agent_page_size;
/* Does the program run under an emulator (qemu-user: /proc/self/exe is
 * the emulator's file, its link the program's)? */
extern int agent_emulated;
int stop_world_and(const struct stop_range *ranges, size_t nranges,
		   int (*write)(void *ctx, struct agent_err *e), void *ctx,
		   uint64_t *pause_ns, uint32_t *nthreads, struct agent_err *e);

/* requests.c (HELLO, LOOKUP, ALLOC), apply.c (APPLY): requests. Each
 * fills reply (RW_MSG_OK payload) or returns -1. */
int request_hello(struct proto_buf *reply, struct agent_err *e);
int request_status(struct proto_buf *reply, struct agent_err *e);
int request_lookup(struct proto_reader *req, struct proto_buf *reply, struct agent_err *e);
int request_alloc(struct proto_reader *req, struct proto_buf *reply, struct agent_err *e);
int apply_patch(struct proto_reader *req, struct proto_buf *reply, struct agent_err *e);
/* Called when a connection ends: a pending allocation is given back. */
void apply_abort(void);
/* fork(): a patch is in a child whole or not at all. */
void apply_fork_prepare(void);
void apply_fork_parent(void);
void apply_fork_child(void);
/* history.c. Async-signal-safe: is addr in the code of a live patch;
 * which replaced function (NULL: new code) of which patch version holds
 * it. */
int apply_is_patch_code(uint64_t addr);
const char *apply_name_at(uint64_t addr, int *version, uint32_t *gen);
/* The same, new functions too (takes the patch lock: not in a handler). */
const char *apply_function_at(uint64_t addr);
/* Roll back the patch whose code holds culprit and every later one
 * (versions *first..*last), entry jumps as they were before it. */
int apply_rollback(uint64_t culprit, int *first, int *last, struct agent_err *e);
/* The session's number of the newest patch the process runs. */
uint32_t apply_generation(void);
int apply_revert(struct proto_reader *req, struct proto_buf *reply, struct agent_err *e);

/* api.c: the program's side (include/rewire.h). */
struct api_note {
	int version;
	size_t nfuncs;
	const char *const *funcs;	/* linkage names */
	const char *const *names;	/* the same, demangled */
};
/* Run a patch now, or hand it to the thread in rewire_poll() when the
 * program uses it; the rewire_on_patch hooks run after a success. */
int api_run(int (*run)(void *ctx, struct api_note *note, struct agent_err *e), void *ctx,
	    struct agent_err *e);
int api_init(struct agent_err *e);
void api_fork_prepare(void);
void api_fork_parent(void);
void api_fork_child(void);

/* follow.c: the exec family, which gives the agent to a process that runs
 * the watched executable (REWIRE_EXE, "dev:ino") again. follow_init: 1
 * when there is one to follow. */
int follow_init(const char *dir, const char *exe_id);
int follow_is_watched_exe(void);
/* The session that patches the program (REWIRE_SESSION), 0 when none:
 * an exec'd process then waits for it (REWIRE_HOLD). */
void follow_set_session(pid_t session);
pid_t follow_session(void);	/* the session that patches this process, or 0 */

/* user.c: the directory where this process makes its socket and crash
 * note: the session's, or, once the process has become another user, that
 * user's subdirectory <dir>/u<uid> as /proc/self/fd/N. */
void user_init(const char *dir, uid_t owner_uid);
const char *user_dir(void);

/* agent.c: 1 while the process waits for the session's GO (REWIRE_HOLD). */
int agent_is_held(void);

uint64_t agent_now_ns(void);
/* agent.c, async-signal-safe: signal sig, outside rewire_call(), was
 * patch `version`'s fault; noted where the session finds it once the
 * process is gone. */
void agent_note_crash(int version, int sig);
/* Before a crash in the code of session patch gen is reported: wait (a
 * few seconds at most) until the session has said that patch, so that
 * "patched" comes first. Async-signal-safe. */
void agent_wait_said(uint32_t gen);
/* Patches were rolled back after a crash: the session is asked to take
 * them back in the program's other processes too, and its baselines. */
void agent_tell_rolled_back(uint32_t gen);

#endif
