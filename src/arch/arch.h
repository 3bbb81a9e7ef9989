/* The machine: what the linker and the diff ask of the target's
 * instruction set. The driver patches x86-64 and aarch64 programs alike;
 * which one a patch is for, the objects' and the program's ELF headers say
 * (arch_select), and the arch_* calls below go to that machine's file:
 * x86_64.c (with x86_64_insn.c, instruction lengths, and scan.c, an
 * object's code decoded) or aarch64.c. */
#ifndef RW_ARCH_H
#define RW_ARCH_H
#include <stddef.h>
#include <stdint.h>
#include "arch/jump.h"
#include "elf/elffile.h"

/* Generic code asks what a relocation type needs. */
enum got_kind { GOT_NONE, GOT_ADDR, GOT_TPOFF, GOT_TLSGD, GOT_TLSLD, GOT_TLSDESC };
struct reloc_kind {
	const char *name;
	uint8_t known;
	uint8_t pcrel;		/* value is relative to the place */
	uint8_t call;		/* a call or jump: may go through a stub */
	uint8_t got;		/* enum got_kind */
	uint8_t tls;		/* target is a thread-local */
	uint8_t page;		/* only the target's page (aarch64 adrp): another
				 * relocation gives the rest, and says what is used */
	uint8_t tpoff;		/* the value is an offset from the thread pointer */
};
struct relval {
	uint64_t S, P, G, GOT, Z;
	int64_t A;
	int64_t tpoff, dtpoff;	/* of S, for TLS relocations */
};

/* One machine. Field sizes are in bytes; an aarch64 relocation's field is
 * bits of a 4-byte instruction, which field_bits tells. */
struct arch {
	const char *name;
	const char *reach;	/* of calls from a patch, for messages: "2 GiB" */
	const char *pcrel_ref;	/* a reference to data that does not reach from far */
	uint16_t machine;	/* EM_X86_64, EM_AARCH64 */
	uint8_t insn_max;	/* longest instruction */
	uint8_t stub_size;
	uint8_t jump_size;	/* the entry jump that reaches near */
	uint8_t short_jump_size;	/* the hop into padding before a short function; 0 none */
	uint8_t pc_at_end;	/* PC-relative fields count from the instruction's end */
	void (*reloc_kind)(uint32_t type, struct reloc_kind *k);
	int (*field_size)(uint32_t type);
	void (*field_bits)(uint32_t type, uint8_t bits[8]);
	int (*is_call_site)(const uint8_t *sec, uint64_t off);
	int (*pcrel_offsets)(int64_t a, int64_t out[4]);
	int (*apply)(uint32_t type, uint8_t *loc, const struct relval *v);
	void (*null_field)(uint32_t type, uint8_t *loc, uint64_t P);
	int (*reaches)(uint64_t lo, uint64_t hi, uint64_t a, uint64_t b);
	uint64_t (*call_target)(uint64_t S, int64_t A);
	void (*write_stub)(uint8_t *loc, uint64_t at, uint64_t slot);
	int (*jump_size_to)(uint64_t at, uint64_t to);
	size_t (*padding_before)(const uint8_t *end, size_t avail);
	uint8_t *(*scan_code)(struct elf_object *o, uint16_t si);
	int (*next_insn)(const uint8_t *p, size_t avail, uint64_t addr, uint64_t *targets, int *n);
	int (*anchor_span)(const uint8_t *code, uint64_t size, uint64_t off, int64_t *lo, int64_t *hi);
	int (*anchor_offsets)(const uint8_t *code, uint64_t size, uint64_t off, int64_t *offs, int cap);
};
extern const struct arch arch_x86_64, arch_aarch64;
extern const struct arch *rw_arch;	/* the machine of the patch being made */

/* arch.c. The machine of ELF machine number m for what follows; -1 with
 * rw_fail() naming it when rewire does not patch it. */
int arch_select(uint16_t m);
/* Its name for messages ("x86-64", "aarch64"), or NULL. */
const char *arch_machine_name(uint16_t m);

#define ARCH_STUB_SIZE (rw_arch->stub_size)
#undef ARCH_JUMP_SIZE
#define ARCH_JUMP_SIZE (rw_arch->jump_size)
void arch_reloc_kind(uint32_t type, struct reloc_kind *k);
/* Is the PC-relative field at loc the operand of a call or jump? */
int arch_is_call_site(const uint8_t *sec, uint64_t off);
/* The offsets into the target a PC-relative field with addend a may mean
 * (x86-64: the field is followed by 0-4 bytes of immediate). Returns how
 * many. */
