/* What the files behind the agent's requests share (requests.c, apply.c,
 * registry.c, history.c): a patch as it is applied, its entry in the
 * history, and what one file uses of another's (apply_*, hidden as all of
 * the agent is).
 *
 * Include after system headers: agent.h poisons exit and abort. */
#ifndef RW_AGENT_APPLY_H
#define RW_AGENT_APPLY_H
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include "agent.h"
#include "arch/jump.h"
#include "grow.h"
#include "proto/msg.h"


/* A jump to write (x86-64; aarch64's are in arch/jump.h): 5-byte jmp
 * rel32, or for a function too short for it, a 2-byte jmp rel8 to a jmp
 * rel32 placed in the padding before it. A
 * patch placed far from the program (region.c) is reached by a 14-byte
 * jmp *0(%rip) followed by its address instead of the jmp rel32: it
 * changes no register, which matters where the caller's code assumes the
 * callee leaves some alone (gcc's -fipa-ra). The driver made sure each
 * place has room for the jump its distance needs (link/resolve.c). */
struct site {
	uint64_t at;
	uint8_t len;
	uint8_t bytes[ARCH_FAR_JUMP_SIZE];
	uint8_t old[ARCH_FAR_JUMP_SIZE];
	const char *name;
};

struct applied;

struct patch {
	struct msg_apply m;	/* as the driver sent it */
	struct site *sites;	/* every jump to write: entries and old versions */
	size_t nsites;
	const char **funcs;	/* per redirect: its linkage and display names, */
	const char **displays;	/* the arrays the hooks are given */
	int memfd;		/* /proc/self/mem, to write code without making it writable */
	int inits_ran;		/* constructors ran: the memory must stay, whatever follows */
	struct applied *entry;	/* its history entry, shown with the jumps */
};

/* A patch in the process: its entry in the history (history.c). */
struct applied {
	uint64_t lo, hi;	/* its code */
	int version;
	uint32_t gen;		/* the session's number for it (0: rewire apply) */
	uint32_t gen_before;	/* the process's session number before it */
	uint64_t when;		/* applied (CLOCK_REALTIME, ns) */
	_Atomic int live;	/* not rolled back */
	struct site *sites;	/* the jumps it wrote, with the bytes before */
	size_t nsites;
	struct msg_redirect *redirs;	/* replaced functions: new entries, names */
	const char **funcs, **displays;
	uint32_t nredirs;
	size_t nreg_before;	/* registry before it, to restore */
	struct msg_regsym *reg_before;
	size_t *reg_idx, nreg_changed;
};

/* Every version of each redirected function, by original entry. Each one
 * replaced jumps to the original entry, which jumps to the newest, so any
 * pointer or return address that still leads into an old version reaches
 * the newest code at its next call. */
struct versions {
	uint64_t orig;
	uint64_t *v;
	size_t n;
};

/* registry.c: what earlier patches defined (the driver binds new code to
 * these), every version of each redirected function, and the one helper
 * that grows an array. */
extern struct msg_regsym *reg;
extern size_t nreg;
struct versions *apply_find_versions(uint64_t orig);
int apply_reserve_records(const struct patch *p);
void apply_record(struct patch *p, struct applied *a);
void apply_restore_registry(struct applied *a);
uint64_t apply_func_size(uint64_t addr);

/* history.c: the number of the newest patch, and the session's; the note
 * the hooks get of it; its entry, made before its jumps and shown with
 * them. */
extern int version;
extern uint32_t generation;
extern struct api_note last_note;
void apply_show_entry(struct applied *a);
int apply_prepare_applied(struct patch *p);
int apply_revert_needed(const struct msg_revert *rv);
int apply_revert_locked(const struct msg_revert *rv, struct msg_reverted *out, struct api_note *note,
			struct agent_err *e);
void apply_publish(struct patch *p, struct applied *a);
void apply_drop_entry(struct patch *p);

/* apply.c: one patch or rollback at a time; code written while the world
 * is stopped. */
extern pthread_mutex_t patch_lock;
int apply_code_write(int memfd, uint64_t at, const uint8_t *bytes, size_t n);

/* jit.c: the patch's symbol files, for gdb (its JIT interface): copied
 * before the patch (NULL: none), registered once it is in as version,
 * unregistered when it is taken back. */
struct jit_entry;
struct jit_entry *apply_jit_build(const struct msg_apply *m);
void apply_jit_register(struct jit_entry *list, uint32_t version);
void apply_jit_free(struct jit_entry *list);
void apply_jit_unregister(int version);

/* history.c: the patches the process holds, for STATUS. */
void apply_status(struct proto_buf *b);

#endif
