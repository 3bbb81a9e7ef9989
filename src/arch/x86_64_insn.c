/* x86-64 instruction lengths, for the two questions relocations leave open.
 *
 * 1. A PC-relative field's addend is the target's offset minus the bytes
 *    from the field to the end of its instruction (4, plus an immediate
 *    after it). To know which static variable `.bss-8` means, we need that
 *    end.
 * 2. The assembler resolves `lea f(%rip)` to a file-local function of the
 *    same section itself, leaving no relocation; to give the new code the
 *    original address of f (so pointers compare equal), we need to find it.
 *
 * This decodes lengths only: legacy prefixes, REX, VEX and EVEX, the one-,
 * two- and three-byte opcode maps, ModRM, SIB, displacement, immediate.
 * Opcodes it does not know make it return -1; callers then fall back to
 * what the relocations alone say. */
#include <string.h>
#include "arch.h"

enum { NONE = 0, MODRM = 1, IB = 2, IW = 4, IZ = 8, I64 = 16, IWB = 32, BAD = 64, GRP3 = 128 };

/* One-byte map: what follows each opcode. */
static unsigned one_byte(uint8_t op)
{
	if (op < 0x40) {
		switch (op & 7) {
		case 0: case 1: case 2: case 3: return MODRM;
		case 4: return IB;
		case 5: return IZ;
		default: return op == 0x0f ? NONE : BAD;	/* 0f handled before; 06/07/0e.. invalid */
		}
	}
	if (op < 0x50) return BAD;			/* REX, handled before */
	if (op < 0x60) return NONE;			/* push/pop */
	switch (op) {
	case 0x63: return MODRM;
	case 0x68: return IZ;
	case 0x69: return MODRM | IZ;
	case 0x6a: return IB;
	case 0x6b: return MODRM | IB;
	case 0x6c: case 0x6d: case 0x6e: case 0x6f: return NONE;
	case 0x80: case 0x83: return MODRM | IB;
	case 0x81: return MODRM | IZ;
	case 0xa0: case 0xa1: case 0xa2: case 0xa3: return I64;	/* moffs */
	case 0xa8: return IB;
	case 0xa9: return IZ;
	case 0xc0: case 0xc1: case 0xc6: return MODRM | IB;
	case 0xc7: return MODRM | IZ;
	case 0xc2: case 0xca: return IW;
	case 0xc8: return IWB;
	case 0xcd: return IB;
	case 0xe8: case 0xe9: return IZ;
	case 0xeb: return IB;
	case 0xf6: case 0xf7: return MODRM | GRP3;
	case 0xfe: case 0xff: return MODRM;
	}
	if (op >= 0x70 && op <= 0x7f) return IB;
	if (op >= 0x84 && op <= 0x8f) return MODRM;
	if (op >= 0x90 && op <= 0x9f) return op == 0x9a ? BAD : NONE;
	if (op >= 0xa4 && op <= 0xaf) return NONE;
	if (op >= 0xb0 && op <= 0xb7) return IB;
	if (op >= 0xb8 && op <= 0xbf) return IZ | I64;	/* imm64 with REX.W */
	if (op >= 0xd0 && op <= 0xd3) return MODRM;
	if (op >= 0xd8 && op <= 0xdf) return MODRM;	/* x87 */
	if (op >= 0xe0 && op <= 0xe7) return IB;
	if (op == 0xc3 || op == 0xc9 || op == 0xcb || op == 0xcc || op == 0xcf || op == 0xd7 ||
	    (op >= 0xec && op <= 0xef) || op == 0xf1 || op == 0xf4 || op == 0xf5 ||
	    (op >= 0xf8 && op <= 0xfd))
		return NONE;
	return BAD;
}

/* Two-byte map (0f xx). */
static unsigned two_byte(uint8_t op)
{
	switch (op) {
	case 0x05: case 0x06: case 0x07: case 0x08: case 0x09: case 0x0b: case 0x0e:
	case 0x30: case 0x31: case 0x32: case 0x33: case 0x34: case 0x35: case 0x37:
	case 0x77: case 0xa0: case 0xa1: case 0xa2: case 0xa8: case 0xa9: case 0xaa:
		return NONE;
	case 0x0f: case 0x70: case 0x71: case 0x72: case 0x73: case 0xa4: case 0xac:
	case 0xba: case 0xc2: case 0xc4: case 0xc5: case 0xc6:
		return MODRM | IB;
	case 0x04: case 0x0a: case 0x0c: case 0x24: case 0x25: case 0x26: case 0x27:
	case 0x36: case 0x39: case 0x3b: case 0x3c: case 0x3d: case 0x3e: case 0x3f:
		return BAD;
	}
	if (op >= 0x80 && op <= 0x8f) return IZ;	/* jcc rel32 */
	if (op >= 0xc8 && op <= 0xcf) return NONE;	/* bswap */
	return MODRM;
}

