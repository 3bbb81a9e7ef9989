/* The entry jumps: what the driver plans room for (link/resolve.c) and
 * the agent writes (agent/apply.c), defined once for both. Header only:
 * the agent links nothing of the driver's. The driver asks the machine of
 * the patch (arch.h); the agent is built for one and takes its own
 * (agent/machine.h). */
#ifndef RW_ARCH_JUMP_H
#define RW_ARCH_JUMP_H
#include <stdint.h>
#include <string.h>

/* x86-64 */
#define X86_JUMP_SIZE 5		/* jmp rel32 */
#define X86_FAR_JUMP_SIZE 14	/* jmp *0(%rip), then the address: changes no register */
#define X86_SHORT_JUMP_SIZE 2	/* jmp rel8: the hop into a short function's padding */

/* Bytes of the jump from at to to (X86_JUMP_SIZE when a rel32 reaches). */
static inline int x86_jump_size(uint64_t at, uint64_t to)
{
	int64_t rel = (int64_t)(to - (at + X86_JUMP_SIZE));
	return rel == (int32_t)rel ? X86_JUMP_SIZE : X86_FAR_JUMP_SIZE;
}

/* The jump of len bytes (one of the sizes above) from at to to, into out.
 * 0, or -1 when a short jump does not reach. */
static inline int x86_encode_jump(uint8_t *out, uint64_t at, uint64_t to, int len)
{
	int64_t rel = (int64_t)(to - (at + (uint64_t)len));
	if (len == X86_FAR_JUMP_SIZE) {
		static const uint8_t jmp_rip[6] = {0xff, 0x25, 0, 0, 0, 0};
		memcpy(out, jmp_rip, sizeof jmp_rip);
		memcpy(out + sizeof jmp_rip, &to, 8);
		return 0;
	}
	if (len == X86_SHORT_JUMP_SIZE && rel != (int8_t)rel)
		return -1;
	out[0] = len == X86_SHORT_JUMP_SIZE ? 0xeb : 0xe9;
	memcpy(out + 1, &rel, (size_t)len - 1);	/* little-endian: the low bytes */
	return 0;
}

/* aarch64: a B reaches +-128 MiB. Beyond, the address is formed in x16,
 * which the psABI lets any call's veneer clobber (IP0): within +-4 GiB
 * (where the agent places patches first) adrp x16; add x16, x16, lo12;
 * br x16 (12 bytes), else ldr x16, .+8; br x16; the address (16). The
 * shorter, the fewer calls made near the entry a jump covers (a thread
 * returning from one would land inside it: agent/stop.c refuses that).
 * There is no short form: every function holds a B. */
#define A64_JUMP_SIZE 4
#define A64_MID_JUMP_SIZE 12
#define A64_FAR_JUMP_SIZE 16
#define A64_SHORT_JUMP_SIZE 0

static inline int a64_adrp_reaches(uint64_t at, uint64_t to)
{
	int64_t pages = (int64_t)(to >> 12) - (int64_t)(at >> 12);
	return pages >= -(1ll << 20) && pages < (1ll << 20);
}

static inline int a64_jump_size(uint64_t at, uint64_t to)
{
	int64_t rel = (int64_t)(to - at);
	if (rel >= -(1ll << 27) && rel < (1ll << 27))
		return A64_JUMP_SIZE;
	return a64_adrp_reaches(at, to) ? A64_MID_JUMP_SIZE : A64_FAR_JUMP_SIZE;
}

static inline int a64_encode_jump(uint8_t *out, uint64_t at, uint64_t to, int len)
{
	int64_t rel = (int64_t)(to - at);
	uint32_t w[3];
	if (len == A64_FAR_JUMP_SIZE) {
		w[0] = 0x58000050;	/* ldr x16, .+8 */
		w[1] = 0xd61f0200;	/* br x16 */
		memcpy(out, w, 8);
		memcpy(out + 8, &to, 8);
		return 0;
	}
	if (len == A64_MID_JUMP_SIZE) {
		if (!a64_adrp_reaches(at, to))
			return -1;
		uint32_t pages = (uint32_t)((int64_t)(to >> 12) - (int64_t)(at >> 12));
		w[0] = 0x90000010 | (pages & 3) << 29 | ((pages >> 2) & 0x7ffff) << 5;	/* adrp x16 */
		w[1] = 0x91000210 | (uint32_t)(to & 0xfff) << 10;	/* add x16, x16, #lo12 */
		w[2] = 0xd61f0200;	/* br x16 */
		memcpy(out, w, 12);
		return 0;
	}
	if (len != A64_JUMP_SIZE || rel % 4 || rel < -(1ll << 27) || rel >= (1ll << 27))
		return -1;
	w[0] = 0x14000000 | ((uint32_t)(rel >> 2) & 0x03ffffff);	/* b */
	memcpy(out, w, 4);
	return 0;
}

#endif
