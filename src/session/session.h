/* The `rewire run` session's own declarations, shared by its files:
 * start.c (baselines, cache), watch.c (saves), compile.c (compilers),
 * batch.c (a save's compile, diff and patch), processes.c (every process
 * of the program), landed.c (the patches it has), restart.c (--restart)
 * and session.c (the loop). */
#ifndef RW_SESSION_H
#define RW_SESSION_H
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "driver/driver.h"
#include "driver/procs.h"
#include "front/cc.h"
#include "front/cgus.h"
#include "front/includes.h"
#include "diff/diff.h"

/* Editors save in one write or one rename; some write twice in a row. A
 * rename puts the whole file in place at once: only a burst of them (an
 * editor's "save all") is waited for. */
#define DEBOUNCE_NS (8ull * 1000000)
#define DEBOUNCE_RENAME_NS (2ull * 1000000)
/* Compilers running at once, at most. */
#define MAX_JOBS 8

/* JOB_BASE compiles a unit whose object is not current (its baseline);
 * JOB_DEPS only preprocesses one whose object is, for the headers it
 * includes, when neither a depfile nor its #include lines tell them (it
 * includes a macro); both in the background. JOB_PATCH compiles a save. */
enum job_kind { JOB_BASE, JOB_PATCH, JOB_DEPS };

/* The patches --restart can take back out of a restarted program. */
#define KEEP_LANDED 32

/* A patch the running program has (or may have: it ended before the
 * agent answered), by the agent's number for it, with each unit's
 * baseline before it. When the agent blames it for a crash (agent.c),
 * --restart starts the program again without it. */
struct landed {
	int version;
	uint32_t gen;		/* the session's number for it; 0: in doubt */
	int from_orig;		/* a restart's: every patch up to gen, from the build */
	size_t n;
	size_t *units;
	char **before;		/* NULL: the unit had no baseline */
	uint8_t *was_patched;	/* the unit's `patched` before it */
	char what[640];		/* "compute (body.c)", for messages */
};

struct job {
	pid_t pid;
	int pidfd;		/* readable when the compiler exits, -1 if none */
	size_t unit;
	int kind;
	int status;
	int running;
	/* The unit's inputs when the compile started: what it read. */
	uint64_t hash, names;
	int64_t started;	/* CLOCK_REALTIME ns, as file times are */
	char obj[2048], dep[2048], log[2048];
};

/* What the session knows of one unit, beside its cc_unit. */
struct unit_state {
	uint64_t due;		/* when its debounce ends, 0 if not dirty */
	uint64_t batch_hash;	/* its inputs when its batch began, 0: none */
	char *orig;		/* the baseline the program started with */
	uint8_t in_batch;	/* compiling for the current patch */
	uint8_t started;	/* its compile for the batch has started */
	uint8_t forced;		/* rebuild though its own inputs did not change */
	uint8_t deps_only;	/* its baseline is the build's object, only its
				 * headers are to learn (JOB_DEPS) */
	uint8_t patched;	/* its current baseline was patched in */
	uint8_t lost;		/* its patch failed as the program ended */
	uint8_t behind;		/* its last save did not compile or was refused */
	struct elf_object *base_read;	/* its baseline as the last patch's diff read it */
	char *base_read_path;		/* the file that was, while it is the baseline */
};

#define SESSION_MAX_REQUESTS 8

