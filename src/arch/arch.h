/* The machine: what the linker and the diff ask of the target's
 * instruction set. x86_64.c: the psABI's relocations and the entry jumps;
 * x86_64_insn.c: instruction lengths; scan.c: an object's code decoded.
 * Another architecture (aarch64) gets files of its own behind this header. */
#ifndef RW_ARCH_H
#define RW_ARCH_H
#include <stddef.h>
#include <stdint.h>
#include "arch/jump.h"
#include "elf/elffile.h"

/* x86_64.c. Generic code asks what a relocation type needs. */
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

/* scan.c: decode the code section si of o; returns its instruction starts
 * (1 where one starts, 2 where decoding failed; malloc'd, size+1 bytes)
 * and gives same-section lea/call references synthetic relocations. */
uint8_t *arch_scan_code(struct elf_object *o, uint16_t si);
/* End of the decoded instruction holding the byte at off; 0 if unknown. */
uint64_t arch_insn_end(const uint8_t *starts, uint64_t off, uint64_t size);

#endif
