/* aarch64: the relocations of the AArch64 ELF psABI that compilers emit,
 * and the machine's entry in struct arch.
 *
 * Every instruction is 4 bytes; a relocation's field is bits of one (an
 * immediate: imm26 of B and BL, imm19, imm14, ADR's split imm21, imm12 of
 * ADD and the loads), or 2, 4 or 8 bytes of data. The addend is the whole
 * offset: P is the place, nothing follows the field. Names as in the
 * psABI: S, A, P, G the GOT slot's offset from the GOT base GOT, Page(x)
 * the address with its low 12 bits cleared. Values that do not fit are
 * refused with the relocation's name, never truncated.
 *
 * TLS descriptors (the -fPIC default) are rewritten to initial-exec, as
 * the static linker does for a module whose TLS is static: the GOT slot
 * holds the offset from the thread pointer, the descriptor's call goes. */
#include <elf.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include "arch.h"
#include "util.h"

/* What each field is, for the encoding and the diff's mask. */
enum field { F_NONE, F_D16, F_D32, F_D64, F_IMM26, F_IMM19, F_IMM14, F_ADR, F_IMM12, F_IMM16,
	     F_WHOLE };

struct a64_kind {
	struct reloc_kind k;
	uint8_t field;
};

#define K(t, f, pc, call, got, tls) [t - 256] = {{#t, 1, pc, call, got, tls, 0, 0}, f}
static const struct a64_kind kinds[] = {
	K(R_AARCH64_ABS64, F_D64, 0, 0, GOT_NONE, 0),
	K(R_AARCH64_ABS32, F_D32, 0, 0, GOT_NONE, 0),
	K(R_AARCH64_ABS16, F_D16, 0, 0, GOT_NONE, 0),
	K(R_AARCH64_PREL64, F_D64, 1, 0, GOT_NONE, 0),
	K(R_AARCH64_PREL32, F_D32, 1, 0, GOT_NONE, 0),
	K(R_AARCH64_PREL16, F_D16, 1, 0, GOT_NONE, 0),
	K(R_AARCH64_LD_PREL_LO19, F_IMM19, 1, 0, GOT_NONE, 0),
	K(R_AARCH64_ADR_PREL_LO21, F_ADR, 1, 0, GOT_NONE, 0),
	K(R_AARCH64_ADR_PREL_PG_HI21, F_ADR, 1, 0, GOT_NONE, 0),
	K(R_AARCH64_ADR_PREL_PG_HI21_NC, F_ADR, 1, 0, GOT_NONE, 0),
	K(R_AARCH64_ADD_ABS_LO12_NC, F_IMM12, 0, 0, GOT_NONE, 0),
	K(R_AARCH64_LDST8_ABS_LO12_NC, F_IMM12, 0, 0, GOT_NONE, 0),
	K(R_AARCH64_LDST16_ABS_LO12_NC, F_IMM12, 0, 0, GOT_NONE, 0),
	K(R_AARCH64_LDST32_ABS_LO12_NC, F_IMM12, 0, 0, GOT_NONE, 0),
	K(R_AARCH64_LDST64_ABS_LO12_NC, F_IMM12, 0, 0, GOT_NONE, 0),
	K(R_AARCH64_LDST128_ABS_LO12_NC, F_IMM12, 0, 0, GOT_NONE, 0),
	K(R_AARCH64_TSTBR14, F_IMM14, 1, 1, GOT_NONE, 0),
	K(R_AARCH64_CONDBR19, F_IMM19, 1, 1, GOT_NONE, 0),
	K(R_AARCH64_JUMP26, F_IMM26, 1, 1, GOT_NONE, 0),
	K(R_AARCH64_CALL26, F_IMM26, 1, 1, GOT_NONE, 0),
	K(R_AARCH64_GOT_LD_PREL19, F_IMM19, 1, 0, GOT_ADDR, 0),
	K(R_AARCH64_ADR_GOT_PAGE, F_ADR, 1, 0, GOT_ADDR, 0),
	K(R_AARCH64_LD64_GOT_LO12_NC, F_IMM12, 0, 0, GOT_ADDR, 0),
	K(R_AARCH64_TLSIE_ADR_GOTTPREL_PAGE21, F_ADR, 1, 0, GOT_TPOFF, 1),
	K(R_AARCH64_TLSIE_LD64_GOTTPREL_LO12_NC, F_IMM12, 0, 0, GOT_TPOFF, 1),
	K(R_AARCH64_TLSIE_LD_GOTTPREL_PREL19, F_IMM19, 1, 0, GOT_TPOFF, 1),
	K(R_AARCH64_TLSLE_MOVW_TPREL_G2, F_IMM16, 0, 0, GOT_NONE, 1),
	K(R_AARCH64_TLSLE_MOVW_TPREL_G1, F_IMM16, 0, 0, GOT_NONE, 1),
	K(R_AARCH64_TLSLE_MOVW_TPREL_G1_NC, F_IMM16, 0, 0, GOT_NONE, 1),
	K(R_AARCH64_TLSLE_MOVW_TPREL_G0, F_IMM16, 0, 0, GOT_NONE, 1),
	K(R_AARCH64_TLSLE_MOVW_TPREL_G0_NC, F_IMM16, 0, 0, GOT_NONE, 1),
	K(R_AARCH64_TLSLE_ADD_TPREL_HI12, F_IMM12, 0, 0, GOT_NONE, 1),
	K(R_AARCH64_TLSLE_ADD_TPREL_LO12, F_IMM12, 0, 0, GOT_NONE, 1),
	K(R_AARCH64_TLSLE_ADD_TPREL_LO12_NC, F_IMM12, 0, 0, GOT_NONE, 1),
	K(R_AARCH64_TLSLE_LDST8_TPREL_LO12, F_IMM12, 0, 0, GOT_NONE, 1),
	K(R_AARCH64_TLSLE_LDST8_TPREL_LO12_NC, F_IMM12, 0, 0, GOT_NONE, 1),
	K(R_AARCH64_TLSLE_LDST16_TPREL_LO12, F_IMM12, 0, 0, GOT_NONE, 1),
	K(R_AARCH64_TLSLE_LDST16_TPREL_LO12_NC, F_IMM12, 0, 0, GOT_NONE, 1),
	K(R_AARCH64_TLSLE_LDST32_TPREL_LO12, F_IMM12, 0, 0, GOT_NONE, 1),
	K(R_AARCH64_TLSLE_LDST32_TPREL_LO12_NC, F_IMM12, 0, 0, GOT_NONE, 1),
	K(R_AARCH64_TLSLE_LDST64_TPREL_LO12, F_IMM12, 0, 0, GOT_NONE, 1),
	K(R_AARCH64_TLSLE_LDST64_TPREL_LO12_NC, F_IMM12, 0, 0, GOT_NONE, 1),
	K(R_AARCH64_TLSLE_LDST128_TPREL_LO12, F_IMM12, 0, 0, GOT_NONE, 1),
	K(R_AARCH64_TLSLE_LDST128_TPREL_LO12_NC, F_IMM12, 0, 0, GOT_NONE, 1),
	/* rewritten to initial-exec: adrp and ldr of the GOT slot, nops */
	K(R_AARCH64_TLSDESC_ADR_PAGE21, F_ADR, 1, 0, GOT_TPOFF, 1),
	K(R_AARCH64_TLSDESC_LD64_LO12, F_WHOLE, 0, 0, GOT_TPOFF, 1),
	K(R_AARCH64_TLSDESC_ADD_LO12, F_WHOLE, 0, 0, GOT_NONE, 1),
	K(R_AARCH64_TLSDESC_CALL, F_WHOLE, 0, 0, GOT_NONE, 1),
};
#define NKINDS (sizeof kinds / sizeof kinds[0])

