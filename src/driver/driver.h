/* The driver: the `rewire` command. One file per subcommand; channel.c
 * talks to the agent. */
#ifndef RW_DRIVER_H
#define RW_DRIVER_H
#include "link/linker.h"
#include "proto/msg.h"
#include "proto/proto.h"
#include "util.h"
#include <sys/types.h>

/* Exit codes, distinct so scripts can tell why. */
enum {
	EXIT_REFUSED = 1,	/* the patch cannot be applied; nothing was */
	EXIT_USAGE = 2,
	EXIT_BADINPUT = 3,	/* an input file is unreadable or malformed */
	EXIT_NOPROC = 4,	/* the process or its agent cannot be reached */
};


/* Which functions of the new objects changed (get entry jumps); NULL
 * filter: all of them. See linker.h. */
struct patch_filter {
	const struct diff_set *diff;
	/* Archives the program was linked with (.a, .rlib): library code it
	 * never contained is taken from them. */
	char **archives;
	int narchives;
	/* What each object is called in messages (its source), NULL: its path. */
	const char *const *names;
	/* The session's number for the patch, which the process keeps (and a
	 * child forked from it inherits); 0: none. */
	uint32_t gen;
	/* What earlier patches read of the program, kept for this one and
	 * the next (exe_cache.c); NULL: read for this patch alone. */
	struct exe_cache *cache;
	/* The Rust crates of the patch (--crate-name): the patch line names
	 * their functions first (names.c). None: C and C++. */
	const char *const *crates;
	size_t ncrates;
	/* Where to leave the look for threads inside replaced code, to run
	 * once the patch is said (running_later_run); NULL: at once. */
	struct running_later *later;
};

/* Code a patch replaced: one function's body before it, for running.c.
 * ipa_ra: the function itself did not change, but gcc built it knowing
 * which registers a changed function it calls leaves alone (-fipa-ra). */
struct old_code {
	uint64_t lo, hi;
	const char *name;
	int ipa_ra;
};

/* A replaced function a thread was inside, in its old code, after the patch. */
struct running_fn {
	int pid, tid;
	uint64_t lo, hi;
	int ipa_ra;
	char name[96];
};
#define RW_MAX_RUNNING 8

struct patch_result {
	uint64_t link_ns;
	uint64_t check_ns;	/* the type checks (types.c), part of the diff */
	struct msg_apply_times times;
	size_t nchanged, nnew;
	size_t npulled;		/* library members taken from the archives */
	char names[512];	/* the replaced functions, demangled */
	int version;		/* the agent's number for the patch (when applied) */
	int in_doubt;		/* failed: the answer to APPLY was lost (the program
				 * ended, or did not answer in time): it may have
				 * been applied */
	int no_answer;		/* failed: the process did not answer in time */
	struct running_fn run[RW_MAX_RUNNING];	/* found right after the patch */
	size_t nrun;
};

struct link;
/* names.c: res->names, what the patch line says was patched. */
void patch_describe(const struct link *l, const struct patch_filter *f, struct patch_result *res);

/* running.c: add to res->run the functions of code that a thread of
 * process pid is inside now (a frame of its stack). */
void running_scan(int pid, const struct old_code *code, size_t n, struct patch_result *res);
/* Looks left for later: unwinding every thread of every process patched
 * takes milliseconds that the patch line need not wait for. */
struct running_later {
	struct later_scan {
		int pid;
		struct old_code *code;
		size_t n;
		char **names;	/* the code's, owned */
	} *v;
	size_t n, cap;
};
void running_later_add(struct running_later *l, int pid, struct old_code *code, size_t n,
		       char **names);
/* Run them into res, and forget them. */
void running_later_run(struct running_later *l, struct patch_result *res);
void running_later_free(struct running_later *l);
/* Look again, RUNNING_RECHECK_MS after patched_ns, for the ones res found,
 * and warn of each still running. */
void running_warn(const struct patch_result *res, uint64_t patched_ns);

/* exe_cache.c: the images (symbols, indexes) and type information of the
 * program's files that patches read, kept from one patch to the next. */
