/* The in-process linker: turn relocatable objects into bytes for addresses
 * in a running process, bound to that process's state.
 *
 * Stages, in order (docs/how-it-works.md, "One patch, stage by stage"):
 *   link_plan     - choose the sections to load, resolve every relocation's
 *                   target (running data first, then newest code, then the
 *                   new objects, then dynamic symbols), decide the entry
 *                   jumps; collects the names the agent must look up
 *   (driver)      - asks the agent for those names and for memory
 *   link_layout   - give every loaded section, GOT slot and stub an address
 *   link_relocate - apply the relocations (arch file) and build segments
 * A patch the linker cannot make safely is refused here, with the symbol
 * and the reason, before anything reaches the process. */
#ifndef RW_LINK_H
#define RW_LINK_H
#include <stdint.h>
#include <stdio.h>
#include "elf/elffile.h"
#include "proto/msg.h"
#include "arch/arch.h"
#include "diff/diff.h"

/* The process patched, as its agent described it (HELLO). */
struct link_process {
	int fd;
	int pid;
	struct msg_module *mods;		/* [0] is the executable */
	size_t nmods;
	struct msg_regsym *reg;
	size_t nreg;
	/* The target module's file, checked by build-id; owned by the
	 * exe_cache that read it (driver.h), not by the process. */
	struct elf_image *exe;
	size_t target;			/* the module patched: 0 the executable, or a library */
	int version;			/* the agent's number of its newest patch */
	uint32_t gen;			/* the session's number of it (agent/apply.c) */
	int held;			/* it waits for GO before the program runs */
};

/* How a relocation's target was bound. */
enum bind {
	BIND_NONE,
	BIND_ADDR,	/* value is an absolute address in the process */
	BIND_SECTION,	/* section (obj, sec) of the patch + value */
	BIND_DYN,	/* dynamic symbol number value, looked up by the agent */
	BIND_TLS,	/* thread-local: module mod, offset value in its block */
	BIND_GOTBASE,	/* _GLOBAL_OFFSET_TABLE_ of the patch */
	BIND_ZERO,	/* symbol 0: the value is the addend (weak undefined names are BIND_DYN) */
	BIND_EH_NULL,	/* unwind info of code not loaded: reads as address 0 */
};

struct target {
	uint8_t bind;
	uint8_t is_func;
	uint16_t sec;
	uint32_t obj;
	uint32_t mod;		/* BIND_TLS: index in process mods */
	uint64_t value;
	uint64_t size;		/* for R_X86_64_SIZE* */
	int32_t got;		/* GOT slot (8-byte units), -1 if none */
	int32_t stub;		/* call stub number, -1 if none */
};

struct dynsym {
	const char *name;
	int weak;
	uint8_t found;		/* enum proto_found */
	uint64_t addr;		/* RW_FOUND_ADDR: address; TLS: offset */
	uint64_t modid;
	int called;		/* needs a stub */
	int32_t stub;
};

struct redirect {
	const char *name;	/* for messages */
	uint64_t from;		/* original entry */
	uint64_t via;		/* too short for a jump: padding before it that takes one */
	uint32_t obj;
	uint16_t sec;
	uint64_t off;		/* new entry: section + off */
	uint64_t room, pad;	/* bytes a jump may take at from, and of padding before it */
	uint64_t prev;		/* the newest version, which jumps back to from; 0: none */
	uint64_t prev_room;	/* bytes a jump may take there */
};

struct loaded {
	uint8_t load;		/* 0 no, else the segment (SEG_*) */
	uint64_t addr;
	uint8_t *starts;	/* code: 1 where an instruction starts, 2 where decoding failed */
};

enum seg { SEG_CODE = 1, SEG_RO, SEG_RW, NSEG };

struct pairing {
	const struct elf_symbol *sym;	/* a numbered static of a new object */
	char *exe_name;			/* its running counterpart, NULL if new */
};

struct got_key {
	uint32_t obj, sym;
	int64_t addend;
	uint32_t kind, slot;
};