static const struct a64_kind *kind_of(uint32_t type)
{
	if (type == R_AARCH64_NONE) {
		static const struct a64_kind none = {{"R_AARCH64_NONE", 1, 0, 0, GOT_NONE, 0, 0, 0}, F_NONE};
		return &none;
	}
	if (type < 256 || type - 256 >= NKINDS || !kinds[type - 256].k.known)
		return NULL;
	return &kinds[type - 256];
}

static void a64_reloc_kind(uint32_t type, struct reloc_kind *k)
{
	const struct a64_kind *a = kind_of(type);
	memset(k, 0, sizeof *k);
	if (a)
		*k = a->k;
	else
		k->name = "unknown";
	k->page = type == R_AARCH64_ADR_PREL_PG_HI21 || type == R_AARCH64_ADR_PREL_PG_HI21_NC ||
		  type == R_AARCH64_ADR_GOT_PAGE || type == R_AARCH64_TLSIE_ADR_GOTTPREL_PAGE21 ||
		  type == R_AARCH64_TLSDESC_ADR_PAGE21;
	k->tpoff = type >= R_AARCH64_TLSLE_MOVW_TPREL_G2 && type <= R_AARCH64_TLSLE_LDST64_TPREL_LO12_NC;
	k->tpoff |= type == R_AARCH64_TLSLE_LDST128_TPREL_LO12 ||
		    type == R_AARCH64_TLSLE_LDST128_TPREL_LO12_NC;
}

static int a64_field_size(uint32_t type)
{
	const struct a64_kind *a = kind_of(type);
	if (!a || a->field == F_NONE)
		return a ? 0 : 4;
	return a->field == F_D16 ? 2 : a->field == F_D64 ? 8 : 4;
}

static uint32_t field_mask(uint8_t f)
{
	switch (f) {
	case F_IMM26: return 0x03ffffff;
	case F_IMM19: return 0x00ffffe0;
	case F_IMM14: return 0x0007ffe0;
	case F_ADR: return 0x60ffffe0;
	case F_IMM12: return 0x003ffc00;
	case F_IMM16: return 0x001fffe0;
	}
	return 0xffffffff;
}