struct exe_cache;
struct types_prog;
struct exe_cache *exe_cache_new(void);
void exe_cache_free(struct exe_cache *c);
/* The image of the file module m of process p maps, and its types (when
 * types is not NULL; *types NULL: the file cannot be read for them): kept
 * from an earlier call while p maps that same file, else read. NULL, with
 * the reason in rw_error(), when no file of the module's build can be
 * read. The cache owns both; the next call for the same path may replace
 * them. */
struct elf_image *exe_cache_image(struct exe_cache *c, const struct link_process *p, size_t m,
				 struct types_prog **types);

/* patch.c: read process pid's executable into cache (its image and types)
 * before a patch needs it. 0, or -1. */
int patch_warm(int pid, struct exe_cache *cache);
/* patch.c: link the objects into process pid and apply them. 0, or an
 * exit code with the reason in rw_error(). */
int patch_run(int pid, char **files, int nfiles, const struct patch_filter *filter,
	     struct patch_result *res);

int chan_socket_dir(char *out, size_t cap);
/* The path of process pid's file NAME (its socket "sock", its crash note
 * "crash") in the socket directory dir: there, or in the subdirectory
 * u<uid> of a process that became another user (agent/user.c). 0 when it
 * exists; else -1, and out is the path in dir itself. */
int chan_agent_file(const char *dir, int pid, const char *name, char *out, size_t cap);
/* channel.c: the patch the agent of process pid (ended by signal sig)
 * blamed for the crash (agent_note_crash); 0 when none. The note goes. */
int chan_crash_blame(int pid, int sig);
int chan_connect(int pid, int wait_ms);
int chan_request(int fd, uint16_t type, const struct proto_buf *req, struct proto_reader *reply);
/* The last chan_connect or request failed because the process did not answer
 * within its limit (stopped, or its agent stuck); rw_error() says which. */
int chan_no_answer(void);
/* REWIRE_TRACE=FILE: one line, appended there (trace.c). */
void rw_trace(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int chan_hello(struct link_process *p);
void chan_process_free(struct link_process *p);
/* Ask process pid (once, no waiting) which session patch it has, and
 * whether it waits for GO (an exec'd or restarted process, agent.c). */
int chan_peek(int pid, uint32_t *gen, int *held);
/* Tell process pid it has the session's patches and may run on (agent.c's
 * hold of an exec'd process). */
int chan_release(int pid);
/* REVERT: the process's patches after rv->to taken back; out: what it runs now. */
int chan_revert(int pid, const struct msg_revert *rv, struct msg_reverted *out);
int chan_lookup(struct link_process *p, struct link *l);
int chan_alloc(struct link_process *p, uint64_t lo, uint64_t hi, uint64_t size, uint64_t *addr);
int chan_apply(struct link_process *p, const struct proto_buf *patch, struct msg_apply_times *t);


struct cc_db;
/* src/session/: watch, build, diff and patch until the program exits: its
 * wait status. detach_fd >= 0: the program is not rewire's child (`rewire
 * attach`); the session ends when it ends (0) or when detach_fd becomes
 * readable (SESSION_DETACHED), and leaves it running. */
#define SESSION_DETACHED 1
int session_run(pid_t child, struct cc_db *db, const char *exe, pid_t (*relaunch)(void *ctx),
		void *ctx, int detach_fd);

/* run.c, shared with attach.c: the agent's path; the program's units
 * (NULL: none, said why); the warnings about how it was built. */
int run_find_agent(char *out, size_t cap);
int run_check_dbdir(const char *dbdir, const char *exe);
struct cc_db *run_load_units(const char *dbdir, const char *exe);
void run_warn_build(const char *exe, const struct cc_db *db);

int cmd_run(int argc, char **argv);
int cmd_apply(int argc, char **argv);
int cmd_attach(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_revert(int argc, char **argv);

/* A session's requests from other commands (`rewire revert`), through
 * files in the socket directory: <root>.session holds the pid of the
 * session that patches the program whose first process is root;
 * s<session>.<client>.revert asks it, s<session>.<client>.answer is its
 * answer (revert.c, session/revert.c). */
#define REVERT_ASK ".revert"
#define REVERT_ANSWER ".answer"


#endif