int arch_pcrel_offsets(int64_t a, int64_t out[4]);
/* Writes the field at loc. -1 with rw_fail() naming the type and the
 * range when the value does not fit. */
int arch_apply(uint32_t type, uint8_t *loc, const struct relval *v);
/* A jump through the GOT slot at slot, placed at at (ARCH_STUB_SIZE). */
void arch_write_stub(uint8_t *loc, uint64_t at, uint64_t slot);
/* Do PC-relative calls and references reach between lo-hi and a-b? */
int arch_reaches(uint64_t lo, uint64_t hi, uint64_t a, uint64_t b);
/* The address a call or jump with its field relocated by S + A goes to. */
uint64_t arch_call_target(uint64_t S, int64_t A);
/* Bytes of the entry jump from at to to. */
int arch_jump_size(uint64_t at, uint64_t to);
/* Bytes a relocation type writes (0, 4 or 8). */
int arch_field_size(uint32_t type);
/* Which bits of those bytes are the field (the rest is the instruction,
 * compared by the diff). */
void arch_field_bits(uint32_t type, uint8_t bits[8]);
/* Write the field at loc (address P) so that it decodes as an address
 * whose low field-size bytes are 0: what unwinders take for "no code". */
void arch_null_field(uint32_t type, uint8_t *loc, uint64_t P);
/* Bytes of assembler padding (NOPs, int3) that end at end. */
size_t arch_padding_before(const uint8_t *end, size_t avail);
/* The instruction at p (address addr): its length, or -1 when not
 * decoded; targets[0 .. *n) the addresses it refers to PC-relatively
 * (aarch64: an address formed by adrp and add, with every access the
 * code then makes from it). */
#define ARCH_MAX_TARGETS 64
int arch_next_insn(const uint8_t *p, size_t avail, uint64_t addr,
		   uint64_t targets[ARCH_MAX_TARGETS], int *n);

/* Is the instruction at off of code (a relocated address, as gcc's
 * section anchors form one) a base the code then reaches other bytes
 * from? 1 with [*lo, *hi) the bytes reached, relative to the address;
 * 0 when only the address itself is used, or the machine has no such
 * pattern (x86-64 addresses each variable by its own relocation). */
int arch_anchor_span(const uint8_t *code, uint64_t size, uint64_t off, int64_t *lo, int64_t *hi);
/* The same, access by access: the offset each starts at; how many, 0 for
 * none, -1 when there are more than cap. */
#define ARCH_MAX_ANCHORED 256
int arch_anchor_offsets(const uint8_t *code, uint64_t size, uint64_t off, int64_t *offs, int cap);

/* Decode the code section si of o; returns its instruction starts
 * (1 where one starts, 2 where decoding failed; malloc'd, size+1 bytes)
 * and gives same-section references the assembler resolved synthetic
 * relocations. */
uint8_t *arch_scan_code(struct elf_object *o, uint16_t si);
/* Bytes from a PC-relative code field at off to the place its PC is
 * taken from (x86-64: the instruction's end; aarch64: none, the field is
 * the instruction): the offset a section+addend means is addend + this.
 * *exact 0 when not known (4 assumed). */
int64_t arch_pc_tail(const uint8_t *starts, uint64_t off, uint64_t size, int *exact);
/* End of the decoded instruction holding the byte at off; 0 if unknown. */
uint64_t arch_insn_end(const uint8_t *starts, uint64_t off, uint64_t size);

/* x86-64 only (x86_64_insn.c): instruction lengths. */
struct insn {
	uint8_t len;
	uint8_t map;		/* 0 one-byte, 1 0f, 2 0f38, 3 0f3a */
	uint8_t opcode;
	uint8_t modrm_reg;
	int8_t disp_at;		/* offset of a RIP-relative disp32, -1 if none */
};
int x86_decode(const uint8_t *p, size_t avail, struct insn *in);
/* Does the instruction compute an address (lea) rather than access it? */
int x86_takes_address(const struct insn *in);
/* Is it a call, jmp or jcc with a 32-bit displacement? */
int x86_is_rel32_branch(const struct insn *in);
uint8_t *x86_scan_code(struct elf_object *o, uint16_t si);

#endif