static void a64_field_bits(uint32_t type, uint8_t bits[8])
{
	const struct a64_kind *a = kind_of(type);
	memset(bits, 0, 8);
	if (a && a->field >= F_IMM26 && a->field <= F_IMM16) {
		uint32_t m = field_mask(a->field);
		memcpy(bits, &m, 4);	/* little-endian */
	} else {
		memset(bits, 0xff, (size_t)a64_field_size(type));
	}
}

/* Calls and jumps say so by their relocation type. */
static int a64_is_call_site(const uint8_t *sec, uint64_t off)
{
	(void)sec, (void)off;
	return 0;
}

static int a64_pcrel_offsets(int64_t a, int64_t out[4])
{
	out[0] = a;
	return 1;
}

static uint32_t get32(const uint8_t *loc)
{
	uint32_t w;
	memcpy(&w, loc, 4);
	return w;
}

static void put_insn(uint8_t *loc, uint32_t w)
{
	memcpy(loc, &w, 4);
}

static int range(uint32_t type, int64_t v, int64_t lo, int64_t hi, const char *what)
{
	if (v >= lo && v <= hi)
		return 0;
	return rw_fail("relocation %s: value %#llx is out of range (%s)", kinds[type - 256].k.name,
		       (unsigned long long)v, what);
}

static int64_t page(uint64_t x)
{
	return (int64_t)(x & ~0xfffull);
}

/* The scale of a load or store's imm12: its access size, from the
 * instruction (bits 31-30, and the 128-bit vector form). */
static int ldst_shift(uint32_t type, uint32_t insn)
{
	switch (type) {
	case R_AARCH64_LDST8_ABS_LO12_NC: case R_AARCH64_TLSLE_LDST8_TPREL_LO12:
	case R_AARCH64_TLSLE_LDST8_TPREL_LO12_NC: return 0;
	case R_AARCH64_LDST16_ABS_LO12_NC: case R_AARCH64_TLSLE_LDST16_TPREL_LO12:
	case R_AARCH64_TLSLE_LDST16_TPREL_LO12_NC: return 1;
	case R_AARCH64_LDST32_ABS_LO12_NC: case R_AARCH64_TLSLE_LDST32_TPREL_LO12:
	case R_AARCH64_TLSLE_LDST32_TPREL_LO12_NC: return 2;
	case R_AARCH64_LDST64_ABS_LO12_NC: case R_AARCH64_TLSLE_LDST64_TPREL_LO12:
	case R_AARCH64_TLSLE_LDST64_TPREL_LO12_NC: case R_AARCH64_LD64_GOT_LO12_NC:
	case R_AARCH64_TLSIE_LD64_GOTTPREL_LO12_NC: case R_AARCH64_TLSDESC_LD64_LO12: return 3;
	case R_AARCH64_LDST128_ABS_LO12_NC: case R_AARCH64_TLSLE_LDST128_TPREL_LO12:
	case R_AARCH64_TLSLE_LDST128_TPREL_LO12_NC: return 4;
	}
	(void)insn;
	return 0;
}

static int set_imm12(uint8_t *loc, uint32_t type, uint64_t v, int checked)
{
	uint32_t w = get32(loc);
	int shift = ldst_shift(type, w);
	if (checked && v > 0xfff)
		return range(type, (int64_t)v, 0, 0xfff, "12 bits");
	if (v & ((1u << shift) - 1))
		return rw_fail("relocation %s: offset %#llx is not aligned to the access size %u",
			       kinds[type - 256].k.name, (unsigned long long)v, 1u << shift);
	put_insn(loc, (w & ~0x003ffc00u) | (uint32_t)(((v & 0xfff) >> shift) << 10));
	return 0;
}

static void set_adr(uint8_t *loc, int64_t imm21)
{
	uint32_t w = get32(loc) & ~0x60ffffe0u;
	uint32_t u = (uint32_t)imm21;
	put_insn(loc, w | ((u & 3) << 29) | (((u >> 2) & 0x7ffff) << 5));
}

static int branch(uint8_t *loc, uint32_t type, int64_t d, int bits, int at)
{
	int64_t lim = 1ll << (bits + 1);
	if (d & 3)
		return rw_fail("relocation %s: target %#llx bytes away is not an instruction",
			       kinds[type - 256].k.name, (unsigned long long)d);
	if (range(type, d, -lim, lim - 4, bits == 26 ? "+-128 MiB" : bits == 19 ? "+-1 MiB" :
		  "+-32 KiB") < 0)
		return -1;
	uint32_t m = (1u << bits) - 1;
	put_insn(loc, (get32(loc) & ~(m << at)) | ((uint32_t)(d >> 2) & m) << at);
	return 0;
}

