/* The machine a patch is for, and the arch_* calls that go to it. */
#include <elf.h>
#include "arch.h"
#include "util.h"

const struct arch *rw_arch = &arch_x86_64;

const char *arch_machine_name(uint16_t m)
{
	return m == EM_X86_64 ? "x86-64" : m == EM_AARCH64 ? "aarch64" : NULL;
}

int arch_select(uint16_t m)
{
	if (m == EM_X86_64)
		rw_arch = &arch_x86_64;
	else if (m == EM_AARCH64)
		rw_arch = &arch_aarch64;
	else
		return rw_fail("ELF machine %u: rewire patches x86-64 and aarch64 code", m);
	return 0;
}

void arch_reloc_kind(uint32_t type, struct reloc_kind *k) { rw_arch->reloc_kind(type, k); }
int arch_field_size(uint32_t type) { return rw_arch->field_size(type); }
void arch_field_bits(uint32_t type, uint8_t bits[8]) { rw_arch->field_bits(type, bits); }
int arch_is_call_site(const uint8_t *sec, uint64_t off) { return rw_arch->is_call_site(sec, off); }
int arch_pcrel_offsets(int64_t a, int64_t out[4]) { return rw_arch->pcrel_offsets(a, out); }
int arch_apply(uint32_t type, uint8_t *loc, const struct relval *v) { return rw_arch->apply(type, loc, v); }
void arch_null_field(uint32_t type, uint8_t *loc, uint64_t P) { rw_arch->null_field(type, loc, P); }
int arch_reaches(uint64_t lo, uint64_t hi, uint64_t a, uint64_t b) { return rw_arch->reaches(lo, hi, a, b); }
uint64_t arch_call_target(uint64_t S, int64_t A) { return rw_arch->call_target(S, A); }
void arch_write_stub(uint8_t *loc, uint64_t at, uint64_t slot) { rw_arch->write_stub(loc, at, slot); }
int arch_jump_size(uint64_t at, uint64_t to) { return rw_arch->jump_size_to(at, to); }
size_t arch_padding_before(const uint8_t *end, size_t avail) { return rw_arch->padding_before(end, avail); }
uint8_t *arch_scan_code(struct elf_object *o, uint16_t si) { return rw_arch->scan_code(o, si); }

int arch_anchor_span(const uint8_t *code, uint64_t size, uint64_t off, int64_t *lo, int64_t *hi)
{
	return rw_arch->anchor_span ? rw_arch->anchor_span(code, size, off, lo, hi) : 0;
}

int arch_anchor_offsets(const uint8_t *code, uint64_t size, uint64_t off, int64_t *offs, int cap)
{
	return rw_arch->anchor_offsets ? rw_arch->anchor_offsets(code, size, off, offs, cap) : 0;
}

int arch_next_insn(const uint8_t *p, size_t avail, uint64_t addr,
		   uint64_t targets[ARCH_MAX_TARGETS], int *n)
{
	return rw_arch->next_insn(p, avail, addr, targets, n);
}

/* The end of the instruction holding the field at off, or 0 when unknown. */
uint64_t arch_insn_end(const uint8_t *starts, uint64_t off, uint64_t size)
{
	if (!starts || off >= size)
		return 0;
	uint64_t start = off;
	while (start > 0 && off - start < rw_arch->insn_max && starts[start] == 0)
		start--;
	if (starts[start] != 1)
		return 0;
	uint64_t end = off + 1;
	while (end < size && starts[end] == 0)
		end++;
	return starts[end] == 1 ? end : 0;
}

int64_t arch_pc_tail(const uint8_t *starts, uint64_t off, uint64_t size, int *exact)
{
	int known = 1;
	int64_t tail = 0;
	if (rw_arch->pc_at_end) {
		uint64_t end = arch_insn_end(starts, off, size);
		known = end >= off + 4;
		tail = end ? (int64_t)(end - off) : 4;
	}
	if (exact)
		*exact = known;
	return tail;
}