struct link {
	struct link_process *proc;
	struct elf_object *objs;
	size_t nobjs;
	struct loaded **secs;		/* [obj][section] */
	struct target ***targets;	/* [obj][section][relocation] */
	struct dynsym *dyn;
	size_t ndyn, capdyn;
	struct redirect *redirs;
	size_t nredirs, capredirs;
	uint64_t *inits;		/* constructors to run: (obj << 16 | sec, off) pairs */
	size_t ninits, capinits;
	uint32_t ngot;			/* 8-byte slots */
	/* One slot (or pair) per target and kind: aarch64 reads a slot with
	 * two relocations, the adrp of its page and the ldr of the rest. */
	uint8_t **const_anch;	/* per object and section: resolve.c const_anchored() */
	struct got_key *gotkeys;
	size_t ngotkeys, capgotkeys;
	struct rw_index gotidx;
	uint32_t nstubs;
	/* Functions of the program the patch calls (their addresses), each
	 * given a stub when the patch is placed far (far): out of 32-bit
	 * reach of the program, because no memory is free near it. */
	uint64_t *fcalls;
	size_t nfcalls, capfcalls;
	int far;
	/* layout */
	uint64_t base, size;
	uint64_t seg_addr[NSEG], seg_size[NSEG];
	uint8_t *seg_data[NSEG];
	uint64_t got_addr, stub_addr, eh_addr, eh_size;
	uint64_t nfuncs_new;
	struct pairing *pairs;		/* statics.c */
	size_t npairs, cappairs;
	/* Which functions changed, from the diff; NULL: all. An unchanged
	 * function gets no entry jump, and calls to it go to its running
	 * version, not to its copy in the new objects. */
	const struct diff_set *diff;
	/* lib[obj] != 0: a member of an archive the program was linked with,
	 * for library code it never contained. Only the sections the patch
	 * reaches are loaded; what the program has binds to the program;
	 * nothing of it gets an entry jump. NULL: no such objects. */
	const uint8_t *lib;
	/* Per library object, per relocation of its .eh_frame: 1 in the FDE
	 * of code not loaded (bound to null, so the unwinder skips it). */
	uint8_t ***eh_dead;		/* [obj][section] */
	/* Globals the objects define: obj << 32 | symbol, in object and
	 * symbol order; gdefs indexes them by name. */
	uint64_t *globals;
	struct rw_index gdefs;
};

int link_plan(struct link *l);
/* statics.c: pair gcc's renumbered function-local statics (count.0 of the
 * patch may be count.1 of the program) through the functions using them. */
int link_pair_statics(struct link *l);
/* The program's name for s when it was paired (NULL: its own name);
 * *is_new when it has no counterpart. */
const char *link_paired_name(struct link *l, const struct elf_symbol *s, int *is_new);
/* Did function s of object oi change (the diff's answer; all do without one)? */
int link_is_changed(struct link *l, uint32_t oi, const struct elf_symbol *s);
/* Why the diff said redirected function r changed (diff.h's DIFF_*). */
int link_how_changed(const struct link *l, const struct redirect *r);
/* Does the data symbol s of object oi bind to storage the process has
 * (variables always; constants when they did not change)? */
int link_is_running_data(struct link *l, uint32_t oi, const struct elf_symbol *s);
/* The address of the running storage s of object oi binds to (a variable,
 * or a constant that did not change); 0 when it binds to none. */
int link_running_storage(struct link *l, uint32_t oi, const struct elf_symbol *s, uint64_t *addr);
/* readers.c: refuse a changed global constant that code of the program
 * outside the patch reads too (it would keep reading the old copy). */
int link_check_const_readers(struct link *l);
/* After the agent answered the lookups: refuse what was not found. */
int link_check_dynamic(struct link *l);
/* Bytes to ask the agent for: room for the patch near the program or far
 * from it (a few more stubs). */
uint64_t link_size(struct link *l);
/* Lay the patch out at base; lo-hi is the program's extent: memory out of
 * 32-bit reach of it places the patch far (see struct link). */
int link_layout(struct link *l, uint64_t base, uint64_t lo, uint64_t hi);
/* resolve.c: choose each entry jump for the addresses laid out (a patch
 * placed far needs longer ones); refuses a function too short for it. */
int link_plan_jumps(struct link *l);
int link_relocate(struct link *l);
/* The APPLY message (proto/msg.h); gen: the session's number of the patch. */
void link_encode(struct link *l, uint32_t gen, struct proto_buf *b);
/* Each function the patch loads, for perf (/tmp/perf-PID.map). */
void link_perf_map(const struct link *l, FILE *out);
/* symfile.c: object oi as debuggers read it (gdb's JIT interface): its
 * symbols, and its DWARF when dwarf is set, relocated to where the patch
 * put its code, in a malloc'd relocatable ELF file of *size bytes. */
uint8_t *link_symfile(struct link *l, uint32_t oi, int dwarf, size_t *size);
void link_free(struct link *l);

#endif