static int movw(uint8_t *loc, uint32_t type, int64_t v, int group, int checked)
{
	uint64_t u = (uint64_t)v >> (16 * group);
	if (checked && (v < 0 || u > 0xffff))
		return range(type, v, 0, (int64_t)(0xffffull << (16 * group)), "16 bits");
	put_insn(loc, (get32(loc) & ~0x001fffe0u) | (uint32_t)(u & 0xffff) << 5);
	return 0;
}

static void put_data(uint8_t *loc, uint64_t v, int n)
{
	memcpy(loc, &v, (size_t)n);	/* little-endian */
}

static int a64_apply_data(uint32_t type, uint8_t *loc, const struct relval *v)
{
	uint64_t S = v->S, P = v->P;
	int64_t A = v->A, x;
	switch (type) {
	case R_AARCH64_ABS64: put_data(loc, S + A, 8); return 0;
	case R_AARCH64_PREL64: put_data(loc, S + A - P, 8); return 0;
	case R_AARCH64_ABS32:
		x = (int64_t)(S + A);
		if (range(type, x, -(1ll << 31), (1ll << 32) - 1, "32 bits") < 0)
			return -1;
		put_data(loc, (uint64_t)x, 4);
		return 0;
	case R_AARCH64_PREL32:
		x = (int64_t)(S + A - P);
		if (range(type, x, -(1ll << 31), (1ll << 32) - 1, "32-bit offset") < 0)
			return -1;
		put_data(loc, (uint64_t)x, 4);
		return 0;
	case R_AARCH64_ABS16:
	case R_AARCH64_PREL16:
		x = (int64_t)(S + A - (type == R_AARCH64_PREL16 ? P : 0));
		if (range(type, x, -(1ll << 15), (1ll << 16) - 1, "16 bits") < 0)
			return -1;
		put_data(loc, (uint64_t)x, 2);
		return 0;
	}
	return 1;
}

static int a64_apply_tls(uint32_t type, uint8_t *loc, const struct relval *v)
{
	int64_t tp = v->tpoff + v->A;
	switch (type) {
	case R_AARCH64_TLSLE_MOVW_TPREL_G2: return movw(loc, type, tp, 2, 1);
	case R_AARCH64_TLSLE_MOVW_TPREL_G1: return movw(loc, type, tp, 1, 1);
	case R_AARCH64_TLSLE_MOVW_TPREL_G1_NC: return movw(loc, type, tp, 1, 0);
	case R_AARCH64_TLSLE_MOVW_TPREL_G0: return movw(loc, type, tp, 0, 1);
	case R_AARCH64_TLSLE_MOVW_TPREL_G0_NC: return movw(loc, type, tp, 0, 0);
	case R_AARCH64_TLSLE_ADD_TPREL_HI12:
		if (range(type, tp, 0, (1ll << 24) - 1, "24 bits") < 0)
			return -1;
		return set_imm12(loc, type, (uint64_t)tp >> 12, 1);
	case R_AARCH64_TLSLE_ADD_TPREL_LO12:
	case R_AARCH64_TLSLE_LDST8_TPREL_LO12: case R_AARCH64_TLSLE_LDST16_TPREL_LO12:
	case R_AARCH64_TLSLE_LDST32_TPREL_LO12: case R_AARCH64_TLSLE_LDST64_TPREL_LO12:
	case R_AARCH64_TLSLE_LDST128_TPREL_LO12:
		return set_imm12(loc, type, (uint64_t)tp, 1);
	case R_AARCH64_TLSLE_ADD_TPREL_LO12_NC:
	case R_AARCH64_TLSLE_LDST8_TPREL_LO12_NC: case R_AARCH64_TLSLE_LDST16_TPREL_LO12_NC:
	case R_AARCH64_TLSLE_LDST32_TPREL_LO12_NC: case R_AARCH64_TLSLE_LDST64_TPREL_LO12_NC:
	case R_AARCH64_TLSLE_LDST128_TPREL_LO12_NC:
		return set_imm12(loc, type, (uint64_t)tp & 0xfff, 0);
	case R_AARCH64_TLSDESC_LD64_LO12: {
		/* ldr x1, [x0, lo12] -> ldr x0, [x0, lo12 of the slot] */
		uint64_t slot = v->GOT + v->G;
		if (slot & 7)
			return rw_fail("relocation %s: GOT slot %#llx is not aligned", kinds[type - 256].k.name,
				       (unsigned long long)slot);
		put_insn(loc, 0xf9400000u | (uint32_t)(((slot & 0xfff) >> 3) << 10));
		return 0;
	}
	case R_AARCH64_TLSDESC_ADD_LO12:
	case R_AARCH64_TLSDESC_CALL:
		put_insn(loc, 0xd503201f);	/* nop */
		return 0;
	}
	return 1;
}

