/* The entry jumps, x86-64: what the driver plans room for (link/resolve.c)
 * and the agent writes (agent/apply.c), defined once for both. Header
 * only: the agent links nothing of the driver's. Another architecture
 * gives the same names in a header of its own. */
#ifndef RW_ARCH_JUMP_H
#define RW_ARCH_JUMP_H
#include <stdint.h>
#include <string.h>

#define ARCH_JUMP_SIZE 5	/* jmp rel32 */
#define ARCH_FAR_JUMP_SIZE 14	/* jmp *0(%rip), then the address: changes no register */
#define ARCH_SHORT_JUMP_SIZE 2	/* jmp rel8: the hop into a short function's padding */

/* Bytes of the jump from at to to (ARCH_JUMP_SIZE when a rel32 reaches). */
static inline int arch_jump_size(uint64_t at, uint64_t to)
{
	int64_t rel = (int64_t)(to - (at + ARCH_JUMP_SIZE));
	return rel == (int32_t)rel ? ARCH_JUMP_SIZE : ARCH_FAR_JUMP_SIZE;
}

/* The jump of len bytes (one of the sizes above) from at to to, into out.
 * 0, or -1 when a short jump does not reach. */
static inline int arch_encode_jump(uint8_t *out, uint64_t at, uint64_t to, int len)
{
	int64_t rel = (int64_t)(to - (at + (uint64_t)len));
	if (len == ARCH_FAR_JUMP_SIZE) {
		static const uint8_t jmp_rip[6] = {0xff, 0x25, 0, 0, 0, 0};
		memcpy(out, jmp_rip, sizeof jmp_rip);
		memcpy(out + sizeof jmp_rip, &to, 8);
		return 0;
	}
	if (len == ARCH_SHORT_JUMP_SIZE && rel != (int8_t)rel)
		return -1;
	out[0] = len == ARCH_SHORT_JUMP_SIZE ? 0xeb : 0xe9;
	memcpy(out + 1, &rel, (size_t)len - 1);	/* little-endian: the low bytes */
	return 0;
}

#endif
