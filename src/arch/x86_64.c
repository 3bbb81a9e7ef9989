/* x86-64: the relocations of the psABI, as the generic linker needs them,
 * and the machine's entry in struct arch.
 *
 * Names follow the psABI: S the symbol's value, A the addend, P the place,
 * G the GOT slot's offset from the GOT base, GOT the base, Z the symbol's
 * size. Every narrow field is range-checked; a value that does not fit is
 * refused with the relocation's name and the value, never truncated.
 * GOT-relative forms (GOTPCRELX) are not relaxed: the patch's GOT holds the
 * final address, which is always right. */
#include <elf.h>
#include <stddef.h>
#include <string.h>
#include "arch.h"
#include "util.h"

#define K(t, pc, call, got, tls) [t] = {#t, 1, pc, call, got, tls, 0, t == R_X86_64_TPOFF32}
static const struct reloc_kind kinds[] = {
	K(R_X86_64_NONE, 0, 0, GOT_NONE, 0),
	K(R_X86_64_64, 0, 0, GOT_NONE, 0),
	K(R_X86_64_PC32, 1, 0, GOT_NONE, 0),
	K(R_X86_64_PLT32, 1, 1, GOT_NONE, 0),
	K(R_X86_64_GOTPCREL, 1, 0, GOT_ADDR, 0),
	K(R_X86_64_32, 0, 0, GOT_NONE, 0),
	K(R_X86_64_32S, 0, 0, GOT_NONE, 0),
	K(R_X86_64_DTPOFF64, 0, 0, GOT_NONE, 1),
	K(R_X86_64_TPOFF64, 0, 0, GOT_NONE, 1),
	K(R_X86_64_TLSGD, 1, 0, GOT_TLSGD, 1),
	K(R_X86_64_TLSLD, 1, 0, GOT_TLSLD, 1),
	K(R_X86_64_DTPOFF32, 0, 0, GOT_NONE, 1),
	K(R_X86_64_GOTTPOFF, 1, 0, GOT_TPOFF, 1),
	K(R_X86_64_TPOFF32, 0, 0, GOT_NONE, 1),
	K(R_X86_64_PC64, 1, 0, GOT_NONE, 0),
	K(R_X86_64_GOTOFF64, 0, 0, GOT_NONE, 0),
	K(R_X86_64_GOTPC32, 1, 0, GOT_NONE, 0),
	K(R_X86_64_GOTPC64, 1, 0, GOT_NONE, 0),
	K(R_X86_64_SIZE32, 0, 0, GOT_NONE, 0),
	K(R_X86_64_SIZE64, 0, 0, GOT_NONE, 0),
	K(R_X86_64_GOTPCRELX, 1, 0, GOT_ADDR, 0),
	K(R_X86_64_REX_GOTPCRELX, 1, 0, GOT_ADDR, 0),
};

static void x86_reloc_kind(uint32_t type, struct reloc_kind *k)
{
	memset(k, 0, sizeof *k);
	if (type < sizeof kinds / sizeof kinds[0] && kinds[type].known)
		*k = kinds[type];
	else
		k->name = "unknown";
}

static int x86_field_size(uint32_t type)
{
	switch (type) {
	case R_X86_64_NONE:
		return 0;
	case R_X86_64_64: case R_X86_64_PC64: case R_X86_64_GOTOFF64: case R_X86_64_GOTPC64:
	case R_X86_64_SIZE64: case R_X86_64_DTPOFF64: case R_X86_64_TPOFF64:
		return 8;
	}
	return 4;
}

/* e8 call, e9 jmp, 0f 8x jcc: the field is the instruction's last 4 bytes. */
static int x86_is_call_site(const uint8_t *sec, uint64_t off)
{
	if (!sec || off < 1)
		return 0;
	uint8_t op = sec[off - 1];
	if (op == 0xe8 || op == 0xe9)
		return 1;
	return off >= 2 && sec[off - 2] == 0x0f && (op & 0xf0) == 0x80;
}