static int a64_apply(uint32_t type, uint8_t *loc, const struct relval *v)
{
	uint64_t S = v->S, P = v->P, slot = v->GOT + v->G;
	int64_t A = v->A;
	int rc;
	if (!kind_of(type))
		return rw_fail("relocation type %u is not supported", type);
	if (type == R_AARCH64_NONE)
		return 0;
	if ((rc = a64_apply_data(type, loc, v)) <= 0 || (rc = a64_apply_tls(type, loc, v)) <= 0)
		return rc;
	switch (type) {
	case R_AARCH64_CALL26:
	case R_AARCH64_JUMP26: return branch(loc, type, (int64_t)(S + A - P), 26, 0);
	case R_AARCH64_CONDBR19:
	case R_AARCH64_LD_PREL_LO19: return branch(loc, type, (int64_t)(S + A - P), 19, 5);
	case R_AARCH64_TSTBR14: return branch(loc, type, (int64_t)(S + A - P), 14, 5);
	case R_AARCH64_GOT_LD_PREL19:
	case R_AARCH64_TLSIE_LD_GOTTPREL_PREL19: return branch(loc, type, (int64_t)(slot - P), 19, 5);
	case R_AARCH64_ADR_PREL_LO21: {
		int64_t d = (int64_t)(S + A - P);
		if (range(type, d, -(1ll << 20), (1ll << 20) - 1, "+-1 MiB") < 0)
			return -1;
		set_adr(loc, d);
		return 0;
	}
	case R_AARCH64_ADR_PREL_PG_HI21:
	case R_AARCH64_ADR_PREL_PG_HI21_NC:
	case R_AARCH64_ADR_GOT_PAGE:
	case R_AARCH64_TLSIE_ADR_GOTTPREL_PAGE21:
	case R_AARCH64_TLSDESC_ADR_PAGE21: {
		uint64_t to = type == R_AARCH64_ADR_PREL_PG_HI21 || type == R_AARCH64_ADR_PREL_PG_HI21_NC ?
			      S + A : slot;
		int64_t d = (page(to) - page(P)) >> 12;
		if (type != R_AARCH64_ADR_PREL_PG_HI21_NC &&
		    range(type, d << 12, -(1ll << 32), (1ll << 32) - 1, "+-4 GiB") < 0)
			return -1;
		set_adr(loc, d);
		return 0;
	}
	case R_AARCH64_ADD_ABS_LO12_NC:
	case R_AARCH64_LDST8_ABS_LO12_NC: case R_AARCH64_LDST16_ABS_LO12_NC:
	case R_AARCH64_LDST32_ABS_LO12_NC: case R_AARCH64_LDST64_ABS_LO12_NC:
	case R_AARCH64_LDST128_ABS_LO12_NC:
		return set_imm12(loc, type, (S + A) & 0xfff, 0);
	case R_AARCH64_LD64_GOT_LO12_NC:
	case R_AARCH64_TLSIE_LD64_GOTTPREL_LO12_NC:
		return set_imm12(loc, type, slot & 0xfff, 0);
	}
	return rw_fail("relocation %s is not supported", kinds[type - 256].k.name);
}

/* .eh_frame's PREL32 to code that is gone: P + field = 0. Code fields
 * keep their instruction, its immediate 0. */
static void a64_null_field(uint32_t type, uint8_t *loc, uint64_t P)
{
	const struct a64_kind *a = kind_of(type);
	if (!a)
		return;
	if (a->field == F_D16 || a->field == F_D32 || a->field == F_D64) {
		uint64_t v = a->k.pcrel ? 0 - P : 0;
		put_data(loc, v, a64_field_size(type));
	} else if (a->field >= F_IMM26 && a->field <= F_IMM16) {
		put_insn(loc, get32(loc) & ~field_mask(a->field));
	}
}

/* B and BL reach +-128 MiB; with the agent's margin (agent/region.c). */
static int a64_reaches(uint64_t lo, uint64_t hi, uint64_t a, uint64_t b)
{
	uint64_t min = lo < a ? lo : a, max = hi > b ? hi : b;
	return max - min < (128ull << 20) - (1u << 20);
}

static uint64_t a64_call_target(uint64_t S, int64_t A)
{
	return S + (uint64_t)A;
}

/* adrp x16, slot; ldr x16, [x16, lo12]; br x16; brk: x16 is IP0, which a
 * call's veneer may clobber. */
static void a64_write_stub(uint8_t *loc, uint64_t at, uint64_t slot)
{
	int64_t d = (page(slot) - page(at)) >> 12;
	uint32_t u = (uint32_t)d;
	put_insn(loc, 0x90000010u | ((u & 3) << 29) | (((u >> 2) & 0x7ffff) << 5));
	put_insn(loc + 4, 0xf9400210u | (uint32_t)(((slot & 0xfff) >> 3) << 10));
	put_insn(loc + 8, 0xd61f0200u);
	put_insn(loc + 12, 0xd4200000u);
}

static int a64_jump_size_to(uint64_t at, uint64_t to)
{
	return a64_jump_size(at, to);
}

