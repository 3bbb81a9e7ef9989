/* Unit tests of the x86-64 relocation arithmetic, range checks, stubs and
 * padding recognition (src/arch/x86_64.c). */
#include <elf.h>
#include <stdio.h>
#include <string.h>
#include "link/linker.h"
#include "util.h"

static int failed;

static void check(int ok, const char *name, const char *why)
{
	if (ok)
		printf("PASS reloc: %s\n", name);
	else
		printf("FAIL reloc: %s: %s\n", name, why), failed = 1;
}

static int32_t get32(const uint8_t *p)
{
	int32_t v;
	memcpy(&v, p, 4);
	return v;
}

static void test_pc32(void)
{
	uint8_t buf[8] = {0};
	struct relval v = {.S = 0x401000, .P = 0x400000, .A = -4};
	check(arch_apply(R_X86_64_PC32, buf, &v) == 0 && get32(buf) == 0x1000 - 4,
	      "PC32 is S + A - P", "wrong value");
	v.S = 0x7f0000000000;
	int rc = arch_apply(R_X86_64_PLT32, buf, &v);
	check(rc < 0 && strstr(rw_error(), "R_X86_64_PLT32") && strstr(rw_error(), "does not fit"),
	      "PLT32 out of reach is refused with its name", rw_error());
}

static void test_abs32(void)
{
	uint8_t buf[8] = {0};
	struct relval v = {.S = 0x80000000, .A = 0};
	check(arch_apply(R_X86_64_32, buf, &v) == 0 && (uint32_t)get32(buf) == 0x80000000u,
	      "R_X86_64_32 takes an unsigned 32-bit value", "refused or wrong");
	check(arch_apply(R_X86_64_32S, buf, &v) < 0, "R_X86_64_32S refuses 0x80000000",
	      "accepted a value that does not sign-extend");
	v.S = 0x100000000ull;
	check(arch_apply(R_X86_64_32, buf, &v) < 0, "R_X86_64_32 refuses 2^32", "accepted");
}

static void test_got_and_tls(void)
{
	uint8_t buf[8] = {0};
	struct relval v = {.P = 0x1000, .GOT = 0x2000, .G = 16, .A = -4};
	check(arch_apply(R_X86_64_REX_GOTPCRELX, buf, &v) == 0 && get32(buf) == 0x2000 + 16 - 4 - 0x1000,
	      "REX_GOTPCRELX is G + GOT + A - P", "wrong value");
	v = (struct relval){.tpoff = -0x40, .A = 4};
	check(arch_apply(R_X86_64_TPOFF32, buf, &v) == 0 && get32(buf) == -0x3c,
	      "TPOFF32 is the offset from the thread pointer", "wrong value");
	v = (struct relval){.S = 0x5000, .GOT = 0x4000, .A = 8};
	uint64_t out;
	check(arch_apply(R_X86_64_GOTOFF64, buf, &v) == 0 && (memcpy(&out, buf, 8), out == 0x1008),
	      "GOTOFF64 is S + A - GOT", "wrong value");
}

static void test_stub(void)
{
	uint8_t buf[8];
	arch_write_stub(buf, 0x1000, 0x3000);
	check(buf[0] == 0xff && buf[1] == 0x25 && get32(buf + 2) == 0x3000 - 0x1006,
	      "stub is jmp *slot(%rip)", "wrong bytes");
}

static void test_call_site(void)
{
	const uint8_t code[] = {0xe8, 0, 0, 0, 0, 0x48, 0x8d, 0x05, 0, 0, 0, 0, 0x0f, 0x84, 0, 0, 0, 0};
	check(arch_is_call_site(code, 1), "call rel32 is a call site", "not recognised");
	check(!arch_is_call_site(code, 8), "lea rel32 is not a call site", "taken for a call");
	check(arch_is_call_site(code, 14), "jcc rel32 is a call site", "not recognised");
}

static void test_padding(void)
{
	const uint8_t nops[] = {0xc3, 0x66, 0x66, 0x2e, 0x0f, 0x1f, 0x84, 0, 0, 0, 0, 0, 0x0f, 0x1f, 0x40, 0};
	const uint8_t int3[] = {0xc3, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc};
	const uint8_t code[] = {0x48, 0x89, 0xc7, 0xc3};
	check(arch_padding_before(nops + sizeof nops, sizeof nops) == 15, "gas NOP padding is found",
	      "wrong length");
	check(arch_padding_before(int3 + sizeof int3, sizeof int3) == 6, "int3 padding is found",
	      "wrong length");
	check(arch_padding_before(code + sizeof code, sizeof code) == 0, "code is not padding",
	      "code taken for padding");
}

int main(void)
{
	test_pc32();
	test_abs32();
	test_got_and_tls();
	test_stub();
	test_call_site();
	test_padding();
	return 0;
}
