/* The in-process linker: turn relocatable objects into bytes for addresses
 * in a running process, bound to that process's state.
 *
 * Stages, in order (see DESIGN.md "One patch"):
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
#include "elf/elf.h"
#include "proto/msg.h"

/* The process patched, as its agent described it (HELLO). */
struct rw_process {
	int fd;
	int pid;
	struct rw_module *mods;		/* [0] is the executable */
	size_t nmods;
	struct rw_regsym *reg;
	size_t nreg;
	/* The target module's file, checked by build-id; owned by the
	 * exe_cache that read it (driver.h), not by the process. */
	struct rw_image *exe;
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
	BIND_ZERO,	/* weak undefined */
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
	uint8_t found;		/* enum rw_found */
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
	const struct rw_symbol *sym;	/* a numbered static of a new object */
	char *exe_name;			/* its running counterpart, NULL if new */
};

struct link {
	struct rw_process *proc;
	struct rw_objfile *objs;
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
	size_t npairs;
	/* Which functions changed, from the diff; NULL: all. An unchanged
	 * function gets no entry jump, and calls to it go to its running
	 * version, not to its copy in the new objects. */
	int (*changed)(void *ctx, const struct rw_objfile *o, const struct rw_symbol *s);
	void *changed_ctx;
	/* lib[obj] != 0: a member of an archive the program was linked with,
	 * for library code it never contained. Only the sections the patch
	 * reaches are loaded; what the program has binds to the program;
	 * nothing of it gets an entry jump. NULL: no such objects. */
	const uint8_t *lib;
	/* Per library object, per relocation of its .eh_frame: 1 in the FDE
	 * of code not loaded (bound to null, so the unwinder skips it). */
	uint8_t ***eh_dead;		/* [obj][section] */
	/* Globals the objects define, by name: (obj + 1) << 32 | symbol. */
	uint64_t *gdefs;
	size_t ngdefs;
};

int link_plan(struct link *l);
/* statics.c: pair gcc's renumbered function-local statics (count.0 of the
 * patch may be count.1 of the program) through the functions using them. */
int link_pair_statics(struct link *l);
/* The program's name for s when it was paired (NULL: its own name);
 * *is_new when it has no counterpart. */
const char *link_paired_name(struct link *l, const struct rw_symbol *s, int *is_new);
/* scan.c: decode the code section si of o; returns its instruction starts
 * (1 where one starts, 2 where decoding failed; malloc'd, size+1 bytes)
 * and gives same-section lea/call references synthetic relocations. */
uint8_t *link_scan_code(struct rw_objfile *o, uint16_t si);
/* End of the decoded instruction holding the byte at off; 0 if unknown. */
uint64_t link_insn_end(const uint8_t *starts, uint64_t off, uint64_t size);
/* Did function s of object oi change (the diff's answer; all do without one)? */
int link_is_changed(struct link *l, uint32_t oi, const struct rw_symbol *s);
/* Does the data symbol s of object oi bind to storage the process has
 * (variables always; constants when they did not change)? */
int link_is_running_data(struct link *l, uint32_t oi, const struct rw_symbol *s);
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
void link_encode(struct link *l, uint32_t gen, struct rw_buf *b);
void link_free(struct link *l);

/* Arch: x86_64.c. Generic code asks what a relocation type needs. */
enum got_kind { GOT_NONE, GOT_ADDR, GOT_TPOFF, GOT_TLSGD, GOT_TLSLD };
struct reloc_kind {
	const char *name;
	uint8_t known;
	uint8_t pcrel;		/* value is relative to the place */
	uint8_t call;		/* a call or jump: may go through a stub */
	uint8_t got;		/* enum got_kind */
	uint8_t tls;		/* target is a thread-local */
};
void arch_reloc_kind(uint32_t type, struct reloc_kind *k);
/* Is the PC-relative field at loc the operand of a call or jmp? */
int arch_is_call_site(const uint8_t *sec, uint64_t off);
/* The offsets into the target a PC-relative field with addend a may mean
 * (the field is followed by 0-4 bytes of immediate). Returns how many. */
int arch_pcrel_offsets(int64_t a, int64_t out[4]);
struct relval {
	uint64_t S, P, G, GOT, Z;
	int64_t A;
	int64_t tpoff, dtpoff;	/* of S, for TLS relocations */
};
/* Writes the field at loc. -1 with rw_fail() naming the type and the
 * range when the value does not fit. */
int arch_apply(uint32_t type, uint8_t *loc, const struct relval *v);
#define ARCH_STUB_SIZE 8
/* A jump through the GOT slot at slot, placed at at. */
void arch_write_stub(uint8_t *loc, uint64_t at, uint64_t slot);
#define ARCH_JUMP_SIZE 5
#define ARCH_FAR_JUMP_SIZE 14
/* Bytes of the jump from at to to (ARCH_JUMP_SIZE when a rel32 reaches). */
int arch_jump_size(uint64_t at, uint64_t to);
/* Do 32-bit PC-relative references reach between lo-hi and a-b? */
int arch_reaches(uint64_t lo, uint64_t hi, uint64_t a, uint64_t b);
/* The address a call or jump with its field relocated by S + A goes to. */
uint64_t arch_call_target(uint64_t S, int64_t A);
/* x86_64_insn.c: instruction lengths. */
struct insn {
	uint8_t len;
	uint8_t map;		/* 0 one-byte, 1 0f, 2 0f38, 3 0f3a */
	uint8_t opcode;
	uint8_t modrm_reg;
	int8_t disp_at;		/* offset of a RIP-relative disp32, -1 if none */
};
int arch_decode(const uint8_t *p, size_t avail, struct insn *in);
/* Does the instruction compute an address (lea) rather than access it? */
int arch_takes_address(const struct insn *in);
/* Is it a call, jmp or jcc with a 32-bit displacement? */
int arch_is_rel32_branch(const struct insn *in);
/* Bytes a relocation type writes (0, 4 or 8). */
int arch_field_size(uint32_t type);
/* Write the field at loc (address P) so that it decodes as an address
 * whose low field-size bytes are 0: what unwinders take for "no code". */
void arch_null_field(uint32_t type, uint8_t *loc, uint64_t P);
/* Bytes of assembler padding (NOPs, int3) that end at end. */
size_t arch_padding_before(const uint8_t *end, size_t avail);

#endif