/* Assemblers align functions with nops (and zeros between sections). */
static size_t a64_padding_before(const uint8_t *end, size_t avail)
{
	size_t n = 0;
	while (n + 4 <= avail && get32(end - n - 4) == 0xd503201f)
		n += 4;
	return n;
}

/* A B or BL to another function of the same section has no relocation:
 * the assembler resolved it (gcc's and clang's alike). Give it one, so
 * that it goes to the running version of a function that did not change
 * (and a later patch of that function reaches this caller), and so that
 * the diff compares it by target. ADR of a function's address likewise.
 * Conditional branches keep theirs: +-1 MiB reaches no other module. */
static void add_resolved(struct elf_object *o, uint16_t si, size_t *cap, uint64_t at,
			 const uint8_t *has_reloc)
{
	struct elf_section *sec = &o->sections[si];
	uint32_t w = get32(sec->data + at), type;
	int64_t d;
	if (has_reloc[at / 4])
		return;
	if ((w & 0x7c000000u) == 0x14000000u) {	/* b, bl */
		d = (int64_t)(w & 0x03ffffff);
		d = ((d ^ 0x02000000) - 0x02000000) * 4;
		type = w >> 31 ? R_AARCH64_CALL26 : R_AARCH64_JUMP26;
	} else if ((w & 0x9f000000u) == 0x10000000u) {	/* adr */
		d = (int64_t)((((w >> 5) & 0x7ffff) << 2) | ((w >> 29) & 3));
		d = (d ^ (1 << 20)) - (1 << 20);
		type = R_AARCH64_ADR_PREL_LO21;
	} else {
		return;
	}
	int64_t target = (int64_t)at + d;
	if (target < 0 || (uint64_t)target >= sec->size)
		return;
	const struct elf_symbol *f = elf_object_symbol_at(o, si, (uint64_t)target);
	if (!f || f->type != STT_FUNC || f->value != (uint64_t)target ||
	    (type != R_AARCH64_ADR_PREL_LO21 && f == elf_object_symbol_at(o, si, at)))
		return;
	sec->relas = rw_grow(sec->relas, cap, sec->nrelas, sizeof *sec->relas);
	sec->relas[sec->nrelas++] = (struct elf_rela){at, type, (uint32_t)(f - o->symbols), 0};
}

/* Every instruction is 4 bytes: the starts are every fourth byte. */
static uint8_t *a64_scan_code(struct elf_object *o, uint16_t si)
{
	struct elf_section *sec = &o->sections[si];
	uint8_t *starts = rw_calloc(sec->size + 1, 1), *has_reloc = rw_calloc(sec->size / 4 + 1, 1);
	size_t cap = sec->nrelas;
	for (size_t i = 0; i < sec->nrelas; i++)
		if (sec->relas[i].offset < sec->size)
			has_reloc[sec->relas[i].offset / 4] = 1;
	for (uint64_t at = 0; at + 4 <= sec->size; at += 4) {
		starts[at] = 1;
		add_resolved(o, si, &cap, at, has_reloc);
	}
	starts[sec->size] = 1;
	free(has_reloc);
	return starts;
}

/* The register a page address is built in, and the low 12 bits added to
 * it by the instruction at w, when w uses base register rn. */
static int lo12_of(uint32_t w, unsigned rn, uint64_t *lo)
{
	if (((w >> 5) & 31) != rn)
		return 0;
	if ((w & 0x7f800000u) == 0x11000000u) {	/* add (immediate), 32 or 64 bit */
		*lo = ((w >> 10) & 0xfff) << ((w >> 22) & 1 ? 12 : 0);
		return 1;
	}
	if ((w & 0x3b000000u) == 0x39000000u) {	/* load/store, unsigned offset */
		unsigned size = w >> 30;
		if ((w & 0x04800000u) == 0x04800000u)	/* 128-bit vector */
			size = 4;
		*lo = ((w >> 10) & 0xfff) << size;
		return 1;
	}
	return 0;
}

static int anchor_walk(const uint8_t *code, uint64_t size, uint64_t off,
		       void (*reach)(void *ctx, int64_t from, int64_t to), void *ctx);

struct targets {
	uint64_t base, *v;
	int n;
};

static void add_target(void *ctx, int64_t from, int64_t to)
{
	struct targets *t = ctx;
	if (t->n < ARCH_MAX_TARGETS)
		t->v[t->n++] = t->base + (uint64_t)from;
	(void)to;
}

/* ADR, ADRP with the add or load that follows it (an add: with every
 * access the code makes from the address, gcc's section anchors), and
 * loads of a literal. */
