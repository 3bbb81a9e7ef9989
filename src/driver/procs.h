/* The processes of a program (procs.c). */
#ifndef RW_PROCS_H
#define RW_PROCS_H
#include <stdint.h>
#include "driver.h"

struct inotify_event;

#define PROC_GEN_UNKNOWN UINT32_MAX
#define PROCS_MAX_USERS 16

struct proc {
	int pid;
	uint32_t gen;		/* the session's patch it has; PROC_GEN_UNKNOWN: not asked yet */
	uint32_t failed;	/* the patch it last failed to take (said once), or 0 */
	uint32_t silent;	/* the session's batch in which it did not answer in
				 * time: not asked again in that batch; 0: none */
	int released;		/* told to run on (an exec'd process waits for it) */
	int retries;		/* asked again after its agent went mid-answer */
	uint64_t start;		/* its start time: with the pid, the process (pids are reused) */
	uint64_t sock_ino;	/* the inode of its socket when it appeared: the one to remove */
	uint64_t retry_at;	/* held and silent: asked again then (rw_now_ns()), else 0 */
	uint64_t retry_ns;	/* and the wait before that, doubled each time */
};

struct procs {
	int root;		/* the process rewire started */
	int wd;			/* inotify watch of the socket directory */
	char dir[256];
	int ino;
	int sub_wd[PROCS_MAX_USERS];	/* and of its subdirectories u<uid> */
	int nsub;
	struct proc *v;		/* [0] is the root */
	size_t n, cap;
};

/* Does pid run under an emulator (qemu-user: its executable is qemu-*, and
 * an ELF file of another machine is mapped)? 1 with that file's path, the
 * program, in guest; else 0. */
int procs_emulated(int pid, char *guest, size_t cap);

/* Watch the socket directory on ino, and take the program's processes
 * already there. */
int procs_init(struct procs *ps, int root, int ino);
/* 1 when e is of the socket directory (a new process may be known); 2
 * when it is a request to this session (e->name, `rewire revert`). */
int procs_event(struct procs *ps, const struct inotify_event *e);
/* The session ends: its mark for other commands goes. */
void procs_end(struct procs *ps);
struct proc *procs_find(struct procs *ps, int pid);
/* A process that ended, or exec'd another program: its socket goes,
 * unless a newer one took its name (the agent of the program it exec'd,
 * or of another process that got the pid). */
void procs_forget(struct procs *ps, int pid);
/* --restart: the new process is the program. */
void procs_restart(struct procs *ps, int root);
/* How many processes have patch gen. */
int procs_count(const struct procs *ps, uint32_t gen);
int procs_has_agent(int pid);
/* Still the process it was (not ended, its pid not reused), with the agent. */
int procs_runs_agent(const struct proc *p);
/* Started to wait for the session before it runs (an exec'd process). */
int procs_held(int pid);
/* Still the process it was. */
int procs_same(const struct proc *p);
/* The soonest retry_at of the processes, or 0. */
uint64_t procs_retry_due(const struct procs *ps);
/* Its parent's pid, from /proc; -1 when it is gone. */
int procs_parent_of(int pid);

#endif