struct session {
	pid_t child;
	int pidfd;
	int detach_fd;		/* attached: readable when rewire is told to detach; else -1 */
	struct cc_db db;
	char cache[1024];
	/* Where objects go: the cache; a crate's beside its output (cgus.c). */
	char objs[1024];
	int warmed;		/* the program's executable read ahead (warm_images) */
	int failed_logs;	/* a message named a log in cache/base: kept at the end */
	int ino;
	char **dirs;			/* [inotify watch descriptor] */
	size_t ndirs, capdirs;
	struct unit_state *u;	/* per unit of db */
	uint64_t batch_start;
	int batch_said;		/* "compiling …" said for the batch under way */
	/* A slot per unit of the program, and MAX_JOBS more: a compile of
	 * the batch holds its slot until the whole batch is patched, and a
	 * batch may hold every unit (a header they all include). */
	struct job *jobs;
	size_t njobs;
	size_t *base_queue;	/* units still to compile for their baseline/deps */
	size_t nqueue, qnext;
	int64_t exe_time;	/* when the executable was built (file time) */
	int64_t start_wall;	/* when the session began (file time) */
	int color;
	int parallel;
	pid_t (*relaunch)(void *ctx);	/* --restart: start the program again */
	void *relaunch_ctx;
	uint64_t restarted_at;
	int restarts;
	int blamed;		/* the patch the crashed program's agent named, 0: none */
	struct landed landed[KEEP_LANDED];	/* the program's patches, oldest first */
	size_t nlanded;
	unsigned seq;		/* baselines are files of their own: landed[].before */
	struct procs procs;	/* the program's processes */
	uint32_t gen;		/* patches the program took (gen of the newest) */
	uint32_t batch;		/* patches tried (the number of the last); a process
				 * that did not answer in time is asked again in the
				 * next (proc.silent) */
	int procs_new;		/* a process may have appeared */
	char *requests[SESSION_MAX_REQUESTS];	/* from `rewire revert`, to serve */
	int nrequests;
	struct exe_cache *images;	/* the program's files as patches read them */
	struct rw_table hashes;		/* of the units' files (cc_hash_inputs_memo) */
};

/* One patch's objects, their baselines and the diff of them (set.c). */
struct diff_ctx {
	size_t n;
	char **paths;			/* new objects */
	const char **bases;		/* their baselines, NULL: none */
	struct elf_object **base_objs;	/* the baselines already read, NULL: read them */
	const char **names;		/* source file of each, for messages */
	const char **crates;		/* Rust: the crates of the objects */
	size_t ncrates;
	struct cgus_pair *pairs;	/* a crate's: the codegen units that changed */
	struct diff_set set;
};

/* watch.c */
int64_t session_mtime_ns(const char *path);
void session_read_events(struct session *s);
void session_watch_dir_of(struct session *s, const char *path);

/* compile.c */
void session_check_headers(struct session *s, size_t i);
uint64_t session_compiled_hash(struct session *s, const struct cc_unit *u,
			       const struct job *j);
int session_copy_file(const char *src, const char *dst);
void session_reap_jobs(struct session *s);
void session_record_orig(struct session *s, size_t i);
void session_show_log(const char *path, int json, int color);
void session_start_baselines(struct session *s);
/* 0: started; -1: no compiler slot free (later); -2: cannot (rw_error()). */
int session_start_job(struct session *s, size_t unit, int kind);
int64_t session_wall_ns(void);

/* revert.c */
void session_serve_requests(struct session *s);

/* landed.c */
void session_drop_landed(struct session *s, size_t k);
struct landed *session_find_landed(struct session *s, int version);
void session_forget_base(struct session *s, char *path);
void session_leave_out(struct session *s, const struct landed *l);
void session_note_landed(struct session *s, const size_t *units, size_t n,
			 const struct patch_result *res, const char *files, int from_orig, uint32_t gen);

/* batch.c */
int session_child_ended(struct session *s);
void session_diff_ctx_name(struct session *s, struct diff_ctx *d, size_t k, size_t unit);
size_t session_count_changes(struct diff_ctx *d);
void session_forget_read(struct unit_state *u);
void session_diff_ctx_free(struct diff_ctx *d);
void session_diff_ctx_init(struct diff_ctx *d, size_t n);
void session_finish_batch(struct session *s);
void session_list_names(struct session *s, const size_t *units, size_t n, char *out, size_t cap);
void session_start_batch(struct session *s);
void session_say_progress(struct session *s);
void session_start_pending(struct session *s);

/* processes.c */
void session_missed(struct session *s, struct proc *p, const struct patch_result *r);
int session_patch_first(struct session *s, char **paths, size_t n, const struct patch_filter *f,
			struct patch_result *res, int *first);
void session_patch_others(struct session *s, char **paths, size_t n, const struct patch_filter *f,
			  struct patch_result *all);
void session_settle(struct session *s, struct patch_result *all, int patching);

/* restart.c */
int session_restart(struct session *s, int status);

/* start.c */
int session_make_cache(struct session *s);
void session_remove_cache(struct session *s);
void session_remove_tree(const char *path);
void session_end_cache(struct session *s);
/* Patch gen was said to the user (agent.c, agent_wait_said). */
void session_said(uint32_t gen);
void session_setup_baselines(struct session *s, const char *exe);

#endif