static int a64_next_insn(const uint8_t *p, size_t avail, uint64_t addr, uint64_t *targets, int *n)
{
	*n = 0;
	if (avail < 4)
		return -1;
	uint32_t w = get32(p);
	int64_t imm21 = (int64_t)((((w >> 5) & 0x7ffff) << 2) | ((w >> 29) & 3));
	imm21 = (imm21 ^ (1 << 20)) - (1 << 20);
	if ((w & 0x9f000000u) == 0x10000000u) {	/* adr */
		targets[(*n)++] = addr + (uint64_t)imm21;
	} else if ((w & 0x9f000000u) == 0x90000000u) {	/* adrp */
		uint64_t pg = (uint64_t)page(addr) + (uint64_t)(imm21 << 12), lo;
		for (size_t k = 4; k + 4 <= avail && k <= 16; k += 4)
			if (lo12_of(get32(p + k), w & 31, &lo)) {
				struct targets t = {pg + lo, targets, 0};
				if (!anchor_walk(p, avail, k, add_target, &t))
					targets[t.n++] = pg + lo;
				*n = t.n;
				break;
			}
	} else if ((w & 0x3b000000u) == 0x18000000u) {	/* ldr (literal) */
		int64_t imm19 = (int64_t)((w >> 5) & 0x7ffff);
		imm19 = (imm19 ^ (1 << 18)) - (1 << 18);
		targets[(*n)++] = addr + (uint64_t)(imm19 * 4);
	}
	return 4;
}

/* The bytes an access with base register d reaches, relative to d: the
 * unsigned-offset, unscaled and pair forms of loads and stores, and a
 * register offset (an index: the byte at d stands for what it reaches).
 * How many elements it accesses (a pair: 2, each half of [from, to)), 0
 * when w does not use d as a base. */
static int reach_of(uint32_t w, unsigned d, int64_t *from, int64_t *to)
{
	if (((w >> 5) & 31) != d)
		return 0;
	if ((w & 0x3b000000u) == 0x39000000u) {	/* ldr/str [d, #imm12 << size] */
		unsigned size = w >> 30;
		if ((w & 0x04800000u) == 0x04800000u)
			size = 4;
		*from = (int64_t)(((w >> 10) & 0xfff) << size);
		*to = *from + (1 << size);
		return 1;
	}
	if ((w & 0x3b200c00u) == 0x38000000u) {	/* ldur/stur [d, #simm9] */
		int64_t imm = (int64_t)((w >> 12) & 0x1ff);
		*from = (imm ^ 0x100) - 0x100;
		*to = *from + (1 << (w >> 30));
		return 1;
	}
	if ((w & 0x3b200c00u) == 0x38200800u) {	/* ldr/str [d, xm] */
		*from = 0, *to = 1;
		return 1;
	}
	if ((w & 0x3a000000u) == 0x28000000u) {	/* ldp/stp [d, #simm7 * scale] */
		unsigned opc = w >> 30, vector = (w >> 26) & 1;
		int scale = vector ? 4 << opc : opc == 2 ? 8 : 4;
		int64_t imm = (int64_t)((w >> 15) & 0x7f);
		*from = ((imm ^ 0x40) - 0x40) * scale;
		*to = *from + 2 * scale;
		return 2;	/* two elements: two variables, maybe */
	}
	return 0;
}

/* add or sub (immediate) of d: the displacement, into *imm. */
static int moves(uint32_t w, unsigned d, int64_t *imm)
{
	uint32_t op = w & 0xff800000u;
	if ((op != 0x91000000u && op != 0xd1000000u) || ((w >> 5) & 31) != d)
		return 0;
	*imm = (int64_t)(((w >> 10) & 0xfff) << ((w >> 22) & 1 ? 12 : 0));
	if (op == 0xd1000000u)
		*imm = -*imm;
	return 1;
}

/* add xn, d, xm (or xm + d), shifted or extended: an index added to d,
 * whose accesses then start where d's would (an array, from its start).
 * *into: the register written. */
static int indexes(uint32_t w, unsigned d, unsigned *into)
{
	int shifted = (w & 0xff200000u) == 0x8b000000u, extended = (w & 0xffe00000u) == 0x8b200000u;
	if ((!shifted && !extended) || (((w >> 5) & 31) != d && (shifted ? ((w >> 16) & 31) != d : 1)))
		return 0;
	*into = w & 31;
	return 1;
}

/* Does w end the straight line of code (ret, b, br, a call: bl and blr
 * clobber the argument registers) or write general register d? What it
 * cannot tell it lets go on: an access wrongly taken for one from d
 * leads to a refusal, a missed one to a wrong binding. */