/* A PC-relative field ends the instruction, or is followed by an
 * immediate of 1, 2 or 4 bytes: A = target - 4 - imm. */
static int x86_pcrel_offsets(int64_t a, int64_t out[4])
{
	out[0] = a + 4;
	out[1] = a + 5;
	out[2] = a + 6;
	out[3] = a + 8;
	return 4;
}

static int put32(uint8_t *loc, int64_t v, int is_signed, uint32_t type)
{
	const char *name = kinds[type].name;
	if (is_signed ? v != (int32_t)v : (uint64_t)v != (uint32_t)v)
		return rw_fail("relocation %s: value %#llx does not fit in 32 bits%s", name,
			       (unsigned long long)v,
			       is_signed ? " (target out of reach of 32-bit PC-relative or signed addressing)"
					 : "");
	uint32_t u = (uint32_t)v;
	memcpy(loc, &u, 4);
	return 0;
}

static void put64(uint8_t *loc, uint64_t v)
{
	memcpy(loc, &v, 8);
}

static int x86_apply(uint32_t type, uint8_t *loc, const struct relval *v)
{
	uint64_t S = v->S, P = v->P, G = v->G, GOT = v->GOT, Z = v->Z;
	int64_t A = v->A;
	switch (type) {
	case R_X86_64_NONE: return 0;
	case R_X86_64_64: put64(loc, S + A); return 0;
	case R_X86_64_PC32:
	case R_X86_64_PLT32: return put32(loc, (int64_t)(S + A - P), 1, type);
	case R_X86_64_32: return put32(loc, (int64_t)(S + A), 0, type);
	case R_X86_64_32S: return put32(loc, (int64_t)(S + A), 1, type);
	case R_X86_64_PC64: put64(loc, S + A - P); return 0;
	case R_X86_64_GOTPCREL:
	case R_X86_64_GOTPCRELX:
	case R_X86_64_REX_GOTPCRELX:
	case R_X86_64_GOTTPOFF:
	case R_X86_64_TLSGD:
	case R_X86_64_TLSLD: return put32(loc, (int64_t)(G + GOT + A - P), 1, type);
	case R_X86_64_GOTOFF64: put64(loc, S + A - GOT); return 0;
	case R_X86_64_GOTPC32: return put32(loc, (int64_t)(GOT + A - P), 1, type);
	case R_X86_64_GOTPC64: put64(loc, GOT + A - P); return 0;
	case R_X86_64_SIZE32: return put32(loc, (int64_t)(Z + A), 0, type);
	case R_X86_64_SIZE64: put64(loc, Z + A); return 0;
	case R_X86_64_TPOFF32: return put32(loc, v->tpoff + A, 1, type);
	case R_X86_64_TPOFF64: put64(loc, (uint64_t)(v->tpoff + A)); return 0;
	case R_X86_64_DTPOFF32: return put32(loc, v->dtpoff + A, 1, type);
	case R_X86_64_DTPOFF64: put64(loc, (uint64_t)(v->dtpoff + A)); return 0;
	}
	return rw_fail("relocation type %u is not supported", type);
}

static void x86_null_field(uint32_t type, uint8_t *loc, uint64_t P)
{
	struct reloc_kind k;
	x86_reloc_kind(type, &k);
	uint64_t v = k.pcrel ? 0 - P : 0;	/* P + field = 0 in the field's width */
	memcpy(loc, &v, (size_t)x86_field_size(type));
}

/* With the agent's margin (agent/region.c): 1 MiB short of 2 GiB. */
static int x86_reaches(uint64_t lo, uint64_t hi, uint64_t a, uint64_t b)
{
	uint64_t min = lo < a ? lo : a, max = hi > b ? hi : b;
	return max - min < (2ull << 30) - (1u << 20);
}

/* The rel32 field ends the instruction: the target is P + 4 + S + A - P. */
static uint64_t x86_call_target(uint64_t S, int64_t A)
{
	return S + (uint64_t)A + 4;
}