static int modrm_len(const uint8_t *p, size_t avail, size_t at, struct insn *in)
{
	if (at >= avail)
		return -1;
	uint8_t m = p[at], mod = m >> 6, rm = m & 7;
	int n = 1;
	in->modrm_reg = (m >> 3) & 7;
	if (mod != 3 && rm == 4) {
		if (at + 1 >= avail)
			return -1;
		n++;
		if (mod == 0 && (p[at + 1] & 7) == 5)
			n += 4;
	}
	if (mod == 0 && rm == 5) {
		in->disp_at = (int8_t)(at + 1);
		n += 4;
	} else if (mod == 1) {
		n += 1;
	} else if (mod == 2) {
		n += 4;
	}
	return n;
}

static int imm_len(unsigned f, int opsize16, int rexw, int addr32, const struct insn *in)
{
	if (f & I64 && !(f & IZ))
		return addr32 ? 4 : 8;			/* moffs */
	if (f & I64 && rexw)
		return 8;				/* mov r64, imm64 */
	if (f & GRP3)
		return in->modrm_reg < 2 ? (in->opcode == 0xf6 ? 1 : opsize16 ? 2 : 4) : 0;
	if (f & IB) return 1;
	if (f & IW) return 2;
	if (f & IWB) return 3;
	if (f & IZ) return opsize16 && in->opcode != 0xe8 && in->opcode != 0xe9 && in->map != 1 ? 2 : 4;
	return 0;
}

/* VEX (c4/c5) and EVEX (62): map from the payload, ModRM always but for
 * vzeroupper/vzeroall, imm8 in map 3 and for a few map-1 opcodes. */
static int decode_vex(const uint8_t *p, size_t avail, size_t at, struct insn *in)
{
	uint8_t lead = p[at];
	size_t payload = lead == 0xc5 ? 1 : lead == 0xc4 ? 2 : 3;
	if (at + payload + 1 >= avail)
		return -1;
	in->map = lead == 0xc5 ? 1 : p[at + 1] & (lead == 0x62 ? 7 : 0x1f);
	if (in->map < 1 || in->map > 3)
		return -1;
	at += 1 + payload;
	in->opcode = p[at++];
	if (in->map == 1 && in->opcode == 0x77 && lead != 0x62) {
		in->len = (uint8_t)at;
		return 0;
	}
	int m = modrm_len(p, avail, at, in);
	if (m < 0)
		return -1;
	at += (size_t)m;
	unsigned f = in->map == 1 ? two_byte(in->opcode) : 0;
	if (in->map == 3 || (f & IB))
		at++;
	in->len = (uint8_t)at;
	return at <= avail && at <= 15 ? 0 : -1;
}

int x86_decode(const uint8_t *p, size_t avail, struct insn *in)
{
	size_t at = 0;
	int opsize16 = 0, addr32 = 0, rexw = 0;
	memset(in, 0, sizeof *in);
	in->disp_at = -1;
	for (; at < avail && at < 14; at++) {
		uint8_t b = p[at];
		if (b == 0x66) opsize16 = 1;
		else if (b == 0x67) addr32 = 1;
		else if (b == 0xf0 || b == 0xf2 || b == 0xf3 || b == 0x2e || b == 0x36 ||
			 b == 0x3e || b == 0x26 || b == 0x64 || b == 0x65) ;
		else break;
	}
	if (at < avail && (p[at] & 0xf0) == 0x40)
		rexw = (p[at++] >> 3) & 1;
	if (at >= avail)
		return -1;
	if (p[at] == 0xc4 || p[at] == 0xc5 || p[at] == 0x62)
		return decode_vex(p, avail, at, in);
	unsigned f;
	if (p[at] == 0x0f) {
		if (++at >= avail)
			return -1;
		if (p[at] == 0x38 || p[at] == 0x3a) {
			in->map = p[at] == 0x38 ? 2 : 3;
			f = MODRM | (in->map == 3 ? IB : 0);
			at++;
		} else {
			in->map = 1;
			f = two_byte(p[at]);
		}
	} else {
		f = one_byte(p[at]);
	}
	if (at >= avail || (f & BAD))
		return -1;
	in->opcode = p[at++];
	if (f & MODRM) {
		int m = modrm_len(p, avail, at, in);
		if (m < 0)
			return -1;
		at += (size_t)m;
	}
	at += (size_t)imm_len(f, opsize16, rexw, addr32, in);
	if (at > avail || at > 15)
		return -1;
	in->len = (uint8_t)at;
	return 0;
}

int x86_takes_address(const struct insn *in)
{
	return in->map == 0 && in->opcode == 0x8d;	/* lea */
}

/* call rel32, jmp rel32, jcc rel32: the displacement is the last 4 bytes. */
int x86_is_rel32_branch(const struct insn *in)
{
	if (in->len < 5)
		return 0;
	return (in->map == 0 && (in->opcode == 0xe8 || in->opcode == 0xe9)) ||
	       (in->map == 1 && in->opcode >= 0x80 && in->opcode <= 0x8f);
}