static int ends_use(uint32_t w, unsigned d)
{
	unsigned rt = w & 31, rn = (w >> 5) & 31, rt2 = (w >> 10) & 31;
	if ((w & 0x7c000000u) == 0x14000000u || (w & 0xffdffc1fu) == 0xd61f0000u ||
	    (w & 0xfffffc1fu) == 0xd65f0000u)
		return 1;	/* b, bl, br, blr, ret */
	if ((w & 0x0a000000u) == 0x08000000u) {	/* loads and stores */
		int vector = (w >> 26) & 1;
		if ((w & 0x3a000000u) == 0x28000000u) {	/* pairs */
			int writeback = ((w >> 23) & 3) == 1 || ((w >> 23) & 3) == 3;
			return (writeback && rn == d) ||
			       (!vector && ((w >> 22) & 1) && (rt == d || rt2 == d));
		}
		if ((w & 0x3b200000u) == 0x38000000u && ((w >> 10) & 3) && rn == d)
			return 1;	/* pre- or post-index: d moves */
		int load = ((w >> 22) & 3) != 0;	/* opc: 00 store; ldr, ldrs* */
		return !vector && load && rt == d;
	}
	if ((w & 0x1c000000u) == 0x10000000u || (w & 0x0e000000u) == 0x0a000000u)
		return rt == d;	/* data processing, immediate or register */
	return 0;
}

/* gcc's section anchors: `add xd, xn, :lo12:anchor`, then loads and
 * stores at offsets from xd (and adds to it: `add xd, xd, #16`), each
 * variable of the block at its own. Followed to the end of the straight
 * line of code, or until xd is written: reach(ctx, from, to) for each
 * access, relative to the address formed. The number of accesses. */
static int anchor_walk(const uint8_t *code, uint64_t size, uint64_t off,
		       void (*reach)(void *ctx, int64_t from, int64_t to), void *ctx)
{
	if (off % 4 || off + 4 > size)
		return 0;
	uint32_t w = get32(code + off);
	if ((w & 0x7f800000u) != 0x11000000u)	/* add (immediate) */
		return 0;
	unsigned d = w & 31;
	int found = 0;
	int64_t cur = 0, from, to, imm;
	unsigned into;
	for (uint64_t at = off + 4; at + 4 <= size; at += 4) {
		uint32_t u = get32(code + at);
		int elems = reach_of(u, d, &from, &to);
		if (elems == 2) {
			int64_t mid = from + (to - from) / 2;
			reach(ctx, cur + from, cur + mid);
			reach(ctx, cur + mid, cur + to);
			found++;
		} else if (elems) {
			reach(ctx, cur + from, cur + to);
			found++;
		} else if (moves(u, d, &imm)) {
			if ((u & 31) == d) {
				cur += imm;	/* the base moved: what it reaches is further on */
				continue;
			}
			reach(ctx, cur + imm, cur + imm + 1);	/* another base: its start */
			found++;
		} else if (indexes(u, d, &into)) {
			if (into == d)
				continue;	/* d + index: accesses reach from d's place on */
			reach(ctx, cur, cur + 1);
			found++;
		}
		if (ends_use(u, d))
			break;
	}
	return found;
}

struct span {
	int64_t lo, hi;
	int any;
};

static void widen(void *ctx, int64_t from, int64_t to)
{
	struct span *sp = ctx;
	sp->lo = sp->any && sp->lo < from ? sp->lo : from;
	sp->hi = sp->any && sp->hi > to ? sp->hi : to;
	sp->any = 1;
}

struct offsets {
	int64_t *v;
	int n, cap;
};

static void add_offset(void *ctx, int64_t from, int64_t to)
{
	struct offsets *o = ctx;
	if (o->n < o->cap)
		o->v[o->n] = from;
	o->n++;
	(void)to;
}

static int a64_anchor_offsets(const uint8_t *code, uint64_t size, uint64_t off, int64_t *offs, int cap)
{
	struct offsets o = {offs, 0, cap};
	anchor_walk(code, size, off, add_offset, &o);
	return o.n > cap ? -1 : o.n;
}

static int a64_anchor_span(const uint8_t *code, uint64_t size, uint64_t off, int64_t *lo, int64_t *hi)
{
	struct span sp = {0, 0, 0};
	if (!anchor_walk(code, size, off, widen, &sp))
		return 0;
	*lo = sp.lo, *hi = sp.hi;
	return 1;
}

const struct arch arch_aarch64 = {
	.name = "aarch64",
	.reach = "128 MiB",
	.pcrel_ref = "PC-relative offset",
	.machine = EM_AARCH64,
	.insn_max = 4,
	.stub_size = 16,
	.jump_size = A64_JUMP_SIZE,
	.short_jump_size = A64_SHORT_JUMP_SIZE,
	.pc_at_end = 0,
	.reloc_kind = a64_reloc_kind,
	.field_size = a64_field_size,
	.field_bits = a64_field_bits,
	.is_call_site = a64_is_call_site,
	.pcrel_offsets = a64_pcrel_offsets,
	.apply = a64_apply,
	.null_field = a64_null_field,
	.reaches = a64_reaches,
	.call_target = a64_call_target,
	.write_stub = a64_write_stub,
	.jump_size_to = a64_jump_size_to,
	.padding_before = a64_padding_before,
	.scan_code = a64_scan_code,
	.next_insn = a64_next_insn,
	.anchor_span = a64_anchor_span,
	.anchor_offsets = a64_anchor_offsets,
};