/* jmp *slot(%rip), padded with int3. */
static void x86_write_stub(uint8_t *loc, uint64_t at, uint64_t slot)
{
	int32_t rel = (int32_t)(slot - (at + 6));
	loc[0] = 0xff;
	loc[1] = 0x25;
	memcpy(loc + 2, &rel, 4);
	loc[6] = 0xcc;
	loc[7] = 0xcc;
}

/* The NOPs assemblers pad functions with (GNU as and LLVM), longest first. */
static const uint8_t nops[][11] = {
	{0x66, 0x66, 0x2e, 0x0f, 0x1f, 0x84, 0, 0, 0, 0, 0},
	{0x66, 0x2e, 0x0f, 0x1f, 0x84, 0, 0, 0, 0, 0},
	{0x66, 0x0f, 0x1f, 0x84, 0, 0, 0, 0, 0},
	{0x0f, 0x1f, 0x84, 0, 0, 0, 0, 0},
	{0x0f, 0x1f, 0x80, 0, 0, 0, 0},
	{0x66, 0x0f, 0x1f, 0x44, 0, 0},
	{0x0f, 0x1f, 0x44, 0, 0},
	{0x0f, 0x1f, 0x40, 0},
	{0x0f, 0x1f, 0x00},
	{0x66, 0x90},
};
static const uint8_t nop_len[] = {11, 10, 9, 8, 7, 6, 5, 4, 3, 2};

/* How many bytes before end (of the avail readable ones) are padding: a
 * run of int3, or whole multi-byte NOPs. Single-byte NOPs are not counted:
 * 0x90 is too easily the last byte of a real instruction. */
static size_t x86_padding_before(const uint8_t *end, size_t avail)
{
	size_t n = 0;
	while (n < avail && end[-1 - (ptrdiff_t)n] == 0xcc)
		n++;
	if (n)
		return n;
	for (int more = 1; more;) {
		more = 0;
		for (size_t i = 0; i < sizeof nop_len; i++) {
			size_t len = nop_len[i];
			if (n + len <= avail && !memcmp(end - n - len, nops[i], len)) {
				n += len;
				more = 1;
				break;
			}
		}
	}
	return n;
}

/* Every byte of a field is the field. */
static void x86_field_bits(uint32_t type, uint8_t bits[8])
{
	memset(bits, 0, 8);
	memset(bits, 0xff, (size_t)x86_field_size(type));
}

static int x86_jump_size_to(uint64_t at, uint64_t to)
{
	return x86_jump_size(at, to);
}

/* A RIP-relative operand's target. */
static int x86_next_insn(const uint8_t *p, size_t avail, uint64_t addr, uint64_t *targets, int *n)
{
	struct insn in;
	*n = 0;
	if (x86_decode(p, avail, &in) < 0)
		return -1;
	if (in.disp_at >= 0) {
		int32_t d;
		memcpy(&d, p + in.disp_at, 4);
		targets[(*n)++] = addr + in.len + (uint64_t)(int64_t)d;
	}
	return in.len;
}

const struct arch arch_x86_64 = {
	.name = "x86-64",
	.reach = "2 GiB",
	.pcrel_ref = "32-bit offset",
	.machine = EM_X86_64,
	.insn_max = 15,
	.stub_size = 8,
	.jump_size = X86_JUMP_SIZE,
	.short_jump_size = X86_SHORT_JUMP_SIZE,
	.pc_at_end = 1,
	.reloc_kind = x86_reloc_kind,
	.field_size = x86_field_size,
	.field_bits = x86_field_bits,
	.is_call_site = x86_is_call_site,
	.pcrel_offsets = x86_pcrel_offsets,
	.apply = x86_apply,
	.null_field = x86_null_field,
	.reaches = x86_reaches,
	.call_target = x86_call_target,
	.write_stub = x86_write_stub,
	.jump_size_to = x86_jump_size_to,
	.padding_before = x86_padding_before,
	.scan_code = x86_scan_code,
	.next_insn = x86_next_insn,
};
